"""The streaming pcapng writer: files read back exactly, stay valid at every flush, ring rotates."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stunscope.capture.pcapng_writer import FLUSH_BYTES, PcapngWriter, RingWriter, ring_path
from stunscope.capture.records import read_records

ETH_IPV4 = bytes(12) + b"\x08\x00"


def _frame(number: int, size: int = 20) -> bytes:
    """An Ethernet/IPv4/UDP frame to 127.0.0.1:3478 whose payload names ``number``."""
    payload = number.to_bytes(4, "big") + bytes(size - 4)
    udp = (40000).to_bytes(2, "big") + (3478).to_bytes(2, "big")
    udp += (8 + len(payload)).to_bytes(2, "big") + b"\0\0" + payload
    ip = bytes.fromhex("4500") + (20 + len(udp)).to_bytes(2, "big") + bytes.fromhex(
        "000040004011" "0000" "7f000001" "7f000001"
    )
    return ETH_IPV4 + ip + udp


def test_frames_read_back_with_exact_timestamps_and_lengths(tmp_path: Path) -> None:
    path = tmp_path / "out.pcapng"
    stamps = [1_795_000_000_123_456_789 + i * 1_001 for i in range(5)]
    with PcapngWriter(path, 1, if_name="lo") as writer:
        for i, ns in enumerate(stamps):
            writer.write(ns, _frame(i, size=20 + i), orig_len=len(_frame(i, size=20 + i)) + i)
    records = list(read_records(path))
    assert [r.frame for r in records] == [1, 2, 3, 4, 5]
    assert [r.ts for r in records] == [ns / 1_000_000_000 for ns in stamps]
    assert [r.data for r in records] == [_frame(i, size=20 + i) for i in range(5)]
    assert [r.orig_len - len(r.data) for r in records] == [0, 1, 2, 3, 4]
    assert {r.linktype for r in records} == {1}


def test_microsecond_resolution(tmp_path: Path) -> None:
    path = tmp_path / "us.pcapng"
    with PcapngWriter(path, 1, ts_exp=6) as writer:
        writer.write(1_795_000_000_654_321, _frame(1))
    (record,) = read_records(path)
    assert record.ts == 1_795_000_000_654_321 / 1_000_000


def test_file_is_valid_after_each_flush_without_close(tmp_path: Path) -> None:
    """What a hard kill leaves: the bytes on disk at the last flush form a complete file."""
    path = tmp_path / "open.pcapng"
    writer = PcapngWriter(path, 1)
    assert list(read_records(path)) == []  # the header blocks are written at once
    writer.write(1, _frame(1))
    writer.flush()
    writer.write(2, _frame(2))  # pending, not yet on disk
    assert [r.data for r in read_records(path)] == [_frame(1)]
    writer.close()
    assert len(list(read_records(path))) == 2


def test_big_bursts_flush_on_their_own(tmp_path: Path) -> None:
    path = tmp_path / "burst.pcapng"
    writer = PcapngWriter(path, 1)
    count = FLUSH_BYTES // len(_frame(0)) + 10
    for i in range(count):
        writer.write(i, _frame(i))
    on_disk = list(read_records(path))
    assert 0 < len(on_disk) < count
    writer.close()
    assert len(list(read_records(path))) == count


@pytest.mark.skipif(shutil.which("capinfos") is None, reason="capinfos (wireshark) not installed")
def test_wireshark_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ws.pcapng"
    with PcapngWriter(path, 1, if_name="lo") as writer:
        for i in range(3):
            writer.write(1_795_000_000_000_000_000 + i, _frame(i))
    out = subprocess.run(["capinfos", "-c", "-T", "-r", str(path)], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().endswith("\t3")


def test_ring_keeps_the_newest_files(tmp_path: Path) -> None:
    base = tmp_path / "ring.pcapng"
    with RingWriter(base, 1, files=3, size_bytes=1000) as ring:
        for i in range(100):
            ring.write(i, _frame(i))
    assert ring_path(base, 1).name == "ring_00001.pcapng"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [p.name for p in ring.paths] and len(names) == 3
    numbers = [int.from_bytes(r.data[42:46], "big") for p in ring.paths for r in read_records(p)]
    assert numbers == list(range(numbers[0], 100))  # consecutive, ending with the last frame
    assert all(p.stat().st_size < 1000 + 200 for p in ring.paths)
