"""The stunscope TUI: timeline, ladder, detail + hex, ICE, TURN and verdicts over one source.

Open a file::

    from stunscope.tui.app import open_file
    open_file("call.pcapng").run()

Open any other source, e.g. a live capture (what ``stunscope live`` does)::

    from stunscope.tui.app import StunscopeApp
    StunscopeApp(capture.records(), title="live: eth0", live=True).run()

``source`` is any iterable of :class:`~stunscope.capture.records.Record` (kept in a spool, so
sessions can be exported to pcapng) or of capture events (no capture export then); ``keyring``
and ``sdp`` go to the analysis and the detail pane's MESSAGE-INTEGRITY check. It is read in
a worker thread; with ``live=True`` rows are shown as they arrive, the cursor follows the newest
row while it is on the last one, and the analysis is refreshed every second. The iterator should
end (or return now and then) when the app exits; the worker stops at the next item.

Keys are listed in the footer and the help screen (``?``); everything is also in the command
palette (``ctrl+p``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from itertools import chain
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static, TabbedContent, TabPane, Tree
from textual.timer import Timer
from textual.worker import get_current_worker

from stunscope.analysis.results import Analysis
from stunscope.capture.events import Event
from stunscope.capture.records import Record
from stunscope.errors import StunscopeError
from stunscope.tui.context import AnalysisContext, allocation_endpoints, session_usernames
from stunscope.tui.detail import DetailTree
from stunscope.tui.export import export_records, unused_path, write_pcapng
from stunscope.tui.filter import FilterError, Predicate, compile_filter
from stunscope.tui.hexview import HexView
from stunscope.tui.ice_view import IceView
from stunscope.tui.index import FOLDED, MessageIndex
from stunscope.tui.ladder import Ladder
from stunscope.tui.ladder_view import LadderView
from stunscope.tui.loader import Loader, Progress, file_source
from stunscope.tui.screens import ExportScreen, HelpScreen
from stunscope.tui.summary import Summaries
from stunscope.tui.timeline import Timeline
from stunscope.tui.turn_view import TurnView
from stunscope.tui.verdicts_view import VerdictsView
from stunscope.tui.view import RowView
from stunscope.wire.integrity import Keyring
from stunscope.wire.text import safe_text

TABS = ("timeline", "ladder", "ice", "turn", "verdicts")

_BAR_MODES = {
    "filter": ("filter", "method=binding class=error · addr=10.0.0.1 · verdict=… · ? help"),
    "search": ("search", "find the next row matching an expression (n / N repeat)"),
    "goto": ("frame #", "jump to a frame number"),
}


class StunscopeApp(App[None]):
    """The TUI over one source of records or events."""

    CSS_PATH = "app.tcss"
    TITLE = "stunscope"

    BINDINGS = [
        Binding("1", "tab('timeline')", "Timeline", show=False),
        Binding("2", "tab('ladder')", "Ladder", show=False),
        Binding("3", "tab('ice')", "ICE", show=False),
        Binding("4", "tab('turn')", "TURN", show=False),
        Binding("5", "tab('verdicts')", "Verdicts", show=False),
        Binding("slash", "bar('filter')", "Filter"),
        Binding("s", "bar('search')", "Search"),
        Binding("n", "search(1)", "Next", show=False),
        Binding("N", "search(-1)", "Previous", show=False),
        Binding("g", "bar('goto')", "Go to", show=False),
        Binding("f", "follow_transaction", "Follow"),
        Binding("F", "follow_session", "Follow session", show=False),
        Binding("escape", "clear_filter", "Clear", show=False),
        Binding("r", "toggle_retransmissions", "Retx", show=False),
        Binding("d", "toggle_detail", "Detail", show=False),
        Binding("e", "export", "Export"),
        Binding("T", "toggle_theme", "Theme", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        source: Iterable[Record] | Iterable[Event],
        *,
        title: str = "stunscope",
        size: int | None = None,
        live: bool = False,
        export_dir: str | Path = ".",
        stem: str = "stunscope",
        path: str | Path | None = None,
        keyring: Keyring | None = None,
        sdp: Iterable[str | Path] = (),
    ) -> None:
        super().__init__()
        self.title = title
        self.live = live
        self.export_dir = Path(export_dir)
        self.stem = stem
        self.path = Path(path) if path is not None else None
        """The capture file, re-read by exports (other sources keep their records in a spool)."""
        self.index = MessageIndex()
        self.summaries = Summaries(self.index)
        self.loader = Loader(self.index, source, size=size, live=live,
                             keep_records=self.path is None, keyring=keyring, sdp=sdp,
                             file=str(self.path) if self.path is not None else None)
        self.analysis: Analysis | None = None
        self.progress: Progress = self.loader.progress()
        self.load_error: str | None = None
        self.dropped = 0
        """Frames a live capture lost before the analysis saw them, shown in the status bar."""
        self.done = False
        self.fold = True
        self.unfolded: frozenset[int] = frozenset()
        """First requests whose retransmissions are shown although the view folds them."""
        self.bar_mode = "filter"
        self.search_text = ""
        self._pending_view: RowView | None = None
        self._seen_count = -1
        self._status_text = ""
        self._searching = False
        self._analysis_shown: dict[str, Analysis] = {}
        self._detail_row: int | None = None
        self._detail_timer: Timer | None = None
        self.timeline: Timeline
        """The timeline widget (set on mount)."""
        self.status: Static
        self._poll_timer: Timer

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs", initial="timeline"):
            with TabPane("1 Timeline", id="timeline"):
                with Vertical():
                    yield Timeline(self.index, self.summaries, id="timeline-list")
                    with Horizontal(id="detail"):
                        yield DetailTree(self.index, self.loader.analyzer.keyring,
                                         id="detail-tree")
                        yield HexView(id="hex")
            with TabPane("2 Ladder", id="ladder"):
                yield LadderView(id="ladder-view")
            with TabPane("3 ICE", id="ice"):
                yield IceView(id="ice-view")
            with TabPane("4 TURN", id="turn"):
                yield TurnView(self._frame_time, id="turn-view")
            with TabPane("5 Verdicts", id="verdicts"):
                yield VerdictsView(id="verdicts-view")
        with Horizontal(id="bar"):
            yield Label("filter", id="bar-mode")
            yield Input(placeholder=_BAR_MODES["filter"][1], id="bar-input")
        yield Static(id="status")
        yield Footer()

    def on_resize(self) -> None:
        # 16 bytes a hex line when there is room for them beside the tree, else 8.
        self.query_one(HexView).styles.width = 74 if self.size.width >= 140 else 41

    def on_mount(self) -> None:
        # The loader thread is pure Python: hand the GIL to the UI thread within 1 ms (instead
        # of 5) when it wakes up for a key, so scrolling stays smooth while a big file loads.
        sys.setswitchinterval(0.001)
        self.timeline = self.query_one("#timeline-list", Timeline)
        self.status = self.query_one("#status", Static)
        self.timeline.follow = self.live
        self.timeline.focus()
        self._load()
        self._poll_timer = self.set_interval(0.1, self._poll)
        self._poll()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Export capture", "Write the view, session or allocation as pcapng",
                            lambda: self.export("pcapng"))
        yield SystemCommand("Export ladder as text", "Write the ladder as plain text",
                            lambda: self.export("text"))
        yield SystemCommand("Export ladder as Mermaid", "Write a Mermaid sequenceDiagram",
                            lambda: self.export("mermaid"))
        yield SystemCommand("Export screenshot (SVG)", "Save the screen as SVG",
                            lambda: self.export("svg"))
        yield SystemCommand("Toggle retransmissions", "Fold or show retransmitted requests",
                            self.action_toggle_retransmissions)
        yield SystemCommand("Toggle light/dark", "Switch theme", self.action_toggle_theme)
        yield SystemCommand("Keys and filter language", "Show help", self.action_help)

    # -- loading --------------------------------------------------------------------------------

    @work(thread=True, group="load", exit_on_error=True)
    def _load(self) -> None:
        worker = get_current_worker()
        self.loader.run(lambda progress: self.call_from_thread(self._loaded, progress),
                        lambda: worker.is_cancelled)

    def _loaded(self, progress: Progress) -> None:
        """Called on the UI thread with an analysis snapshot (and once at the end)."""
        self.done = progress.done
        if not self.timeline.is_attached:  # the app is closing
            return
        if progress.error:
            self.load_error = progress.error
            self.notify(progress.error, title="capture damaged", severity="error", timeout=10)
        if progress.analysis is not None:
            self.analysis = progress.analysis
            self._show_analysis(self.tab)
        self._poll()

    def _show_analysis(self, tab: str) -> None:
        """Give the latest analysis to the ICE, TURN or verdicts view if it is ``tab`` (the
        hidden ones get it when entered: a live capture refreshes it every second)."""
        views = {"ice": IceView, "turn": TurnView, "verdicts": VerdictsView}
        if tab in views and self.analysis is not None and \
                self._analysis_shown.get(tab) is not self.analysis:
            self._analysis_shown[tab] = self.analysis
            self.query_one(views[tab]).update_analysis(self.analysis)

    def _poll(self) -> None:
        """Timer: show newly published rows and the progress (this is where progress coalesces)."""
        self.progress = self.loader.progress(done=self.done)
        if self.index.count != self._seen_count:
            self._seen_count = self.index.count
            timeline = self.timeline
            added = timeline.view.extend()
            if added:
                timeline.grew(added)
                if not self.loader.first_shown.is_set():
                    self.call_after_refresh(self.loader.first_shown.set)
                ladder = self.query_one(LadderView)
                if self.tab == "ladder" and ladder.ladder is not None:
                    ladder.ladder.extend()
                    ladder.grew()
        self._status()

    def _status(self) -> None:
        progress = self.progress
        view = self.timeline.view
        parts = [f"{len(view):,}/{self.index.count:,} rows", f"{progress.frames:,} frames"]
        if view.expression:
            parts.append(f"filter: {view.expression}")
        if not self.fold:
            parts.append("retx shown")
        if self._pending_view is not None:
            parts.append("filtering…")
        if self._searching:
            parts.append("searching…")
        if self.live:
            parts.append("● live")
            if self.dropped:
                parts.append(f"{self.dropped:,} dropped")
        elif not progress.done and progress.fraction is not None:
            filled = int(progress.fraction * 10)
            parts.append(f"loading {'█' * filled}{'░' * (10 - filled)} {progress.fraction:.0%}")
        if self.load_error:
            parts.append("damaged: " + self.load_error)
        text = " · ".join(parts)
        if text != self._status_text:
            self._status_text = text
            # Fixed height and width: no layout pass for a new status.
            self.status.update(Text(text), layout=False)

    def capture_dropped(self, dropped: int, detail: str) -> None:
        """A live capture has lost ``dropped`` frames so far: the count stays in the status bar,
        and ``detail`` (the capture's counters) is notified the first time frames are lost."""
        if not self.dropped:
            self.notify(detail, title="capture dropping packets", severity="warning", timeout=10)
        self.dropped = dropped
        self._status()

    # -- views and selection --------------------------------------------------------------------

    @property
    def tab(self) -> str:
        """The id of the active view."""
        return self.query_one(TabbedContent).active

    def action_tab(self, tab: str) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active == tab:
            self._entered(tab)
        else:
            tabs.active = tab  # TabActivated follows, and calls _entered

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._entered(event.pane.id or "")

    def _entered(self, tab: str) -> None:
        if tab == "ladder":
            self._show_ladder()
            self.query_one(LadderView).focus()
        elif tab == "timeline":
            self.timeline.focus()
        elif tab in ("ice", "turn", "verdicts"):
            self._show_analysis(tab)
            tables = self.query_one(f"#{tab}-view").query("DataTable")
            if tables:
                tables.first().focus()

    def _show_ladder(self) -> None:
        timeline = self.timeline
        ladder = Ladder(self.index, timeline.view.rows)
        self.query_one(LadderView).show(ladder, timeline.cursor)

    def on_timeline_highlighted(self, message: Timeline.Highlighted) -> None:
        # Holding a key down moves the cursor faster than a tree can be rebuilt: show the
        # detail of where the cursor rests, a moment after it stops.
        self._detail_row = message.row
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(0.05, self._show_detail)

    def _show_detail(self) -> None:
        row = self._detail_row
        self._detail_timer = None
        if not self.timeline.is_attached:  # the app is closing
            return
        data = self.query_one(DetailTree).show_row(row)
        self.query_one(HexView).show(data)
        self.query_one(TurnView).set_time(self.index.ts[row] if row is not None else None)

    def on_tree_node_highlighted(self, message: Tree.NodeHighlighted) -> None:
        self.query_one(HexView).highlight(message.node.data)

    def on_ladder_view_moved(self, message: LadderView.Moved) -> None:
        self.timeline.cursor = message.position

    def _frame_time(self, frame: int) -> float | None:
        row = self.index.row_of_frame(frame)
        return self.index.ts[row] if row is not None else None

    # -- filter, search, go to ------------------------------------------------------------------

    def action_bar(self, mode: str) -> None:
        self.bar_mode = mode
        label, hint = _BAR_MODES[mode]
        self.query_one("#bar-mode", Label).update(label)
        bar = self.query_one("#bar-input", Input)
        bar.placeholder = hint
        bar.value = self.timeline.view.expression if mode == "filter" else ""
        bar.focus()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        text = message.value.strip()
        if self.bar_mode == "filter":
            self.apply_filter(text)
        elif self.bar_mode == "search":
            self.search_text = text
            self.action_search(1)
        else:
            try:
                self.go_to_frame(int(text))
            except ValueError:
                self.notify(f"not a frame number: {text!r}", severity="warning")
        self.timeline.focus()
        if self.tab not in ("timeline", "ladder"):
            self.action_tab("timeline")

    def _filter_context(self) -> AnalysisContext:
        return AnalysisContext(self.index, self.analysis)

    def apply_filter(self, text: str) -> bool:
        """Filter the timeline (and ladder) with an expression; False (and a notice) if invalid."""
        try:
            predicate = compile_filter(text, self.index, self._filter_context()) if text else None
        except FilterError as exc:
            self.notify(str(exc), title="filter", severity="error")
            return False
        self.show_view(RowView(self.index, predicate, fold=self.fold, expression=text,
                               unfolded=self.unfolded))
        return True

    def show_view(self, view: RowView) -> None:
        """Scan ``view`` in a worker, then show it keeping the cursor's row."""
        self._pending_view = view
        self._scan(view)

    @work(thread=True, exclusive=True, group="filter")
    def _scan(self, view: RowView) -> None:
        worker = get_current_worker()
        view.extend(cancelled=lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.call_from_thread(self._view_ready, view)

    def _view_ready(self, view: RowView) -> None:
        if view is not self._pending_view:
            return
        self._pending_view = None
        view.extend()
        self.timeline.set_view(view, keep_row=self.timeline.current_row)
        if self.tab == "ladder":
            self._show_ladder()
        self._status()

    def action_clear_filter(self) -> None:
        if self.focused is self.query_one("#bar-input", Input):
            self.timeline.focus()
        elif self.timeline.view.expression:
            self.apply_filter("")

    def action_toggle_retransmissions(self) -> None:
        self.fold = not self.fold
        self.unfolded = frozenset()
        self.show_view(self.timeline.view.refolded(self.fold, self.unfolded))

    def on_timeline_selected(self, message: Timeline.Selected) -> None:
        """Enter on a request with retransmissions unfolds them under it (or folds them back);
        on a retransmission, folds it back under its first request."""
        index = self.index
        row = message.row
        first = index.partner[row] if index.flags[row] & FOLDED else row
        if not self.fold or first < 0:
            return
        self.unfolded = self.unfolded ^ {first}
        self.show_view(self.timeline.view.refolded(self.fold, self.unfolded))

    def action_search(self, direction: int) -> None:
        if not self.search_text:
            self.action_bar("search")
            return
        try:
            predicate = compile_filter(self.search_text, self.index, self._filter_context())
        except FilterError as exc:
            self.notify(str(exc), title="search", severity="error")
            return
        self._searching = True
        self._find(predicate, direction, self.timeline.cursor)

    @work(thread=True, exclusive=True, group="search")
    def _find(self, predicate: Predicate, direction: int, start: int) -> None:
        worker = get_current_worker()
        view = self.timeline.view
        positions = range(start + 1, len(view)) if direction > 0 else range(start - 1, -1, -1)
        for n, position in enumerate(positions):
            if n % 4096 == 0 and worker.is_cancelled:
                return
            if predicate(view[position]):
                self.call_from_thread(self._found, position)
                return
        self.call_from_thread(self._found, None)

    def _found(self, position: int | None) -> None:
        self._searching = False
        self._analysis_shown: dict[str, Analysis] = {}
        if position is None:
            self.notify(f"no more matches for {self.search_text!r}")
        else:
            self.timeline.cursor = position

    def go_to_frame(self, frame: int) -> None:
        """Put the cursor on ``frame`` (or the next shown row)."""
        row = self.index.row_of_frame(frame)
        if row is None:
            self.notify(f"no frame {frame} (last is {self.progress.frames})", severity="warning")
            return
        self.timeline.go_to_row(row)

    def action_follow_transaction(self) -> None:
        row = self.timeline.current_row
        txid = self.index.txid_hex(row) if row is not None else ""
        if txid:
            self.apply_filter(f"txid={txid}")
        else:
            self.notify("the selected row has no transaction", severity="warning")

    def action_follow_session(self) -> None:
        """Filter to the ICE session or TURN allocation of the selected row, or else its flow."""
        row = self.timeline.current_row
        if row is None:
            return
        index = self.index
        user = index.usernames[index.user[row]]
        analysis = self.analysis
        if analysis is not None:
            for number, session in enumerate(analysis.ice, 1):
                if user and user in session_usernames(session):
                    self.apply_filter(f"session={number}")
                    return
            ends = {str(index.endpoints[index.src[row]]), str(index.endpoints[index.dst[row]])}
            for number, allocation in enumerate(analysis.allocations, 1):
                if ends <= allocation_endpoints(allocation):  # client-server or relay-peer
                    self.apply_filter(f"alloc={number}")
                    return
        src, dst = index.endpoints[index.src[row]], index.endpoints[index.dst[row]]
        self.apply_filter(f"addr={src} addr={dst}")

    def on_ice_view_follow_session(self, message: IceView.FollowSession) -> None:
        if self.apply_filter(f"session={message.number}"):
            self.action_tab("timeline")

    def on_ice_view_show_frames(self, message: IceView.ShowFrames) -> None:
        frames = set(message.frames)
        frame = self.index.frame
        view = RowView(self.index, lambda row: frame[row] in frames, fold=self.fold,
                       expression=message.title, unfolded=self.unfolded)
        self.show_view(view)
        self.action_tab("timeline")

    def on_turn_view_follow_allocation(self, message: TurnView.FollowAllocation) -> None:
        if self.apply_filter(f"alloc={message.number}"):
            self.action_tab("timeline")

    def on_verdicts_view_show_verdict(self, message: VerdictsView.ShowVerdict) -> None:
        if self.apply_filter(f"verdict={message.verdict.code}"):
            self.action_tab("timeline")

    # -- detail, theme, help, export ------------------------------------------------------------

    def action_toggle_detail(self) -> None:
        detail = self.query_one("#detail")
        detail.display = not detail.display

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_export(self) -> None:
        self.push_screen(ExportScreen(), lambda choice: self.export(choice) if choice else None)

    def export(self, what: str) -> None:
        """Export ``pcapng`` (the view, or the ICE session / allocation highlighted in its
        view), ladder ``text`` or ``mermaid`` (of the view), or an ``svg`` screenshot."""
        if what == "svg":
            path = unused_path(self.export_dir, self.stem, "svg")
            self.save_screenshot(path.name, str(path.parent))
            self.notify(f"screenshot saved to {path}")
            return
        predicate, name = self._export_scope()
        self._export(what, predicate, name)

    def _export_scope(self) -> tuple[Predicate | None, str]:
        """What ``pcapng`` export writes: the highlighted session/allocation, else the view."""
        context = self._filter_context()
        tab = self.tab
        if tab == "ice" and self.query_one(IceView).current is not None:
            number = self.query_one(IceView).current + 1  # type: ignore[operator]
            return compile_filter(f"session={number}", self.index, context), f"session{number}"
        if tab == "turn" and self.query_one(TurnView).current is not None:
            number = self.query_one(TurnView).current + 1  # type: ignore[operator]
            return compile_filter(f"alloc={number}", self.index, context), f"alloc{number}"
        return self.timeline.view.predicate, "view"

    @work(thread=True, group="export")
    def _export(self, what: str, predicate: Predicate | None, name: str) -> None:
        try:
            message = self._write_export(what, predicate, name)
        except (OSError, StunscopeError) as exc:
            self.call_from_thread(self.notify, safe_text(str(exc)), title="export failed",
                                  severity="error")
            return
        self.call_from_thread(self.notify, message, title="export")

    def _write_export(self, what: str, predicate: Predicate | None, name: str) -> str:
        """Write one export file (in the export worker); returns what to tell the user."""
        if what == "pcapng":
            view = RowView(self.index, predicate, fold=False)
            view.extend()
            records = export_records(self.index, view.rows, self.path,
                                     self.loader.frames if self.done else None)
            if records is None:
                return "nothing to export: this source kept no capture records"
            path = unused_path(self.export_dir, f"{self.stem}-{name}", "pcapng")
            return f"{write_pcapng(path, records)} frames written to {path}"
        else:
            ladder = Ladder(self.index, self.timeline.view.rows)
            extension = "txt" if what == "text" else "mmd"
            path = unused_path(self.export_dir, f"{self.stem}-ladder", extension)
            lines = ladder.text_lines() if what == "text" else ladder.mermaid_lines()
            with open(path, "w", encoding="utf-8") as out:
                for line in lines:
                    out.write(line + "\n")
            return f"ladder ({len(ladder.rows)} messages) written to {path}"

    def on_unmount(self) -> None:
        self._poll_timer.stop()
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self.workers.cancel_all()
        self.index.close()


def open_file(
    path: str | os.PathLike[str], keyring: Keyring | None = None, sdp: Iterable[str | Path] = ()
) -> StunscopeApp:
    """The app over a capture file (pcap, pcapng, gzip); ``keyring`` and ``sdp`` (files with ICE
    passwords and candidates) let the analysis and the detail pane verify MESSAGE-INTEGRITY.

    Raises :class:`~stunscope.errors.CaptureError` when the file is not a capture at all."""
    source = file_source(os.fspath(path))
    # Read the first record now: a file that is not a capture at all fails here, with the
    # one-line CaptureError of the CLI, instead of opening an empty TUI.
    first = next(source.records, None)
    records = chain([first], source.records) if first is not None else iter(())
    name = Path(path).name
    return StunscopeApp(records, title=f"stunscope: {name}", size=source.size,
                        stem=Path(name).stem.split(".")[0], path=path, keyring=keyring, sdp=sdp)
