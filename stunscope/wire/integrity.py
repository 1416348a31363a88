"""FINGERPRINT and MESSAGE-INTEGRITY(-SHA256) checks, credentials, and SASLprep.

- FINGERPRINT: CRC-32 of the message up to the attribute, XOR 0x5354554e (RFC 8489 §14.7);
  :func:`~stunscope.wire.decode.decode_message` already verifies it, so :func:`check_fingerprint`
  only reads the verdict.
- MESSAGE-INTEGRITY: HMAC-SHA1 over the message up to the attribute, with the header length
  rewritten to end just after it (RFC 8489 §14.5). MESSAGE-INTEGRITY-SHA256: the same with
  HMAC-SHA256, possibly truncated to 16-32 bytes (§14.6).
- GOOG-MESSAGE-INTEGRITY-32 (0xC060, IANA-registered by Google): libwebrtc's MESSAGE-INTEGRITY
  truncated to its first 4 bytes, on GOOG-PING and on Binding checks once both agents announced
  support in GOOG-MISC-INFO. libwebrtc's ``StunMessage::ValidateMessageIntegrityOfType`` hashes
  exactly what §14.5 hashes (the header length rewritten to end after this attribute, every byte
  before it) with HMAC-SHA1 and the ICE short-term password, and accepts only a 4-byte value. It
  looks at it only when the message has no MESSAGE-INTEGRITY.
- Keys: short-term = the SASLprep'd password (§9.1.1; ICE passwords, RFC 8445 §7.2.2); long-term
  = MD5(username ":" realm ":" SASLprep(password)) (§9.2.2), or SHA-256 of the same when the
  message selects PASSWORD-ALGORITHM SHA-256 (§18.5.1).

Credential text (the CLI's ``--credential``, a credentials file, and ``$STUNSCOPE_CREDENTIALS``)::

    USER:PASSWORD            long-term, any realm (the realm comes from the message)
    REALM/USER:PASSWORD      long-term, only for that realm
    ice=PASSWORD             short-term (an ICE password, ``a=ice-pwd`` in SDP)

The password is what follows the *last* colon, so usernames may contain colons (TURN REST API
usernames such as ``1700000000:alice``); the realm is what precedes the *first* slash. Each
field is percent-decoded, so write ``%3A`` for a colon in a password, ``%2F`` for a slash in a
username, ``%20`` for a space and ``%25`` for a percent sign. A credentials file holds one
credential per line (blank lines and lines starting with ``#`` are skipped); the environment
variable holds credentials separated by whitespace. Secrets never appear in ``repr``/``str`` or
in error messages.
"""

from __future__ import annotations

import hashlib
import hmac
import stringprep
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import unquote

from stunscope.wire.attributes import realm as realm_of
from stunscope.wire.attributes import username as username_of
from stunscope.wire.message import HEADER_LEN, Attribute, StunMessage

__all__ = [
    "CREDENTIALS_ENV",
    "Credential",
    "Keyring",
    "check_fingerprint",
    "check_integrity",
    "long_term_key",
    "parse_credential",
    "parse_credentials_text",
    "saslprep",
]

CREDENTIALS_ENV = "STUNSCOPE_CREDENTIALS"
"""Environment variable holding whitespace-separated credentials (see the module doc)."""

MESSAGE_INTEGRITY = 0x0008
MESSAGE_INTEGRITY_SHA256 = 0x001C
GOOG_MESSAGE_INTEGRITY_32 = 0xC060
FINGERPRINT = 0x8028
PASSWORD_ALGORITHM = 0x001D
_SHA256_ALGORITHM = 0x0002
"""RFC 8489 §18.5: STUN Password Algorithm 0x0002 is SHA-256 (0x0001 MD5)."""

_HMACS = {MESSAGE_INTEGRITY: "sha1", MESSAGE_INTEGRITY_SHA256: "sha256", GOOG_MESSAGE_INTEGRITY_32: "sha1"}
"""Integrity attribute -> HMAC digest (for the one-shot C ``hmac.digest``)."""


def check_fingerprint(msg: StunMessage) -> str | None:
    """``"ok"``/``"bad"`` for the message's FINGERPRINT (RFC 8489 §14.7), None when it has none.

    The CRC is computed once, by ``decode_message``, which adds ``bad-fingerprint`` on mismatch.
    """
    for attr in reversed(msg.attributes):  # normally the last attribute
        if attr[0] == FINGERPRINT:
            return "bad" if "bad-fingerprint" in msg.findings else "ok"
    return None


_PROHIBITED = (
    stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22,
    stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c5,
    stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
    stringprep.in_table_c9,
)
"""RFC 4013 §2.3: prohibited output (non-ASCII spaces, controls, private use, surrogates, ...)."""


