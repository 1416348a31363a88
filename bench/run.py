"""Time stunscope against tshark on the generated captures: wall time, packets/s, peak RSS.

Each tool runs as its own child process with stdout to /dev/null; its peak resident memory is
that child's ``ru_maxrss`` from ``os.wait4`` (so a child's children, if any, are not mixed in).
Rows:

- ``bare loop``: this file's ``--bare-loop`` mode: stunscope's record reader plus a STUN header
  unpack per UDP payload, the floor any Python decoder stands on;
- ``stunscope messages --format jsonl``;
- ``stunscope analyze --format json`` (when the command exists);
- ``tshark -r FILE -Y stun -T fields -e frame.number -e stun.type -e stun.id
  -e stun.att.ipv4-xord -e stun.att.port-xord`` (the issue's reference command).

Usage::

    python bench/run.py                      # 100k and 1M packets (generated when missing)
    python bench/run.py --packets 100000     # one size only, for a quick look

Results: a table on stdout and ``bench/out/results.json``. ``x tshark`` compares packets/s
(wall clock); ``cpu x`` compares CPU seconds, the fairer figure when other jobs share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(ROOT))

TSHARK_FIELDS = ["-T", "fields", "-e", "frame.number", "-e", "stun.type", "-e", "stun.id",
                 "-e", "stun.att.ipv4-xord", "-e", "stun.att.port-xord"]
TARGETS = {
    "stunscope messages --format jsonl": {"speedup": 2.0, "rss_mb": 100},
    "stunscope analyze --format json": {"speedup": 3.0, "rss_mb": 150},
}
"""Issue targets: packets/s relative to tshark, and peak memory."""


def bare_loop(path: Path) -> int:
    """Read every record with stunscope's reader and unpack the STUN header of UDP payloads."""
    from stunscope.capture.records import read_records

    header = struct.Struct("!HHI").unpack_from
    stun = 0
    for record in read_records(path):
        data = record.data
        # Ethernet (14) + IPv4 without options (20) + UDP (8): the generator's layout.
        if len(data) >= 62 and data[23] == 17:
            msg_type, _length, cookie = header(data, 42)
            if cookie == 0x2112A442 and msg_type < 0x4000:
                stun += 1
    return stun


def _analyze_exists() -> bool:
    """True when the ``analyze`` command is registered in this tree."""
    from stunscope.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return "analyze" in sub.choices


def measure(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd`` with stdout to /dev/null: wall seconds, peak RSS (MB), exit status."""
    with open(os.devnull, "wb") as devnull:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=devnull, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()[-300:]}")
    return {"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}


def capture(packets: int) -> Path:
    """The generated capture of ``packets`` frames (generated on first use)."""
    path = OUT / f"mixed-{packets}.pcap"
    if not path.exists():
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--packets", str(packets),
                        "--out", str(path)], check=True, stdout=subprocess.DEVNULL)
    return path


def run_size(packets: int) -> list[dict[str, object]]:
    """Every tool on the capture of ``packets`` frames."""
    path = capture(packets)
    stunscope = [sys.executable, "-m", "stunscope"]
    rows: list[tuple[str, list[str]]] = [
        ("bare loop (read records + STUN header)", [sys.executable, str(Path(__file__)), "--bare-loop", str(path)]),
        ("stunscope messages --format jsonl", [*stunscope, "messages", "--format", "jsonl", str(path)]),
    ]
    if _analyze_exists():
        rows.append(("stunscope analyze --format json", [*stunscope, "analyze", str(path), "--format", "json"]))
    tshark = shutil.which("tshark")
    if tshark:
        rows.append(("tshark -Y stun -T fields", [tshark, "-r", str(path), "-Y", "stun", *TSHARK_FIELDS]))
    results = []
    for name, cmd in rows:
        sys.stderr.write(f"  {packets:>9,} packets: {name} ...\n")
        figures = measure(cmd)
        results.append({"packets": packets, "tool": name, "command": " ".join(cmd[1:] if cmd[0] == sys.executable else cmd),
                        **figures, "pps": packets / figures["wall_s"]})
    reference = next((r for r in results if str(r["tool"]).startswith("tshark")), None)
    for row in results:
        row["vs_tshark"] = row["pps"] / reference["pps"] if reference else None
        row["vs_tshark_cpu"] = reference["cpu_s"] / row["cpu_s"] if reference and row["cpu_s"] else None
    return results


def table(results: list[dict[str, object]]) -> str:
    """A fixed-width table of every row, with the issue's targets."""
    lines = [f"{'packets':>9}  {'tool':<40} {'wall s':>7} {'cpu s':>7} {'pkt/s':>9} {'x tshark':>8} "
             f"{'cpu x':>6} {'peak MB':>8}  target"]
    for row in results:
        target = TARGETS.get(str(row["tool"]))
        goal = f">= {target['speedup']:.0f}x, < {target['rss_mb']} MB" if target else ""
        ratio = f"{row['vs_tshark']:.2f}" if row["vs_tshark"] else "-"
        cpu_ratio = f"{row['vs_tshark_cpu']:.2f}" if row["vs_tshark_cpu"] else "-"
        lines.append(f"{row['packets']:>9,}  {row['tool']:<40} {row['wall_s']:>7.2f} {row['cpu_s']:>7.2f} "
                     f"{row['pps']:>9,.0f} {ratio:>8} {cpu_ratio:>6} {row['rss_mb']:>8.1f}  {goal}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, action="append",
                        help="capture size (repeatable; default: 100000 and 1000000)")
    parser.add_argument("--bare-loop", type=Path, metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_loop:
        sys.stdout.write(f"{bare_loop(args.bare_loop)}\n")
        return 0
    results = []
    for packets in args.packets or [100_000, 1_000_000]:
        results += run_size(packets)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(table(results) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
