"""Safe display of strings that come from the wire (SOFTWARE, USERNAME, REALM, reason phrases).

RFC 8489 §14.3, §14.9, §14.14 carry UTF-8 text chosen by the sender: it is untrusted. Control
characters (C0, DEL, C1, and the bidi overrides) must never reach a terminal, so they are shown
as escapes; invalid UTF-8 is shown with backslash escapes instead of replacement characters.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: str | bytes) -> str:
    """Return ``value`` with every control or bidi-override character escaped (``\\x1b``)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", "backslashreplace")
    return _UNSAFE.sub(_escape, value)
