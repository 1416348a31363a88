"""StreamFramer: STUN/ChannelData over TCP, RFC 4571 framing, MS-TURN framing, resync, passthrough."""

from __future__ import annotations

import pytest

from stunscope.wire.encode import encode_channeldata, encode_message
from stunscope.wire.framing import StreamFramer

TXID = bytes(range(12))
A = encode_message(0x003, 0, TXID, [(0x0019, b"\x11\x00\x00\x00")])
B = encode_message(0x003, 2, TXID, [(0x8022, b"coturn-4.6")])
CD = encode_channeldata(0x4000, b"hello", tcp=True)
CLASSIC = encode_message(0x001, 0, bytes(range(16)), [], fingerprint=False)


def _feed(framer: StreamFramer, stream: bytes, chunk: int) -> list[bytes]:
    return [frame for i in range(0, len(stream), chunk) for frame in framer.feed(stream[i:i + chunk])]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 19, 20, 21, 64, 4096])
def test_stun_and_channeldata_in_any_chunking(chunk: int) -> None:
    framer = StreamFramer()
    assert _feed(framer, A + CD + B + CD + A, chunk) == [A, CD, B, CD, A]
    assert (framer.mode, framer.skipped, framer.pending) == ("stun", 0, 0)


def test_several_messages_in_one_segment_and_one_across_segments() -> None:
    framer = StreamFramer()
    assert framer.feed(A + B + A[:7]) == [A, B]
    assert framer.pending == 7
    assert framer.feed(A[7:]) == [A]


def test_channeldata_padding_is_kept_in_the_frame() -> None:
    # RFC 8656 §12.5: over TCP the 5-byte payload is padded to 8; the frame is 4 + 8 bytes.
    assert len(CD) == 12 and StreamFramer().feed(CD) == [CD]


def test_classic_stun_over_tcp() -> None:
    assert StreamFramer().feed(CLASSIC + A) == [CLASSIC, A]


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_rfc4571_framing(chunk: int) -> None:
    rtp = bytes([0x80, 0x60]) + bytes(30)
    stream = b"".join(len(f).to_bytes(2, "big") + f for f in (A, rtp, B))
    framer = StreamFramer()
    assert _feed(framer, stream, chunk) == [A, rtp, B]
    assert framer.mode == "rfc4571"


def test_ms_turn_tcp_framing() -> None:
    stream = b"\x02\x00" + len(A).to_bytes(2, "big") + A + b"\x03\x00\x00\x04data"
    framer = StreamFramer()
    assert framer.feed(stream) == [A, b"data"]
    assert framer.mode == "ms-turn"


def test_resync_after_garbage_counts_skipped_bytes() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\xffmid-stream junk" + A + B) == [A, B]
    assert framer.skipped == 16 and framer.resyncs == 1


def test_resync_onto_rfc4571_frames() -> None:
    stream = b"".join(len(f).to_bytes(2, "big") + f for f in (A, B))
    framer = StreamFramer()
    assert framer.feed(b"\x99\x98\x97" + stream) == [A, B]
    assert framer.mode == "rfc4571" and framer.skipped == 3


def test_garbage_without_a_header_keeps_a_bounded_tail() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\xee" * 10_000) == []
    assert framer.pending <= 7 and framer.skipped >= 9_993
    assert framer.feed(A) == [A]


def test_passthrough_for_rfc6062_data_connections() -> None:
    framer = StreamFramer()
    assert framer.feed(A + b"peer") == [A]
    assert framer.passthrough() == [b"peer"]
    assert framer.feed(b"raw peer bytes") == [b"raw peer bytes"]
    assert framer.mode == "passthrough"
