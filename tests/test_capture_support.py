"""Builders shared by the capture tests: tiny pcap/pcapng files and STUN/ChannelData payloads.

The capture files are packed by hand with ``struct`` from the format drafts
(draft-ietf-opsawg-pcap §4-§5, draft-ietf-opsawg-pcapng §3-§4), independently of the reader
under test; packets are built with scapy. This module holds no tests.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

COOKIE = b"\x21\x12\xa4\x42"


def stun(method: int = 1, cls: int = 0, txid: bytes = b"t" * 12, attrs: Sequence[tuple[int, bytes]] = ()) -> bytes:
    """An RFC 8489 §5 message with the given attributes (each padded to 4 bytes)."""
    body = b"".join(struct.pack("!HH", t, len(v)) + v + b"\x00" * (-len(v) % 4) for t, v in attrs)
    msg_type = (method & 0xF) | ((method & 0x70) << 1) | ((method & 0xF80) << 2)
    msg_type |= ((cls & 1) << 4) | ((cls & 2) << 7)
    return struct.pack("!HH", msg_type, len(body)) + COOKIE + txid + body


def xor_peer(ip: str, port: int) -> bytes:
    """An IPv4 XOR-PEER-ADDRESS value (RFC 8489 §14.2)."""
    raw_ip = bytes(int(x) for x in ip.split("."))
    xored = bytes(a ^ b for a, b in zip(raw_ip, COOKIE))
    return struct.pack("!BBH", 0, 1, port ^ 0x2112) + xored


def channeldata(channel: int, data: bytes, pad: bool = False) -> bytes:
    """A ChannelData message (RFC 8656 §12.4), padded to 4 bytes when ``pad``."""
    return struct.pack("!HH", channel, len(data)) + data + (b"\x00" * (-len(data) % 4) if pad else b"")


def pcap(
    frames: Iterable[bytes | tuple[int, int, bytes]],
    *,
    order: str = "<",
    nano: bool = False,
    linktype: int = 1,
    snaplen: int = 65535,
) -> bytes:
    """A pcap file; each frame is bytes (timestamps 1000+i seconds) or (seconds, fraction, bytes)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for i, frame in enumerate(frames):
        sec, frac, data = frame if isinstance(frame, tuple) else (1000 + i, 0, frame)
        out.append(struct.pack(order + "IIII", sec, frac, len(data), len(data)) + data)
    return b"".join(out)


def block(btype: int, body: bytes, order: str = "<") -> bytes:
    """One pcapng block (pcapng §3.1): type, total length, body padded to 4, total length."""
    body += b"\x00" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def option(code: int, value: bytes, order: str = "<") -> bytes:
    """One pcapng option (pcapng §3.5), padded to 4 bytes."""
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def shb(order: str = "<") -> bytes:
    """Section Header Block (pcapng §4.1), version 1.0, unknown section length."""
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def idb(linktype: int, *, tsresol: int | None = None, tsoffset: int | None = None, order: str = "<") -> bytes:
    """Interface Description Block (pcapng §4.2) with optional if_tsresol / if_tsoffset."""
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), order)
    if tsoffset is not None:
        opts += option(14, struct.pack(order + "q", tsoffset), order)
    if opts:
        opts += option(0, b"", order)
    return block(1, struct.pack(order + "HHI", linktype, 0, 0) + opts, order)


def epb(ifid: int, ts: int, data: bytes, order: str = "<") -> bytes:
    """Enhanced Packet Block (pcapng §4.3) with a timestamp in interface units."""
    head = struct.pack(order + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
    return block(6, head + data, order)


def spb(data: bytes, order: str = "<") -> bytes:
    """Simple Packet Block (pcapng §4.4)."""
    return block(3, struct.pack(order + "I", len(data)) + data, order)


def obsolete_pb(ifid: int, ts: int, data: bytes, order: str = "<") -> bytes:
    """The obsolete Packet Block (type 2, pcapng appendix)."""
    head = struct.pack(order + "HHIIII", ifid, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
    return block(2, head + data, order)
