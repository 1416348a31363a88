"""The loader: turns a source of capture records (or of events) into index rows and an analysis.

It runs in a worker thread of the app (DESIGN.md principle 7): the UI only reads what
:meth:`~stunscope.tui.index.MessageIndex.publish` made visible, polling :meth:`Loader.progress`
on a timer (so progress coalesces instead of flooding the UI), and is called back with each
analysis snapshot and at the end. The first publish comes after ``interval``
seconds, so the first screen shows at once, long before a big file is read.

Sources:

- a file: :func:`file_source` gives ``read_records(path)`` and the file size for progress;
- live traffic: any iterator of :class:`~stunscope.capture.records.Record` (each is also kept in
  the spool, so a session can be exported), or of events (no capture export then).

A file source is not spooled (``keep_records=False``): exports read the file again.

The analysis (:class:`stunscope.analysis.Analyzer`) is fed every event; its snapshot is taken at
the end, and every ``snapshot_s`` seconds for a live source.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import NamedTuple

from stunscope.analysis import Analyzer
from stunscope.analysis.results import Analysis
from stunscope.capture.events import Event
from stunscope.capture.records import Record, read_records
from stunscope.capture.stream import CaptureStats, iter_events
from stunscope.errors import StunscopeError
from stunscope.tui.index import MessageIndex
from stunscope.wire.integrity import Keyring
from stunscope.wire.text import safe_text

_PCAP_RECORD_OVERHEAD = 16
"""Bytes of framing per record, to estimate progress from record sizes (pcap; pcapng is close)."""


class Progress(NamedTuple):
    """What the loader reports: rows visible, frames read, an estimate of how far it got."""

    rows: int
    frames: int
    fraction: float | None
    """0..1 for a file (estimated from bytes read), None for a live source."""
    done: bool
    error: str | None
    """The one line a damaged file ends with (what was read before it is kept)."""
    analysis: Analysis | None
    """The latest analysis snapshot, when a new one was taken."""


class FileSource(NamedTuple):
    """A capture file: its records and its size in bytes."""

    records: Iterator[Record]
    size: int


def file_source(path: str) -> FileSource:
    """Records of the capture at ``path`` (read lazily) and its size for the progress estimate."""
    return FileSource(read_records(path), os.path.getsize(path))


class Loader:
    """Reads a source into ``index``; call :meth:`run` in a worker thread."""

    def __init__(
        self,
        index: MessageIndex,
        source: Iterable[Record] | Iterable[Event],
        *,
        size: int | None = None,
        live: bool = False,
        keep_records: bool = True,
        keyring: Keyring | None = None,
        sdp: Iterable[str | Path] = (),
        file: str | None = None,
        interval: float = 0.1,
        snapshot_s: float = 1.0,
    ) -> None:
        self.index = index
        self.source = source
        self.size = size
        self.live = live
        self.keep_records = keep_records
        """Copy each record to the spool (for export); a file source can be re-read instead."""
        self.interval = interval
        self.snapshot_s = snapshot_s
        self.stats = CaptureStats()
        self.analyzer = Analyzer(keyring, sdp, file=file, stats=self.stats)
        """Also holds the keyring (with the SDP's ICE passwords) the detail pane verifies with."""
        self.frames = 0
        self._bytes = 0
        self.first_shown = threading.Event()
        """Set by the UI once it has painted the first rows: until then (or for at most
        ``first_wait_s``) the loader leaves the GIL to the UI after its first publish."""
        self.first_wait_s = 1.0

    def _counted(self, records: Iterable[Record]) -> Iterator[Record]:
        """Pass records through, counting bytes for progress (and spooling them if asked)."""
        keep = self.index.spool.add_record if self.keep_records else None
        for record in records:
            if keep is not None:
                keep(record.frame, record.ts, record.linktype, record.data, record.orig_len)
            self.frames = record.frame
            self._bytes += len(record.data) + _PCAP_RECORD_OVERHEAD
            yield record

    def events(self) -> Iterator[Event]:
        """The source as events (records go through the capture decoder)."""
        items = iter(self.source)
        first = next(items, None)
        if first is None:
            return iter(())
        items = chain([first], items)
        if isinstance(first, Record):
            return iter_events(self._counted(items), stats=self.stats)  # type: ignore[arg-type]
        return items  # type: ignore[return-value]

    def _fraction(self, done: bool) -> float | None:
        if done:
            return 1.0
        if not self.size:
            return None
        return min(0.99, self._bytes / self.size)

    def progress(self, done: bool = False) -> Progress:
        """Where loading stands (read by the UI's refresh timer; cheap)."""
        index = self.index
        frames = self.frames or (index.frame[index.count - 1] if index.count else 0)
        return Progress(index.count, frames, self._fraction(done), done, None, None)

    def run(self, report: Callable[[Progress], None], cancelled: Callable[[], bool]) -> None:
        """Read everything (or until ``cancelled()``), publishing rows every ``interval`` seconds
        (every event for a live source) and calling ``report`` with each analysis snapshot."""
        add = self.index.add
        feed = self.analyzer.feed
        index = self.index
        analyzer = self.analyzer
        clock = time.monotonic
        # A file is read flat out: look at the clock every 64 events only.
        stride = 0 if self.live else 63
        now = clock()
        next_publish = now + self.interval
        next_snapshot = now + self.snapshot_s
        error: str | None = None
        try:
            for n, event in enumerate(self.events()):
                add(event)
                feed(event)
                if n & stride:
                    continue
                now = clock()
                if now < next_publish and not self.live:
                    continue
                if cancelled():
                    return
                first = index.count == 0
                index.publish()
                if first:
                    self.first_shown.wait(self.first_wait_s)
                next_publish = time.monotonic() + self.interval
                if self.live and now >= next_snapshot:
                    report(self.progress()._replace(analysis=analyzer.snapshot()))
                    next_snapshot = now + self.snapshot_s
        except StunscopeError as exc:
            error = safe_text(str(exc))
        index.finish()
        analysis = analyzer.snapshot(final=True)
        report(self.progress(done=True)._replace(error=error, analysis=analysis))
