"""The bundled captures (captures/*.pcapng) exist, tshark reads them, and each holds the story its
scenario (captures/scenarios.py) promises: checked with tshark's own decoder, in order.

A story is a list of steps that must appear in the capture in that order (other messages may sit
in between). A step is a message ``(method, class)`` with optional details: the error code, a
LIFETIME value, or ``tcp``/``ipv6``/``icmp``/``channeldata``.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import CAPTURES

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

METHODS = {0x001: "Binding", 0x003: "Allocate", 0x004: "Refresh", 0x006: "Send", 0x007: "Data",
           0x008: "CreatePermission", 0x009: "ChannelBind", 0x00A: "Connect",
           0x00B: "ConnectionBind", 0x00C: "ConnectionAttempt"}
CLASSES = {0: "request", 1: "indication", 2: "success", 3: "error"}

FIELDS = ["frame.number", "stun.type", "stun.att.error.class", "stun.att.error",
          "stun.att.lifetime", "stun.channel", "tcp.srcport", "ipv6.src", "icmp.type",
          "icmpv6.type"]


@dataclass(frozen=True)
class Msg:
    frame: int
    method: str
    cls: str
    error: int | None
    lifetime: int | None
    channeldata: bool
    tcp: bool
    ipv6: bool
    icmp: bool  # a STUN message quoted inside an ICMP/ICMPv6 error


def _split_type(t: int) -> tuple[str, str]:
    method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)
    cls = ((t & 0x0010) >> 4) | ((t & 0x0100) >> 7)
    return METHODS.get(method, f"0x{method:03x}"), CLASSES[cls]


@functools.lru_cache(maxsize=64)
def messages(path: Path) -> tuple[Msg, ...]:
    """One Msg per STUN message (several per frame over TCP), one per ChannelData frame."""
    args = ["tshark", "-n", "-r", str(path), "-Y", "stun", "-T", "fields", "-E", "occurrence=a",
            "-E", "aggregator=;", "-E", "separator=\t"]
    for f in FIELDS:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    result = []
    for line in out.splitlines():
        cols = (line.split("\t") + [""] * len(FIELDS))[: len(FIELDS)]
        row = dict(zip(FIELDS, cols))
        frame = int(row["frame.number"])
        tcp, ipv6 = bool(row["tcp.srcport"]), bool(row["ipv6.src"])
        icmp = bool(row["icmp.type"] or row["icmpv6.type"])
        if not row["stun.type"]:
            if row["stun.channel"]:
                result.append(Msg(frame, "ChannelData", "data", None, None, True, tcp, ipv6, False))
            continue
        types = [int(t, 16) for t in row["stun.type"].split(";")]
        errs_c = [int(x) for x in row["stun.att.error.class"].split(";") if x]
        errs_n = [int(x) for x in row["stun.att.error"].split(";") if x]
        errors = [c * 100 + n for c, n in zip(errs_c, errs_n)]
        lifetimes = [int(x) for x in row["stun.att.lifetime"].split(";") if x]
        for t in types:
            method, cls = _split_type(t)
            error = errors.pop(0) if cls == "error" and errors else None
            # tshark lists LIFETIME per message only for those that carry one; with several
            # messages in a frame we only trust it when there is exactly one message.
            lifetime = lifetimes[0] if len(types) == 1 and lifetimes else None
            result.append(Msg(frame, method, cls, error, lifetime, False, tcp, ipv6, icmp))
    return tuple(result)


def _matches(m: Msg, step: dict) -> bool:
    for key, want in step.items():
        if getattr(m, key) != want:
            return False
    return True


def assert_story(path: Path, story: list[dict]) -> tuple[Msg, ...]:
    """Each step is found after the previous one; the failure names the first missing step."""
    msgs = messages(path)
    i = 0
    for n, step in enumerate(story):
        while i < len(msgs) and not _matches(msgs[i], step):
            i += 1
        if i == len(msgs):
            seen = "\n".join(f"  {m}" for m in msgs[:80])
            pytest.fail(f"{path.name}: step {n} {step} not found after the previous steps;"
                        f" messages:\n{seen}")
        i += 1
    return msgs


def S(method: str, cls: str, **kw) -> dict:
    return {"method": method, "cls": cls, **kw}


CHALLENGE = [S("Allocate", "request"), S("Allocate", "error", error=401),
             S("Allocate", "request"), S("Allocate", "success")]

STORIES: dict[str, list[dict]] = {
    "binding": [S("Binding", "request"), S("Binding", "success"),
                S("Binding", "request"), S("Binding", "success")],
    "turn-udp": CHALLENGE + [
        S("ChannelBind", "request"), S("ChannelBind", "success"),
        {"channeldata": True}, S("Refresh", "request", lifetime=0), S("Refresh", "success"),
        # second run: Send/Data indications after a CreatePermission
        S("Allocate", "error", error=401), S("Allocate", "success"),
        S("CreatePermission", "request"), S("CreatePermission", "success"),
        S("Send", "indication"), S("Data", "indication"),
        S("Refresh", "request", lifetime=0), S("Refresh", "success")],
    "turn-tcp": [S("Allocate", "error", error=401, tcp=True), S("Allocate", "success", tcp=True),
                 S("ChannelBind", "success", tcp=True), {"channeldata": True, "tcp": True},
                 S("Refresh", "success", tcp=True),
                 # RFC 6062 TCP relay
                 S("Connect", "request", tcp=True), S("ConnectionAttempt", "indication", tcp=True),
                 S("ConnectionBind", "request", tcp=True),
                 S("ConnectionBind", "success", tcp=True)],
    "ice-host": [S("Binding", "request"), S("Binding", "success"),
                 S("Binding", "request"), S("Binding", "success")],
    "ice-host-2": [S("Binding", "request"), S("Binding", "success"),
                   S("Binding", "request"), S("Binding", "success")],
    "ice-turn-relay": CHALLENGE + [S("ChannelBind", "success"), {"channeldata": True},
                                   S("Binding", "success"), {"channeldata": True},
                                   S("Refresh", "request", lifetime=0)],
    "ice-wrong-password": [S("Binding", "request"), S("Binding", "error", error=401),
                           S("Binding", "request"), S("Binding", "error", error=401)],
    "ice-unreachable": [S("Binding", "request", icmp=False), S("Binding", "request", icmp=True),
                        S("Binding", "request", icmp=False)],
    "ice-role-conflict": [S("Binding", "request"), S("Binding", "error", error=487),
                          S("Binding", "request"), S("Binding", "success")],
    # connectivity checks, one answered consent check per agent, then B is gone: seven
    # consent checks from A, each answered by the kernel's ICMP port unreachable
    "ice-consent-lost": [S("Binding", "request"), S("Binding", "success")] * 3
    + [S("Binding", "request", icmp=False), S("Binding", "request", icmp=True)] * 7,
    "turn-wrong-password": [S("Allocate", "error", error=401), S("Allocate", "request"),
                            S("Allocate", "error", error=401), S("Allocate", "request"),
                            S("Allocate", "error", error=401)],
    "turn-stale-nonce": CHALLENGE + [S("Refresh", "request"), S("Refresh", "error", error=438),
                                     S("Refresh", "request"), S("Refresh", "success"),
                                     S("CreatePermission", "error", error=438),
                                     S("CreatePermission", "success")],
    "turn-forbidden-peer": CHALLENGE + [S("ChannelBind", "request"),
                                        S("ChannelBind", "error", error=403),
                                        S("CreatePermission", "request"),
                                        S("CreatePermission", "error", error=403)],
    "turn-allocation-mismatch": CHALLENGE + [S("Allocate", "request"),
                                             S("Allocate", "error", error=437)],
    "turn-expired": [S("Allocate", "request", lifetime=3), S("Allocate", "error", error=401),
                     S("Allocate", "success", lifetime=3), S("CreatePermission", "success"),
                     S("Send", "indication"), S("Data", "indication"), S("Send", "indication"),
                     S("Refresh", "request"), S("Refresh", "error", error=437)],
    "turn-data-without-permission": CHALLENGE + [
        S("CreatePermission", "success"), S("Send", "indication"), S("Data", "indication"),
        S("Send", "indication"), S("Send", "indication"), S("Refresh", "request", lifetime=0)],
    "unanswered": [S("Binding", "request")] * 4 + [S("Binding", "request", icmp=True)],
    "nat-symmetric": [S("Binding", "request"), S("Binding", "success")] * 4,
    # natdiscovery -H: no hairpin (dropped), hairpin (the request comes back in), no NAT
    "nat-hairpin": ([S("Binding", "request"), S("Binding", "success"), S("Binding", "request")]
                    + [S("Binding", "request"), S("Binding", "success"), S("Binding", "request"),
                       S("Binding", "request")]
                    + [S("Binding", "request"), S("Binding", "success"), S("Binding", "request")]),
    # natdiscovery -t -T N: the RESPONSE-PORT test unanswered (mapping gone), then answered twice
    "nat-lifetime": ([S("Binding", "request"), S("Binding", "success"), S("Binding", "request")]
                     + [S("Binding", "request"), S("Binding", "success")] * 4),
    "bad-fingerprint": [S("Binding", "request"), S("Binding", "success")]
    + [S("Binding", "request")] * 3 + [S("Binding", "success")],
    "ipv6": [S("Binding", "request", ipv6=True), S("Binding", "success", ipv6=True),
             S("Allocate", "error", error=401, ipv6=True), S("Allocate", "success", ipv6=True),
             S("ChannelBind", "success", ipv6=True), {"channeldata": True, "ipv6": True},
             S("Refresh", "request", lifetime=0, ipv6=True),
             # ICE host checks on [::1]
             S("Binding", "request", ipv6=True), S("Binding", "success", ipv6=True),
             S("Binding", "success", ipv6=True)],
}
SDP = {"ipv6", "ice-host", "ice-host-2", "ice-turn-relay", "ice-wrong-password", "ice-unreachable",
       "ice-role-conflict", "ice-consent-lost"}


def _scenarios():
    sys.path.insert(0, str(CAPTURES))
    try:
        return importlib.import_module("scenarios")
    finally:
        sys.path.remove(str(CAPTURES))


def test_every_scenario_has_a_capture_and_a_story():
    names = set(_scenarios().SCENARIOS)
    assert names == set(STORIES), "scenarios.py and the stories here list the same captures"
    for name in names:
        assert (CAPTURES / f"{name}.pcapng").is_file(), f"captures/{name}.pcapng is missing"


@pytest.mark.parametrize("name", sorted(STORIES))
def test_capture_tells_its_story(name):
    path = CAPTURES / f"{name}.pcapng"
    assert path.stat().st_size < 64 * 1024, "bundled captures stay small"
    assert_story(path, STORIES[name])


@pytest.mark.parametrize("name", sorted(STORIES))
def test_capture_is_loopback_only(name):
    out = subprocess.run(["tshark", "-n", "-r", str(CAPTURES / f"{name}.pcapng"), "-T", "fields",
                          "-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    addrs = {a for a in out.replace(",", "\t").split() if a}
    assert addrs and all(a.startswith("127.") or a == "::1" for a in addrs), addrs


def test_turn_wrong_password_keeps_failing():
    """Every Allocate answer is 401 after the first one: the password is wrong, not missing."""
    msgs = messages(CAPTURES / "turn-wrong-password.pcapng")
    answers = [m for m in msgs if m.method == "Allocate" and m.cls in ("success", "error")]
    assert len(answers) >= 3 and all(m.error == 401 for m in answers)


def test_ice_failures_never_succeed():
    for name in ("ice-wrong-password", "ice-unreachable"):
        msgs = messages(CAPTURES / f"{name}.pcapng")
        assert not [m for m in msgs if m.cls == "success"], name


def test_unanswered_has_no_answers():
    msgs = messages(CAPTURES / "unanswered.pcapng")
    assert {m.cls for m in msgs} == {"request"}


def test_ice_consent_lost_goes_unanswered_for_more_than_30_s():
    """After the last answered consent check nothing answers but ICMP, and the checks go on
    past RFC 7675's 30 s: the consent has expired by the time A gives up."""
    rows = _fields(CAPTURES / "ice-consent-lost.pcapng", "stun and not icmp",
                   "frame.time_relative", "stun.type")
    last_answer = max(i for i, r in enumerate(rows) if r[1] == "0x0101")
    after = rows[last_answer + 1:]
    assert len(after) == 7 and {r[1] for r in after} == {"0x0001"}
    assert float(after[-1][0]) - float(rows[last_answer][0]) > 30
    quoted = _fields(CAPTURES / "ice-consent-lost.pcapng", "icmp.type == 3 and icmp.code == 3",
                     "frame.number")
    assert len(quoted) == 7


