"""open_events with the reader process (capture/pipeline.py) gives what the one-process path gives:
the same events in the same order, the same stats, the same errors; and it leaves no process."""

from __future__ import annotations

import dataclasses
import gzip
import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, bundled_captures, corpus_files

from stunscope.capture import pipeline
from stunscope.capture.stats import CaptureStats
from stunscope.capture.stream import open_events
from stunscope.errors import CaptureError

pytestmark = pytest.mark.xdist_group("pipeline")


def _run(path: Path, parallel: bool) -> tuple[list, dict, str | None]:
    stats = CaptureStats()
    events = []
    error = None
    try:
        for event in open_events(path, stats, parallel=parallel):
            events.append(event)
    except CaptureError as exc:
        error = str(exc)
    counters = dataclasses.asdict(stats)
    counters["kinds"] = dict(sorted(stats.kinds.items()))
    return events, counters, error


def _same(path: Path) -> None:
    one = _run(path, False)
    two = _run(path, True)
    assert two[2] == one[2]
    assert two[1] == one[1]
    assert len(two[0]) == len(one[0])
    assert two[0] == one[0]
    assert not multiprocessing.active_children()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmark's mixed WebRTC traffic (STUN, TURN, ChannelData, RTP, RTCP, DTLS, TCP)."""
    script = ROOT / "bench" / "generate.py"
    if not script.exists():
        pytest.skip("bench/generate.py is not in the tree")
    out = tmp_path_factory.mktemp("pipeline") / "mixed.pcap"
    subprocess.run([sys.executable, str(script), "--packets", "30000", "--out", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "BATCH_BYTES", 2048)  # many batches; the forked reader inherits it


def test_mixed_capture_same_events_and_stats(mixed: Path, small_batches: None) -> None:
    _same(mixed)


def test_bundled_and_corpus_captures_same(small_batches: None) -> None:
    for path in [*bundled_captures(), *corpus_files()]:
        _same(path)


def test_gzip_and_damaged_files_same(mixed: Path, tmp_path: Path, small_batches: None) -> None:
    data = mixed.read_bytes()
    zipped = tmp_path / "mixed.pcap.gz"
    zipped.write_bytes(gzip.compress(data))
    _same(zipped)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])
    events, _stats, error = _run(cut, True)
    assert error is not None and "truncated record" in error and events
    _same(cut)
    corrupt = tmp_path / "corrupt.pcap"
    corrupt.write_bytes(gzip.compress(data)[: len(data) // 5])
    corrupt.rename(tmp_path / "corrupt.pcap.gz")
    _same(tmp_path / "corrupt.pcap.gz")
    oversized = tmp_path / "oversized.pcap"  # a record whose captured length exceeds any snap length
    blob = bytearray(data)
    pos = 24
    for _ in range(500):
        pos += 16 + int.from_bytes(blob[pos + 8 : pos + 12], "little")
    blob[pos + 8 : pos + 12] = (1 << 30).to_bytes(4, "little")
    oversized.write_bytes(bytes(blob))
    events, _stats, error = _run(oversized, True)
    assert error is not None and "exceeds the snap length" in error and events
    _same(oversized)
    text = tmp_path / "notes.pcap"
    text.write_text("not a capture\n")
    assert _run(text, True) == _run(text, False) and _run(text, True)[2]


def test_early_close_and_caller_error_leave_no_process(mixed: Path, small_batches: None) -> None:
    events = open_events(mixed, parallel=True)
    next(events)
    assert multiprocessing.active_children()
    events.close()
    assert not multiprocessing.active_children()
    with pytest.raises(ZeroDivisionError):
        for count, _event in enumerate(open_events(mixed, parallel=True)):
            if count == 100:
                raise ZeroDivisionError
    assert not multiprocessing.active_children()


def test_worth_it(mixed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pipeline.ENV, raising=False)
    assert not pipeline.worth_it(mixed)  # small: one process
    assert pipeline.worth_it(mixed, force=True)
    assert not pipeline.worth_it(tmp_path)  # not a regular file
    assert not pipeline.worth_it(tmp_path / "missing.pcap", force=True)
    monkeypatch.setenv(pipeline.ENV, "1")
    assert pipeline.worth_it(mixed)
    monkeypatch.setenv(pipeline.ENV, "0")
    assert not pipeline.worth_it(mixed, force=True)


def test_analyze_json_same_with_the_reader_process(mixed: Path) -> None:
    outputs = []
    for setting in ("0", "1"):
        out = subprocess.run([sys.executable, "-m", "stunscope", "analyze", str(mixed), "--format", "json"],
                             capture_output=True, env={**__import__("os").environ, pipeline.ENV: setting})
        assert out.returncode == 0, out.stderr
        outputs.append(out.stdout)
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[1])["capture"]["frames"] == 30000


def test_fragments_ipv6_tcp_and_icmp_same(tmp_path: Path, small_batches: None) -> None:
    """The reader's IP reassembly, TCP reassembly (out of order, retransmitted, RFC 6062
    ConnectionBind passthrough) and ICMP quotes give what the one-process path gives."""
    from scapy.all import ICMP, TCP, UDP, IPv6, IPv6ExtHdrFragment, fragment, fragment6, raw
    from scapy.all import IP as IPv4
    from test_capture_support import channeldata, pcap, stun

    client, server = ("10.0.0.1", 5000), ("192.0.2.7", 3478)
    packets = []
    big = IPv4(src=client[0], dst=server[0], id=7) / UDP(sport=client[1], dport=server[1]) / stun(txid=b"F" * 12, attrs=[(0x8022, b"x" * 1800)])
    packets += list(reversed(fragment(big, fragsize=400)))
    six = IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5000, dport=3478) / stun(txid=b"6" * 12)
    packets.append(six)
    six_big = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=9) / UDP(sport=5000, dport=3478) / stun(txid=b"7" * 12, attrs=[(0x8022, b"y" * 2000)])
    packets += fragment6(six_big, 1200)
    stream_bytes = stun(method=0x003, txid=b"T" * 12) + channeldata(0x4001, b"\x80" * 30, pad=True) + stun(method=0x00B, cls=2, txid=b"B" * 12)
    seq = 1000

    def tcp(data: bytes, at: int, flags: str = "PA", reverse: bool = False) -> object:
        a, b = (server, client) if reverse else (client, server)
        return IPv4(src=a[0], dst=b[0]) / TCP(sport=a[1], dport=b[1], seq=at, flags=flags) / data

    packets.append(tcp(b"", seq - 1, "S"))
    packets.append(tcp(stream_bytes[:30], seq))
    packets.append(tcp(stream_bytes[:30], seq))  # retransmitted
    packets.append(tcp(stream_bytes[30:], seq + 30))
    packets.append(tcp(b"\x80" * 50, seq + len(stream_bytes)))  # after ConnectionBind: application data
    packets.append(IPv4(src="192.0.2.9", dst=client[0]) / ICMP(type=3, code=3) / IPv4(src=client[0], dst=server[0]) / UDP(sport=client[1], dport=server[1]) / (b"\x00" * 8))
    packets.append(IPv4(src=client[0], dst=server[0]) / UDP(sport=client[1], dport=server[1]) / stun(txid=b"U" * 12))
    path = tmp_path / "mix.pcap"
    path.write_bytes(pcap([raw(p) for p in packets], linktype=101))
    events, stats, error = _run(path, True)
    assert error is None and stats["reassembled"] >= 2 and stats["tcp_streams"] and stats["unreachable"] == 1
    assert [(e.transport, e.kind, e.index) for e in events if e.transport == "tcp"] == [
        ("tcp", "stun", 0), ("tcp", "channeldata", 0), ("tcp", "stun", 1)]
    _same(path)
