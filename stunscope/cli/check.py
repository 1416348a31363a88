"""``stunscope check FILE``: assert rules on a capture (or a saved analysis) for CI.

Rules come from ``--rules FILE`` (TOML), ``--profile NAME`` and ``--expect EXPR``; ``--baseline``
adds a comparison with an accepted analysis. Exit 0 when every error-severity rule holds, 1 when
one fails, 2 for usage errors (bad rules included), 3 when the input is damaged (after reporting
what the rules found in the part that was read).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stunscope.check.names import help_text
from stunscope.check.profiles import PROFILES, profile_help
from stunscope.cli import options

RULES_HELP = """\
The rule language (one expression per rule; `stunscope check FILE --expect EXPR`)

  rule        := or_expr
  or_expr     := and_expr ("or" and_expr)*
  and_expr    := not_expr ("and" not_expr)*
  not_expr    := "not" not_expr | ["any" | "all" | "no"] comparison
  comparison  := selection [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in"
                             | "has" | "matches") selection]
  selection   := operand ["where" or_expr]
  operand     := literal | [literal, ...] | FUNCTION "(" or_expr ")" | name("." name)*
                 | "(" or_expr ")"
  FUNCTION    := count | sum | min | max | avg | median | p1 .. p100
  literal     := number | "string" | 'string' | true | false | null

Meaning
  A path that crosses a list gives one value per item (transactions.rtt_ms). A comparison of
  many values with one value compares each; a rule holds when some value is true (an empty list
  never holds). `all X` holds when every value is true (or there is none), `no X` when none is,
  `any X` when one is; `Q LIST where COND` asks COND of each item. `LIST where COND` keeps the
  items for which COND holds; names in COND are the item's fields first, then the top level.
  A `where` condition runs to the end or to the closing parenthesis.
  count() counts non-null values; sum/min/max/avg/median/pNN skip nulls and give null on an
  empty list. Ordering comparisons with null are false. `LIST has X`: the list holds X, or an
  object whose code is X. `S matches "re"`: regular-expression search.
  A failing rule shows the value found and the frames of the objects it looked at.
  messages: one object per line of `stunscope messages --format jsonl` (same --credential and --sdp keys),
  read from the capture in one streaming pass (not from a saved analysis JSON); a part that
  reads them must count, aggregate, quantify or test them, and names the frames of the first
  10 messages it found. Attributes are matched by their RFC name.

Examples
  ice.connected
  ice.selected.relayed == false
  no verdicts where severity == "error"
  count(transactions where outcome == "timeout") == 0
  p95(transactions.rtt_ms where method == "Allocate") < 200
  max(transactions.retransmissions) <= 2
  all ice.pairs.rtt_ms < 50
  allocations.count >= 1
  verdicts has "ice-connected"
  integrity.valid and fingerprint.valid
  no messages where any attributes where name == "SOFTWARE" and value matches "coturn-4\\\\.5"
  no messages where method == "Allocate" and class == "request" and not attributes.name has "REQUESTED-TRANSPORT"
  count(messages where class == "error" and error_code == 438) <= 2

Names
{names}

Profiles (--profile NAME, or profile = "NAME" in a rules file)
{profiles}

Rules file (TOML)
  profile = "strict"                 # optional; a name or a list of names
  disable = ["few-retransmissions"]  # optional; drop rules the profiles brought in
  [[rule]]
  name = "allocate-fast"
  expect = 'p95(transactions.rtt_ms where method == "Allocate") < 200'
  severity = "error"                 # or "warning": reported, does not fail the run
  description = "Allocate answers within 200 ms"
"""

EPILOG = f"""\
examples:
  stunscope check call.pcapng --expect 'ice.connected' --expect 'ice.selected.relayed == false'
  stunscope check call.pcapng --profile strict --junit report.xml
  stunscope check call.pcapng --rules rules.toml --format json
  stunscope check call.pcapng --baseline accepted.json
  stunscope check call.pcapng --expect 'count(messages where fingerprint == "bad") == 0'
  stunscope check call.pcapng --expect 'max(messages.length) < 1200'   messages: capture only
  stunscope check --help-rules               the rule language, every name, the profiles

exit codes: 0 every error rule held, 1 a rule failed, 2 usage error or a rule that does not
parse, 3 unreadable or corrupt input (the rules still ran on what was read)

