"""Decode STUN messages (RFC 8489 §5, §14; classic RFC 3489 §11) and ChannelData (RFC 8656 §12).

The hot path of every capture runs through :func:`decode_message`, so it does one pass over the
attribute TLVs with ``struct.unpack_from`` and builds nothing but the ``Attribute`` tuples; typed
values are decoded lazily by :mod:`stunscope.wire.attributes`. Nothing here raises on any input:
damage becomes a finding code on the message, or a :class:`DecodeFailure` when the bytes cannot
be a STUN message at all.

Finding codes (stable, kebab-case; see :data:`FINDINGS`):

- ``length-not-multiple-of-4``: the header length is not a multiple of 4 (RFC 8489 §5).
- ``truncated``: fewer bytes than 20 + the header length.
- ``trailing-bytes``: more bytes than 20 + the header length (a datagram carries one message).
- ``attribute-overrun``: an attribute's length runs past the end of the message.
- ``attribute-header-truncated``: 1-3 bytes left that cannot hold an attribute header.
- ``missing-padding``: the last attribute is not padded to 4 bytes (RFC 8489 §14).
- ``nonzero-padding``: padding bytes are not zero. Legal (RFC 8489 §14: "MUST be ignored"), kept
  as a low-key note because RFC 5769 itself pads with spaces.
- ``bad-fingerprint``: FINGERPRINT does not match the CRC-32 (RFC 8489 §14.7).
- ``fingerprint-not-last``: an attribute follows FINGERPRINT (RFC 8489 §14.7).
- ``attribute-after-integrity``: an attribute other than MESSAGE-INTEGRITY-SHA256 or FINGERPRINT
  follows MESSAGE-INTEGRITY, or other than FINGERPRINT follows MESSAGE-INTEGRITY-SHA256
  (RFC 8489 §14.5, §14.6: such attributes are ignored by receivers).
- ``unpadded-attributes``: the attributes only tile the message when read without padding, as
  pre-RFC 5389 [MS-TURN] servers send them (the length is then not a multiple of 4 either).
- ``duplicate-attribute``: a registered attribute that is meaningful once appears again
  (RFC 8489 §14: only the first is processed).
- ``bad-channel-padding`` / ``missing-channel-padding`` (ChannelData, RFC 8656 §12.5).
"""

from __future__ import annotations

from struct import Struct
from zlib import crc32

from stunscope.wire.message import (
    HEADER_LEN,
    MAGIC_COOKIE,
    Attribute,
    ChannelData,
    DecodeFailure,
    MessageClass,
    MsTurnMux,
    StunMessage,
)
from stunscope.wire.registry import CLASSIC_TYPES

__all__ = ["FAILURES", "FINDINGS", "decode_channeldata", "decode_message", "decode_ms_turn_mux", "split_type"]

FINDINGS: dict[str, str] = {
    "length-not-multiple-of-4": "message length is not a multiple of 4 (RFC 8489 §5)",
    "truncated": "fewer bytes than the header length announces",
    "trailing-bytes": "bytes after the end announced by the header length",
    "attribute-overrun": "an attribute's length runs past the end of the message",
    "attribute-header-truncated": "1-3 bytes left at the end cannot hold an attribute header",
    "missing-padding": "the last attribute is not padded to a 4-byte boundary (RFC 8489 §14)",
    "nonzero-padding": "padding bytes are not zero (legal: receivers ignore them, RFC 8489 §14)",
    "bad-fingerprint": "FINGERPRINT does not match the message CRC-32 (RFC 8489 §14.7)",
    "fingerprint-not-last": "an attribute follows FINGERPRINT (RFC 8489 §14.7)",
    "attribute-after-integrity": "attribute after MESSAGE-INTEGRITY(-SHA256) (RFC 8489 §14.5-6)",
    "unpadded-attributes": "attributes are not padded to 4 bytes (pre-RFC 5389 / [MS-TURN])",
    "duplicate-attribute": "an attribute meaningful once appears more than once (RFC 8489 §14)",
    "bad-channel-padding": "ChannelData padding bytes are not zero (RFC 8656 §12.5)",
    "missing-channel-padding": "ChannelData over TCP is not padded to 4 bytes (RFC 8656 §12.5)",
}
"""Every finding code the decoder emits, with a sentence for people."""

