"""``stunscope diff BASELINE NEW``: has the story changed since an accepted run?

Each side is the JSON of ``stunscope analyze --format json`` or a capture (analysed on the fly).
Run-to-run noise is ignored (timestamps, addresses, ports, transaction ids, nonces, ufrags, RTTs
within a tolerance); what is compared is listed in :mod:`stunscope.check.baseline`. Exit 0 when
nothing changed, 1 when something did (the differences are printed), 2 usage, 3 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stunscope.cli import options
from stunscope.cli.check import add_baseline_sdp

EPILOG = f"""\
examples:
  stunscope analyze accepted.pcapng --format json > baseline.json
  stunscope diff baseline.json today.pcapng
  stunscope diff yesterday.pcapng today.pcapng --format json

compared: verdict codes and severities; per ICE session its state, the candidate types (sorted) of
the selected pair (host/srflx/prflx/relay) and of the pairs that succeeded; per allocation its
transport, state, permission and channel counts; per method the set of transaction outcomes and
the median RTT (changed beyond --rtt-tolerance-ms plus half the baseline's value); NAT behaviour.

exit codes: 0 no change, 1 changed, 2 usage error, 3 unreadable or corrupt input

{options.CREDENTIALS_HELP}"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``diff`` command."""
    parser = subparsers.add_parser(
        "diff", help="compare an analysis with an accepted baseline",
        description="Compare the story of an analysis with an accepted baseline, ignoring what\n"
                    "changes from run to run.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline", metavar="BASELINE", type=Path,
                        help="accepted analysis JSON or capture")
    parser.add_argument("file", metavar="NEW", type=Path, help="analysis JSON or capture to compare")
    parser.add_argument("--rtt-tolerance-ms", type=float, default=None, metavar="MS",
                        help="median RTT changes below MS plus half the baseline's value are "
                             "noise (default 50)")
    add_baseline_sdp(parser)
    options.add_format(parser, ("text", "json"))
    options.add_analysis_input(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compare; returns 0 (same), 1 (changed) or 3 (an input was damaged)."""
    from stunscope.check import baseline, sources
    from stunscope.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK
    from stunscope.wire.text import safe_text

    base_path = options.capture_path(argparse.Namespace(file=args.baseline))
    new_path = options.capture_path(args)
    keyring = options.keyring(args)
    accepted = sources.load(base_path, keyring, args.baseline_sdp)
    fresh = sources.load(new_path, keyring, args.sdp)
    tolerance = baseline.RTT_TOLERANCE_MS if args.rtt_tolerance_ms is None else args.rtt_tolerance_ms
    differences = baseline.compare(accepted.analysis, fresh.analysis, tolerance)
    if args.format == "json":
        document = {"schema": "stunscope.diff/1", "baseline": str(base_path), "new": str(new_path),
                    "changed": bool(differences), "differences": [d.to_json() for d in differences]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif differences:
        lines = [f"changed: {len(differences)} difference{'s' if len(differences) > 1 else ''} "
                 f"from {base_path} to {new_path}"]
        lines += [f"  {d.describe()}" for d in differences]
        sys.stdout.write("\n".join(safe_text(line) for line in lines) + "\n")
    else:
        sys.stdout.write(safe_text(f"no change: {new_path} tells the same story as {base_path}") + "\n")
    damaged = [loaded.error for loaded in (accepted, fresh) if loaded.error is not None]
    for error in damaged:
        sys.stderr.write(safe_text(f"stunscope: {error}") + "\n")
    if damaged:
        return EXIT_BAD_INPUT
    return EXIT_CHECK_FAILED if differences else EXIT_OK
