"""Demultiplex one transport payload by content (RFC 7983 §7, updated by RFC 9443 §3).

The first byte picks a candidate protocol; a structural check confirms it, so port numbers never
matter. RFC 9443 first-byte ranges::

    0-3 STUN | 16-19 ZRTP | 20-63 DTLS | 64-79 TURN ChannelData | 80-127 QUIC
    128-191 RTP/RTCP | 192-255 QUIC (long header)

plus the [MS-TURN] §2.2.3 multiplexed TURN wrapper, which starts 0xFF 0x10.
"""

from __future__ import annotations

from stunscope.wire.message import HEADER_LEN, MAGIC_COOKIE
from stunscope.wire.registry import CLASSIC_TYPES

__all__ = ["KINDS", "MS_TURN_MUX", "classify"]

KINDS = ("stun", "classic-stun", "channeldata", "ms-turn-mux", "dtls", "rtp", "rtcp", "zrtp",
         "quic", "other")
"""Every label :func:`classify` returns."""

MS_TURN_MUX = b"\xff\x10"
"""[MS-TURN] §2.2.3: Channel_ID of a multiplexed TURN packet."""

_COOKIE = MAGIC_COOKIE.to_bytes(4, "big")


def _stun(payload: bytes) -> str:
    """RFC 8489 §5 by magic cookie; otherwise classic RFC 3489 §11.1 by type and exact length."""
    size = len(payload)
    if size < HEADER_LEN:
        return "other"
    if payload[4:8] == _COOKIE:
        return "stun"
    length = int.from_bytes(payload[2:4], "big")
    if (
        length & 3 == 0
        and HEADER_LEN + length == size
        and int.from_bytes(payload[0:2], "big") in CLASSIC_TYPES
        and _tiles(payload)
    ):
        return "classic-stun"
    return "other"


def _tiles(payload: bytes) -> bool:
    """True when the attribute TLVs after the header end exactly at the end of ``payload``."""
    pos, end = HEADER_LEN, len(payload)
    while pos + 4 <= end:
        pos += 4 + ((int.from_bytes(payload[pos + 2:pos + 4], "big") + 3) & ~3)
    return pos == end


def _zrtp(payload: bytes) -> str:
    """RFC 6189 §5: ZRTP packets carry the magic cookie 'ZRTP' in bytes 4-7."""
    if payload[4:8] == b"ZRTP":
        return "zrtp"
    return _cookie_stun(payload)


def _cookie_stun(payload: bytes) -> str:
    """A STUN message whose method is high enough to push its first byte past 3 (unregistered
    methods such as WhatsApp's 0x200-0x205) still carries the cookie (RFC 8489 §5)."""
    return "stun" if payload[4:8] == _COOKIE and len(payload) >= HEADER_LEN else "other"


def _dtls(payload: bytes) -> str:
    """RFC 9147 §4: DTLSPlaintext (content type 20-25, version 0xFEXX, 13-byte header) or the
    DTLS 1.3 unified header (first byte 0b001xxxxx)."""
    first = payload[0]
    if payload[4:8] == _COOKIE and len(payload) >= HEADER_LEN:
        return "stun"
    if first >= 32 or (len(payload) >= 13 and payload[1] == 0xFE and first <= 25):
        return "dtls"
    return "other"


def _channeldata(payload: bytes) -> str:
    """RFC 8656 §12.4: 4-byte header whose length fits the payload, with at most 3 bytes of padding."""
    excess = len(payload) - 4 - int.from_bytes(payload[2:4], "big")
    return "channeldata" if len(payload) >= 4 and 0 <= excess <= 3 else "other"


def _rtp(payload: bytes) -> str:
    """RFC 3550 §5.1 (version 2) with RFC 5761 §4: payload types 192-223 (marker bit set) are RTCP."""
    if len(payload) < 8:
        return "other"
    if 192 <= payload[1] <= 223:
        return "rtcp"
    return "rtp" if len(payload) >= 12 else "other"


def _high(payload: bytes) -> str:
    """192-255: QUIC long header (RFC 9000 §17.2), except the [MS-TURN] 0xFF10 wrapper."""
    if payload[:2] == MS_TURN_MUX and len(payload) >= 12:
        length = int.from_bytes(payload[2:4], "big")
        return "ms-turn-mux" if 4 + length == len(payload) else "quic"
    return "quic"


def _quic(payload: bytes) -> str:
    return "quic"


_BY_FIRST_BYTE = (
    (_stun,) * 4
    + (_cookie_stun,) * 12
    + (_zrtp,) * 4
    + (_dtls,) * 44
    + (_channeldata,) * 16
    + (_quic,) * 48
    + (_rtp,) * 64
    + (_high,) * 64
)
"""RFC 9443 §3 first-byte table: one structural checker per value of the first byte."""


def classify(payload: bytes) -> str:
    """Label a UDP datagram or framed TCP message by content (RFC 7983/9443); never raises."""
    if not payload:
        return "other"
    return _BY_FIRST_BYTE[payload[0]](payload)
