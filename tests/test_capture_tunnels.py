"""STUN inside tunnels: PPPoE, PPP and Cisco HDLC links, MPLS, IP in IP, GRE, ERSPAN, VXLAN, GENEVE.

The kernel here makes VXLAN and veth devices but not GRE, and no program makes the rest, so the
frames are crafted with scapy around the RFC 5769 §2.1 sample request (inner IPv4) and §2.3
sample IPv6 response (inner IPv6). For each one the reader must give the innermost addresses and
ports and the message itself, and tshark, the reference decoder, run on a capture of all of them,
must agree on the same fields. Around that: STUN to the VXLAN and GENEVE ports stays STUN, cut or
invalid tunnel headers give a stats key and no traceback, nesting deeper than ``MAX_DEPTH`` is
refused. One real capture (root only): coturn answering turnutils_stunclient across the kernel's
VXLAN between two network namespaces this test makes, recorded by dumpcap on the underlay.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import VECTORS
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import GRE, IP, UDP, Dot1Q, Ether, IPv6, Packet, Raw, fragment, raw
from scapy.contrib.erspan import ERSPAN_II
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from test_capture_support import channeldata, epb, idb, shb

from stunscope.capture.events import MessageEvent
from stunscope.capture.fragments import FragmentTable
from stunscope.capture.layers import MALFORMED, MAX_DEPTH, NON_IP, OTHER_PROTO, UDP_TUNNEL_PORTS, Transport, decode_frame
from stunscope.capture.records import Record, read_records
from stunscope.capture.stats import CaptureStats
from stunscope.capture.stream import iter_events, open_events
from stunscope.wire.decode import decode_message

if not VECTORS.is_file():
    pytest.skip("../shared/vectors/rfc5769.json is absent", allow_module_level=True)
_VECTORS = {v["name"]: bytes.fromhex(v["hex"]) for v in json.loads(VECTORS.read_text())["vectors"]}
REQUEST = _VECTORS["request"]  # RFC 5769 §2.1, message type 0x0001
RESPONSE6 = _VECTORS["ipv6_response"]  # RFC 5769 §2.3, message type 0x0101

IN4 = ("198.51.100.7", 40001, "203.0.113.9", 3478)
IN6 = ("2001:db8::7", 3478, "2001:db8::9", 40002)
INNER4 = IP(src=IN4[0], dst=IN4[2]) / UDP(sport=IN4[1], dport=IN4[3]) / Raw(REQUEST)
INNER6 = IPv6(src=IN6[0], dst=IN6[2]) / UDP(sport=IN6[1], dport=IN6[3]) / Raw(RESPONSE6)


def eth(**fields: int) -> Packet:
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", **fields)


def out4(**fields: int) -> Packet:
    return IP(src="192.0.2.1", dst="192.0.2.2", **fields)


def out6() -> Packet:
    return IPv6(src="2001:db8:ffff::1", dst="2001:db8:ffff::2")


class Case:
    """One encapsulated frame, its link type, and the innermost flow and message it carries."""

    def __init__(self, name: str, linktype: int, frame: Packet | bytes, inner6: bool = False) -> None:
        self.name = name
        self.linktype = linktype
        self.data = frame if isinstance(frame, bytes) else raw(frame)
        self.flow = IN6 if inner6 else IN4
        self.message = RESPONSE6 if inner6 else REQUEST


CASES = [
    Case("pppoe-ipv4", 1, eth() / PPPoE(sessionid=7) / PPP(proto=0x0021) / INNER4),
    Case("pppoe-ipv6-vlan", 1, eth() / Dot1Q(vlan=10) / PPPoE(sessionid=7) / PPP(proto=0x0057) / INNER6, True),
    Case("ppp-hdlc-framing", 9, b"\xff\x03\x00\x21" + raw(INNER4)),
    Case("ppp-compressed-protocol", 9, b"\x57" + raw(INNER6), True),
    Case("ppp_hdlc", 50, b"\xff\x03\x00\x57" + raw(INNER6), True),
    Case("ppp_hdlc-cisco", 50, b"\x0f\x00\x08\x00" + raw(INNER4)),
    Case("c_hdlc", 104, b"\x8f\x00\x86\xdd" + raw(INNER6), True),
    Case("mpls-two-labels", 1, eth() / MPLS(label=100, s=0) / MPLS(label=200, s=1) / INNER4),
    Case("mpls-multicast-ipv6", 1, eth(type=0x8848) / MPLS(label=16, s=1) / INNER6, True),
    Case("ipip", 1, eth() / out4() / INNER4),
    Case("6in4", 1, eth() / out4() / INNER6, True),
    Case("4in6", 1, eth() / out6() / INNER4),
    Case("6in6-sll", 113, b"\x00\x00\x00\x01\x00\x06" + b"\x02" * 6 + b"\x00\x00\x86\xdd" + raw(out6() / INNER6), True),
    Case("gre-ipv4", 1, eth() / out4() / GRE(proto=0x0800) / INNER4),
    Case("gre-csum-key-seq-ipv6", 1, eth() / out4() / GRE(chksum_present=1, key_present=1, seqnum_present=1,
                                                          key=5, sequence_number=9, proto=0x86DD) / INNER6, True),
    Case("gre-over-ipv6", 101, out6() / GRE(proto=0x0800) / INNER4),
    Case("gre-mpls", 1, eth() / out4() / GRE(proto=0x8847) / MPLS(s=1) / INNER4),
    Case("gre-teb-vlan", 1, eth() / out4() / GRE(key_present=1, key=1, proto=0x6558) / eth() / Dot1Q(vlan=3) / INNER4),
    Case("erspan-i", 1, eth() / out4() / GRE(proto=0x88BE) / eth() / INNER4),
    Case("erspan-ii", 1, eth() / out4() / GRE(seqnum_present=1, proto=0x88BE) / ERSPAN_II(session_id=1) / eth() / INNER4),
    Case("vxlan", 1, eth() / out4() / UDP(sport=55555, dport=4789) / VXLAN(vni=42) / eth() / INNER4),
    Case("vxlan-over-ipv6", 1, eth() / out6() / UDP(sport=55555, dport=4789) / VXLAN(vni=42) / eth() / INNER6, True),
    Case("geneve-options", 1, eth() / out4() / UDP(sport=55555, dport=6081)
         / GENEVE(vni=42, proto=0x6558, optionlen=2, options=b"\x01\x02\x03\x01abcd") / eth() / INNER6, True),
    Case("geneve-ipv4-vlan", 1, eth() / Dot1Q(vlan=4) / out4() / UDP(sport=55555, dport=6081)
         / GENEVE(vni=42, proto=0x0800) / INNER4),
    Case("mpls-gre-ipv6-vxlan", 1, eth() / MPLS(s=1) / out4() / GRE(proto=0x86DD) / out6()
         / UDP(sport=1, dport=4789) / VXLAN(vni=1) / eth() / INNER4),
]
IDS = [case.name for case in CASES]


def _flow(decoded: Transport) -> tuple[str, int, str, int]:
    return (str(ipaddress.ip_address(decoded.src)), decoded.sport, str(ipaddress.ip_address(decoded.dst)), decoded.dport)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reader_gives_the_innermost_flow_and_message(case: Case) -> None:
    decoded = decode_frame(case.linktype, case.data)
    assert isinstance(decoded, Transport), decoded
    assert _flow(decoded) == case.flow
    assert decoded.payload == case.message


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_stream_yields_the_message_on_the_inner_flow(case: Case) -> None:
    events = list(iter_events([Record(1, 1.0, case.linktype, case.data, len(case.data))], stats=CaptureStats()))
    assert len(events) == 1 and isinstance(events[0], MessageEvent), events
    event = events[0]
    assert (event.src.ip, event.src.port, event.dst.ip, event.dst.port) == case.flow
    assert event.message.raw == case.message and event.message == decode_message(case.message)


# ------------------------------------------------------------------------------ tshark agrees

def test_the_reader_process_unwraps_as_the_one_process_path(tmp_path: Path) -> None:
    """capture/pipeline.py has its own Ethernet/IPv4/UDP fast path: it must leave the tunnel
    ports to decode_frame too, and give the same inner flows as iter_events."""
    path = _pcapng(tmp_path / "tunnels.pcapng", [(c.linktype, c.data) for c in CASES])
    flows = {}
    for parallel in (False, True):
        events = list(open_events(path, CaptureStats(), parallel=parallel))
        flows[parallel] = [(e.src.ip, e.src.port, e.dst.ip, e.dst.port) for e in events]
    assert flows[True] == flows[False] == [case.flow for case in CASES]


_TSHARK_FIELDS = ["frame.protocols", "ip.src", "ipv6.src", "udp.srcport", "ip.dst", "ipv6.dst", "udp.dstport", "stun.type"]


def _tshark(path: Path, *options: str) -> list[list[str]]:
    """tshark's fields per frame (one comma-separated value per layer instance)."""
    fields = [arg for name in _TSHARK_FIELDS for arg in ("-e", name)]
    out = subprocess.run(["tshark", "-n", "-r", str(path), *options, "-T", "fields", *fields],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def _pcapng(path: Path, frames: list[tuple[int, bytes]]) -> Path:
    """A pcapng with one interface per link type (in order of first use)."""
    interfaces: dict[int, int] = {}
    blocks = [shb()]
    for linktype, _ in frames:
        if linktype not in interfaces:
            interfaces[linktype] = len(interfaces)
            blocks.append(idb(linktype))
    blocks += [epb(interfaces[linktype], 1_000_000 * (i + 1), data) for i, (linktype, data) in enumerate(frames)]
    path.write_bytes(b"".join(blocks))
    return path


def _innermost(row: list[str]) -> tuple[str, int, str, int, int]:
    """The innermost flow and the STUN type of a tshark row: the last of each repeated field, from
    IPv6 when that is the last IP layer in ``frame.protocols`` (e.g. ``eth:ethertype:ip:ipv6:udp:stun``)."""
    protocols, ip_src, ip6_src, sport, ip_dst, ip6_dst, dport, stun_type = (value.split(",")[-1] for value in row)
    layers = protocols.split(":")
    six = "ipv6" in layers and ("ip" not in layers or layers[::-1].index("ipv6") < layers[::-1].index("ip"))
    return (ip6_src if six else ip_src, int(sport), ip6_dst if six else ip_dst, int(dport), int(stun_type, 16))


needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


@pytest.fixture(scope="module")
def tshark_rows(tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    """tshark run once on all the cases, with heuristics first as the project's crosscheck does."""
    path = _pcapng(tmp_path_factory.mktemp("tunnels") / "tunnels.pcapng", [(c.linktype, c.data) for c in CASES])
    return _tshark(path, "-o", "udp.try_heuristic_first:TRUE")


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_tshark_agrees_on_the_innermost_flow(index: int, tshark_rows: list[list[str]]) -> None:
    case = CASES[index]
    decoded = decode_frame(case.linktype, case.data)
    assert isinstance(decoded, Transport), decoded
    ours = (*_flow(decoded), int.from_bytes(decoded.payload[:2], "big"))
    assert _innermost(tshark_rows[index]) == ours


# ------------------------------------------------------------------ STUN on the tunnel ports


def _stun_to(port: int, payload: bytes = REQUEST) -> bytes:
    return raw(eth() / out6() / UDP(sport=50000, dport=port) / Raw(payload))


@pytest.mark.parametrize("port", UDP_TUNNEL_PORTS)
@pytest.mark.parametrize("payload", [REQUEST, channeldata(0x4800, REQUEST)], ids=["stun", "channeldata-i-flag"])
def test_stun_to_a_tunnel_port_stays_a_datagram(port: int, payload: bytes) -> None:
    decoded = decode_frame(1, _stun_to(port, payload))
    assert isinstance(decoded, Transport), decoded
    assert (decoded.dport, decoded.payload) == (port, payload)


@needs_tshark
@pytest.mark.tshark
def test_default_tshark_shows_stun_to_the_vxlan_port_as_vxlan(tmp_path: Path) -> None:
    """The row of docs/tshark-disagreements.md: the port table wins unless heuristics go first."""
    path = _pcapng(tmp_path / "stun-4789.pcapng", [(1, _stun_to(4789))])
    assert _tshark(path)[0][-1] == ""
    assert _tshark(path, "-o", "udp.try_heuristic_first:TRUE")[0][-1] == "0x0001"


# ------------------------------------------------------------- invalid, cut and deep tunnels

_INVALID = [
    ("gre-routing", eth() / out4() / GRE(routing_present=1, proto=0x0800) / INNER4, OTHER_PROTO),
    ("gre-version-1", eth() / out4() / GRE(version=1, proto=0x0800) / INNER4, OTHER_PROTO),
    ("gre-unknown-protocol", eth() / out4() / GRE(proto=0x0806) / INNER4, NON_IP),
    ("gre-cut-in-options", eth() / out4(proto=47) / b"\xb0\x00\x08\x00\x00\x00\x00\x00", MALFORMED),
    ("mpls-no-bottom", eth() / MPLS(s=0) / MPLS(s=0), MALFORMED),
    ("mpls-control-word", eth() / MPLS(s=1) / b"\x00\x00\x00\x00" / INNER4, NON_IP),
    ("pppoe-discovery", eth(type=0x8863) / PPPoE() / INNER4, NON_IP),
    ("pppoe-lcp", eth() / PPPoE() / PPP(proto=0xC021) / INNER4, NON_IP),
    ("pppoe-bad-version", eth() / PPPoE(version=2) / PPP(proto=0x21) / INNER4, MALFORMED),
    ("ipip-version-mismatch", eth() / out4() / IP(proto=4) / INNER6, MALFORMED),
]


@pytest.mark.parametrize(("frame", "expected"), [(f, e) for _, f, e in _INVALID], ids=[n for n, _, _ in _INVALID])
def test_invalid_tunnel_headers_give_a_stats_key(frame: Packet, expected: str) -> None:
    assert decode_frame(1, raw(frame)) == expected


_NOT_A_TUNNEL = [
    ("vxlan-without-i-flag", UDP(dport=4789) / VXLAN(flags=0) / eth() / INNER4),
    ("vxlan-carrying-arp", UDP(dport=4789) / VXLAN() / eth(type=0x0806) / INNER4),
    ("vxlan-inner-cut", UDP(dport=4789) / VXLAN() / raw(eth() / INNER4)[:30]),
    ("geneve-version-1", UDP(dport=6081) / b"\x40\x00\x65\x58\x00\x00\x2a\x00" / eth() / INNER4),
    ("geneve-options-past-end", UDP(dport=6081) / GENEVE(optionlen=63, proto=0x6558) / eth() / INNER4),
]


@pytest.mark.parametrize("datagram", [d for _, d in _NOT_A_TUNNEL], ids=[n for n, _ in _NOT_A_TUNNEL])
def test_a_tunnel_port_without_a_valid_tunnel_stays_a_datagram(datagram: Packet) -> None:
    decoded = decode_frame(1, raw(eth() / out4() / datagram))
    assert isinstance(decoded, Transport), decoded
    assert (decoded.src, decoded.payload) == (bytes([192, 0, 2, 1]), raw(datagram)[8:])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_cut_of_a_tunnelled_frame_decodes_without_a_traceback(case: Case) -> None:
    for cut in range(len(case.data)):
        decoded = decode_frame(case.linktype, case.data[:cut])
        assert isinstance(decoded, str | Transport), (cut, decoded)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CASES), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=6))
