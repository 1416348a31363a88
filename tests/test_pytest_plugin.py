"""The pytest plugin, run the way users run it: through pytester on the bundled captures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CAPTURES

pytest_plugins = ["pytester"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest inline without the plugins that keep session state between runs."""
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:textual-snapshot", *args)


def _copy_capture(name: str, folder: Path) -> None:
    """Copy a bundled capture and its SDP sidecar into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    source = CAPTURES / name
    shutil.copy(source, folder / name)
    sidecar = source.with_suffix(".sdp")
    if sidecar.is_file():
        shutil.copy(sidecar, folder / sidecar.name)


def test_importing_the_plugin_loads_no_analysis() -> None:
    code = ("import sys, stunscope.check.pytest_plugin\n"
            "print(','.join(m for m in sys.modules if m.startswith('stunscope.') "
            "and m.split('.')[1] in ('analysis', 'capture', 'wire')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_option_and_ini_are_registered(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--help")
    result.stdout.fnmatch_lines(["*--stunscope-captures=DIR*", "*stunscope_captures (string)*"])


def test_fixture_opens_a_capture_with_query_helpers(pytester: pytest.Pytester) -> None:
    _copy_capture("ice-host.pcapng", pytester.path / "captures")
    pytester.makepyfile('''
        from stunscope.check.assertions import assert_connected, assert_no_verdict, assert_rule

        def test_call(stunscope_capture):
            analysis = stunscope_capture("ice-host.pcapng")
            assert stunscope_capture("ice-host.pcapng") is analysis  # analysed once per test
            assert_connected(analysis)
            assert_no_verdict(analysis, code="ice-failed")
            assert_rule(analysis, "ice.selected.relayed == false")
            assert analysis.ice_sessions and analysis.ice_sessions[0]["state"] == "connected"
            assert analysis.selected_pair["local_type"] != "relay"
            assert analysis.transactions(method="Binding")
            assert analysis.verdicts(code="ice-connected")
            assert analysis.check("ice.connected").status == "pass"
    ''')
    run(pytester).assert_outcomes(passed=1)


def test_failed_assertion_shows_found_value_and_frames(pytester: pytest.Pytester) -> None:
    _copy_capture("ice-unreachable.pcapng", pytester.path / "captures")
    pytester.makepyfile('''
        from stunscope.check.assertions import assert_connected

        def test_call(stunscope_capture):
            assert_connected(stunscope_capture("ice-unreachable.pcapng"))
    ''')
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*AssertionError: no ICE session connected: rule failed in *ice-unreachable.pcapng",
        "*FAIL   ice.connected",
        "*expected: ice.connected",
        "*found:    ice.connected = *false*",
        "*frames:   [0-9]*",
    ])


def test_marker_and_stun_analysis_with_option(pytester: pytest.Pytester, tmp_path: Path) -> None:
    elsewhere = tmp_path / "recordings"
    _copy_capture("ice-turn-relay.pcapng", elsewhere)
    pytester.makepyfile('''
        import pytest
        from stunscope.check.assertions import assert_rule

        @pytest.mark.stunscope_capture("ice-turn-relay.pcapng")
        def test_relay(stun_analysis):
            assert_rule(stun_analysis, "ice.selected.relayed")
            assert stun_analysis.allocations

        def test_without_marker(stun_analysis):
            pass
    ''')
    result = run(pytester, "--strict-markers",
                                f"--stunscope-captures={elsewhere}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*stun_analysis needs @pytest.mark.stunscope_capture(NAME)*"])


def test_ini_key_and_saved_analysis_json(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "data"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({
        "schema": "stunscope.analysis/1", "transactions": [], "allocations": [], "nat": [],
        "ice": [{"state": "failed", "pairs": [{"state": "failed", "local_type": "host",
                                               "remote_type": "host", "frames": [4, 9]}]}],
        "verdicts": [{"code": "ice-failed", "severity": "error", "message": "no pair", "frames": [4, 9]}],
    }))
    pytester.makeini("[pytest]\nstunscope_captures = data\n")
    pytester.makepyfile('''
        from stunscope.check.assertions import assert_no_verdict

        def test_saved(stunscope_capture):
            assert_no_verdict(stunscope_capture("run.json"), severity="error")
    ''')
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 of 1 verdicts match*ice-failed*", "*frames:   4, 9"])


def test_missing_capture_fails_with_where_it_looked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
        def test_missing(stunscope_capture):
            stunscope_capture("nope.pcapng")
    ''')
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*capture nope.pcapng not found in*captures*--stunscope-captures*"])


def test_plugin_can_be_switched_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(stunscope_capture):\n    pass\n")
    result = run(pytester, "-p", "no:stunscope")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'stunscope_capture' not found*"])


def test_damaged_capture_fails_unless_allowed(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "captures"
    folder.mkdir()
    data = (CAPTURES / "ice-host.pcapng").read_bytes()
    (folder / "cut.pcapng").write_bytes(data[: len(data) * 2 // 3 + 5])
    pytester.makepyfile('''
        def test_strict(stunscope_capture):
            stunscope_capture("cut.pcapng")

        def test_allowed(stunscope_capture):
            analysis = stunscope_capture("cut.pcapng", allow_damaged=True)
            assert analysis.input_error is not None and analysis.transactions()

        def test_bad_credential(stunscope_capture):
            stunscope_capture("cut.pcapng", credentials=["no-colon"])
    ''')
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*stunscope: *cut.pcapng*(pass allow_damaged=True to test what was read)*",
                                 "*stunscope: credential #1:*"])
