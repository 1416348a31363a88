"""An append-only temporary file that holds the bytes the TUI may need again.

The TUI keeps a compact index row per message in memory (see ``index.py``) and never the decoded
messages themselves. To show one message's attributes and hex dump, or to export a session as a
capture file, it reads the bytes back from this spool by offset: memory stays bounded however long
the capture is, and the same path works for a file and for a live source (which cannot be re-read).

One thread appends (the loader worker); any thread may read what :meth:`Spool.flush` has made
visible. The file is unlinked on creation, so it disappears with the process.
"""

from __future__ import annotations

import os
import struct
import tempfile
from array import array
from bisect import bisect_left
from typing import NamedTuple

_RECORD_HEADER = struct.Struct("<dIII")  # ts, linktype, orig_len, caplen


class SpooledRecord(NamedTuple):
    """A capture record read back from the spool (the fields a capture writer needs)."""

    frame: int
    ts: float
    linktype: int
    data: bytes
    orig_len: int


class Spool:
    """Append bytes, get an offset; read them back later with ``os.pread`` (no shared seek)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="stunscope-spool-")
        self._fd = self._file.fileno()
        self._size = 0
        self._record_frames = array("I")
        self._record_offsets = array("Q")

    def append(self, data: bytes) -> int:
        """Write ``data`` at the end of the spool and return its offset."""
        offset = self._size
        self._file.write(data)
        self._size += len(data)
        return offset

    def read(self, offset: int, length: int) -> bytes:
        """The ``length`` bytes at ``offset`` (they must have been flushed)."""
        return os.pread(self._fd, length, offset)

    def flush(self) -> None:
        """Make everything appended so far readable through :meth:`read`."""
        self._file.flush()

    def add_record(self, frame: int, ts: float, linktype: int, data: bytes, orig_len: int) -> None:
        """Keep one capture record (frames must arrive in increasing order)."""
        offset = self.append(_RECORD_HEADER.pack(ts, linktype, orig_len, len(data)) + data)
        self._record_frames.append(frame)
        self._record_offsets.append(offset)

    @property
    def record_count(self) -> int:
        """How many capture records were kept."""
        return len(self._record_frames)

    def record(self, frame: int) -> SpooledRecord | None:
        """The capture record of ``frame``, or None when it was not kept."""
        pos = bisect_left(self._record_frames, frame)
        if pos == len(self._record_frames) or self._record_frames[pos] != frame:
            return None
        offset = self._record_offsets[pos]
        ts, linktype, orig_len, caplen = _RECORD_HEADER.unpack(
            self.read(offset, _RECORD_HEADER.size)
        )
        data = self.read(offset + _RECORD_HEADER.size, caplen)
        return SpooledRecord(frame, ts, linktype, data, orig_len)

    def close(self) -> None:
        """Delete the spool."""
        self._file.close()