def test_mutated_tunnel_headers_never_raise(case: Case, changes: list[tuple[int, int]]) -> None:
    data = bytearray(case.data)
    for pos, value in changes:
        data[pos % min(len(data), 80)] = value  # the first 80 bytes: link and tunnel headers
    decode_frame(case.linktype, bytes(data), 0.0, FragmentTable(CaptureStats()))


_WRAPS: dict[str, Callable[[bytes], Packet]] = {  # an IPv4 packet in another one
    "ipip": lambda inner: out4(proto=4) / Raw(inner),
    "gre": lambda inner: out4() / GRE(proto=0x0800) / Raw(inner),
    "vxlan": lambda inner: out4() / UDP(dport=4789) / VXLAN() / eth(type=0x0800) / Raw(inner),
}


def _nested(wrap: Callable[[bytes], Packet], tunnels: int) -> bytes:
    packet = raw(INNER4)
    for _ in range(tunnels):
        packet = raw(wrap(packet))
    return raw(eth(type=0x0800) / Raw(packet))


@pytest.mark.parametrize("kind", _WRAPS)
def test_nesting_is_unwrapped_up_to_max_depth(kind: str) -> None:
    decoded = decode_frame(1, _nested(_WRAPS[kind], MAX_DEPTH))
    assert isinstance(decoded, Transport) and _flow(decoded) == IN4


