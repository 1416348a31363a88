"""Modal screens: the help (keys and the filter language) and the export menu."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from stunscope.tui.filter import FIELD_HELP

KEYS = """\
1-5     views: timeline, ladder, ICE, TURN, verdicts (or click a tab)
↑↓ j k  move; PgUp PgDn Home End; ← → scroll sideways; mouse
Tab     to the attribute tree: the hex dump highlights the attribute
d       hide or show the detail pane
/       filter with an expression (below); Esc clears the filter
s n N   search the next row matching an expression; next; previous
g       go to a frame number
f F     follow the transaction; its ICE session, allocation or flow
Enter   in ICE / TURN / verdicts: that session, allocation, evidence
r       fold or show retransmissions (folded: +N on the request)
Enter   on a request with +N: unfold (fold) its retransmissions
e       export: pcapng, ladder text, ladder Mermaid, SVG screenshot
T       light or dark theme
ctrl+p  command palette
? q     this help; quit
"""

FILTER = """\
field op value: = != ~ (contains) < <= > >=; and (or nothing), or,
not, ( ); a bare word is free text. Examples:
  method=binding class=error      addr=10.0.0.1 or port=3478
  verdict=ice-no-response         not kind=channeldata      401
"""


class HelpScreen(ModalScreen[None]):
    """Keys, then the filter language and its fields."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 76; max-width: 100%; height: 90%; border: thick $accent; background: $surface;
        padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("stunscope keys (Esc closes)", "bold"))
            yield Static(Text(KEYS))
            yield Static(Text("Filter language", "bold"))
            yield Static(Text(FILTER))
            fields = "\n".join(f"{name:<8}{what}" for name, what in FIELD_HELP.items())
            yield Static(Text(fields))

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
