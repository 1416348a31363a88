"""Streaming pcapng writer for live capture (``stunscope live -w``), with an optional ring buffer.

The file layout follows the pcapng specification (draft-ietf-opsawg-pcapng): one Section Header
Block (§4.1), one Interface Description Block (§4.2) with ``if_name`` and ``if_tsresol``, then one
Enhanced Packet Block (§4.3) per frame, little-endian.

Durability: blocks are assembled in memory and handed to the kernel whole with ``os.write``, at
least every ``FLUSH_INTERVAL_S`` (see ``flush_if_due``) and whenever ``FLUSH_BYTES`` are pending.
The file on disk therefore always ends on a block boundary: after a hard kill (SIGKILL, power
aside) it is a valid pcapng holding every frame up to the last flush; ``close()`` (Ctrl-C, SIGTERM)
writes the rest.

Ring buffer (``RingWriter``): ``NAME.pcapng`` becomes ``NAME_00001.pcapng``, ``NAME_00002.pcapng``
... each rotated once it reaches ``size_bytes``; only the newest ``files`` are kept.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

from stunscope import __version__

__all__ = ["FLUSH_BYTES", "FLUSH_INTERVAL_S", "PcapngWriter", "RingWriter", "ring_path"]

FLUSH_INTERVAL_S = 0.2
"""Pending frames reach the file at most this long after they were written (via flush_if_due)."""

FLUSH_BYTES = 64 * 1024
"""Pending bytes that trigger an immediate write (keeps syscalls few at high packet rates)."""

_SHB_TYPE = 0x0A0D0D0A
_IDB_TYPE = 0x00000001
_EPB_TYPE = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_OPT_ENDOFOPT = 0
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_TSRESOL = 9
_EPB_HEADER = struct.Struct("<IIIIIII")  # type, length, interface, ts high, ts low, caplen, origlen
_U32 = struct.Struct("<I")


def _pad4(data: bytes) -> bytes:
    """``data`` zero-padded to a multiple of 4 bytes (pcapng §3.1)."""
    return data + b"\0" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    """One option TLV (pcapng §3.5): code, length, value padded to 32 bits."""
    return struct.pack("<HH", code, len(value)) + _pad4(value)


def _block(block_type: int, body: bytes) -> bytes:
    """A whole block: type, total length, body, total length again (pcapng §3.1)."""
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + _U32.pack(total)


def _header_blocks(linktype: int, snaplen: int, if_name: str | None, ts_exp: int) -> bytes:
    """The SHB and the single IDB that open every file."""
    shb_opts = _option(_SHB_USERAPPL, f"stunscope {__version__}".encode()) + _option(
        _OPT_ENDOFOPT, b""
    )
    shb = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + shb_opts
    idb_opts = b""
    if if_name:
        idb_opts += _option(_IF_NAME, if_name.encode())
    idb_opts += _option(_IF_TSRESOL, bytes([ts_exp])) + _option(_OPT_ENDOFOPT, b"")
    idb = struct.pack("<HHI", linktype, 0, snaplen) + idb_opts
    return _block(_SHB_TYPE, shb) + _block(_IDB_TYPE, idb)


class PcapngWriter:
    """Write frames of one interface to a pcapng file as they arrive.

    ``ts_exp`` is the decimal timestamp resolution exponent (``if_tsresol``: 6 for microseconds,
    9 for nanoseconds); ``write`` takes timestamps as whole units of that resolution, so what a
    reader computes from the file is exactly what the writer was given.
    Thread-safe: the capture thread calls ``write`` while a timer thread calls ``flush_if_due``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        linktype: int,
        *,
        snaplen: int = 262144,
        if_name: str | None = None,
        ts_exp: int = 9,
    ) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._pending = bytearray(_header_blocks(linktype, snaplen, if_name, ts_exp))
        self._last_flush = time.monotonic()
        self.size = 0
        """Bytes handed to the file so far."""
        self.frames = 0
        """Frames written (flushed or pending)."""
        try:
            self._flush_locked()
        except OSError:
            os.close(self._fd)
            raise

    def write(self, units: int, data: bytes, orig_len: int | None = None) -> None:
        """Append one frame captured ``units`` (of the ``ts_exp`` resolution) after the epoch."""
        caplen = len(data)
        header = _EPB_HEADER.pack(
            _EPB_TYPE,
            32 + caplen + (-caplen % 4),
            0,
            units >> 32,
            units & 0xFFFFFFFF,
            caplen,
            caplen if orig_len is None else orig_len,
        )
        with self._lock:
            pending = self._pending
            pending += header
            pending += data
            pending += b"\0" * (-caplen % 4)
            pending += _U32.pack(32 + caplen + (-caplen % 4))
            self.frames += 1
            if len(pending) >= FLUSH_BYTES:
                self._flush_locked()

    def pending_size(self) -> int:
        """Bytes written so far plus those not yet flushed (the file's size after ``flush``)."""
        with self._lock:
            return self.size + len(self._pending)

    def flush(self) -> None:
        """Hand every pending block to the kernel."""
        with self._lock:
            self._flush_locked()

    def flush_if_due(self) -> None:
        """Flush when frames have been pending for ``FLUSH_INTERVAL_S`` or longer."""
        with self._lock:
            if self._pending and time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
                self._flush_locked()

    def close(self) -> None:
        """Flush and close the file (idempotent); the file is closed even if the flush fails."""
        with self._lock:
            if self._fd < 0:
                return
            try:
                self._flush_locked()
            finally:
                os.close(self._fd)
                self._fd = -1

    def _flush_locked(self) -> None:
        """Write the pending blocks. If that fails (disk full, file size limit), cut the file
        back to the last complete flush, so it stays valid, and raise the OSError."""
        view = memoryview(self._pending)
        done = 0
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
        except OSError:
            if done:
                try:
                    os.ftruncate(self._fd, self.size)
                except OSError:  # not a regular file (e.g. /dev/full): nothing to cut back
                    pass
            raise
        finally:
            view.release()
        self.size += done
        self._pending.clear()
        self._last_flush = time.monotonic()

    def __enter__(self) -> PcapngWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ring_path(path: str | os.PathLike[str], index: int) -> Path:
    """The ring buffer's file number ``index``: ``cap.pcapng`` -> ``cap_00001.pcapng``."""
    p = Path(path)
    suffix = p.suffix or ".pcapng"
    return p.with_name(f"{p.stem if p.suffix else p.name}_{index:05d}{suffix}")