def saslprep(text: str) -> str:
    """SASLprep (RFC 4013) for a stored password, as RFC 8489 §9.2.2 / RFC 5389 §15.4 require.

    §2.1 maps non-ASCII spaces to SPACE and B.1 characters to nothing; §2.2 NFKC; §2.3 rejects
    prohibited characters; §2.4 checks bidi (RFC 3454 §6). Unassigned code points are allowed
    (a query). Text that SASLprep rejects is returned unchanged, so a key can still be derived.
    """
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    if any(check(ch) for ch in prepared for check in _PROHIBITED):
        return text
    if any(stringprep.in_table_d1(ch) for ch in prepared) and (
        any(stringprep.in_table_d2(ch) for ch in prepared)
        or not stringprep.in_table_d1(prepared[0])
        or not stringprep.in_table_d1(prepared[-1])
    ):
        return text
    return prepared


def long_term_key(username: str, realm: str, password: str, sha256: bool = False) -> bytes:
    """RFC 8489 §9.2.2: MD5 (or SHA-256, §18.5.1) of ``username:realm:SASLprep(password)`` in UTF-8."""
    material = f"{username}:{realm}:{saslprep(password)}".encode()
    return (hashlib.sha256 if sha256 else hashlib.md5)(material).digest()


class Keyring:
    """Known passwords: short-term (ICE) and long-term (user, password, optional realm).

    ``repr`` and ``str`` show only counts; the secrets are private and never printed.
    """

    __slots__ = ("_short", "_long", "_derived")

    def __init__(self) -> None:
        self._short: list[bytes] = []
        self._long: list[tuple[str, str | None, str]] = []
        self._derived: dict[tuple[str, str, str, bool], bytes] = {}

    def add_short_term(self, password: str) -> None:
        """Add a short-term password (RFC 8489 §9.1.1; an ICE ``ice-pwd``, RFC 8445 §7.2.2)."""
        key = saslprep(password).encode()
        if key not in self._short:
            self._short.append(key)

    def add_long_term(self, username: str, password: str, realm: str | None = None) -> None:
        """Add a long-term credential (RFC 8489 §9.2); ``realm`` None matches any realm."""
        self._long.append((username, realm, password))

    def add(self, credential: Credential) -> None:
        """Add a parsed credential (see :func:`parse_credential`)."""
        kind, username, realm, password = credential
        if kind == "short-term":
            self.add_short_term(password)
        else:
            self.add_long_term(username, password, realm)

    def copy(self) -> Keyring:
        """A new keyring with the same credentials (adding to it leaves this one unchanged)."""
        ring = Keyring()
        ring._short = list(self._short)
        ring._long = list(self._long)
        return ring

    def __len__(self) -> int:
        return len(self._short) + len(self._long)

    def __repr__(self) -> str:
        return f"Keyring({len(self._short)} short-term, {len(self._long)} long-term)"

    __str__ = __repr__

    def keys(self, username: str | None, realm: str | None, sha256: bool = False) -> list[bytes]:
        """Candidate HMAC keys for a message with this USERNAME/REALM (either may be None).

        Without a realm the message uses short-term credentials, so every short-term password is
        a candidate. With a realm, every long-term credential for that username (any username
        when it is None) whose realm is unset or equal is a candidate.
        """
        if realm is None:
            return list(self._short)
        keys = []
        for user, only_realm, password in self._long:
            if (username is None or user == username) and only_realm in (None, realm):
                cache = (user, realm, password, sha256)
                key = self._derived.get(cache)
                if key is None:
                    key = self._derived[cache] = long_term_key(user, realm, password, sha256)
                keys.append(key)
        return keys


class Credential(NamedTuple):
    """One parsed credential; its ``repr`` hides the username and password."""

    kind: str
    """``short-term`` (an ICE password) or ``long-term``."""
    username: str
    realm: str | None
    """The only realm it applies to, or None for any."""
    password: str

    def __repr__(self) -> str:
        return f"Credential({self.kind}, realm={self.realm!r}, username and password hidden)"

    __str__ = __repr__


def parse_credential(text: str) -> Credential:
    """Parse ``USER:PASSWORD``, ``REALM/USER:PASSWORD`` or ``ice=PASSWORD`` (see the module doc).

    Raises ValueError with a message that never repeats the secret.
    """
    text = text.strip()
    if text.startswith("ice="):
        password = unquote(text[4:])
        if not password:
            raise ValueError("empty ICE password in credential (expected ice=PASSWORD)")
        return Credential("short-term", "", None, password)
    user_part, colon, password = text.rpartition(":")
    if not colon or not user_part or not password:
        raise ValueError("credential must be USER:PASSWORD, REALM/USER:PASSWORD or ice=PASSWORD")
    realm, slash, username = user_part.partition("/")
    if not slash:
        realm, username = "", user_part
    if not username or (slash and not realm):
        raise ValueError("credential has an empty username or realm")
    return Credential("long-term", unquote(username), unquote(realm) if slash else None, unquote(password))


