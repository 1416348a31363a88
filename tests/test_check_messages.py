"""Rules over ``messages`` (the objects of ``stunscope messages --format jsonl``) in ``check``,
the assertions and the pytest plugin, on the bundled captures.

Expected values and frames are derived here from the ``messages --format jsonl`` output of the
same capture, never written down.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tracemalloc
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CAPTURES
from stunscope.check.assertions import CaptureAnalysis, assert_rule
from stunscope.check.evaluation import compile_expression, frames_of
from stunscope.check.expressions import ExpressionError
from stunscope.check.message_tally import MessageTally, iter_messages, message_results
from stunscope.check.rules import make_rule, run_rule
from stunscope.check.sources import analyze_capture
from stunscope.cli import main
from stunscope.errors import UsageError

BAD_FINGERPRINT = CAPTURES / "bad-fingerprint.pcapng"
STALE_NONCE = CAPTURES / "turn-stale-nonce.pcapng"
TURN = CAPTURES / "turn-udp.pcapng"
SMALL = (BAD_FINGERPRINT, STALE_NONCE, TURN, CAPTURES / "ice-host.pcapng")
SHOWN = 10  # evidence frames a message rule names

pytest_plugins = ["pytester"]


@cache
def jsonl(capture: Path) -> tuple[dict[str, Any], ...]:
    """``stunscope messages CAPTURE --format jsonl``, run as users run it."""
    out = subprocess.run([sys.executable, "-m", "stunscope", "messages", str(capture), "--format", "jsonl"],
                         capture_output=True, check=True).stdout
    return tuple(json.loads(line) for line in out.splitlines())


@cache
def analysis(capture: Path) -> dict[str, Any]:
    return analyze_capture(capture).analysis


def first_frames(messages: Any) -> list[int]:
    """The frames a failing rule names: those of the first messages concerned."""
    return sorted({m["frame"] for m in messages})[:SHOWN]


def software(message: dict[str, Any]) -> list[str]:
    return [a["value"] for a in message["attributes"] if a["name"] == "SOFTWARE"]


def run_check(capsys: pytest.CaptureFixture[str], capture: Path, *expressions: str,
              extra: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
    args = ["check", str(capture), "--format", "json", *extra]
    for expression in expressions:
        args += ["--expect", expression]
    code = main(args)
    return code, json.loads(capsys.readouterr().out)


def test_objects_are_those_of_messages_jsonl() -> None:
    for capture in SMALL:
        assert tuple(iter_messages(capture)) == jsonl(capture)


def test_count_of_bad_fingerprints(capsys: pytest.CaptureFixture[str]) -> None:
    bad = [m for m in jsonl(BAD_FINGERPRINT) if m.get("fingerprint") == "bad"]
    assert bad  # the capture's point (captures/README.md)
    code, document = run_check(capsys, BAD_FINGERPRINT,
                               f'count(messages where fingerprint == "bad") == {len(bad)}',
                               'count(messages where fingerprint == "bad") == 0',
                               'no messages where fingerprint == "bad"')
    assert code == 1
    held, count_failed, none_failed = document["rules"]
    assert held["status"] == "pass"
    assert count_failed["status"] == none_failed["status"] == "fail"
    assert count_failed["found"] == [f'count(messages where fingerprint == "bad") = {len(bad)}']
    assert count_failed["frames"] == none_failed["frames"] == first_frames(bad)
    assert none_failed["found"][0].startswith(f"{len(bad)} of {len(jsonl(BAD_FINGERPRINT))} messages match")


def test_stale_nonce_errors(capsys: pytest.CaptureFixture[str]) -> None:
    stale = [m for m in jsonl(STALE_NONCE) if m.get("class") == "error" and m.get("error_code") == 438]
    assert stale
    rule = 'count(messages where class == "error" and error_code == 438)'
    code, document = run_check(capsys, STALE_NONCE, f"{rule} <= {len(stale)}", f"{rule} < {len(stale)}")
    assert code == 1
    assert [r["status"] for r in document["rules"]] == ["pass", "fail"]
    assert document["rules"][1]["frames"] == first_frames(stale)


def test_software_and_requested_transport(capsys: pytest.CaptureFixture[str]) -> None:
    messages = jsonl(TURN)
    coturn = [m for m in messages if any(re.search(r"Coturn-4\.6", v) for v in software(m))]
    allocates = [m for m in messages if m.get("method") == "Allocate" and m.get("class") == "request"]
    assert coturn and allocates
    assert all(any(a["name"] == "REQUESTED-TRANSPORT" for a in m["attributes"]) for m in allocates)
    code, document = run_check(
        capsys, TURN,
        'no messages where any attributes where name == "SOFTWARE" and value matches "coturn-4\\\\.5"',
        'no messages where method == "Allocate" and class == "request" '
        'and not attributes.name has "REQUESTED-TRANSPORT"',
        'no messages where any attributes where name == "SOFTWARE" and value matches "Coturn-4\\\\.6"')
    assert code == 1
    assert [r["status"] for r in document["rules"]] == ["pass", "pass", "fail"]
    failed = document["rules"][2]
    assert failed["frames"] == first_frames(coturn)
    assert failed["found"][0].startswith(f"{len(coturn)} of {len(messages)} messages match")


def test_largest_message(capsys: pytest.CaptureFixture[str]) -> None:
    messages = [m for m in jsonl(TURN) if m.get("length") is not None]
    longest = max(m["length"] for m in messages)
    first = next(m["frame"] for m in messages if m["length"] == longest)
    code, document = run_check(capsys, TURN, f"max(messages.length) < {longest + 1}",
                               f"max(messages.length) < {longest}", f"all messages.length < {longest}")
    assert code == 1
    held, failed, quantified = document["rules"]
    assert held["status"] == "pass" and failed["status"] == quantified["status"] == "fail"
    assert failed["found"] == [f"max(messages.length) = {longest}"]
    assert failed["frames"] == [first]
    assert quantified["frames"] == first_frames(m for m in messages if m["length"] >= longest)


def test_text_output_names_the_frames(capsys: pytest.CaptureFixture[str]) -> None:
    bad = first_frames(m for m in jsonl(BAD_FINGERPRINT) if m.get("fingerprint") == "bad")
    assert main(["check", str(BAD_FINGERPRINT), "--expect", 'no messages where fingerprint == "bad"']) == 1
    out = capsys.readouterr().out
    assert f"frames:   {', '.join(map(str, bad))}" in out


def test_saved_analysis_has_no_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "run.json"
    assert main(["analyze", str(BAD_FINGERPRINT), "--format", "json"]) == 0
    saved.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["check", str(saved), "--expect", "ice.count >= 0"]) == 0  # other rules still run
    capsys.readouterr()
    assert main(["check", str(saved), "--expect", "ice.count >= 0", "--expect", "messages.count > 0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "messages" in lines[0] and "pass the capture" in lines[0]


def test_junit_has_the_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = first_frames(m for m in jsonl(STALE_NONCE) if m.get("error_code") == 438)
    report = tmp_path / "junit.xml"
    assert main(["check", str(STALE_NONCE), "--junit", str(report),
                 "--expect", "no messages where error_code == 438"]) == 1
    capsys.readouterr()
    (failure,) = ET.parse(report).getroot().iter("failure")
    assert f"frames: {', '.join(map(str, stale))}" in (failure.text or "")


@pytest.mark.parametrize("expression", [
    "messages.length == messages.length",
    "count(messages where count(messages) > 1) == 0",
    "sum(messages.length > 3) > 0",
    "all messages.findings has 3",
    '"x" in messages.src',
    "messages.nonsense > 1",
])
def test_unsupported_uses_are_usage_errors(expression: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(expression)


def test_rules_without_messages_read_nothing(tmp_path: Path) -> None:
    rules = [make_rule("r", "ice.count >= 0")]
    assert compile_expression("ice.count >= 0").reducers == ()
    assert message_results(rules, tmp_path / "absent.pcapng", {}) == {}
    with pytest.raises(UsageError, match="pass the capture"):
        message_results([make_rule("m", "messages.count > 0")], None, {})
    unread = run_rule(make_rule("m", "messages.count == 0"), analysis(TURN))
    assert unread.status == "error" and "only a capture has" in unread.message


def test_percentile_and_bad_types() -> None:
    messages = jsonl(TURN)
    lengths = sorted(m["length"] for m in messages if m.get("length") is not None)
    p90 = lengths[-(-90 * len(lengths) // 100) - 1]
    data = analysis(TURN)
    for source, ok in ((f"p90(messages.length) == {p90}", True), ("avg(messages.method) > 1", None)):
        expression = compile_expression(source)
        running = MessageTally([expression], data)
        for message in messages:
            running.feed(message)
        if ok is None:
            with pytest.raises(ExpressionError, match="needs numbers"):
                expression.evaluate(data, running.known())
        else:
            assert expression.evaluate(data, running.known()).ok is ok


def test_memory_stays_flat_over_many_messages() -> None:
    """A tally keeps counts and the first frames, not the messages: 3,000 copies of real
    messages (several MB if kept) leave the traced peak far below that."""
    template = jsonl(TURN)
    expression = compile_expression('count(messages where class == "success") > 0 and '
                                    'all messages.length < 2000 and p95(messages.length) > 0')
    running = MessageTally([expression], analysis(TURN))
    tracemalloc.start()
    try:
        for number in range(3_000):
            message = json.loads(json.dumps(template[number % len(template)]))
            message["frame"] = number + 1
            running.feed(message)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert expression.evaluate(analysis(TURN), running.known()).ok
    assert peak < 1_000_000, peak


def test_assertions_and_messages_helper() -> None:
    opened = CaptureAnalysis.from_file(BAD_FINGERPRINT)
    assert list(opened.messages()) == list(jsonl(BAD_FINGERPRINT))
    assert_rule(opened, f"messages.count == {len(jsonl(BAD_FINGERPRINT))}")
    with pytest.raises(AssertionError, match="frames:"):
        assert_rule(opened, 'no messages where fingerprint == "bad"')
    with pytest.raises(UsageError):
        CaptureAnalysis(opened.json).check("messages.count > 0")


def test_pytest_plugin_runs_message_rules(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "captures"
    folder.mkdir()
    (folder / BAD_FINGERPRINT.name).write_bytes(BAD_FINGERPRINT.read_bytes())
    bad = first_frames(m for m in jsonl(BAD_FINGERPRINT) if m.get("fingerprint") == "bad")
    pytester.makepyfile(f'''
        from stunscope.check.assertions import assert_rule

        def test_messages(stunscope_capture):
            analysis = stunscope_capture("{BAD_FINGERPRINT.name}")
            assert_rule(analysis, "max(messages.length) < 1200")
            assert sum(1 for m in analysis.messages() if m["fingerprint"] == "bad") == {len(bad)}

        def test_bad_fingerprint(stunscope_capture):
            assert_rule(stunscope_capture("{BAD_FINGERPRINT.name}"), 'no messages where fingerprint == "bad"')
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:textual-snapshot")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*frames:   {', '.join(map(str, bad))}"])


# --- streaming equals a naive evaluation over the whole list -----------------------------------

NUMBERS = ("length", "error_code", "rtt_ms", "channel", "frame")
WORDS = ("method", "class", "kind", "fingerprint", "integrity", "transport", "tunnel")
COMPARATORS = ("==", "!=", "<", "<=", ">", ">=")


@st.composite
def message_rules(draw: st.DrawFn, messages: tuple[dict[str, Any], ...]) -> str:
    """A simple rule over messages whose literals are values the capture holds."""
    def literal(field: str) -> str:
        seen = sorted({json.dumps(m.get(field)) for m in messages})
        return draw(st.sampled_from(seen + ["0", "100", "null"]))

    attributes = [a for m in messages for a in m.get("attributes", [])]
    names = sorted({json.dumps(a["name"]) for a in attributes}) + ['"NO-SUCH"']
    values = sorted({json.dumps(a["value"]) for a in attributes
                     if not isinstance(a["value"], (dict, list))}) + ["0"]

    def condition() -> str:
        parts = []
        for _ in range(draw(st.integers(1, 2))):
            shape = draw(st.integers(0, 4))
            if shape == 3:
                op = draw(st.sampled_from(("==", "!=", "matches")))
                wanted = draw(st.sampled_from(values)) if op != "matches" else json.dumps(
                    draw(st.sampled_from(("^[A-Z]", "\\.", "0", "a"))))
                parts.append(f"({draw(st.sampled_from(('any', 'all', 'no')))} attributes where "
                             f"name == {draw(st.sampled_from(names))} and value {op} {wanted})")
            elif shape == 4:
                parts.append(f"attributes.name has {draw(st.sampled_from(names))}")
            elif shape < 2:
                field = draw(st.sampled_from(WORDS))
                parts.append(f"{field} {draw(st.sampled_from(('==', '!=')))} {literal(field)}")
            else:
                field = draw(st.sampled_from(NUMBERS))
                parts.append(f"{field} {draw(st.sampled_from(COMPARATORS))} "
                             f"{literal(field).replace('null', '0')}")
        joined = f" {draw(st.sampled_from(('and', 'or')))} ".join(parts)
        return f"not ({joined})" if draw(st.booleans()) else joined

    number = draw(st.sampled_from(NUMBERS))
    compare = f"{draw(st.sampled_from(COMPARATORS))} {draw(st.integers(0, 200))}"
    where = f" where {condition()}" if draw(st.booleans()) else ""
    function = draw(st.sampled_from(("count", "sum", "min", "max", "avg", "median", "p95")))
    aggregate = f"{function}(messages.{number}{where}) {compare}"
    return draw(st.sampled_from([
        aggregate, aggregate, aggregate,
        f"count(messages where {condition()}) {compare}",
        f"{draw(st.sampled_from(('any', 'all', 'no')))} messages where {condition()}",
        f"{draw(st.sampled_from(('any', 'all', 'no')))} messages.{number} {compare}",
        f"messages.{number} {compare}",
        f"messages where {condition()}",
        f"messages.count {compare}",
    ]))


def _outcome(run: Any) -> tuple[Any, list[int]]:
    try:
        truth = run()
    except ExpressionError:
        return "error", []
    return truth.ok, frames_of(truth.evidence)


@pytest.mark.parametrize("capture", [BAD_FINGERPRINT, STALE_NONCE, TURN])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_streaming_equals_naive_evaluation(capture: Path, data: st.DataObject) -> None:
    messages = jsonl(capture)
    source = data.draw(message_rules(messages))
    expression = compile_expression(source)
    root = analysis(capture)
    running = MessageTally([expression], root)
    for message in messages:
        running.feed(message)
    streamed, frames = _outcome(lambda: expression.evaluate(root, running.known()))
    naive, all_frames = _outcome(lambda: expression.evaluate({**root, "messages": list(messages)}))
    assert streamed == naive, source
    if "median(" in source or "p95(" in source:  # evidence: the first message of each value
        assert set(frames) <= set(all_frames), source
    else:
        assert frames == all_frames[:SHOWN], source


def test_damaged_capture_counts_what_was_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damaged = tmp_path / "cut.pcapng"
    data = TURN.read_bytes()
    damaged.write_bytes(data[: len(data) * 2 // 3])
    listed = subprocess.run([sys.executable, "-m", "stunscope", "messages", str(damaged), "--format", "jsonl"],
                            capture_output=True)
    assert listed.returncode == 3
    read = len(listed.stdout.splitlines())
    assert 0 < read < len(jsonl(TURN))
    code, document = run_check(capsys, damaged, f"messages.count == {read}")
    assert code == 3 and document["rules"][0]["status"] == "pass"
