"""decode_message / decode_channeldata / decode_ms_turn_mux: every finding code and failure."""

from __future__ import annotations

import pytest

from stunscope.wire.decode import (
    FAILURES,
    FINDINGS,
    decode_channeldata,
    decode_message,
    decode_ms_turn_mux,
    split_type,
)
from stunscope.wire.encode import encode_attribute, encode_message, encode_type, encode_u32
from stunscope.wire.message import (
    Attribute,
    ChannelData,
    DecodeFailure,
    MessageClass,
    MsTurnMux,
    StunMessage,
)

TXID = bytes.fromhex("0102030405060708090a0b0c")
SOFTWARE = (0x8022, b"stunscope")


def _header(msg_type: int, length: int, cookie: bytes = b"\x21\x12\xa4\x42", txid: bytes = TXID) -> bytes:
    return msg_type.to_bytes(2, "big") + length.to_bytes(2, "big") + cookie + txid


def _stun(data: bytes) -> StunMessage:
    msg = decode_message(data)
    assert isinstance(msg, StunMessage), msg
    return msg


def test_clean_message_has_no_findings() -> None:
    msg = _stun(encode_message(0x003, 0, TXID, [SOFTWARE, (0x0019, b"\x11\x00\x00\x00")]))
    assert (msg.method, msg.cls, msg.txid, msg.magic) == (0x003, MessageClass.REQUEST, TXID, True)
    assert msg.findings == ()
    assert [(a.type, a.offset, a.length, a.raw) for a in msg.attributes] == [
        (0x8022, 20, 9, b"stunscope"), (0x0019, 36, 4, b"\x11\x00\x00\x00"), (0x8028, 44, 4, msg.raw[48:52]),
    ]


@pytest.mark.parametrize(
    ("msg_type", "method", "cls"),
    [(0x0001, 0x001, MessageClass.REQUEST), (0x0111, 0x001, MessageClass.ERROR),
     (0x0016, 0x006, MessageClass.INDICATION), (0x0109, 0x009, MessageClass.SUCCESS),
     (0x0800, 0x200, MessageClass.REQUEST), (0x3FFF, 0xFFF, MessageClass.ERROR)],
)
def test_split_type_follows_rfc8489_bit_layout(msg_type: int, method: int, cls: MessageClass) -> None:
    assert split_type(msg_type) == (method, cls)
    assert encode_type(method, cls) == msg_type


def test_length_not_multiple_of_4_and_missing_padding() -> None:
    data = _header(0x0001, 5) + encode_attribute(0x0006, b"a")[:5]
    msg = _stun(data)
    assert "length-not-multiple-of-4" in msg.findings
    assert "missing-padding" in msg.findings
    assert msg.attributes == (Attribute(0x0006, 20, 1, b"a"),)


def test_truncated_and_overrun() -> None:
    full = encode_message(0x001, 0, TXID, [(0x0006, b"abcdefgh")], fingerprint=False)
    msg = _stun(full[:-3])
    assert {"truncated", "attribute-overrun"} <= set(msg.findings)
    assert msg.attributes[0].length == 8 and msg.attributes[0].raw == b"abcde"


def test_attribute_overrun_within_a_consistent_header() -> None:
    # The zeek "attribute length 0xffff" case: header length fine, attribute length absurd.
    data = _header(0x0001, 8) + b"\x80\x22\xff\xff" + b"abcd"
    msg = _stun(data)
    assert msg.findings == ("attribute-overrun",)
    assert msg.attributes == (Attribute(0x8022, 20, 0xFFFF, b"abcd"),)


def test_trailing_bytes_are_not_part_of_raw() -> None:
    full = encode_message(0x001, 0, TXID, [])
    msg = _stun(full + b"\x00\x01")
    assert msg.findings == ("trailing-bytes",) and msg.raw == full


def test_attribute_header_truncated() -> None:
    data = _header(0x0001, 6) + encode_attribute(0x001A, b"") + b"\x00\x06"
    msg = _stun(data)
    assert "attribute-header-truncated" in msg.findings


def test_nonzero_padding_is_noted_not_fatal() -> None:
    data = _header(0x0001, 8) + b"\x00\x06\x00\x01a  !"
    msg = _stun(data)
    assert msg.findings == ("nonzero-padding",)
    assert msg.attributes[0].raw == b"a"


def test_bad_fingerprint_and_fingerprint_not_last() -> None:
    good = encode_message(0x001, 0, TXID, [SOFTWARE])
    damaged = bytearray(good)
    damaged[-1] ^= 0xFF
    assert _stun(bytes(damaged)).findings == ("bad-fingerprint",)
    after = good + encode_attribute(0x8022, b"late")
    after = after[:2] + (len(after) - 20).to_bytes(2, "big") + after[4:]
    assert "fingerprint-not-last" in _stun(after).findings


def test_attributes_after_integrity() -> None:
    key = b"k" * 16
    signed = encode_message(0x001, 0, TXID, [SOFTWARE], integrity_key=key, integrity_sha256_key=key)
    assert _stun(signed).findings == ()  # MI, MI-SHA256, FINGERPRINT is the legal order
    unsealed = encode_message(0x001, 0, TXID, [SOFTWARE], integrity_key=key, fingerprint=False)
    body = unsealed[20:] + encode_attribute(0x0006, b"user")
    late = unsealed[:2] + len(body).to_bytes(2, "big") + unsealed[4:20] + body
    assert "attribute-after-integrity" in _stun(late).findings
    sha_then_mi = encode_message(0x001, 0, TXID, [(0x001C, bytes(32)), (0x0008, bytes(20))], fingerprint=False)
    assert _stun(sha_then_mi).findings == ("attribute-after-integrity",)


