"""Command-line entry point: ``stunscope COMMAND ...`` (and ``stunscope FILE`` opens the TUI).

Each command lives in its own module with ``register(subparsers)``, which adds a parser whose
``func(args) -> int`` runs it. Commands import heavy packages (textual, scapy, pyshark) lazily.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from stunscope import __version__
from stunscope.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_USAGE, StunscopeError
from stunscope.wire.text import safe_text

# Command name -> module under stunscope.cli. Kept in help order.
COMMANDS = {
    "messages": "messages",
    "decode": "decode",
    "analyze": "analyze",
    "check": "check",
    "diff": "diff",
    "open": "open",
    "live": "live",
    "crosscheck": "crosscheck",
}

EPILOG = """\
examples:
  stunscope messages call.pcapng                 one line per STUN/TURN message
  stunscope messages call.pcapng --format jsonl  JSON Lines for scripts
  stunscope analyze call.pcapng                  what happened and why it failed
  stunscope check call.pcapng --expect 'ice.connected'
  stunscope call.pcapng                          open the TUI

exit codes: 0 ok, 1 a check failed, 2 usage error, 3 unreadable or corrupt input
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"stunscope: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every command registered, or just ``only`` (so a command imports
    what it needs and no other command's modules: start-up stays short)."""
    parser = _Parser(
        prog="stunscope",
        description="Analyze STUN, TURN and ICE traffic in captures or live.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"stunscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            mod = importlib.import_module(f"stunscope.cli.{module}")
        except ModuleNotFoundError as exc:  # a command not built yet
            if exc.name != f"stunscope.cli.{module}":
                raise
            continue
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and not args_list[0].startswith("-") and args_list[0] not in COMMANDS:
        args_list.insert(0, "open")  # `stunscope FILE` opens the TUI
    parser = build_parser(args_list[0] if args_list and args_list[0] in COMMANDS else None)
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except StunscopeError as exc:
        sys.stderr.write(f"stunscope: {safe_text(str(exc))}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `stunscope messages big.pcap | head`: the reader is gone; stop quietly.
        _detach_stdout()
        return 0
    except OSError as exc:
        # Output that cannot be written (full disk, closed terminal) or a file that cannot be read.
        _detach_stdout()
        where = safe_text(str(exc.filename)) if exc.filename else "output"
        sys.stderr.write(f"stunscope: {where}: {safe_text(exc.strerror or str(exc))}\n")
        return EXIT_BAD_INPUT


def _detach_stdout() -> None:
    """Point stdout at /dev/null so Python's flush at exit cannot fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
