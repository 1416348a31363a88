"""Typed attribute values, decoded lazily from the raw TLV bytes a :class:`StunMessage` keeps.

:func:`attribute_value` gives a JSON-able value (addresses as ``"1.2.3.4:3478"`` /
``"[::1]:3478"``; dicts where the value is structured); :func:`format_value` one display line with
every wire string passed through :func:`~stunscope.wire.text.safe_text`. Decoders are chosen by
the *kind* column of :data:`stunscope.wire.registry.ATTRIBUTES` (a table, not branches). A
malformed value never raises: it decodes to ``{"malformed": "<why>"}``.

The helpers (:func:`xor_mapped`, :func:`error_code`, ...) return the first occurrence of their
attribute as a plain Python value, or None when it is absent or malformed (RFC 8489 §14: only the
first of repeated attributes is processed).
"""

from __future__ import annotations

import binascii
import socket
from collections.abc import Callable
from typing import Any

from stunscope.wire.demux import classify
from stunscope.wire.message import Attribute, Endpoint, StunMessage
from stunscope.wire.registry import ATTRIBUTES, ERROR_REASONS, attr_name
from stunscope.wire.text import safe_text

__all__ = [
    "NONCE_COOKIE",
    "SECURITY_FEATURES",
    "attribute_value",
    "channel_number",
    "data",
    "decode_address",
    "decode_xor_address",
    "error_code",
    "format_value",
    "ice_role",
    "ip_text",
    "lifetime",
    "malformed_attributes",
    "mapped",
    "nonce",
    "priority",
    "realm",
    "software",
    "use_candidate",
    "username",
    "xor_mapped",
    "xor_peers",
    "xor_relayed",
]

Value = Any
"""A JSON-able attribute value (str, int, bool, list, dict) or an :class:`Endpoint`."""

XOR_MAPPED_ADDRESS = 0x0020
XOR_MAPPED_ADDRESS_LEGACY = 0x8020
MAPPED_ADDRESS = 0x0001
XOR_PEER_ADDRESS = 0x0012
XOR_RELAYED_ADDRESS = 0x0016

_FAMILIES = {0x01: ("IPv4", 4, socket.AF_INET), 0x02: ("IPv6", 16, socket.AF_INET6)}
"""RFC 8489 §14.1: address family byte -> (name, address length, socket family)."""

_RFC3489_TYPES = frozenset({0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112})
"""RFC 3489 §11.1 message types; other cookie-less types are [MS-TURN]'s (registry.CLASSIC_TYPES)."""

_TRANSPORTS = {6: "TCP", 17: "UDP"}
"""RFC 8656 §18.8: REQUESTED-TRANSPORT protocol numbers (IANA protocol numbers)."""

_PASSWORD_ALGORITHMS = {0x0001: "MD5", 0x0002: "SHA-256"}
"""RFC 8489 §18.5: IANA STUN Password Algorithms."""

NONCE_COOKIE = b"obMatJos2"
"""RFC 8489 §9.2: a NONCE starting with this cookie carries a security feature set."""

SECURITY_FEATURES = {0: "password-algorithms", 1: "username-anonymity"}
"""RFC 8489 §18.1: STUN Security Features registry, bit number (0 = most significant)."""


_new = tuple.__new__
"""Build Endpoint tuples with the C constructor (the NamedTuple ``__new__`` is a Python call)."""


def _malformed(why: str) -> dict[str, str]:
    return {"malformed": why}


def ip_text(raw: bytes) -> str:
    """Text form of a 4- or 16-byte address (``192.0.2.1``, ``2001:db8::1``)."""
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _split_address(value: bytes) -> tuple[int, int, bytes] | dict[str, str]:
    """RFC 8489 §14.1 layout: reserved, family, port, 4 or 16 address bytes -> (socket family,
    port, address bytes), or a malformed marker."""
    if len(value) < 4:
        return _malformed(f"{len(value)} bytes, an address needs at least 8")
    family = _FAMILIES.get(value[1])
    if family is None:
        return _malformed(f"unknown address family 0x{value[1]:02x}")
    if len(value) != 4 + family[1]:
        return _malformed(f"{len(value)} bytes for an {family[0]} address (needs {4 + family[1]})")
    return family[2], (value[2] << 8) | value[3], value[4:]


def decode_address(value: bytes) -> Endpoint | dict[str, str]:
    """MAPPED-ADDRESS layout (RFC 8489 §14.1): reserved, family, port, 4 or 16 address bytes."""
    parts = _split_address(value)
    if isinstance(parts, dict):
        return parts
    family, port, raw = parts
    return _new(Endpoint, (socket.inet_ntop(family, raw), port))