FAILURES: dict[str, str] = {
    "short-header": "fewer bytes than a STUN (20) or ChannelData (4) header",
    "not-stun": "no magic cookie and not a classic RFC 3489 message by structure, or the type's "
                "two top bits are set (RFC 8489 §5)",
    "not-channeldata": "the channel number is outside 0x4000-0x7FFF (RFC 8656 §12)",
    "truncated": "ChannelData shorter than its length announces",
    "not-ms-turn-mux": "no 0xFF10 [MS-TURN] multiplexed TURN header",
    "bad-length": "an [MS-TURN] multiplexed length too short for its session id",
}
"""Every :class:`DecodeFailure` reason, with a sentence for people."""

_HEADER = Struct("!HHI")
_TLV = Struct("!HH")
_UNPACK_HEADER = _HEADER.unpack_from
_UNPACK_TLV = _TLV.unpack_from

MESSAGE_INTEGRITY = 0x0008
MESSAGE_INTEGRITY_SHA256 = 0x001C
FINGERPRINT = 0x8028
FINGERPRINT_XOR = 0x5354554E
"""RFC 8489 §14.7: FINGERPRINT is CRC-32 of the message up to it, XOR 0x5354554e."""

_REPEATABLE = frozenset({0x0012, 0x0016, 0x8001, 0x0026})
"""Attributes that may legally repeat: XOR-PEER-ADDRESS (RFC 8656 §9.1), XOR-RELAYED-ADDRESS and
ADDRESS-ERROR-CODE (one per family, RFC 8656 §7.1-7.2), PADDING."""

_ONCE = frozenset(
    {0x0001, 0x0003, 0x0006, 0x0008, 0x0009, 0x000A, 0x000C, 0x000D, 0x0013, 0x0014, 0x0015,
     0x0017, 0x0018, 0x0019, 0x001A, 0x001B, 0x001C, 0x001D, 0x001E, 0x0020, 0x0022, 0x0024,
     0x0025, 0x0027, 0x002A, 0x8000, 0x8002, 0x8003, 0x8004, 0x8022, 0x8023, 0x8025, 0x8028,
     0x8029, 0x802A, 0x802B, 0x802C, 0x802E, 0x8030}
) - _REPEATABLE
"""Registered attributes whose repetition is worth a ``duplicate-attribute`` finding."""

_ORDERED: dict[int, tuple[int, ...]] = {
    MESSAGE_INTEGRITY: (MESSAGE_INTEGRITY_SHA256, FINGERPRINT),
    MESSAGE_INTEGRITY_SHA256: (FINGERPRINT,),
    FINGERPRINT: (),
}
"""RFC 8489 §14.5-14.7: what may follow each integrity attribute (nothing follows FINGERPRINT)."""

_LEGAL_TAIL: tuple[list[int], ...] = (
    [],
    [MESSAGE_INTEGRITY],
    [MESSAGE_INTEGRITY_SHA256],
    [MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256],
    [FINGERPRINT],
    [MESSAGE_INTEGRITY, FINGERPRINT],
    [MESSAGE_INTEGRITY_SHA256, FINGERPRINT],
    [MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256, FINGERPRINT],
)
"""RFC 8489 §14.5-14.7: the only legal way to end a message that carries MESSAGE-INTEGRITY (1),
MESSAGE-INTEGRITY-SHA256 (2) and FINGERPRINT (4), indexed by which of them are present. A message
whose attributes end exactly so (each once) needs no closer look."""

_PADDED_WALK_FINDINGS = frozenset(
    {"attribute-overrun", "nonzero-padding", "missing-padding", "attribute-header-truncated"}
)
"""Findings of the padded walk that an unpadded re-read explains away."""

_new = tuple.__new__
"""Build the NamedTuples with the C constructor: their generated ``__new__`` costs a Python call."""

_ZERO_PAD = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")
_CLASSES = (MessageClass.REQUEST, MessageClass.INDICATION, MessageClass.SUCCESS, MessageClass.ERROR)


def split_type(msg_type: int) -> tuple[int, MessageClass]:
    """Split a 14-bit message type into (method, class): RFC 8489 §5, bits M11..M7 C1 M6..M4 C0 M3..M0."""
    method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)
    cls = ((msg_type >> 4) & 1) | ((msg_type >> 7) & 2)
    return method, _CLASSES[cls]


_TYPE_TABLE: tuple[tuple[int, MessageClass], ...] = tuple(split_type(t) for t in range(0x4000))
"""Precomputed (method, class) for every 14-bit type: one tuple index on the hot path."""
TYPE_TABLE = _TYPE_TABLE
"""``TYPE_TABLE[msg_type]`` is ``split_type(msg_type)`` for every 14-bit type."""


