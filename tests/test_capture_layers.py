"""decode_frame: link layers, IPv4/IPv6, fragments, UDP/TCP, ICMP quotes, malformed frames."""

from __future__ import annotations

import struct

import pytest
from scapy.all import (
    ICMP,
    IP,
    TCP,
    UDP,
    CookedLinux,
    Dot1AD,
    Dot1Q,
    Ether,
    ICMPv6DestUnreach,
    ICMPv6PacketTooBig,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPOption_RR,
    IPv6ExtHdrRouting,
    fragment,
    fragment6,
    raw,
)
from scapy.layers.l2 import CookedLinuxV2
from test_capture_support import stun

from stunscope.capture.fragments import FragmentTable
from stunscope.capture.layers import (
    FRAGMENT,
    MALFORMED,
    NON_IP,
    UNSUPPORTED_LINK,
    IcmpQuote,
    Transport,
    decode_frame,
)
from stunscope.capture.stats import CaptureStats

A4 = bytes([10, 0, 0, 1])
B4 = bytes([192, 0, 2, 7])
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")
PAYLOAD = stun()
UDP4 = IP(src="10.0.0.1", dst="192.0.2.7") / UDP(sport=5000, dport=3478) / PAYLOAD
UDP6 = IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5000, dport=3478) / PAYLOAD


def _udp(result: object, src: bytes = A4, dst: bytes = B4) -> None:
    assert result == Transport(17, src, dst, 5000, 3478, PAYLOAD, 0, 0)


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        (1, Ether() / UDP4),
        (1, Ether() / Dot1Q(vlan=7) / UDP4),
        (1, Ether() / Dot1AD(vlan=1) / Dot1Q(vlan=7) / UDP4),  # QinQ 0x88a8
        (1, Ether(type=0x9100) / Dot1Q(vlan=1) / Dot1Q(vlan=7) / UDP4),  # old QinQ 0x9100
        (113, CookedLinux() / UDP4),
        (276, CookedLinuxV2() / UDP4),
        (101, UDP4),
        (12, UDP4),
        (14, UDP4),
        (228, UDP4),
    ],
)
def test_link_layers_reach_the_udp_payload(linktype: int, frame: object) -> None:
    _udp(decode_frame(linktype, raw(frame)))


@pytest.mark.parametrize("linktype", [0, 108])
@pytest.mark.parametrize("family", [struct.pack("<I", 2), struct.pack(">I", 2)])
def test_bsd_null_and_loop_in_either_byte_order(linktype: int, family: bytes) -> None:
    _udp(decode_frame(linktype, family + raw(UDP4)))


@pytest.mark.parametrize("family", [10, 24, 28, 30])
def test_bsd_null_ipv6_families(family: int) -> None:
    _udp(decode_frame(0, struct.pack("<I", family) + raw(UDP6)), A6, B6)


@pytest.mark.parametrize("linktype", [1, 229, 101])
def test_ipv6(linktype: int) -> None:
    frame = raw(Ether() / UDP6) if linktype == 1 else raw(UDP6)
    _udp(decode_frame(linktype, frame), A6, B6)


def test_ipv6_extension_headers_are_skipped() -> None:
    packet = (
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting()
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrFragment(offset=0, m=0)  # atomic fragment, RFC 6946
        / UDP(sport=5000, dport=3478)
        / PAYLOAD
    )
    _udp(decode_frame(229, raw(packet)), A6, B6)


def test_ipv4_options_take_the_general_path() -> None:
    with_options = IP(src="10.0.0.1", dst="192.0.2.7", options=[IPOption_RR()]) / UDP(sport=5000, dport=3478) / PAYLOAD
    _udp(decode_frame(1, raw(Ether() / with_options)))


def test_ethernet_padding_is_trimmed_by_ip_and_udp_lengths() -> None:
    short = IP(src="10.0.0.1", dst="192.0.2.7") / UDP(sport=5000, dport=3478) / b"x"
    result = decode_frame(1, raw(Ether() / short) + b"\x00" * 20)
    assert isinstance(result, Transport) and result.payload == b"x"


def test_tcp_fields() -> None:
    packet = IP(src="10.0.0.1", dst="192.0.2.7") / TCP(sport=5000, dport=3478, seq=4242, flags="PA") / PAYLOAD
    result = decode_frame(101, raw(packet))
    assert result == Transport(6, A4, B4, 5000, 3478, PAYLOAD, 4242, 0x18)


