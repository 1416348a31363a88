"""Memory under abuse: ``stunscope analyze`` on captures built to overflow its tables.

Two captures are written to a temporary folder (classic microsecond pcap, Ethernet/IPv4/UDP):

* ``unanswered``: N Binding requests (default 1,000,000) from one client to one server, each with
  a unique transaction id, 20 µs apart, none answered: every one is an open transaction, far
  more than the open-transaction table holds within the 39.5 s RFC 8489 span.
* ``allocations``: N Allocate request/success pairs (default 100,000), each from its own client
  5-tuple, with XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS and LIFETIME 600: more allocations than
  the allocation table holds.

Each is analysed by ``python -m stunscope analyze FILE --format json`` in a child process; the
report gives wall and CPU time, packets per second, the child's peak RSS (``wait4``) and the evictions the
analysis reports in ``capture.evictions``. Nothing crashes, memory stays bounded.

Usage: ``python bench/abuse.py [--requests N] [--allocations N] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from stunscope.wire.encode import encode_message, encode_u32, encode_xor_address
from stunscope.wire.message import Endpoint

ROOT = Path(__file__).resolve().parent.parent
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
ETHERNET = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(src: Endpoint, dst: Endpoint, payload: bytes) -> bytes:
    """Ethernet + IPv4 (checksummed) + UDP (checksum 0, allowed over IPv4) + payload."""
    length = 28 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 0, 0x4000, 64, 17, 0,
                     bytes(map(int, src.ip.split("."))), bytes(map(int, dst.ip.split("."))))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ETHERNET + ip + struct.pack("!HHHH", src.port, dst.port, 8 + len(payload), 0) + payload


def _write(path: Path, frames: Iterator[tuple[float, bytes]]) -> int:
    count = 0
    with path.open("wb") as out:
        out.write(PCAP_HEADER)
        for ts, frame in frames:
            sec = int(ts)
            out.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(frame), len(frame)))
            out.write(frame)
            count += 1
    return count


def unanswered(n: int) -> Iterator[tuple[float, bytes]]:
    """``n`` Binding requests with unique transaction ids, never answered."""
    client, server = Endpoint("10.0.0.1", 40000), Endpoint("192.0.2.1", 3478)
    template = _frame(client, server, encode_message(1, 0, bytes(12), [], fingerprint=False))
    head, tail = template[:-12], b""
    for i in range(n):
        yield 1_700_000_000 + i * 0.00002, head + i.to_bytes(12, "big") + tail


def allocations(n: int) -> Iterator[tuple[float, bytes]]:
    """``n`` successful Allocates, each from its own client 5-tuple."""
    server = Endpoint("192.0.2.1", 3478)
    for i in range(n):
        client = Endpoint(f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", 40000 + i % 20000)
        txid = i.to_bytes(12, "big")
        ts = 1_700_000_000 + i * 0.0001
        yield ts, _frame(client, server, encode_message(3, 0, txid, [(0x0019, b"\x11\x00\x00\x00")],
                                                        fingerprint=False))
        relayed = Endpoint("192.0.2.1", 10000 + i % 50000)
        mapped = Endpoint("203.0.113.1", 1024 + i % 60000)
        yield ts + 0.00005, _frame(server, client, encode_message(3, 2, txid, [
            (0x0016, encode_xor_address(relayed, txid)),
            (0x0020, encode_xor_address(mapped, txid)),
            (0x000D, encode_u32(600)),
        ], fingerprint=False))


def measure(path: Path, packets: int) -> dict[str, object]:
    """Run ``stunscope analyze --format json`` on ``path`` in a child; time, peak RSS, evictions."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen([sys.executable, "-m", "stunscope", "analyze", str(path),
                                  "--format", "json"], stdout=out, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        doc = json.load(out)
    return {
        "file": path.name, "packets": packets, "exit": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "pps": round(packets / wall), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "transactions_listed": len(doc["transactions"]), "allocations_listed": len(doc["allocations"]),
        "evictions": {k: v for k, v in doc["capture"]["evictions"].items() if v},
        "verdicts": sorted({v["code"] for v in doc["verdicts"]}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--allocations", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="write the captures here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = []
        for name, count, make in (("unanswered", args.requests, unanswered),
                                  ("allocations", args.allocations, allocations)):
            if not count:
                continue
            path = folder / f"abuse-{name}.pcap"
            packets = _write(path, make(count))
            results.append(measure(path, packets))
            print(json.dumps(results[-1]), flush=True)
    return 0 if all(r["exit"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
