"""Snapshot tests of every TUI view on the bundled captures (pytest-textual-snapshot).

Update the SVGs after an intended change with ``pytest tests/test_tui_snapshots.py
--snapshot-update`` and look at them (``snapshot_report.html``) before committing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot

from stunscope.tui.app import StunscopeApp, open_file

from conftest import CAPTURES

Steps = Callable[[Pilot], Awaitable[None]]


def app_on(name: str) -> StunscopeApp:
    path = CAPTURES / name
    if not path.is_file():
        pytest.skip(f"captures/{name} is absent")
    return open_file(path)


def after_load(*keys: str, theme: str | None = None) -> Steps:
    """Wait for the whole capture, press ``keys``, then let the debounced detail settle."""

    async def steps(pilot: Pilot) -> None:
        app = pilot.app
        assert isinstance(app, StunscopeApp)
        for _ in range(400):
            if app.done and app._pending_view is None:
                break
            await asyncio.sleep(0.025)
        if theme:
            app.theme = theme
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
            while app._pending_view is not None:
                await asyncio.sleep(0.025)
        await pilot.pause(0.2)

    return steps


def test_timeline_with_detail_and_hex(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_on("turn-udp.pcapng"), terminal_size=(140, 40),
                        run_before=after_load("down", "down", "down"))


def test_timeline_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_on("turn-udp.pcapng"), terminal_size=(80, 24),
                        run_before=after_load())


def test_hex_highlights_the_attribute(snap_compare) -> None:  # type: ignore[no-untyped-def]
    keys = ("down", "down", "tab", *["down"] * 12)
    assert snap_compare(app_on("turn-udp.pcapng"), terminal_size=(120, 40),
                        run_before=after_load(*keys))


def test_timeline_filtered_light_theme(snap_compare) -> None:  # type: ignore[no-untyped-def]
    keys = ("slash", *"method=binding", "enter")
    assert snap_compare(app_on("binding.pcapng"), terminal_size=(120, 30),
                        run_before=after_load(*keys, theme="textual-light"))


def test_retransmissions_unfolded(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_on("ice-unreachable.pcapng"), terminal_size=(120, 30),
                        run_before=after_load("r"))


def test_ladder_of_a_relayed_ice_call(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_on("ice-turn-relay.pcapng"), terminal_size=(140, 40),
                        run_before=after_load("2"))


def test_ice_view(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_on("ice-role-conflict.pcapng"), terminal_size=(140, 30),
                        run_before=after_load("3"))


def test_turn_view(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_on("turn-udp.pcapng"), terminal_size=(140, 35),
                        run_before=after_load("end", "4", "down"))


def test_verdicts_view(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_on("ice-unreachable.pcapng"), terminal_size=(140, 24),
                        run_before=after_load("5"))


def test_help_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_on("binding.pcapng"), terminal_size=(100, 40),
                        run_before=after_load("question_mark"))
