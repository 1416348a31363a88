"""Rich styles of a line-API widget's component classes, cached per class name.

Widgets that draw with Textual's line API (``render_line``) style every segment themselves; asking
Textual for a component class's style on each line is costly, so the styles are cached and the
cache is dropped whenever they can change: a new theme or CSS, and focus (``:focus`` rules).
"""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget


class CachedStyles(Widget):
    """Mixin for a line-API widget: ``_style(name)`` is the widget style plus component class
    ``name`` (``""`` for the widget style alone), cached until the theme, CSS or focus changes."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._styles: dict[str, Style] = {}

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.rich_style
            if name:
                style += self.get_component_rich_style(name)
            self._styles[name] = style
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self.refresh()

    def on_focus(self) -> None:
        self._styles.clear()

    def on_blur(self) -> None:
        self._styles.clear()
