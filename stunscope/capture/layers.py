"""Unwrap a captured frame down to its UDP datagram, TCP segment or ICMP error quote.

Link layers (tcpdump.org LINKTYPE_ values): Ethernet (1) with IEEE 802.1Q VLAN tags and QinQ
(0x8100, 0x88a8, 0x9100); Linux cooked SLL (113) and SLL2 (276); raw IP (101, and the historical
12 and 14); LINKTYPE_IPV4 (228) and LINKTYPE_IPV6 (229); BSD null (0, family in the capturing
host's byte order) and OpenBSD loop (108, network order); PPP (9, RFC 1661 §2, with or without
the RFC 1662 §3.1 address and control bytes), PPP_HDLC (50: RFC 1662 or Cisco HDLC) and Cisco
HDLC (104).

Network and transport: IPv4 (RFC 791) with fragment reassembly (RFC 815) through an optional
:class:`~stunscope.capture.fragments.FragmentTable`; IPv6 (RFC 8200 §4) with its extension
headers skipped and the Fragment header reassembled; UDP (RFC 768), whose length field trims
Ethernet padding; TCP (RFC 9293 §3.1: sequence number, flags, data offset); ICMP (RFC 792) and
ICMPv6 (RFC 4443) errors, whose quoted datagram gives the original flow.

Encapsulations, unwrapped to the innermost IP packet, whose addresses and ports the result
carries: PPPoE sessions (ethertype 0x8864, RFC 2516 §4 and §7) carrying PPP IPv4 or IPv6; MPLS
(0x8847, 0x8848; RFC 3032 §2.1) whose label stack is popped down to the bottom-of-stack entry,
the payload taken as IPv4 or IPv6 by its version nibble as tshark does without a control word;
IP in IP (IP protocol 4, RFC 2003; 41, RFC 4213 §3.5) in IPv4 and IPv6; GRE (protocol 47,
RFC 2784 §2 with the RFC 2890 §2 key and sequence number) carrying IPv4, IPv6, MPLS, transparent
Ethernet bridging (0x6558) or ERSPAN type I/II (0x88be, the latter's 8-byte header skipped) to
an Ethernet frame; VXLAN (UDP destination port 4789, RFC 7348 §5) and GENEVE (6081, RFC 8926
§3.4, after its options). A UDP datagram to those ports is unwrapped only when its header is
valid and the inner frame is IPv4 or IPv6; any other datagram stays a datagram, since STUN may
run on any port. At most :data:`MAX_DEPTH` tunnels are unwrapped in one frame: a deeper IP in
IP or GRE packet is ``malformed``, a deeper VXLAN/GENEVE datagram stays a datagram.

The result is a :class:`Transport`, an :class:`IcmpQuote`, or a short string saying why the frame
carries neither (a stats key). Nothing here raises on bad bytes. Ethernet/IPv4/UDP is tested first.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from stunscope.capture.fragments import FragmentTable
from stunscope.capture.records import new

UDP = 17
TCP = 6
_ICMP = 1
_ICMPV6 = 58

NON_IP = "non-ip"
MALFORMED = "malformed"
FRAGMENT = "fragment"
ICMP = "icmp"
OTHER_PROTO = "other-ip-proto"
UNSUPPORTED_LINK = "unsupported-link"


class Transport(NamedTuple):
    """A UDP datagram or TCP segment: ``proto`` 17 or 6, raw 4- or 16-byte addresses, ports,
    the payload, and for TCP the sequence number and flags (RFC 9293 §3.1; 0 for UDP)."""

    proto: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    payload: bytes
    seq: int
    flags: int


class IcmpQuote(NamedTuple):
    """An ICMP/ICMPv6 error (``icmp`` e.g. ``port-unreachable``) sent by ``reporter`` about the
    quoted datagram of protocol ``proto`` from ``src:sport`` to ``dst:dport``."""

    reporter: bytes
    icmp: str
    proto: int
    src: bytes
    dst: bytes
    sport: int
    dport: int


Decoded = Transport | IcmpQuote | str

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04

_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_NULL_IPV4 = (2,)
_NULL_IPV6 = (10, 24, 28, 30)  # AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS
_IPV6_EXTENSIONS = (0, 43, 60, 51, 135, 139, 140)  # RFC 8200 §4.1 (+ AH, mobility, HIP, shim6)
_IPV6_FRAGMENT = 44
_ETH_PPPOE = 0x8864  # PPPoE session stage (RFC 2516 §4)
_ETH_MPLS = (0x8847, 0x8848)  # MPLS unicast, multicast (RFC 5332 §3)
_ETH_TEB = 0x6558  # transparent Ethernet bridging: an Ethernet frame follows
_ETH_ERSPAN = 0x88BE  # ERSPAN type I (no GRE sequence number) or II (8-byte header)
_PPP_PROTOCOLS = {0x0021: _ETH_IPV4, 0x0057: _ETH_IPV6}  # RFC 1332 §2, RFC 5072 §3
_IP_IN_IP = 4  # RFC 2003 §3
_IPV6_IN_IP = 41  # RFC 4213 §3.5, RFC 2473 §5
_GRE = 47
UDP_TUNNEL_PORTS = (4789, 6081)
"""UDP destination ports of VXLAN (RFC 7348 §5) and GENEVE (RFC 8926 §3.3): a fast path for
Ethernet/IPv4/UDP must leave datagrams to these ports to :func:`decode_frame` (inlined there)."""
MAX_DEPTH = 4
"""Tunnels unwrapped in one frame at most, so that crafted nesting stays cheap and bounded."""
_NOT_TUNNELLED = (NON_IP, MALFORMED)

_IPV4_UDP = "BxH2xHxB2x4s4sHHH"  # IPv4 version/IHL, total length, flags+offset, protocol, addresses; UDP
_FAST_UDP4 = {
    1: (struct.Struct("!12xH" + _IPV4_UDP).unpack_from, 14, (_ETH_IPV4,)),
    113: (struct.Struct("!14xH" + _IPV4_UDP).unpack_from, 16, (_ETH_IPV4,)),
    276: (struct.Struct("!H18x" + _IPV4_UDP).unpack_from, 20, (_ETH_IPV4,)),
    0: (struct.Struct("!I" + _IPV4_UDP).unpack_from, 4, (2, 0x02000000)),
    108: (struct.Struct("!I" + _IPV4_UDP).unpack_from, 4, (2, 0x02000000)),
    101: (struct.Struct("!0s" + _IPV4_UDP).unpack_from, 0, (b"",)),  # raw IP: no link tag
    228: (struct.Struct("!0s" + _IPV4_UDP).unpack_from, 0, (b"",)),
}
"""Link type -> (unpack of link tag + IPv4 + UDP headers, IP offset, tags meaning IPv4)."""
FAST_UDP4 = _FAST_UDP4
"""The same table for :mod:`stunscope.capture.stream`, which inlines this fast path."""
_UDP_HEAD = struct.Struct("!HHH").unpack_from
_TCP_HEAD = struct.Struct("!HHIIH").unpack_from
_PORTS = struct.Struct("!HH").unpack_from
_U16 = struct.Struct("!H").unpack_from

_ICMP_ERRORS = {
    (3, 0): "net-unreachable",
    (3, 1): "host-unreachable",
    (3, 2): "protocol-unreachable",
    (3, 3): "port-unreachable",
    (3, 4): "fragmentation-needed",
    (3, 5): "source-route-failed",
    (3, 9): "net-prohibited",
    (3, 10): "host-prohibited",
    (3, 13): "admin-prohibited",
    (11, 0): "ttl-exceeded",
    (11, 1): "reassembly-time-exceeded",
    (12, 0): "parameter-problem",
}
"""RFC 792 (type, code) of the errors that quote a datagram; other codes of the same types are
named ``<type name>-<code>`` by :func:`_icmp_name`."""
_ICMP_TYPES = {3: "unreachable", 11: "time-exceeded", 12: "parameter-problem"}

_ICMPV6_ERRORS = {
    (1, 0): "no-route",
    (1, 1): "admin-prohibited",
    (1, 2): "beyond-scope",
    (1, 3): "address-unreachable",
    (1, 4): "port-unreachable",
    (1, 5): "source-policy-failed",
    (1, 6): "reject-route",
    (2, 0): "packet-too-big",
    (3, 0): "hop-limit-exceeded",
    (3, 1): "reassembly-time-exceeded",
}
"""RFC 4443 §3 (type, code) of ICMPv6 errors."""
_ICMPV6_TYPES = {1: "unreachable", 2: "packet-too-big", 3: "time-exceeded", 4: "parameter-problem"}


def decode_frame(
    linktype: int, data: bytes, ts: float = 0.0, fragments: FragmentTable | None = None
) -> Decoded:
    """Unwrap one frame of the given link type (see the module doc).

    IP fragments are reassembled in ``fragments`` (``ts`` is their clock); without a table, or
    while a datagram is incomplete, the result is ``"fragment"``.
    """
    fast = _FAST_UDP4.get(linktype)
    if fast is not None:  # the common case in one unpack: unfragmented IPv4 without options + UDP
        unpack, ip, tags = fast
        size = len(data)
        if size >= ip + 28:
            tag, vihl, total, frag, proto, src, dst, sport, dport, length = unpack(data)
            if vihl == 0x45 and proto == UDP and tag in tags and not frag & 0x3FFF:
                if 8 <= length <= total - 20 and ip + total <= size and dport not in UDP_TUNNEL_PORTS:
                    return new(Transport, (UDP, src, dst, sport, dport, data[ip + 28 : ip + 20 + length], 0, 0))
    if linktype == 1:
        return _ethernet(data, 0, ts, fragments, 0)
    if linktype == 113:  # Linux cooked SLL: protocol type at bytes 14-15
        if len(data) < 16:
            return MALFORMED
        etype = (data[14] << 8) | data[15]
        off = 16
    elif linktype == 276:  # Linux cooked SLL2: protocol type at bytes 0-1, 20-byte header
        if len(data) < 20:
            return MALFORMED
        etype = (data[0] << 8) | data[1]
        off = 20
    elif linktype in (101, 12, 14, 228, 229):
        if not data:
            return MALFORMED
        version = data[0] >> 4
        etype = _ETH_IPV4 if version == 4 else _ETH_IPV6 if version == 6 else 0
        off = 0
    elif linktype in (0, 108):
        if len(data) < 4:
            return MALFORMED
        family_le = data[0] | (data[1] << 8)
        family_be = (data[2] << 8) | data[3]
        if family_le in _NULL_IPV4 or family_be in _NULL_IPV4:
            etype = _ETH_IPV4
        elif family_le in _NULL_IPV6 or family_be in _NULL_IPV6:
            etype = _ETH_IPV6
        else:
            return NON_IP
        off = 4
    elif linktype == 9 or (linktype == 50 and data[:1] == b"\xff"):  # PPP (RFC 1662 §3.1 framing)
        return _ppp(data, 2 if data[:2] == b"\xff\x03" else 0, ts, fragments, 0)
    elif linktype in (50, 104):  # Cisco HDLC (RFC 1547 §4.3.1): address, control, ethertype
        if len(data) < 4:
            return MALFORMED
        etype = (data[2] << 8) | data[3]
        off = 4
    else:
        return UNSUPPORTED_LINK
    if etype == _ETH_IPV4:
        return _ipv4(data, off, ts, fragments, 0)
    if etype == _ETH_IPV6:
        return _ipv6(data, off, ts, fragments, 0)
    return _network(etype, data, off, ts, fragments, 0)


def _ethernet(data: bytes, off: int, ts: float, fragments: FragmentTable | None, depth: int) -> Decoded:
    """An Ethernet II header (IEEE 802.3 §3.2.6) at ``off`` with any 802.1Q/802.1ad tags."""
    if len(data) < off + 14:
        return MALFORMED
    etype = (data[off + 12] << 8) | data[off + 13]
    off += 14
    while etype in _VLAN_TAGS:
        if len(data) < off + 4:
            return MALFORMED
        etype = (data[off + 2] << 8) | data[off + 3]
        off += 4
    if etype == _ETH_IPV4:
        return _ipv4(data, off, ts, fragments, depth)
    if etype == _ETH_IPV6:
        return _ipv6(data, off, ts, fragments, depth)
    return _network(etype, data, off, ts, fragments, depth)


def _network(etype: int, data: bytes, off: int, ts: float, fragments: FragmentTable | None, depth: int) -> Decoded:
    """The packet of ethertype ``etype`` at ``off``: IPv4, IPv6, or a PPPoE session (RFC 2516 §4:
    version and type 0x11, code 0, session id, length, then PPP) or an MPLS label stack (RFC 3032
    §2.1: 4-byte entries down to the one with the bottom-of-stack bit) in front of one."""
    if etype == _ETH_IPV4:
        return _ipv4(data, off, ts, fragments, depth)
    if etype == _ETH_IPV6:
        return _ipv6(data, off, ts, fragments, depth)
    if etype == _ETH_PPPOE:
        if len(data) < off + 6 or data[off] != 0x11 or data[off + 1]:
            return MALFORMED
        return _ppp(data, off + 6, ts, fragments, depth)
    if etype in _ETH_MPLS:
        while True:
            if len(data) < off + 4:
                return MALFORMED
            off += 4
            if data[off - 2] & 1:
                break
        version = data[off] >> 4 if off < len(data) else 0  # no control word: the IP version
        if version == 4:
            return _ipv4(data, off, ts, fragments, depth)
        if version == 6:
            return _ipv6(data, off, ts, fragments, depth)
    return NON_IP


def _ppp(data: bytes, off: int, ts: float, fragments: FragmentTable | None, depth: int) -> Decoded:
    """A PPP packet (RFC 1661 §2) at ``off``: its protocol field is 2 bytes, or 1 when compressed
    (§6.5: an odd first byte); IPv4 and IPv6 are unwrapped."""
    if len(data) < off + 2:
        return MALFORMED
    if data[off] & 1:
        protocol, off = data[off], off + 1
    else:
        protocol, off = (data[off] << 8) | data[off + 1], off + 2
    return _network(_PPP_PROTOCOLS.get(protocol, 0), data, off, ts, fragments, depth)


def _gre(data: bytes, ts: float, fragments: FragmentTable | None, depth: int) -> Decoded:
    """A GRE packet (RFC 2784 §2.1): flags and version 0, protocol type, then a checksum word
    (C), key (K) and sequence number (S, RFC 2890 §2) when flagged. RFC 1701 source routing is
    not unwrapped (RFC 2784 §2.3 lets a receiver discard it), nor PPTP's version 1."""
    if len(data) < 4:
        return MALFORMED
    flags = data[0]
    if flags & 0x40 or data[1] & 7:
        return OTHER_PROTO
    ptype = (data[2] << 8) | data[3]
    off = 4 + 4 * ((flags >> 7) + (flags >> 5 & 1) + (flags >> 4 & 1))
    if off > len(data):
        return MALFORMED
    if ptype == _ETH_ERSPAN:  # type II has an 8-byte header and a GRE sequence number
        return _ethernet(data, off + 8 if flags & 0x10 else off, ts, fragments, depth)
    return _tunnelled(ptype, data, off, ts, fragments, depth)


