"""Rules: where they come from (TOML files, built-in profiles, ``--expect``) and running them.

A rules file::

    profile = "strict"              # or a list: profile = ["connectivity", "turn"]
    disable = ["few-retransmissions"]

    [[rule]]
    name = "allocate-fast"
    expect = 'p95(transactions.rtt_ms where method == "Allocate") < 200'
    severity = "error"              # or "warning": reported, never fails the run
    description = "Allocate answers within 200 ms"

A rule named like a profile rule replaces it in place. Unknown keys, bad severities, duplicate
names and expressions that do not parse are usage errors (exit 2) that name the file and rule.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stunscope.check.evaluation import Expression, Known, compile_expression, frames_of
from stunscope.check.expressions import ExpressionError
from stunscope.check.profiles import PROFILES
from stunscope.errors import UsageError

SEVERITIES = ("error", "warning")
_FILE_KEYS = {"profile", "disable", "rule"}
_RULE_KEYS = {"name", "expect", "severity", "description"}


@dataclass(frozen=True, slots=True)
class Rule:
    """One named expectation with its severity (``error`` fails the run, ``warning`` does not).

    ``expect`` is what people read; ``expression`` is None for checks that are not written in
    the rule language (the ``--baseline`` comparison).
    """

    name: str
    expect: str
    expression: Expression | None
    severity: str = "error"
    description: str = ""
    origin: str = ""


@dataclass(frozen=True, slots=True)
class RuleResult:
    """A rule's outcome: ``pass``, ``fail`` or ``error`` (could not be evaluated on this data)."""

    rule: Rule
    status: str
    found: list[str] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """True when the rule did not hold (whatever its severity)."""
        return self.status == "fail"

    def to_json(self) -> dict[str, Any]:
        """The rule's entry in ``check --format json``."""
        return {
            "name": self.rule.name,
            "expect": self.rule.expect,
            "severity": self.rule.severity,
            "description": self.rule.description,
            "status": self.status,
            "found": self.found,
            "frames": self.frames,
            "message": self.message,
        }


def make_rule(name: str, expect: str, severity: str = "error", description: str = "",
              origin: str = "") -> Rule:
    """Compile one rule; errors name the origin and the rule."""
    where = f"{origin}: " if origin else ""
    if severity not in SEVERITIES:
        raise UsageError(f"{where}rule {name!r}: severity must be one of {', '.join(SEVERITIES)}, "
                         f"not {severity!r}")
    try:
        expression = compile_expression(expect)
    except ExpressionError as exc:
        raise UsageError(f"{where}rule {name!r}: {exc}") from None
    return Rule(name, expect, expression, severity, description, origin)


def _rules_from_table(table: Mapping[str, Any], origin: str, seen: tuple[str, ...]) -> dict[str, Rule]:
    """Rules of one file or profile (includes first), by name, in order."""
    unknown = set(table) - _FILE_KEYS - ({"description"} if origin.startswith("profile ") else set())
    if unknown:
        raise UsageError(f"{origin}: unknown key {sorted(unknown)[0]!r} "
                         f"(known: {', '.join(sorted(_FILE_KEYS))})")
    rules: dict[str, Rule] = {}
    for name in _string_list(table.get("profile", []), origin, "profile"):
        rules.update(profile_rules(name, seen, origin))
    own: set[str] = set()
    entries = table.get("rule", [])
    if not isinstance(entries, list):
        raise UsageError(f"{origin}: 'rule' must be an array of tables ([[rule]])")
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise UsageError(f"{origin}: rule #{number} must be a table")
        extra = set(entry) - _RULE_KEYS
        if extra:
            raise UsageError(f"{origin}: rule #{number}: unknown key {sorted(extra)[0]!r} "
                             f"(known: {', '.join(sorted(_RULE_KEYS))})")
        name, expect = entry.get("name"), entry.get("expect")
        if not isinstance(name, str) or not name:
            raise UsageError(f"{origin}: rule #{number} needs a name")
        if not isinstance(expect, str):
            raise UsageError(f"{origin}: rule {name!r} needs expect = \"EXPRESSION\"")
        if name in own:
            raise UsageError(f"{origin}: rule {name!r} is defined twice")
        own.add(name)
        severity = entry.get("severity", "error")
        description = entry.get("description", "")
        if not isinstance(severity, str) or not isinstance(description, str):
            raise UsageError(f"{origin}: rule {name!r}: severity and description must be strings")
        rules[name] = make_rule(name, expect, severity, description, origin)
    for name in _string_list(table.get("disable", []), origin, "disable"):
        if rules.pop(name, None) is None:
            raise UsageError(f"{origin}: disable names no rule {name!r}")
    return rules


def _string_list(value: Any, origin: str, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise UsageError(f"{origin}: {key!r} must be a string or a list of strings")


def profile_rules(name: str, seen: tuple[str, ...] = (), origin: str = "") -> dict[str, Rule]:
    """The rules of a built-in profile and of the profiles it includes (``origin`` names the
    file that asked for it, for error messages)."""
    where = f"{origin}: " if origin else ""
    if name not in PROFILES:
        raise UsageError(f"{where}unknown profile {name!r} (known: {', '.join(PROFILES)})")
    if name in seen:
        raise UsageError(f"{where}profile {name!r} includes itself")
    return _rules_from_table(PROFILES[name], f"profile {name}", (*seen, name))


def load_rules_file(path: Path) -> dict[str, Rule]:
    """Read a TOML rules file; every problem is a one-line UsageError (exit 2)."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read rules file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    return _rules_from_table(table, str(path), ())


def collect_rules(files: Iterable[Path] = (), profiles: Iterable[str] = (),
                  expects: Iterable[str] = ()) -> list[Rule]:
    """Profiles, then files, then ``--expect`` expressions (named by their text); later wins."""
    rules: dict[str, Rule] = {}
    for name in profiles:
        rules.update(profile_rules(name))
    for path in files:
        rules.update(load_rules_file(path))
    for number, expect in enumerate(expects, 1):
        rules[expect] = make_rule(expect, expect, origin=f"--expect #{number}")
    return list(rules.values())


def reads_messages(rule: Rule) -> bool:
    """True when the rule has parts over ``messages`` (they need the capture, not a saved
    analysis; see :mod:`stunscope.check.message_tally`)."""
    return rule.expression is not None and bool(rule.expression.reducers)


def run_rule(rule: Rule, analysis: dict[str, Any], known: Known | None = None) -> RuleResult:
    """Evaluate one rule on an analysis JSON object (``known``: the results over messages)."""
    if rule.expression is None:
        raise ValueError(f"rule {rule.name!r} has no expression to evaluate")
    started = time.perf_counter()
    try:
        truth = rule.expression.evaluate(analysis, known)
    except ExpressionError as exc:
        return RuleResult(rule, "error", message=str(exc), seconds=time.perf_counter() - started)
    status = "pass" if truth.ok else "fail"
    return RuleResult(rule, status, truth.found, frames_of(truth.evidence),
                      seconds=time.perf_counter() - started)


def run_rules(rules: Iterable[Rule], analysis: dict[str, Any],
              known: Known | None = None) -> list[RuleResult]:
    """Evaluate every rule, in order."""
    return [run_rule(rule, analysis, known) for rule in rules]
