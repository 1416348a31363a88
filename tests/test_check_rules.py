"""Rules files, profiles, inline expectations, outcome and exit codes (on analysis JSON files)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import ROOT
from stunscope.check.junit import junit_tree
from stunscope.check.outcome import CheckOutcome
from stunscope.check.profiles import PROFILES
from stunscope.check.rules import collect_rules, load_rules_file, profile_rules, run_rules
from stunscope.cli import main
from stunscope.errors import InputError, UsageError

CI_DOC = ROOT / "README.md"

CONNECTED = {
    "schema": "stunscope.analysis/1",
    "transactions": [{"method": "Binding", "outcome": "timeout", "request_frames": [3, 4],
                      "response_frame": None, "rtt_ms": None, "retransmissions": 1}],
    "allocations": [],
    "ice": [{"state": "connected", "pairs": [], "role_conflicts": 0,
             "selected_pair": {"local_type": "host", "remote_type": "srflx", "frames": [7, 8]}}],
    "nat": [],
    "verdicts": [{"code": "ice-connected", "severity": "info", "message": "ok", "frames": [7, 8]},
                 {"code": "unanswered-request", "severity": "warning", "message": "x", "frames": [3, 4]}],
}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def analysis_file(tmp_path: Path) -> Path:
    return write(tmp_path / "run.json", json.dumps(CONNECTED))


def test_rules_file_with_profile_override_and_disable(tmp_path: Path) -> None:
    rules = load_rules_file(write(tmp_path / "rules.toml", '''
profile = "strict"
disable = ["no-orphan-responses"]

[[rule]]
name = "few-retransmissions"
expect = "all transactions.retransmissions <= 5"

[[rule]]
name = "srflx"
expect = 'ice.selected.remote_type == "srflx"'
severity = "warning"
description = "the peer is behind a NAT"
'''))
    assert "no-orphan-responses" not in rules
    assert rules["few-retransmissions"].expect == "all transactions.retransmissions <= 5"
    assert rules["srflx"].severity == "warning"
    assert "ice-connected" in rules  # strict includes connectivity
    names = list(rules)
    assert names.index("ice-connected") < names.index("few-retransmissions") < names.index("srflx")


@pytest.mark.parametrize(("text", "message"), [
    ("[[rule]]\nname = 'a'\nexpect = 'ice.conected'\n", "rule 'a': column 5: unknown name 'conected'"),
    ("[[rule]]\nname = 'a'\nexpect = 'count(ice'\n", "rule 'a': column 10: expected ')'"),
    ("[[rule]]\nname = 'a'\nexpr = 'ice.connected'\n", "unknown key 'expr'"),
    ("[[rule]]\nexpect = 'ice.connected'\n", "rule #1 needs a name"),
    ("[[rule]]\nname = 'a'\n", "rule 'a' needs expect"),
    ("[[rule]]\nname = 'a'\nexpect = 'true'\nseverity = 'fatal'\n", "severity must be one of"),
    ("[[rule]]\nname = 'a'\nexpect = 'true'\n[[rule]]\nname = 'a'\nexpect = 'true'\n", "defined twice"),
    ("profile = 'lenient'\n", "unknown profile 'lenient'"),
    ("disable = ['nope']\n", "disable names no rule 'nope'"),
    ("rules = []\n", "unknown key 'rules'"),
    ("[[rule]\nname = 'a'\n", "not valid TOML"),
])
def test_bad_rules_files_are_usage_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "rules.toml", text)
    with pytest.raises(UsageError) as info:
        load_rules_file(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_every_profile_compiles() -> None:
    for name in PROFILES:
        assert profile_rules(name), name


def test_inline_expectations_are_named_by_their_text() -> None:
    rules = collect_rules(profiles=["connectivity"], expects=["ice.connected", "allocations.count == 0"])
    assert [r.name for r in rules][-2:] == ["ice.connected", "allocations.count == 0"]


def test_outcome_exit_codes() -> None:
    passing = run_rules(collect_rules(expects=["ice.connected"]), CONNECTED)
    failing = run_rules(collect_rules(expects=["allocations.count >= 1"]), CONNECTED)
    warning = run_rules(warning_rules(), CONNECTED)
    assert CheckOutcome("x", passing).exit_code == 0
    assert CheckOutcome("x", failing).exit_code == 1
    assert CheckOutcome("x", warning).exit_code == 0
    assert CheckOutcome("x", warning, fail_on_warning=True).exit_code == 1
    assert CheckOutcome("x", passing, InputError("truncated")).exit_code == 3
    erroring = run_rules(collect_rules(expects=["transactions.method > 2"]), CONNECTED)
    assert erroring[0].status == "error"
    assert CheckOutcome("x", erroring + failing).exit_code == 2


def warning_rules() -> list:
    """The turn profile's allocate-rtt rule, of severity warning (no Allocate here: p95 is null)."""
    return [profile_rules("turn")["allocate-rtt"]]


