"""``stunscope messages --sdp FILE``: the SDP's a=ice-pwd values verify the ICE checks'
MESSAGE-INTEGRITY (RFC 8445 §7.2.2, RFC 8839 §5.4), as ``analyze --sdp`` does; ``check --sdp``
passes them to its per-message collection too.

Real captures: two aioice agents (captures/README.md), with the SDP the recorder wrote.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from conftest import CAPTURES
from stunscope.cli import main
from stunscope.errors import EXIT_BAD_INPUT

HOST, HOST_SDP = CAPTURES / "ice-host.pcapng", CAPTURES / "ice-host.sdp"


def _run(argv: list[str], capsysbinary: pytest.CaptureFixture[bytes]) -> tuple[int, bytes, str]:
    code = main(argv)
    out, err = capsysbinary.readouterr()
    return code, out, err.decode()


def _integrity(argv: list[str], capsysbinary: pytest.CaptureFixture[bytes]) -> dict[int, str | None]:
    """Frame -> integrity of every ICE check (a Binding with USERNAME) and its answer."""
    code, out, err = _run(["messages", *argv, "--format", "jsonl"], capsysbinary)
    assert code == 0, err
    objs = [orjson.loads(line) for line in out.splitlines()]
    return {o["frame"]: o["integrity"] for o in objs if o["kind"] == "stun" and o["method"] == "Binding"}


def test_without_sdp_the_checks_are_unchecked(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    found = _integrity([str(HOST)], capsysbinary)
    assert found and set(found.values()) == {"no-key"}


def test_with_sdp_the_checks_verify(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    found = _integrity([str(HOST), "--sdp", str(HOST_SDP)], capsysbinary)
    assert found and set(found.values()) == {"ok"}
    code, out, _ = _run(["messages", str(HOST), "--sdp", str(HOST_SDP)], capsysbinary)
    lines = [line for line in out.decode().splitlines() if " Binding " in line]
    assert code == 0 and lines and all(line.endswith("mi=ok") for line in lines)


def test_an_sdp_with_a_wrong_password_gives_bad(tmp_path: Path,
                                                capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    wrong = tmp_path / "wrong.sdp"
    text, count = re.subn(r"a=ice-pwd:\S+", "a=ice-pwd:notthepasswordofthisagent0", HOST_SDP.read_text())
    assert count == 2
    wrong.write_text(text)
    found = _integrity([str(HOST), "--sdp", str(wrong)], capsysbinary)
    assert found and set(found.values()) == {"bad"}


def test_each_sdp_adds_its_passwords(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """Offer and answer in two files (--sdp is repeatable): each agent's checks verify with the
    password of the SDP that carries it; with only one file, the other agent's stay bad."""
    sections = HOST_SDP.read_text().split("m=")
    offer, answer = tmp_path / "offer.sdp", tmp_path / "answer.sdp"
    offer.write_text(sections[0] + "m=" + sections[1])
    answer.write_text(sections[0] + "m=" + sections[2])
    both = _integrity([str(HOST), "--sdp", str(offer), "--sdp", str(answer)], capsysbinary)
    assert set(both.values()) == {"ok"}
    one = _integrity([str(HOST), "--sdp", str(offer)], capsysbinary)
    assert set(one.values()) == {"ok", "bad"}


def test_the_real_wrong_password_capture_is_bad_with_its_sdp(
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """ice-wrong-password: the agents sign with wrong passwords, the .sdp holds the true ones."""
    capture = CAPTURES / "ice-wrong-password.pcapng"
    found = _integrity([str(capture), "--sdp", str(capture.with_suffix(".sdp"))], capsysbinary)
    requests = {frame: value for frame, value in found.items() if value is not None}
    assert requests and set(requests.values()) == {"bad"}


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_an_unreadable_sdp_is_one_line_and_the_same_exit_as_analyze(
        kind: str, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    sdp = tmp_path / "nope.sdp"
    if kind == "directory":
        sdp.mkdir()
    code, out, err = _run(["messages", str(HOST), "--sdp", str(sdp)], capsysbinary)
    analyze_code, _, analyze_err = _run(["analyze", str(HOST), "--sdp", str(sdp)], capsysbinary)
    assert code == analyze_code == EXIT_BAD_INPUT
    assert out == b"" and err == analyze_err
    assert len(err.splitlines()) == 1 and str(sdp) in err and "Traceback" not in err


def test_check_sdp_reaches_the_messages_collection(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    rules = ["--expect", 'no messages where integrity == "no-key"',
             "--expect", 'count(messages where integrity == "ok") >= 1']
    with_sdp, out, _ = _run(["check", str(HOST), "--sdp", str(HOST_SDP), *rules], capsysbinary)
    assert with_sdp == 0, out.decode()
    without, _, _ = _run(["check", str(HOST), *rules], capsysbinary)
    assert without == 1


def test_the_pytest_plugin_messages_use_the_sdp_passwords(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """CaptureAnalysis.from_file(..., sdp=) (what the plugin's fixture opens) reads messages with
    the SDP's passwords, as messages --sdp and check --sdp do."""
    from stunscope.check.assertions import CaptureAnalysis

    expected = _integrity([str(HOST), "--sdp", str(HOST_SDP)], capsysbinary)
    for sdp, values in (((), {"no-key"}), ((HOST_SDP,), {"ok"})):
        opened = CaptureAnalysis.from_file(HOST, sdp=sdp)
        found = {m["frame"]: m["integrity"] for m in opened.messages()
                 if m["kind"] == "stun" and m["method"] == "Binding"}
        assert found.keys() == expected.keys() and set(found.values()) == values
