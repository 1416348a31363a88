"""``stunscope live`` on real traffic on ``lo``: coturn with turnutils clients and aioice agents
(``captures/scenarios.py``), captured by stunscope and dumpcap at once; Ctrl-C, SIGTERM, SIGKILL,
ring buffer, stop conditions, rules, the TUI in tmux.

Needs root or CAP_NET_RAW (CI runs as root), coturn, dumpcap and tmux. Every process and loop
here is bounded in time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import kill_tmux, start_tmux, tmux

from stunscope.capture.live import DEFAULT_FILTER
from stunscope.capture.records import read_records
from stunscope.wire.encode import encode_message

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root (CI runs as root)"),
]


def start_live(*args: str) -> subprocess.Popen[str]:
    """``stunscope live ARGS``, returned once it says it is capturing."""
    proc = subprocess.Popen([sys.executable, "-m", "stunscope", "live", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "capturing on" in line, line + proc.stderr.read()
    return proc


def stop(proc: subprocess.Popen[str], signum: int = signal.SIGINT) -> tuple[str, str]:
    """Send ``signum`` and collect (stdout, stderr after the first line)."""
    proc.send_signal(signum)
    return proc.communicate(timeout=60)


def captured(stderr: str) -> int:
    """The packet count from the final statistics line."""
    match = re.search(r"(\d+) packets captured, (\d+) dropped", stderr)
    assert match, stderr
    assert match.group(2) == "0", stderr
    return int(match.group(1))


def stunscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stunscope", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def messages(path: Path, *args: str) -> list[dict]:
    out = stunscope("messages", str(path), "--format", "jsonl", *args)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def same_but_clock(ours: list[dict], theirs: list[dict]) -> None:
    """Equal messages, but for frame numbers and timestamps: two packet sockets can stamp the
    same skb apart (the kernel stamps it for each reader when it carries none): a microsecond
    on an idle machine, 63 µs seen once under CI load, so 1 ms is allowed."""
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert abs(a["ts"] - b["ts"]) < 1e-3, (a, b)
        if a.get("rtt_ms") is not None:
            assert abs(a["rtt_ms"] - b["rtt_ms"]) < 0.1, (a, b)
    clockless = ("frame", "ts", "rtt_ms")
    assert [{k: v for k, v in o.items() if k not in clockless} for o in ours] == [
        {k: v for k, v in o.items() if k not in clockless} for o in theirs]


def send_bindings(port: int, count: int, start: int = 0) -> None:
    """``count`` Binding requests to 127.0.0.1:``port``, transaction ids numbered from ``start``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for number in range(start, start + count):
            sock.sendto(encode_message(0x001, 0, number.to_bytes(12, "big"), []),
                        ("127.0.0.1", port))


