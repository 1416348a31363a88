"""iter_events: UDP/TCP messages, tunnelled STUN, ICMP quotes, RFC 6062, stats, the corpus."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import CORPUS, corpus_files
from scapy.all import ICMP, IP, TCP, UDP, raw
from test_capture_support import channeldata, stun, xor_peer

from stunscope.capture import stream
from stunscope.capture.events import Endpoint, MessageEvent, Undecodable, Unreachable
from stunscope.capture.records import Record
from stunscope.capture.stats import CaptureStats
from stunscope.capture.stream import iter_events, open_events
from stunscope.capture.tcp import TcpReassembler

CLIENT = Endpoint("10.0.0.1", 5000)
SERVER = Endpoint("192.0.2.7", 3478)


def _records(*packets: object) -> list[Record]:
    frames = [raw(p) for p in packets]
    return [Record(i, 100.0 + i, 101, data, len(data)) for i, data in enumerate(frames, 1)]


def _udp(payload: bytes, reverse: bool = False) -> object:
    a, b = (SERVER, CLIENT) if reverse else (CLIENT, SERVER)
    return IP(src=a.ip, dst=b.ip) / UDP(sport=a.port, dport=b.port) / payload


def _tcp(payload: bytes, seq: int, flags: str = "PA", reverse: bool = False) -> object:
    a, b = (SERVER, CLIENT) if reverse else (CLIENT, SERVER)
    return IP(src=a.ip, dst=b.ip) / TCP(sport=a.port, dport=b.port, seq=seq, flags=flags) / payload


def _summary(events: list) -> list[tuple]:
    return [
        (e.frame, e.index, e.kind, e.tunnel, e.message.txid if e.kind != "channeldata" else e.message.channel)
        for e in events
    ]


def test_udp_stun_message_event() -> None:
    stats = CaptureStats()
    events = list(iter_events(_records(_udp(stun(txid=b"A" * 12)), _udp(b"\x80" + b"\x00" * 40)), stats=stats))
    assert events == [
        MessageEvent(1, 101.0, CLIENT, SERVER, "udp", "stun", events[0].message, None, None, None, 0)
    ]
    assert events[0].message.txid == b"A" * 12
    assert (stats.frames, stats.messages, stats.kinds["stun"], stats.kinds["rtp"]) == (2, 1, 1, 1)


def test_classic_stun_is_told_apart() -> None:
    classic = b"\x00\x01\x00\x00" + b"C" * 16  # RFC 3489 Binding request, no cookie
    (event,) = iter_events(_records(_udp(classic)))
    assert event.kind == "classic-stun" and event.message.txid == b"C" * 16


def test_stun_tunnelled_in_channeldata_follows_its_carrier() -> None:
    inner = stun(txid=b"I" * 12)
    events = list(iter_events(_records(_udp(channeldata(0x4001, inner)))))
    assert _summary(events) == [(1, 0, "channeldata", None, 0x4001), (1, 1, "stun", "channeldata", b"I" * 12)]
    assert events[1].channel == 0x4001 and events[1].peer is None


def test_channeldata_carrying_media_is_one_event() -> None:
    events = list(iter_events(_records(_udp(channeldata(0x4001, b"\x80" * 30)))))
    assert _summary(events) == [(1, 0, "channeldata", None, 0x4001)]


@pytest.mark.parametrize(("method", "tunnel"), [(0x006, "send"), (0x007, "data")])
def test_stun_tunnelled_in_send_and_data_indications(method: int, tunnel: str) -> None:
    inner = stun(txid=b"I" * 12)
    carrier = stun(method, 1, b"S" * 12, [(0x0012, xor_peer("198.51.100.9", 4000)), (0x0013, inner)])
    events = list(iter_events(_records(_udp(carrier))))
    assert _summary(events) == [(1, 0, "stun", None, b"S" * 12), (1, 1, "stun", tunnel, b"I" * 12)]
    assert events[1].peer == Endpoint("198.51.100.9", 4000)
    assert (events[1].src, events[1].dst) == (CLIENT, SERVER)


def test_send_request_class_is_not_a_tunnel() -> None:
    carrier = stun(0x006, 0, b"S" * 12, [(0x0013, stun())])
    assert len(list(iter_events(_records(_udp(carrier))))) == 1


def test_icmp_quote_is_unreachable_not_traffic() -> None:
    quoted = raw(_udp(stun()))
    error = IP(src="192.0.2.7", dst="10.0.0.1") / ICMP(type=3, code=3) / quoted
    stats = CaptureStats()
    events = list(iter_events(_records(error), stats=stats))
    assert events == [Unreachable(1, 101.0, "192.0.2.7", CLIENT, SERVER, "udp", "port-unreachable")]
    assert (stats.messages, stats.kinds["stun"], stats.unreachable) == (0, 0, 1)


def test_tcp_two_messages_in_one_segment_and_one_across_three() -> None:
    m1, m2, m3 = stun(txid=b"1" * 12), stun(txid=b"2" * 12), stun(txid=b"3" * 12, attrs=[(0x8022, b"x" * 40)])
    seq = 1001
    p1, p2, p3 = m3[:10], m3[10:30], m3[30:]
    after = seq + len(m1 + m2)
    records = _records(
        _tcp(b"", 1000, "S"),
        _tcp(m1 + m2, seq),
        _tcp(p1, after),
        _tcp(p3, after + len(p1 + p2)),  # ahead of a hole: held
        _tcp(p1, after),  # retransmission: dropped
        _tcp(p2, after + len(p1)),  # fills the hole: m3 completes here
    )
    stats = CaptureStats()
    events = list(iter_events(records, stats=stats))
    assert _summary(events) == [(2, 0, "stun", None, b"1" * 12), (2, 1, "stun", None, b"2" * 12), (6, 0, "stun", None, b"3" * 12)]
    assert all(e.transport == "tcp" for e in events)
    assert (stats.tcp_streams, stats.tcp_retransmitted_bytes, stats.tcp_gaps) == (1, len(p1), 0)


def test_tcp_first_data_out_of_order_after_the_syn() -> None:
    m1, m2 = stun(txid=b"1" * 12), stun(txid=b"2" * 12)
    records = _records(_tcp(b"", 41, "S"), _tcp(m2, 42 + len(m1)), _tcp(m1, 42))
    assert _summary(list(iter_events(records))) == [(3, 0, "stun", None, b"1" * 12), (3, 1, "stun", None, b"2" * 12)]


def test_tcp_sequence_wraps_around() -> None:
    m1, m2 = stun(txid=b"1" * 12), stun(txid=b"2" * 12)
    start = (1 << 32) - 10
    records = _records(_tcp(m1, start), _tcp(m2, (start + len(m1)) % (1 << 32)))
    assert [e.message.txid for e in iter_events(records)] == [b"1" * 12, b"2" * 12]


def test_tcp_channeldata_is_padded_and_tunnels_stun() -> None:
    inner = stun(txid=b"I" * 12, attrs=[(0x8022, b"abc")])
    data = stun(txid=b"A" * 12) + channeldata(0x4002, inner + b"\x01", pad=True)
    events = list(iter_events(_records(_tcp(data, 7))))
    assert _summary(events) == [(1, 0, "stun", None, b"A" * 12), (1, 1, "channeldata", None, 0x4002), (1, 2, "stun", "channeldata", b"I" * 12)]


def test_non_stun_tcp_is_not_tracked() -> None:
    stats = CaptureStats()
    records = _records(_tcp(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1), _tcp(b"\x16\x03\x01\x00\x05hello", 1, reverse=True))
    assert list(iter_events(records, stats=stats)) == []
    assert (stats.tcp_streams, stats.kinds["tcp-other"]) == (0, 2)


def test_rfc6062_connection_bind_turns_the_connection_into_peer_data() -> None:
    bind = stun(0x00B, 0, b"B" * 12, [(0x002A, b"\x00\x00\x00\x07")])
    ok = stun(0x00B, 2, b"B" * 12)
    looks_like_stun = stun(txid=b"P" * 12)
    records = _records(
        _tcp(bind, 1),
        _tcp(ok, 1, reverse=True),
        _tcp(looks_like_stun, 1 + len(bind)),
        _tcp(looks_like_stun, 1 + len(ok), reverse=True),
    )
    assert [(e.frame, e.message.method) for e in iter_events(records)] == [(1, 0x00B), (2, 0x00B)]


def test_tcp_hole_too_long_is_a_counted_gap_and_the_stream_resumes() -> None:
    stats = CaptureStats()
    tcp = TcpReassembler(stats, max_pending=100)
    key = (b"\x01" * 4, 1, b"\x02" * 4, 2)
    m = stun(txid=b"1" * 12, attrs=[(0x8022, b"x" * 40)])  # 64 bytes
    assert tcp.segment(key, 1000, 0, m) == [m]
    later = 1000 + len(m) + 500
    assert tcp.segment(key, later, 0, m) == []  # held: 64 bytes pending
    assert tcp.segment(key, later + len(m), 0, m + m) == [m, m, m]  # 192 > 100: skip the hole
    assert stats.tcp_gaps == 1


def test_tcp_directions_are_bounded() -> None:
    stats = CaptureStats()
    tcp = TcpReassembler(stats, max_directions=2)
    for port in range(3):
        tcp.segment((b"\x01" * 4, port, b"\x02" * 4, 2), 1, 0, stun())
    assert (stats.tcp_streams, stats.tcp_evictions) == (3, 1)


def test_fin_forgets_the_direction() -> None:
    stats = CaptureStats()
    tcp = TcpReassembler(stats)
    key = (b"\x01" * 4, 1, b"\x02" * 4, 2)
    m = stun()
    assert tcp.segment(key, 1, 0x11, m) == [m]  # FIN+ACK with data: delivered, then forgotten
    assert tcp.segment(key, 500, 0, m) == [m]  # a new stream starts where it is seen
    assert stats.tcp_streams == 2


def test_payload_that_fails_to_decode_is_undecodable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "classify", lambda payload: "stun")
    stats = CaptureStats()
    (event,) = iter_events(_records(_udp(b"\x00\x01short")), stats=stats)
    assert isinstance(event, Undecodable) and event.failure.reason == "short-header"
    assert (stats.undecodable, stats.messages) == (1, 0)


def test_fragmented_stun_is_reassembled_in_the_stream() -> None:
    from scapy.all import fragment

    big = _udp(stun(txid=b"F" * 12, attrs=[(0x8022, b"s" * 1000)]))
    stats = CaptureStats()
    events = list(iter_events(_records(*reversed(fragment(big, fragsize=400))), stats=stats))
    assert [(e.frame, e.message.txid) for e in events] == [(3, b"F" * 12)]
    assert (stats.kinds["fragment"], stats.reassembled) == (2, 1)


def test_truncated_frames_are_counted() -> None:
    data = raw(_udp(stun()))
    stats = CaptureStats()
    list(iter_events([Record(1, 0.0, 101, data, len(data) + 100)], stats=stats))
    assert stats.truncated == 1


RAW_DIFFERENCES = {
    # The raw scanner in SOURCES.md counts only messages whose TLVs tile the declared length; the
    # second message of each of these files has an attribute overrunning it. stunscope keeps it
    # as a message with the finding ``attribute-overrun`` (DESIGN.md principle 1), as tshark does.
    "corelight+zeek-spicy-stun/stun-attribute-length-ffff.pcap": 2,
    "corelight+zeek-spicy-stun/stun-malformed-error.pcap": 2,
}


def _sources_raw() -> dict[str, int]:
    """file -> "STUN (raw)" column of ../shared/corpus/SOURCES.md."""
    text = (CORPUS / "SOURCES.md").read_text()
    row = r"^\| `([^`]+)` \|[^|]*\|[^|]*\| \d+ \| \d+ \| (\d+) \|"
    return {m[1]: int(m[2]) for m in re.finditer(row, text, re.M)}


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_stun_count_matches_the_raw_scanner(path: Path) -> None:
    name = f"{path.parent.name}/{path.name}"
    stats = CaptureStats()
    events = list(open_events(path, stats=stats))
    direct = [e for e in events if isinstance(e, MessageEvent) and e.tunnel is None and e.kind != "channeldata"]
    expected = RAW_DIFFERENCES.get(name, _sources_raw().get(name))
    if expected is None:
        pytest.skip(f"{name} is not in SOURCES.md")
    assert len(direct) == expected
    assert not [e for e in events if isinstance(e, Undecodable)]


def test_corpus_turn_capture_has_tunnels_and_icmp() -> None:
    path = CORPUS / "ntop+nDPI" / "stun.pcap"
    if not path.is_file():
        pytest.skip("corpus absent")
    events = list(open_events(path))
    tunnels = {e.tunnel for e in events if isinstance(e, MessageEvent)}
    assert tunnels == {None, "channeldata", "send", "data"}
    assert sum(isinstance(e, Unreachable) for e in events) == 1


def test_channel_above_0x4fff_is_channeldata_once_bound() -> None:
    bind = stun(0x009, 0, b"B" * 12, [(0x000C, b"\x64\x94\x00\x00"), (0x0012, xor_peer("198.51.100.9", 4000))])
    ok = stun(0x009, 2, b"B" * 12)
    media = channeldata(0x6494, b"\x80" * 20)
    stats = CaptureStats()
    records = _records(_udp(media), _udp(bind), _udp(ok, reverse=True), _udp(media), _udp(media, reverse=True))
    events = list(iter_events(records, stats=stats))
    assert [(e.frame, e.kind) for e in events] == [(2, "stun"), (3, "stun"), (4, "channeldata"), (5, "channeldata")]
    assert events[2].channel == 0x6494
    assert (stats.kinds["quic"], stats.kinds["channeldata"]) == (1, 2)  # frame 1: before the bind


def test_channel_bound_on_another_pair_stays_quic() -> None:
    bind = stun(0x009, 0, b"B" * 12, [(0x000C, b"\x64\x94\x00\x00")])
    ok = stun(0x009, 2, b"B" * 12)
    other = IP(src="10.0.0.9", dst=SERVER.ip) / UDP(sport=5000, dport=SERVER.port) / channeldata(0x6494, b"\x80" * 20)
    events = list(iter_events(_records(_udp(bind), _udp(ok, reverse=True), other)))
    assert [e.frame for e in events] == [1, 2]


def test_tcp_stream_starting_like_channeldata_without_stun_is_not_tracked() -> None:
    mysql = b"\x40\x00\x00\x01" + b"\x0a" + b"8.0.36\x00" + b"\x00" * 52  # a MySQL greeting
    stats = CaptureStats()
    assert list(iter_events(_records(_tcp(mysql, 1, reverse=True)), stats=stats)) == []
    assert stats.tcp_streams == 0


def test_tcp_channeldata_direction_is_tracked_when_the_reverse_carries_stun() -> None:
    records = _records(_tcp(stun(txid=b"A" * 12), 1), _tcp(channeldata(0x4001, b"\x80" * 8), 1, reverse=True))
    assert [(e.frame, e.kind) for e in iter_events(records)] == [(1, "stun"), (2, "channeldata")]


def test_tcp_capture_started_mid_turn_connection_is_recognised() -> None:
    rtp = b"\x80\x60" + b"\x00" * 30
    tiled = channeldata(0x4001, rtp[:13], pad=True) + stun(txid=b"T" * 12)
    spanning = channeldata(0x4002, stun(txid=b"I" * 12), pad=True) + channeldata(0x4002, rtp)[:10]
    records = _records(_tcp(tiled, 9), _tcp(spanning, 5, reverse=True))
    assert [(e.frame, e.index, e.kind, e.tunnel) for e in iter_events(records)] == [
        (1, 0, "channeldata", None),
        (1, 1, "stun", None),
        (2, 0, "channeldata", None),
        (2, 1, "stun", "channeldata"),
    ]


def test_tls_segment_in_the_channeldata_range_with_rtp_looking_bytes_is_not_turn() -> None:
    tls_like = b"\x4c\xba\x05\x00" + b"\x80\x60" + bytes(range(256)) * 5  # 'RTP' inside, no tiling
    stats = CaptureStats()
    assert list(iter_events(_records(_tcp(tls_like, 1)), stats=stats)) == []
    assert stats.tcp_streams == 0


@pytest.mark.parametrize(
    "text",
    [b"GET / HTTP/1.1\r\nHost: example\r\n\r\n" * 800, b"ED\x00\x01<stream:stream to='x'>" + b" " * 40],
)
def test_text_protocols_in_the_channeldata_range_are_not_turn(text: bytes) -> None:
    stats = CaptureStats()
    assert list(iter_events(_records(_tcp(text[:1400], 1)), stats=stats)) == []
    assert stats.tcp_streams == 0


def test_ms_turn_multiplexed_wrapper_is_unwrapped() -> None:
    inner = stun(1, 2, b"M" * 12)
    wrapped = b"\xff\x10" + (8 + len(inner)).to_bytes(2, "big") + b"session!" + inner
    stats = CaptureStats()
    events = list(iter_events(_records(_udp(wrapped)), stats=stats))
    assert _summary(events) == [(1, 0, "stun", None, b"M" * 12)]
    assert stats.kinds["ms-turn-mux"] == 1


def test_tcp_overlapping_retransmission_keeps_only_the_new_bytes() -> None:
    m1, m2 = stun(txid=b"1" * 12), stun(txid=b"2" * 12)
    records = _records(_tcp(m1 + m2[:5], 1), _tcp(m1[10:] + m2, 11))  # re-sends 25 bytes it had
    stats = CaptureStats()
    assert [(e.frame, e.message.txid) for e in iter_events(records, stats=stats)] == [(1, b"1" * 12), (2, b"2" * 12)]
    assert stats.tcp_retransmitted_bytes == len(m1) - 10 + 5


def test_a_new_syn_restarts_the_direction() -> None:
    m = stun(txid=b"1" * 12)
    records = _records(_tcp(m[:10], 1), _tcp(b"", 900, "S"), _tcp(m, 901))
    assert [(e.frame, e.message.txid) for e in iter_events(records)] == [(3, b"1" * 12)]


def test_connection_bind_passthrough_covers_an_untracked_reverse_direction() -> None:
    stats = CaptureStats()
    tcp = TcpReassembler(stats)
    key = (b"\x01" * 4, 1, b"\x02" * 4, 2)
    tcp.passthrough(key)
    assert tcp.segment((b"\x02" * 4, 2, b"\x01" * 4, 1), 5, 0, stun()) is None
    assert tcp.segment(key, 5, 0, stun()) is None


def test_tunnelled_bytes_that_fail_to_decode_leave_only_the_carrier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "classify", lambda payload: "channeldata" if payload[0] >= 0x40 else "stun")
    stats = CaptureStats()
    events = list(iter_events(_records(_udp(channeldata(0x4001, b"\x00\x01short"))), stats=stats))
    assert [e.kind for e in events] == ["channeldata"]
    assert (stats.messages, stats.undecodable) == (1, 0)


def test_held_segments_overlapping_what_arrived_count_as_retransmitted() -> None:
    m = stun(txid=b"1" * 12, attrs=[(0x8022, b"x" * 40)])
    stats = CaptureStats()
    tcp = TcpReassembler(stats)
    key = (b"\x01" * 4, 1, b"\x02" * 4, 2)
    assert tcp.segment(key, 100, 0, m[:10]) == []
    assert tcp.segment(key, 130, 0, m[30:]) == []  # held
    assert tcp.segment(key, 110, 0, m[10:40]) == [m]  # fills the hole and 10 bytes of the held one
    assert stats.tcp_retransmitted_bytes == 10
