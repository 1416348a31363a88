"""The result of ``stunscope check``: rule results, the summary for people, JSON, exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stunscope.check.rules import RuleResult
from stunscope.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, InputError
from stunscope.wire.text import safe_text

SCHEMA = "stunscope.check/1"
_SHOWN_FRAMES = 20


def frame_list(frames: Sequence[int], most: int = _SHOWN_FRAMES) -> str:
    """``1, 2, 3, … 7 more`` (frames as tshark and Wireshark number them)."""
    shown = ", ".join(str(f) for f in frames[:most])
    return shown + (f", … {len(frames) - most} more" if len(frames) > most else "")


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """Every rule's result on one input, and the error met reading it, if any."""

    source: str
    results: list[RuleResult]
    input_error: InputError | None = None
    fail_on_warning: bool = False

    def fails_run(self, result: RuleResult) -> bool:
        """True when ``result`` makes the run fail: a failed error rule, or with
        ``fail_on_warning`` a failed warning rule too."""
        return result.failed and (result.rule.severity == "error" or self.fail_on_warning)

    @property
    def failures(self) -> list[RuleResult]:
        """Failed rules of severity error (these fail the run)."""
        return [r for r in self.results if r.failed and r.rule.severity == "error"]

    @property
    def warnings(self) -> list[RuleResult]:
        """Failed rules of severity warning (reported, the run still passes)."""
        return [r for r in self.results if r.failed and r.rule.severity == "warning"]

    @property
    def errors(self) -> list[RuleResult]:
        """Rules that could not be evaluated on this data."""
        return [r for r in self.results if r.status == "error"]

    @property
    def exit_code(self) -> int:
        """2 when a rule could not be evaluated, 3 when the input was damaged, 1 when a rule
        failed the run (see ``fails_run``), else 0."""
        if self.errors:
            return EXIT_USAGE
        if self.input_error is not None:
            return EXIT_BAD_INPUT
        return EXIT_CHECK_FAILED if any(self.fails_run(r) for r in self.results) else EXIT_OK

    def summary(self) -> str:
        """``3 passed, 1 failed, 1 warning`` ."""
        passed = sum(1 for r in self.results if r.status == "pass")
        parts = [f"{passed} passed", f"{len(self.failures)} failed"]
        if self.warnings:
            parts.append(f"{len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''}"
                         + (" (failing: --fail-on-warning)" if self.fail_on_warning else ""))
        if self.errors:
            parts.append(f"{len(self.errors)} could not be evaluated")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The ``check --format json`` object."""
        return {
            "schema": SCHEMA,
            "source": self.source,
            "passed": self.exit_code == EXIT_OK,
            "exit_code": self.exit_code,
            "input_error": None if self.input_error is None else str(self.input_error),
            "summary": {
                "rules": len(self.results),
                "passed": sum(1 for r in self.results if r.status == "pass"),
                "failed": len(self.failures),
                "warnings": len(self.warnings),
                "errors": len(self.errors),
            },
            "rules": [r.to_json() for r in self.results],
        }

    def render_text(self) -> str:
        """The summary for people: one line per rule, details under the ones that did not pass."""
        lines = [f"stunscope check {self.source}: {len(self.results)} rules"]
        for result in self.results:
            lines.extend(result_lines(result))
        if self.input_error is not None:
            lines.append(f"  INPUT  {self.input_error} (rules ran on what was read before it)")
        verdict = "FAILED" if self.exit_code else "OK"
        lines.append(f"{verdict}: {self.summary()}")
        return "\n".join(safe_text(line) for line in lines)


def result_lines(result: RuleResult) -> list[str]:
    """A rule's line, and for one that did not pass: expected, found, evidence frames."""
    rule = result.rule
    if result.status == "pass":
        return [f"  pass   {rule.name}"]
    if result.status == "error":
        return [f"  ERROR  {rule.name}: {result.message}"]
    label = "FAIL " if rule.severity == "error" else "WARN "
    lines = [f"  {label}  {rule.name}" + (f" — {rule.description}" if rule.description else "")]
    lines.append(f"         expected: {rule.expect}")
    for found in result.found:
        lines.append(f"         found:    {found}")
    lines.append(f"         frames:   {frame_list(result.frames) if result.frames else '(none)'}")
    return lines