def test_junit_document_structure() -> None:
    rules = collect_rules(profiles=["strict"], expects=["transactions.method > 2"])
    outcome = CheckOutcome("captures/run.pcapng", run_rules(rules, CONNECTED), InputError("cut short"))
    root = ET.fromstring(ET.tostring(junit_tree(outcome).getroot()))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(rules) + 1  # and "capture readable"
    assert suite.get("tests") == str(len(cases))
    failures = [c for c in cases if c.find("failure") is not None]
    errors = [c for c in cases if c.find("error") is not None]
    assert suite.get("failures") == str(len(failures)) and suite.get("errors") == str(len(errors))
    assert {c.get("name") for c in failures} == {"no-timeouts"}
    assert {c.get("name") for c in errors} == {"transactions.method > 2", "capture readable"}
    failure = failures[0].find("failure")
    assert failure is not None and "no transactions where" in (failure.get("message") or "")
    assert "frames: 3, 4" in (failure.text or "")
    for case in cases:
        assert case.get("classname") == "stunscope.run" and float(case.get("time") or "x") >= 0


def test_junit_warning_stays_a_passing_testcase() -> None:
    tree = junit_tree(CheckOutcome("x.json", run_rules(warning_rules(), CONNECTED)))
    (case,) = tree.getroot().iter("testcase")
    assert case.find("failure") is None
    assert "warning: expected: p95" in (case.findtext("system-out") or "")
    strict = junit_tree(CheckOutcome("x.json", run_rules(warning_rules(), CONNECTED), fail_on_warning=True))
    failure = strict.getroot().find("testsuite/testcase/failure")
    assert failure is not None and failure.get("type") == "warning"
    assert strict.getroot().get("failures") == "1"


def test_junit_strips_characters_xml_cannot_carry() -> None:
    analysis = dict(CONNECTED, verdicts=[{"code": "x\x01y", "severity": "error", "frames": [1]}])
    rules = collect_rules(expects=['no verdicts where severity == "error"'])
    data = ET.tostring(junit_tree(CheckOutcome("x", run_rules(rules, analysis))).getroot())
    assert b"\x01" not in data
    ET.fromstring(data)


