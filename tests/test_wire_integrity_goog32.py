"""GOOG-MESSAGE-INTEGRITY-32 (0xC060): libwebrtc's 4-byte HMAC-SHA1 on GOOG-PING and Binding.

The expected MAC is computed here with :mod:`hmac`, independently of stunscope, the way
libwebrtc's ``StunMessage::ValidateMessageIntegrityOfType`` reads it: HMAC-SHA1 keyed with the
ICE password over the message up to the attribute, with the header length rewritten to end
just after the 8-byte attribute (as RFC 8489 §14.5 does for MESSAGE-INTEGRITY), truncated to 4.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from test_wire_integrity import _keyring, _msg
from stunscope.analysis import analyze
from stunscope.capture.events import MessageEvent
from stunscope.report.messages import MessageFormatter, message_json
from stunscope.wire.attributes import attribute_value
from stunscope.wire.encode import encode_message
from stunscope.wire.integrity import Keyring, check_integrity
from stunscope.wire.message import Endpoint, StunMessage

GOOG_PING, BINDING, REQUEST, SUCCESS = 0x080, 0x001, 0, 2
GOOG_MI_32, USERNAME = 0xC060, 0x0006
TXID = bytes(range(12))
PASSWORD = "pLyJXPVgOGHcT4lZtBtsTAqs"
"""A 24-character ICE password (RFC 8839 §5.4: ice-pwd is 22-256 ice-chars)."""


def _mac32(unsigned: bytes, key: bytes) -> bytes:
    """libwebrtc's value for a message whose bytes before the attribute are ``unsigned``."""
    length = len(unsigned) - 20 + 8  # the body up to and including the 4-byte attribute
    signed = unsigned[:2] + length.to_bytes(2, "big") + unsigned[4:]
    return hmac.new(key, signed, hashlib.sha1).digest()[:4]


def _signed(method: int = GOOG_PING, cls: int = REQUEST, attrs: tuple[tuple[int, bytes], ...] = (),
            key: bytes = PASSWORD.encode(), fingerprint: bool = True) -> bytes:
    unsigned = encode_message(method, cls, TXID, attrs, fingerprint=False)
    return encode_message(method, cls, TXID, [*attrs, (GOOG_MI_32, _mac32(unsigned, key))],
                          fingerprint=fingerprint)


def _ring(*passwords: str) -> Keyring:
    """A keyring of ICE (short-term) passwords."""
    return _keyring(*(f"ice={password}" for password in passwords))


@pytest.mark.parametrize("fingerprint", [True, False])
def test_goog_ping_verifies_with_the_ice_password(fingerprint: bool) -> None:
    msg = _msg(_signed(fingerprint=fingerprint))
    assert check_integrity(msg, _ring("other-password-000000000", PASSWORD)) == "ok"
    assert message_json(msg, _ring(PASSWORD))["integrity"] == "ok"


def test_binding_check_with_username_verifies() -> None:
    data = _signed(BINDING, REQUEST, ((USERNAME, b"abcd:efgh"),))
    assert check_integrity(_msg(data), _ring(PASSWORD)) == "ok"


@pytest.mark.parametrize("offset", [1, 9, 20, 24, -1])
def test_a_flipped_byte_is_bad(offset: int) -> None:
    """The type, the txid, USERNAME's type and value, the MAC itself: any change is caught."""
    data = bytearray(_signed(BINDING, REQUEST, ((USERNAME, b"abcd:efgh"),), fingerprint=False))
    data[offset] ^= 0x01
    msg = _msg(bytes(data))
    assert check_integrity(msg, _ring(PASSWORD)) == "bad"


def test_wrong_key_is_bad_and_no_key_is_no_key() -> None:
    msg = _msg(_signed())
    assert check_integrity(msg, _ring("not-the-password-0000000")) == "bad"
    assert check_integrity(msg, None) == "no-key"
    assert message_json(msg)["integrity"] == "no-key"


def test_the_full_20_byte_mac_is_not_accepted_in_place_of_4() -> None:
    """libwebrtc accepts only a 4-byte value; 20 bytes of the right HMAC are still bad."""
    unsigned = encode_message(GOOG_PING, REQUEST, TXID, (), fingerprint=False)
    length = len(unsigned) - 20 + 24
    full = hmac.new(PASSWORD.encode(), unsigned[:2] + length.to_bytes(2, "big") + unsigned[4:],
                    hashlib.sha1).digest()
    msg = _msg(encode_message(GOOG_PING, REQUEST, TXID, [(GOOG_MI_32, full)]))
    assert check_integrity(msg, _ring(PASSWORD)) == "bad"


@pytest.mark.parametrize("size", [0, 3, 5, 8])
def test_an_attribute_that_is_not_4_bytes_is_a_finding_not_a_traceback(size: int) -> None:
    msg = _msg(encode_message(GOOG_PING, REQUEST, TXID, [(GOOG_MI_32, bytes(range(size)))]))
    attr = next(a for a in msg.attributes if a.type == GOOG_MI_32)
    assert attribute_value(msg, attr) == {"malformed": f"{size} bytes, expected 4"}
    assert check_integrity(msg, _ring(PASSWORD)) == "bad"
    line = MessageFormatter(_ring(PASSWORD)).line(_event(msg))
    assert line.endswith("mi=bad")


