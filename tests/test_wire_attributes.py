"""Every typed attribute decoder: value, display line, helpers, and the malformed forms."""

from __future__ import annotations

import pytest

from stunscope.wire.attributes import (
    attribute_value,
    channel_number,
    data,
    error_code,
    format_value,
    ice_role,
    lifetime,
    malformed_attributes,
    mapped,
    nonce,
    priority,
    realm,
    software,
    use_candidate,
    username,
    xor_mapped,
    xor_peers,
    xor_relayed,
)
from stunscope.wire.decode import decode_message
from stunscope.wire.encode import (
    encode_address,
    encode_error_code,
    encode_message,
    encode_priority,
    encode_u16_rffu,
    encode_u32,
    encode_u64,
    encode_xor_address,
)
from stunscope.wire.message import Endpoint, StunMessage
from stunscope.wire.registry import ATTRIBUTES

TXID = bytes.fromhex("b7e7a701bc34d686fa87dfae")
V4 = Endpoint("192.0.2.1", 32853)
V6 = Endpoint("2001:db8::1", 3478)


def _msg(*attrs: tuple[int, bytes], txid: bytes = TXID) -> StunMessage:
    msg = decode_message(encode_message(0x001, 2, txid, list(attrs), fingerprint=False))
    assert isinstance(msg, StunMessage)
    return msg


def _value(attr_type: int, raw: bytes) -> object:
    msg = _msg((attr_type, raw))
    return attribute_value(msg, msg.attributes[0])


def _line(attr_type: int, raw: bytes) -> str:
    msg = _msg((attr_type, raw))
    return format_value(msg, msg.attributes[0])


CASES = [
    # (attribute, raw value, JSON value, display line)
    (0x0001, encode_address(V4), "192.0.2.1:32853", "192.0.2.1:32853"),
    (0x0020, encode_xor_address(V4, TXID), "192.0.2.1:32853", "192.0.2.1:32853"),
    (0x8020, encode_xor_address(V6, TXID), "[2001:db8::1]:3478", "[2001:db8::1]:3478"),
    (0x0012, encode_xor_address(V6, TXID), "[2001:db8::1]:3478", "[2001:db8::1]:3478"),
    (0x0016, encode_xor_address(V4, TXID), "192.0.2.1:32853", "192.0.2.1:32853"),
    (0x8023, encode_address(V6), "[2001:db8::1]:3478", "[2001:db8::1]:3478"),
    (0x802B, encode_address(V4), "192.0.2.1:32853", "192.0.2.1:32853"),
    (0x802C, encode_address(V4), "192.0.2.1:32853", "192.0.2.1:32853"),
    (0x0003, b"\x00\x00\x00\x06", {"change_ip": True, "change_port": True}, "change_ip=yes, change_port=yes"),
    (0x0003, b"\x00\x00\x00\x02", {"change_ip": False, "change_port": True}, "change_ip=no, change_port=yes"),
    (0x0027, b"\x0d\x96\x00\x00", 3478, "3478"),
    (0x0026, bytes(7), {"length": 7}, "length=7"),
    (0x0006, b"alice:bob", "alice:bob", '"alice:bob"'),
    (0x001E, bytes(range(32)), bytes(range(32)).hex(), bytes(range(32)).hex()),
    (0x0014, b"example.org", "example.org", '"example.org"'),
    (0x8022, b"evil\x1b[2J", "evil\x1b[2J", '"evil\\x1b[2J"'),
    (0x0009, encode_error_code(401, "Unauthorized"), {"code": 401, "reason": "Unauthorized"}, "401 Unauthorized"),
    (0x000A, b"\x00\x20\x80\x47", ["XOR-MAPPED-ADDRESS", "0x8047"], "XOR-MAPPED-ADDRESS, 0x8047"),
    (0x000D, encode_u32(600), 600, "600"),
    (0x0019, b"\x11\x00\x00\x00", "UDP", "UDP"),
    (0x0019, b"\x06\x00\x00\x00", "TCP", "TCP"),
    (0x0017, b"\x02\x00\x00\x00", "IPv6", "IPv6"),
    (0x8000, b"\x01\x00\x00\x00", "IPv4", "IPv4"),
    (0x8001, b"\x02\x00\x04\x28Address Family not Supported",
     {"family": "IPv6", "code": 440, "reason": "Address Family not Supported"}, "IPv6 440 Address Family not Supported"),
    (0x0018, b"\x80", {"reserve_next": True}, "reserve_next=yes"),
    (0x0022, bytes(range(8)), "0001020304050607", "0001020304050607"),
    (0x001A, b"", True, "yes"),
    (0x000C, encode_u16_rffu(0x4001), 0x4001, "16385"),
    (0x0013, b"\x80\x00" + bytes(14), {"length": 16, "kind": "rtp"}, "length=16, kind=rtp"),
    (0x002A, encode_u32(0xDEADBEEF), 0xDEADBEEF, str(0xDEADBEEF)),
    (0x8004, b"\x00\x00\x03\x01\x00\x00\x05\xdc", {"type": 3, "code": 1, "error_data": "000005dc"},
     "type=3, code=1, error_data=000005dc"),
    (0x0024, encode_priority(126, 65535, 1),
     {"priority": 2130706431, "type_preference": 126, "local_preference": 65535, "component": 1},
     "priority=2130706431, type_preference=126, local_preference=65535, component=1"),
    (0x0025, b"", True, "yes"),
    (0x802A, encode_u64(42), 42, "42"),
    (0x8029, encode_u64(7), 7, "7"),
    (0x0008, bytes(20), "00" * 20, "00" * 20),
    (0x001C, bytes(32), "00" * 32, "00" * 32),
    (0x001D, b"\x00\x02\x00\x00", {"algorithm": "SHA-256", "parameters": ""}, "algorithm=SHA-256, parameters="),
    (0x8002, b"\x00\x01\x00\x00\x00\x02\x00\x00", [{"algorithm": "MD5", "parameters": ""},
                                                 {"algorithm": "SHA-256", "parameters": ""}],
     "algorithm=MD5, parameters=, algorithm=SHA-256, parameters="),
    (0x8003, b"turn.example.org", "turn.example.org", '"turn.example.org"'),
    (0x8028, b"\xe5\x7a\x3b\xcf", "0xe57a3bcf", "0xe57a3bcf"),
    (0x001B, b"\x00\x04abcd", "000461626364", "000461626364"),
    (0x802E, b"https://auth.example.org", "https://auth.example.org", '"https://auth.example.org"'),
    (0x8030, b"\x01\x02", "0102", "0102"),
    (0x8025, b"\x00\x00\x02\x01", {"request": 2, "response": 1}, "request=2, response=1"),
    (0x8008, encode_u32(6), 6, "6"),
    (0x8070, encode_u32(2), 2, "2"),
    (0x8054, b"1", "1", '"1"'),
    (0x8050, bytes(20) + encode_u32(9), {"connection_id": "00" * 20, "sequence": 9},
     f"connection_id={'00' * 20}, sequence=9"),
    (0xC057, b"\x00\x01\x00\x0a", {"network_id": 1, "network_cost": 10}, "network_id=1, network_cost=10"),
    (0x7FFF, b"\x01\x02\x03", "010203", "010203"),
]


