"""Modal screens: the help (keys and the filter language) and the export menu."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from stunscope.tui import filter as filter_language

KEYS = """\
Views         1 timeline · 2 ladder · 3 ICE · 4 TURN · 5 verdicts   (mouse: click a tab)
Move          ↑ ↓ j k, PgUp PgDn, Home End, mouse wheel and click
Detail        Tab to the attribute tree: the hex dump highlights the attribute;  d hides it
Filter        /  then an expression, Enter;  Esc clears the filter
Search        s  then an expression: jumps to the next match;  n / N next / previous
Go to         g  then a frame number
Follow        f  the selected transaction;  F its ICE session, TURN allocation or flow
              Enter in ICE / TURN / verdicts shows that session, allocation or evidence
Fold          r  shows or folds retransmissions (folded: +N on the first request)
Export        e  capture (pcapng) · ladder text · ladder Mermaid · screenshot SVG
Other         T light/dark · ctrl+p command palette · ? this help · q quit
"""


class HelpScreen(ModalScreen[None]):
    """Keys, then the filter language (the docstring of the filter module)."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("stunscope keys (Esc closes)", "bold"))
            yield Static(Text(KEYS))
            yield Static(Text("Filter language", "bold"))
            yield Static(Text((filter_language.__doc__ or "").strip()))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


EXPORTS = (
    ("pcapng", "Capture (pcapng): the view, or the ICE session / allocation highlighted"),
    ("text", "Ladder as text"),
    ("mermaid", "Ladder as a Mermaid sequence diagram"),
    ("svg", "Screenshot (SVG)"),
)


class ExportScreen(ModalScreen[str | None]):
    """Pick what to export; dismisses with the choice (or None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical {
        width: 70; max-width: 95%; height: auto; border: thick $accent; background: $surface;
    }
    ExportScreen OptionList { height: auto; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Export (files go to the current directory)", "bold"))
            yield OptionList(*(Option(Text(label), id=key) for key, label in EXPORTS))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