def decode_message(data: bytes) -> StunMessage | DecodeFailure:
    """Decode one STUN message from ``data``; never raises.

    RFC 5389/8489 messages are recognised by the magic cookie (RFC 8489 §5). Without it, a
    classic RFC 3489 message (§11.1) is accepted only when its structure holds: a type from
    :data:`~stunscope.wire.registry.CLASSIC_TYPES` (RFC 3489 and cookie-less [MS-TURN]), a length
    that is a multiple of 4 and matches the bytes exactly, and attributes that tile it. Anything
    else is a :class:`DecodeFailure` (see :data:`FAILURES`).
    """
    if data.__class__ is not bytes:  # bytearray/memoryview: keep txid and raw hashable
        data = bytes(data)
    size = len(data)
    if size < HEADER_LEN:
        return DecodeFailure(0, "short-header", f"{size} bytes, a STUN header needs 20")
    msg_type, length, cookie = _UNPACK_HEADER(data)
    if msg_type & 0xC000:
        return DecodeFailure(0, "not-stun", "the two top bits of the message type are not zero")
    magic = cookie == MAGIC_COOKIE
    end = HEADER_LEN + length
    findings: list[str] = []
    if not magic:
        if length & 3 or end != size or msg_type not in CLASSIC_TYPES:
            return DecodeFailure(
                4, "not-stun", "no magic cookie, and not a classic RFC 3489 message by structure"
            )
        txid = data[4:20]
    else:
        txid = data[8:20]
        if length & 3:
            findings.append("length-not-multiple-of-4")
        if end > size:
            findings.append("truncated")
            end = size
        elif end < size:
            findings.append("trailing-bytes")
            data = data[:end]
    attributes: list[Attribute] = []
    append = attributes.append
    types: list[int] = []
    append_type = types.append
    pos = HEADER_LEN
    while pos + 4 <= end:
        attr_type, attr_len = _UNPACK_TLV(data, pos)
        stop = pos + 4 + attr_len
        if stop > end:
            if not magic:
                return DecodeFailure(pos, "not-stun", "no magic cookie and attributes overrun")
            findings.append("attribute-overrun")
            append(_new(Attribute, (attr_type, pos, attr_len, data[pos + 4:end])))
            append_type(attr_type)
            pos = end
            break
        append(_new(Attribute, (attr_type, pos, attr_len, data[pos + 4:stop])))
        append_type(attr_type)
        pad = -attr_len & 3
        pos = stop + pad
        if pad and data[stop:pos] != _ZERO_PAD[pad]:
            findings.append("missing-padding" if pos > end else "nonzero-padding")
    if pos != end:
        if not magic:
            return DecodeFailure(pos, "not-stun", "no magic cookie and attributes do not tile")
        if pos < end:
            findings.append("attribute-header-truncated")
    if length & 3 and ("attribute-overrun" in findings or pos < end):
        unpadded = _unpadded_attributes(data, end)
        if unpadded is not None:
            attributes = unpadded
            types = [attr[0] for attr in unpadded]
            findings = [f for f in findings if f not in _PADDED_WALK_FINDINGS] + ["unpadded-attributes"]
    present = set(types)
    distinct = len(present) == len(types)
    if not distinct and _has_meaningful_duplicate(types):
        findings.append("duplicate-attribute")
    fingerprinted = FINGERPRINT in present
    sealed = (MESSAGE_INTEGRITY in present) + 2 * (MESSAGE_INTEGRITY_SHA256 in present) + 4 * fingerprinted
    tail = _LEGAL_TAIL[sealed]
    if tail and (not distinct or types[-len(tail):] != tail):
        _seal_findings(types, findings)
    if fingerprinted:
        fingerprint = attributes[-1 if types[-1] == FINGERPRINT else types.index(FINGERPRINT)]
        offset = fingerprint[1]
        covered = offset - HEADER_LEN + 8  # RFC 8489 §14.7: the length as if FINGERPRINT ended it
        if covered == length:  # FINGERPRINT last, as it should be: the header is already right
            crc = crc32(data[:offset])
        else:
            crc = crc32(data[4:offset], crc32(covered.to_bytes(2, "big"), crc32(data[:2])))
        if fingerprint[3] != (crc ^ FINGERPRINT_XOR).to_bytes(4, "big"):
            findings.append("bad-fingerprint")
    method, cls = _TYPE_TABLE[msg_type]
    return _new(StunMessage, (
        msg_type, method, cls, length, magic, txid, tuple(attributes),
        tuple(dict.fromkeys(findings)) if findings else (), data,
    ))