def _fields(path: Path, display: str, *fields: str) -> list[list[str]]:
    args = ["tshark", "-n", "-r", str(path), "-Y", display, "-T", "fields"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_nat_symmetric_maps_each_destination_to_its_own_port():
    rows = _fields(CAPTURES / "nat-symmetric.pcapng", "stun.type == 0x0101",
                   "ip.src", "udp.srcport", "ip.dst", "udp.dstport", "stun.att.ipv4-xord",
                   "stun.att.port-xord")
    assert len(rows) == 4 and len({(r[2], r[3]) for r in rows}) == 1, "one local endpoint"
    public = {int(r[4], 16) ^ 0x2112A442 for r in rows}
    assert public == {0x7F000005}, "mapped to the NAT's public address 127.0.0.5"
    ports = [int(r[5], 16) ^ 0x2112 for r in rows]
    assert len(set(ports[:3])) == 3, "a new mapping per destination address and port"
    assert ports[3] == ports[0], "the same destination reuses its mapping"
    assert all(p != int(rows[0][3]) for p in ports), "mapped differs from the local port"


def test_bad_fingerprint_requests_are_not_answered():
    rows = _fields(CAPTURES / "bad-fingerprint.pcapng", "stun", "stun.type", "stun.id",
                   "stun.att.crc32.status")
    bad = [r for r in rows if r[2] == "0"]
    assert len(bad) == 2 and all(r[0] == "0x0001" for r in bad)
    answered = {r[1] for r in rows if r[0] == "0x0101"}
    assert not {r[1] for r in bad} & answered
    assert len(answered) == 2


def test_binding_has_rfc5780_answers_from_the_alternate_address():
    out = subprocess.run(["tshark", "-n", "-r", str(CAPTURES / "binding.pcapng"), "-Y",
                          "stun.type == 0x0101", "-T", "fields", "-e", "ip.src"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert "127.0.0.1" in out and "127.0.0.2" in out


def test_ice_host_recordings_tell_the_same_story():
    """ice-host and ice-host-2: same sequence of message kinds, different transaction ids."""
    a = messages(CAPTURES / "ice-host.pcapng")
    b = messages(CAPTURES / "ice-host-2.pcapng")
    assert sorted((m.method, m.cls) for m in a) == sorted((m.method, m.cls) for m in b)

    def txids(p):
        return set(subprocess.run(["tshark", "-n", "-r", str(p), "-Y", "stun", "-T", "fields",
                                   "-e", "stun.id"], capture_output=True, text=True,
                                  timeout=60, check=True).stdout.split())
    assert not txids(CAPTURES / "ice-host.pcapng") & txids(CAPTURES / "ice-host-2.pcapng")


@pytest.mark.parametrize("name", sorted(SDP))
def test_ice_captures_have_an_sdp_sidecar(name):
    text = (CAPTURES / f"{name}.sdp").read_text()
    assert text.count("a=ice-ufrag:") == 2 and text.count("a=ice-pwd:") == 2
    assert "a=candidate:" in text and "typ " in text


def test_relay_sdp_has_a_relayed_candidate():
    assert "typ relay" in (CAPTURES / "ice-turn-relay.sdp").read_text()


def test_readme_lists_every_capture():
    readme = (CAPTURES / "README.md").read_text()
    for name in STORIES:
        assert f"`{name}.pcapng`" in readme, name


def _can_record() -> str | None:
    for tool in ("dumpcap", "turnserver", "turnutils_stunclient"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "recording on lo needs root"
    return None


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["binding", "ice-host"])
def test_rerecord_end_to_end(name, tmp_path):
    """captures/record.py records a scenario again from the real programs; same story."""
    reason = _can_record()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run([sys.executable, str(CAPTURES / "record.py"), "--outdir", str(tmp_path),
                           name], capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr
    assert_story(tmp_path / f"{name}.pcapng", STORIES[name])
