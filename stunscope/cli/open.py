"""``stunscope open FILE`` (and plain ``stunscope FILE``): the TUI on a capture file.

Textual is imported inside :func:`run`, so building the parser stays light (DESIGN.md
principle 9).
"""

from __future__ import annotations

import argparse

from stunscope.cli import options

EPILOG = f"""\
examples:
  stunscope open call.pcapng
  stunscope call.pcapng                    the same
  stunscope open turn.pcapng --credential alice:secret     verify MESSAGE-INTEGRITY
  stunscope open ice.pcapng --sdp offer.sdp --sdp answer.sdp

The first rows show at once; the rest loads in the background (progress in the status line).
Press ? in the TUI for the keys and the filter language.

{options.CREDENTIALS_HELP}"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``open`` command."""
    parser = subparsers.add_parser(
        "open", help="open a capture in the TUI (also: stunscope FILE)",
        description="Browse a capture: timeline, ladder, message detail and hex, ICE sessions, "
                    "TURN allocations and verdicts.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_capture(parser)
    options.add_analysis_input(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the TUI on ``args.file`` until the user quits; returns the exit code."""
    path = options.capture_path(args)
    keyring = options.keyring(args)
    from stunscope.tui.app import open_file  # textual is imported only here

    open_file(path, keyring, args.sdp).run()
    return 0
