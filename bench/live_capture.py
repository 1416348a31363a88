"""How many STUN packets per second live capture keeps up with on ``lo`` (or ``any``) without
losing any.

A sender process blasts RFC 8489 Binding requests (each with its own transaction id) over a UDP
socket to a loopback port, paced in 1 ms slots, at rates stepped up until a step loses packets;
at each step the capture's count is compared with the number sent. Needs root (or CAP_NET_RAW).

Two pipelines:
- ``capture``: ``LiveCapture`` alone (packet socket -> AsyncSniffer -> bounded queue -> Records),
  with a consumer that only counts Records, plus ``-w`` to a pcapng file;
- ``cli``: the whole ``stunscope live -i lo --format jsonl -w FILE`` process (decode, analysis,
  JSON Lines), counting the Binding request objects it prints. Capture and file writing run in
  their own thread; decoding drains the bounded queue (default 100,000 frames) behind them, so
  a burst faster than decoding is lossless while it fits in the queue. The step also reports the
  overall decode-and-print rate (messages / time from first send to last line).

    sudo python bench/live_capture.py --mode capture --rates 10000,20000,40000,80000
    sudo python bench/live_capture.py --mode cli --rates 2000,5000,10000,20000
    sudo python bench/live_capture.py -i any          # every interface at once (SLL2 frames)

The traffic always goes over loopback; ``-i any`` measures the cooked all-interface socket on it.

Every loop is bounded: ``--seconds`` per step (at most 10), at most 12 steps.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = struct.Struct("!HHI4sQ")  # type, length, cookie, txid (12 bytes: 4 + 8)


def send(port: int, rate: int, count: int) -> float:
    """Send ``count`` Binding requests to 127.0.0.1:``port`` at ``rate`` per second; return the
    achieved rate."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    salt = os.urandom(4)
    per_slot = max(1, rate // 1000)
    slot = per_slot / rate
    start = time.perf_counter()
    sent = 0
    while sent < count:
        for _ in range(min(per_slot, count - sent)):
            sock.sendto(HEADER.pack(0x0001, 0, 0x2112A442, salt, sent), ("127.0.0.1", port))
            sent += 1
        wait = start + (sent // per_slot) * slot - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    return count / (time.perf_counter() - start)


def _sender(port: int, rate: int, count: int) -> subprocess.Popen[str]:
    code = f"from live_capture import send; print(send({port}, {rate}, {count}))"
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=Path(__file__).parent, stdout=subprocess.PIPE, text=True
    )


def _sink() -> socket.socket:
    """A bound UDP socket so the datagrams are delivered (no ICMP port unreachable)."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    return sink


def step_capture(iface: str, rate: int, seconds: float, out: Path) -> tuple[int, int, str, float]:
    """One step through ``LiveCapture``: (sent, counted, stats line, achieved send rate)."""
    from stunscope.capture.live import LiveCapture

    sink = _sink()
    port = sink.getsockname()[1]
    count = int(rate * seconds)
    counted = 0

    def consume() -> None:
        nonlocal counted
        for _ in cap.records():
            counted += 1

    with LiveCapture(iface, f"udp dst port {port}", write=str(out)) as cap:
        reader = threading.Thread(target=consume)
        reader.start()
        sender = _sender(port, rate, count)
        achieved = float(sender.communicate(timeout=seconds * 5 + 10)[0])
        time.sleep(0.5)
    reader.join(timeout=30)
    sink.close()
    return count, counted, str(cap.stats()), achieved


def step_cli(iface: str, rate: int, seconds: float, out: Path) -> tuple[int, int, str, float]:
    """One step through the ``stunscope live --format jsonl`` process."""
    sink = _sink()
    port = sink.getsockname()[1]
    count = int(rate * seconds)
    live = subprocess.Popen(
        [sys.executable, "-m", "stunscope", "live", "-i", iface, "-f", f"udp dst port {port}",
         "--format", "jsonl", "-w", str(out), "--duration", str(seconds * 5 + 20)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert live.stderr is not None and live.stdout is not None
    live.stderr.readline()  # "capturing on lo ..." once the socket is open
    counted = 0

    def consume() -> None:
        nonlocal counted
        for line in live.stdout:  # type: ignore[union-attr]
            counted += '"method":"Binding"' in line.replace(" ", "")

    reader = threading.Thread(target=consume)
    reader.start()
    started = time.perf_counter()
    sender = _sender(port, rate, count)
    achieved = float(sender.communicate(timeout=seconds * 5 + 10)[0])
    time.sleep(0.5)
    live.send_signal(signal.SIGINT)  # stops capturing; what is queued is still decoded
    reader.join(timeout=120)
    processed = counted / (time.perf_counter() - started)
    stats = live.stderr.read().strip().splitlines()
    live.wait(timeout=30)
    sink.close()
    note = f"{stats[-1] if stats else ''}; decoded and printed at {processed:,.0f}/s overall"
    return count, counted, note, achieved


def main() -> int:
    """Step the rate up; print one line per step and the highest lossless rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("capture", "cli"), default="capture")
    parser.add_argument("-i", "--interface", choices=("lo", "any"), default="lo")
    parser.add_argument("--rates", default="5000,10000,20000,40000,80000,160000")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    seconds = min(args.seconds, 10.0)
    step = step_capture if args.mode == "capture" else step_cli
    best = 0
    with tempfile.TemporaryDirectory() as tmp:
        for rate in [int(r) for r in args.rates.split(",")][:12]:
            sent, counted, stats, achieved = step(args.interface, rate, seconds,
                                                  Path(tmp) / f"{rate}.pcapng")
            lossless = counted == sent
            print(
                f"{args.mode} on {args.interface}: target {rate}/s, sent {sent} at {achieved:,.0f}/s, "
                f"seen {counted} ({'no loss' if lossless else f'{sent - counted} lost'}); {stats}",
                flush=True,
            )
            if not lossless:
                break
            best = max(best, int(achieved))
    print(f"highest lossless rate ({args.mode}, {args.interface}): {best:,} STUN packets/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
