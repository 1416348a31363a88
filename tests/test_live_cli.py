"""``stunscope live`` errors: one line that says what to do, the documented exit code, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def live(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "stunscope", "live", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to drop CAP_NET_RAW with setpriv")
def test_no_permission_says_what_to_do_and_exits_3() -> None:
    # Root without CAP_NET_RAW in its bounding set: exactly an unprivileged user's situation.
    out = live("-i", "lo", "--format", "jsonl", prefix=("setpriv", "--bounding-set=-net_raw"))
    assert out.returncode == 3
    line = one_line(out.stderr)
    assert line.startswith("stunscope: capturing on lo needs root or CAP_NET_RAW (try: sudo setcap")
    assert out.stdout == ""


def test_unknown_interface_lists_the_real_ones() -> None:
    out = live("-i", "nosuch0", "--format", "jsonl")
    assert out.returncode == 2
    line = one_line(out.stderr)
    assert "nosuch0" in line and "lo" in line.split("interfaces: ")[1].split(", ")


def test_list_interfaces_shows_loopback() -> None:
    out = live("--list-interfaces")
    assert out.returncode == 0, out.stderr
    assert any(line.split()[:2] == ["lo", "up"] and "127.0.0.1" in line
               for line in out.stdout.splitlines())


@pytest.mark.skipif(os.geteuid() != 0, reason="the filter is compiled once the socket is open")
def test_bad_filter_is_a_usage_error() -> None:
    out = live("-f", "udp and nonsense", "--format", "jsonl")
    assert out.returncode == 2
    assert "bad capture filter 'udp and nonsense'" in one_line(out.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="the file is opened once capture is allowed")
def test_unwritable_file_exits_3(tmp_path: Path) -> None:
    out = live("-w", str(tmp_path / "missing" / "x.pcapng"), "--format", "jsonl")
    assert out.returncode == 3
    assert "cannot write" in one_line(out.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--ring", "3"), "--ring needs -w"),
     (("-w", "x.pcapng", "--ring-size", "5"), "--ring-size needs --ring"),
     (("--count", "0"), "must be a positive whole number"),
     (("--expect", "ice.connected and"), "--expect"),
     (("--profile", "nosuch"), "unknown profile")],
)
def test_inconsistent_options_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    out = live(*args, "--format", "jsonl")
    assert out.returncode == 2
    assert message in one_line(out.stderr)


@pytest.mark.live
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to add and delete an interface")
def test_interface_going_away_ends_the_capture_with_exit_3() -> None:
    name = f"stsifb{os.getpid() % 100000}"
    if subprocess.run(["ip", "link", "add", name, "type", "ifb"], capture_output=True).returncode:
        pytest.skip("cannot create an ifb interface here")
    try:
        subprocess.run(["ip", "link", "set", name, "up"], check=True, timeout=10)
        proc = subprocess.Popen([sys.executable, "-m", "stunscope", "live", "-i", name,
                                 "--format", "jsonl"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        assert "capturing on" in proc.stderr.readline()
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert "Traceback" not in err
    assert err.splitlines()[-1] == f"stunscope: capture on {name} stopped: Network is down"
    assert out.splitlines()[-1].startswith('{"kind":"capture"')