def decode_xor_address(value: bytes, key: bytes) -> Endpoint | dict[str, str]:
    """XOR-MAPPED-ADDRESS layout (RFC 8489 §14.2): the port is XORed with the cookie's top 16 bits,
    the address with the cookie (IPv4) or the cookie and transaction id (IPv6).

    ``key`` is the message's bytes 4-20 (cookie + 96-bit transaction id); for a classic message
    those bytes are the 128-bit transaction id, which pre-RFC 5389 drafts XORed with in the same way.
    """
    parts = _split_address(value)
    if isinstance(parts, dict):
        return parts
    family, port, raw = parts
    size = len(raw)
    plain = (int.from_bytes(raw, "big") ^ int.from_bytes(key[:size], "big")).to_bytes(size, "big")
    return _new(Endpoint, (socket.inet_ntop(family, plain), port ^ ((key[0] << 8) | key[1])))


def _key(msg: StunMessage) -> bytes:
    return msg.raw[4:20]


def _number(value: bytes, msg: StunMessage) -> Value:
    """A big-endian unsigned number (LIFETIME, CONNECTION-ID, ICE-CONTROLLING tie-breaker...)."""
    return int.from_bytes(value, "big")


def _text(value: bytes) -> str:
    """RFC 8489 §14.3/§14.9/§14.14: UTF-8 text; invalid bytes kept as backslash escapes."""
    return value.decode("utf-8", "backslashreplace")


def _reason(value: bytes) -> tuple[int, str] | dict[str, str]:
    """RFC 8489 §14.8: 21 reserved bits, class (3 bits, 3-6), number (0-99), UTF-8 reason."""
    if len(value) < 4:
        return _malformed(f"{len(value)} bytes, ERROR-CODE needs at least 4")
    cls, number = value[2] & 0x07, value[3]
    if not 3 <= cls <= 6 or number > 99:
        return _malformed(f"class {cls} / number {number} outside 3-6 / 0-99")
    return cls * 100 + number, _text(value[4:])


def _error_code(value: bytes, msg: StunMessage) -> Value:
    parsed = _reason(value)
    if isinstance(parsed, dict):
        return parsed
    return {"code": parsed[0], "reason": parsed[1]}


def _address_error_code(value: bytes, msg: StunMessage) -> Value:
    """RFC 8656 §18.12: family (8 bits), reserved, then class/number/reason as in ERROR-CODE."""
    parsed = _reason(value)
    if isinstance(parsed, dict):
        return parsed
    family = _FAMILIES.get(value[0])
    return {"family": family[0] if family else f"0x{value[0]:02x}", "code": parsed[0], "reason": parsed[1]}


def _unknown_attributes(value: bytes, msg: StunMessage) -> Value:
    """RFC 8489 §14.9: a list of 16-bit attribute types."""
    if len(value) % 2:
        return _malformed(f"{len(value)} bytes, not a list of 16-bit types")
    return [attr_name(int.from_bytes(value[i:i + 2], "big")) for i in range(0, len(value), 2)]


def _u16_rffu(value: bytes, msg: StunMessage) -> Value:
    """A 16-bit number then 16 bits RFFU: CHANNEL-NUMBER (RFC 8656 §18.1) and RESPONSE-PORT
    (RFC 5780 §7.5: a port and 2 bytes of padding, not an address)."""
    return (value[0] << 8) | value[1]


def _change_request(value: bytes, msg: StunMessage) -> Value:
    """RFC 5780 §7.2: flags A (change IP, 0x4) and B (change port, 0x2) in the last byte."""
    return {"change_ip": bool(value[3] & 0x04), "change_port": bool(value[3] & 0x02)}


def _priority(value: bytes, msg: StunMessage) -> Value:
    """RFC 8445 §5.1.2.1: priority = 2^24 type preference + 2^8 local preference + (256 - component)."""
    number = int.from_bytes(value, "big")
    return {
        "priority": number,
        "type_preference": number >> 24,
        "local_preference": (number >> 8) & 0xFFFF,
        "component": 256 - (number & 0xFF),
    }


def _flag(value: bytes, msg: StunMessage) -> Value:
    """USE-CANDIDATE (RFC 8445 §16.1), DONT-FRAGMENT (RFC 8656 §18.9): present, no value."""
    return True


def _family(value: bytes, msg: StunMessage) -> Value:
    """RFC 8656 §18.6/§18.11: family byte (0x01 IPv4, 0x02 IPv6) and 3 bytes RFFU."""
    family = _FAMILIES.get(value[0])
    return family[0] if family else _malformed(f"unknown address family 0x{value[0]:02x}")