def _unpadded_attributes(data: bytes, end: int) -> list[Attribute] | None:
    """The attributes when they tile the message without padding, else None.

    Pre-RFC 5389 drafts, still spoken by [MS-TURN] servers (Lync/Teams), did not pad attribute
    values to 4 bytes: their messages have a length that is not a multiple of 4 and attributes
    that only line up when read back to back.
    """
    attributes = []
    pos = HEADER_LEN
    while pos + 4 <= end:
        attr_type, attr_len = _UNPACK_TLV(data, pos)
        stop = pos + 4 + attr_len
        if stop > end:
            return None
        attributes.append(_new(Attribute, (attr_type, pos, attr_len, data[pos + 4:stop])))
        pos = stop
    return attributes if pos == end else None


def _seal_findings(types: list[int], findings: list[str]) -> None:
    """RFC 8489 §14.5-14.7 ordering: only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT may follow
    MESSAGE-INTEGRITY, only FINGERPRINT may follow MESSAGE-INTEGRITY-SHA256, nothing FINGERPRINT."""
    start = min(types.index(seal) for seal in _ORDERED if seal in types)
    sealed = _ORDERED[types[start]]
    for attr_type in types[start + 1:]:
        if attr_type not in sealed:
            findings.append("attribute-after-integrity" if sealed else "fingerprint-not-last")
        if attr_type in _ORDERED and sealed:
            sealed = _ORDERED[attr_type]


def _has_meaningful_duplicate(types: list[int]) -> bool:
    seen: set[int] = set()
    for attr_type in types:
        if attr_type in seen and attr_type in _ONCE:
            return True
        seen.add(attr_type)
    return False


def decode_channeldata(data: bytes, tcp: bool) -> ChannelData | DecodeFailure:
    """Decode a TURN ChannelData message (RFC 8656 §12.4); never raises.

    The channel number must be 0x4000-0x4FFF (RFC 8656 §12; 0x5000-0x7FFF are reserved but
    still ChannelData-shaped, so they decode). Over TCP the message is padded to a multiple of 4
    (§12.5: mandatory); over UDP padding is optional, so extra bytes up to the next multiple of 4
    are accepted as padding.
    """
    size = len(data)
    if size < 4:
        return DecodeFailure(0, "short-header", f"{size} bytes, a ChannelData header needs 4")
    channel, length = _UNPACK_TLV(data)
    if not 0x4000 <= channel <= 0x7FFF:
        return DecodeFailure(0, "not-channeldata", f"channel 0x{channel:04x} is outside 0x4000-0x7FFF")
    end = 4 + length
    if end > size:
        return DecodeFailure(4, "truncated", f"{size - 4} bytes of application data, {length} announced")
    pad = -length & 3
    if size == end and (not pad or not tcp):  # the common cases: exact, or UDP without padding
        return _new(ChannelData, (channel, length, data[4:end], (), not pad))
    if size == end + pad and data[end:] == _ZERO_PAD[pad]:  # padded, as over TCP
        return _new(ChannelData, (channel, length, data[4:end], (), True))
    padding = data[end:end + pad]
    padded = len(padding) == pad
    findings: list[str] = []
    if tcp and not padded:
        findings.append("missing-channel-padding")
    if padding != _ZERO_PAD[len(padding)]:
        findings.append("bad-channel-padding")
    if size > end + pad:
        findings.append("trailing-bytes")
    return _new(ChannelData, (channel, length, data[4:end], tuple(findings), padded))


def decode_ms_turn_mux(data: bytes) -> MsTurnMux | DecodeFailure:
    """Unwrap a [MS-TURN] §2.2.3 multiplexed TURN packet; never raises.

    Layout: Channel_ID 0xFF10 (2 bytes), Length (2 bytes, counting everything after itself, so
    the 8-byte MTURN_Session_ID included), MTURN_Session_ID (8 bytes), Data.
    """
    size = len(data)
    if size < 12 or data[:2] != b"\xff\x10":
        return DecodeFailure(0, "not-ms-turn-mux", "needs 0xFF10, a length and an 8-byte session id")
    length = int.from_bytes(data[2:4], "big")
    end = 4 + length
    if length < 8:
        return DecodeFailure(2, "bad-length", f"length {length} cannot hold the 8-byte session id")
    findings = ("truncated",) if end > size else ("trailing-bytes",) if end < size else ()
    return MsTurnMux(data[4:12], length, data[12:end], findings)