def _tunnelled(ptype: int, data: bytes, off: int, ts: float, fragments: FragmentTable | None, depth: int) -> Decoded:
    """The payload of a GRE or GENEVE header of protocol type ``ptype``: an Ethernet frame
    (transparent Ethernet bridging) or a packet of that ethertype."""
    if ptype == _ETH_TEB:
        return _ethernet(data, off, ts, fragments, depth)
    return _network(ptype, data, off, ts, fragments, depth)


def _udp_tunnel(port: int, data: bytes, ts: float, fragments: FragmentTable | None, depth: int) -> Decoded:
    """The frame in a VXLAN datagram (RFC 7348 §5: flags with the I bit, VNI, 8 bytes in all, then
    Ethernet) or a GENEVE one (RFC 8926 §3.4: version 0, options length in 4-byte words, protocol
    type, VNI, then the options)."""
    if len(data) < 8:
        return MALFORMED
    if port == 4789:
        return _ethernet(data, 8, ts, fragments, depth) if data[0] & 0x08 else NON_IP
    if data[0] >> 6:
        return NON_IP
    return _tunnelled((data[2] << 8) | data[3], data, 8 + (data[0] & 0x3F) * 4, ts, fragments, depth)


def _ipv4(data: bytes, off: int, ts: float, fragments: FragmentTable | None, depth: int) -> Decoded:
    """IPv4 header (RFC 791 §3.1): trim to the total length, reassemble fragments. A total length
    of 0 is what a sender with TCP segmentation offload captures: the frame's length is used."""
    if len(data) < off + 20:
        return MALFORMED
    vihl = data[off]
    ihl = (vihl & 15) * 4
    total = ((data[off + 2] << 8) | data[off + 3]) or len(data) - off
    if vihl >> 4 != 4 or ihl < 20 or total < ihl or len(data) < off + ihl:
        return MALFORMED
    end = min(off + total, len(data))
    proto = data[off + 9]
    src = data[off + 12 : off + 16]
    dst = data[off + 16 : off + 20]
    frag = ((data[off + 6] << 8) | data[off + 7]) & 0x3FFF
    if frag:  # More Fragments set or a non-zero offset
        if fragments is None:
            return FRAGMENT
        key = (src, dst, data[off + 4 : off + 6], proto)
        whole = fragments.add(key, (frag & 0x1FFF) * 8, bool(frag & 0x2000), data[off + ihl : end], proto, ts)
        if whole is None:
            return FRAGMENT
        return _transport(proto, src, dst, whole[1], 0, len(whole[1]), ts, fragments, depth)
    return _transport(proto, src, dst, data, off + ihl, end, ts, fragments, depth)


