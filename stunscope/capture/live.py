"""Live capture with Scapy: frames from a Linux packet socket, through a bounded queue, as Records.

scapy is imported only when a capture starts or interfaces are listed (here and in the socket
and filter modules), so importing this module costs nothing.

Pipeline: a ``PF_PACKET`` socket (:mod:`stunscope.capture.packet_socket`) with the BPF filter
attached in the kernel (:mod:`stunscope.capture.bpf`) -> scapy's ``AsyncSniffer(store=False)`` thread -> ``prn`` numbers each frame, writes it to the
pcapng file (``-w``) and appends it to a bounded queue -> ``LiveCapture.records()`` yields
``Record``s for ``capture.stream.iter_events``.

Lossless where it matters: frames are numbered and written in the capture thread, so the file
holds every frame the kernel delivered even when the analysis falls behind; a frame that finds the
queue full is counted in ``dropped_queue`` (its number is skipped, so live frame numbers equal
the file's). Frames the kernel could not deliver (socket buffer full) are counted in
``dropped_kernel`` from ``PACKET_STATISTICS``. Nothing is dropped silently.

Speed: the socket hands the sniffer a batch of frames per wake-up (everything readable, up to
a batch limit) instead of one dissected scapy ``Packet`` per frame; frames are never dissected here
(``capture.layers`` does that). See ``bench/live_capture.py`` for the measured rate.

``-i any`` (every interface at once, as tcpdump and dumpcap on Linux): see ``FrameSocket``; the
frames are recorded as Linux cooked capture v2 (``LINKTYPE_LINUX_SLL2``), which keeps the
interface index and the direction of each packet.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import NamedTuple

from stunscope.capture.bpf import DEFAULT_FILTER
from stunscope.capture.packet_socket import ANY, SOCKET_BUFFER, Batch, FrameSocket
from stunscope.capture.pcapng_writer import PcapngWriter, RingWriter
from stunscope.capture.records import Record
from stunscope.errors import InputError, UsageError

__all__ = ["ANY", "DEFAULT_FILTER", "Interface", "LiveCapture", "LiveStats", "list_interfaces"]

_DRAIN_FRAMES = SOCKET_BUFFER // 256
"""At a stop, the most frames read from what the socket buffer still holds: more than it can
hold (a frame takes at least ~700 bytes of buffer), so it empties even with traffic still coming."""

_DRAIN_S = 10.0
"""At a stop, the longest the socket buffer is drained (a backstop: reading it takes well under
a second, unless the decoding thread keeps the GIL)."""

class Interface(NamedTuple):
    """A capturable interface: ``name``, its IP ``addresses``, whether it is ``up``; a
    pseudo-interface (``any``) has a ``description`` instead of addresses."""

    name: str
    addresses: tuple[str, ...]
    up: bool
    description: str = ""

    def __str__(self) -> str:
        state = "up" if self.up else "down"
        detail = self.description or " ".join(self.addresses)
        return f"{self.name:<12} {state:<4} {detail}".rstrip()


class LiveStats(NamedTuple):
    """Counters of a capture: frames ``captured`` (numbered and written), frames lost because the
    analysis queue was full (``dropped_queue``) or the kernel buffer was (``dropped_kernel``)."""

    captured: int
    dropped_queue: int
    dropped_kernel: int

    @property
    def dropped(self) -> int:
        """All frames lost to the analysis."""
        return self.dropped_queue + self.dropped_kernel

    def __str__(self) -> str:
        return (
            f"{self.captured} packets captured, {self.dropped} dropped "
            f"({self.dropped_queue} queue full, {self.dropped_kernel} by the kernel)"
        )


def list_interfaces() -> list[Interface]:
    """The interfaces scapy can capture on, in the kernel's index order, then ``any`` (as
    ``tcpdump -D`` lists it)."""
    import scapy.arch  # noqa: F401 (loads the platform's interface provider into conf.ifaces)
    from scapy.config import conf

    found = []
    for iface in sorted(conf.ifaces.values(), key=lambda i: i.index):
        addresses = tuple(a for family in (4, 6) for a in iface.ips.get(family, ()))
        flags = str(getattr(iface, "flags", "")).split("+")
        found.append(Interface(iface.name, addresses, "UP" in flags))
    found.append(Interface(ANY, (), True, "(pseudo-interface: all interfaces, Linux cooked)"))
    return found


class LiveCapture:
    """Capture frames on ``iface`` (BPF ``bpf``; None for no filter) into a bounded queue;
    ``iface`` ``any`` captures on every interface, as SLL2 frames (see ``FrameSocket``).

    ``queue_size`` bounds the frames waiting for the analysis and ``queue_bytes`` their bytes
    (loopback TCP segments reach 64 kB); ``write`` is a pcapng path, rotated
    as a ring of ``ring`` files of ``ring_size_mb`` megabytes (10**6 bytes) when ``ring`` is set.
    ``count`` and ``duration_s`` stop the capture after that many frames or seconds.

    Raises ``UsageError`` (exit 2) for an unknown interface (the message lists the real ones) or a
    bad filter, ``InputError`` (exit 3) without the permission to capture or to write the file.
    The capture starts in the constructor; use it as a context manager or call ``stop()``.
    """

    def __init__(
        self,
        iface: str,
        bpf: str | None = DEFAULT_FILTER,
        *,
        queue_size: int = 100_000,
        queue_bytes: int = 256 * 1024 * 1024,
        write: str | None = None,
        ring: int | None = None,
        ring_size_mb: float | None = None,
        count: int | None = None,
        duration_s: float | None = None,
    ) -> None:
        names = [i.name for i in list_interfaces()]
        if iface not in names:
            raise UsageError(f"no interface {iface!r}; interfaces: {', '.join(names)}")
        self.iface = iface
        self._socket = FrameSocket(iface, bpf)
        self.linktype = self._socket.linktype
        self._write_target = write
        try:
            self._writer = self._open_writer(write, ring, ring_size_mb)
        except BaseException:
            self._socket.close()
            raise
        self._queue: deque[Record] = deque()
        self._queue_size = queue_size
        self._queue_bytes = queue_bytes
        self._bytes_in = 0
        self._bytes_out = 0
        self._ready = threading.Event()
        self._started = threading.Event()
        self._finished = threading.Event()
        self._stop_requested = threading.Event()
        self._finish_lock = threading.Lock()
        self._count = count or 0
        self._frames = 0
        self._dropped_queue = 0
        self._write_error: OSError | None = None
        self._start(duration_s)

    def _open_writer(
        self, write: str | None, ring: int | None, ring_size_mb: float | None
    ) -> PcapngWriter | RingWriter | None:
        if write is None:
            return None
        try:
            if ring:
                size = int((ring_size_mb or 100) * 1_000_000)
                return RingWriter(
                    write, self.linktype, files=ring, size_bytes=size, if_name=self.iface
                )
            return PcapngWriter(write, self.linktype, if_name=self.iface)
        except OSError as exc:
            raise InputError(f"cannot write {write}: {exc.strerror or exc}") from None

    def _call_writer(self, method: str) -> None:
        """``flush_if_due`` or ``close`` the -w file, if there is one that still works."""
        writer = self._writer
        if writer is not None:
            try:
                getattr(writer, method)()
            except OSError as exc:
                self._write_failed(writer, exc)

    def _write_failed(self, writer: PcapngWriter | RingWriter, exc: OSError) -> None:
        """The -w file cannot take more (disk full, size limit): stop, report it as the error.
        The writer has cut the file back to its last complete flush."""
        if self._write_error is None:
            self._write_error = exc
        self._writer = None
        try:
            writer.close()
        except OSError:
            pass  # the same error again; the file is closed regardless
        self.request_stop()

    def _start(self, duration_s: float | None) -> None:
        from scapy.sendrecv import AsyncSniffer

        self._sniffer = AsyncSniffer(
            opened_socket=self._socket,
            store=False,
            prn=self._on_batch,
            stop_filter=self._reached_count,
            started_callback=self._started.set,
        )
        self._deadline = None if duration_s is None else time.monotonic() + duration_s
        self._sniffer.start()
        self._ticker = threading.Thread(target=self._tick, name="stunscope-flush", daemon=True)
        self._ticker.start()

    def _on_batch(self, batch: Batch) -> None:
        """In the sniffer thread: number, write and enqueue the frames of one wake-up."""
        if self._count:
            del batch[max(0, self._count - self._frames) :]
        writer, queue, linktype = self._writer, self._queue, self.linktype
        room = self._queue_size - len(queue)
        room_bytes = self._queue_bytes - (self._bytes_in - self._bytes_out)
        frame = self._frames
        queued_bytes = 0
        for ts_ns, data, orig_len in batch:
            frame += 1
            if writer is not None:
                try:
                    writer.write(ts_ns, data, orig_len)
                except OSError as exc:
                    self._write_failed(writer, exc)
                    writer = None
            if room > 0 and queued_bytes + len(data) <= room_bytes:
                # ts computed as the pcapng reader does, so the file reads back equal
                queue.append(Record(frame, ts_ns / 1_000_000_000, linktype, data, orig_len))
                room -= 1
                queued_bytes += len(data)
            else:
                self._dropped_queue += 1
        self._bytes_in += queued_bytes  # written by this thread only; records() has _bytes_out
        self._frames = frame
        self._ready.set()

    def _reached_count(self, _batch: Batch | None) -> bool:
        return 0 < self._count <= self._frames

    def _tick(self) -> None:
        """Until the capture ends: flush the file every 200 ms, notice that the sniffer stopped,
        stop it at the deadline."""
        while not self._finished.wait(0.1):
            self._call_writer("flush_if_due")
            self._socket.read_kernel_drops()
            if self._stop_requested.is_set() or (
                self._deadline is not None and time.monotonic() >= self._deadline
            ):
                self.stop()
            elif not self._sniffer.thread.is_alive():
                self._finish()

    def _finish(self) -> None:
        """Once the sniffer thread is over: take in what the kernel still holds for the socket
        (frames captured before the stop, not yet read), close the socket and the file, wake
        the reader."""
        with self._finish_lock:
            if self._finished.is_set():
                return
            deadline = time.monotonic() + _DRAIN_S
            drained = 0
            while (drained < _DRAIN_FRAMES and not self._reached_count(None)
                   and time.monotonic() <= deadline):
                batch = self._socket.recv(wait=False)
                if not batch:
                    break
                self._on_batch(batch)
                drained += len(batch)
            self._socket.close()
            self._call_writer("close")
            self._finished.set()
            self._ready.set()

    @property
    def running(self) -> bool:
        """True until the capture stopped (``stop()``, ``count`` or ``duration_s`` reached)."""
        return not self._finished.is_set()

    def records(self, on_idle: Callable[[], None] | None = None) -> Iterator[Record]:
        """The captured frames as Records, until the capture stops and the queue is empty.

        ``on_idle`` is called (in the reader's thread) each time the queue runs empty and then
        every 0.5 s while it stays empty: the moment to flush output or refresh a display.
        """
        queue, ready = self._queue, self._ready
        while True:
            try:
                record = queue.popleft()
            except IndexError:
                pass
            else:
                self._bytes_out += len(record.data)
                yield record
                continue
            if self._finished.is_set():
                if not queue:
                    return
                continue
            if on_idle is not None:
                on_idle()
            ready.clear()
            if not queue:
                ready.wait(0.5)

    def stats(self) -> LiveStats:
        """Counters so far (``dropped_kernel`` is refreshed by this call)."""
        kernel = self._socket.read_kernel_drops()
        return LiveStats(self._frames, self._dropped_queue, kernel)

    @property
    def error(self) -> InputError | None:
        """Why the capture ended on its own, if it did: the interface went down or away, or the
        -w file could not take more."""
        if self._write_error is not None:
            reason = self._write_error.strerror or self._write_error
            return InputError(f"cannot write {self._write_target}: {reason}")
        error = self._socket.error
        if error is None:
            return None
        return InputError(f"capture on {self.iface} stopped: {error.strerror or error}")

    def request_stop(self) -> None:
        """Ask the capture to stop within 100 ms (safe in a signal handler, unlike ``stop``)."""
        self._stop_requested.set()

    def stop(self) -> None:
        """Stop capturing; the file is flushed and closed. Queued records can still be read."""
        thread = self._sniffer.thread
        while thread.is_alive() and not self._started.wait(0.05):
            pass  # the sniffer can only be stopped once its loop is set up
        if self._sniffer.running:
            try:
                self._sniffer.stop(join=False)
            except Exception:  # it finished on its own in between (count or duration)
                pass
        thread.join()
        self._finish()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
