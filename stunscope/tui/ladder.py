"""The ladder (sequence diagram) model: columns per endpoint, two text lines per message.

Like sngrep's call flow: one column per endpoint in order of first appearance, a lifeline under
each, and for every message a label line (time, method/class, mark) above an arrow line from the
sender's column to the receiver's. Retransmissions are drawn dashed (``╌╌▶``) when shown, or
counted on their first request (``+2 retx``) when folded. The model renders any line on demand,
so the widget draws only what is on screen and the exports stream line by line; the same model
gives the plain-text and the Mermaid forms.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from stunscope.tui.index import RELAYED_COPY, RETRANSMISSION, MessageIndex, Outcome, RowKind
from stunscope.tui.summary import row_label
from stunscope.wire.message import MessageClass

MARGIN = 12
"""Width of the time column on the left."""

LIFELINE = "lifeline"
"""Style key of lifeline characters; message characters take :meth:`Ladder.style_key`."""


class Ladder:
    """A ladder over ``rows`` (index rows in time order) of ``index``."""

    def __init__(self, index: MessageIndex, rows: Sequence[int]) -> None:
        self.index = index
        self.rows = rows
        """The view's rows; the ladder follows it as it grows (see :meth:`extend`)."""
        self.columns: list[int] = []
        self.names: list[str] = []
        self.column_width = 24
        self.origin = 0.0
        self._column_of: dict[int, int] = {}
        self._scanned = 0
        self._header: str | None = None
        self.extend()

    def extend(self) -> None:
        """Take in the rows appended to ``rows`` since the last call (new endpoints get
        columns on the right, so what is drawn already does not move)."""
        index = self.index
        rows = self.rows
        if self._scanned == 0 and len(rows):
            self.origin = index.ts[rows[0]]
        column_of = self._column_of
        for position in range(self._scanned, len(rows)):
            row = rows[position]
            for endpoint in (index.src[row], index.dst[row]):
                if endpoint not in column_of:
                    column_of[endpoint] = len(self.columns)
                    self.columns.append(endpoint)
                    name = str(index.endpoints[endpoint])
                    self.names.append(name)
                    self.column_width = max(self.column_width, len(name) + 4)
                    self._header = None
        self._scanned = len(rows)

    @property
    def width(self) -> int:
        """Width of every line in cells."""
        return MARGIN + self.column_width * max(1, len(self.columns))

    @property
    def height(self) -> int:
        """Number of lines below the header."""
        return 2 * len(self.rows)

    def center(self, column: int) -> int:
        """The x of a column's lifeline."""
        return MARGIN + column * self.column_width + self.column_width // 2

    def span(self, position: int) -> tuple[int, int]:
        """Leftmost and rightmost x of the message at ``position`` (its arrow and label)."""
        row = self.rows[position]
        a = self.center(self._column_of[self.index.src[row]])
        b = self.center(self._column_of[self.index.dst[row]])
        return min(a, b), max(max(a, b), min(a, b) + 2 + len(self.label(row)))

    def header(self) -> str:
        """Endpoint names centred over their lifelines (built once)."""
        if self._header is None:
            chars = [" "] * self.width
            for column, name in enumerate(self.names):
                start = max(0, self.center(column) - len(name) // 2)
                chars[start:start + len(name)] = name
            self._header = "".join(chars)[: self.width]
        return self._header

    def style_key(self, row: int) -> str:
        """``success``, ``error``, ``timeout``, ``pending``, ``indication``, ``retransmission``."""
        index = self.index
        if index.flags[row] & RETRANSMISSION:
            return "retransmission"
        if index.kind[row] == RowKind.CHANNELDATA or (
            index.kind[row] in (RowKind.STUN, RowKind.CLASSIC)
            and index.cls[row] == MessageClass.INDICATION
        ):
            return "indication"
        return Outcome(index.outcome[row]).name.lower()

    def label(self, row: int) -> str:
        """Method/class with marks: ``Binding request +2 retx``, ``Allocate error 401``."""
        index = self.index
        text = row_label(index, row)
        if index.error[row]:
            text += f" {index.error[row]}"
        if index.flags[row] & RELAYED_COPY:
            text += " (relayed copy)"
        elif index.flags[row] & RETRANSMISSION:
            text += " (retransmission)" if index.cls[row] == MessageClass.REQUEST else " (again)"
        elif index.retransmissions[row]:
            text += f" +{index.retransmissions[row]} retx"
        tunnel = index.tunnel(row)
        if tunnel:
            text += f" [{tunnel}]"
        return text

    def line(self, y: int, start: int = 0, end: int | None = None) -> list[tuple[str, str]]:
        """Cells ``start`` to ``end`` (default: all) of line ``y`` (0-based, below the header)
        as ``(text, style key)`` runs; only those cells are built, however wide the ladder."""
        end = self.width if end is None else min(end, self.width)
        if end <= start:
            return []
        row = self.rows[y // 2]
        index = self.index
        key = self.style_key(row)
        window = _Window(start, end)
        width = self.column_width
        first = max(0, (start - MARGIN) // width - 1)
        last = min(len(self.columns), (end - MARGIN) // width + 1)
        for column in range(first, last):
            window.put(self.center(column), "│", LIFELINE)
        a = self.center(self._column_of[index.src[row]])
        b = self.center(self._column_of[index.dst[row]])
        lo, hi = min(a, b), max(a, b)
        if y % 2 == 0:
            stamp = f"{index.ts[row] - self.origin:>{MARGIN - 1}.6f}"[: MARGIN - 1]
            window.put(0, stamp, key)
            window.put(lo + 2, self.label(row) if a != b else f"↺ {self.label(row)}", key)
        elif a != b:
            dash = "╌" if key == "retransmission" else "─"
            window.put(lo + 1, "◀" if b < a else dash, key)
            window.fill(lo + 2, hi, dash, key)
            if b > a:
                window.put(hi - 1, "▶", key)
        return window.runs()

    def text_lines(self) -> Iterator[str]:
        """The whole ladder as plain text (header first), for the text export."""
        yield self.header().rstrip()
        for y in range(self.height):
            yield "".join(text for text, _ in self.line(y)).rstrip()

    def mermaid_lines(self) -> Iterator[str]:
        """The ladder as a Mermaid ``sequenceDiagram``."""
        yield "sequenceDiagram"
        for column, name in enumerate(self.names):
            yield f"    participant P{column} as {_mermaid_text(name)}"
        index = self.index
        for row in self.rows:
            a = self._column_of[index.src[row]]
            b = self._column_of[index.dst[row]]
            key = self.style_key(row)
            if index.kind[row] in (RowKind.STUN, RowKind.CLASSIC) and \
                    index.cls[row] in (MessageClass.SUCCESS, MessageClass.ERROR):
                arrow = "-->>"
            elif key == "indication":
                arrow = "-)"
            elif key in ("timeout", "retransmission"):
                arrow = "-x"
            else:
                arrow = "->>"
            at = index.ts[row] - self.origin
            yield f"    P{a}{arrow}P{b}: {_mermaid_text(self.label(row))} @{at:.3f}s"


class _Window:
    """The cells ``start`` to ``end`` of one ladder line, with a style key per cell."""

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.chars = [" "] * (end - start)
        self.marks = [LIFELINE] * (end - start)

    def put(self, x: int, text: str, key: str) -> None:
        """Write ``text`` from cell ``x`` on, clipped to the window."""
        for i in range(max(x, self.start), min(x + len(text), self.start + len(self.chars))):
            self.chars[i - self.start] = text[i - x]
            self.marks[i - self.start] = key

    def fill(self, x: int, stop: int, char: str, key: str) -> None:
        """Cells ``x`` to ``stop`` (excluded) become ``char``, clipped to the window."""
        lo = max(x, self.start) - self.start
        hi = min(stop, self.start + len(self.chars)) - self.start
        if hi > lo:
            self.chars[lo:hi] = char * (hi - lo)
            self.marks[lo:hi] = [key] * (hi - lo)

    def runs(self) -> list[tuple[str, str]]:
        """``(text, key)`` for each stretch of cells with the same key."""
        runs: list[tuple[str, str]] = []
        begin = 0
        marks = self.marks
        for i in range(1, len(marks) + 1):
            if i == len(marks) or marks[i] != marks[begin]:
                runs.append(("".join(self.chars[begin:i]), marks[begin]))
                begin = i
        return runs


def _mermaid_text(text: str) -> str:
    """Text Mermaid will not parse as syntax (``;`` and ``#`` start statements/entities)."""
    return text.replace(";", ",").replace("#", "no.")
