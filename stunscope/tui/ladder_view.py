"""The ladder widget: a :class:`~stunscope.tui.ladder.Ladder` drawn with the line API.

The header with the endpoint names stays fixed; the rest scrolls both ways. The message under the
timeline's cursor is marked, and moving here moves the timeline's cursor (they share the view).
"""

from __future__ import annotations

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from stunscope.tui.ladder import LIFELINE, MARGIN, Ladder
from stunscope.tui.outcome_colours import outcome_classes, outcome_css
from stunscope.tui.scrolling import set_virtual_size
from stunscope.tui.styles import CachedStyles


class LadderView(CachedStyles, ScrollView, can_focus=True):
    """Sequence diagram of the timeline's current view."""

    COMPONENT_CLASSES = {
        "ladder--header", "ladder--lifeline", "ladder--cursor",
    } | outcome_classes("ladder", none="none")

    DEFAULT_CSS = """
    LadderView { height: 1fr; overflow-y: scroll; }
    LadderView > .ladder--header { text-style: bold; background: $panel; }
    LadderView > .ladder--lifeline { color: $foreground-muted; }
    LadderView > .ladder--cursor { background: $accent 30%; }
    LadderView:focus > .ladder--cursor { background: $accent 60%; }
""" + outcome_css("LadderView", "ladder", none="none")

    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "move(-10)", "Page up", show=False),
        Binding("pagedown", "move(10)", "Page down", show=False),
    ]

    class Moved(Message):
        """The user moved to the message at ``position`` in the view."""

        def __init__(self, position: int) -> None:
            super().__init__()
            self.position = position

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.ladder: Ladder | None = None
        self.position = 0

    def show(self, ladder: Ladder, position: int) -> None:
        """Draw ``ladder`` with the message at ``position`` marked and in view."""
        self.ladder = ladder
        self.position = position
        self.virtual_size = Size(ladder.width, ladder.height + 1)
        self.call_after_refresh(self.mark, position)  # scroll once the new size is laid out

    def grew(self) -> None:
        """The ladder took in more rows: resize and repaint (no layout pass)."""
        if self.ladder is not None:
            set_virtual_size(self, Size(self.ladder.width, self.ladder.height + 1))
            self.refresh()

    def mark(self, position: int) -> None:
        """Mark the message at ``position`` and scroll it into view (both ways)."""
        self.position = position
        region = self.scrollable_content_region
        height = max(2, region.height - 1)
        top = round(self.scroll_y)
        y = 2 * position
        if y < top or y + 1 >= top + height:
            self.scroll_to(y=max(0, y - height // 2), animate=False, immediate=True)
        if self.ladder is not None and self.ladder.rows:
            left, right = self.ladder.span(position)
            shown = round(self.scroll_x) + MARGIN, round(self.scroll_x) + region.width
            if left < shown[0] or right >= shown[1]:
                self.scroll_to(x=max(0, left - MARGIN - 2), animate=False, immediate=True)
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0 or self.ladder is None:
            return
        position = (round(self.scroll_y) + offset.y - 1) // 2
        if position < len(self.ladder.rows):
            self.focus()
            self.mark(position)
            self.post_message(self.Moved(position))

    def action_move(self, step: int) -> None:
        if self.ladder is None or not self.ladder.rows:
            return
        position = max(0, min(len(self.ladder.rows) - 1, self.position + step))
        self.mark(position)
        self.post_message(self.Moved(position))

    def render_line(self, y: int) -> Strip:
        width = max(1, self.size.width)
        ladder = self.ladder
        base = self._style("")
        if ladder is None:
            return Strip.blank(width, base)
        scroll_x, scroll_y = self.scroll_offset
        # The time column stays put; the lifelines scroll sideways under it.
        window = (MARGIN + scroll_x, scroll_x + width)
        if y == 0:
            header = ladder.header()
            text = header[:MARGIN] + header[window[0]:window[1]]
            strip = Strip([Segment(text, self._style("ladder--header"))])
        else:
            line = scroll_y + y - 1
            if line >= ladder.height:
                return Strip.blank(width, base)
            cursor = line // 2 == self.position
            segments = []
            for start, end in ((0, MARGIN), window):
                for text, key in ladder.line(line, start, end):
                    name = "ladder--lifeline" if key == LIFELINE else f"ladder--{key}"
                    style = self._style(name)
                    if cursor:
                        style += self._style("ladder--cursor")
                    segments.append(Segment(text, style))
            strip = Strip(segments)
        return strip.extend_cell_length(width, base).crop(0, width)