def test_cli_check_passes_fails_and_writes_junit(analysis_file: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "report.xml"
    assert main(["check", str(analysis_file), "--expect", "ice.connected", "--junit", str(junit)]) == 0
    assert "OK: 1 passed, 0 failed" in capsys.readouterr().out
    assert ET.parse(junit).getroot().tag == "testsuites"
    assert main(["check", str(analysis_file), "--expect", "ice.selected.relayed"]) == 1
    out = capsys.readouterr().out
    assert "FAIL   ice.selected.relayed" in out
    assert "found:    ice.selected.relayed = [false]" in out
    assert "frames:   7, 8" in out


def test_cli_check_json(analysis_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(analysis_file), "--profile", "connectivity", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["passed"] is True and document["exit_code"] == 0
    assert [r["name"] for r in document["rules"]] == ["ice-connected", "no-ice-failure"]
    assert document["summary"] == {"rules": 2, "passed": 2, "failed": 0, "warnings": 0, "errors": 0}


@pytest.mark.parametrize(("argv", "message"), [
    (["--expect", "count(transactions"], "column 19: expected ')'"),
    (["--expect", "ice.conected"], "column 5: unknown name"),
    ([], "nothing to check"),
    (["--rules", "/nonexistent/rules.toml"], "cannot read rules file"),
    (["--expect", "true", "--rtt-tolerance-ms", "5"], "need --baseline"),
    (["--expect", "true", "--baseline-sdp", "x.sdp"], "need --baseline"),
])
def test_cli_check_usage_errors_exit_2(analysis_file: Path, capsys: pytest.CaptureFixture[str],
                                       argv: list[str], message: str) -> None:
    assert main(["check", str(analysis_file), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_check_unknown_profile_exit_2(analysis_file: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", str(analysis_file), "--profile", "lenient"])
    assert info.value.code == 2


@pytest.mark.parametrize("content", ["{not json", '{"schema": "other"}', "[]"])
def test_cli_check_bad_input_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    path = write(tmp_path / "bad.json", content)
    code = main(["check", str(path), "--expect", "true"])
    err = capsys.readouterr().err
    assert code == 3 and err.count("\n") == 1


def test_cli_check_missing_file_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "absent.pcapng"), "--expect", "true"]) == 3
    assert "no such file" in capsys.readouterr().err


def test_help_rules_lists_grammar_names_and_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--help-rules"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "selection   := operand [\"where\" or_expr]" in out
    assert "connected: the session's state is connected" in out
    for name in PROFILES:
        assert f"\n  {name}" in out


def _fenced(text: str, language: str) -> list[str]:
    """The bodies of the ```language fenced blocks of a Markdown text."""
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_help_rules_examples_all_compile() -> None:
    from stunscope.check.evaluation import compile_expression
    from stunscope.cli.check import RULES_HELP

    examples = RULES_HELP.split("Examples\n")[1].split("\n\n")[0].splitlines()
    assert len(examples) >= 8
    for line in examples:
        compile_expression(line.strip())


def test_ci_doc_rules_block_is_a_valid_rules_file(tmp_path: Path) -> None:
    (block,) = _fenced(CI_DOC.read_text(encoding="utf-8"), "toml")
    rules = load_rules_file(write(tmp_path / "rules.toml", block))
    assert {"ice-connected", "no-error-verdicts", "binding-rtt", "direct-path"} <= set(rules)


def test_ci_doc_workflow_records_checks_and_uploads_junit() -> None:
    yaml = pytest.importorskip("yaml")
    workflow_text, live_steps = _fenced(CI_DOC.read_text(encoding="utf-8"), "yaml")
    workflow = yaml.safe_load(workflow_text)
    steps = workflow["jobs"]["call"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "dumpcap -q -i lo" in runs and "stunscope check call.pcapng" in runs
    assert "--junit stunscope-junit.xml" in runs
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads and "stunscope-junit.xml" in uploads[0]["with"]["path"]
    assert all(s.get("if") == "always()" for s in steps if "name" in s and "Stop" in s["name"])
    live = yaml.safe_load(live_steps.replace("      # ... run the tests, then:\n", ""))
    assert "live -i lo -w" in live[0]["run"]


def test_cli_fail_on_warning(analysis_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(tmp_path / "rules.toml", "[[rule]]\nname = 'relay'\nexpect = 'ice.selected.relayed'\n"
                                           "severity = 'warning'\n")
    assert main(["check", str(analysis_file), "--rules", str(rules)]) == 0
    assert "WARN   relay" in capsys.readouterr().out
    assert main(["check", str(analysis_file), "--rules", str(rules), "--fail-on-warning"]) == 1
    assert "FAILED: 0 passed, 0 failed, 1 warning (failing: --fail-on-warning)" in capsys.readouterr().out
