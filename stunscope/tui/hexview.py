"""The hex dump of the selected message, with one byte span (the selected attribute) highlighted.

A line-API widget: offset, hex bytes, then the printable ASCII column. It shows 16 bytes a line
when there is room and 8 when narrow (80-column terminals), and scrolls the highlighted span into
view when it changes.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from stunscope.tui.scrolling import set_virtual_size


class HexView(ScrollView, can_focus=True):
    """A hex dump of ``data`` with ``span`` (offset, length) highlighted."""

    COMPONENT_CLASSES = {"hexview--offset", "hexview--highlight"}

    DEFAULT_CSS = """
    HexView { height: 1fr; overflow-y: scroll; scrollbar-size-vertical: 1; }
    HexView > .hexview--offset { color: $foreground-muted; }
    HexView > .hexview--highlight { background: $accent; color: $text; text-style: bold; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.data = b""
        self.span: tuple[int, int] | None = None

    @property
    def per_line(self) -> int:
        """Bytes per line: 16 when the widget is wide enough for them, else 8."""
        return 16 if self.size.width >= 6 + 16 * 3 + 16 + 1 else 8

    def show(self, data: bytes, span: tuple[int, int] | None = None) -> None:
        """Dump ``data``, highlighting ``span``."""
        self.data = data
        self.span = None
        self._resize()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.highlight(span)

    def highlight(self, span: tuple[int, int] | None) -> None:
        """Highlight ``span`` (offset, length) and scroll it into view."""
        self.span = span
        if span is not None:
            line = span[0] // self.per_line
            height = max(1, self.scrollable_content_region.height)
            if not round(self.scroll_y) <= line < round(self.scroll_y) + height:
                self.scroll_to(y=line, animate=False, immediate=True)
        self.refresh()

    def _resize(self) -> None:
        per_line = self.per_line
        lines = (len(self.data) + per_line - 1) // per_line
        set_virtual_size(self, Size(6 + per_line * 4 + 1, lines))

    def on_resize(self) -> None:
        self._resize()

    def render_line(self, y: int) -> Strip:
        width = max(1, self.size.width)
        scroll_x, scroll_y = self.scroll_offset
        per_line = self.per_line
        start = (scroll_y + y) * per_line
        if start >= len(self.data):
            return Strip.blank(width, self.rich_style)
        chunk = self.data[start:start + per_line]
        base = self.rich_style
        muted = base + self.get_component_rich_style("hexview--offset")
        marked = base + self.get_component_rich_style("hexview--highlight")
        lo, hi = (self.span[0], self.span[0] + self.span[1]) if self.span else (0, 0)
        segments = [Segment(f"{start:04x}  ", muted)]
        for i, byte in enumerate(chunk):
            style = marked if lo <= start + i < hi else base
            segments.append(Segment(f"{byte:02x}", style))
            gap_marked = lo <= start + i + 1 < hi and i + 1 < len(chunk)
            segments.append(Segment(" ", marked if gap_marked and style is marked else base))
        segments.append(Segment("   " * (per_line - len(chunk)) + " ", base))
        for i, byte in enumerate(chunk):
            char = chr(byte) if 0x20 <= byte < 0x7F else "."
            segments.append(Segment(char, marked if lo <= start + i < hi else base))
        strip = Strip(segments).extend_cell_length(scroll_x + width, base)
        return strip.crop(scroll_x, scroll_x + width)