def _transport(value: bytes, msg: StunMessage) -> Value:
    """RFC 8656 §18.8: IANA protocol number (17 UDP, 6 TCP per RFC 6062) and 3 bytes RFFU."""
    return _TRANSPORTS.get(value[0], value[0])


def _even_port(value: bytes, msg: StunMessage) -> Value:
    """RFC 8656 §18.7: one byte whose top bit R asks to reserve the next port."""
    return {"reserve_next": bool(value[0] & 0x80)}


def _nonce(value: bytes, msg: StunMessage) -> Value:
    """RFC 8489 §9.2: a nonce starting with ``obMatJos2`` carries 4 base64 characters encoding
    the 24-bit security feature set (bit 0 = most significant)."""
    text = _text(value)
    if not value.startswith(NONCE_COOKIE):
        return text
    try:
        bits = int.from_bytes(binascii.a2b_base64(value[9:13], strict_mode=True), "big")
    except binascii.Error:
        bits = -1
    if len(value) < 13:
        bits = -1
    if not 0 <= bits < 1 << 24:
        return {"nonce": text, "security_features": _malformed("the 4 feature characters are not base64")}
    features = [name for bit, name in SECURITY_FEATURES.items() if bits & (1 << (23 - bit))]
    return {"nonce": text, "security_features": features}


def _password_algorithm_list(value: bytes) -> list[dict[str, Any]] | dict[str, str]:
    """RFC 8489 §14.11-14.12: (algorithm 16 bits, parameters length 16 bits, padded parameters)*."""
    algorithms: list[dict[str, Any]] = []
    pos = 0
    while pos + 4 <= len(value):
        number = (value[pos] << 8) | value[pos + 1]
        length = (value[pos + 2] << 8) | value[pos + 3]
        if pos + 4 + length > len(value):
            return _malformed("a parameters length runs past the value")
        algorithms.append({
            "algorithm": _PASSWORD_ALGORITHMS.get(number, f"0x{number:04x}"),
            "parameters": value[pos + 4:pos + 4 + length].hex(),
        })
        pos += 4 + ((length + 3) & ~3)
    if pos != len(value):
        return _malformed("bytes left that are not an algorithm")
    return algorithms


def _password_algorithms(value: bytes, msg: StunMessage) -> Value:
    return _password_algorithm_list(value)


def _password_algorithm(value: bytes, msg: StunMessage) -> Value:
    algorithms = _password_algorithm_list(value)
    if isinstance(algorithms, dict):
        return algorithms
    return algorithms[0] if len(algorithms) == 1 else _malformed(f"{len(algorithms)} algorithms, expected 1")


def _icmp(value: bytes, msg: StunMessage) -> Value:
    """RFC 8656 §18.13: reserved (2 bytes), ICMP type, ICMP code, error data (4 bytes)."""
    return {"type": value[2], "code": value[3], "error_data": value[4:].hex()}


def _transmit_counter(value: bytes, msg: StunMessage) -> Value:
    """RFC 7982 §3.1: reserved (16 bits), Req (8 bits), Resp (8 bits)."""
    return {"request": value[2], "response": value[3]}


def _data(value: bytes, msg: StunMessage) -> Value:
    """RFC 8656 §18.4: the application data; shown as its length and RFC 7983 kind."""
    return {"length": len(value), "kind": classify(value)}


def _padding(value: bytes, msg: StunMessage) -> Value:
    """RFC 5780 §7.6: filler whose only meaning is its length."""
    return {"length": len(value)}


def _ms_sequence(value: bytes, msg: StunMessage) -> Value:
    """[MS-TURN] §2.2.2 MS-SEQUENCE-NUMBER: Connection ID (20 bytes), Sequence Number (4)."""
    return {"connection_id": value[:20].hex(), "sequence": int.from_bytes(value[20:], "big")}


def _goog_network_info(value: bytes, msg: StunMessage) -> Value:
    """GOOG-NETWORK-INFO (libwebrtc): network id (16 bits) then network cost (16 bits)."""
    return {"network_id": int.from_bytes(value[:2], "big"), "network_cost": int.from_bytes(value[2:], "big")}


def _endpoint(value: bytes, msg: StunMessage) -> Value:
    return decode_address(value)


def _xor_endpoint(value: bytes, msg: StunMessage) -> Value:
    """XOR-MAPPED-ADDRESS layout (RFC 8489 §14.2), except in cookie-less [MS-TURN] messages, whose
    0x0012 is REMOTE-ADDRESS (§2.2.2), a plain address: those carry an [MS-TURN] type rather than
    one of RFC 3489's."""
    if msg.magic or msg.msg_type in _RFC3489_TYPES:
        return decode_xor_address(value, _key(msg))
    return decode_address(value)