def test_duplicates_flagged_only_where_they_matter() -> None:
    peers = encode_message(0x008, 0, TXID, [(0x0012, bytes(8)), (0x0012, bytes(8))])
    assert _stun(peers).findings == ()
    twice = encode_message(0x001, 0, TXID, [(0x0006, b"a"), (0x0006, b"b")])
    assert _stun(twice).findings == ("duplicate-attribute",)
    vendor = encode_message(0x001, 0, TXID, [(0xDAB9, b"a"), (0xDAB9, b"b")])
    assert _stun(vendor).findings == ()


def test_classic_rfc3489_by_structure() -> None:
    txid16 = bytes(range(16))
    classic = encode_message(0x001, 2, txid16, [(0x0001, b"\x00\x01\x0d\x96\xc0\x00\x02\x01")], fingerprint=False)
    msg = _stun(classic)
    assert not msg.magic and msg.txid == txid16 and msg.cls is MessageClass.SUCCESS
    for broken in (classic + b"\x00" * 4, classic[:-1], classic[:22] + b"\x00\x0c" + classic[24:]):
        failure = decode_message(broken)
        assert isinstance(failure, DecodeFailure) and failure.reason == "not-stun"
    unknown_type = b"\x00\x05" + classic[2:]
    assert isinstance(decode_message(unknown_type), DecodeFailure)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "short-header"), (b"\x00\x01\x00", "short-header"), (b"\xc0" + bytes(19), "not-stun"),
     (b"\x00" * 20, "not-stun")],
)
def test_failures_say_why(data: bytes, reason: str) -> None:
    failure = decode_message(data)
    assert isinstance(failure, DecodeFailure) and failure.reason == reason and failure.detail


def test_every_finding_and_failure_is_documented() -> None:
    import re
    from pathlib import Path

    import stunscope.wire.decode as decode

    source = Path(decode.__file__).read_text()
    emitted = set(re.findall(r'append\("([a-z0-9-]+)"', source)) | {"missing-padding", "nonzero-padding",
                                                                    "fingerprint-not-last", "unpadded-attributes"}
    assert emitted <= set(FINDINGS)
    reasons = set(re.findall(r'DecodeFailure\(\s*\d+, "([a-z-]+)"', source))
    assert reasons == set(FAILURES)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", code) for code in [*FINDINGS, *FAILURES])


def test_channeldata_udp_and_tcp_padding() -> None:
    assert decode_channeldata(b"\x40\x00\x00\x03abc", tcp=False) == ChannelData(0x4000, 3, b"abc", (), False)
    assert decode_channeldata(b"\x40\x00\x00\x03abc", tcp=True).findings == ("missing-channel-padding",)
    padded = decode_channeldata(b"\x40\x00\x00\x03abc\x00", tcp=True)
    assert padded == ChannelData(0x4000, 3, b"abc", (), True)
    assert decode_channeldata(b"\x40\x00\x00\x03abc\x01", tcp=False).findings == ("bad-channel-padding",)
    assert decode_channeldata(b"\x40\x00\x00\x00" + b"xyzw", tcp=False).findings == ("trailing-bytes",)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"\x40", "short-header"), (b"\x3f\xff\x00\x00", "not-channeldata"), (b"\x40\x00\x00\x09abc", "truncated")],
)
def test_channeldata_failures(data: bytes, reason: str) -> None:
    failure = decode_channeldata(data, tcp=False)
    assert isinstance(failure, DecodeFailure) and failure.reason == reason


def test_ms_turn_mux_unwraps_the_inner_message() -> None:
    inner = encode_message(0x001, 2, TXID, [(0x8070, encode_u32(2))])
    wrapped = b"\xff\x10" + (8 + len(inner)).to_bytes(2, "big") + b"SESSION!" + inner
    mux = decode_ms_turn_mux(wrapped)
    assert mux == MsTurnMux(b"SESSION!", 8 + len(inner), inner, ())
    assert _stun(mux.data).attributes[0].type == 0x8070
    assert decode_ms_turn_mux(wrapped[:-1]).findings == ("truncated",)
    assert isinstance(decode_ms_turn_mux(b"\xff\x10\x00\x02" + bytes(8)), DecodeFailure)
    assert isinstance(decode_ms_turn_mux(b"\xff\x11" + bytes(10)), DecodeFailure)


def test_unpadded_attributes_of_ms_turn_servers() -> None:
    """[MS-TURN] servers send attributes back to back; the message only tiles that way."""
    body = b"\x00\x09\x00\x05" + b"\x00\x00\x04\x01X" + b"\x80\x22\x00\x04abcd"
    msg = _stun(_header(0x0113, len(body)) + body)
    assert msg.findings == ("length-not-multiple-of-4", "unpadded-attributes")
    assert [(a.type, a.offset, a.raw) for a in msg.attributes] == [
        (0x0009, 20, b"\x00\x00\x04\x01X"), (0x8022, 29, b"abcd"),
    ]


def test_bytearray_and_memoryview_decode_like_bytes() -> None:
    data = encode_message(0x001, 0, TXID, [SOFTWARE])
    for view in (bytearray(data), memoryview(data)):
        msg = _stun(view)  # type: ignore[arg-type]
        assert msg == decode_message(data) and hash(msg.txid) == hash(TXID)
