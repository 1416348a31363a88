"""The rule language: parsing, name checking, and evaluation on an analysis JSON object.

The object below mirrors the DESIGN.md contract (as ``analyze --format json`` writes it) so each
operator's meaning is pinned here; tests on the real captures are in test_check_captures.py.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stunscope.check.evaluation import compile_expression, frames_of
from stunscope.check.expressions import ExpressionError, parse, tokenize
from stunscope.errors import EXIT_USAGE, UsageError


def _pair(local_type: str, remote_type: str, frames: list[int], state: str = "succeeded") -> dict:
    return {"local": "10.0.0.1:5000", "remote": "10.0.0.2:6000", "state": state, "nominated": True,
            "local_type": local_type, "remote_type": remote_type, "rtt_ms": 1.5, "frames": frames}


def _transaction(method: str, outcome: str, request_frames: list[int], response_frame: int | None,
                 rtt_ms: float | None, retransmissions: int = 0, error_code: int | None = None) -> dict:
    return {"txid": "ab" * 12, "method": method, "client": "10.0.0.1:5001", "server": "10.0.0.3:3478",
            "request_frames": request_frames, "response_frame": response_frame, "outcome": outcome,
            "error_code": error_code, "rtt_ms": rtt_ms, "retransmissions": retransmissions}


ANALYSIS = {
    "schema": "stunscope.analysis/1",
    "capture": {"file": "call.pcapng", "frames": 40, "evictions": {"transactions": 0}},
    "transactions": [
        _transaction("Binding", "success", [1], 2, 1.5),
        _transaction("Allocate", "error", [3], 4, 20.0, error_code=401),
        _transaction("Allocate", "success", [5], 6, 30.0),
        _transaction("Refresh", "timeout", [7, 8, 9], None, None, retransmissions=2),
    ],
    "servers": [],
    "allocations": [{"client": "10.0.0.1:5001", "server": "10.0.0.3:3478", "transport": "udp",
                     "relayed": "10.0.0.3:50000", "mapped": "10.0.0.1:5001", "lifetime_s": 600,
                     "state": "active", "first_frame": 5,
                     "permissions": [{"peer_ip": "10.0.0.2", "installed_frame": 11}],
                     "channels": []}],
    "ice": [{"local_ufrag": "aaaa", "remote_ufrag": "bbbb", "controlling": True, "state": "connected",
             "pairs": [_pair("host", "host", [12, 13]), _pair("relay", "host", [14], "failed")],
             "selected_pair": _pair("host", "host", [12, 13]), "relayed": False,
             "role_conflicts": 0}],
    "nat": [],
    "verdicts": [
        {"code": "ice-connected", "severity": "info", "message": "connected", "frames": [12, 13]},
        {"code": "unanswered-request", "severity": "warning", "message": "Refresh", "frames": [7, 8, 9]},
    ],
}


def holds(expression: str, analysis: dict = ANALYSIS) -> bool:
    return compile_expression(expression).evaluate(analysis).ok


@pytest.mark.parametrize("expression", [
    "ice.connected",
    "ice.selected.relayed == false",
    "ice.relayed == false",
    "count(transactions where outcome == \"timeout\") == 1",
    "p95(transactions.rtt_ms where method == \"Allocate\") < 200",
    "p50(transactions.rtt_ms) == 20",
    "median(transactions.rtt_ms) == 20",
    "avg(transactions.rtt_ms where method == 'Allocate') == 25",
    "sum(transactions.retransmissions) == 2",
    "min(transactions.rtt_ms) == 1.5",
    "no verdict.severity == \"error\"",
    "no verdicts where severity == \"error\"",
    "max(transactions.retransmissions) <= 2",
    "integrity.valid and fingerprint.valid",
    "integrity.bad == 0",
    "allocations.count >= 1",
    "allocation.permissions.count == 1",
    "verdicts has \"ice-connected\"",
    "verdicts.code has \"unanswered-request\"",
    "any transactions where method == \"Allocate\" and outcome == \"success\"",
    "all transactions.retransmissions <= 2",
    "all ice.selected.types == \"host/host\"",
    "ice.pairs.types == \"relay/host\"",
    "transactions.method in [\"Refresh\"]",
    "all transactions.method not in [\"Send\", \"Data\"]",
    "verdicts.code matches \"^ice-\"",
    "not (ice.state == \"failed\")",
    "capture.frames > 10 or false",
    "all nat.mapping_behavior == \"endpoint-independent\"",
    "count(nat) == 0",
    "count(transactions.error_code) == 1",
    "transactions where error_code == 401",
    "-1 < 0.5e1",
])
def test_rules_that_hold(expression: str) -> None:
    assert holds(expression), expression


@pytest.mark.parametrize("expression", [
    "ice.selected.relayed == true",
    "count(transactions where outcome == \"timeout\") == 0",
    "no transactions where outcome == \"timeout\"",
    "max(transactions.retransmissions) < 2",
    "all transactions where outcome == \"success\"",
    "verdicts has \"ice-failed\"",
    "any nat.mapping_behavior == \"endpoint-independent\"",
    "nat.mapping_behavior == \"endpoint-independent\"",
    "max(nat.bindings.frame) > 0",          # null: no value to compare
    "transactions.rtt_ms > 100",
    "not ice.connected",
    "ice.connected and count(verdicts) > 5",
])
def test_rules_that_fail(expression: str) -> None:
    assert not holds(expression), expression


def test_failure_reports_found_value_and_evidence_frames() -> None:
    truth = compile_expression('no transactions where outcome == "timeout"').evaluate(ANALYSIS)
    assert not truth.ok
    assert truth.found == ['1 of 4 transactions match: [{method: "Refresh", outcome: "timeout", '
                           'error_code: null, rtt_ms: null}]']
    assert frames_of(truth.evidence) == [7, 8, 9]


def test_max_points_at_the_item_that_has_it() -> None:
    truth = compile_expression("max(transactions.retransmissions) < 2").evaluate(ANALYSIS)
    assert truth.found == ["max(transactions.retransmissions) = 2"]
    assert frames_of(truth.evidence) == [7, 8, 9]


def test_percentile_evidence_is_the_items_at_or_above_it() -> None:
    truth = compile_expression('p95(transactions.rtt_ms) < 10').evaluate(ANALYSIS)
    assert truth.found == ["p95(transactions.rtt_ms) = 30"]
    assert frames_of(truth.evidence) == [5, 6]


def test_integrity_facts_come_from_verdicts() -> None:
    analysis = copy.deepcopy(ANALYSIS)
    analysis["verdicts"].append({"code": "bad-integrity", "severity": "error", "message": "MI",
                                 "frames": [21, 22], "count": 2})
    truth = compile_expression("integrity.valid").evaluate(analysis)
    assert not truth.ok and frames_of(truth.evidence) == [21, 22]
    assert holds("integrity.bad == 2", analysis)
    assert holds("fingerprint.valid", analysis)


def test_selected_pair_given_as_an_index_resolves_to_the_pair() -> None:
    analysis = copy.deepcopy(ANALYSIS)
    analysis["ice"][0]["selected_pair"] = 1
    assert holds("ice.selected.relayed", analysis)


def test_empty_analysis_fails_existence_rules_and_passes_universal_ones() -> None:
    empty = {"schema": "stunscope.analysis/1", "transactions": [], "allocations": [], "ice": [],
             "nat": [], "verdicts": []}
    assert not holds("ice.connected", empty)
    assert not holds("ice.selected.relayed == false", empty)
    assert holds("all ice.selected.relayed == false", empty)
    assert holds("no verdicts where severity == \"error\"", empty)
    assert not holds("p95(transactions.rtt_ms) < 200", empty)


@pytest.mark.parametrize(("expression", "column", "reason"), [
    ("count(transactions", 19, "expected ')'"),
    ("ice.conected", 5, "unknown name 'conected' on ice objects"),
    ("transactions.rtt_ms.foo", 21, "is a value, not an object"),
    ("icee", 1, "unknown name 'icee'"),
    ("frobnicate(ice)", 1, "unknown function 'frobnicate'"),
    ("max(transactions) < 1", 5, "needs numbers"),
    ("ice.connected ==", 17, "expected a name, a value"),
    ("ice.connected == == 1", 18, "expected a name, a value"),
    ("x == #", 6, "unexpected character '#'"),
    ("method == \"Binding", 11, "unterminated string"),
    ("ice.connected true", 15, "expected an operator"),
    ("1 < 2 < 3", 7, "expected an operator"),
    ("transactions.rtt_ms == ice.pairs.rtt_ms", 24, "must be one value, not a list"),
    ("ice.connected matches '('", 23, "bad regular expression"),
    ("capture.frames has 1", 1, "'has' needs a list"),
    ("[1, ice]", 5, "expected a value"),
    ("", 1, "expected an expression"),
    ("ice.", 5, "expected a field name"),
])
def test_syntax_and_name_errors_give_the_column(expression: str, column: int, reason: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(expression)
    assert info.value.column == column
    assert reason in info.value.reason
    assert info.value.exit_code == EXIT_USAGE
    assert f"column {column}:" in str(info.value)


@pytest.mark.parametrize("expression", [
    "(" * 100 + "true" + ")" * 100,
    "not " * 100 + "true",
    "count(" * 60 + "ice" + ")" * 60,
    " and ".join(["ice.connected"] * 300),
])
def test_deep_or_long_expressions_are_refused_not_crashed(expression: str) -> None:
    with pytest.raises(ExpressionError, match="nested more than 40|too long"):
        compile_expression(expression)


def test_errors_in_long_expressions_quote_the_part_around_the_column() -> None:
    source = " and ".join(["ice.connected"] * 20) + " and ice.conected"
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert str(info.value).endswith("in: …ice.connected and ice.connected and ice.conected")


def test_long_but_allowed_expression_evaluates() -> None:
    assert holds(" and ".join(["ice.connected"] * 90))
    assert holds("(" * 40 + "true" + ")" * 40)


def test_where_names_fall_back_to_the_top_level() -> None:
    assert holds('any ice where connected and count(verdicts) == 2')


def test_ordering_a_string_against_a_number_is_an_error_with_column() -> None:
    with pytest.raises(ExpressionError, match="column 1: cannot order"):
        compile_expression("transactions.method < 3").evaluate(ANALYSIS)


def test_tokens_keep_positions() -> None:
    assert [(t.kind, t.text, t.pos) for t in tokenize("a.b >= 'x'")] == [
        ("name", "a", 0), ("symbol", ".", 1), ("name", "b", 2), ("symbol", ">=", 4),
        ("string", "'x'", 7), ("end", "", 10)]


def test_string_escapes() -> None:
    assert parse(r'"a\"b\\c\n\u0041"').value == 'a"b\\c\nA'  # type: ignore[union-attr]


_ALPHABET = st.sampled_from(list("abcdeinotrsuwyhmlpx_.()[],=!<>\"' 0123456789-#\\")
                            + ["ice", "transactions", "where", "count(", "p95(", " and ", " or ",
                               " not ", " in ", "has", "verdicts", "rtt_ms", "no ", "all ", "=="])


@settings(max_examples=400, deadline=None)
@given(st.lists(_ALPHABET, max_size=20).map("".join))
def test_arbitrary_text_is_a_rule_or_a_usage_error(text: str) -> None:
    try:
        expression = compile_expression(text)
    except UsageError:
        return
    try:
        expression.evaluate(ANALYSIS)
    except UsageError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_unicode_never_crashes_the_parser(text: str) -> None:
    try:
        compile_expression(text)
    except UsageError:
        pass
