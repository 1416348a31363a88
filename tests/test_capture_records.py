"""read_records: pcap/pcapng/gzip framing, timestamps, interfaces, damage reporting."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from conftest import CORPUS, corpus_files
from test_capture_support import block, epb, idb, obsolete_pb, pcap, shb, spb

from stunscope.capture.records import Record, read_records
from stunscope.errors import EXIT_BAD_INPUT, CaptureError


def _write(tmp_path: Path, data: bytes, name: str = "x.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, order: str, nano: bool) -> None:
    frac = 123456789 if nano else 123456
    path = _write(tmp_path, pcap([(1700000000, frac, b"abc"), b"defg"], order=order, nano=nano, linktype=113))
    records = list(read_records(path))
    assert [r.data for r in records] == [b"abc", b"defg"]
    assert [r.frame for r in records] == [1, 2]
    assert {r.linktype for r in records} == {113}
    assert records[0].ts == pytest.approx(1700000000.123456789 if nano else 1700000000.123456, abs=1e-7)
    assert records[1].ts == 1001.0
    assert records[0].orig_len == 3


def test_pcap_linktype_ignores_fcs_bits(tmp_path: Path) -> None:
    path = _write(tmp_path, pcap([b"x"], linktype=(1 << 28) | (1 << 26) | 1))
    assert next(read_records(path)).linktype == 1


def test_pcapng_two_interfaces_with_their_own_linktype_and_resolution(tmp_path: Path) -> None:
    data = (
        shb()
        + idb(1)  # default microseconds
        + idb(113, tsresol=9)  # nanoseconds
        + idb(101, tsresol=0x80 | 10, tsoffset=100)  # 2^-10 s, +100 s
        + block(0x0BAD, b"unknown block body")  # skipped
        + epb(0, 1_500_000, b"eth")
        + epb(1, 2_000_000_001, b"sll")
        + epb(2, 1024 * 5 + 512, b"raw")
    )
    records = list(read_records(_write(tmp_path, data, "x.pcapng")))
    assert [(r.frame, r.linktype, r.data) for r in records] == [(1, 1, b"eth"), (2, 113, b"sll"), (3, 101, b"raw")]
    assert records[0].ts == pytest.approx(1.5)
    assert records[1].ts == pytest.approx(2.000000001, abs=1e-9)
    assert records[2].ts == pytest.approx(105.5)


def test_pcapng_simple_and_obsolete_packet_blocks(tmp_path: Path) -> None:
    data = shb() + idb(1, tsresol=3) + spb(b"simple") + obsolete_pb(0, 2500, b"old")
    records = list(read_records(_write(tmp_path, data, "x.pcapng")))
    assert [r.data for r in records] == [b"simple", b"old"]
    assert records[1].ts == pytest.approx(2.5)


def test_pcapng_new_section_resets_interfaces_and_may_swap_byte_order(tmp_path: Path) -> None:
    data = shb("<") + idb(1) + epb(0, 1, b"a") + shb(">") + idb(229, order=">") + epb(0, 2, b"b", ">")
    records = list(read_records(_write(tmp_path, data, "x.pcapng")))
    assert [(r.linktype, r.data) for r in records] == [(1, b"a"), (229, b"b")]


def test_pcapng_packet_for_an_interface_of_a_previous_section_is_corrupt(tmp_path: Path) -> None:
    data = shb() + idb(1) + idb(1) + epb(1, 1, b"a") + shb() + idb(1) + epb(1, 2, b"b")
    reader = read_records(_write(tmp_path, data, "x.pcapng"))
    assert next(reader).data == b"a"
    with pytest.raises(CaptureError, match=r"interface 1"):
        next(reader)


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    path = _write(tmp_path, gzip.compress(pcap([b"a", b"b"])), "no-suffix")
    assert [r.data for r in read_records(path)] == [b"a", b"b"]
    ng = _write(tmp_path, gzip.compress(shb() + idb(1) + epb(0, 1, b"c")), "x.pcapng")
    assert [r.data for r in read_records(ng)] == [b"c"]


def test_large_file_crosses_chunk_boundaries(tmp_path: Path) -> None:
    frames = [bytes([i % 256]) * (i % 1500) for i in range(3000)]
    records = list(read_records(_write(tmp_path, pcap(frames))))
    assert [r.data for r in records] == frames
    ng = shb() + idb(1) + b"".join(epb(0, i, f) for i, f in enumerate(frames))
    assert [r.data for r in read_records(_write(tmp_path, ng, "x.pcapng"))] == frames


def test_truncated_pcap_yields_good_records_then_one_line_error(tmp_path: Path) -> None:
    whole = pcap([b"first", b"second", b"third"])
    path = _write(tmp_path, whole[:-3], "cut.pcap")
    got: list[Record] = []
    with pytest.raises(CaptureError) as info:
        for record in read_records(path):
            got.append(record)
    assert [r.data for r in got] == [b"first", b"second"]
    message = str(info.value)
    assert message == f"{path}: truncated record: 18 bytes left of a record at byte {24 + 21 + 22} (frame 3)"
    assert "\n" not in message
    assert info.value.exit_code == EXIT_BAD_INPUT


def test_truncated_gzip_stream_reports_after_good_records(tmp_path: Path) -> None:
    frames = [bytes([i]) * 200 for i in range(200)]
    packed = gzip.compress(pcap(frames))
    got = []
    with pytest.raises(CaptureError, match=r"x.pcap: truncated gzip stream after frame \d+$"):
        for record in read_records(_write(tmp_path, packed[: len(packed) // 2])):
            got.append(record.data)
    assert got == frames[: len(got)] and got


def test_garbage_after_a_gzip_member_is_reported_after_its_records(tmp_path: Path) -> None:
    got = []
    with pytest.raises(CaptureError, match="corrupt gzip data after frame 1"):
        for record in read_records(_write(tmp_path, gzip.compress(pcap([b"abc"])) + b"garbage!")):
            got.append(record.data)
    assert got == [b"abc"]


def test_several_gzip_members_are_one_stream(tmp_path: Path) -> None:
    whole = pcap([b"a", b"b", b"c"])
    path = _write(tmp_path, gzip.compress(whole[:30]) + gzip.compress(whole[30:]))
    assert [r.data for r in read_records(path)] == [b"a", b"b", b"c"]


def test_truncated_pcapng_block(tmp_path: Path) -> None:
    data = shb() + idb(1) + epb(0, 1, b"ok") + epb(0, 2, b"cut short")[:-6]
    got = []
    with pytest.raises(CaptureError, match=r"truncated block.*\(frame 2\)"):
        for record in read_records(_write(tmp_path, data, "x.pcapng")):
            got.append(record.data)
    assert got == [b"ok"]


def test_corrupt_caplen_is_reported_not_read(tmp_path: Path) -> None:
    data = pcap([b"ok"]) + b"\x00" * 8 + b"\xff\xff\xff\x7f" + b"\x00" * 4
    with pytest.raises(CaptureError, match=r"captured length 2147483647 exceeds.*\(frame 2\)"):
        list(read_records(_write(tmp_path, data)))


def test_corrupt_pcapng_trailing_length(tmp_path: Path) -> None:
    good = epb(0, 1, b"data")
    bad = good[:-4] + b"\x00\x00\x00\x00"
    with pytest.raises(CaptureError, match="trailing length"):
        list(read_records(_write(tmp_path, shb() + idb(1) + bad, "x.pcapng")))


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "the file is empty"),
        (b"PK\x03\x04rest of a zip", "zip archive"),
        (b"hello, this is a text file\n", "looks like text"),
        (b"\x01\x02\x03\x04\x05", "unknown magic 01 02 03 04 05"),
    ],
)
def test_unknown_format_says_what_it_looks_like(tmp_path: Path, content: bytes, says: str) -> None:
    with pytest.raises(CaptureError, match=f"not a pcap or pcapng file: .*{says}"):
        list(read_records(_write(tmp_path, content, "f.bin")))


def test_missing_file_is_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot open"):
        list(read_records(tmp_path / "absent.pcap"))


def _sources_frames() -> dict[str, int]:
    """file -> frames column of ../shared/corpus/SOURCES.md."""
    text = (CORPUS / "SOURCES.md").read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"^\| `([^`]+)` \|[^|]*\|[^|]*\| (\d+) \|", text, re.M)}


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_file_reads_every_frame(path: Path) -> None:
    expected = _sources_frames().get(f"{path.parent.name}/{path.name}")
    records = list(read_records(path))
    if expected is not None:
        assert len(records) == expected
    assert [r.frame for r in records] == list(range(1, len(records) + 1))
    assert all(r.ts > 0 or path.name == "packets_stun.pcap" for r in records)  # that one has ts 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (pcap([])[:20], "truncated pcap file header at byte 20 (frame 0)"),
        (shb()[:8] + b"\x00\x01\x02\x03" + shb()[12:], "corrupt section header: byte-order magic 00010203"),
        (shb() + block(5, b"x")[:4] + b"\x0e\x00\x00\x00" + b"\x00" * 8, "corrupt block: type 0x00000005 with length 14"),
        (shb() + spb(b"no interface"), "corrupt simple packet block: no interface 0"),
        (shb() + block(1, b"\x01\x00"), "corrupt interface description block: length 16"),
        (shb() + idb(1) + block(6, b"\x00" * 12), "corrupt packet block: length 24"),
    ],
)
def test_corrupt_headers_and_blocks_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(CaptureError, match=re.escape(message)):
        list(read_records(_write(tmp_path, content, "x.pcapng")))