@pytest.mark.parametrize(("attr_type", "raw", "value", "line"), CASES, ids=lambda c: None)
def test_typed_values(attr_type: int, raw: bytes, value: object, line: str) -> None:
    assert _value(attr_type, raw) == value
    assert _line(attr_type, raw) == line


def test_every_registered_kind_has_a_case() -> None:
    tested = {ATTRIBUTES[t].kind for t, *_ in CASES if t in ATTRIBUTES}
    assert {spec.kind for spec in ATTRIBUTES.values()} <= tested | {"nonce"}


MALFORMED = [
    (0x0001, b"\x00\x01\x00"),  # too short for an address
    (0x0020, b"\x00\x03\x00\x01\x00\x00\x00\x00"),  # unknown family
    (0x0001, b"\x00\x02\x00\x01\x00\x00\x00\x00"),  # IPv6 family, IPv4 length
    (0x0009, b"\x00\x00\x07\x00"),  # class 7
    (0x0009, b"\x00\x00\x04\x64"),  # number 100
    (0x0009, b"\x00\x00"),
    (0x000A, b"\x00\x20\x80"),
    (0x000C, b"\x40\x00"),
    (0x0027, b"\x0d\x96"),  # RESPONSE-PORT without its padding
    (0x0003, b"\x06"),
    (0x0024, b"\x00\x00\x00"),
    (0x8029, b"\x00" * 7),
    (0x0025, b"\x00"),
    (0x0017, b"\x03\x00\x00\x00"),
    (0x0019, b"\x11"),
    (0x0018, b"\x80\x00"),
    (0x001D, b"\x00\x01\x00\x08\x00"),
    (0x8002, b"\x00\x01\x00"),
    (0x8004, b"\x00\x00\x03"),
    (0x8025, b"\x00"),
    (0x8028, b"\x00\x00\x00"),
    (0x8050, b"\x00" * 23),
    (0xC057, b"\x00\x01"),
    (0x000D, b"\x00\x00\x02\x58\x00"),
]