@pytest.mark.parametrize("kind", _WRAPS)
@pytest.mark.parametrize("tunnels", [MAX_DEPTH + 1, 100])
def test_deeper_nesting_is_refused(kind: str, tunnels: int) -> None:
    decoded = decode_frame(1, _nested(_WRAPS[kind], tunnels))
    if kind == "vxlan":  # the deepest VXLAN datagram unwrapped stays a datagram
        assert isinstance(decoded, Transport) and decoded.dport == 4789
    else:
        assert decoded == MALFORMED


def test_fragmented_vxlan_is_reassembled_then_unwrapped() -> None:
    outer = out4() / UDP(sport=55555, dport=4789) / VXLAN(vni=42) / eth() / INNER4
    pieces = [raw(eth() / piece) for piece in fragment(outer, fragsize=64)]
    table = FragmentTable(CaptureStats())
    results = [decode_frame(1, piece, float(i), table) for i, piece in enumerate(pieces)]
    assert len(pieces) > 2 and results[:-1] == ["fragment"] * (len(pieces) - 1)
    assert isinstance(results[-1], Transport) and _flow(results[-1]) == IN4
    assert results[-1].payload == REQUEST


# ------------------------------------------------------------------- a real VXLAN on a veth

_OVERLAY = ("192.0.2.1", "192.0.2.2")  # documentation and benchmarking ranges, only ever inside
_UNDERLAY = ("198.18.0.1", "198.18.0.2")  # the two network namespaces this test creates
_VXLAN_TOOLS = ("ip", "dumpcap", "turnserver", "turnutils_stunclient")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)


