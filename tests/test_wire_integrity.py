"""MESSAGE-INTEGRITY-SHA256, long-term keys with PASSWORD-ALGORITHM, credentials syntax, secrecy."""

from __future__ import annotations

import hashlib

import pytest

from stunscope.wire.decode import decode_message
from stunscope.wire.encode import encode_message
from stunscope.wire.integrity import (
    Keyring,
    check_fingerprint,
    check_integrity,
    long_term_key,
    parse_credential,
    parse_credentials_text,
    saslprep,
)
from stunscope.wire.message import StunMessage

TXID = bytes(range(12))
LONG_TERM = [(0x0006, b"alice"), (0x0014, b"example.org"), (0x0015, b"nonce-1")]


def _msg(data: bytes) -> StunMessage:
    msg = decode_message(data)
    assert isinstance(msg, StunMessage)
    return msg


def _keyring(*credentials: str) -> Keyring:
    keyring = Keyring()
    for text in credentials:
        keyring.add(parse_credential(text))
    return keyring


def test_long_term_key_is_md5_of_user_realm_password() -> None:
    assert long_term_key("user", "realm", "pass") == hashlib.md5(b"user:realm:pass").digest()
    assert long_term_key("user", "realm", "pass", sha256=True) == hashlib.sha256(b"user:realm:pass").digest()


def test_message_integrity_sha256_verifies_and_fails() -> None:
    key = long_term_key("alice", "example.org", "s3cret")
    data = encode_message(0x003, 0, TXID, LONG_TERM, integrity_sha256_key=key)
    keyring = _keyring("alice:s3cret")
    assert check_integrity(_msg(data), keyring) == "ok"
    damaged = bytearray(data)
    damaged[30] ^= 1
    assert check_integrity(_msg(bytes(damaged)), keyring) == "bad"
    assert check_integrity(_msg(data), _keyring("alice:wrong")) == "bad"


def test_truncated_sha256_mac_is_allowed() -> None:
    """RFC 8489 §14.6: MESSAGE-INTEGRITY-SHA256 may be truncated to 16-32 bytes, multiple of 4."""
    import hmac

    key = long_term_key("alice", "example.org", "s3cret")
    head = encode_message(0x003, 0, TXID, LONG_TERM, fingerprint=False)
    body = head[20:]
    signed = head[:2] + (len(body) + 4 + 16).to_bytes(2, "big") + head[4:20] + body
    mac = hmac.new(key, signed, hashlib.sha256).digest()[:16]
    data = signed + b"\x00\x1c\x00\x10" + mac
    assert check_integrity(_msg(data), _keyring("alice:s3cret")) == "ok"
    bad_length = signed[:2] + (len(body) + 4 + 15).to_bytes(2, "big") + signed[4:] + b"\x00\x1c\x00\x0f" + mac[:15]
    assert check_integrity(_msg(bad_length + b"\x00"), _keyring("alice:s3cret")) == "bad"


def test_password_algorithm_sha256_selects_the_sha256_key() -> None:
    key = long_term_key("alice", "example.org", "s3cret", sha256=True)
    attrs = [*LONG_TERM, (0x001D, b"\x00\x02\x00\x00")]
    data = encode_message(0x003, 0, TXID, attrs, integrity_key=key)
    assert check_integrity(_msg(data), _keyring("alice:s3cret")) == "ok"


def test_both_integrity_attributes_must_verify() -> None:
    key = long_term_key("alice", "example.org", "s3cret")
    data = bytearray(encode_message(0x003, 0, TXID, LONG_TERM, integrity_key=key, integrity_sha256_key=key))
    assert check_integrity(_msg(bytes(data)), _keyring("alice:s3cret")) == "ok"
    sha_at = _msg(bytes(data)).attributes[4].offset
    data[sha_at + 4] ^= 1  # break only the SHA-256 MAC
    assert check_integrity(_msg(bytes(data)), _keyring("alice:s3cret")) == "bad"


def test_realm_restricted_credential() -> None:
    key = long_term_key("alice", "example.org", "s3cret")
    msg = _msg(encode_message(0x003, 0, TXID, LONG_TERM, integrity_key=key))
    assert check_integrity(msg, _keyring("example.org/alice:s3cret")) == "ok"
    assert check_integrity(msg, _keyring("other.org/alice:s3cret")) == "no-key"
    assert check_integrity(msg, _keyring("bob:s3cret")) == "no-key"