class RingWriter:
    """A ring buffer of pcapng files: rotate at ``size_bytes``, keep the newest ``files``.

    Same interface as ``PcapngWriter``; ``paths`` lists the files still on disk, oldest first.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        linktype: int,
        *,
        files: int,
        size_bytes: int,
        snaplen: int = 262144,
        if_name: str | None = None,
        ts_exp: int = 9,
    ) -> None:
        self._base = path
        self._files = files
        self._size_bytes = size_bytes
        self._kwargs = {"snaplen": snaplen, "if_name": if_name, "ts_exp": ts_exp}
        self._linktype = linktype
        self._lock = threading.Lock()
        self._index = 0
        self.paths: list[Path] = []
        self.frames = 0
        self._current = self._open_next()

    def _open_next(self) -> PcapngWriter:
        self._index += 1
        writer = PcapngWriter(ring_path(self._base, self._index), self._linktype, **self._kwargs)
        self.paths.append(writer.path)
        while len(self.paths) > self._files:
            self.paths.pop(0).unlink(missing_ok=True)
        return writer

    def write(self, units: int, data: bytes, orig_len: int | None = None) -> None:
        """Append one frame, first rotating when the current file is full."""
        with self._lock:
            if self._current.frames and self._current.pending_size() >= self._size_bytes:
                self._current.close()
                self._current = self._open_next()
            self._current.write(units, data, orig_len)
            self.frames += 1

    def flush(self) -> None:
        """Hand the current file's pending blocks to the kernel."""
        with self._lock:
            self._current.flush()

    def flush_if_due(self) -> None:
        """Flush the current file when frames have been pending too long."""
        with self._lock:
            self._current.flush_if_due()

    def close(self) -> None:
        """Flush and close the current file (idempotent)."""
        with self._lock:
            self._current.close()

    def __enter__(self) -> RingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
