"""``stunscope check`` on the bundled captures, through the real capture reader and analysis."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import CAPTURES, ROOT
from stunscope.cli import main

HOST = CAPTURES / "ice-host.pcapng"
RELAY = CAPTURES / "ice-turn-relay.pcapng"
UNREACHABLE = CAPTURES / "ice-unreachable.pcapng"
TURN = CAPTURES / "turn-udp.pcapng"
EXAMPLE_RULES = ROOT / "examples" / "rules.toml"
WRONG_ICE_PASSWORD = CAPTURES / "ice-wrong-password.pcapng"


def check(capture: Path, *args: str) -> int:
    sidecar = capture.with_suffix(".sdp")
    sdp = ["--sdp", str(sidecar)] if sidecar.is_file() else []
    return main(["check", str(capture), *sdp, *args])


@pytest.mark.parametrize(("capture", "expression"), [
    (HOST, "ice.connected"),
    (HOST, "all ice.selected.relayed == false"),
    (HOST, 'verdicts has "ice-connected"'),
    (HOST, 'no verdicts where severity == "error"'),
    (HOST, "allocations.count == 0"),
    (RELAY, "ice.connected"),
    (RELAY, "ice.selected.relayed"),
    (RELAY, "allocations.count >= 1"),
    (RELAY, 'any transactions where method == "Allocate" and outcome == "success"'),
    (TURN, "allocations.count >= 1"),
    (TURN, 'p95(transactions.rtt_ms where method == "Allocate") < 1000'),
    (UNREACHABLE, "not ice.connected"),
    (UNREACHABLE, 'count(transactions where outcome == "timeout") > 0'),
])
def test_rules_that_hold_on_bundled_captures(capture: Path, expression: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert check(capture, "--expect", expression) == 0, capsys.readouterr().out


@pytest.mark.parametrize(("capture", "expression"), [
    (HOST, "ice.selected.relayed"),
    (RELAY, "all ice.selected.relayed == false"),
    (UNREACHABLE, "ice.connected"),
    (UNREACHABLE, 'no transactions where outcome == "timeout"'),
])
def test_rules_that_fail_on_bundled_captures_show_evidence(
        capture: Path, expression: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(capture, "--expect", expression) == 1
    out = capsys.readouterr().out
    assert f"FAIL   {expression}" in out
    assert f"expected: {expression}" in out
    frames = next(line for line in out.splitlines() if "frames:" in line)
    assert frames.split("frames:")[1].strip()[0].isdigit(), out


@pytest.mark.parametrize(("capture", "profile", "code"), [
    (HOST, "connectivity", 0),
    (HOST, "direct", 0),
    (HOST, "relayed", 1),
    (RELAY, "relayed", 0),
    (RELAY, "direct", 1),
    (UNREACHABLE, "connectivity", 1),
    (TURN, "turn", 0),
])
def test_profiles_on_bundled_captures(capture: Path, profile: str, code: int,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert check(capture, "--profile", profile) == code, capsys.readouterr().out


@pytest.mark.parametrize(("capture", "profile", "failing"), [
    (WRONG_ICE_PASSWORD, "strict", {"ice-connected", "no-ice-failure", "no-error-verdicts",
                                    "integrity-valid"}),
    (CAPTURES / "turn-wrong-password.pcapng", "turn", {"allocate-succeeded", "no-turn-failure"}),
    (CAPTURES / "turn-forbidden-peer.pcapng", "turn", {"no-turn-failure"}),
    (CAPTURES / "turn-expired.pcapng", "turn", {"no-turn-failure"}),
    (CAPTURES / "unanswered.pcapng", "strict", {"ice-connected", "no-timeouts",
                                                "few-retransmissions"}),
])
def test_failure_scenarios_fail_the_rules_that_name_them(
        capture: Path, profile: str, failing: set[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert check(capture, "--profile", profile, "--format", "json") == 1
    rules = json.loads(capsys.readouterr().out)["rules"]
    failed = {r["name"] for r in rules if r["status"] == "fail" and r["severity"] == "error"}
    assert failed == failing
    assert all(r["frames"] for r in rules if r["name"] in failing and r["name"] != "ice-connected")


def test_example_rules_file_passes_on_a_good_call_and_fails_on_a_broken_one(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert check(HOST, "--rules", str(EXAMPLE_RULES)) == 0, capsys.readouterr().out
    assert check(UNREACHABLE, "--rules", str(EXAMPLE_RULES)) == 1
    assert "FAIL   ice-connected" in capsys.readouterr().out


def test_junit_from_a_failing_capture(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    assert check(UNREACHABLE, "--profile", "strict", "--junit", str(report)) == 1
    root = ET.parse(report).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert "ice-connected" in failed
    assert int(suite.get("failures") or 0) == len(failed)
    assert int(suite.get("tests") or 0) == len(cases)
    assert "frames: " in (failed["ice-connected"].text or "")


def test_json_output_matches_the_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert check(UNREACHABLE, "--expect", "ice.connected", "--format", "json") == 1
    document = json.loads(capsys.readouterr().out)
    (rule,) = document["rules"]
    assert rule["status"] == "fail" and rule["frames"] and rule["found"]
    assert document["exit_code"] == 1 and document["passed"] is False


def test_saved_analysis_gives_the_same_results_as_the_capture(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stunscope.check.sources import load

    saved = tmp_path / "analysis.json"
    saved.write_text(json.dumps(load(RELAY, sdp=[RELAY.with_suffix(".sdp")]).analysis))
    check(RELAY, "--profile", "strict", "--format", "json")
    from_capture = json.loads(capsys.readouterr().out)["rules"]
    main(["check", str(saved), "--profile", "strict", "--format", "json"])
    from_json = json.loads(capsys.readouterr().out)["rules"]
    assert from_json == from_capture


def test_damaged_capture_reports_what_was_read_then_exits_3(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = HOST.read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[: len(data) * 2 // 3 + 5])
    assert main(["check", str(cut), "--expect", "count(transactions) > 0"]) == 3
    captured = capsys.readouterr()
    assert "pass   count(transactions) > 0" in captured.out
    assert "INPUT" in captured.out
    assert captured.err.count("\n") == 1


def _unknown_keys(obj: dict, kind: str, where: str) -> list[str]:
    """Keys of ``obj`` (of ``kind``) that the rule language cannot name, recursively."""
    from stunscope.check.names import OPEN_KINDS, field_kind

    if kind in OPEN_KINDS:
        return []
    missing = []
    for key, value in obj.items():
        known, child, _is_list = field_kind(kind, key)
        if not known:
            missing.append(f"{where}.{key}")
            continue
        children = value if isinstance(value, list) else [value]
        for item in children:
            if isinstance(item, dict) and child is not None:
                missing += _unknown_keys(item, child, f"{where}.{key}")
    return missing


@pytest.mark.parametrize("capture", [HOST, RELAY, TURN, UNREACHABLE], ids=lambda p: p.name)
def test_every_key_of_the_analysis_is_a_name_rules_can_use(capture: Path) -> None:
    from stunscope.check.sources import load

    analysis = load(capture).analysis
    assert _unknown_keys(analysis, "analysis", "") == []