def _ipv6(data: bytes, off: int, ts: float, fragments: FragmentTable | None, depth: int) -> Decoded:
    """IPv6 header (RFC 8200 §3) and extension headers (§4), with Fragment reassembly (§4.5)."""
    if len(data) < off + 40 or data[off] >> 4 != 6:
        return MALFORMED
    plen = (data[off + 4] << 8) | data[off + 5]
    nh = data[off + 6]
    src = data[off + 8 : off + 24]
    dst = data[off + 24 : off + 40]
    off += 40
    end = min(off + plen, len(data)) if plen else len(data)  # 0: jumbo payload (RFC 2675)
    while nh in _IPV6_EXTENSIONS or nh == _IPV6_FRAGMENT:
        if off + 8 > end:
            return MALFORMED
        if nh == _IPV6_FRAGMENT:
            word = (data[off + 2] << 8) | data[off + 3]
            offset = word & 0xFFF8
            more = bool(word & 1)
            if offset or more:  # else an atomic fragment (RFC 6946): just a header to skip
                if fragments is None:
                    return FRAGMENT
                key = (src, dst, data[off + 4 : off + 8])
                whole = fragments.add(key, offset, more, data[off + 8 : end], data[off], ts)
                if whole is None:
                    return FRAGMENT
                nh, data = whole
                off, end = 0, len(data)
                continue
        nh, off = data[off], off + _extension_length(nh, data, off)
    if off > end:
        return MALFORMED
    return _transport(nh, src, dst, data, off, end, ts, fragments, depth)


