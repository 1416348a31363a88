"""Shared fixtures: where the bundled captures and the ../shared corpus and vectors live."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
VECTORS = SHARED / "vectors" / "rfc5769.json"


def corpus_files() -> list[Path]:
    """Every capture in ../shared/corpus (empty when ../shared is absent)."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in {".pcap", ".pcapng"})


def bundled_captures() -> list[Path]:
    """Every capture bundled in captures/."""
    return sorted(p for p in CAPTURES.glob("*") if p.suffix in {".pcap", ".pcapng", ".gz"})


@pytest.fixture
def corpus() -> Path:
    """The ../shared/corpus folder; skips the test when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")
    return CORPUS


@pytest.fixture
def rfc5769_vectors() -> list[dict]:
    """The RFC 5769 vectors from ../shared; skips the test when they are absent."""
    import json

    if not VECTORS.is_file():
        pytest.skip("../shared/vectors/rfc5769.json is absent")
    return json.loads(VECTORS.read_text())["vectors"]


def tmux(session: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``tmux ARGS`` on the tmux server of its own named after ``session``. One server per
    session: on a shared server, a session created or killed by a test running in parallel
    makes tmux recompute the sizes of client-less windows, and they fall back to 80×24."""
    return subprocess.run(["tmux", "-L", session, *args], check=check, capture_output=True,
                          text=True, timeout=30)


def start_tmux(session: str, width: int, height: int, command: str, cwd: Path = ROOT) -> None:
    """A detached ``session`` of ``width``×``height`` (its own server) running ``command``, which
    starts once the pane has that size: tmux may create the pane at 80×24 and resize it a moment
    later, and a program that reads its size before the resize and misses the SIGWINCH (Textual
    installs its handler after reading) keeps drawing at 80×24. The shell's checkwinsize may
    have exported COLUMNS and LINES of the first size meanwhile, which would win over the
    terminal's: they are unset."""
    wait = f'until [ "$(stty size)" = "{height} {width}" ]; do sleep 0.05; done; unset COLUMNS LINES; '
    tmux(session, "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height),
         "-c", str(cwd), wait + command)


def kill_tmux(session: str) -> None:
    """End the server of :func:`tmux` ``session`` and remove its socket, which tmux leaves
    behind (also when the server ended with its program)."""
    tmux(session, "kill-server", check=False)
    folder = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
    (folder / session).unlink(missing_ok=True)