def test_a_goog_ping_cut_inside_the_attribute_is_a_finding_not_a_traceback() -> None:
    cut = _signed(fingerprint=False)[:-2]
    msg = _msg(cut[:2] + (len(cut) - 20).to_bytes(2, "big") + cut[4:])
    obj = message_json(msg, _ring(PASSWORD))
    assert "attribute-overrun" in obj["findings"]
    assert obj["attributes"][0]["value"] == {"malformed": "value truncated: 2 of 4 bytes"}
    assert obj["integrity"] == "bad"


def test_message_integrity_takes_precedence_as_in_libwebrtc() -> None:
    """libwebrtc checks GOOG-MESSAGE-INTEGRITY-32 only when MESSAGE-INTEGRITY is absent."""
    key = PASSWORD.encode()
    garbage = encode_message(BINDING, REQUEST, TXID, [(GOOG_MI_32, b"\x00" * 4)], integrity_key=key)
    assert check_integrity(_msg(garbage), _ring(PASSWORD)) == "ok"
    unsigned = encode_message(BINDING, REQUEST, TXID, (), fingerprint=False)
    good32 = encode_message(BINDING, REQUEST, TXID, [(GOOG_MI_32, _mac32(unsigned, key))],
                            integrity_key=b"another-key")
    assert check_integrity(_msg(good32), _ring(PASSWORD)) == "bad"


def test_response_signed_the_same_way() -> None:
    """libwebrtc answers a GOOG-PING with a GOOG-PING success response signed with the same key."""
    assert check_integrity(_msg(_signed(GOOG_PING, SUCCESS)), _ring(PASSWORD)) == "ok"


def _event(msg: StunMessage, frame: int = 1) -> MessageEvent:
    return MessageEvent(frame, float(frame), Endpoint("10.0.0.1", 5000), Endpoint("10.0.0.2", 6000),
                        "udp", "stun", msg, None, None, None, 0)


def test_jsonl_and_text_show_the_goog_integrity() -> None:
    good, bad = _msg(_signed()), _msg(_signed(key=b"wrong-password-000000000"))
    formatter = MessageFormatter(_ring(PASSWORD))
    assert formatter.to_json(_event(good))["integrity"] == "ok"
    assert formatter.to_json(_event(bad, 2))["integrity"] == "bad"
    assert formatter.line(_event(good, 3)).endswith("fp=ok mi=ok")
    attributes = formatter.to_json(_event(good, 4))["attributes"]
    assert [a["name"] for a in attributes] == ["GOOG-MESSAGE-INTEGRITY-32", "FINGERPRINT"]
    unsigned = encode_message(GOOG_PING, REQUEST, TXID, (), fingerprint=False)
    assert attributes[0]["value"] == f"0x{_mac32(unsigned, PASSWORD.encode()).hex()}"


def test_a_bad_goog_ping_raises_bad_integrity_in_the_analysis() -> None:
    good, bad = _msg(_signed()), _msg(_signed(key=b"wrong-password-000000000"))
    verdicts = {
        name: [v.code for v in analyze([_event(msg)], keyring=_ring(PASSWORD)).verdicts]
        for name, msg in (("good", good), ("bad", bad))
    }
    assert "bad-integrity" in verdicts["bad"]
    assert "bad-integrity" not in verdicts["good"]



def test_a_bad_goog_ping_response_raises_bad_integrity_too() -> None:
    """Answers are checked where their request is known (the analysis's response path)."""
    request = _msg(_signed())
    verdicts = {}
    for name, key in (("good", PASSWORD.encode()), ("bad", b"wrong-password-000000000")):
        response = _msg(_signed(GOOG_PING, SUCCESS, key=key))
        answer = MessageEvent(2, 2.0, Endpoint("10.0.0.2", 6000), Endpoint("10.0.0.1", 5000),
                              "udp", "stun", response, None, None, None, 0)
        found = analyze([_event(request), answer], keyring=_ring(PASSWORD)).verdicts
        verdicts[name] = [v.code for v in found]
    assert "bad-integrity" in verdicts["bad"]
    assert "bad-integrity" not in verdicts["good"]


def test_the_sdp_passwords_do_not_change_the_callers_keyring(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """check analyses a capture and its baseline with one keyring: the capture's --sdp passwords
    must not leak into the baseline's analysis by being added to it."""
    from stunscope.analysis.analyzer import Analyzer

    sdp = tmp_path / "offer.sdp"
    sdp.write_text(f"v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:{PASSWORD}\r\n")
    ring = _ring("another-password-0000000")
    before = len(ring)
    analyzer = Analyzer(ring, [sdp])
    assert len(ring) == before
    assert analyzer.keyring is not None and len(analyzer.keyring) == before + 1
