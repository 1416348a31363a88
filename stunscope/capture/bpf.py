"""Capture filters for the packet socket: the default filter, compiled by libpcap (through
scapy) for the frames' link type, rewritten for a cooked socket, attached in the kernel.

The default keeps STUN and TURN ChannelData by the first payload byte (RFC 7983 §7 ranges) on any
UDP port and keeps media out, so the kernel drops it before it costs anything. scapy is imported
only inside the functions that compile or attach a program.
"""

from __future__ import annotations

import socket
import struct

from stunscope.errors import UsageError

# Well-known UDP services whose first payload byte can fall in the STUN (0-3) or ChannelData
# (64-127) ranges by chance: DNS, DHCP, NTP, NetBIOS, SSDP, mDNS, LLMNR.
_UDP_NOISE_PORTS = (53, 67, 68, 123, 137, 138, 1900, 5353, 5355)
# TCP ports whose traffic is bulk and never decodable STUN: SSH, and TLS (HTTPS, TURNS).
_TCP_NOISE_PORTS = (22, 443, 5349)

DEFAULT_FILTER = (
    "(udp and (udp[8] < 4 or (udp[8] > 63 and udp[8] < 128))"
    + "".join(f" and not port {p}" for p in _UDP_NOISE_PORTS)
    + ") or (tcp"
    + "".join(f" and not port {p}" for p in _TCP_NOISE_PORTS)
    + ") or icmp or icmp6 or (ip and ip[6:2] & 0x3fff != 0) or (ip6 and ip6[6] == 44)"
)
"""The capture filter used unless ``-f`` is given (RFC 7983 first-byte ranges, checked in-kernel).

Keeps: UDP datagrams whose first payload byte is 0-3 (STUN, classic STUN, on any port) or 64-127
(TURN ChannelData with the channel numbers 0x4000-0x7FFF of RFC 5766, which coturn's clients still
use, though RFC 8656 narrowed them to 0x4000-0x4FFF; this lets QUIC short headers through too);
all TCP (STUN over TCP cannot be recognised per segment); ICMP/ICMPv6 (unreachables quoting STUN
flows); IP fragments (later fragments carry no UDP header to test). Keeps out: UDP media and
other payloads (DTLS 20-63, RTP/RTCP 128-191, QUIC long headers, raw data relayed between a TURN
relay and its peers), the UDP services in ``_UDP_NOISE_PORTS`` and TCP on ports 22, 443 and 5349
(SSH and TLS, which cannot be decoded). Pass ``-f ''`` to capture everything.
"""

SNAPLEN = 262144
"""Largest frame kept whole (as dumpcap); the loopback MTU is 65536."""

# Linux constants (asm-generic/socket.h, linux/filter.h).
_SO_ATTACH_FILTER = 26
_SKF_AD_OFF = 2**32 - 0x1000  # as an unsigned BPF ``k``
_SKF_AD_PROTOCOL = 0
_SKF_AD_PKTTYPE = 4
_SKF_AD_IFINDEX = 8

LINKTYPE_LINUX_SLL2 = 276
SLL2 = struct.Struct("!HxxIHBB8s")
"""The LINKTYPE_LINUX_SLL2 header (tcpdump.org linktypes/LINKTYPE_LINUX_SLL2): protocol,
reserved, interface index, ARPHRD_ type, packet type, address length, address (8 bytes)."""
_SLL2_FIELDS = {0: _SKF_AD_PROTOCOL, 4: _SKF_AD_IFINDEX, 10: _SKF_AD_PKTTYPE}
"""SLL2 header offset -> the kernel's ancillary BPF load of the same field (as libpcap maps
them in ``fix_offset``): a cooked socket's filter sees the packet from its network header on."""

Program = list[tuple[int, int, int, int]]
"""Classic BPF instructions: (code, jt, jf, k)."""


def compile_program(linktype: int, bpf: str | None, guard: str | None) -> Program | None:
    """The user's filter ``bpf`` and a ``guard`` of our own (tcpdump syntax, both optional)
    compiled by libpcap for ``linktype``, returning ``SNAPLEN`` bytes of an accepted frame
    (libpcap, through scapy, would cut them at 65535); None without either."""
    from scapy.arch.common import compile_filter, free_filter
    from scapy.error import Scapy_Exception

    expression = " and ".join(c for c in (guard, f"({bpf})" if bpf else None) if c)
    if not expression:
        return None
    try:
        compiled = compile_filter(expression, linktype=linktype)
    except Scapy_Exception as exc:
        reason = str(exc).rpartition(" (")[2].rstrip(")")  # libpcap's words
        raise UsageError(
            f"bad capture filter {bpf!r}: {reason} (tcpdump syntax, see man pcap-filter)"
        ) from None
    program = []
    for i in range(compiled.bf_len):
        insn = compiled.bf_insns[i]
        k = insn.k & 0xFFFFFFFF
        if insn.code == 0x06 and k:  # BPF_RET|BPF_K, accept: keep the whole frame
            k = SNAPLEN
        program.append((insn.code, insn.jt, insn.jf, k))
    free_filter(compiled)
    return program


def cooked_program(program: Program, bpf: str) -> Program:
    """An SLL2 ``program`` rewritten for a cooked (``SOCK_DGRAM``) socket, whose filter sees the
    packet from the network header on: packet loads move back by the 20-byte header, loads of
    the header's protocol, ifindex and packet type become the kernel's ancillary loads. As
    libpcap's ``fix_offset``; a load of another header field cannot run in the kernel, nor
    a test of the frame length (``len``, ``greater``, ``less``: the kernel's lacks the header)."""
    fixed = []
    for code, jt, jf, k in program:
        mode = code & 0xE0
        if code & 0x07 in (0x00, 0x01) and mode in (0x20, 0x40, 0x80, 0xA0):  # BPF_LD, BPF_LDX
            if mode == 0x80:  # BPF_LEN
                raise UsageError(
                    f"capture filter {bpf!r} tests the frame length, which -i any cannot "
                    "filter on (the kernel counts it without the SLL2 header)"
                )
            if k >= SLL2.size:  # BPF_ABS, BPF_IND, BPF_MSH: a load from the packet
                k -= SLL2.size
            elif mode == 0x20 and k in _SLL2_FIELDS:
                k = _SKF_AD_OFF + _SLL2_FIELDS[k]
            else:
                raise UsageError(
                    f"capture filter {bpf!r} reads link-layer header fields that -i any "
                    "does not have (only its protocol, ifindex, inbound/outbound)"
                )
        fixed.append((code, jt, jf, k))
    return fixed


def attach_program(sock: socket.socket, program: Program) -> None:
    """Attach ``program`` to ``sock`` (``SO_ATTACH_FILTER``): the kernel runs it on every
    packet and queues only those it accepts, cut to the length it returns."""
    import ctypes

    from scapy.libs.structures import bpf_insn, sock_fprog

    insns = (bpf_insn * len(program))(*(bpf_insn(*insn) for insn in program))  # k wraps to int
    fprog = sock_fprog(len(program), ctypes.cast(insns, ctypes.POINTER(bpf_insn)))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, bytes(fprog))
