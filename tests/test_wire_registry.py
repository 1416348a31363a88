"""The registry tables against IANA "STUN Parameters" values (codes and names checked by hand
against the registry and the RFCs cited in stunscope/wire/registry.py)."""

from __future__ import annotations

import pytest

from stunscope.wire.registry import (
    ATTRIBUTES,
    ERROR_REASONS,
    METHODS,
    attr_name,
    comprehension_required,
    method_name,
)

IANA_METHODS = {
    0x001: "Binding", 0x003: "Allocate", 0x004: "Refresh", 0x006: "Send", 0x007: "Data",
    0x008: "CreatePermission", 0x009: "ChannelBind", 0x00A: "Connect", 0x00B: "ConnectionBind",
    0x00C: "ConnectionAttempt", 0x080: "GOOG-PING",
}

IANA_ATTRIBUTES = {
    0x0001: "MAPPED-ADDRESS", 0x0003: "CHANGE-REQUEST", 0x0006: "USERNAME",
    0x0008: "MESSAGE-INTEGRITY", 0x0009: "ERROR-CODE", 0x000A: "UNKNOWN-ATTRIBUTES",
    0x000C: "CHANNEL-NUMBER", 0x000D: "LIFETIME", 0x0012: "XOR-PEER-ADDRESS", 0x0013: "DATA",
    0x0014: "REALM", 0x0015: "NONCE", 0x0016: "XOR-RELAYED-ADDRESS",
    0x0017: "REQUESTED-ADDRESS-FAMILY", 0x0018: "EVEN-PORT", 0x0019: "REQUESTED-TRANSPORT",
    0x001A: "DONT-FRAGMENT", 0x001B: "ACCESS-TOKEN", 0x001C: "MESSAGE-INTEGRITY-SHA256",
    0x001D: "PASSWORD-ALGORITHM", 0x001E: "USERHASH", 0x0020: "XOR-MAPPED-ADDRESS",
    0x0022: "RESERVATION-TOKEN", 0x0024: "PRIORITY", 0x0025: "USE-CANDIDATE", 0x0026: "PADDING",
    0x0027: "RESPONSE-PORT", 0x002A: "CONNECTION-ID",
    0x8000: "ADDITIONAL-ADDRESS-FAMILY", 0x8001: "ADDRESS-ERROR-CODE", 0x8002: "PASSWORD-ALGORITHMS",
    0x8003: "ALTERNATE-DOMAIN", 0x8004: "ICMP", 0x8022: "SOFTWARE", 0x8023: "ALTERNATE-SERVER",
    0x8025: "TRANSACTION-TRANSMIT-COUNTER", 0x8027: "CACHE-TIMEOUT", 0x8028: "FINGERPRINT",
    0x8029: "ICE-CONTROLLED", 0x802A: "ICE-CONTROLLING", 0x802B: "RESPONSE-ORIGIN",
    0x802C: "OTHER-ADDRESS", 0x802D: "ECN-CHECK STUN", 0x802E: "THIRD-PARTY-AUTHORIZATION",
    0x8030: "MOBILITY-TICKET",
    0xC000: "CISCO-STUN-FLOWDATA", 0xC001: "ENF-FLOW-DESCRIPTION", 0xC002: "ENF-NETWORK-STATUS",
    0xC057: "GOOG-NETWORK-INFO", 0xC058: "GOOG-LAST-ICE-CHECK-RECEIVED", 0xC059: "GOOG-MISC-INFO",
    0xC05A: "GOOG-OBSOLETE-1", 0xC05B: "GOOG-CONNECTION-ID", 0xC05C: "GOOG-DELTA",
    0xC05D: "GOOG-DELTA-ACK", 0xC060: "GOOG-MESSAGE-INTEGRITY-32",
}

CORPUS_VENDOR_ATTRIBUTES = {
    # Seen in ../shared/corpus (Skype, Lync/Teams, Google Meet, libwebrtc).
    0x000F: "MAGIC-COOKIE", 0x0010: "BANDWIDTH", 0x0011: "DESTINATION-ADDRESS",
    0x8008: "MS-VERSION", 0x8020: "XOR-MAPPED-ADDRESS", 0x8037: "MS-APP-ID",
    0x8054: "CANDIDATE-IDENTIFIER", 0x8055: "MS-SERVICE-QUALITY", 0x8070: "MS-IMPLEMENTATION-VERSION",
    0x8095: "MS-MULTIPLEXED-TURN-SESSION-ID", 0xFF05: "GOOG-LOGGING-ID",
}

IANA_ERRORS = {
    300: "Try Alternate", 400: "Bad Request", 401: "Unauthenticated", 403: "Forbidden",
    405: "Mobility Forbidden", 420: "Unknown Attribute", 437: "Allocation Mismatch",
    438: "Stale Nonce", 440: "Address Family not Supported", 441: "Wrong Credentials",
    442: "Unsupported Transport Protocol", 443: "Peer Address Family Mismatch",
    446: "Connection Already Exists", 447: "Connection Timeout or Failure",
    486: "Allocation Quota Reached", 487: "Role Conflict", 500: "Server Error",
    508: "Insufficient Capacity",
}


def test_methods_match_iana() -> None:
    assert {code: METHODS[code] for code in IANA_METHODS} == IANA_METHODS
    assert method_name(0x200) == "0x200" and method_name(0x005) == "0x005"


def test_attributes_match_iana() -> None:
    assert {code: attr_name(code) for code in IANA_ATTRIBUTES} == IANA_ATTRIBUTES


def test_vendor_attributes_from_the_corpus_are_named() -> None:
    assert {code: attr_name(code) for code in CORPUS_VENDOR_ATTRIBUTES} == CORPUS_VENDOR_ATTRIBUTES


def test_error_reasons_match_iana() -> None:
    assert ERROR_REASONS == IANA_ERRORS


@pytest.mark.parametrize(("code", "text"), [(0x8047, "0x8047"), (0x0000, "0x0000"), (0xFFFF, "0xffff")])
def test_unknown_attributes_render_as_hex(code: int, text: str) -> None:
    assert attr_name(code) == text


def test_every_row_has_a_name_and_comprehension_follows_the_code() -> None:
    assert all(spec.name and spec.kind for spec in ATTRIBUTES.values())
    assert comprehension_required(0x0020) and not comprehension_required(0x8022)
