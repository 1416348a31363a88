"""The TURN view: allocations, then the highlighted one's permissions, channels and traffic per
peer, with lifetimes shown at the time of the timeline's cursor (RFC 8656 §7: allocation
lifetime; §9: 300 s permissions; §12: 600 s channels). Enter follows the allocation.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from stunscope.analysis.results import Allocation, Analysis
from stunscope.tui.cells import cell
from stunscope.wire.text import safe_text

FrameTime = Callable[[int], float | None]
"""Frame number -> its timestamp (None when unknown)."""


def at_time(start_ts: float | None, expires_ts: float | None, now: float | None,
            ended_ts: float | None = None) -> str:
    """State of something installed at ``start_ts`` that expires at ``expires_ts``, at ``now``."""
    if now is None:
        return "-"
    if start_ts is not None and now < start_ts:
        return "not yet"
    if ended_ts is not None and now >= ended_ts:
        return "deallocated"
    if expires_ts is None:
        return "live"
    left = expires_ts - now
    return f"live, {left:.0f}s left" if left > 0 else f"expired {-left:.0f}s ago"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} GiB"


class TurnView(Vertical):
    """Allocations table over the details of the highlighted allocation."""

    DEFAULT_CSS = """
    TurnView #turn-allocations { height: auto; max-height: 45%; }
    TurnView #turn-details { height: 1fr; padding: 0 1; }
    TurnView .caption { background: $panel; text-style: bold; padding: 0 1; }
    """

    class FollowAllocation(Message):
        """Show TURN allocation ``number`` (1-based) in the timeline."""

        def __init__(self, number: int) -> None:
            super().__init__()
            self.number = number

    def __init__(self, frame_time: FrameTime, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.frame_time = frame_time
        self.allocations: tuple[Allocation, ...] = ()
        self.now: float | None = None

    def compose(self) -> ComposeResult:
        yield Static("TURN allocations: waiting for the analysis", classes="caption",
                     id="turn-allocations-caption")
        table = DataTable(id="turn-allocations", cursor_type="row", zebra_stripes=True)
        table.add_columns("#", "client", "server", "relayed", "mapped", "life s", "state",
                          "perms", "chans")
        yield table
        yield Static("", classes="caption", id="turn-caption")
        with VerticalScroll(id="turn-details"):
            yield Static(id="turn-text")

    @property
    def current(self) -> int | None:
        """0-based number of the highlighted allocation."""
        table = self.query_one("#turn-allocations", DataTable)
        return table.cursor_row if self.allocations and table.cursor_row < len(
            self.allocations) else None

    def update_analysis(self, analysis: Analysis) -> None:
        """Refill from a new analysis snapshot."""
        self.allocations = analysis.allocations
        caption = f"TURN allocations ({len(self.allocations)}; Enter: follow in the timeline)" \
            if self.allocations else "no TURN allocation in this capture"
        self.query_one("#turn-allocations-caption", Static).update(Text(caption))
        self._refill()

    def set_time(self, now: float | None) -> None:
        """Show lifetimes as they stood at ``now`` (the timeline cursor's timestamp)."""
        if now != self.now:
            self.now = now
            if self.allocations:
                self._show_details()

    def _allocation_state(self, allocation: Allocation) -> str:
        ended = self.frame_time(allocation.deallocated_frame) \
            if allocation.deallocated_frame else None
        return at_time(self.frame_time(allocation.first_frame), allocation.expires_ts, self.now,
                       ended)

    def _refill(self) -> None:
        table = self.query_one("#turn-allocations", DataTable)
        keep = table.cursor_row
        table.clear()
        for number, a in enumerate(self.allocations, 1):
            table.add_row(
                cell(number), cell(a.client), cell(a.server), cell(a.relayed),
                cell(a.mapped), cell(a.lifetime_s), cell(a.state), cell(len(a.permissions)),
                cell(len(a.channels)),
            )
        if self.allocations:
            table.move_cursor(row=min(keep, len(self.allocations) - 1))
        self._show_details()

    def _show_details(self) -> None:
        current = self.current
        caption = self.query_one("#turn-caption", Static)
        text = self.query_one("#turn-text", Static)
        if current is None:
            caption.update(Text("no allocation"))
            text.update(Text(""))
            return
        a = self.allocations[current]
        caption.update(Text(f"allocation {current + 1}: {a.client} → {a.server} ({a.transport})"
                            f" · at cursor: {self._allocation_state(a)}"))
        out = Text()
        out.append(f"user {safe_text(a.username or '-')} · realm {safe_text(a.realm or '-')} · "
                   f"challenges {a.challenges} · auth failures {a.auth_failures} · "
                   f"stale nonces {a.stale_nonces} · refreshes {a.refreshes}\n")
        out.append("\n")
        out.append(f"permissions ({len(a.permissions)}): state at the end of the capture, and at "
                   "the cursor\n", "bold")
        for p in a.permissions:
            state = at_time(self.frame_time(p.installed_frame), p.expires_ts, self.now)
            out.append(f"  {p.peer_ip:<15} {p.state:<8} refreshed {p.refreshes}×  "
                       f"cursor: {state}\n")
        out.append(f"channels ({len(a.channels)})\n", "bold")
        for c in a.channels:
            state = at_time(self.frame_time(c.bound_frame), c.expires_ts, self.now)
            out.append(f"  0x{c.number:04x} → {c.peer:<21} {c.state:<8} {c.packets} pkts "
                       f"{_bytes(c.bytes)}  cursor: {state}\n")
        out.append(f"traffic per peer ({len(a.peers)})\n", "bold")
        for peer in a.peers:
            out.append(
                f"  {peer.peer:<21} → {peer.to_peer_packets} pkts {_bytes(peer.to_peer_bytes)}"
                f"  ← {peer.from_peer_packets} pkts {_bytes(peer.from_peer_bytes)}"
                f"  (ch {peer.channel_packets}, ind {peer.indication_packets})\n"
            )
        text.update(out)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_details()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.current is not None:
            self.post_message(self.FollowAllocation(self.current + 1))
