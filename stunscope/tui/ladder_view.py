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


class LadderView(ScrollView, can_focus=True):
    """Sequence diagram of the timeline's current view."""

    COMPONENT_CLASSES = {
        "ladder--header", "ladder--lifeline", "ladder--cursor", "ladder--success",
        "ladder--error", "ladder--timeout", "ladder--pending", "ladder--none",
        "ladder--indication", "ladder--retransmission",
    }

    DEFAULT_CSS = """
    LadderView { height: 1fr; }
    LadderView > .ladder--header { text-style: bold; background: $panel; }
    LadderView > .ladder--lifeline { color: $foreground-muted; }
    LadderView > .ladder--cursor { background: $accent 30%; }
    LadderView:focus > .ladder--cursor { background: $accent 60%; }
    LadderView > .ladder--success { color: $text-success; }
    LadderView > .ladder--error { color: $text-error; }
    LadderView > .ladder--timeout { color: $text-warning; }
    LadderView > .ladder--pending { color: $foreground; }
    LadderView > .ladder--none { color: $foreground; }
    LadderView > .ladder--indication { color: $text-secondary; }
    LadderView > .ladder--retransmission { color: $foreground-muted; text-style: italic; }
    """

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
        if ladder is None:
            return Strip.blank(width, self.rich_style)
        scroll_x, scroll_y = self.scroll_offset
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("ladder--header")
            strip = Strip([Segment(ladder.header(), style)])
        else:
            line = scroll_y + y - 1
            if line >= ladder.height:
                return Strip.blank(width, base)
            cursor = line // 2 == self.position
            extra = self.get_component_rich_style("ladder--cursor") if cursor else None
            segments = []
            for text, key in ladder.line(line):
                style = base + self.get_component_rich_style(
                    "ladder--lifeline" if key == LIFELINE else f"ladder--{key}"
                )
                segments.append(Segment(text, style + extra if extra else style))
            strip = Strip(segments)
        # The time column stays put; the lifelines scroll sideways under it.
        strip = strip.extend_cell_length(MARGIN + scroll_x + width, base)
        fixed = strip.crop(0, MARGIN)
        return Strip.join([fixed, strip.crop(MARGIN + scroll_x, scroll_x + width)])

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.refresh()
