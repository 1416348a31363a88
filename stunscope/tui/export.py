"""Files the TUI writes: a capture of selected frames (pcapng), and where exports go.

The capture is pcapng (draft-ietf-opsawg-pcapng §4.1-§4.3) so that records of several link
types (a pcapng source with several interfaces) fit in one file: a Section Header Block, one
Interface Description Block per link type, then an Enhanced Packet Block per record, with the
default microsecond timestamps. Little-endian, as the byte-order magic says.

Which frames (:func:`export_records`): the frames of the exported rows, and for a row carried
over TCP every frame of its TCP connection, both directions, from the SYN (RFC 9293 §3.5) to
the last FIN/RST segment and whatever follows (§3.6). Not just the frames between the first
and last exported row plus the handshake and the FIN: a message's first bytes may travel in
segments before the one that completes it (where its row is), and any gap in the sequence space,
e.g. between the handshake and the first exported segment or before the FIN, is a "previous
segment not captured" for tshark, which then cannot reassemble RFC 6062 TURN-TCP or RFC 4571
ICE-TCP framing. Only a prefix from the SYN is gap-free, and the FIN/RST come last, so the
honest unit is the whole connection (larger exports of long data connections are the price).
A connection is a 4-tuple from its first segment up to a SYN that starts over (port reuse: a
SYN without ACK, after the connection has carried more than SYNs, with another initial
sequence number); in a capture that starts mid-connection, the segments before any SYN are one.
UDP rows, and rows whose frame is not a whole TCP segment (an IP fragment), export their frames
only, as before.

Memory stays bounded (DESIGN.md principle 5): records are read again, never held. A file is read
up to three times: the exported TCP frames, to learn their 4-tuples; every frame, keeping only
the frame numbers of those 4-tuples' connections; then the frames to write. A live source reads
its spool (``spool.py``, which keeps every record) the same way, by frame number up to the last
frame the spool has flushed: by default the frame of the last published row, so an export during
a live capture holds the connections as far as the TUI has shown them.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path

from stunscope.capture.layers import TCP, TCP_SYN, Transport, decode_frame
from stunscope.capture.records import Record, read_records
from stunscope.errors import CaptureError
from stunscope.tui.index import TCP as TCP_ROW
from stunscope.tui.index import MessageIndex
from stunscope.tui.spool import SpooledRecord

AnyRecord = Record | SpooledRecord

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_TCP_ACK = 0x10  # RFC 9293 §3.1 control bits

FourTuple = tuple[bytes, int, bytes, int]
"""Both ends of a TCP connection, the lower (address, port) first: the same for both directions."""


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


def pick_records(records: Iterable[AnyRecord], frames: Iterable[int]) -> Iterator[AnyRecord]:
    """The records whose frame is in ``frames``; both must be in ascending frame order. Stops
    reading ``records`` at the last frame wanted (a damaged tail after it is never reached)."""
    wanted = iter(frames)
    frame = next(wanted, None)
    if frame is None:
        return
    for record in records:
        while frame < record.frame:
            frame = next(wanted, None)
            if frame is None:
                return
        if record.frame == frame:
            yield record
            frame = next(wanted, None)
            if frame is None:
                return


def export_records(
    index: MessageIndex, rows: Iterable[int], path: str | Path | None,
    last_frame: int | None = None,
) -> Iterator[AnyRecord] | None:
    """The records a pcapng export of ``rows`` (ascending) writes, in frame order: their frames,
    and the whole TCP connection of each TCP row (see the module doc). They are read again from
    the capture file at ``path``, else from the index's spool up to ``last_frame`` (which must
    have been flushed; by default the frame of the last published row). None when there is no
    file and the spool kept no records (a source of events)."""
    frames = array("I")
    tcp = array("I")
    for row in rows:
        frame = index.frame[row]
        if not frames or frames[-1] != frame:
            frames.append(frame)
        if index.flags[row] & TCP_ROW and (not tcp or tcp[-1] != frame):
            tcp.append(frame)
    if path is not None:
        def read(wanted: Iterable[int]) -> Iterator[AnyRecord]:
            return pick_records(read_records(path), wanted)

        def scan() -> Iterator[AnyRecord]:
            return read_records(path)
    elif index.spool.record_count:
        spool = index.spool
        end = last_frame if last_frame is not None else \
            index.frame[index.count - 1] if index.count else 0

        def read(wanted: Iterable[int]) -> Iterator[AnyRecord]:
            return (r for r in map(spool.record, wanted) if r is not None)

        def scan() -> Iterator[AnyRecord]:
            return read(range(1, end + 1))
    else:
        return None
    if not tcp:
        return read(frames)
    return read(sorted(set(frames).union(_connection_frames(read(tcp), scan()))))


def _tcp_segment(record: AnyRecord) -> tuple[FourTuple, int, int] | None:
    """(4-tuple, sequence number, flags) of a record that is a whole TCP segment, else None."""
    decoded = decode_frame(record.linktype, record.data)
    if not isinstance(decoded, Transport) or decoded.proto != TCP:
        return None
    src, dst = (decoded.src, decoded.sport), (decoded.dst, decoded.dport)
    return (src + dst if src <= dst else dst + src), decoded.seq, decoded.flags


class _Connection:
    """The frames of one TCP connection seen so far, and whether an exported row is on one."""

    __slots__ = ("frames", "wanted", "syn_only", "isn")

    def __init__(self) -> None:
        self.frames = array("I")
        self.wanted = False
        self.syn_only = True
        """Only SYNs so far: a retransmitted or simultaneous SYN (RFC 9293 §3.5) stays here."""
        self.isn: int | None = None

    def starts_over(self, seq: int, flags: int) -> bool:
        """True when a segment opens a new connection on this 4-tuple (port reuse)."""
        return flags & (TCP_SYN | _TCP_ACK) == TCP_SYN and not self.syn_only and seq != self.isn

    def add(self, frame: int, seq: int, flags: int) -> None:
        self.frames.append(frame)
        if not flags & TCP_SYN:
            self.syn_only = False
        elif not flags & _TCP_ACK:
            self.isn = seq


def _connection_frames(selected: Iterable[AnyRecord], records: Iterable[AnyRecord]) -> array[int]:
    """The frames of every TCP connection in ``records`` (all of a capture, in order) that holds
    one of the ``selected`` records. A damaged file ends the scan where its good records end."""
    chosen: set[int] = set()
    tuples: set[FourTuple] = set()
    for record in selected:
        segment = _tcp_segment(record)
        if segment is not None:
            chosen.add(record.frame)
            tuples.add(segment[0])
    kept = array("I")
    current: dict[FourTuple, _Connection] = {}
    try:
        for record in records:
            segment = _tcp_segment(record)
            if segment is None or segment[0] not in tuples:
                continue
            key, seq, flags = segment
            connection = current.get(key)
            if connection is None or connection.starts_over(seq, flags):
                if connection is not None and connection.wanted:
                    kept.extend(connection.frames)
                connection = current[key] = _Connection()
            connection.add(record.frame, seq, flags)
            connection.wanted = connection.wanted or record.frame in chosen
    except CaptureError:
        pass  # export the connections as far as the file is readable
    for connection in current.values():
        if connection.wanted:
            kept.extend(connection.frames)
    return kept


def unused_path(directory: Path, stem: str, extension: str) -> Path:
    """``directory/stem.extension``, or ``stem-2.extension`` ... if that exists already."""
    path = directory / f"{stem}.{extension}"
    number = 2
    while path.exists():
        path = directory / f"{stem}-{number}.{extension}"
        number += 1
    return path
