"""Property-based fuzzing of the capture layer: no exception but CaptureError escapes on any bytes.

Inputs are random bytes and, to reach deeper code, valid frames and files with random bytes
overwritten. Crashers found here are committed under ``tests/crashers/capture/`` and replayed:
``*.pcap``/``*.pcapng``/any other suffix is read as a capture file; ``<linktype>-<name>.frame``
holds one frame of that link type.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.all import ICMP, IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrRouting, raw
from test_capture_support import channeldata, epb, idb, pcap, shb, stun, xor_peer

from stunscope.capture.fragments import FragmentTable
from stunscope.capture.layers import decode_frame
from stunscope.capture.records import Record, read_records
from stunscope.capture.stats import CaptureStats
from stunscope.capture.stream import iter_events, open_events
from stunscope.errors import CaptureError

CRASHERS = Path(__file__).parent / "crashers" / "capture"
LINKTYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147]

_SEND = stun(6, 1, b"S" * 12, [(0x0012, xor_peer("198.51.100.1", 9)), (0x0013, stun())])
TEMPLATES = [
    (1, raw(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / _SEND)),
    (101, raw(IP() / UDP() / channeldata(0x4000, stun(), pad=True))),
    (101, raw(IP(flags="MF", frag=0) / UDP() / stun(attrs=[(0x8022, b"x" * 40)]))),
    (101, raw(IP(frag=3) / (b"\x00" * 40))),
    (229, raw(IPv6() / IPv6ExtHdrRouting() / IPv6ExtHdrFragment(m=1) / UDP() / stun())),
    (101, raw(IP() / TCP(seq=5, flags="PA") / (stun() + stun(11, 2) + b"\x40\x00\x00\x04abcd"))),
    (101, raw(IP() / ICMP(type=3, code=3) / raw(IP() / UDP() / stun()))),
    (113, b"\x00" * 14 + b"\x86\xdd" + raw(IPv6() / UDP() / stun())),
]

_mutations = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8)


def _mutate(data: bytes, changes: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for pos, value in changes:
        if buf:
            buf[pos % len(buf)] = value
    return bytes(buf[:cut] if cut is not None else buf)


@st.composite
def frames(draw: st.DrawFn) -> tuple[int, bytes]:
    """A random frame, or a valid template frame with a few bytes overwritten and maybe cut."""
    if draw(st.booleans()):
        return draw(st.sampled_from(LINKTYPES)), draw(st.binary(max_size=200))
    linktype, data = draw(st.sampled_from(TEMPLATES))
    cut = draw(st.none() | st.integers(0, len(data)))
    return linktype, _mutate(data, draw(_mutations), cut)


def _events_of(records: list[Record]) -> None:
    for _event in iter_events(records, stats=CaptureStats()):
        pass


FUZZ = settings(
    max_examples=int(os.environ.get("STUNSCOPE_FUZZ_EXAMPLES", "300")),  # raise it for a long hunt
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(frames())
def test_decode_frame_never_raises(frame: tuple[int, bytes]) -> None:
    linktype, data = frame
    decode_frame(linktype, data)
    decode_frame(linktype, data, 1.0, FragmentTable(CaptureStats()))


@FUZZ
@given(st.lists(frames(), max_size=12))
def test_iter_events_never_raises(frame_list: list[tuple[int, bytes]]) -> None:
    _events_of([Record(i, float(i), lt, data, len(data)) for i, (lt, data) in enumerate(frame_list, 1)])


_FILES = [
    pcap([t[1] for t in TEMPLATES]),
    pcap([b"abc"], order=">", nano=True),
    shb() + idb(1) + idb(101, tsresol=0x83) + epb(0, 5, TEMPLATES[0][1]) + epb(1, 7, TEMPLATES[1][1]),
]


def _read_file(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.pcap"
        path.write_bytes(content)
        try:
            for _event in open_events(path):
                pass
        except CaptureError as exc:
            assert "\n" not in str(exc)


@FUZZ
@given(st.sampled_from(_FILES), _mutations, st.none() | st.integers(0, 400), st.booleans())
def test_read_records_raises_only_capture_error(
    content: bytes, changes: list[tuple[int, int]], cut: int | None, compress: bool
) -> None:
    import gzip

    data = _mutate(content, changes, cut)
    _read_file(gzip.compress(data) if compress else data)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_a_capture_error_at_most(content: bytes) -> None:
    _read_file(content)


def _crashers() -> list[Path]:
    return sorted(CRASHERS.glob("*")) if CRASHERS.is_dir() else []


@pytest.mark.parametrize("path", _crashers(), ids=lambda p: p.name)
def test_crasher_replays_cleanly(path: Path) -> None:
    if path.suffix == ".frame":
        linktype = int(path.name.split("-", 1)[0])
        data = path.read_bytes()
        decode_frame(linktype, data, 0.0, FragmentTable(CaptureStats()))
        _events_of([Record(1, 0.0, linktype, data, len(data))])
        return
    try:
        for _record in read_records(path):
            pass
        for _event in open_events(path):
            pass
    except CaptureError:
        pass