{options.CREDENTIALS_HELP}"""


class _RulesHelp(argparse.Action):
    """``--help-rules``: print the rule language reference and exit 0."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="describe the rule language, every name and the profiles, then exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        sys.stdout.write(RULES_HELP.format(names=help_text(), profiles=profile_help()))
        parser.exit(0)


def add_baseline_sdp(parser: argparse.ArgumentParser) -> None:
    """``--baseline-sdp``: the SDP of a baseline given as a capture (``--sdp`` is the new one's)."""
    parser.add_argument("--baseline-sdp", action="append", default=[], type=Path, metavar="FILE",
                        help="SDP for a baseline capture (repeatable); --sdp is for FILE")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check`` command."""
    parser = subparsers.add_parser(
        "check", help="assert rules on a capture (CI)",
        description="Assert rules on a capture or a saved analysis: a summary for people,\n"
                    "JUnit for the CI, an exit code for the pipeline.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_capture(parser, help_text="capture (pcap/pcapng, optionally gzip) or the JSON "
                                          "of `stunscope analyze --format json`")
    parser.add_argument("--rules", action="append", default=[], type=Path, metavar="FILE",
                        help="TOML rules file (repeatable)")
    parser.add_argument("--profile", action="append", default=[], choices=list(PROFILES),
                        metavar="NAME", help=f"built-in rules: {', '.join(PROFILES)} (repeatable)")
    parser.add_argument("--expect", action="append", default=[], metavar="EXPR",
                        help="a rule written inline (repeatable)")
    parser.add_argument("--baseline", type=Path, metavar="FILE",
                        help="also fail when the story differs from this accepted analysis "
                             "(JSON or capture); see `stunscope diff`")
    parser.add_argument("--rtt-tolerance-ms", type=float, default=None, metavar="MS",
                        help="with --baseline: median RTT change ignored below MS plus half the "
                             "baseline's value (default 50)")
    add_baseline_sdp(parser)
    parser.add_argument("--fail-on-warning", action="store_true",
                        help="a failed rule of severity warning fails the run too (exit 1)")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report")
    options.add_format(parser, ("text", "json"))
    options.add_analysis_input(parser)
    parser.add_argument("--help-rules", action=_RulesHelp)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the rules; returns the exit code (DESIGN.md)."""
    from stunscope.check import baseline, sources
    from stunscope.check.junit import write_junit
    from stunscope.check.outcome import CheckOutcome
    from stunscope.check.rules import collect_rules, reads_messages, run_rules
    from stunscope.errors import UsageError

    rules = collect_rules(args.rules, args.profile, args.expect)
    if not rules and args.baseline is None:
        raise UsageError("nothing to check: give --rules FILE, --profile NAME, --expect EXPR "
                         "or --baseline FILE (see --help-rules)")
    if args.baseline is None and (args.rtt_tolerance_ms is not None or args.baseline_sdp):
        raise UsageError("--rtt-tolerance-ms and --baseline-sdp need --baseline")
    path = options.capture_path(args)
    keyring = options.keyring(args)
    loaded = sources.load(path, keyring, args.sdp)
    known = None
    if any(reads_messages(rule) for rule in rules):  # a second, streaming pass over the capture
        from stunscope.check.message_tally import message_results
        from stunscope.analysis.sdp import keyring_with_sdp

        known = message_results(rules, path, loaded.analysis, keyring_with_sdp(keyring, args.sdp))
    results = run_rules(rules, loaded.analysis, known)
    if args.baseline is not None:
        accepted = sources.load(baseline_path(args.baseline), keyring, args.baseline_sdp)
        if accepted.error is not None:
            raise accepted.error
        tolerance = baseline.RTT_TOLERANCE_MS if args.rtt_tolerance_ms is None else args.rtt_tolerance_ms
        differences = baseline.compare(accepted.analysis, loaded.analysis, tolerance)
        results.append(baseline.baseline_result(differences, str(args.baseline)))
    outcome = CheckOutcome(str(path), results, loaded.error, args.fail_on_warning)
    if args.junit is not None:
        write_junit(outcome, args.junit)
    if args.format == "json":
        sys.stdout.write(json.dumps(outcome.to_json(), indent=2) + "\n")
    else:
        sys.stdout.write(outcome.render_text() + "\n")
    if loaded.error is not None:
        sys.stderr.write(f"stunscope: {loaded.error}\n")
    return outcome.exit_code


def baseline_path(path: Path) -> Path:
    """A baseline path that exists; InputError (exit 3) otherwise."""
    return options.capture_path(argparse.Namespace(file=path))
