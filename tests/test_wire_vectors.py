"""RFC 5769 test vectors: byte-exact decoding, FINGERPRINT and MESSAGE-INTEGRITY (short- and
long-term with SASLprep), and that a flipped byte fails them."""

from __future__ import annotations

import pytest

from stunscope.wire.attributes import (
    attribute_value,
    ice_role,
    nonce,
    priority,
    realm,
    software,
    username,
    xor_mapped,
)
from stunscope.wire.decode import decode_message
from stunscope.wire.integrity import Keyring, check_fingerprint, check_integrity, saslprep
from stunscope.wire.message import MessageClass, StunMessage
from stunscope.wire.registry import attr_name

RFC5769_PASSWORD_24 = "The\u00adM\u00aatr\u2168"
"""RFC 5769 §2.4's password before SASLprep (soft hyphen, feminine ordinal, Roman numeral nine)."""


def _keyring(vector: dict) -> Keyring:
    expected = vector["expected"]
    keyring = Keyring()
    if expected["credential"] == "short-term":
        keyring.add_short_term(expected["password"])
    else:
        keyring.add_long_term(expected["username"], RFC5769_PASSWORD_24)
    return keyring


def _decode(vector: dict) -> StunMessage:
    msg = decode_message(bytes.fromhex(vector["hex"]))
    assert isinstance(msg, StunMessage)
    return msg


def test_header_and_attributes_match_the_vectors(rfc5769_vectors: list[dict]) -> None:
    for vector in rfc5769_vectors:
        msg, decoded = _decode(vector), vector["decoded"]
        assert msg.magic and msg.msg_type == int(decoded["message_type"], 16)
        assert (msg.method, int(msg.cls)) == (decoded["method"], decoded["class"])
        assert msg.txid.hex() == decoded["transaction_id"]
        assert msg.length + 20 == vector["length"] == len(msg.raw)
        assert [(f"0x{a.type:04x}", attr_name(a.type), a.length, a.raw.hex()) for a in msg.attributes] == [
            (a["type"], a["name"], a["length"], a["value_hex"]) for a in decoded["attributes"]
        ]
        # The RFC pads with spaces: legal, and noted with the low-key finding only.
        assert set(msg.findings) <= {"nonzero-padding"}


def test_expected_fields(rfc5769_vectors: list[dict]) -> None:
    by_name = {v["name"]: v for v in rfc5769_vectors}
    request = _decode(by_name["request"])
    assert username(request) == "evtj:h6vY"
    assert software(request) == "STUN test client"
    assert priority(request) == 0x6E0001FF
    assert ice_role(request) == ("controlled", 0x932FF9B151263B36)
    assert str(xor_mapped(_decode(by_name["ipv4_response"]))) == "192.0.2.1:32853"
    assert str(xor_mapped(_decode(by_name["ipv6_response"]))) == "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
    long_term = _decode(by_name["long_term_request"])
    assert username(long_term) == "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
    assert realm(long_term) == "example.org"
    assert nonce(long_term) == "f//499k954d6OL34oL9FSTvy64sA"
    assert long_term.cls is MessageClass.REQUEST


def test_attribute_values_are_json_ready(rfc5769_vectors: list[dict]) -> None:
    request = _decode(rfc5769_vectors[0])
    values = {attr_name(a.type): attribute_value(request, a) for a in request.attributes}
    assert values["PRIORITY"] == {
        "priority": 1845494271, "type_preference": 110, "local_preference": 1, "component": 1,
    }
    assert values["ICE-CONTROLLED"] == 0x932FF9B151263B36
    assert values["FINGERPRINT"] == "0xe57a3bcf"


def test_saslprep_maps_the_rfc5769_password() -> None:
    assert saslprep(RFC5769_PASSWORD_24) == "TheMatrIX"


def test_fingerprint_and_integrity_verify(rfc5769_vectors: list[dict]) -> None:
    for vector in rfc5769_vectors:
        msg = _decode(vector)
        expected_fp = "ok" if vector["checks"].get("fingerprint") else None
        assert check_fingerprint(msg) == expected_fp, vector["name"]
        assert check_integrity(msg, _keyring(vector)) == "ok", vector["name"]
        assert check_integrity(msg, Keyring()) == "no-key"


@pytest.mark.parametrize("where", ["header", "first-attribute", "before-integrity"])
def test_a_flipped_byte_fails_the_checks(rfc5769_vectors: list[dict], where: str) -> None:
    for vector in rfc5769_vectors:
        raw = bytearray.fromhex(vector["hex"])
        msg = _decode(vector)
        integrity = next(a for a in msg.attributes if a.type == 0x0008)
        offset = {"header": 9, "first-attribute": 25, "before-integrity": integrity.offset - 1}[where]
        raw[offset] ^= 0x01
        damaged = decode_message(bytes(raw))
        assert isinstance(damaged, StunMessage)
        # A flipped USERNAME/REALM byte would select no key: check with the original identity.
        assert check_integrity(damaged, _keyring(vector), username(msg), realm(msg)) == "bad"
        if vector["checks"].get("fingerprint"):
            assert check_fingerprint(damaged) == "bad"
            assert "bad-fingerprint" in damaged.findings


def test_wrong_password_is_bad(rfc5769_vectors: list[dict]) -> None:
    keyring = Keyring()
    keyring.add_short_term("not the password")
    assert check_integrity(_decode(rfc5769_vectors[0]), keyring) == "bad"


def test_response_checked_with_the_request_credentials(rfc5769_vectors: list[dict]) -> None:
    """Responses carry no USERNAME: the caller passes the request's (short-term here)."""
    response = _decode(rfc5769_vectors[1])
    assert check_integrity(response, _keyring(rfc5769_vectors[1]), username="evtj:h6vY") == "ok"