def _extension_length(nh: int, data: bytes, off: int) -> int:
    """Length of the IPv6 extension header of type ``nh`` at ``off`` (RFC 8200 §4.3-§4.6: in
    8-byte units not counting the first; Fragment is 8 bytes; AH counts 4-byte units minus 2,
    RFC 4302 §2.2)."""
    if nh == _IPV6_FRAGMENT:
        return 8
    if nh == 51:
        return (data[off + 1] + 2) * 4
    return (data[off + 1] + 1) * 8


def _transport(
    proto: int,
    src: bytes,
    dst: bytes,
    data: bytes,
    off: int,
    end: int,
    ts: float,
    fragments: FragmentTable | None,
    depth: int,
) -> Decoded:
    """UDP (RFC 768), TCP (RFC 9293 §3.1), an ICMP/ICMPv6 error or a tunnel in ``data[off:end]``;
    ``depth`` counts the tunnels already unwrapped."""
    if proto == UDP:
        if end - off < 8:
            return MALFORMED
        sport, dport, length = _UDP_HEAD(data, off)
        if 8 <= length <= end - off:
            end = off + length  # drops link-layer padding; a longer length means snap-cut
        if dport in UDP_TUNNEL_PORTS and depth < MAX_DEPTH:
            inner = _udp_tunnel(dport, data[off + 8 : end], ts, fragments, depth + 1)
            if inner not in _NOT_TUNNELLED:
                return inner
        return new(Transport, (UDP, src, dst, sport, dport, data[off + 8 : end], 0, 0))
    if proto == TCP:
        if end - off < 20:
            return MALFORMED
        sport, dport, seq, _ack, word = _TCP_HEAD(data, off)
        header = (word >> 12) * 4
        if header < 20 or off + header > end:
            return MALFORMED
        return Transport(TCP, src, dst, sport, dport, data[off + header : end], seq, word & 0x1FF)
    if proto == _ICMP:
        return _icmp_quote(data, off, end, src, _ICMP_ERRORS, _ICMP_TYPES)
    if proto == _ICMPV6:
        return _icmp_quote(data, off, end, src, _ICMPV6_ERRORS, _ICMPV6_TYPES)
    if proto == _IP_IN_IP or proto == _IPV6_IN_IP or proto == _GRE:
        if depth >= MAX_DEPTH:
            return MALFORMED
        if proto == _GRE:
            return _gre(data[off:end], ts, fragments, depth + 1)
        return (_ipv4 if proto == _IP_IN_IP else _ipv6)(data[off:end], 0, ts, fragments, depth + 1)
    return OTHER_PROTO


