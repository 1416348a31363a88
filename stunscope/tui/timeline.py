"""The timeline: one line per message, rendered virtually with Textual's line API.

Only the lines on screen are built (``render_line``), from the compact index and a small summary
cache, so a million-row view scrolls like a ten-row one. The first line is a fixed header.
Columns: frame, time since the first message, delta from the previous shown row, source ->
destination, message, summary. Rows are coloured by the outcome of their transaction;
retransmissions are folded under their first request (``+N retransmissions``) unless the view
shows them, dimmed, with a ``↻`` mark.
"""

from __future__ import annotations

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from stunscope.tui.scrolling import set_virtual_size
from stunscope.tui.styles import CachedStyles
from stunscope.tui.index import FOLDED, RELAYED_COPY, RETRANSMISSION, MessageIndex, Outcome, RowKind
from stunscope.tui.outcome_colours import outcome_classes, outcome_css
from stunscope.tui.summary import Summaries, row_label
from stunscope.tui.view import RowView
from stunscope.wire.message import MessageClass

_OUTCOME_CLASS = {
    Outcome.SUCCESS: "timeline--success",
    Outcome.ERROR: "timeline--error",
    Outcome.TIMEOUT: "timeline--timeout",
    Outcome.PENDING: "timeline--pending",
    Outcome.NONE: "timeline--plain",
}


