"""``stunscope live -i any``: every interface at once, recorded as Linux cooked capture v2 (SLL2).

Real capture on ``lo`` (and on an ifb interface made for the test), read back with stunscope and
with tshark. Needs root or CAP_NET_RAW (CI runs as root) and tshark; every process is bounded in
time.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stunscope.capture.live import DEFAULT_FILTER
from stunscope.capture.records import read_records
from stunscope.wire.encode import encode_message
from test_live_capture import (
    ROOT,
    captured,
    messages,
    send_bindings,
    sink,
    start_live,
    stop,
    txids,
)

LINKTYPE_LINUX_SLL2 = 276
PACKET_HOST, PACKET_OUTGOING = 0, 4

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="capturing needs root (CI runs as root)")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def tshark_fields(path: Path, *fields: str) -> list[tuple[str, ...]]:
    """One tuple of ``fields`` per STUN frame of ``path``, as tshark decodes them."""
    args = ["tshark", "-n", "-r", str(path), "-Y", "stun", "-T", "fields"]
    for field in fields:
        args += ["-e", field]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [tuple(line.split("\t")) for line in out.stdout.splitlines()]


def txids_to(path: Path, port: int) -> list[int]:
    """Transaction ids of the STUN messages sent to ``port`` (other traffic may be captured)."""
    return [int(m["txid"], 16) for m in messages(path) if m["dst"].endswith(f":{port}")]


@contextmanager
def ifb_interface() -> Iterator[tuple[str, str]]:
    """A new ifb interface, up, with 198.18.N.1/24 (RFC 2544 benchmarking space) routed to it:
    yields (its name, an address behind it). What is sent there leaves through it, once."""
    name = f"stsany{os.getpid() % 100000}"
    subnet = f"198.18.{os.getpid() % 250 + 1}"
    if subprocess.run(["ip", "link", "add", name, "type", "ifb"], capture_output=True).returncode:
        pytest.skip("cannot create an ifb interface here")
    try:
        subprocess.run(["ip", "addr", "add", f"{subnet}.1/24", "dev", name], check=True,
                       timeout=10)
        subprocess.run(["ip", "link", "set", name, "up"], check=True, timeout=10)
        yield name, f"{subnet}.2"
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)


@pytest.mark.live
@root_only
@needs_tshark
def test_any_sees_each_loopback_packet_once_in_the_stream_and_the_file(tmp_path: Path) -> None:
    out = tmp_path / "any.pcapng"
    with sink() as port:
        live = start_live("-i", "any", "-f", f"udp dst port {port}", "-w", str(out),
                          "--format", "jsonl")
        send_bindings(port, 200)
        time.sleep(0.3)
        streamed, err = stop(live)
    assert live.returncode == 0, err
    assert captured(err) == 200  # not 400: the outgoing copy on lo is left out
    lines = [json.loads(line) for line in streamed.splitlines()]
    assert [int(o["txid"], 16) for o in lines if o["kind"] == "stun"] == list(range(200))
    assert lines[-1] == {"kind": "capture", "captured": 200, "dropped_queue": 0,
                         "dropped_kernel": 0}

    assert {r.linktype for r in read_records(out)} == {LINKTYPE_LINUX_SLL2}
    assert txids(out) == list(range(200))
    analysis = subprocess.run([sys.executable, "-m", "stunscope", "analyze", str(out),
                               "--format", "json"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
    assert analysis.returncode == 0, analysis.stderr
    report = json.loads(analysis.stdout)
    assert (report["capture"]["frames"], report["capture"]["messages"]) == (200, 200)
    assert sorted(int(t["txid"], 16) for t in report["transactions"]) == list(range(200))

    fields = tshark_fields(out, "frame.protocols", "sll.ifindex", "sll.pkttype", "stun.id")
    assert [int(f[3], 16) for f in fields] == list(range(200))
    lo = str(socket.if_nametoindex("lo"))
    assert {f[:3] for f in fields} == {("sll:ethertype:ip:udp:stun", lo, str(PACKET_HOST))}


@pytest.mark.live
@root_only
@needs_tshark
def test_any_captures_another_interface_at_the_same_time(tmp_path: Path) -> None:
    from stunscope.capture.live import LiveCapture

    out = tmp_path / "two.pcapng"
    with sink() as port, ifb_interface() as (name, behind):
        capture = LiveCapture("any", f"udp dst port {port}", write=str(out))
        send_bindings(port, 20)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for number in range(20, 40):
                sock.sendto(encode_message(0x001, 0, number.to_bytes(12, "big"), []),
                            (behind, port))
        time.sleep(0.3)
        capture.stop()
        ifb = str(socket.if_nametoindex(name))
    assert capture.stats() == (40, 0, 0)
    fields = tshark_fields(out, "sll.ifindex", "sll.pkttype", "stun.id")
    lo = str(socket.if_nametoindex("lo"))
    by_txid = {int(txid, 16): (ifindex, pkttype) for ifindex, pkttype, txid in fields}
    assert len(fields) == len(by_txid) == 40
    assert by_txid == {n: (lo, str(PACKET_HOST)) if n < 20 else (ifb, str(PACKET_OUTGOING))
                       for n in range(40)}


@pytest.mark.live
@root_only
def test_default_filter_runs_on_the_cooked_socket(tmp_path: Path) -> None:
    """The default filter reads UDP payload bytes (``udp[8]``): compiled for SLL2 and moved back
    by its 20-byte header, it must still tell STUN from RTP and DTLS."""
    from stunscope.capture.live import LiveCapture

    out = tmp_path / "default.pcapng"
    with sink() as port:
        capture = LiveCapture("any", f"({DEFAULT_FILTER}) and udp dst port {port}",
                              write=str(out))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for number in range(30):
                sock.sendto(bytes([0x80, 0x60]) + bytes(30), ("127.0.0.1", port))  # RTP
                sock.sendto(bytes([22, 0xFE, 0xFD]) + bytes(30), ("127.0.0.1", port))  # DTLS
                sock.sendto(encode_message(0x001, 0, number.to_bytes(12, "big"), []),
                            ("127.0.0.1", port))
        time.sleep(0.3)
        capture.stop()
    assert capture.stats().captured == 30
    assert txids(out) == list(range(30))


@pytest.mark.live
@root_only
def test_no_filter_still_leaves_out_the_loopback_echo(tmp_path: Path) -> None:
    from stunscope.capture.live import LiveCapture

    out = tmp_path / "all.pcapng"
    with sink() as port:
        capture = LiveCapture("any", None, write=str(out))
        send_bindings(port, 50)
        time.sleep(0.3)
        capture.stop()
    assert txids_to(out, port) == list(range(50))


@pytest.mark.live
@root_only
def test_a_full_queue_counts_its_drops_on_any(tmp_path: Path) -> None:
    from stunscope.capture.live import LiveCapture

    out = tmp_path / "full.pcapng"
    with sink() as port:
        capture = LiveCapture("any", f"udp dst port {port}", queue_size=10, write=str(out))
        send_bindings(port, 100)
        time.sleep(0.3)
        capture.stop()
    records = list(capture.records())
    assert [r.frame for r in records] == list(range(1, 11))
    assert capture.stats() == (100, 90, 0)
    assert txids(out) == list(range(100))


def live(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stunscope", "live", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_list_interfaces_shows_any() -> None:
    out = live("-i", "any", "--list-interfaces")
    assert out.returncode == 0, out.stderr
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert "lo" in names and names[-1] == "any"
    assert "all interfaces" in out.stdout.splitlines()[-1]


@root_only
@pytest.mark.parametrize(("bpf", "message"), [
    ("vlan", "bad capture filter 'vlan': no VLAN support for Linux cooked v2"),
    ("link[2] == 0", "capture filter 'link[2] == 0' reads link-layer header fields"),
    ("greater 100", "capture filter 'greater 100' tests the frame length"),
    ("udp and nonsense", "bad capture filter 'udp and nonsense': syntax error"),
])
def test_filters_that_cannot_run_on_any_are_usage_errors(bpf: str, message: str) -> None:
    out = live("-i", "any", "-f", bpf, "--format", "jsonl")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith(f"stunscope: {message}") and out.stderr.count("\n") == 1
