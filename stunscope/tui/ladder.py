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

from stunscope.tui.index import RETRANSMISSION, MessageIndex, Outcome, RowKind
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
        self.columns: list[int] = []
        self._column_of: dict[int, int] = {}
        for row in rows:
            for endpoint in (index.src[row], index.dst[row]):
                if endpoint not in self._column_of:
                    self._column_of[endpoint] = len(self.columns)
                    self.columns.append(endpoint)
        names = [str(index.endpoints[e]) for e in self.columns]
        self.names = names
        self.column_width = max([24] + [len(n) + 4 for n in names])
        self.origin = index.ts[rows[0]] if len(rows) else 0.0

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
        """Endpoint names centred over their lifelines."""
        chars = [" "] * self.width
        for column, name in enumerate(self.names):
            start = max(0, self.center(column) - len(name) // 2)
            chars[start:start + len(name)] = name
        return "".join(chars)[: self.width]

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
        if index.flags[row] & RETRANSMISSION:
            text += " (retransmission)"
        elif index.retransmissions[row]:
            text += f" +{index.retransmissions[row]} retx"
        tunnel = index.tunnel(row)
        if tunnel:
            text += f" [{tunnel}]"
        return text

    def line(self, y: int) -> list[tuple[str, str]]:
        """Line ``y`` (0-based, below the header) as ``(text, style key)`` runs."""
        row = self.rows[y // 2]
        index = self.index
        key = self.style_key(row)
        chars = [" "] * self.width
        marks = [LIFELINE] * self.width
        for column in range(len(self.columns)):
            chars[self.center(column)] = "│"
        a = self.center(self._column_of[index.src[row]])
        b = self.center(self._column_of[index.dst[row]])
        lo, hi = min(a, b), max(a, b)
        if y % 2 == 0:
            stamp = f"{index.ts[row] - self.origin:>{MARGIN - 1}.6f}"[: MARGIN - 1]
            text = self.label(row) if a != b else f"↺ {self.label(row)}"
            _put(chars, marks, 0, stamp, key)
            _put(chars, marks, lo + 2, text[: max(0, self.width - lo - 2)], key)
        elif a != b:
            dash = "╌" if key == "retransmission" else "─"
            body = dash * (hi - lo - 1)
            arrow = body[:-1] + "▶" if b > a else "◀" + body[1:]
            _put(chars, marks, lo + 1, arrow, key)
        return _runs(chars, marks)

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


def _put(chars: list[str], marks: list[str], x: int, text: str, key: str) -> None:
    end = min(len(chars), x + len(text))
    for i in range(x, end):
        chars[i] = text[i - x]
        marks[i] = key


def _runs(chars: list[str], marks: list[str]) -> list[tuple[str, str]]:
    runs: list[tuple[str, str]] = []
    start = 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or marks[i] != marks[start]:
            runs.append(("".join(chars[start:i]), marks[start]))
            start = i
    return runs


def _mermaid_text(text: str) -> str:
    """Text Mermaid will not parse as syntax (``;`` and ``#`` start statements/entities)."""
    return text.replace(";", ",").replace("#", "no.")
