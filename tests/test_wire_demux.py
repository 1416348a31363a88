"""classify(): RFC 7983/9443 first-byte ranges confirmed by structure, never by port."""

from __future__ import annotations

import pytest

from stunscope.wire.demux import KINDS, classify
from stunscope.wire.encode import encode_address, encode_channeldata, encode_message, encode_ms_turn_mux
from stunscope.wire.message import Endpoint

TXID = bytes(12)
STUN = encode_message(0x001, 0, TXID, [(0x8022, b"x")])
CLASSIC = encode_message(0x001, 2, bytes(range(16)), [(0x0001, encode_address(Endpoint("10.0.0.1", 1)))],
                         fingerprint=False)
DTLS_HELLO = bytes.fromhex("16feff0000000000000000002f") + bytes(47)
DTLS13 = bytes([0x2C]) + bytes(20)
RTP = bytes([0x80, 0x60]) + bytes(10) + b"payload"
RTCP = bytes([0x81, 0xC8, 0x00, 0x06]) + bytes(24)
ZRTP = bytes([0x10, 0x00, 0x00, 0x01]) + b"ZRTP" + bytes(12)
QUIC_LONG = bytes([0xC3, 0x00, 0x00, 0x00, 0x01]) + bytes(30)
QUIC_SHORT = bytes([0x5A]) + bytes(30)


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (STUN, "stun"),
        (STUN[:30], "stun"),  # truncated, still STUN by cookie: decode will say what is wrong
        (encode_message(0x200, 0, TXID, []), "stun"),  # WhatsApp's method 0x200: first byte 0x08
        (CLASSIC, "classic-stun"),
        (CLASSIC + b"\x00", "other"),  # a classic message must fill the datagram exactly
        (bytes(20), "other"),
        (encode_channeldata(0x4001, b"abc", tcp=False), "channeldata"),
        (encode_channeldata(0x4001, b"abc", tcp=True), "channeldata"),
        (encode_channeldata(0x4001, b"abc", tcp=False) + bytes(4), "other"),
        (bytes([0x40, 0x00, 0x00, 0x10]) + b"short", "other"),
        (encode_ms_turn_mux(b"12345678", STUN), "ms-turn-mux"),
        (DTLS_HELLO, "dtls"),
        (DTLS13, "dtls"),
        (RTP, "rtp"),
        (RTCP, "rtcp"),
        (ZRTP, "zrtp"),
        (QUIC_LONG, "quic"),
        (QUIC_SHORT, "quic"),
        (b"", "other"),
        (b"\x05hello world, this is not STUN", "other"),
    ],
)
def test_classify(payload: bytes, kind: str) -> None:
    assert classify(payload) == kind


def test_every_first_byte_gives_a_known_kind() -> None:
    for first in range(256):
        for tail in (b"", bytes(3), bytes(40)):
            assert classify(bytes([first]) + tail) in KINDS