def parse_credentials_text(text: str, *, lines: bool = True) -> list[Credential]:
    """Credentials from a file's text (``lines``: one per line, ``#`` comments) or from the
    environment variable (whitespace-separated). ValueError names the bad entry by number only."""
    entries: Iterable[str] = text.splitlines() if lines else text.split()
    credentials = []
    for number, entry in enumerate(entries, 1):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        try:
            credentials.append(parse_credential(entry))
        except ValueError as error:
            raise ValueError(f"{'line' if lines else 'entry'} {number}: {error}") from None
    return credentials


def _integrity_input(msg: StunMessage, offset: int, attr_length: int) -> bytes:
    """RFC 8489 §14.5-14.6: the header with its length ending after the integrity attribute,
    then every byte before the attribute."""
    raw = msg.raw
    length = offset - HEADER_LEN + 4 + attr_length
    return raw[:2] + length.to_bytes(2, "big") + raw[4:offset]


_MAC_SIZES = {MESSAGE_INTEGRITY: frozenset({20}), MESSAGE_INTEGRITY_SHA256: frozenset(range(16, 33, 4)),
              GOOG_MESSAGE_INTEGRITY_32: frozenset({4})}
"""RFC 8489 §14.5: HMAC-SHA1 is 20 bytes; §14.6: HMAC-SHA256 may be truncated to 16-32 bytes in
steps of 4; GOOG-MESSAGE-INTEGRITY-32 is HMAC-SHA1 truncated to 4 (libwebrtc rejects any other
length)."""

_SHA256_PASSWORD = _SHA256_ALGORITHM.to_bytes(2, "big")


def _verify(msg: StunMessage, attr_type: int, offset: int, mac: bytes, keys: list[bytes]) -> bool:
    size = len(mac)
    if size not in _MAC_SIZES[attr_type]:
        return False
    signed = _integrity_input(msg, offset, size)
    digest = _HMACS[attr_type]
    return any(hmac.compare_digest(hmac.digest(key, signed, digest)[:size], mac) for key in keys)


def check_integrity(
    msg: StunMessage, keyring: Keyring | None, username: str | None = None, realm: str | None = None
) -> str | None:
    """Verify MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.5-14.6) and
    GOOG-MESSAGE-INTEGRITY-32 (libwebrtc; see the module doc).

    Returns None when the message carries none (a MESSAGE-INTEGRITY that is not 20 bytes, as
    [MS-TURN]'s 32-byte one, cannot be judged and is passed over), ``"no-key"`` when the keyring has no candidate
    key, ``"ok"`` when every integrity attribute present verifies with some candidate key, else
    ``"bad"``. Responses carry no USERNAME/REALM: pass the request's as ``username``/``realm``.
    Only the first attribute of each kind counts (RFC 8489 §14). GOOG-MESSAGE-INTEGRITY-32 counts
    only in a message without MESSAGE-INTEGRITY, and one that is not 4 bytes is ``"bad"`` (both
    as libwebrtc's ``StunMessage::ValidateMessageIntegrity`` judges it). A PASSWORD-ALGORITHM of SHA-256
    selects the SHA-256 long-term key (§18.5.1).
    """
    present: dict[int, Attribute] = {}
    sha256_password = False
    for attr in msg.attributes:
        attr_type = attr[0]
        if attr_type in _HMACS:
            if attr_type == MESSAGE_INTEGRITY and len(attr[3]) != 20:
                continue  # [MS-TURN]'s 32-byte MI is no RFC 8489 HMAC-SHA1: it cannot be judged
            present.setdefault(attr_type, attr)
        elif attr_type == PASSWORD_ALGORITHM:
            sha256_password = attr[3][:2] == _SHA256_PASSWORD
    if MESSAGE_INTEGRITY in present:
        present.pop(GOOG_MESSAGE_INTEGRITY_32, None)  # libwebrtc then checks MESSAGE-INTEGRITY only
    if not present:
        return None
    username = username_of(msg) if username is None else username
    realm = realm_of(msg) if realm is None else realm
    keys = keyring.keys(username, realm, sha256_password) if keyring else []
    if not keys:
        return "no-key"
    for attr_type, attr in present.items():
        if not _verify(msg, attr_type, attr.offset, attr.raw, keys):
            return "bad"
    return "ok"
