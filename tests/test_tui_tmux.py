"""The real program in a real terminal: ``stunscope open`` inside tmux, driven by send-keys."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from conftest import CAPTURES, kill_tmux, start_tmux, tmux

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def _tmux(session: str, *args: str) -> str:
    return tmux(session, *args).stdout


@pytest.fixture
def terminal() -> Iterator[Callable[[str, int, int], str]]:
    """Start ``stunscope ARGS`` in a detached tmux session of a given size; yields a starter
    that returns the session name. The session is killed afterwards."""
    sessions: list[str] = []

    def start(args: str, width: int, height: int) -> str:
        name = f"stunscope-test-{uuid.uuid4().hex[:8]}"
        start_tmux(name, width, height, f"stunscope {args}")
        sessions.append(name)
        return name

    yield start
    for name in sessions:
        kill_tmux(name)


def screen(session: str) -> str:
    return _tmux(session, "capture-pane", "-p", "-t", session)


def wait_for(session: str, text: str, timeout: float = 20.0) -> str:
    """The screen once ``text`` is on it (fails with the last screen after ``timeout``)."""
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        shown = screen(session)
        if text in shown:
            return shown
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared; the screen was:\n{shown}")


def keys(session: str, *pressed: str) -> None:
    for key in pressed:
        _tmux(session, "send-keys", "-t", session, key)
        time.sleep(0.15)


def test_open_turn_capture_browse_filter_and_quit(terminal) -> None:  # type: ignore[no-untyped-def]
    path = CAPTURES / "turn-udp.pcapng"
    session = terminal(f"open {path}", 100, 30)
    wait_for(session, "66/66 rows")
    shown = wait_for(session, "Frame 1: Allocate request")  # the detail pane
    assert "Allocate req" in shown and "1 Timeline" in shown
    keys(session, "/")
    keys(session, "-l", "method=channelbind class=success")
    keys(session, "Enter")
    shown = wait_for(session, "filter: method=channelbind class=success")
    rows = [line for line in shown.splitlines() if "ChannelBind" in line and "→" in line]
    assert rows and all("ChannelBind ok" in line for line in rows)
    keys(session, "4")
    wait_for(session, "TURN allocations")
    keys(session, "q")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and tmux(
            session, "has-session", "-t", session, check=False).returncode == 0:
        time.sleep(0.2)
    gone = tmux(session, "has-session", "-t", session, check=False)
    assert gone.returncode != 0, "q did not quit (the tmux session ends with the program)"


def test_plain_file_argument_opens_tui_at_80x24(terminal) -> None:  # type: ignore[no-untyped-def]
    path = CAPTURES / "ice-unreachable.pcapng"
    session = terminal(str(path), 80, 24)
    shown = wait_for(session, "q Quit")  # the footer fits at 80 columns
    assert "? Help" in shown
    shown = wait_for(session, "ICMP unreachable")
    keys(session, "5")
    shown = wait_for(session, "ice-no-response")
    assert "ice-failed" in shown
