"""Test helpers: an analysis with query methods, and assertions that show evidence frames.

Used by the pytest plugin's fixtures, and usable from any test::

    from stunscope.check.assertions import assert_connected, assert_no_verdict, assert_rule

    def test_call_connects(stunscope_capture):
        analysis = stunscope_capture("call.pcapng")
        assert_connected(analysis)
        assert_no_verdict(analysis, severity="error")
        assert_rule(analysis, 'p95(transactions.rtt_ms where method == "Binding") < 50')
        assert_rule(analysis, 'count(messages where fingerprint == "bad") == 0')
        assert analysis.selected_pair["local_type"] == "host"

A failed assertion raises ``AssertionError`` whose message has the rule, the value found and the
frames to open in Wireshark or ``stunscope``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from stunscope.check.outcome import result_lines
from stunscope.check.rules import RuleResult, make_rule, run_rule
from stunscope.check.sources import is_analysis_json
from stunscope.errors import InputError, UsageError


class CaptureAnalysis:
    """The analysis JSON of one capture (DESIGN.md contract) with query helpers for tests.

    ``path`` is the file it came from: rules over ``messages`` read the capture again (in one
    streaming pass, with ``keyring``); an analysis without a capture file has no messages.
    """

    def __init__(self, data: dict[str, Any], source: str = "", input_error: InputError | None = None,
                 path: Path | None = None, keyring: Any = None):
        self.json = data
        self.source = source
        self.input_error = input_error
        self.path = path
        self.keyring = keyring

    @classmethod
    def from_file(cls, path: Path, keyring: Any = None, sdp: Sequence[Path] = ()) -> "CaptureAnalysis":
        """Analyse a capture, or read a saved ``analyze --format json`` file."""
        from stunscope.check.sources import load

        from stunscope.analysis.sdp import keyring_with_sdp

        loaded = load(path, keyring, sdp)
        # messages() decodes the capture again: with the SDP's ICE passwords, as check does.
        return cls(loaded.analysis, str(path), loaded.error, path, keyring_with_sdp(keyring, sdp))

    def __repr__(self) -> str:
        return f"<CaptureAnalysis {self.source or 'in memory'}>"

    @property
    def ice_sessions(self) -> list[dict[str, Any]]:
        """The ICE sessions (``ice`` in the JSON)."""
        return list(self.json.get("ice") or [])

    @property
    def selected_pair(self) -> dict[str, Any] | None:
        """The selected pair of the first session that has one, else None."""
        for session in self.ice_sessions:
            if isinstance(session.get("selected_pair"), dict):
                return session["selected_pair"]
        return None

    @property
    def allocations(self) -> list[dict[str, Any]]:
        """The TURN allocations."""
        return list(self.json.get("allocations") or [])

    def verdicts(self, code: str | None = None, severity: str | None = None) -> list[dict[str, Any]]:
        """The verdicts, optionally only those with ``code`` and/or ``severity``."""
        return [v for v in self.json.get("verdicts") or []
                if (code is None or v.get("code") == code)
                and (severity is None or v.get("severity") == severity)]

    def transactions(self, method: str | None = None, outcome: str | None = None) -> list[dict[str, Any]]:
        """The transactions, optionally only those of ``method`` and/or with ``outcome``."""
        return [t for t in self.json.get("transactions") or []
                if (method is None or t.get("method") == method)
                and (outcome is None or t.get("outcome") == outcome)]

    def messages(self) -> Iterator[dict[str, Any]]:
        """The ``stunscope messages --format jsonl`` objects of the capture, streamed."""
        from stunscope.check.message_tally import iter_messages

        if self.path is None or is_analysis_json(self.path):
            raise UsageError(f"{self!r} has no messages: open the capture, not a saved analysis")
        return iter_messages(self.path, self.keyring)

    def check(self, expression: str) -> RuleResult:
        """Evaluate a rule expression (see ``stunscope check --help-rules``); one over
        ``messages`` reads the capture once more."""
        from stunscope.check.message_tally import message_results

        rule = make_rule(expression, expression)
        return run_rule(rule, self.json, message_results([rule], self.path, self.json, self.keyring))


def _as_analysis(analysis: Any) -> CaptureAnalysis:
    """Accept a CaptureAnalysis, an analysis JSON dict, or anything with ``to_json()``."""
    if isinstance(analysis, CaptureAnalysis):
        return analysis
    if isinstance(analysis, dict):
        return CaptureAnalysis(analysis)
    if hasattr(analysis, "to_json"):
        return CaptureAnalysis(analysis.to_json())
    raise TypeError(f"expected an analysis, got {type(analysis).__name__}")


def assert_rule(analysis: Any, expression: str, message: str = "") -> None:
    """Fail with the value found and the evidence frames unless ``expression`` holds."""
    subject = _as_analysis(analysis)
    result = subject.check(expression)
    if result.status != "pass":
        where = f" in {subject.source}" if subject.source else ""
        head = f"{message}: " if message else ""
        raise AssertionError("\n".join([f"{head}rule failed{where}", *result_lines(result)]))


def assert_connected(analysis: Any) -> None:
    """An ICE session reached the connected state."""
    assert_rule(analysis, "ice.connected", "no ICE session connected")


def assert_no_verdict(analysis: Any, code: str | None = None, severity: str | None = None) -> None:
    """No verdict with ``code`` and/or ``severity`` (at least one of them must be given)."""
    conditions = [f"{key} == {json.dumps(value)}" for key, value in
                  (("code", code), ("severity", severity)) if value is not None]
    if not conditions:
        raise TypeError("assert_no_verdict needs code= or severity=")
    assert_rule(analysis, "no verdicts where " + " and ".join(conditions))
