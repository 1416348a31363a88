"""IP fragment reassembly with a bounded table and packet-time expiry.

IPv4 (RFC 791 §3.2, identification + offset in 8-byte units + More Fragments) and IPv6
(RFC 8200 §4.5, the Fragment header) are reassembled the same way, following the hole logic of
RFC 815 with a coverage check. Partial datagrams are keyed by source, destination, identification
(and protocol for IPv4). The clock is the packet timestamp: a partial datagram older than
``timeout_s`` is dropped (RFC 8200 §4.5 uses 60 s; RFC 791 suggests 15 s as a lower bound), and
when ``max_datagrams`` are pending, or their pieces would exceed ``max_bytes``, the oldest are
evicted. Both are counted in the stats.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from stunscope.capture.stats import CaptureStats

MAX_DATAGRAM = 65535
"""Largest reassembled payload (RFC 791 total length and RFC 8200 payload length are 16 bits)."""


class _Partial:
    """A datagram being reassembled: first fragment time, pieces by offset, total length once the
    last fragment arrived, and the upper-layer protocol once the first fragment arrived."""

    __slots__ = ("ts", "pieces", "total", "proto", "size")

    def __init__(self, ts: float) -> None:
        self.ts = ts
        self.size = 0  # bytes held in pieces
        self.pieces: dict[int, bytes] = {}
        self.total: int | None = None
        self.proto: int | None = None


class FragmentTable:
    """Pending IP fragments; :meth:`add` returns the whole datagram when its last hole fills."""

    def __init__(
        self,
        stats: CaptureStats,
        *,
        max_datagrams: int = 1024,
        max_bytes: int = 4 << 20,
        timeout_s: float = 60.0,
    ) -> None:
        self._stats = stats
        self._max = max_datagrams
        self._max_bytes = max_bytes
        self._timeout = timeout_s
        self._held = 0
        self._pending: OrderedDict[Hashable, _Partial] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self, key: Hashable, offset: int, more: bool, payload: bytes, proto: int | None, ts: float
    ) -> tuple[int, bytes] | None:
        """Store one fragment (``offset`` in bytes, ``proto`` known on the first fragment only for
        IPv6); return ``(proto, payload)`` of the reassembled datagram when complete, else None."""
        stats = self._stats
        stats.fragments += 1
        pending = self._pending
        self._expire(ts)
        part = pending.get(key)
        end = offset + len(payload)
        if end > MAX_DATAGRAM:  # RFC 791/8200: a datagram longer than 65535 bytes is discarded
            if part is not None:
                self._drop(key)
            return None
        if part is None:
            if len(pending) >= self._max:
                self._drop(next(iter(pending)))
                stats.fragment_evictions += 1
            part = pending[key] = _Partial(ts)
        while self._held + len(payload) > self._max_bytes and next(iter(pending)) is not key:
            self._drop(next(iter(pending)))
            stats.fragment_evictions += 1
        old = part.pieces.get(offset)
        part.pieces[offset] = payload
        growth = len(payload) - (len(old) if old is not None else 0)
        part.size += growth
        self._held += growth
        if offset == 0 and proto is not None:
            part.proto = proto
        if not more:
            part.total = end
        if part.total is None or part.proto is None:
            return None
        whole = _assemble(part.pieces, part.total)
        if whole is None:
            return None
        self._drop(key)
        stats.reassembled += 1
        return part.proto, whole

    def _drop(self, key: Hashable) -> None:
        self._held -= self._pending.pop(key).size

    def _expire(self, now: float) -> None:
        """Drop partial datagrams older than the timeout (insertion order is age order)."""
        pending = self._pending
        limit = now - self._timeout
        while pending:
            key = next(iter(pending))
            if pending[key].ts >= limit:
                return
            self._drop(key)
            self._stats.fragment_timeouts += 1


def _assemble(pieces: dict[int, bytes], total: int) -> bytes | None:
    """Join the pieces if they cover ``[0, total)`` without a hole (RFC 815), later data winning
    on overlaps; None while a hole remains."""
    cursor = 0
    ordered = sorted(pieces.items())
    for offset, piece in ordered:
        if offset > cursor:
            return None
        cursor = max(cursor, offset + len(piece))
    if cursor < total:
        return None
    whole = bytearray(total)
    for offset, piece in ordered:
        if offset < total:
            whole[offset : offset + len(piece)] = piece[: total - offset]
    return bytes(whole)
