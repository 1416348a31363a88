"""``stunscope crosscheck FILE``: compare stunscope's decoding of a capture with tshark's.

Runs tshark once (found through pyshark) and stunscope over the same file and prints, per
message, where the two disagree on frame, method, class, transaction id, mapped/relayed/peer
addresses, error code and fingerprint status. Disagreements that match a documented tshark
error (docs/tshark-disagreements.md) are labelled ``known``; the exit code says whether any
other remains.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from typing import TYPE_CHECKING

from stunscope.cli import options
from stunscope.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK
from stunscope.wire.text import safe_text

if TYPE_CHECKING:  # the comparison module is imported when the command runs, not at start-up
    from stunscope.report.crosscheck import CrosscheckResult

EPILOG = """\
examples:
  stunscope crosscheck call.pcapng                 disagreements and a summary
  stunscope crosscheck call.pcapng --unexplained   only what no documented case explains

Messages tunnelled in ChannelData or Send/Data (tshark shows them as data) and STUN quoted in
ICMP errors (not traffic for stunscope) are counted, not compared.

exit codes: 0 every disagreement is a documented tshark case, 1 unexplained disagreements,
            2 usage error, 3 tshark/pyshark missing or the capture is unreadable
            (a damaged capture is compared up to the damage, then exit 3)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``crosscheck`` command."""
    parser = subparsers.add_parser(
        "crosscheck", help="compare stunscope's decoding with tshark's",
        description="Decode a capture with stunscope and with tshark and list where they disagree.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_capture(parser)
    parser.add_argument("--unexplained", action="store_true",
                        help="list only disagreements that no documented tshark case explains")
    parser.set_defaults(func=run)


def report_lines(result: CrosscheckResult, unexplained_only: bool = False) -> list[str]:
    """The disagreement lines and the summary of one comparison."""
    from stunscope.report.crosscheck import KNOWN_CASES

    lines = []
    for dis in result.disagreements:
        if unexplained_only and dis.known:
            continue
        label = f"known: {dis.case}" if dis.known else "UNEXPLAINED"
        lines.append(f"frame {dis.frame:>6}  {dis.field:<11} stunscope={safe_text(repr(dis.ours))} "
                     f"tshark={safe_text(repr(dis.theirs))}  [{label}]")
    by_case = Counter(d.case for d in result.disagreements if d.known)
    lines.append(
        f"{result.compared} messages compared, {result.ours_only} only in stunscope, "
        f"{result.theirs_only} only in tshark; {len(result.disagreements)} disagreements, "
        f"{len(result.unexplained)} unexplained; not compared: {result.tunnelled} tunnelled, "
        f"{result.icmp_quoted} quoted in ICMP")
    for case, count in sorted(by_case.items()):
        lines.append(f"  known {case}: {count} — {KNOWN_CASES[case][0]}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Compare and print; exit 0 when everything is explained, 1 otherwise, 3 on bad input."""
    from stunscope.report.crosscheck import crosscheck

    path = options.capture_path(args)
    result = crosscheck(path)
    sys.stdout.write("\n".join(report_lines(result, args.unexplained)) + "\n")
    sys.stdout.flush()
    if result.error is not None:
        sys.stderr.write(f"stunscope: {safe_text(result.error)} (compared up to the damage)\n")
        return EXIT_BAD_INPUT
    return EXIT_CHECK_FAILED if result.unexplained else EXIT_OK
