"""Split one direction of a TCP stream into messages (no I/O: bytes in, messages out).

Framings, detected from the first bytes of the stream (and again after a resync):

- ``stun``: STUN over TCP is self-delimiting: 20 + the header length (RFC 8489 §6.2.2); TURN
  ChannelData is 4 + the length, padded to a multiple of 4 over TCP (RFC 8656 §12.5), with a
  channel number in 0x4000-0x4FFF (RFC 8656 §12; RFC 9443 leaves 0x50-0x7F to QUIC). Classic
  RFC 3489 messages (no cookie) are accepted where a message is expected.
- ``rfc4571``: each frame is a 16-bit length then that many bytes (RFC 4571 §2; ICE-TCP,
  RFC 6544 §3); frames may carry STUN, RTP, DTLS...
- ``ms-turn``: [MS-TURN] §2.1.4: type (0x02 TURN control, 0x03 end-to-end data), a zero byte,
  a 16-bit length, then the frame.
- ``passthrough``: raw bytes handed back unchanged, for RFC 6062 TURN-TCP data connections once
  ConnectionBind has succeeded (§4.4: the connection then carries only peer data); the capture
  layer switches it with :meth:`StreamFramer.passthrough`.

Garbage (a capture that starts mid-stream, a corrupt segment) is skipped by scanning for the next
magic cookie at a plausible header position; skipped bytes are counted in ``skipped``. The buffer
is bounded: a frame can never exceed 4 + 65535 + 3 bytes, so nothing larger is ever kept.
"""

from __future__ import annotations

from stunscope.wire.message import HEADER_LEN, MAGIC_COOKIE
from stunscope.wire.registry import CLASSIC_TYPES

__all__ = ["MODES", "StreamFramer"]

MODES = ("detect", "stun", "rfc4571", "ms-turn", "passthrough")
"""Framing states of a :class:`StreamFramer`."""

_COOKIE = MAGIC_COOKIE.to_bytes(4, "big")


def _u16(buf: bytearray, pos: int) -> int:
    return (buf[pos] << 8) | buf[pos + 1]


def _is_stun_at(buf: bytearray, pos: int) -> bool:
    """A STUN header with the cookie (RFC 8489 §5) or a classic type (RFC 3489 §11.1) at ``pos``."""
    if buf[pos] & 0xC0:
        return False
    if buf[pos + 4:pos + 8] == _COOKIE:
        return True
    return _u16(buf, pos) in CLASSIC_TYPES and _u16(buf, pos + 2) & 3 == 0


class StreamFramer:
    """Reassemble messages from one TCP direction: ``feed(bytes) -> list[bytes]`` complete frames.

    Attributes: ``mode`` (one of :data:`MODES`), ``skipped`` (bytes discarded while resyncing),
    ``resyncs`` (how many times it had to resync), and :attr:`pending` (bytes buffered).
    """

    __slots__ = ("mode", "skipped", "resyncs", "_buf")

    def __init__(self) -> None:
        self.mode = "detect"
        self.skipped = 0
        self.resyncs = 0
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buf)

    def passthrough(self) -> list[bytes]:
        """Switch to raw mode (RFC 6062 §4.4 data connection); returns what was buffered."""
        self.mode = "passthrough"
        rest = bytes(self._buf)
        self._buf.clear()
        return [rest] if rest else []

    def feed(self, data: bytes) -> list[bytes]:
        """Add the next bytes of the stream; return every frame now complete. Never raises."""
        if self.mode == "passthrough":
            return [bytes(data)] if data else []
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        while True:
            if self.mode == "detect":
                mode = self._detect(buf, pos)
                if mode is None:
                    break
                if mode == "garbage":
                    pos = self._resync(buf, pos)
                    continue
                self.mode = mode
            size = _FRAME_SIZE[self.mode](buf, pos)
            if size == 0:
                break
            if size < 0:
                pos = self._resync(buf, pos)
                continue
            frames.append(bytes(buf[pos + _SKIP[self.mode]:pos + size]))
            pos += size
        del buf[:pos]
        return frames

    def _detect(self, buf: bytearray, pos: int) -> str | None:
        """Pick the framing from the bytes at ``pos``; None when more bytes are needed."""
        if len(buf) - pos < 10:
            return None
        if buf[pos + 4:pos + 8] == _COOKIE and not buf[pos] & 0xC0:
            return "stun"
        if buf[pos + 6:pos + 10] == _COOKIE and not buf[pos + 2] & 0xC0:
            return "rfc4571"
        if buf[pos] in (2, 3) and buf[pos + 1] == 0 and len(buf) - pos >= 12 and (
            buf[pos + 8:pos + 12] == _COOKIE or _u16(buf, pos + 4) in CLASSIC_TYPES
        ):
            return "ms-turn"
        if 0x40 <= buf[pos] <= 0x4F or _is_stun_at(buf, pos):
            return "stun"
        return "garbage"

    def _resync(self, buf: bytearray, pos: int) -> int:
        """Skip to the next plausible header: a magic cookie 4 bytes into a STUN header, or 6 bytes
        into an RFC 4571 frame whose length matches the STUN message it holds."""
        self.resyncs += 1
        found = buf.find(_COOKIE, pos + 5)
        while found != -1 and buf[found - 4] & 0xC0:
            found = buf.find(_COOKIE, found + 1)
        if found == -1:
            keep = max(pos, len(buf) - 7)
        elif found - 6 >= pos and _u16(buf, found - 6) == HEADER_LEN + _u16(buf, found - 2):
            keep = found - 6
        else:
            keep = found - 4
        self.skipped += keep - pos
        self.mode = "detect"
        return keep


def _stun_size(buf: bytearray, pos: int) -> int:
    """RFC 8489 §6.2.2 / RFC 8656 §12.5: total bytes of the STUN or ChannelData message at ``pos``;
    0 when incomplete, -1 when the bytes are neither."""
    have = len(buf) - pos
    if have < 4:
        return 0
    first = buf[pos]
    if 0x40 <= first <= 0x4F:
        size = 4 + ((_u16(buf, pos + 2) + 3) & ~3)
    elif first & 0xC0 == 0:
        if have < HEADER_LEN:
            return 0
        if not _is_stun_at(buf, pos):
            return -1
        size = HEADER_LEN + _u16(buf, pos + 2)
    else:
        return -1
    return size if have >= size else 0


def _rfc4571_size(buf: bytearray, pos: int) -> int:
    """RFC 4571 §2: a 16-bit length, then the frame."""
    have = len(buf) - pos
    if have < 2:
        return 0
    total = 2 + _u16(buf, pos)
    return total if have >= total else 0


def _ms_turn_size(buf: bytearray, pos: int) -> int:
    """[MS-TURN] §2.1.4: type 0x02/0x03, a zero byte, a 16-bit length, then the frame."""
    have = len(buf) - pos
    if have < 4:
        return 0
    if buf[pos] not in (2, 3) or buf[pos + 1] != 0:
        return -1
    total = 4 + _u16(buf, pos + 2)
    return total if have >= total else 0


_FRAME_SIZE = {"stun": _stun_size, "rfc4571": _rfc4571_size, "ms-turn": _ms_turn_size}
"""Framing -> total size of the frame at a position (0 incomplete, -1 not a frame)."""

_SKIP = {"stun": 0, "rfc4571": 2, "ms-turn": 4}
"""Framing -> header bytes stripped from each frame handed back."""
