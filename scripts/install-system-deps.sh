#!/usr/bin/env bash
# Installs the system programs the tests use (Debian packages): tshark (the reference decoder for
# the differential test, also dumpcap), coturn (real TURN server and clients), tmux (TUI test).
# Idempotent: does nothing when they are already there.
set -euo pipefail
need=()
command -v tshark >/dev/null || need+=(tshark)
command -v turnserver >/dev/null || need+=(coturn)
command -v tmux >/dev/null || need+=(tmux)
command -v ip >/dev/null || need+=(iproute2)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
