"""``stunscope live``: capture STUN/TURN/ICE on an interface; the TUI, or messages as they happen.

Imported when the parser is built, so nothing heavy is imported here at module level: scapy comes
in with :mod:`stunscope.capture.live`, textual with :mod:`stunscope.tui.app`, when the command runs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from stunscope.cli import options
from stunscope.errors import EXIT_OK, InputError, UsageError

DESCRIPTION = """\
Capture on an interface, or on all of them (-i any), and show STUN, TURN and ICE as it happens:
the TUI, or with --format one line or one JSON object per message, and one per verdict as the
analysis reaches it.
Ctrl-C or SIGTERM stops the capture cleanly: the -w file is complete, the rules are checked.
Needs root or CAP_NET_RAW."""

EPILOG = f"""\
examples:
  stunscope live                                   the TUI on loopback traffic
  stunscope live -i eth0 -w call.pcapng            the TUI, and every frame written as pcapng
  stunscope live -i any --format jsonl -w all.pcapng
                                                   every interface at once (a TURN server's
                                                   clients on one, its relays on another)
  stunscope live --format jsonl --duration 30 --rules rules.toml -w run.pcapng
                                                   CI: record 30 s, stream JSON, check the rules
  stunscope live -w ring.pcapng --ring 10 --ring-size 50 --format text
                                                   keep the last 10 files of 50 MB
  stunscope live --list-interfaces

The default capture filter keeps UDP whose first payload byte is STUN (0-3) or ChannelData
(64-127, RFC 5766 channels) on any port, all TCP except ports 22, 443 and 5349, ICMP and IP
fragments; it keeps out media (RTP, DTLS), DNS/DHCP/NTP/mDNS/SSDP/LLMNR and SSH/TLS.
-f '' captures everything.

-i any, as tcpdump's: every interface, and those that come up during the capture. Frames are
written as Linux cooked capture v2 (SLL2: the interface index and the direction of each packet,
without link-layer headers); a packet on lo is kept once, not leaving and arriving. A filter
on link-layer fields (ether, vlan) or the frame length (greater, less) cannot run there and is
refused (exit 2); inbound, outbound and ifindex N can.

jsonl: message objects as in `stunscope messages --format jsonl`, with the frame numbers of the
-w file; {{"kind": "verdict", ...}} (the fields of `analyze --format json` verdicts) for each new
verdict; with rules {{"kind": "check", ...}} (`check --format json`); last
{{"kind": "capture", "captured", "dropped_queue", "dropped_kernel"}}. Packet and drop counts
also go to stderr at the end.

exit codes: 0 ok, 1 a --rules/--profile/--expect rule failed, 2 usage error, unknown interface or
bad filter, 3 no permission to capture (root or CAP_NET_RAW needed), -w cannot be written, or the
interface went away during the capture (what was captured is still reported)