def test_response_without_username_uses_the_request_identity() -> None:
    key = long_term_key("alice", "example.org", "s3cret")
    response = _msg(encode_message(0x003, 2, TXID, [], integrity_key=key))
    keyring = _keyring("alice:s3cret")
    assert check_integrity(response, keyring) == "no-key"  # no REALM: short-term, none known
    assert check_integrity(response, keyring, username="alice", realm="example.org") == "ok"


def test_no_integrity_attribute_is_none() -> None:
    msg = _msg(encode_message(0x001, 0, TXID, [], fingerprint=False))
    assert check_integrity(msg, _keyring("ice=x")) is None
    assert check_fingerprint(msg) is None


def test_short_term_ice_password() -> None:
    msg = _msg(encode_message(0x001, 0, TXID, [(0x0006, b"rf:lf")], integrity_key=b"icepwd"))
    assert check_integrity(msg, _keyring("ice=icepwd")) == "ok"
    assert check_integrity(msg, None) == "no-key"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("alice:s3cret", ("long-term", "alice", None, "s3cret")),
        ("1700000000:alice:s3cret", ("long-term", "1700000000:alice", None, "s3cret")),
        ("example.org/alice:s3cret", ("long-term", "alice", "example.org", "s3cret")),
        ("alice:pa%3Ass%20word", ("long-term", "alice", None, "pa:ss word")),
        ("a%2Fb:pw", ("long-term", "a/b", None, "pw")),
        ("ice=VOkJxbRl1RmTxUk/WvJxBt", ("short-term", "", None, "VOkJxbRl1RmTxUk/WvJxBt")),
    ],
)
def test_parse_credential(text: str, parsed: tuple) -> None:
    assert parse_credential(text) == parsed


@pytest.mark.parametrize("text", ["", "hunter2", ":hunter2", "alice:", "ice=", "/alice:hunter2", "realm/:hunter2"])
def test_bad_credentials_never_echo_the_secret(text: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_credential(text)
    assert "hunter2" not in str(error.value)


def test_credentials_file_and_environment_forms() -> None:
    text = "# team TURN server\nalice:s3cret\n\n  example.org/bob:pw2  \nice=icepwd\n"
    assert [c[0] for c in parse_credentials_text(text)] == ["long-term", "long-term", "short-term"]
    assert len(parse_credentials_text("alice:a bob:b\nice=c", lines=False)) == 3
    with pytest.raises(ValueError, match="line 2"):
        parse_credentials_text("alice:a\nbroken-hunter2\n")
    with pytest.raises(ValueError) as error:
        parse_credentials_text("broken-hunter2")
    assert "hunter2" not in str(error.value)


def test_credential_repr_hides_secrets() -> None:
    credential = parse_credential("example.org/alice:hunter2")
    for text in (repr(credential), str(credential), f"{credential}", repr([credential])):
        assert "hunter2" not in text and "alice" not in text
    assert credential.realm == "example.org"


def test_keyring_never_shows_secrets() -> None:
    keyring = _keyring("alice:hunter2", "ice=swordfish")
    for text in (repr(keyring), str(keyring), f"{keyring}"):
        assert "hunter2" not in text and "swordfish" not in text and "alice" not in text
    assert repr(keyring) == "Keyring(1 short-term, 1 long-term)"
    assert len(keyring) == 2


def test_saslprep() -> None:
    assert saslprep("I\u00adX") == "IX"  # soft hyphen mapped to nothing (RFC 4013 §3 example)
    assert saslprep("user") == "user"
    assert saslprep("\u00aa") == "a"  # NFKC
    assert saslprep("a\u2003b") == "a b"  # non-ASCII space mapped to SPACE
    assert saslprep("a\u0007") == "a\u0007"  # prohibited: kept unchanged, a key can still be made
    assert saslprep("\u0627\u0031") == "\u0627\u0031"  # bidi rule broken: unchanged


def test_message_integrity_of_another_length_is_not_called_bad() -> None:
    """[MS-TURN] servers put a 32-byte HMAC-SHA256 in the MESSAGE-INTEGRITY attribute (0x0008);
    RFC 8489 §14.5 fixes it at 20 bytes of HMAC-SHA1, so it cannot be judged: not "bad"."""
    hmac32 = hashlib.sha256(b"not an rfc 8489 hmac").digest()
    raw = encode_message(0x003, 0x000, bytes(12), [(0x0006, b"alice"), (0x0008, hmac32)],
                         fingerprint=False)
    msg = decode_message(raw)
    assert isinstance(msg, StunMessage)
    keyring = Keyring()
    keyring.add_long_term("alice", "wonderland")
    assert check_integrity(msg, keyring, realm="example.org") is None
