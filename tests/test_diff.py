"""``stunscope diff`` and ``check --baseline``: same scenario, no change; other scenario, changes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from conftest import CAPTURES
from stunscope.check.baseline import compare, story
from stunscope.check.sources import load
from stunscope.cli import main

HOST = CAPTURES / "ice-host.pcapng"
HOST_AGAIN = CAPTURES / "ice-host-2.pcapng"
RELAY = CAPTURES / "ice-turn-relay.pcapng"


def sdp_of(capture: Path) -> list[str]:
    """``--sdp`` arguments for a capture's sidecar, when it has one."""
    sidecar = capture.with_suffix(".sdp")
    return ["--sdp", str(sidecar)] if sidecar.is_file() else []


def analysis_of(capture: Path) -> dict:
    sidecar = capture.with_suffix(".sdp")
    loaded = load(capture, sdp=[sidecar] if sidecar.is_file() else [])
    assert loaded.error is None
    return loaded.analysis


def test_two_recordings_of_the_same_scenario_tell_the_same_story(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", str(HOST), str(HOST_AGAIN), *sdp_of(HOST_AGAIN),
                 "--baseline-sdp", str(HOST.with_suffix(".sdp"))])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("no change:")


def test_host_against_relay_is_a_change(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", str(HOST), str(RELAY), *sdp_of(RELAY),
                 "--baseline-sdp", str(HOST.with_suffix(".sdp"))])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("changed:")
    selected = [line for line in out.splitlines() if ".selected:" in line]
    assert selected and "relay" in selected[0].split("->")[1], out


def test_diff_json_names_the_changed_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(HOST), str(RELAY), "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["changed"] is True
    keys = {d["key"] for d in document["differences"]}
    assert "allocations" in keys
    assert any(key.endswith(".selected") for key in keys)


def test_saved_analysis_json_is_a_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(analysis_of(HOST)))
    assert main(["diff", str(baseline), str(HOST_AGAIN), *sdp_of(HOST_AGAIN)]) == 0
    assert main(["check", str(HOST_AGAIN), *sdp_of(HOST_AGAIN), "--baseline", str(baseline)]) == 0
    assert "pass   matches baseline" in capsys.readouterr().out
    assert main(["check", str(HOST_AGAIN), "--baseline", str(HOST),
                 "--baseline-sdp", str(HOST.with_suffix(".sdp"))]) == 0
    assert "pass   matches baseline" in capsys.readouterr().out
    assert main(["check", str(RELAY), *sdp_of(RELAY), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "FAIL   matches baseline" in out and ".selected:" in out


def test_run_to_run_noise_is_ignored() -> None:
    analysis = analysis_of(HOST)
    noisy = copy.deepcopy(analysis)
    for transaction in noisy["transactions"]:
        transaction["txid"] = "00" * 12
        transaction["client"] = "192.0.2.1:40000"
        if transaction.get("rtt_ms") is not None:
            transaction["rtt_ms"] += 5.0
    for session in noisy["ice"]:
        session["local_ufrag"], session["remote_ufrag"] = "zzzz", "yyyy"
        for pair in session["pairs"]:
            pair["local"] = "192.0.2.1:40001"
    noisy["capture"]["first_ts"] = 0.0
    assert compare(analysis, noisy) == []


def test_rtt_beyond_tolerance_is_a_change() -> None:
    analysis = analysis_of(HOST)
    slow = copy.deepcopy(analysis)
    for transaction in slow["transactions"]:
        if transaction.get("rtt_ms") is not None:
            transaction["rtt_ms"] += 500.0
    differences = compare(analysis, slow)
    assert differences and all(d.key.startswith("rtt.") for d in differences)
    assert compare(analysis, slow, rtt_tolerance_ms=1000.0) == []


def test_story_of_the_relay_capture() -> None:
    facts = story(analysis_of(RELAY))
    assert facts["allocations"].value >= 1
    assert any(key.endswith(".selected") and "relay" in str(fact.value) for key, fact in facts.items())


def test_diff_usage_and_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["diff", str(HOST)])
    assert info.value.code == 2
    assert main(["diff", str(HOST), str(tmp_path / "absent.pcapng")]) == 3
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["diff", str(broken), str(HOST)]) == 3
    err = capsys.readouterr().err
    assert "no such file" in err and "not valid JSON" in err and "Traceback" not in err
