"""Property-based fuzzing of the codec: nothing raises on any bytes; encode/decode round-trips.

Inputs that once crashed are kept under tests/crashers/wire/ (one raw file each) and replayed.
For a longer run: ``STUNSCOPE_FUZZ_EXAMPLES=20000 python -m pytest tests/test_wire_fuzz.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stunscope.wire.attributes import (
    attribute_value,
    channel_number,
    error_code,
    format_value,
    ice_role,
    lifetime,
    malformed_attributes,
    nonce,
    priority,
    xor_mapped,
    xor_peers,
    xor_relayed,
)
from stunscope.wire.decode import decode_channeldata, decode_message, decode_ms_turn_mux
from stunscope.wire.demux import KINDS, classify
from stunscope.wire.encode import encode_attribute, encode_message
from stunscope.wire.framing import StreamFramer
from stunscope.wire.integrity import Keyring, check_fingerprint, check_integrity
from stunscope.wire.message import ChannelData, DecodeFailure, MessageClass, StunMessage
from stunscope.wire.registry import ATTRIBUTES

CRASHERS = Path(__file__).parent / "crashers" / "wire"
FUZZ = settings(
    max_examples=int(os.environ.get("STUNSCOPE_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_KEYRING = Keyring()
_KEYRING.add_short_term("pass")
_KEYRING.add_long_term("user", "pass")

attr_types = st.one_of(st.sampled_from(sorted(ATTRIBUTES)), st.integers(0, 0xFFFF))
attributes = st.lists(st.tuples(attr_types, st.binary(max_size=40)), max_size=8)
txids = st.binary(min_size=12, max_size=12)


@st.composite
def stun_like(draw: st.DrawFn) -> bytes:
    """Well-formed messages of any attributes, then (maybe) damaged: bytes flipped, cut, extended."""
    txid = draw(st.one_of(txids, st.binary(min_size=16, max_size=16)))
    data = bytearray(encode_message(
        draw(st.integers(0, 0xFFF)), draw(st.integers(0, 3)), txid, draw(attributes),
        integrity_key=draw(st.sampled_from([None, b"pass"])), fingerprint=draw(st.booleans()),
    ))
    for offset in draw(st.lists(st.integers(0, len(data) - 1), max_size=3)):
        data[offset] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=6))


def _exercise(msg: StunMessage) -> None:
    """Everything downstream code calls on a message must not raise either."""
    for attr in msg.attributes:
        attribute_value(msg, attr)
        assert isinstance(format_value(msg, attr), str)
    for helper in (xor_mapped, xor_relayed, xor_peers, error_code, lifetime, channel_number,
                   priority, ice_role, nonce, malformed_attributes, check_fingerprint):
        helper(msg)
    assert check_integrity(msg, _KEYRING) in {None, "ok", "bad", "no-key"}


def _decode_all(data: bytes) -> None:
    msg = decode_message(data)
    assert isinstance(msg, (StunMessage, DecodeFailure))
    if isinstance(msg, StunMessage):
        _exercise(msg)
    for tcp in (False, True):
        assert isinstance(decode_channeldata(data, tcp), (ChannelData, DecodeFailure))
    decode_ms_turn_mux(data)
    assert classify(data) in KINDS


@FUZZ
@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    _decode_all(data)


@FUZZ
@given(stun_like())
def test_damaged_messages_never_raise(data: bytes) -> None:
    _decode_all(data)


@FUZZ
@given(st.lists(st.binary(max_size=90), max_size=12), st.lists(stun_like(), max_size=4))
def test_stream_framer_never_raises_and_stays_bounded(chunks: list[bytes], messages: list[bytes]) -> None:
    framer = StreamFramer()
    fed = 0
    for chunk in [*chunks, *messages]:
        for frame in framer.feed(chunk):
            _decode_all(frame)
        fed += len(chunk)
        assert framer.pending <= fed
        assert framer.pending <= 4 + 0xFFFF + 3 + len(chunk)


_SEALS = {0x0008, 0x001C, 0x8028}
plain_attributes = st.lists(
    st.tuples(attr_types.filter(lambda t: t not in _SEALS), st.binary(max_size=40)), max_size=8
)


@FUZZ
@given(st.integers(0, 0xFFF), st.sampled_from(list(MessageClass)), txids, plain_attributes, st.booleans())
def test_encode_decode_round_trip(method: int, cls: MessageClass, txid: bytes, attrs: list, fp: bool) -> None:
    data = encode_message(method, cls, txid, attrs, integrity_key=b"pass", fingerprint=fp)
    msg = decode_message(data)
    assert isinstance(msg, StunMessage)
    assert (msg.method, msg.cls, msg.txid, msg.magic, msg.raw) == (method, cls, txid, True, data)
    expected = [t for t, _ in attrs] + [0x0008] + ([0x8028] if fp else [])
    assert [a.type for a in msg.attributes] == expected
    assert [a.raw for a in msg.attributes[: len(attrs)]] == [v for _, v in attrs]
    assert set(msg.findings) <= {"duplicate-attribute"}
    assert check_fingerprint(msg) == ("ok" if fp else None)
    short_term = Keyring()
    short_term.add_short_term("pass")
    long_term = any(t == 0x0014 for t, _ in attrs)  # a REALM selects long-term credentials
    assert check_integrity(msg, short_term) == ("no-key" if long_term else "ok")


@FUZZ
@given(st.lists(stun_like(), min_size=1, max_size=5), st.integers(1, 64))
def test_framer_splits_any_chunking_the_same(messages: list[bytes], chunk: int) -> None:
    valid = [m for m in messages if isinstance(decode_message(m), StunMessage) and decode_message(m).magic
             and len(m) == 20 + int.from_bytes(m[2:4], "big")]
    stream = b"".join(valid)
    framer = StreamFramer()
    frames = [f for i in range(0, len(stream), chunk) for f in framer.feed(stream[i:i + chunk])]
    assert frames == valid


def _crashers() -> list[Path]:
    return sorted(CRASHERS.glob("*.bin")) if CRASHERS.is_dir() else []


@pytest.mark.parametrize("path", _crashers(), ids=lambda p: p.name)
def test_committed_crashers_replay(path: Path) -> None:
    data = path.read_bytes()
    _decode_all(data)
    framer = StreamFramer()
    for frame in framer.feed(data):
        _decode_all(frame)


def test_crasher_folder_is_replayed() -> None:
    assert _crashers(), "tests/crashers/wire/ should hold the inputs that once crashed"


def test_attribute_padding_round_trips() -> None:
    assert encode_attribute(0x0006, b"abcde") == b"\x00\x06\x00\x05abcde\x00\x00\x00"
