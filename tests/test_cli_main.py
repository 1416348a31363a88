"""The dispatcher: every command's failure is one line and a documented exit code, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "captures" / "turn-udp.pcapng"


def _run(args: list[str], stdout: object = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "stunscope", *args], stdout=stdout,
                          stderr=subprocess.PIPE)


@pytest.mark.parametrize("command", ["messages", "analyze"])
def test_full_disk_on_stdout_is_one_line_and_exit_3(command: str) -> None:
    with open("/dev/full", "wb") as full:
        out = _run([command, str(CAPTURE)], stdout=full)
    assert out.returncode == 3
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stunscope: "), out.stderr
    assert "Traceback" not in out.stderr.decode()


def test_closed_pipe_is_quiet() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "stunscope", "messages", str(CAPTURE)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert err == b""


def test_no_command_prints_help_and_exit_2() -> None:
    out = _run([])
    assert out.returncode == 2
    assert b"COMMAND" in out.stdout


def test_unknown_flag_is_one_line_exit_2() -> None:
    out = _run(["messages", "--no-such-flag", str(CAPTURE)])
    assert out.returncode == 2
    assert len(out.stderr.decode().strip().splitlines()) == 1


def test_a_command_imports_only_what_it_needs() -> None:
    """`stunscope decode` parses and runs without loading the analysis or the capture reader."""
    code = (
        "import sys, io, contextlib\n"
        "from stunscope.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(['decode', '000100002112a442000000000000000000000000'])\n"
        "loaded = [m for m in ('stunscope.analysis', 'stunscope.capture.stream') if m in sys.modules]\n"
        "print(rc, ','.join(loaded))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0"], out.stdout