def _icmp_quote(
    data: bytes,
    off: int,
    end: int,
    reporter: bytes,
    errors: dict[tuple[int, int], str],
    types: dict[int, str],
) -> Decoded:
    """An ICMP (RFC 792) or ICMPv6 (RFC 4443 §2.1) error: 8-byte header, then as much of the
    offending datagram as fits; its IP header and first 4 transport bytes give the flow."""
    if end - off < 8:
        return MALFORMED
    icmp_type, code = data[off], data[off + 1]
    if icmp_type not in types:
        return ICMP  # echo, neighbour discovery and the like: not a quote
    name = errors.get((icmp_type, code)) or f"{types[icmp_type]}-{code}"
    quoted = _quoted_flow(data[off + 8 : end])
    if quoted is None:
        return ICMP
    return IcmpQuote(reporter, name, *quoted)


def _quoted_flow(quote: bytes) -> tuple[int, bytes, bytes, int, int] | None:
    """``(proto, src, dst, sport, dport)`` of a quoted UDP/TCP datagram (it may be cut anywhere
    after the ports), or None when the quote is too short, a later fragment, or not UDP/TCP."""
    if len(quote) < 20:
        return None
    version = quote[0] >> 4
    if version == 4:
        ihl = (quote[0] & 15) * 4
        if ihl < 20 or ((quote[6] << 8) | quote[7]) & 0x1FFF:
            return None
        proto, src, dst, off = quote[9], quote[12:16], quote[16:20], ihl
    elif version == 6:
        if len(quote) < 40:
            return None
        proto, src, dst, off = quote[6], quote[8:24], quote[24:40], 40
        while proto in _IPV6_EXTENSIONS or proto == _IPV6_FRAGMENT:
            if off + 8 > len(quote):
                return None
            if proto == _IPV6_FRAGMENT and _U16(quote, off + 2)[0] & 0xFFF8:
                return None
            proto, off = quote[off], off + _extension_length(proto, quote, off)
    else:
        return None
    if proto not in (UDP, TCP) or off + 4 > len(quote):
        return None
    sport, dport = _PORTS(quote, off)
    return proto, src, dst, sport, dport