@pytest.fixture
def vxlan_pair() -> Iterator[tuple[str, str]]:
    """Two network namespaces joined by a veth pair, each with a kernel VXLAN device (VNI 42,
    UDP 4789) over it; skips where the kernel or iproute2 cannot make them."""
    names = (f"stunscope-vx{os.getpid()}a", f"stunscope-vx{os.getpid()}b")
    created: list[str] = []
    try:
        try:
            for ns in names:
                _ip("netns", "add", ns)
                created.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", names[0], "link", "add", "vt0", "type", "veth", "peer", "name", "vt1", "netns", names[1])
            for ns, dev, side in ((names[0], "vt0", 0), (names[1], "vt1", 1)):
                _ip("-n", ns, "addr", "add", f"{_UNDERLAY[side]}/24", "dev", dev)
                _ip("-n", ns, "link", "set", dev, "up")
                _ip("-n", ns, "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789",
                    "local", _UNDERLAY[side], "remote", _UNDERLAY[1 - side], "dev", dev)
                _ip("-n", ns, "addr", "add", f"{_OVERLAY[side]}/24", "dev", "vx0")
                _ip("-n", ns, "link", "set", "vx0", "up")
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot build a veth/VXLAN pair here: {exc.stderr.strip()}")
        yield names
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def _udp_listening(ns: str, port: int) -> bool:
    """Whether a UDP socket of namespace ``ns`` is bound to ``port`` (its /proc/net/udp)."""
    table = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/udp"], capture_output=True, text=True, timeout=20)
    return any(line.split()[1].endswith(f":{port:04X}") for line in table.stdout.splitlines()[1:])


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


