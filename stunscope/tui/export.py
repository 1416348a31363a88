"""Files the TUI writes: a capture of selected frames (pcapng), and where exports go.

The capture is pcapng (draft-ietf-opsawg-pcapng §4.1-§4.3) so that records of several link
types (a pcapng source with several interfaces) fit in one file: a Section Header Block, one
Interface Description Block per link type, then an Enhanced Packet Block per record, with the
default microsecond timestamps. Little-endian, as the byte-order magic says.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from stunscope.capture.records import Record
from stunscope.tui.spool import SpooledRecord

AnyRecord = Record | SpooledRecord

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D


def _block(block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def write_pcapng(path: str | Path, records: Iterable[AnyRecord]) -> int:
    """Write ``records`` to a new pcapng file at ``path``; returns how many were written."""
    interfaces: dict[int, int] = {}
    count = 0
    with open(path, "wb") as out:
        # Major 1, minor 0, section length unknown (-1).
        out.write(_block(_SHB, struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)))
        for record in records:
            interface = interfaces.get(record.linktype)
            if interface is None:
                interface = interfaces[record.linktype] = len(interfaces)
                out.write(_block(_IDB, struct.pack("<HHI", record.linktype, 0, 0)))
            micros = round(record.ts * 1_000_000)
            body = struct.pack(
                "<IIIII", interface, micros >> 32, micros & 0xFFFFFFFF, len(record.data),
                record.orig_len,
            ) + record.data
            out.write(_block(_EPB, body))
            count += 1
    return count


def pick_records(records: Iterable[Record], frames: Iterable[int]) -> Iterator[Record]:
    """The records whose frame is in ``frames``; both must be in ascending frame order."""
    wanted = iter(frames)
    frame = next(wanted, None)
    for record in records:
        if frame is None:
            return
        if record.frame == frame:
            yield record
            frame = next(wanted, None)
        while frame is not None and frame < record.frame:
            frame = next(wanted, None)


def unused_path(directory: Path, stem: str, extension: str) -> Path:
    """``directory/stem.extension``, or ``stem-2.extension`` ... if that exists already."""
    path = directory / f"{stem}.{extension}"
    number = 2
    while path.exists():
        path = directory / f"{stem}-{number}.{extension}"
        number += 1
    return path
