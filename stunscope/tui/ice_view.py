"""The ICE view: sessions, then the candidate-pair grid of the highlighted one (like
webrtc-internals), the selected pair marked ``★``. Enter on a session follows it in the timeline;
Enter on a pair shows its checks.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from stunscope.analysis.results import Analysis, IceSession, Pair
from stunscope.tui.cells import cell

_STATE_STYLE = {"connected": "green", "succeeded": "green", "failed": "red",
                "checking": "yellow", "in-progress": "yellow"}


def _ms(value: float | None) -> Text:
    return cell(None if value is None else f"{value:.1f}")


class IceView(Vertical):
    """Sessions table over the pair grid of the highlighted session."""

    DEFAULT_CSS = """
    IceView #ice-sessions { height: auto; max-height: 45%; }
    IceView #ice-pairs { height: 1fr; }
    IceView .caption { background: $panel; text-style: bold; padding: 0 1; }
    """

    class FollowSession(Message):
        """Show ICE session ``number`` (1-based) in the timeline."""

        def __init__(self, number: int) -> None:
            super().__init__()
            self.number = number

    class ShowFrames(Message):
        """Show these frames in the timeline, under ``title``."""

        def __init__(self, frames: tuple[int, ...], title: str) -> None:
            super().__init__()
            self.frames = frames
            self.title = title

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sessions: tuple[IceSession, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static("ICE sessions: waiting for the analysis", classes="caption",
                     id="ice-caption")
        sessions = DataTable(id="ice-sessions", cursor_type="row", zebra_stripes=True)
        sessions.add_columns("#", "local ufrag", "remote ufrag", "role", "state", "pairs",
                             "selected pair", "consent", "conflicts")
        yield sessions
        yield Static("candidate pairs (★ selected; Enter: show its checks)", classes="caption",
                     id="pairs-caption")
        pairs = DataTable(id="ice-pairs", cursor_type="row", zebra_stripes=True)
        pairs.add_columns(" ", "local", "type", "remote", "type", "state", "nom", "checks",
                          "retx", "ok", "rtt ms", "failure", "priority")
        yield pairs

    @property
    def current(self) -> int | None:
        """0-based number of the highlighted session."""
        table = self.query_one("#ice-sessions", DataTable)
        return table.cursor_row if self.sessions and table.cursor_row < len(self.sessions) \
            else None

    def update_analysis(self, analysis: Analysis) -> None:
        """Refill the tables from a new analysis snapshot, keeping the highlighted session."""
        table = self.query_one("#ice-sessions", DataTable)
        keep = table.cursor_row
        self.sessions = analysis.ice
        caption = f"ICE sessions ({len(self.sessions)}; Enter: follow in the timeline)" \
            if self.sessions else "no ICE session in this capture (no Binding with USERNAME)"
        self.query_one("#ice-caption", Static).update(Text(caption))
        table.clear()
        for number, session in enumerate(analysis.ice, 1):
            role = None if session.controlling is None else (
                "controlling" if session.controlling else "controlled")
            selected = session.selected_pair
            table.add_row(
                cell(number), cell(session.local_ufrag), cell(session.remote_ufrag),
                cell(role), cell(session.state, _STATE_STYLE.get(session.state, "")),
                cell(len(session.pairs)),
                cell(f"{selected.local} ↔ {selected.remote}" if selected else None),
                cell(session.consent), cell(session.role_conflicts),
            )
        if self.sessions:
            table.move_cursor(row=min(keep, len(self.sessions) - 1))
        self._show_pairs()

    def _show_pairs(self) -> None:
        table = self.query_one("#ice-pairs", DataTable)
        table.clear()
        current = self.current
        if current is None:
            return
        session = self.sessions[current]
        for pair in session.pairs:
            chosen = session.selected_pair is not None and (
                (pair.local, pair.remote) == (session.selected_pair.local,
                                              session.selected_pair.remote))
            priority = pair.priority.value if pair.priority else None
            table.add_row(
                cell("★" if chosen else "", "bold yellow"), cell(pair.local),
                cell(pair.local_type), cell(pair.remote), cell(pair.remote_type),
                cell(pair.state, _STATE_STYLE.get(pair.state, "")),
                cell("yes" if pair.nominated else ""), cell(pair.checks),
                cell(pair.retransmissions), cell(pair.successes), _ms(pair.rtt_ms),
                cell(pair.failure), cell(priority),
            )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "ice-sessions":
            self._show_pairs()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        current = self.current
        if current is None:
            return
        if event.data_table.id == "ice-sessions":
            self.post_message(self.FollowSession(current + 1))
            return
        pairs = self.sessions[current].pairs
        if event.cursor_row < len(pairs):
            pair: Pair = pairs[event.cursor_row]
            self.post_message(self.ShowFrames(pair.frames, f"pair {pair.local} ↔ {pair.remote}"))