@pytest.mark.parametrize(("attr_type", "raw"), MALFORMED)
def test_malformed_values_say_so(attr_type: int, raw: bytes) -> None:
    value = _value(attr_type, raw)
    assert isinstance(value, dict) and set(value) == {"malformed"}
    assert _line(attr_type, raw).startswith("malformed: ")
    assert malformed_attributes(_msg((attr_type, raw))) == [ATTRIBUTES[attr_type].name]


def test_truncated_attribute_value_is_malformed() -> None:
    full = encode_message(0x001, 0, TXID, [(0x0006, b"abcdefgh")], fingerprint=False)
    msg = decode_message(full[:-2])
    assert attribute_value(msg, msg.attributes[0]) == {"malformed": "value truncated: 6 of 8 bytes"}
    assert username(msg) is None


def test_nonce_security_features() -> None:
    # RFC 8489 §9.2: "obMatJos2" + base64 of the 24-bit feature set (bit 0 = most significant).
    both = _value(0x0015, b"obMatJos2wAAAxyz")  # "wAAA" = 0xC00000: bits 0 and 1
    assert both == {"nonce": "obMatJos2wAAAxyz", "security_features": ["password-algorithms", "username-anonymity"]}
    assert _value(0x0015, b"obMatJos2gAAAq")["security_features"] == ["password-algorithms"]
    assert _value(0x0015, b"obMatJos2AAAA")["security_features"] == []
    assert _value(0x0015, b"obMatJos2!!")["security_features"] == {"malformed": "the 4 feature characters are not base64"}
    assert _value(0x0015, b"obMatJos2!!!!x")["security_features"] == {"malformed": "the 4 feature characters are not base64"}
    assert _value(0x0015, b"plain-nonce") == "plain-nonce"
    assert nonce(_msg((0x0015, b"obMatJos2AAAAx"))) == "obMatJos2AAAAx"


def test_helpers() -> None:
    msg = _msg(
        (0x0020, encode_xor_address(V4, TXID)), (0x0016, encode_xor_address(V6, TXID)),
        (0x0012, encode_xor_address(V4, TXID)), (0x0012, encode_xor_address(V6, TXID)),
        (0x0009, encode_error_code(438, "")), (0x000D, encode_u32(0)), (0x000C, encode_u16_rffu(0x4000)),
        (0x0024, encode_u32(0x6E0001FF)), (0x802A, encode_u64(99)), (0x0025, b""), (0x0013, b"hi"),
        (0x8022, b"coturn"), (0x0006, b"u"), (0x0014, b"r"), (0x0001, encode_address(V6)),
    )
    assert xor_mapped(msg) == V4 and xor_relayed(msg) == V6 and xor_peers(msg) == [V4, V6]
    assert error_code(msg) == (438, "Stale Nonce")  # empty wire phrase: the registry's
    assert (lifetime(msg), channel_number(msg), priority(msg)) == (0, 0x4000, 0x6E0001FF)
    assert ice_role(msg) == ("controlling", 99) and use_candidate(msg) is True
    assert (data(msg), software(msg), username(msg), realm(msg), mapped(msg)) == (b"hi", "coturn", "u", "r", V6)
    empty = _msg()
    assert (xor_mapped(empty), xor_relayed(empty), xor_peers(empty), error_code(empty), ice_role(empty)) == (
        None, None, [], None, None)
    assert (use_candidate(empty), data(empty), nonce(empty), priority(empty)) == (False, None, None, None)


def test_cookie_less_ms_turn_remote_address_is_plain() -> None:
    """[MS-TURN] Data indications (type 0x0115, no cookie) carry 0x0012 as a plain REMOTE-ADDRESS."""
    txid = bytes(range(16))
    msg = decode_message(encode_message(0x005, 3, txid, [(0x0012, encode_address(V4))], fingerprint=False))
    assert isinstance(msg, StunMessage) and not msg.magic
    assert xor_peers(msg) == [V4]
    assert attribute_value(msg, msg.attributes[0]) == "192.0.2.1:32853"


def test_xor_mapped_falls_back_to_mapped_address_for_classic() -> None:
    classic = _msg((0x0001, encode_address(V4)), txid=bytes(range(16)))
    assert not classic.magic and xor_mapped(classic) == V4


def test_classic_xor_address_uses_the_128_bit_id() -> None:
    txid = bytes(range(16))
    assert xor_mapped(_msg((0x8020, encode_xor_address(V6, txid)), txid=txid)) == V6


def test_first_of_repeated_attributes_wins() -> None:
    msg = _msg((0x000D, encode_u32(1)), (0x000D, encode_u32(2)))
    assert lifetime(msg) == 1


def test_invalid_utf8_is_escaped_not_replaced() -> None:
    assert _line(0x8022, b"caf\xe9") == '"caf\\xe9"'