_DECODERS: dict[str, Callable[[bytes, StunMessage], Value]] = {
    "address": _endpoint,
    "xor-address": _xor_endpoint,
    "text": lambda value, msg: _text(value),
    "hex": lambda value, msg: value.hex(),
    "u32": _number,
    "u32-hex": lambda value, msg: f"0x{value.hex()}",
    "u64": _number,
    "error-code": _error_code,
    "address-error-code": _address_error_code,
    "unknown-attributes": _unknown_attributes,
    "channel-number": _u16_rffu,
    "port": _u16_rffu,
    "change-request": _change_request,
    "priority": _priority,
    "flag": _flag,
    "family": _family,
    "transport": _transport,
    "even-port": _even_port,
    "nonce": _nonce,
    "password-algorithm": _password_algorithm,
    "password-algorithms": _password_algorithms,
    "icmp": _icmp,
    "transmit-counter": _transmit_counter,
    "data": _data,
    "padding": _padding,
    "ms-sequence": _ms_sequence,
    "goog-network-info": _goog_network_info,
}
"""Value kind (the registry's second column) -> decoder of the raw value."""

_SIZES: dict[str, int] = {
    "u32": 4, "u32-hex": 4, "u64": 8, "channel-number": 4, "port": 4, "change-request": 4,
    "priority": 4, "flag": 0, "family": 4, "transport": 4, "even-port": 1, "icmp": 8,
    "transmit-counter": 4, "ms-sequence": 24, "goog-network-info": 4,
}
"""Value kind -> the only valid value length (the decoders of these kinds trust it)."""

_DECODER_BY_TYPE = {
    code: (_DECODERS[spec.kind], _SIZES.get(spec.kind)) for code, spec in ATTRIBUTES.items()
}
"""Attribute code -> (decoder, fixed size or None): the tables joined once, one dict access."""


def _typed(msg: StunMessage, attr: Attribute) -> Value:
    """The decoded value, with addresses as :class:`Endpoint` (see :func:`attribute_value`)."""
    attr_type, _, length, raw = attr
    if length != len(raw):
        return _malformed(f"value truncated: {len(raw)} of {length} bytes")
    entry = _DECODER_BY_TYPE.get(attr_type)
    if entry is None:
        return raw.hex()
    decoder, size = entry
    if size is not None and length != size:
        return _malformed(f"{length} bytes, expected {size}")
    return decoder(raw, msg)


def attribute_value(msg: StunMessage, attr: Attribute) -> Value:
    """The JSON-able value of ``attr`` (an attribute of ``msg``); never raises.

    Addresses are ``"1.2.3.4:3478"`` / ``"[::1]:3478"`` strings; unknown attributes are the raw
    value in hex; malformed ones ``{"malformed": "<why>"}``.
    """
    value = _typed(msg, attr)
    return str(value) if value.__class__ is Endpoint else value


def _format_dict(value: dict[str, Any]) -> str:
    return ", ".join(f"{key}={_format(item)}" for key, item in value.items())


