"""Which index rows a view shows: the filter's matches, with retransmissions folded or not.

A :class:`RowView` is an ``array`` of row numbers in ascending order, extended incrementally as
the loader publishes rows (so a live capture keeps filtering as it grows) and rebuilt from
scratch, in a worker, when the filter changes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator

from stunscope.tui.index import FOLDED, MessageIndex

Predicate = Callable[[int], bool]


class RowView:
    """The rows of ``index`` that match ``predicate`` (all when None), in order."""

    def __init__(
        self,
        index: MessageIndex,
        predicate: Predicate | None = None,
        *,
        fold: bool = True,
        expression: str = "",
        unfolded: frozenset[int] = frozenset(),
    ) -> None:
        self.index = index
        self.predicate = predicate
        self.fold = fold
        """Hide retransmitted requests (they are counted on their first request's row)..."""
        self.unfolded = unfolded
        """...except those of these first requests (unfolded one by one with Enter)."""
        self.expression = expression
        self.rows = array("I")
        self.scanned = 0

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position: int) -> int:
        return self.rows[position]

    def extend(self, cancelled: Callable[[], bool] | None = None, chunk: int = 65536) -> int:
        """Scan rows published since the last call; returns how many were added.

        With ``cancelled``, checks it every ``chunk`` rows and stops early when it says so.
        """
        index = self.index
        flags = index.flags
        partner = index.partner
        predicate = self.predicate
        fold = self.fold
        unfolded = self.unfolded
        rows = self.rows
        before = len(rows)
        end = index.count
        while self.scanned < end:
            stop = min(end, self.scanned + chunk)
            for row in range(self.scanned, stop):
                if fold and flags[row] & FOLDED and partner[row] not in unfolded:
                    continue
                if predicate is None or predicate(row):
                    rows.append(row)
            self.scanned = stop
            if cancelled is not None and cancelled():
                break
        return len(rows) - before

    def refolded(self, fold: bool, unfolded: frozenset[int]) -> RowView:
        """The same filter with other folding (a new view, to be scanned)."""
        return RowView(self.index, self.predicate, fold=fold, expression=self.expression,
                       unfolded=unfolded)

    def position(self, row: int) -> int:
        """Where ``row`` is in the view, or where it would be (the next shown row)."""
        return bisect_left(self.rows, row)

    def frames(self) -> Iterator[int]:
        """The distinct frames of the view, in order (what a capture export writes)."""
        frame = self.index.frame
        last = None
        for row in self.rows:
            if frame[row] != last:
                last = frame[row]
                yield last
