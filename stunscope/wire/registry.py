"""IANA STUN registries: methods, attributes and error codes, plus vendor attributes seen in the wild.

Sources: IANA "Session Traversal Utilities for NAT (STUN) Parameters" (STUN Methods, STUN
Attributes, STUN Error Codes), as established by RFC 8489 §18 and extended by RFC 8656 §18
(TURN), RFC 5780 §9 (NAT behaviour discovery), RFC 8445 §20 (ICE), RFC 6062 §6.2 (TURN-TCP),
RFC 7635 (OAuth), RFC 7982 (transaction transmit counter), RFC 8016 (mobility), RFC 6679 (ECN);
and the vendor specifications [MS-TURN] §2.2.2, [MS-TURNBWM] and [MS-ICE2] §2.2.2 for the
Microsoft codes that appear in real captures (Skype/Lync/Teams). Names were cross-checked against
tshark 4.0's dissector; where they differ the IANA/RFC spelling wins (0x0027 is RESPONSE-PORT,
RFC 5780 §7.5, which tshark 4.0 calls XOR-RESPONSE-TARGET from a 2008 draft).

Each attribute row names its RFC spelling and a value *kind*: the key of the typed decoder in
:mod:`stunscope.wire.attributes` (a table, so adding an attribute is one line here). Unknown
codes display as ``0x8047`` and decode as raw hex. Kinds are a contract: ``xor-address`` is the
only kind whose value depends on more than the attribute's bytes (the transaction id), and
``text``/``nonce``/``error-code``/``address-error-code`` the kinds that carry sender-chosen text;
``report.messages`` caches and sanitises values by kind.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ATTRIBUTES",
    "ERROR_REASONS",
    "METHODS",
    "CLASSIC_TYPES",
    "AttrSpec",
    "attr_name",
    "comprehension_required",
    "method_name",
]

METHODS: dict[int, str] = {
    0x001: "Binding",  # RFC 8489 §18.2
    0x002: "SharedSecret",  # RFC 3489 §11.1; reserved by RFC 5389
    0x003: "Allocate",  # RFC 8656 §18
    0x004: "Refresh",
    0x006: "Send",
    0x007: "Data",
    0x008: "CreatePermission",
    0x009: "ChannelBind",
    0x00A: "Connect",  # RFC 6062 §6.1
    0x00B: "ConnectionBind",
    0x00C: "ConnectionAttempt",
    0x080: "GOOG-PING",  # IANA (Google)
}
"""IANA STUN Methods: 12-bit method code -> RFC name (as used in the JSON contract)."""

CLASSIC_TYPES = frozenset(
    {0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112,  # RFC 3489 §11.1
     0x0003, 0x0103, 0x0113, 0x0004, 0x0104, 0x0114, 0x0115, 0x0006, 0x0106, 0x0116}  # [MS-TURN] §2.2.1
)
"""Message types accepted without the magic cookie: RFC 3489 §11.1 Binding and Shared Secret,
and the cookie-less [MS-TURN] §2.2.1 types (Allocate, Send, Data indication 0x0115, Set Active
Destination). Anything else without the cookie is not STUN."""


class AttrSpec(NamedTuple):
    """One attribute registry row: RFC spelling and the kind of value decoder it uses."""

    name: str
    kind: str


_A = AttrSpec

ATTRIBUTES: dict[int, AttrSpec] = {
    # Comprehension-required range 0x0000-0x7FFF
    0x0001: _A("MAPPED-ADDRESS", "address"),  # RFC 8489 §14.1
    0x0002: _A("RESPONSE-ADDRESS", "address"),  # RFC 3489 §11.2.2, reserved since RFC 5389
    0x0003: _A("CHANGE-REQUEST", "change-request"),  # RFC 5780 §7.2
    0x0004: _A("SOURCE-ADDRESS", "address"),  # RFC 3489 §11.2.5
    0x0005: _A("CHANGED-ADDRESS", "address"),  # RFC 3489 §11.2.3
    0x0006: _A("USERNAME", "text"),  # RFC 8489 §14.3
    0x0007: _A("PASSWORD", "text"),  # RFC 3489 §11.2.8
    0x0008: _A("MESSAGE-INTEGRITY", "hex"),  # RFC 8489 §14.5
    0x0009: _A("ERROR-CODE", "error-code"),  # RFC 8489 §14.8
    0x000A: _A("UNKNOWN-ATTRIBUTES", "unknown-attributes"),  # RFC 8489 §14.9
    0x000B: _A("REFLECTED-FROM", "address"),  # RFC 3489 §11.2.11
    0x000C: _A("CHANNEL-NUMBER", "channel-number"),  # RFC 8656 §18.1
    0x000D: _A("LIFETIME", "u32"),  # RFC 8656 §18.2
    0x000E: _A("MS-ALTERNATE-SERVER", "address"),  # [MS-TURN] §2.2.2 (pre-RFC 5389 code)
    0x000F: _A("MAGIC-COOKIE", "hex"),  # [MS-TURN] §2.2.2
    0x0010: _A("BANDWIDTH", "u32"),  # reserved (was BANDWIDTH, RFC 5766); [MS-TURN] §2.2.2
    0x0011: _A("DESTINATION-ADDRESS", "address"),  # [MS-TURN] §2.2.2
    0x0012: _A("XOR-PEER-ADDRESS", "xor-address"),  # RFC 8656 §18.3; [MS-TURN] REMOTE-ADDRESS
    0x0013: _A("DATA", "data"),  # RFC 8656 §18.4
    0x0014: _A("REALM", "text"),  # RFC 8489 §14.9
    0x0015: _A("NONCE", "nonce"),  # RFC 8489 §14.10
    0x0016: _A("XOR-RELAYED-ADDRESS", "xor-address"),  # RFC 8656 §18.5
    0x0017: _A("REQUESTED-ADDRESS-FAMILY", "family"),  # RFC 8656 §18.6
    0x0018: _A("EVEN-PORT", "even-port"),  # RFC 8656 §18.7
    0x0019: _A("REQUESTED-TRANSPORT", "transport"),  # RFC 8656 §18.8
    0x001A: _A("DONT-FRAGMENT", "flag"),  # RFC 8656 §18.9
    0x001B: _A("ACCESS-TOKEN", "hex"),  # RFC 7635 §6.2
    0x001C: _A("MESSAGE-INTEGRITY-SHA256", "hex"),  # RFC 8489 §14.6
    0x001D: _A("PASSWORD-ALGORITHM", "password-algorithm"),  # RFC 8489 §14.12
    0x001E: _A("USERHASH", "hex"),  # RFC 8489 §14.4
    0x0020: _A("XOR-MAPPED-ADDRESS", "xor-address"),  # RFC 8489 §14.2
    0x0021: _A("TIMER-VAL", "u32"),  # reserved (was TIMER-VAL, draft TURN)
    0x0022: _A("RESERVATION-TOKEN", "hex"),  # RFC 8656 §18.10
    0x0024: _A("PRIORITY", "priority"),  # RFC 8445 §16.1
    0x0025: _A("USE-CANDIDATE", "flag"),  # RFC 8445 §16.1
    0x0026: _A("PADDING", "padding"),  # RFC 5780 §7.6
    0x0027: _A("RESPONSE-PORT", "port"),  # RFC 5780 §7.5
    0x002A: _A("CONNECTION-ID", "u32"),  # RFC 6062 §6.2.1
    # Comprehension-optional range 0x8000-0xFFFF
    0x8000: _A("ADDITIONAL-ADDRESS-FAMILY", "family"),  # RFC 8656 §18.11
    0x8001: _A("ADDRESS-ERROR-CODE", "address-error-code"),  # RFC 8656 §18.12
    0x8002: _A("PASSWORD-ALGORITHMS", "password-algorithms"),  # RFC 8489 §14.11
    0x8003: _A("ALTERNATE-DOMAIN", "text"),  # RFC 8489 §14.16
    0x8004: _A("ICMP", "icmp"),  # RFC 8656 §18.13
    0x8008: _A("MS-VERSION", "u32"),  # [MS-TURN] §2.2.2
    0x8020: _A("XOR-MAPPED-ADDRESS", "xor-address"),  # pre-RFC 5389 drafts; [MS-TURN] §2.2.2
    0x8022: _A("SOFTWARE", "text"),  # RFC 8489 §14.14
    0x8023: _A("ALTERNATE-SERVER", "address"),  # RFC 8489 §14.15
    0x8025: _A("TRANSACTION-TRANSMIT-COUNTER", "transmit-counter"),  # RFC 7982 §3.1
    0x8027: _A("CACHE-TIMEOUT", "u32"),  # RFC 5780 §7.7
    0x8028: _A("FINGERPRINT", "u32-hex"),  # RFC 8489 §14.7
    0x8029: _A("ICE-CONTROLLED", "u64"),  # RFC 8445 §16.1
    0x802A: _A("ICE-CONTROLLING", "u64"),  # RFC 8445 §16.1
    0x802B: _A("RESPONSE-ORIGIN", "address"),  # RFC 5780 §7.3
    0x802C: _A("OTHER-ADDRESS", "address"),  # RFC 5780 §7.4
    0x802D: _A("ECN-CHECK STUN", "hex"),  # RFC 6679 §7.2.2 (the IANA spelling has a space)
    0x802E: _A("THIRD-PARTY-AUTHORIZATION", "text"),  # RFC 7635 §6.1
    0x8030: _A("MOBILITY-TICKET", "hex"),  # RFC 8016 §3.1
    0x8032: _A("MS-ALTERNATE-HOST-NAME", "text"),  # [MS-TURN] §2.2.2
    0x8037: _A("MS-APP-ID", "hex"),  # Microsoft (Teams), name as in Wireshark
    0x8039: _A("MS-SECURE-TAG", "hex"),  # Microsoft (Teams), name as in Wireshark
    0x8050: _A("MS-SEQUENCE-NUMBER", "ms-sequence"),  # [MS-TURN] §2.2.2
    0x8054: _A("CANDIDATE-IDENTIFIER", "text"),  # [MS-ICE2] §2.2.2
    0x8055: _A("MS-SERVICE-QUALITY", "hex"),  # [MS-TURN] §2.2.2
    0x8056: _A("BANDWIDTH-ACM", "hex"),  # [MS-TURNBWM] §2.2: admission control message
    0x8057: _A("BANDWIDTH-RESERVATION-ID", "hex"),  # [MS-TURNBWM] §2.2
    0x8058: _A("BANDWIDTH-RESERVATION-AMOUNT", "hex"),  # [MS-TURNBWM] §2.2
    0x8059: _A("REMOTE-SITE-ADDRESS", "hex"),  # [MS-TURNBWM] §2.2
    0x805A: _A("REMOTE-RELAY-SITE-ADDRESS", "hex"),  # [MS-TURNBWM] §2.2
    0x805B: _A("LOCAL-SITE-ADDRESS", "hex"),  # [MS-TURNBWM] §2.2
    0x805C: _A("LOCAL-RELAY-SITE-ADDRESS", "hex"),  # [MS-TURNBWM] §2.2
    0x805D: _A("REMOTE-SITE-ADDRESS-RESPONSE", "hex"),  # [MS-TURNBWM] §2.2
    0x805E: _A("REMOTE-RELAY-SITE-ADDRESS-RESPONSE", "hex"),  # [MS-TURNBWM] §2.2
    0x805F: _A("LOCAL-SITE-ADDRESS-RESPONSE", "hex"),  # [MS-TURNBWM] §2.2
    0x8060: _A("LOCAL-RELAY-SITE-ADDRESS-RESPONSE", "hex"),  # [MS-TURNBWM] §2.2
    0x8061: _A("SIP-DIALOG-ID", "text"),  # [MS-TURNBWM] §2.2
    0x8062: _A("SIP-CALL-ID", "text"),  # [MS-TURNBWM] §2.2
    0x8068: _A("LOCATION-PROFILE", "hex"),  # [MS-TURNBWM] §2.2
    0x8070: _A("MS-IMPLEMENTATION-VERSION", "u32"),  # [MS-ICE2] §2.2.2
    0x8090: _A("MS-ALT-MAPPED-ADDRESS", "address"),  # [MS-TURN] §2.2.2
    0x8095: _A("MS-MULTIPLEXED-TURN-SESSION-ID", "hex"),  # [MS-TURN] §2.2.2: the 0xFF10 session id
    0xC000: _A("CISCO-STUN-FLOWDATA", "hex"),  # IANA (Cisco)
    0xC001: _A("ENF-FLOW-DESCRIPTION", "hex"),  # IANA (Cisco)
    0xC002: _A("ENF-NETWORK-STATUS", "hex"),  # IANA (Cisco)
    0xC003: _A("CISCO-WEBEX-FLOW-INFO", "hex"),  # IANA (Cisco)
    0xC056: _A("CITRIX-TRANSACTION-ID", "hex"),  # IANA (Citrix)
    0xC057: _A("GOOG-NETWORK-INFO", "goog-network-info"),  # IANA (Google)
    0xC058: _A("GOOG-LAST-ICE-CHECK-RECEIVED", "hex"),  # IANA (Google)
    0xC059: _A("GOOG-MISC-INFO", "hex"),  # IANA (Google)
    0xC05A: _A("GOOG-OBSOLETE-1", "hex"),  # IANA (Google)
    0xC05B: _A("GOOG-CONNECTION-ID", "hex"),  # IANA (Google)
    0xC05C: _A("GOOG-DELTA", "hex"),  # IANA (Google)
    0xC05D: _A("GOOG-DELTA-ACK", "hex"),  # IANA (Google)
    0xC060: _A("GOOG-MESSAGE-INTEGRITY-32", "u32-hex"),  # IANA (Google); libwebrtc: always 4 bytes
    0xFF05: _A("GOOG-LOGGING-ID", "text"),  # libwebrtc (unregistered), name as in Wireshark
}
"""Attribute code -> (RFC spelling, value kind)."""

ERROR_REASONS: dict[int, str] = {
    300: "Try Alternate",  # RFC 8489 §14.8
    400: "Bad Request",
    401: "Unauthenticated",  # "Unauthorized" in RFC 5389
    403: "Forbidden",  # RFC 8656 §19
    405: "Mobility Forbidden",  # RFC 8016 §3.2
    420: "Unknown Attribute",  # RFC 8489 §14.8
    437: "Allocation Mismatch",  # RFC 8656 §19
    438: "Stale Nonce",  # RFC 8489 §14.8
    440: "Address Family not Supported",  # RFC 8656 §19
    441: "Wrong Credentials",
    442: "Unsupported Transport Protocol",
    443: "Peer Address Family Mismatch",
    446: "Connection Already Exists",  # RFC 6062 §6.3
    447: "Connection Timeout or Failure",
    486: "Allocation Quota Reached",  # RFC 8656 §19
    487: "Role Conflict",  # RFC 8445 §20.2.1
    500: "Server Error",  # RFC 8489 §14.8
    508: "Insufficient Capacity",  # RFC 8656 §19
}
"""IANA STUN Error Codes: code -> registered reason phrase."""


class _Names(dict[int, str]):
    """Code -> name, rendering unknown codes as hex without storing them (one C lookup when known)."""

    def __init__(self, names: dict[int, str], digits: int) -> None:
        super().__init__(names)
        self._format = f"0x{{:0{digits}x}}"

    def __missing__(self, code: int) -> str:
        return self._format.format(code)


_METHOD_NAMES = _Names(METHODS, 3)
_ATTR_NAMES = _Names({code: spec.name for code, spec in ATTRIBUTES.items()}, 4)


def method_name(code: int) -> str:
    """RFC name of a STUN method (``Binding``), or ``0x200``-style hex when unregistered."""
    return _METHOD_NAMES[code]


def attr_name(code: int) -> str:
    """RFC spelling of an attribute type (``XOR-MAPPED-ADDRESS``), or ``0x8047`` when unknown."""
    return _ATTR_NAMES[code]


def comprehension_required(code: int) -> bool:
    """RFC 8489 §14: types 0x0000-0x7FFF must be understood by the receiver."""
    return code < 0x8000