def test_ipv4_fragments_out_of_order_are_reassembled() -> None:
    big = IP(src="10.0.0.1", dst="192.0.2.7", id=99) / UDP(sport=5000, dport=3478) / stun(attrs=[(0x8022, b"s" * 600)])
    pieces = [raw(p) for p in fragment(big, fragsize=208)]
    assert len(pieces) == 4
    stats = CaptureStats()
    table = FragmentTable(stats)
    assert decode_frame(101, pieces[3], 1.0, table) == FRAGMENT
    assert decode_frame(101, pieces[0], 1.1, table) == FRAGMENT
    assert decode_frame(101, pieces[2], 1.1, table) == FRAGMENT
    assert decode_frame(101, pieces[2], 1.1, table) == FRAGMENT  # a duplicate
    result = decode_frame(101, pieces[1], 1.2, table)
    assert isinstance(result, Transport) and result.payload == raw(big)[28:]
    assert (stats.fragments, stats.reassembled, len(table)) == (5, 1, 0)


def test_fragments_without_a_table_are_reported() -> None:
    big = IP(src="10.0.0.1", dst="192.0.2.7") / UDP() / (b"x" * 100)
    assert decode_frame(101, raw(fragment(big, fragsize=64)[0])) == FRAGMENT


def test_ipv6_fragments_with_extension_headers_are_reassembled() -> None:
    big = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=5) / UDP(sport=5000, dport=3478) / stun(attrs=[(0x8022, b"v" * 1400)])
    pieces = [raw(p) for p in fragment6(big, 600)]
    assert len(pieces) == 3
    table = FragmentTable(CaptureStats())
    assert [decode_frame(229, p, 0.0, table) for p in reversed(pieces[1:])] == [FRAGMENT, FRAGMENT]
    result = decode_frame(229, pieces[0], 0.0, table)
    assert isinstance(result, Transport) and result.payload == stun(attrs=[(0x8022, b"v" * 1400)])


def test_fragment_table_is_bounded_and_expires_by_packet_time() -> None:
    stats = CaptureStats()
    table = FragmentTable(stats, max_datagrams=2, timeout_s=10.0)
    for ident in range(3):
        table.add(("a", ident), 8, True, b"x" * 8, 17, 0.0)
    assert len(table) == 2 and stats.fragment_evictions == 1
    table.add(("b", 0), 8, True, b"x" * 8, 17, 20.0)
    assert len(table) == 1 and stats.fragment_timeouts == 2


def test_overlapping_and_oversized_fragments() -> None:
    table = FragmentTable(CaptureStats())
    assert table.add("k", 0, True, b"aaaaaaaa", 17, 0.0) is None
    assert table.add("k", 8, False, b"bbbbbbbb", 17, 0.0) == (17, b"aaaaaaaabbbbbbbb")
    assert table.add("big", 65528, False, b"x" * 16, 17, 0.0) is None
    assert len(table) == 0


def test_icmp_port_unreachable_quotes_the_original_flow() -> None:
    quoted = raw(IP(src="10.0.0.1", dst="192.0.2.7") / UDP(sport=5000, dport=3478) / PAYLOAD)
    error = IP(src="192.0.2.7", dst="10.0.0.1") / ICMP(type=3, code=3) / quoted
    assert decode_frame(101, raw(error)) == IcmpQuote(B4, "port-unreachable", 17, A4, B4, 5000, 3478)


def test_icmp_quote_cut_after_the_ports_still_gives_the_flow() -> None:
    quoted = raw(IP(src="10.0.0.1", dst="192.0.2.7") / TCP(sport=5000, dport=443))[:24]
    error = IP(src="198.51.100.1", dst="10.0.0.1") / ICMP(type=11, code=0) / quoted
    result = decode_frame(101, raw(error))
    assert isinstance(result, IcmpQuote) and (result.icmp, result.proto, result.sport) == ("ttl-exceeded", 6, 5000)


@pytest.mark.parametrize(
    ("icmp", "name"), [(ICMPv6DestUnreach(code=4), "port-unreachable"), (ICMPv6PacketTooBig(mtu=1280), "packet-too-big")]
)
def test_icmpv6_errors(icmp: object, name: str) -> None:
    quoted = raw(UDP6)
    error = IPv6(src="2001:db8::2", dst="2001:db8::1") / icmp / quoted
    assert decode_frame(229, raw(error)) == IcmpQuote(B6, name, 17, A6, B6, 5000, 3478)


def test_icmp_echo_is_not_a_quote() -> None:
    assert decode_frame(101, raw(IP() / ICMP(type=8) / b"ping")) == "icmp"


