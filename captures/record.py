#!/usr/bin/env python3
"""Re-record the bundled captures: ``python3 captures/record.py [NAME ...]`` (root, or a user
allowed to run dumpcap on ``lo``).

For each scenario: pick a block of free loopback ports, start ``dumpcap -i lo`` with a filter on
that block, wait until it captures, run the scenario (captures/scenarios.py), stop dumpcap
cleanly, and write ``captures/NAME.pcapng`` (plus ``captures/NAME.sdp`` for ICE scenarios).
With no NAME, every scenario is recorded. ``--list`` prints the names and what each shows.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import scenarios  # noqa: E402


@contextlib.contextmanager
def dumpcap(path: Path, bpf: str, iface: str = "lo", timeout: float = 10.0):
    """Run dumpcap until the block exits; the file is complete when the block returns."""
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        ["dumpcap", "-q", "-i", iface, "-f", bpf, "-w", str(path)],
        stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            err.seek(0)
            if b"Capturing on" in err.read():
                break
            if proc.poll() is not None:
                err.seek(0)
                raise RuntimeError(f"dumpcap failed: {err.read().decode(errors='replace')}")
            time.sleep(0.05)
        else:
            raise TimeoutError("dumpcap did not start capturing")
        time.sleep(0.3)  # the filter is attached once dumpcap says so; a margin for safety
        yield proc
        time.sleep(0.5)  # let the last packets reach the capture
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        err.close()


def record(name: str, outdir: Path = HERE, keep_workdir: bool = False) -> Path:
    """Record one scenario into ``outdir/NAME.pcapng``; returns the path."""
    fn = scenarios.SCENARIOS[name]
    plan = scenarios.Plan.allocate()
    out = outdir / f"{name}.pcapng"
    tmp = outdir / f".{name}.pcapng.tmp"
    tmp.unlink(missing_ok=True)
    try:
        with dumpcap(tmp, scenarios.capture_filter(name, plan)):
            result = fn(plan)
        tmp.chmod(0o644)
        tmp.replace(out)
        sdp = outdir / f"{name}.sdp"
        if result.sdp:
            sdp.write_text(result.sdp)
        else:
            sdp.unlink(missing_ok=True)
        for note in result.notes:
            print(f"  {name}: {note}")
    finally:
        tmp.unlink(missing_ok=True)
        if keep_workdir:
            print(f"  work directory kept: {plan.workdir}")
        else:
            plan.cleanup()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="scenarios to record (default: all)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--outdir", type=Path, default=HERE)
    ap.add_argument("--keep-workdir", action="store_true", help="keep coturn logs for debugging")
    args = ap.parse_args(argv)
    if args.list:
        for name, fn in scenarios.SCENARIOS.items():
            print(f"{name}: {' '.join((fn.__doc__ or '').split())}")
        return 0
    unknown = [n for n in args.names if n not in scenarios.SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; see --list", file=sys.stderr)
        return 2
    if not shutil.which("dumpcap"):
        print("dumpcap not found: install tshark (scripts/install-system-deps.sh)", file=sys.stderr)
        return 2
    for name in args.names or list(scenarios.SCENARIOS):
        t0 = time.monotonic()
        path = record(name, args.outdir, args.keep_workdir)
        print(f"{path.name}: {path.stat().st_size} bytes in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
