"""Immutable types produced by the STUN wire codec.

The message layout is RFC 8489 §5 (header) and §14 (attribute TLVs); classic RFC 3489 §11.1
messages have no magic cookie and a 128-bit transaction id; ChannelData is RFC 8656 §12.4.

These are ``NamedTuple`` types rather than frozen dataclasses: they are created once per message
and per attribute on the hot path of a million-packet capture, and tuple construction costs a
fraction of a frozen dataclass ``__init__`` (which sets each field through ``object.__setattr__``).
They stay immutable, hashable and slot-free.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

MAGIC_COOKIE = 0x2112A442
"""RFC 8489 §5: fixed value in bytes 4-7 of every RFC 5389/8489 message."""

HEADER_LEN = 20
"""RFC 8489 §5: the STUN header is 20 bytes."""


class Endpoint(NamedTuple):
    """A transport address. ``str()`` gives ``1.2.3.4:3478`` or ``[::1]:3478`` (the JSON form)."""

    ip: str
    port: int

    def __str__(self) -> str:
        if ":" in self.ip:
            return f"[{self.ip}]:{self.port}"
        return f"{self.ip}:{self.port}"


class MessageClass(IntEnum):
    """RFC 8489 §5: the two class bits C1 C0 of the message type."""

    REQUEST = 0
    INDICATION = 1
    SUCCESS = 2
    ERROR = 3

    @property
    def label(self) -> str:
        """The JSON/display spelling: ``request``, ``indication``, ``success``, ``error``."""
        return _CLASS_LABELS[self]


_CLASS_LABELS = {
    MessageClass.REQUEST: "request",
    MessageClass.INDICATION: "indication",
    MessageClass.SUCCESS: "success",
    MessageClass.ERROR: "error",
}


class Attribute(NamedTuple):
    """One attribute TLV as found on the wire (RFC 8489 §14).

    ``offset`` is the position of the 4-byte attribute header from the start of the message;
    ``length`` is the declared value length; ``raw`` is the value bytes actually present (shorter
    than ``length`` only when the message is truncated, which also yields a finding). Padding is
    not part of ``raw``. Repeated and unknown attributes are kept in wire order.
    """

    type: int
    offset: int
    length: int
    raw: bytes


class StunMessage(NamedTuple):
    """A decoded STUN message (RFC 8489 §5) or classic RFC 3489 message (``magic`` False).

    ``txid`` is 12 bytes for RFC 5389/8489 messages and 16 bytes for classic messages (their id
    includes the four bytes where the cookie would be). ``findings`` are stable kebab-case codes
    such as ``length-not-multiple-of-4``, ``attribute-overrun``, ``bad-padding``,
    ``bad-fingerprint``, ``attribute-after-integrity``. ``raw`` is the message's bytes.
    """

    msg_type: int
    method: int
    cls: MessageClass
    length: int
    magic: bool
    txid: bytes
    attributes: tuple[Attribute, ...]
    findings: tuple[str, ...]
    raw: bytes


class ChannelData(NamedTuple):
    """A TURN ChannelData message (RFC 8656 §12.4): channel 0x4000-0x7FFF, length, application data.

    ``padded`` tells whether the 4-byte padding (mandatory over TCP, RFC 8656 §12.5) was present.
    """

    channel: int
    length: int
    data: bytes
    findings: tuple[str, ...]
    padded: bool


class DecodeFailure(NamedTuple):
    """Bytes that looked like a STUN/ChannelData message but could not be decoded at all.

    ``offset`` is where decoding stopped, ``reason`` a stable kebab-case code, ``detail`` a
    sentence for people.
    """

    offset: int
    reason: str
    detail: str


class MsTurnMux(NamedTuple):
    """A [MS-TURN] §2.2.3 multiplexed TURN packet: ``0xFF10``, length, 8-byte session id, data.

    ``data`` is the wrapped payload (a STUN message or application data for the stream that
    ``session_id`` names); the capture layer unwraps it and classifies ``data`` again.
    """

    session_id: bytes
    length: int
    data: bytes
    findings: tuple[str, ...]
