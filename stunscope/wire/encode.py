"""Encode STUN messages and attribute values (RFC 8489 §5, §14; RFC 8656 §12, §18).

For tests, benchmarks and crafting: ``decode_message(encode_message(...))`` gives back the same
method, class, transaction id and attributes. Attributes are ``(type, value bytes)`` pairs built
with the ``encode_*`` value helpers; padding is zeros.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
from collections.abc import Iterable
from zlib import crc32

from stunscope.wire.message import MAGIC_COOKIE, Endpoint

__all__ = [
    "encode_address",
    "encode_attribute",
    "encode_channeldata",
    "encode_error_code",
    "encode_message",
    "encode_ms_turn_mux",
    "encode_priority",
    "encode_type",
    "encode_u16_rffu",
    "encode_u32",
    "encode_u64",
    "encode_xor_address",
]

_COOKIE = MAGIC_COOKIE.to_bytes(4, "big")
MESSAGE_INTEGRITY = 0x0008
MESSAGE_INTEGRITY_SHA256 = 0x001C
FINGERPRINT = 0x8028


def encode_type(method: int, cls: int) -> int:
    """RFC 8489 §5: interleave the 12-bit method and the 2-bit class (M11..M7 C1 M6..M4 C0 M3..M0)."""
    return (
        (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((cls & 1) << 4)
        | ((cls & 2) << 7)
    )


def encode_attribute(attr_type: int, value: bytes) -> bytes:
    """One TLV with zero padding to a 4-byte boundary (RFC 8489 §14)."""
    return attr_type.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value + bytes(-len(value) & 3)


def encode_message(
    method: int,
    cls: int,
    txid: bytes,
    attrs: Iterable[tuple[int, bytes]],
    *,
    integrity_key: bytes | None = None,
    integrity_sha256_key: bytes | None = None,
    fingerprint: bool = True,
) -> bytes:
    """A whole message: header, ``attrs``, then MESSAGE-INTEGRITY (HMAC-SHA1 with
    ``integrity_key``, §14.5), MESSAGE-INTEGRITY-SHA256 (§14.6) and FINGERPRINT (§14.7) as asked.

    A 12-byte ``txid`` gives an RFC 8489 message (magic cookie); a 16-byte one a classic RFC 3489
    message. Keys are the raw HMAC keys (see :mod:`stunscope.wire.integrity` for derivation).
    """
    msg_type = encode_type(method, cls).to_bytes(2, "big")
    prefix = b"" if len(txid) == 16 else _COOKIE
    body = b"".join(encode_attribute(t, v) for t, v in attrs)

    def header(extra: int) -> bytes:
        return msg_type + (len(body) + extra).to_bytes(2, "big") + prefix + txid

    if integrity_key is not None:
        mac = hmac.new(integrity_key, header(24) + body, hashlib.sha1).digest()
        body += encode_attribute(MESSAGE_INTEGRITY, mac)
    if integrity_sha256_key is not None:
        mac = hmac.new(integrity_sha256_key, header(36) + body, hashlib.sha256).digest()
        body += encode_attribute(MESSAGE_INTEGRITY_SHA256, mac)
    if fingerprint:
        crc = crc32(header(8) + body) ^ 0x5354554E
        body += encode_attribute(FINGERPRINT, crc.to_bytes(4, "big"))
    return header(0) + body


_FAMILY = {4: (0x01, socket.AF_INET), 16: (0x02, socket.AF_INET6)}


def _ip_bytes(ip: str) -> bytes:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return socket.inet_pton(family, ip)


def encode_address(endpoint: Endpoint) -> bytes:
    """MAPPED-ADDRESS value (RFC 8489 §14.1): reserved, family, port, address."""
    raw = _ip_bytes(endpoint.ip)
    return bytes((0, _FAMILY[len(raw)][0])) + endpoint.port.to_bytes(2, "big") + raw


def encode_xor_address(endpoint: Endpoint, txid: bytes) -> bytes:
    """XOR-MAPPED-ADDRESS value (RFC 8489 §14.2) for a message with this transaction id
    (12 bytes: XOR with cookie + id; 16 bytes, classic: XOR with the id)."""
    key = txid if len(txid) == 16 else _COOKIE + txid
    raw = _ip_bytes(endpoint.ip)
    xored = (int.from_bytes(raw, "big") ^ int.from_bytes(key[: len(raw)], "big")).to_bytes(len(raw), "big")
    port = endpoint.port ^ int.from_bytes(key[:2], "big")
    return bytes((0, _FAMILY[len(raw)][0])) + port.to_bytes(2, "big") + xored


def encode_error_code(code: int, reason: str) -> bytes:
    """ERROR-CODE value (RFC 8489 §14.8): class in bits 8-10, number 0-99, UTF-8 reason."""
    return bytes((0, 0, code // 100, code % 100)) + reason.encode()


def encode_u32(number: int) -> bytes:
    """A 32-bit value (LIFETIME, PRIORITY, CONNECTION-ID...)."""
    return number.to_bytes(4, "big")


def encode_u64(number: int) -> bytes:
    """A 64-bit value (ICE-CONTROLLING / ICE-CONTROLLED tie-breaker, RFC 8445 §16.1)."""
    return number.to_bytes(8, "big")


def encode_u16_rffu(number: int) -> bytes:
    """A 16-bit value then 16 bits RFFU (CHANNEL-NUMBER RFC 8656 §18.1, RESPONSE-PORT RFC 5780 §7.5)."""
    return number.to_bytes(2, "big") + b"\x00\x00"


def encode_priority(type_preference: int, local_preference: int, component: int) -> bytes:
    """PRIORITY value (RFC 8445 §5.1.2.1): 2^24 type + 2^8 local + (256 - component)."""
    return encode_u32((type_preference << 24) | (local_preference << 8) | (256 - component))


def encode_channeldata(channel: int, payload: bytes, tcp: bool) -> bytes:
    """ChannelData (RFC 8656 §12.4); padded to 4 bytes over TCP (§12.5), unpadded over UDP."""
    pad = bytes(-len(payload) & 3) if tcp else b""
    return channel.to_bytes(2, "big") + len(payload).to_bytes(2, "big") + payload + pad


def encode_ms_turn_mux(session_id: bytes, payload: bytes) -> bytes:
    """[MS-TURN] §2.2.3 multiplexed TURN packet: 0xFF10, length, 8-byte session id, data."""
    return b"\xff\x10" + (8 + len(payload)).to_bytes(2, "big") + session_id + payload

