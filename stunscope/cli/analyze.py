"""``stunscope analyze FILE``: what happened and why it failed (transactions, TURN, ICE, NAT).

Streams the capture through :class:`~stunscope.analysis.Analyzer`. On a damaged capture the
analysis of everything read before the damage is printed, then one line on stderr, exit 3.
A large capture file is read by a second process (:mod:`stunscope.capture.pipeline`; the
environment variable ``STUNSCOPE_PARALLEL=0`` keeps it in one), with the same result.
"""

from __future__ import annotations

import argparse
import sys

from stunscope.analysis import analyze_file
from stunscope.cli import options
from stunscope.errors import EXIT_OK

EPILOG = f"""\
examples:
  stunscope analyze call.pcapng                         verdicts, ICE pairs, TURN, NAT
  stunscope analyze call.pcapng --format json           the JSON contract (schema stunscope.analysis/1)
  stunscope analyze call.pcapng --sdp offer.sdp --sdp answer.sdp
  stunscope analyze turn.pcap --credential alice:secret verify TURN MESSAGE-INTEGRITY

Requests unanswered 39.5 s after their first transmission (RFC 8489 §6.2.1) are timeouts;
those still open when the capture ends are timeouts with ended_by "capture-end".

{options.CREDENTIALS_HELP}
exit codes: 0 ok, 2 usage error, 3 unreadable or damaged capture (after printing the analysis
of what was read)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``analyze`` command."""
    parser = subparsers.add_parser(
        "analyze", help="what happened and why it failed",
        description="Reconstruct transactions, TURN allocations, ICE sessions and NAT behaviour "
                    "from a capture, and say what went wrong with the frames that prove it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_capture(parser)
    options.add_format(parser, ("text", "json"))
    options.add_analysis_input(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Analyse ``args.file`` and print the report; returns the exit code."""
    path = options.capture_path(args)
    analysis, damage = analyze_file(path, keyring=options.keyring(args), sdp=args.sdp)
    if args.format == "json":
        import orjson

        # orjson writes the frozen dataclasses natively: the same object as to_json(), faster.
        sys.stdout.buffer.write(orjson.dumps(analysis, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        from stunscope.report.analysis_text import render

        sys.stdout.write(render(analysis))
    sys.stdout.flush()
    if damage is not None:
        raise damage
    return EXIT_OK