@contextmanager
def sink() -> Iterator[int]:
    """A bound UDP port to send to (so no ICMP port unreachable comes back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def txids(path: Path) -> list[int]:
    return [int(m["txid"], 16) for m in messages(path)]


def analysis(path: Path) -> dict:
    out = stunscope("analyze", str(path), "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def verdict_keys(verdicts: list[dict]) -> set[tuple[str, str, str]]:
    return {(v["code"], v["severity"], v["message"]) for v in verdicts}


SCENARIOS = ("binding", "turn-udp", "turn-tcp", "ice-host", "ice-turn-relay")


@pytest.mark.skipif(shutil.which("dumpcap") is None or shutil.which("turnserver") is None,
                    reason="needs dumpcap and coturn")
def test_live_and_dumpcap_see_the_same_messages_and_verdicts(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from captures import scenarios

    plan = scenarios.Plan.allocate()
    ours, theirs = tmp_path / "stunscope.pcapng", tmp_path / "dumpcap.pcapng"
    credential = f"{scenarios.USER}:{scenarios.PASSWORD}"
    live = start_live("-i", "lo", "-f", f"({DEFAULT_FILTER}) and ({plan.bpf()})", "-w", str(ours),
                      "--format", "jsonl", "--credential", credential,
                      "--expect", "ice.connected", "--expect", "allocations.count >= 2")
    dumpcap = subprocess.Popen(["dumpcap", "-i", "lo", "-f", plan.bpf(), "-w", str(theirs)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert dumpcap.stderr is not None
        for _ in range(20):
            if "Capturing on" in dumpcap.stderr.readline():
                break
        time.sleep(1.0)  # dumpcap says it is capturing a moment before it is
        for name in SCENARIOS:
            scenarios.SCENARIOS[name](plan)
        time.sleep(0.5)
    finally:
        dumpcap.send_signal(signal.SIGINT)
        dumpcap.communicate(timeout=30)
        streamed, err = stop(live)
        plan.cleanup()
    assert live.returncode == 0, err  # both expectations held
    frames = captured(err)
    assert len(list(read_records(ours))) == frames

    lines = [json.loads(line) for line in streamed.splitlines()]
    by_kind = {kind: [o for o in lines if o["kind"] == kind] for kind in ("verdict", "check")}
    assert lines[-1] == {"kind": "capture", "captured": frames, "dropped_queue": 0,
                         "dropped_kernel": 0}
    assert by_kind["check"][0]["passed"] is True
    from_file = messages(ours, "--credential", credential)
    assert [o for o in lines if o["kind"] not in ("verdict", "check", "capture")] == from_file
    assert any(m["integrity"] == "ok" for m in from_file)
    kinds = {(m["transport"], m["method"], m["class"]) for m in from_file}
    assert {("udp", "Binding", "success"), ("udp", "Allocate", "success"),
            ("tcp", "Allocate", "success"), ("udp", "CreatePermission", "success")} <= kinds
    assert any(m["tunnel"] for m in from_file)  # ICE checks carried through the relay
    assert any(m["kind"] == "channeldata" for m in from_file)
    same_but_clock(from_file, messages(theirs, "--credential", credential))

    final = analysis(ours)["verdicts"]
    assert "ice-connected" in {v["code"] for v in final}
    assert verdict_keys(final) <= verdict_keys(by_kind["verdict"])  # streamed as they happened
    assert verdict_keys(final) == verdict_keys(analysis(theirs)["verdicts"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stop_signal_leaves_a_complete_file(signum: int, tmp_path: Path) -> None:
    out = tmp_path / "stopped.pcapng"
    with sink() as port:
        live = start_live("-f", f"udp dst port {port}", "-w", str(out), "--format", "text")
        send_bindings(port, 300)
        time.sleep(0.3)
        streamed, err = stop(live, signum)
    assert live.returncode == 0, err
    assert "Traceback" not in err
    assert captured(err) == 300
    assert txids(out) == list(range(300))
    lines = streamed.splitlines()
    assert sum(" udp Binding request tx=" in line for line in lines) == 300
    assert lines[-1].startswith("verdict warning unanswered-request")
    if shutil.which("capinfos"):
        info = subprocess.run(["capinfos", "-c", "-T", "-r", str(out)], capture_output=True,
                              text=True, check=True).stdout
        assert info.strip().endswith("\t300")


def test_sigkill_leaves_a_file_readable_up_to_the_last_flush(tmp_path: Path) -> None:
    out = tmp_path / "killed.pcapng"
    with sink() as port:
        live = start_live("-f", f"udp dst port {port}", "-w", str(out), "--format", "jsonl")
        send_bindings(port, 200)
        time.sleep(1.0)  # several 200 ms flush periods
        send_bindings(port, 5000, start=200)  # a burst in flight when the kill lands
        live.kill()
        live.communicate(timeout=90)
    numbers = txids(out)  # read without any error: the file ends on a block boundary
    assert numbers[:200] == list(range(200))
    assert numbers == list(range(len(numbers)))


def test_ring_buffer_rotates_and_keeps_n_files(tmp_path: Path) -> None:
    base = tmp_path / "ring.pcapng"
    with sink() as port:
        live = start_live("-f", f"udp dst port {port}", "-w", str(base), "--ring", "3",
                          "--ring-size", "0.01", "--format", "jsonl")
        send_bindings(port, 1000)
        time.sleep(0.3)
        _, err = stop(live)
    assert live.returncode == 0, err
    files = sorted(tmp_path.glob("ring_*.pcapng"))
    assert len(files) == 3
    indexes = [int(f.stem.split("_")[1]) for f in files]
    assert indexes == list(range(indexes[0], indexes[0] + 3)) and indexes[0] > 3
    kept = [n for f in files for n in txids(f)]
    assert kept == list(range(1000 - len(kept), 1000))


def test_count_and_duration_stop_the_capture(tmp_path: Path) -> None:
    with sink() as port:
        live = start_live("-f", f"udp dst port {port}", "--count", "25", "--format", "jsonl")
        send_bindings(port, 100)
        streamed, err = live.communicate(timeout=90)
    assert live.returncode == 0, err
    assert sum(json.loads(line)["kind"] == "stun" for line in streamed.splitlines()) == 25
    started = time.monotonic()
    live = start_live("-f", "udp port 9", "--duration", "1", "--format", "jsonl")
    live.communicate(timeout=90)
    assert live.returncode == 0
    assert 0.9 < time.monotonic() - started < 10


def test_rules_checked_when_the_capture_stops(tmp_path: Path) -> None:
    with sink() as port:
        live = start_live("-f", f"udp dst port {port}", "--count", "5", "--format", "jsonl",
                          "--expect", 'count(transactions where outcome == "timeout") == 0')
        send_bindings(port, 5)  # nobody answers: five timeouts
        streamed, err = live.communicate(timeout=90)
    assert live.returncode == 1, err
    check = [json.loads(line) for line in streamed.splitlines()][-2]
    assert check["kind"] == "check" and check["passed"] is False
    assert "FAILED" in err and "Traceback" not in err


def _screen(session: str) -> str:
    return tmux(session, "capture-pane", "-p", "-t", session, check=False).stdout


def _wait_screen(session: str, pattern: str, seconds: float = 10) -> str:
    """The pane once the regular expression ``pattern`` shows on it (or after ``seconds``)."""
    screen = ""
    for _ in range(int(seconds * 10)):
        screen = _screen(session)
        if re.search(pattern, screen):
            break
        time.sleep(0.1)
    return screen


@contextmanager
def tui(port: int, done: Path, *args: str) -> Iterator[str]:
    """``stunscope live -f 'udp dst port PORT' ARGS`` in a tmux session; yields the session."""
    session = f"stunscope-live-{os.getpid()}-{port}"
    command = (f"{sys.executable} -m stunscope live -f 'udp dst port {port}' {' '.join(args)}; "
               f"echo $? > {done}")
    start_tmux(session, 120, 30, command)
    try:
        assert "● live" in _wait_screen(session, "● live")
        yield session
    finally:
        kill_tmux(session)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize("how", ["q", "SIGTERM"])
def test_tui_shows_live_traffic_and_quits_cleanly(how: str, tmp_path: Path) -> None:
    out, done = tmp_path / "tui.pcapng", tmp_path / "exit"
    with sink() as port, tui(port, done, "-w", str(out)) as session:
        send_bindings(port, 7)
        screen = _wait_screen(session, "7 frames")
        assert "7 frames" in screen and "Binding request" in screen, screen
        if how == "q":
            tmux(session, "send-keys", "-t", session, "q")
        else:
            pid = subprocess.run(  # the Python process, not the shell that started it
                ["pgrep", "-f", f"^{sys.executable} -m stunscope live -f udp dst port {port}"],
                capture_output=True, text=True).stdout.split()[0]
            os.kill(int(pid), signal.SIGTERM)
        for _ in range(100):
            if done.exists() and done.read_text().strip():
                break
            time.sleep(0.1)
    assert done.read_text().strip() == "0"
    assert txids(out) == list(range(7))


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_tui_shows_dropped_packets(tmp_path: Path) -> None:
    with sink() as port, tui(port, tmp_path / "exit", "--queue-size", "5") as session:
        send_bindings(port, 3000)  # a burst far bigger than the queue
        # The count stays in the status bar (a toast only says when the drops start).
        status = r"● live · [1-9][\d,]* dropped"
        screen = _wait_screen(session, status)
        assert re.search(status, screen), screen


def test_a_full_queue_counts_its_drops_and_the_file_keeps_everything(tmp_path: Path) -> None:
    from stunscope.capture.live import LiveCapture

    out = tmp_path / "full.pcapng"
    with sink() as port:
        capture = LiveCapture("lo", f"udp dst port {port}", queue_size=10, write=str(out))
        send_bindings(port, 100)  # nobody reads the queue meanwhile
        time.sleep(0.5)
        capture.stop()
    records = list(capture.records())
    assert [r.frame for r in records] == list(range(1, 11))
    stats = capture.stats()
    assert (stats.captured, stats.dropped_queue, stats.dropped_kernel) == (100, 90, 0)
    assert txids(out) == list(range(100))
    assert [r.data for r in records] == [r.data for r in read_records(out)][:10]


def test_file_over_the_size_limit_stops_with_exit_3_and_stays_valid(tmp_path: Path) -> None:
    import resource

    out = tmp_path / "limited.pcapng"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    with sink() as port:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stunscope", "live", "-f", f"udp dst port {port}", "-w",
             str(out), "--format", "jsonl"], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, preexec_fn=limit)
        assert proc.stderr is not None and "capturing on" in proc.stderr.readline()
        send_bindings(port, 5000)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert err.splitlines()[-1] == f"stunscope: cannot write {out}: File too large"
    assert "Traceback" not in err
    numbers = txids(out)  # cut back to its last complete flush: reads without damage
    assert 1000 < len(numbers) < 5000 and numbers == list(range(len(numbers)))


def test_unwritable_device_exits_3() -> None:
    proc = subprocess.run([sys.executable, "-m", "stunscope", "live", "-w", "/dev/full",
                           "--format", "jsonl"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.strip() == "stunscope: cannot write /dev/full: No space left on device"
