"""The codec on real bytes from ../shared/corpus (skipped when the corpus is absent).

Facts asserted here were cross-checked with tshark 4.0 where it decodes the message (the bad
FINGERPRINT of ntop stun.pcap frame 195 is flagged by both).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from stunscope.capture.layers import Transport, decode_frame
from stunscope.capture.records import read_records
from stunscope.wire.attributes import attribute_value, data, format_value
from stunscope.wire.decode import decode_message, decode_ms_turn_mux
from stunscope.wire.demux import classify
from stunscope.wire.message import MsTurnMux, StunMessage
from stunscope.wire.registry import ATTRIBUTES

UNNAMED_PROPRIETARY = {
    # Codes no registry, vendor specification or tshark 4.0 names; kept raw and shown as hex.
    0x0000, 0x4000, 0x4002, 0x4003, 0x4004, 0x4007, 0xDAB9, 0xDABA, 0xDB00,  # WhatsApp/Facebook
    0x8006, 0x8033, 0x8036,  # Microsoft Teams (tshark: "MS-TURN UNKNOWN 8006")
    0x0101, 0x0103,  # Zoom's classic RFC 3489 Binding/Shared Secret extensions
    0x5345,  # zeek-spicy-stun stun-malformed-error.pcap: bytes of a broken value read as a type
}


def _payloads(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(frame, IP protocol, transport payload) of every UDP/TCP packet with a payload."""
    for record in read_records(path):
        unwrapped = decode_frame(record.linktype, record.data)
        if isinstance(unwrapped, Transport) and unwrapped.payload:
            yield record.frame, unwrapped.proto, unwrapped.payload


def _messages(path: Path) -> Iterator[tuple[int, int, StunMessage]]:
    """Every STUN message of a capture's datagrams/segments, MS-TURN 0xFF10 wrappers unwrapped."""
    for frame, proto, payload in _payloads(path):
        kind = classify(payload)
        if kind == "ms-turn-mux":
            mux = decode_ms_turn_mux(payload)
            assert isinstance(mux, MsTurnMux)
            payload, kind = mux.data, classify(mux.data)
        if kind in ("stun", "classic-stun"):
            msg = decode_message(payload)
            assert isinstance(msg, StunMessage), (path.name, frame, msg)
            yield frame, proto, msg


def test_every_stun_payload_decodes_and_every_value_renders(corpus: Path) -> None:
    files = sorted(p for p in corpus.rglob("*") if p.suffix in {".pcap", ".pcapng"})
    unnamed: set[int] = set()
    total = 0
    for path in files:
        for _, _, msg in _messages(path):
            total += 1
            for attr in msg.attributes:
                attribute_value(msg, attr)
                assert isinstance(format_value(msg, attr), str)
                if attr.type not in ATTRIBUTES:
                    unnamed.add(attr.type)
    assert total > 1000
    assert unnamed == UNNAMED_PROPRIETARY


def _file(corpus: Path, name: str) -> Path:
    path = corpus / name
    if not path.is_file():
        pytest.skip(f"{name} is absent")
    return path


def test_teams_ms_turn(corpus: Path) -> None:
    path = _file(corpus, "ntop+nDPI/teams.pcap")
    kinds = Counter(classify(payload) for _, _, payload in _payloads(path))
    assert kinds["ms-turn-mux"] == 2
    messages = list(_messages(path))
    findings = Counter(f for _, _, msg in messages for f in msg.findings)
    # Lync/Teams servers do not pad attributes (pre-RFC 5389): re-read back to back, not overrun.
    assert findings["unpadded-attributes"] == 18 and "attribute-overrun" not in findings
    data_indications = [msg for _, _, msg in messages if msg.msg_type == 0x0115]
    assert data_indications and all(not msg.magic for msg in data_indications)
    inner = [decode_message(data(msg)) for msg in data_indications]
    assert all(isinstance(m, StunMessage) for m in inner)


def test_known_damage_is_reported(corpus: Path) -> None:
    by_frame = {frame: msg for frame, _, msg in _messages(_file(corpus, "ntop+nDPI/stun.pcap"))}
    assert "bad-fingerprint" in by_frame[195].findings
    assert "attribute-after-integrity" in by_frame[20].findings  # GOOG-LOGGING-ID after MI
    ffff = list(_messages(_file(corpus, "corelight+zeek-spicy-stun/stun-attribute-length-ffff.pcap")))
    assert any("attribute-overrun" in msg.findings for _, _, msg in ffff)


def test_classic_rfc3489_shared_secret(corpus: Path) -> None:
    messages = [msg for _, _, msg in _messages(_file(corpus, "ntop+nDPI/zoom.pcap"))]
    assert all(not msg.magic and len(msg.txid) == 16 for msg in messages)
    assert Counter(msg.method for msg in messages) == {0x002: 9, 0x001: 9}


def _tcp_frames(path: Path) -> list[tuple[int, bytes, str]]:
    """Frames of every TCP direction, fed in capture order (these captures have no reordering)."""
    from stunscope.wire.framing import StreamFramer

    framers: dict[tuple, StreamFramer] = {}
    frames = []
    for record in read_records(path):
        segment = decode_frame(record.linktype, record.data)
        if isinstance(segment, Transport) and segment.proto == 6 and segment.payload:
            key = (segment.src, segment.sport, segment.dst, segment.dport)
            framer = framers.setdefault(key, StreamFramer())
            frames += [(record.frame, frame, framer.mode) for frame in framer.feed(segment.payload)]
    assert all(framer.skipped == 0 and framer.pending == 0 for framer in framers.values())
    return frames


def test_several_stun_messages_in_one_tcp_segment(corpus: Path) -> None:
    frames = _tcp_frames(_file(corpus, "ntop+nDPI/stun_tcp_multiple_msgs_same_pkt.pcap"))
    assert [frame for frame, _, _ in frames] == [2, 3, 4, 5, 5, 5]
    assert all(isinstance(decode_message(data_), StunMessage) for _, data_, _ in frames)


def test_ice_tcp_rfc4571_framing_is_detected(corpus: Path) -> None:
    frames = _tcp_frames(_file(corpus, "ntop+nDPI/stun.pcap"))
    modes = Counter(mode for _, _, mode in frames)
    assert modes["rfc4571"] > 0 and modes["stun"] > 0
    assert all(classify(data_) == "stun" for _, data_, _ in frames)
