"""The verdicts view: every finding of the analysis, most serious first; Enter shows its evidence
frames in the timeline (the filter ``verdict=CODE``)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from stunscope.analysis.results import SEVERITIES, Analysis, Verdict
from stunscope.tui.cells import cell

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "green"}


class VerdictsView(Vertical):
    """A table of verdicts."""

    DEFAULT_CSS = """
    VerdictsView DataTable { height: 1fr; }
    VerdictsView .caption { background: $panel; text-style: bold; padding: 0 1; }
    """

    class ShowVerdict(Message):
        """Show the evidence of ``verdict`` in the timeline."""

        def __init__(self, verdict: Verdict) -> None:
            super().__init__()
            self.verdict = verdict

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.verdicts: list[Verdict] = []

    def compose(self) -> ComposeResult:
        yield Static("verdicts: waiting for the analysis", classes="caption",
                     id="verdicts-caption")
        table = DataTable(id="verdicts", cursor_type="row", zebra_stripes=True)
        table.add_columns("severity", "code", "n", "subject", "frames", "what happened")
        yield table

    def update_analysis(self, analysis: Analysis) -> None:
        """Refill from a new analysis snapshot."""
        order = {s: i for i, s in enumerate(SEVERITIES)}
        self.verdicts = sorted(analysis.verdicts, key=lambda v: order.get(v.severity, 99))
        caption = f"verdicts ({len(self.verdicts)}; Enter: show the evidence frames)" \
            if self.verdicts else "no verdict: nothing looks wrong in this capture"
        self.query_one("#verdicts-caption", Static).update(Text(caption))
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        for v in self.verdicts:
            frames = ", ".join(str(f) for f in v.frames[:4]) + (" …" if len(v.frames) > 4 else "")
            table.add_row(cell(v.severity, _SEVERITY_STYLE.get(v.severity, "")), cell(v.code),
                          cell(v.count), cell(v.subject), cell(frames), cell(v.message))
        if self.verdicts:
            table.move_cursor(row=min(keep, len(self.verdicts) - 1))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.cursor_row < len(self.verdicts):
            self.post_message(self.ShowVerdict(self.verdicts[event.cursor_row]))