def _format(value: Value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        if "malformed" in value and len(value) == 1:
            return f"malformed: {safe_text(value['malformed'])}"
        if "code" in value and "reason" in value:
            prefix = f"{value['family']} " if "family" in value else ""
            return f"{prefix}{value['code']} {safe_text(value['reason'])}".rstrip()
        return _format_dict(value)
    if isinstance(value, list):
        return ", ".join(_format(item) for item in value)
    return str(value)


def format_value(msg: StunMessage, attr: Attribute) -> str:
    """One display line for ``attr``: wire strings through ``safe_text``, ``401 Unauthorized``,
    ``192.0.2.1:32853``, ``priority=1845494271, type_preference=110, ...``; never raises."""
    value = _typed(msg, attr)
    if isinstance(value, str) and ATTRIBUTES.get(attr.type, (None, "hex"))[1] in {"text", "nonce"}:
        return f'"{safe_text(value)}"'
    return _format(value)


def _first(msg: StunMessage, attr_type: int) -> Attribute | None:
    for attr in msg.attributes:
        if attr[0] == attr_type:
            return attr
    return None


def _first_value(msg: StunMessage, attr_type: int) -> Value:
    attr = _first(msg, attr_type)
    if attr is None:
        return None
    value = _typed(msg, attr)
    return None if isinstance(value, dict) and "malformed" in value else value


def xor_mapped(msg: StunMessage) -> Endpoint | None:
    """The reflexive address: XOR-MAPPED-ADDRESS (RFC 8489 §14.2), else the legacy 0x8020, else
    MAPPED-ADDRESS (RFC 3489 §11.2.1, classic servers)."""
    legacy = plain = None
    for attr in msg.attributes:
        attr_type = attr[0]
        if attr_type == XOR_MAPPED_ADDRESS:
            value = _typed(msg, attr)
            if isinstance(value, Endpoint):
                return value
        elif attr_type == XOR_MAPPED_ADDRESS_LEGACY:
            legacy = legacy or attr
        elif attr_type == MAPPED_ADDRESS:
            plain = plain or attr
    for attr in (legacy, plain):
        value = _typed(msg, attr) if attr is not None else None
        if isinstance(value, Endpoint):
            return value
    return None


def mapped(msg: StunMessage) -> Endpoint | None:
    """MAPPED-ADDRESS (RFC 8489 §14.1), or None."""
    return _first_value(msg, MAPPED_ADDRESS)


def xor_relayed(msg: StunMessage) -> Endpoint | None:
    """The first XOR-RELAYED-ADDRESS (RFC 8656 §18.5), or None."""
    return _first_value(msg, XOR_RELAYED_ADDRESS)


def xor_peers(msg: StunMessage) -> list[Endpoint]:
    """Every well-formed XOR-PEER-ADDRESS (RFC 8656 §18.3; CreatePermission may carry several)."""
    peers = (_xor_endpoint(a[3], msg) for a in msg.attributes if a[0] == XOR_PEER_ADDRESS)
    return [peer for peer in peers if isinstance(peer, Endpoint)]


def error_code(msg: StunMessage) -> tuple[int, str] | None:
    """(code, reason phrase) of ERROR-CODE (RFC 8489 §14.8); the registry's phrase when the wire
    phrase is empty."""
    attr = _first(msg, 0x0009)
    parsed = _reason(attr.raw) if attr is not None else None
    if parsed is None or isinstance(parsed, dict):
        return None
    return parsed[0], parsed[1] or ERROR_REASONS.get(parsed[0], "")


def username(msg: StunMessage) -> str | None:
    """USERNAME (RFC 8489 §14.3) as text, or None."""
    return _first_value(msg, 0x0006)


def realm(msg: StunMessage) -> str | None:
    """REALM (RFC 8489 §14.9) as text, or None."""
    return _first_value(msg, 0x0014)


def nonce(msg: StunMessage) -> str | None:
    """NONCE (RFC 8489 §14.10) as text (with its security-feature prefix, if any), or None."""
    attr = _first(msg, 0x0015)
    return _text(attr.raw) if attr is not None else None


def software(msg: StunMessage) -> str | None:
    """SOFTWARE (RFC 8489 §14.14) as text, or None."""
    return _first_value(msg, 0x8022)


def lifetime(msg: StunMessage) -> int | None:
    """LIFETIME in seconds (RFC 8656 §18.2), or None."""
    return _first_value(msg, 0x000D)


def channel_number(msg: StunMessage) -> int | None:
    """CHANNEL-NUMBER (RFC 8656 §18.1), or None."""
    return _first_value(msg, 0x000C)


def priority(msg: StunMessage) -> int | None:
    """PRIORITY (RFC 8445 §16.1) as the 32-bit number, or None."""
    value = _first_value(msg, 0x0024)
    return value["priority"] if value is not None else None


def ice_role(msg: StunMessage) -> tuple[str, int] | None:
    """("controlling" | "controlled", tie-breaker) from ICE-CONTROLLING/ICE-CONTROLLED (RFC 8445 §16.1)."""
    for attr_type, role in ((0x802A, "controlling"), (0x8029, "controlled")):
        value = _first_value(msg, attr_type)
        if value is not None:
            return role, value
    return None


def use_candidate(msg: StunMessage) -> bool:
    """True when USE-CANDIDATE (RFC 8445 §16.1) is present: the pair is nominated."""
    return _first(msg, 0x0025) is not None


def data(msg: StunMessage) -> bytes | None:
    """The DATA attribute's bytes (RFC 8656 §18.4) of a Send/Data indication, or None."""
    attr = _first(msg, 0x0013)
    return attr.raw if attr is not None else None


def malformed_attributes(msg: StunMessage) -> list[str]:
    """Names of the attributes whose value does not decode (for a ``malformed-attribute`` note)."""
    return [
        attr_name(attr.type)
        for attr in msg.attributes
        if isinstance(value := _typed(msg, attr), dict) and "malformed" in value
    ]
