"""``stunscope live``: capture STUN/TURN/ICE on an interface; the TUI, or messages as they happen.

Imported when the parser is built, so nothing heavy is imported here at module level: scapy comes
in with :mod:`stunscope.capture.live` when the command runs.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

from stunscope.errors import EXIT_OK, UsageError

DESCRIPTION = """\
Capture on an interface and show STUN, TURN and ICE as it happens: the TUI, or with --format
one line or one JSON object per message (and one per verdict as the analysis reaches it).
Ctrl-C or SIGTERM stops the capture cleanly: the -w file is complete, --rules are checked.
Needs root or CAP_NET_RAW."""

EPILOG = """\
examples:
  stunscope live                                   the TUI on loopback traffic
  stunscope live -i eth0 -w call.pcapng            the TUI, and every frame written as pcapng
  stunscope live --format jsonl --duration 30 --rules rules.toml -w run.pcapng
                                                   CI: record 30 s, stream JSON, check the rules
  stunscope live -w ring.pcapng --ring 10 --ring-size 50 --format text
                                                   keep the last 10 files of 50 MB
  stunscope live --list-interfaces

The default capture filter keeps UDP whose first payload byte is STUN (0-3) or ChannelData
(64-79) on any port, all TCP except ports 22, 443 and 5349, ICMP and IP fragments; it keeps out
media (RTP, DTLS), DNS/DHCP/NTP/mDNS/SSDP/LLMNR and SSH/TLS. -f '' captures everything.

jsonl: message objects as in `stunscope messages --format jsonl` (same frame numbers as the -w
file), and {"kind": "verdict", "code", "severity", "message", "frames"} for each new verdict.

exit codes: 0 ok, 1 a --rules/--expect check failed, 2 usage error or unknown interface,
3 no permission to capture (root or CAP_NET_RAW needed) or the -w file cannot be written"""


def register(subparsers: Any) -> None:
    """Add the ``live`` command."""
    parser = subparsers.add_parser(
        "live",
        help="capture live: the TUI, or messages and verdicts as they happen",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-i", "--interface", default="lo", metavar="IFACE",
                        help="interface to capture on (default: lo)")
    parser.add_argument("-f", "--filter", default=None, metavar="BPF",
                        help="capture filter in tcpdump syntax (default: STUN/TURN only, see below)")
    parser.add_argument("-w", "--write", metavar="FILE.pcapng",
                        help="write every captured frame to this pcapng file, flushed every 200 ms")
    parser.add_argument("--ring", type=_positive_int, metavar="N",
                        help="with -w: rotate FILE_00001.pcapng, FILE_00002.pcapng ... keeping N")
    parser.add_argument("--ring-size", type=_positive_float, metavar="MB",
                        help="with --ring: rotate after MB megabytes (10^6 bytes; default 100)")
    parser.add_argument("-D", "--list-interfaces", action="store_true",
                        help="list the interfaces and exit")
    parser.add_argument("--format", choices=("text", "jsonl"),
                        help="no TUI: one text line or JSON object per message, line-buffered")
    parser.add_argument("--duration", type=_positive_float, metavar="S",
                        help="stop after S seconds")
    parser.add_argument("-c", "--count", type=_positive_int, metavar="N",
                        help="stop after N captured frames")
    parser.add_argument("--queue-size", type=_positive_int, default=100_000, metavar="N",
                        help="frames waiting for the analysis before new ones are dropped "
                        "(counted; the -w file still gets them; default 100000)")
    parser.set_defaults(func=run)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _validate(args: argparse.Namespace) -> None:
    if args.ring is not None and not args.write:
        raise UsageError("--ring needs -w FILE.pcapng (the base name of the ring's files)")
    if args.ring_size is not None and args.ring is None:
        raise UsageError("--ring-size needs --ring N (how many files to keep)")


def run(args: argparse.Namespace) -> int:
    """Run ``stunscope live``."""
    from stunscope.capture import live

    if args.list_interfaces:
        for iface in live.list_interfaces():
            print(iface)
        return EXIT_OK
    _validate(args)
    bpf = live.DEFAULT_FILTER if args.filter is None else args.filter
    if args.format is None:
        raise UsageError("the live TUI is not available yet; use --format text or --format jsonl")
    capture = live.LiveCapture(
        args.interface,
        bpf or None,
        queue_size=args.queue_size,
        write=args.write,
        ring=args.ring,
        ring_size_mb=args.ring_size,
        count=args.count,
        duration_s=args.duration,
    )
    described = "the default STUN/TURN filter" if args.filter is None else repr(bpf or "none")
    sys.stderr.write(f"stunscope: capturing on {args.interface} ({described}); Ctrl-C stops\n")
    sys.stderr.flush()
    try:
        with _stop_on_signals(capture.request_stop):
            _stream(capture, args.format, sys.stdout)
    finally:
        capture.stop()
        sys.stderr.write(f"stunscope: {capture.stats()}\n")
    return EXIT_OK


class _stop_on_signals:
    """While active, SIGINT and SIGTERM call ``stop`` once; a second SIGINT interrupts."""

    def __init__(self, stop: Callable[[], None]) -> None:
        self._stop = stop
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self._stop is None:
            raise KeyboardInterrupt
        if self._stop is not None:
            self._stop()
            self._stop = None  # type: ignore[assignment]

    def __enter__(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _stream(capture: Any, fmt: str, out: TextIO) -> None:
    """Print each event as it is decoded."""
    from stunscope.capture.stream import iter_events
    from stunscope.report.messages import MessageFormatter

    formatter = MessageFormatter()
    if fmt == "jsonl":
        import orjson

        def render(event: Any) -> str:
            return orjson.dumps(formatter.to_json(event)).decode()
    else:
        render = formatter.line
    for event in iter_events(capture.records()):
        out.write(render(event) + "\n")
        out.flush()