@pytest.mark.parametrize(
    ("linktype", "data", "expected"),
    [
        (1, b"", MALFORMED),
        (1, b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28, NON_IP),  # ARP
        (1, b"\x00" * 12 + b"\x81\x00\x00", MALFORMED),  # cut VLAN tag
        (1, raw(Ether() / UDP4)[:30], MALFORMED),  # cut IPv4 header
        (101, b"\x45" + b"\x00" * 18, MALFORMED),  # header cut
        (101, raw(UDP4)[:24], MALFORMED),  # cut UDP header
        (229, raw(UDP6)[:30], MALFORMED),
        (101, b"\x30", NON_IP),  # IP version 3
        (101, raw(IP(proto=47) / b"gre!"), "other-ip-proto"),
        (0, b"\x07\x00\x00\x00" + raw(UDP4), NON_IP),
        (147, raw(UDP4), UNSUPPORTED_LINK),
    ],
)
def test_malformed_and_other_frames_are_named(linktype: int, data: bytes, expected: str) -> None:
    assert decode_frame(linktype, data) == expected


def test_fragment_table_bounds_the_bytes_it_holds() -> None:
    stats = CaptureStats()
    table = FragmentTable(stats, max_bytes=1000)
    for ident in range(5):
        table.add(("a", ident), 0, True, b"x" * 400, 17, 0.0)
    assert len(table) == 2 and stats.fragment_evictions == 3
    assert table.add(("a", 4), 400, False, b"y" * 8, 17, 0.0) == (17, b"x" * 400 + b"y" * 8)


def test_ipv4_total_length_zero_is_segmentation_offload() -> None:
    packet = bytearray(raw(IP(src="10.0.0.1", dst="192.0.2.7") / TCP(sport=5000, dport=3478, seq=1) / PAYLOAD))
    packet[2:4] = b"\x00\x00"  # as captured on a sender with TSO
    result = decode_frame(101, bytes(packet))
    assert isinstance(result, Transport) and result.payload == PAYLOAD


@pytest.mark.parametrize(
    ("linktype", "head"),
    [(113, b"\x00" * 14 + b"\x86\xdd"), (276, b"\x86\xdd" + b"\x00" * 18)],
)
def test_cooked_linux_ipv6_takes_the_general_path(linktype: int, head: bytes) -> None:
    _udp(decode_frame(linktype, head + raw(UDP6)), A6, B6)


@pytest.mark.parametrize(("linktype", "data"), [(113, b"\x00" * 15), (276, b"\x86\xdd" + b"\x00" * 10), (0, b"\x02\x00")])
def test_cut_cooked_and_null_headers_are_malformed(linktype: int, data: bytes) -> None:
    assert decode_frame(linktype, data) == MALFORMED


def test_ipv6_authentication_header_is_skipped() -> None:
    ah = bytes([17, 4]) + b"\x00" * 22  # next header UDP, length (4 + 2) * 4 = 24 bytes (RFC 4302)
    udp = raw(UDP(sport=5000, dport=3478) / PAYLOAD)
    header = raw(IPv6(src="2001:db8::1", dst="2001:db8::2", nh=51, plen=len(ah) + len(udp)))
    _udp(decode_frame(229, header + ah + udp), A6, B6)


def test_ipv6_fragment_without_a_table_is_reported() -> None:
    packet = IPv6() / IPv6ExtHdrFragment(m=1) / UDP() / PAYLOAD
    assert decode_frame(229, raw(packet)) == FRAGMENT


def test_icmpv6_quote_through_extension_headers() -> None:
    quoted = raw(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrDestOpt() / UDP(sport=5000, dport=3478) / PAYLOAD)
    error = IPv6(src="2001:db8::2", dst="2001:db8::1") / ICMPv6DestUnreach(code=3) / quoted
    assert decode_frame(229, raw(error)) == IcmpQuote(B6, "address-unreachable", 17, A6, B6, 5000, 3478)


@pytest.mark.parametrize(
    "quoted",
    [
        raw(IP(frag=10) / UDP() / PAYLOAD),  # a later fragment: no ports in it
        raw(IP(proto=47) / (b"\x00" * 8)),  # not UDP/TCP
        raw(IP() / UDP())[:22],  # cut inside the ports
        b"\x70" + b"\x00" * 30,  # IP version 7
        raw(IPv6() / IPv6ExtHdrFragment(offset=5) / UDP()),  # a later IPv6 fragment
    ],
)
def test_icmp_quotes_without_a_flow_are_plain_icmp(quoted: bytes) -> None:
    assert decode_frame(101, raw(IP(src="192.0.2.7") / ICMP(type=3, code=1) / quoted)) == "icmp"
