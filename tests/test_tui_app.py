"""Pilot tests of the TUI: drive it with keys on the bundled captures and assert on its state."""

from __future__ import annotations

import asyncio
import functools
import time
from array import array
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from stunscope.capture.events import MessageEvent
from stunscope.capture.records import read_records
from stunscope.capture.stream import open_events
from stunscope.errors import CaptureError
from stunscope.tui.app import StunscopeApp, open_file
from stunscope.tui.detail import DetailTree
from stunscope.tui.filter import compile_filter
from stunscope.tui.index import Outcome
from stunscope.tui.ladder_view import LadderView
from stunscope.tui.screens import HelpScreen
from stunscope.tui.summary import row_label
from stunscope.tui.view import RowView
from stunscope.wire.decode import decode_message
from stunscope.wire.encode import encode_message
from stunscope.wire.integrity import Keyring
from stunscope.wire.message import Endpoint, MessageClass

from conftest import CAPTURES

SIZE = (120, 40)


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async pilot test with asyncio.run (no async pytest plugin is installed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def loaded(app: StunscopeApp, pilot) -> None:  # type: ignore[no-untyped-def]
    """Wait until the loader has read the whole source and the app has shown it."""
    for _ in range(400):
        if app.done and app._pending_view is None:
            break
        await asyncio.sleep(0.025)
    assert app.done, "the capture did not finish loading"
    await pilot.pause()


def capture(name: str) -> Path:
    path = CAPTURES / name
    if not path.is_file():
        pytest.skip(f"captures/{name} is absent")
    return path


def frames_shown(app: StunscopeApp) -> list[int]:
    view = app.timeline.view
    return [app.index.frame[view[i]] for i in range(len(view))]


@sync
async def test_rows_are_the_messages_of_the_capture_and_the_first_is_detailed() -> None:
    path = capture("turn-udp.pcapng")
    app = open_file(path)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        events = list(open_events(path))
        assert app.index.count == len(events)
        assert [app.index.frame[r] for r in range(app.index.count)] == [e.frame for e in events]
        await pilot.pause(0.1)
        tree = app.query_one(DetailTree)
        assert tree.row == app.timeline.view[0]
        assert str(tree.root.label).startswith(f"Frame {events[0].frame}:")


@sync
async def test_cursor_keys_move_and_the_detail_follows() -> None:
    app = open_file(capture("turn-udp.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        await pilot.press("down", "down", "down")
        assert app.timeline.cursor == 3
        await pilot.press("end")
        assert app.timeline.cursor == len(app.timeline.view) - 1
        await pilot.press("home")
        await pilot.press("down")
        await pilot.pause(0.1)
        assert app.query_one(DetailTree).row == app.timeline.view[1]


@sync
async def test_filter_bar_filters_and_escape_clears() -> None:
    app = open_file(capture("turn-udp.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        everything = len(app.timeline.view)
        await pilot.press("slash")
        await pilot.press(*"method=allocate class=error")
        await pilot.press("enter")
        await loaded(app, pilot)
        view = app.timeline.view
        assert 0 < len(view) < everything
        assert all(row_label(app.index, r) == "Allocate error" for r in view.rows)
        assert view.expression == "method=allocate class=error"
        await pilot.press("escape")
        await loaded(app, pilot)
        assert len(app.timeline.view) == everything


@sync
async def test_a_bad_filter_says_where_and_keeps_the_view() -> None:
    app = open_file(capture("turn-udp.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        before = len(app.timeline.view)
        assert not app.apply_filter("method=allocate and (")
        assert not app.apply_filter("colour=red")
        await loaded(app, pilot)
        assert len(app.timeline.view) == before
        messages = [n.message for n in app._notifications]
        assert any("ends too early" in m for m in messages)
        assert any("unknown field 'colour'" in m for m in messages)


@sync
async def test_retransmissions_fold_under_their_request_and_r_shows_them() -> None:
    app = open_file(capture("ice-unreachable.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        index = app.index
        requests = [r for r in app.timeline.view.rows if row_label(index, r) == "Binding request"]
        assert len(requests) == 1
        assert index.retransmissions[requests[0]] == 4
        assert "+4 retransmissions" in app.summaries(requests[0])
        await pilot.press("r")
        await loaded(app, pilot)
        shown = [r for r in app.timeline.view.rows if row_label(index, r) == "Binding request"]
        assert len(shown) == 5


@sync
async def test_go_to_frame_and_search() -> None:
    app = open_file(capture("turn-udp.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        await pilot.press("g", "5", "enter")
        await pilot.pause()
        assert app.index.frame[app.timeline.current_row] == 5
        await pilot.press("home", "s", *"method=channelbind", "enter")
        for _ in range(40):
            await pilot.pause(0.025)
            if row_label(app.index, app.timeline.current_row).startswith("ChannelBind"):
                break
        first = app.timeline.current_row
        assert row_label(app.index, first) == "ChannelBind request"
        await pilot.press("n")
        for _ in range(40):
            await pilot.pause(0.025)
            if app.timeline.current_row != first:
                break
        assert app.timeline.current_row > first
        assert row_label(app.index, app.timeline.current_row).startswith("ChannelBind")


@sync
async def test_follow_session_then_ladder_of_that_session() -> None:
    app = open_file(capture("ice-host.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        index = app.index
        check = next(r for r in range(index.count) if index.usernames[index.user[r]])
        app.timeline.go_to_row(check)
        await pilot.press("F")
        await loaded(app, pilot)
        assert app.timeline.view.expression == "session=1"
        await pilot.press("2")
        ladder = app.query_one(LadderView).ladder
        assert ladder is not None and len(ladder.columns) == 2
        assert len(ladder.rows) == len(app.timeline.view)


@sync
async def test_follow_transaction_shows_request_and_answer() -> None:
    app = open_file(capture("turn-udp.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        await pilot.press("f")
        await loaded(app, pilot)
        labels = [row_label(app.index, r) for r in app.timeline.view.rows]
        assert labels == ["Allocate request", "Allocate error"]


@sync
async def test_ice_turn_and_verdict_views_show_the_analysis() -> None:
    app = open_file(capture("ice-unreachable.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        await pilot.press("3")
        assert app.tab == "ice"
        assert app.query_one("#ice-sessions").row_count == 1
        assert app.query_one("#ice-pairs").row_count == 1
        await pilot.press("5")
        codes = [v.code for v in app.query_one("VerdictsView").verdicts]
        assert "ice-no-response" in codes
        await pilot.press("enter")  # the first verdict: its evidence in the timeline
        await loaded(app, pilot)
        assert app.tab == "timeline"
        verdict = app.query_one("VerdictsView").verdicts[0]
        assert set(frames_shown(app)) <= set(verdict.frames)
        assert frames_shown(app)


@sync
async def test_turn_view_lists_allocations_and_follows_one() -> None:
    app = open_file(capture("turn-udp.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        await pilot.press("4")
        turn = app.query_one("TurnView")
        assert turn.allocations
        await pilot.press("enter")
        await loaded(app, pilot)
        assert app.timeline.view.expression == "alloc=1"
        allocation = turn.allocations[0]
        ends = {allocation.client, allocation.server}
        index = app.index
        for row in app.timeline.view.rows:
            pair = {str(index.endpoints[index.src[row]]), str(index.endpoints[index.dst[row]])}
            assert pair == ends or allocation.relayed in pair


@sync
async def test_export_session_capture_and_ladder(tmp_path: Path) -> None:
    path = capture("ice-host.pcapng")
    app = open_file(path)
    app.export_dir = tmp_path
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        await pilot.press("3")
        app.export("pcapng")
        app.export("text")
        app.export("mermaid")
        await app.workers.wait_for_complete()
        await pilot.press("1")
        app.export("svg")
        await pilot.pause()
    written = {p.suffix: p for p in tmp_path.iterdir()}
    assert set(written) == {".pcapng", ".txt", ".mmd", ".svg"}
    session = RowView(app.index, compile_filter("session=1", app.index, app._filter_context()),
                      fold=False)
    session.extend()
    original = {r.frame: r.data for r in read_records(path)}
    exported = [r.data for r in read_records(written[".pcapng"])]
    assert exported == [original[f] for f in session.frames()]
    mermaid = written[".mmd"].read_text().splitlines()
    assert mermaid[0] == "sequenceDiagram"
    assert any("->>" in line and "Binding request" in line for line in mermaid)
    assert "│" in written[".txt"].read_text()
    assert written[".svg"].read_text().startswith("<svg")


def _event(frame: int, message: bytes, src: Endpoint, dst: Endpoint) -> MessageEvent:
    decoded = decode_message(message)
    return MessageEvent(frame, 1700000000.0 + frame, src, dst, "udp", "stun", decoded, None,
                        None, None, 0)


@sync
async def test_wire_strings_never_reach_the_terminal_as_markup_or_escapes() -> None:
    evil = "[bold red]pwned[/] \x1b[2J\u202e".encode()
    message = encode_message(0x001, MessageClass.SUCCESS, b"\x01" * 12, [(0x8022, evil)])
    a, b = Endpoint("192.0.2.1", 3478), Endpoint("198.51.100.2", 5000)
    app = StunscopeApp([_event(1, message, a, b)], title="evil")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        await pilot.pause(0.1)
        tree = app.query_one(DetailTree)
        labels = []
        stack = [tree.root]
        while stack:
            node = stack.pop()
            labels.append(node.label.plain)
            stack.extend(node.children)
        software = next(label for label in labels if label.startswith("SOFTWARE"))
        assert "[bold red]pwned[/]" in software
        assert "\\x1b" in software and "\x1b" not in software
        assert "\u202e" not in software


@sync
async def test_live_source_follows_the_newest_row() -> None:
    a, b = Endpoint("192.0.2.1", 3478), Endpoint("198.51.100.2", 5000)
    def source():  # type: ignore[no-untyped-def]
        for frame in range(1, 6):
            time.sleep(0.15)  # a slow source: rows arrive over several refreshes
            txid = frame.to_bytes(12, "big")
            yield _event(frame, encode_message(0x001, MessageClass.REQUEST, txid, []), a, b)

    app = StunscopeApp(source(), title="live", live=True)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        assert app.index.count == 5
        assert app.timeline.cursor == 4
        await pilot.press("up")
        assert app.timeline.cursor == 3
        assert "live" in str(app.query_one("#status").render())


@sync
async def test_help_screen_theme_and_detail_toggle() -> None:
    app = open_file(capture("binding.pcapng"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        theme = app.theme
        await pilot.press("T")
        assert app.theme != theme
        await pilot.press("d")
        assert not app.query_one("#detail").display


@sync
async def test_detail_verifies_integrity_with_the_credentials_given() -> None:
    keyring = Keyring()
    keyring.add_long_term("alice", "wonderland")
    app = open_file(capture("turn-udp.pcapng"), keyring)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        tree = app.query_one(DetailTree)
        for row in (2, 3):  # the authenticated Allocate and its success response
            tree.show_row(row)
            assert "MESSAGE-INTEGRITY ok" in [c.label.plain for c in tree.root.children]


def test_a_file_that_is_no_capture_fails_before_the_tui_opens(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_text("not a capture\n")
    with pytest.raises(CaptureError, match="not a pcap or pcapng"):
        open_file(bad)


@sync
async def test_enter_unfolds_one_request_and_folds_it_back() -> None:
    app = open_file(capture("ice-unreachable.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        index = app.index
        request = next(r for r in app.timeline.view.rows if index.retransmissions[r])
        app.timeline.go_to_row(request)
        folded = len(app.timeline.view)
        await pilot.press("enter")
        await loaded(app, pilot)
        assert len(app.timeline.view) == folded + 4
        assert app.timeline.current_row == request
        retransmission = next(r for r in app.timeline.view.rows if index.partner[r] == request
                              and r > request)
        app.timeline.go_to_row(retransmission)
        await pilot.press("enter")  # on a retransmission: fold back
        await loaded(app, pilot)
        assert len(app.timeline.view) == folded


@sync
async def test_mouse_click_selects_a_row_and_a_tab() -> None:
    app = open_file(capture("turn-udp.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        await pilot.click("#timeline-list", offset=(10, 4))  # line 0 is the header
        assert app.timeline.cursor == 3
        await pilot.click("Tab#--content-tab-verdicts")
        assert app.tab == "verdicts"


@sync
async def test_command_palette_exports_the_ladder(tmp_path: Path) -> None:
    app = open_file(capture("binding.pcapng"))
    app.export_dir = tmp_path
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"ladder as Mermaid")
        await pilot.pause(0.3)
        await pilot.press("enter")
        for _ in range(40):
            await pilot.pause(0.05)
            if list(tmp_path.iterdir()):
                break
    (written,) = tmp_path.iterdir()
    assert written.suffix == ".mmd"
    assert written.read_text().startswith("sequenceDiagram\n")


@sync
async def test_follow_from_a_send_indication_finds_its_allocation() -> None:
    app = open_file(capture("turn-udp.pcapng"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        index = app.index
        send = next(r for r in range(index.count) if row_label(index, r) == "Send indication")
        app.timeline.go_to_row(send)
        await pilot.press("F")
        await loaded(app, pilot)
        assert app.timeline.view.expression.startswith("alloc=")
        assert send in app.timeline.view.rows


@pytest.mark.slow
@sync
async def test_a_big_source_shows_rows_before_it_is_loaded_and_stays_compact() -> None:
    a, b = Endpoint("192.0.2.1", 3478), Endpoint("198.51.100.2", 5000)
    request = decode_message(encode_message(0x001, MessageClass.REQUEST, b"\x07" * 12, []))
    answer = decode_message(encode_message(0x001, MessageClass.SUCCESS, b"\x07" * 12, []))
    total = 300_000

    def source():  # type: ignore[no-untyped-def]
        for frame in range(1, total + 1):
            message, src, dst = (request, a, b) if frame % 2 else (answer, b, a)
            message = message._replace(txid=((frame + 1) // 2).to_bytes(12, "big"))  # a transaction
            yield MessageEvent(frame, 1700000000.0 + frame / 1000, src, dst, "udp", "stun",
                               message, None, None, None, 0)

    app = StunscopeApp(source(), title="big")
    async with app.run_test(size=SIZE) as pilot:
        while not len(app.timeline.view):
            await asyncio.sleep(0.01)
        assert not app.done, "the first rows should show while the rest is loading"
        await pilot.press("pagedown", "pagedown")
        assert app.timeline.cursor > 0
        for _ in range(1200):
            if app.done:
                break
            await asyncio.sleep(0.05)
        assert app.done and app.index.count == total == len(app.timeline.view)
        assert {app.index.outcome[r] for r in range(0, total, 2)} == {Outcome.SUCCESS}
        await pilot.press("end")
        assert app.index.frame[app.timeline.current_row] == total
        columns = [v for v in vars(app.index).values() if isinstance(v, (array, bytearray))]
        size = sum(len(c) * (c.itemsize if isinstance(c, array) else 1) for c in columns)
        assert size / total < 80  # bytes a row in memory; message bytes are on disk


@sync
async def test_a_record_source_without_a_file_exports_from_its_spool(tmp_path: Path) -> None:
    path = capture("turn-udp.pcapng")
    app = StunscopeApp(read_records(path), title="records", live=True, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        assert app.apply_filter("method=allocate")
        await loaded(app, pilot)
        app.export("pcapng")
        await app.workers.wait_for_complete()
    (written,) = tmp_path.iterdir()
    original = {r.frame: r.data for r in read_records(path)}
    frames = sorted({app.index.frame[r] for r in range(app.index.count)
                     if row_label(app.index, r).startswith("Allocate")})
    assert [r.data for r in read_records(written)] == [original[f] for f in frames]