class Timeline(CachedStyles, ScrollView, can_focus=True):
    """A virtual list of the rows of a :class:`RowView`, with a cursor."""

    COMPONENT_CLASSES = {
        "timeline--header",
        "timeline--cursor",
    } | outcome_classes("timeline", none="plain")

    DEFAULT_CSS = """
    Timeline { height: 1fr; scrollbar-size-horizontal: 0; overflow-y: scroll; }
    Timeline > .timeline--header { text-style: bold; background: $panel; }
    Timeline > .timeline--cursor { background: $accent 40%; text-style: bold; }
    Timeline:focus > .timeline--cursor { background: $accent; }
""" + outcome_css("Timeline", "timeline", none="plain")

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Unfold", show=False),
        Binding("left,h", "scroll_left", "Left", show=False),
        Binding("right,l", "scroll_right", "Right", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)
    """Position of the highlighted row in the view."""

    class Highlighted(Message):
        """The cursor moved to index row ``row`` (None when the view is empty)."""

        def __init__(self, row: int | None) -> None:
            super().__init__()
            self.row = row

    class Selected(Message):
        """Enter on index row ``row``."""

        def __init__(self, row: int) -> None:
            super().__init__()
            self.row = row

    def __init__(self, index: MessageIndex, summaries: Summaries, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.index = index
        self.summaries = summaries
        self.view = RowView(index)
        self.follow = False
        """Keep the cursor on the last row as rows arrive (live capture)."""
        self._origin: float | None = None
        self._announced: int | None = None
        self._width_cache: tuple[tuple[int, int, int], tuple[int, int, int, int, int]] | None = None

    # -- the view -------------------------------------------------------------------------------

    def set_view(self, view: RowView, keep_row: int | None = None) -> None:
        """Show ``view``; keep the cursor on ``keep_row`` (or the next shown row) if given."""
        self.view = view
        self._resize()
        position = view.position(keep_row) if keep_row is not None else 0
        self.cursor = min(position, max(0, len(view) - 1))

    def grew(self, added: int) -> None:
        """``added`` rows were appended to the view: resize, follow the tail if the cursor was
        on the last row (or there was none), repaint."""
        before = len(self.view) - added
        at_end = self.follow and (before == 0 or self.cursor >= before - 1)
        self._resize()
        if at_end:
            self.cursor = len(self.view) - 1
        elif self._announced is None and len(self.view):
            self.cursor = self.cursor  # the first rows: tell the detail pane
        self.refresh()

    def _resize(self) -> None:
        set_virtual_size(self, Size(self._line_width(), len(self.view) + 1))

    @property
    def current_row(self) -> int | None:
        """The index row under the cursor."""
        if 0 <= self.cursor < len(self.view):
            return self.view[self.cursor]
        return None

    def go_to_row(self, row: int) -> None:
        """Put the cursor on ``row`` (or the next row the view shows)."""
        if len(self.view):
            self.cursor = min(self.view.position(row), len(self.view) - 1)

    # -- cursor ---------------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.view) - 1))

    def watch_cursor(self, value: int) -> None:
        self._scroll_cursor_into_view()
        self.refresh()
        self._announced = self.current_row
        self.post_message(self.Highlighted(self._announced))

    def _scroll_cursor_into_view(self) -> None:
        height = max(1, self.scrollable_content_region.height - 1)
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        self.cursor += step

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.scrollable_content_region.height - 2)

    def action_select(self) -> None:
        if self.current_row is not None:
            self.post_message(self.Selected(self.current_row))

    def action_jump(self, where: int) -> None:
        self.cursor = len(self.view) - 1 if where < 0 else where

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        self.focus()
        self.cursor = round(self.scroll_y) + offset.y - 1

    # -- rendering ------------------------------------------------------------------------------

    def _widths(self) -> tuple[int, int, int, int, int]:
        """Widths of the frame, time, delta, address and label columns (delta 0: hidden)."""
        index = self.index
        last_frame = index.frame[index.count - 1] if index.count else 0
        key = (self.size.width, min(len(index.endpoints), 64), len(str(last_frame)))
        if self._width_cache is None or self._width_cache[0] != key:
            endpoint = max((len(str(e)) for e in index.endpoints[:64]), default=15)
            narrow = self.size.width < 120
            widths = (max(5, key[2]), 9 if narrow else 12, 0 if narrow else 11,
                      min(endpoint, 21 if narrow else 47), 16 if narrow else 26)
            self._width_cache = (key, widths)
        return self._width_cache[1]

    def _line_width(self) -> int:
        frame, time, delta, address, label = self._widths()
        return max(self.size.width, frame + time + delta + 2 * address + label + 48)

    def render_line(self, y: int) -> Strip:
        width = max(self.size.width, 1)
        scroll_x, scroll_y = self.scroll_offset
        if y == 0:
            strip = Strip([Segment(self._header(), self._style("timeline--header"))])
        else:
            position = scroll_y + y - 1
            if position >= len(self.view):
                return Strip.blank(width, self._style("timeline--plain"))
            strip = self._row_strip(position)
        return strip.crop(scroll_x, scroll_x + width)

    def _header(self) -> str:
        frame, time, delta, address, label = self._widths()
        text = f"{'Frame':>{frame}} {'Time':>{time}} "
        if delta:
            text += f"{'Delta':>{delta}} "
        text += f"{'Source':<{address}} → {'Destination':<{address}} {'Message':<{label}} Summary"
        return text.ljust(self._line_width())

    def _row_strip(self, position: int) -> Strip:
        index = self.index
        row = self.view[position]
        frame, time, delta, address, label_width = self._widths()
        if self._origin is None and index.count:
            self._origin = index.ts[0]
        ts = index.ts[row] - (self._origin or 0.0)
        decimals = 3 if time < 12 else 6
        text = f"{index.frame[row]:>{frame}} {ts:>{time}.{decimals}f} "
        if delta:
            previous = self.view[position - 1] if position else row
            text += f"{'+' + format(index.ts[row] - index.ts[previous], '.6f'):>{delta}} "
        src = str(index.endpoints[index.src[row]])
        dst = str(index.endpoints[index.dst[row]])
        flags = index.flags[row]
        retransmission = bool(flags & FOLDED)
        mark = "↻ " if flags & RETRANSMISSION else "⇄ " if flags & RELAYED_COPY else ""
        label = mark + row_label(index, row, short=not delta)
        text += f"{_fit(src, address)} → {_fit(dst, address)} {_fit_label(label, label_width)} "
        text += self.summaries(row)
        style = self._style(self._style_class(row, retransmission))
        if position == self.cursor:
            style += self._style("timeline--cursor")
        return Strip([Segment(text.ljust(self._line_width()), style)])

    def _style_class(self, row: int, retransmission: bool) -> str:
        index = self.index
        if retransmission:
            return "timeline--retransmission"
        if index.kind[row] in (RowKind.STUN, RowKind.CLASSIC) and \
                index.cls[row] == MessageClass.INDICATION:
            return "timeline--indication"
        if index.kind[row] == RowKind.CHANNELDATA:
            return "timeline--indication"
        return _OUTCOME_CLASS[Outcome(index.outcome[row])]


    def on_resize(self) -> None:
        self._resize()


def _fit_label(label: str, width: int) -> str:
    """A ``Method class`` label fitted to ``width``, cutting the method, never the class."""
    if len(label) <= width or " " not in label:
        return _fit(label, width)
    method, cls = label.rsplit(" ", 1)
    return f"{method[: max(1, width - len(cls) - 2)]}… {cls}".ljust(width)


def _fit(text: str, width: int) -> str:
    """``text`` padded or cut to ``width`` cells (cut text ends with ``…``)."""
    if len(text) <= width:
        return text.ljust(width)
    return text[: width - 1] + "…"