{options.CREDENTIALS_HELP}"""

SNAPSHOT_INTERVAL_S = 0.5
"""How often, at most, the analysis is re-run to find new verdicts while traffic flows (and
only when the capture queue has drained, so a backlog is never slowed down by it)."""


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
                        help="interface to capture on, or any for all (default: lo)")
    parser.add_argument("-f", "--filter", default=None, metavar="BPF",
                        help="capture filter, tcpdump syntax (default: STUN/TURN only, see below)")
    parser.add_argument("-w", "--write", metavar="FILE.pcapng",
                        help="write every captured frame to this pcapng file, flushed every 200 ms")
    parser.add_argument("--ring", type=_positive_int, metavar="N",
                        help="with -w: rotate FILE_00001.pcapng, FILE_00002.pcapng ... keeping N")
    parser.add_argument("--ring-size", type=_positive_float, metavar="MB",
                        help="with --ring: rotate after MB megabytes (10^6 bytes; default 100)")
    parser.add_argument("-D", "--list-interfaces", action="store_true",
                        help="list the interfaces and exit")
    parser.add_argument("--format", choices=("text", "jsonl"),
                        help="no TUI: a text line or JSON object per message and verdict")
    parser.add_argument("--duration", type=_positive_float, metavar="S",
                        help="stop after S seconds")
    parser.add_argument("-c", "--count", type=_positive_int, metavar="N",
                        help="stop after N captured frames")
    parser.add_argument("--queue-size", type=_positive_int, default=100_000, metavar="N",
                        help="frames waiting for the analysis before new ones are dropped "
                        "(counted; the -w file still gets them; default 100000)")
    parser.add_argument("--rules", action="append", default=[], type=Path, metavar="FILE",
                        help="with --format: TOML rules checked when the capture stops (repeatable)")
    parser.add_argument("--profile", action="append", default=[], metavar="NAME",
                        help="with --format: built-in rules, as `stunscope check` (repeatable)")
    parser.add_argument("--expect", action="append", default=[], metavar="EXPR",
                        help="with --format: a rule written inline (repeatable)")
    options.add_analysis_input(parser)
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
    if args.format is None and (args.rules or args.profile or args.expect):
        raise UsageError("--rules, --profile and --expect need --format text or jsonl")


def run(args: argparse.Namespace) -> int:
    """Run ``stunscope live``; returns the exit code."""
    from stunscope.capture import live
    from stunscope.check.rules import collect_rules

    if args.list_interfaces:
        for iface in live.list_interfaces():
            print(iface)
        return EXIT_OK
    _validate(args)
    rules = collect_rules(args.rules, args.profile, args.expect)  # bad rules: exit 2 up front
    keyring = options.keyring(args)
    bpf = live.DEFAULT_FILTER if args.filter is None else args.filter
    capture = live.LiveCapture(
        args.interface, bpf or None, queue_size=args.queue_size, write=args.write,
        ring=args.ring, ring_size_mb=args.ring_size, count=args.count, duration_s=args.duration,
    )
    described = "the default STUN/TURN filter" if args.filter is None else repr(bpf or "none")
    sys.stderr.write(f"stunscope: capturing on {args.interface} ({described}); Ctrl-C stops\n")
    sys.stderr.flush()
    try:
        if args.format is None:
            _tui(capture, args.interface)
            code = EXIT_OK
        else:
            code = _headless(capture, args, keyring, rules)
    finally:
        capture.stop()
        sys.stderr.write(f"stunscope: {capture.stats()}\n")
    if capture.error is not None:  # what was captured is reported above; exit 3
        raise capture.error
    return code


def _headless(capture: Any, args: argparse.Namespace, keyring: Any, rules: list[Any]) -> int:
    """Stream messages and verdicts until the capture stops, then check the rules."""
    from stunscope.analysis import Analyzer
    from stunscope.capture.stats import CaptureStats

    analyzer = Analyzer(keyring, args.sdp, file=args.write or f"live:{args.interface}",
                        stats=CaptureStats())
    stream = _Stream(analyzer, args.format, sys.stdout)
    try:
        with _StopOnSignals(capture.request_stop):
            analysis = stream.run(capture)
        capture.stop()
        return stream.finish(analysis, rules, capture.stats())
    except BrokenPipeError:
        raise  # `| head`: the CLI ends quietly
    except OSError as exc:  # stdout on a full disk, over a file size limit...
        raise InputError(f"cannot write the output: {exc.strerror or exc}") from None


def _tui(capture: Any, iface: str) -> None:
    """The TUI on the live records until the user quits; SIGTERM quits it too. Drops are counted
    in the status bar, refreshed whenever the capture queue has drained."""
    from stunscope.tui.app import StunscopeApp

    shown = 0

    def on_idle() -> None:  # in the app's loader thread
        nonlocal shown
        if not app.is_running:  # the loader must end for the app's shutdown to finish
            capture.request_stop()
            return
        stats = capture.stats()
        if stats.dropped > shown:
            shown = stats.dropped
            app.call_from_thread(app.capture_dropped, stats.dropped, str(stats))

    app = StunscopeApp(capture.records(on_idle=on_idle), title=f"stunscope live: {iface}",
                       live=True)

    def terminate() -> None:
        capture.request_stop()
        app.exit()

    with _StopOnSignals(terminate, signals=(signal.SIGTERM,)):
        app.run()


class _StopOnSignals:
    """While active, the first of ``signals`` calls ``stop``; a second SIGINT interrupts."""

    def __init__(self, stop: Callable[[], None],
                 signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self._stop: Callable[[], None] | None = stop
        self._signals = signals
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop is None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        stop, self._stop = self._stop, None
        stop()

    def __enter__(self) -> None:
        for signum in self._signals:
            self._previous[signum] = signal.signal(signum, self._handle)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class _Stream:
    """Messages as they are decoded, verdicts as the analysis finds them, in text or JSON Lines.

    Output is written as events come and flushed whenever the capture queue runs empty, so a
    reader sees each message at once without a write per line under load.
    """

    def __init__(self, analyzer: Any, fmt: str, out: TextIO) -> None:
        from stunscope.report.messages import MessageFormatter

        self.analyzer = analyzer
        self.formatter = MessageFormatter(analyzer.keyring)
        self.jsonl = fmt == "jsonl"
        self.out = out
        self._emitted: set[tuple[str, str]] = set()
        self._fed = False
        self._next_snapshot = 0.0

    def _json(self, obj: dict[str, Any]) -> None:
        import orjson

        self.out.write(orjson.dumps(obj).decode() + "\n")

    def run(self, capture: Any) -> Any:
        """Stream until the capture ends; return the final analysis."""
        from stunscope.capture.stream import iter_events

        stats = self.analyzer.stats
        feed, write = self.analyzer.feed, self.out.write
        if self.jsonl:
            import orjson

            to_json, dumps = self.formatter.to_json, orjson.dumps

            def render(event: Any) -> str:
                return dumps(to_json(event)).decode()
        else:
            render = self.formatter.line
        for event in iter_events(capture.records(on_idle=self._idle), stats=stats):
            write(render(event) + "\n")
            feed(event)
            self._fed = True
        analysis = self._verdicts(final=True)
        self.out.flush()
        return analysis

    def _idle(self) -> None:
        now = time.monotonic()
        if self._fed and now >= self._next_snapshot:
            self._fed = False
            self._verdicts(final=False)
            took = time.monotonic() - now  # a big analysis takes long: keep it under 20 %
            self._next_snapshot = now + max(SNAPSHOT_INTERVAL_S, 5 * took)
        self.out.flush()

    def _verdicts(self, final: bool) -> Any:
        """Take a snapshot of the analysis and print the verdicts not printed yet."""
        from stunscope.analysis.results import jsonable

        analysis = self.analyzer.snapshot(final=final)
        for verdict in analysis.verdicts:
            key = (verdict.code, verdict.subject)
            if key in self._emitted:
                continue
            self._emitted.add(key)
            if self.jsonl:
                self._json({"kind": "verdict", **jsonable(verdict)})
            else:
                frames = ", ".join(map(str, verdict.frames))
                self.out.write(f"verdict {verdict.severity} {verdict.code}: {verdict.message}"
                               f" (frames {frames})\n")
        return analysis

    def finish(self, analysis: Any, rules: list[Any], stats: Any) -> int:
        """Check the rules on the final analysis, print the outcome; return the exit code."""
        from stunscope.check.outcome import CheckOutcome
        from stunscope.check.rules import run_rules

        code = EXIT_OK
        if rules:
            outcome = CheckOutcome(str(self.analyzer.file), run_rules(rules, analysis.to_json()))
            sys.stderr.write(outcome.render_text() + "\n")
            if self.jsonl:
                self._json({"kind": "check", **outcome.to_json()})
            code = outcome.exit_code
        if self.jsonl:
            self._json({"kind": "capture", "captured": stats.captured,
                        "dropped_queue": stats.dropped_queue,
                        "dropped_kernel": stats.dropped_kernel})
        self.out.flush()
        return code
