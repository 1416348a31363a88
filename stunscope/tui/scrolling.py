"""Resizing a line-API widget's virtual area without a layout pass.

Textual's ``virtual_size`` is a reactive with ``layout=True``: every change re-lays-out and
re-renders the whole screen. The timeline grows ten times a second while a capture loads and the
hex view changes size on every selection; their on-screen size never depends on it, so they
update the scrollbars only (the widgets keep their vertical scrollbar always on, CSS
``overflow-y: scroll``, so that no scrollbar has to appear, which would need a layout).
"""

from __future__ import annotations

from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.widget import Widget


def set_virtual_size(widget: ScrollView, size: Size) -> None:
    """Give ``widget`` a new scrollable size, refreshing scrollbars and content only."""
    if size == widget.virtual_size:
        return
    widget.set_reactive(Widget.virtual_size, size)
    widget._scroll_update(size)  # noqa: SLF001 - what Textual itself does without layout
    widget.refresh()
