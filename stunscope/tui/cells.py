"""Table cells for the analysis views: plain ``Text`` (DataTable would read a ``str`` as markup)."""

from __future__ import annotations

from rich.text import Text

from stunscope.wire.text import safe_text


def cell(value: object, style: str = "") -> Text:
    """``value`` as an escaped, markup-free cell; ``None`` shows as ``-``."""
    return Text("-" if value is None else safe_text(str(value)), style)