@pytest.mark.slow
@pytest.mark.live
@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI runs as root)")
@pytest.mark.skipif(any(shutil.which(tool) is None for tool in _VXLAN_TOOLS), reason="needs iproute2, dumpcap, coturn")
def test_a_real_vxlan_capture_of_coturn(vxlan_pair: tuple[str, str], tmp_path: Path) -> None:
    """turnutils_stunclient asks coturn across the kernel's VXLAN; dumpcap records the underlay."""
    client_ns, server_ns = vxlan_pair
    capture = tmp_path / "vxlan.pcapng"
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "turnserver", "-n", f"--listening-ip={_OVERLAY[1]}",
                               "--listening-port=3478", "--no-tls", "--no-dtls", "--no-cli",
                               f"--pidfile={tmp_path / 'turnserver.pid'}", "--log-file=stdout"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    dumpcap = subprocess.Popen(["ip", "netns", "exec", client_ns, "dumpcap", "-i", "vt0", "-f", "udp port 4789",
                                "-w", str(capture)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert dumpcap.stderr is not None
        while "Capturing on" not in dumpcap.stderr.readline():
            assert dumpcap.poll() is None, "dumpcap exited"
        time.sleep(1.0)  # dumpcap says it is capturing a moment before it is
        for _ in range(100):  # coturn listens within a second or two
            if _udp_listening(server_ns, 3478) or server.poll() is not None:
                break
            time.sleep(0.1)
        client = subprocess.run(["ip", "netns", "exec", client_ns, "turnutils_stunclient", _OVERLAY[1]],
                                capture_output=True, text=True, timeout=30)  # it waits for its answer
        assert "reflexive addr" in client.stdout + client.stderr, client.stdout + client.stderr
        time.sleep(1.0)  # let dumpcap write the last packets before it is stopped
    finally:
        _stop(dumpcap)
        _stop(server)
    ours = []
    for record in read_records(capture):
        decoded = decode_frame(record.linktype, record.data)
        if isinstance(decoded, Transport) and 3478 in (decoded.sport, decoded.dport):
            ours.append((*_flow(decoded), int.from_bytes(decoded.payload[:2], "big")))
    requests = [m for m in ours if m[4] == 0x0001]
    responses = [m for m in ours if m[4] == 0x0101]
    assert requests and responses, ours
    assert {(m[0], m[2], m[3]) for m in requests} == {(_OVERLAY[0], _OVERLAY[1], 3478)}
    assert {(m[0], m[1], m[2]) for m in responses} == {(_OVERLAY[1], 3478, _OVERLAY[0])}
    if shutil.which("tshark") is not None:
        theirs = [_innermost(row) for row in _tshark(capture, "-o", "udp.try_heuristic_first:TRUE", "-Y", "stun")]
        assert theirs == ours
