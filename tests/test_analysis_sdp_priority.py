"""Candidate priorities against RFC 8445 §5.1.2 (SDP lines) and §7.1.1 (checks' PRIORITY).

On the bundled captures and their real ``.sdp`` sidecars (aioice builds priorities with the
§5.1.2.1 formula and sends the peer-reflexive type preference in checks) nothing is found. The
findings come from modified copies of those real SDPs: a line is added to agent A's section, a
real relay candidate line (from ice-turn-relay.sdp) with its own priority or with a host-level
type preference, or a server-reflexive line ranked at or above the PRIORITY A's real checks carry.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stunscope.analysis import Analysis, analyze_file
from stunscope.analysis.ice import split_priority
from stunscope.analysis.sdp import follows_formula, parse_sdp, read_sdp
from stunscope.report.analysis_text import render

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
SIDECARS = sorted(CAPTURES.glob("*.sdp"))
FINDINGS = {"ice-priority-inversion", "ice-priority-unusual"}


def analyse(capture: Path, sdp_text: str) -> Analysis:
    analysis, damage = analyze_file(capture, sdp=[parse_sdp(sdp_text, "modified.sdp")])
    assert damage is None
    return analysis


def relay_line(priority: int | None = None) -> str:
    """The real relay candidate of ice-turn-relay.sdp (aioice, coturn), priority optionally set."""
    (line,) = [ln for ln in (CAPTURES / "ice-turn-relay.sdp").read_text().splitlines()
               if " typ relay" in ln]
    if priority is None:
        return line
    parts = line.split()
    parts[3] = str(priority)
    return " ".join(parts)


def with_line_for_a(sdp: Path, line: str) -> str:
    """``sdp`` with ``line`` added to agent A's media section (after its last candidate)."""
    text = sdp.read_text()
    sections = text.split("m=")
    index = next(i for i, s in enumerate(sections) if "a=mid:A" in s)
    head, _, tail = sections[index].rpartition("a=end-of-candidates")
    sections[index] = f"{head}{line}\r\na=end-of-candidates{tail}"
    return "m=".join(sections)


def a_ufrag(sdp: Path) -> str:
    section = next(s for s in sdp.read_text().split("m=") if "a=mid:A" in s)
    match = re.search(r"a=ice-ufrag:(\S+)", section)
    assert match
    return match.group(1)


@pytest.mark.parametrize("sdp", SIDECARS, ids=[p.stem for p in SIDECARS])
def test_real_sidecars_have_no_priority_findings(sdp: Path) -> None:
    parsed = read_sdp(sdp)
    assert parsed.candidates and all(follows_formula(c.priority, c.component) for c in parsed.candidates)
    analysis, _ = analyze_file(sdp.with_suffix(".pcapng"), sdp=[sdp])
    assert not FINDINGS & {v.code for v in analysis.verdicts}
    by_address = {str(c.address): c for c in parsed.candidates}
    for session in analysis.ice:
        for pair in session.pairs:
            cand = by_address.get(pair.local)
            assert pair.sdp_priority == (split_priority(cand.priority) if cand else None)
            if pair.priority is not None and cand is not None:
                # §7.1.1: the check carries the candidate's priority with the prflx type preference.
                assert pair.priority.local_preference == pair.sdp_priority.local_preference
                assert pair.priority.component == pair.sdp_priority.component == cand.component


def test_real_relay_line_below_host_is_not_a_finding() -> None:
    text = with_line_for_a(CAPTURES / "ice-host.sdp", relay_line())
    analysis = analyse(CAPTURES / "ice-host.pcapng", text)
    assert not FINDINGS & {v.code for v in analysis.verdicts}


def test_relay_with_host_level_type_preference_is_an_inversion() -> None:
    line = relay_line((126 << 24) | (65534 << 8) | 255)
    analysis = analyse(CAPTURES / "ice-host.pcapng", with_line_for_a(CAPTURES / "ice-host.sdp", line))
    (found,) = [v for v in analysis.verdicts if v.code == "ice-priority-inversion"]
    assert found.severity == "warning" and not found.frames
    assert line.removeprefix("a=") in found.message and "typ host" in found.message
    assert a_ufrag(CAPTURES / "ice-host.sdp") in found.subject
    assert "ice-priority-inversion" in render(analysis)
    assert analysis.ice[0].state == "connected"  # a warning about the SDP, the call still works


def test_priority_not_built_with_the_formula_is_noted_not_compared() -> None:
    # Low byte 254 for component 1: not the §5.1.2.1 formula, so no type preference to compare.
    line = relay_line((126 << 24) | (65534 << 8) | 254)
    analysis = analyse(CAPTURES / "ice-host.pcapng", with_line_for_a(CAPTURES / "ice-host.sdp", line))
    (note,) = [v for v in analysis.verdicts if v.code == "ice-priority-unusual"]
    assert note.severity == "info" and line.removeprefix("a=") in note.message
    assert "ice-priority-inversion" not in {v.code for v in analysis.verdicts}


@pytest.mark.parametrize(("srflx_type_preference", "inverted"), [(100, False), (110, True), (120, True)])
def test_check_priority_must_be_above_the_senders_srflx(srflx_type_preference: int,
                                                          inverted: bool) -> None:
    sdp = CAPTURES / "ice-host.sdp"
    host = next(c for c in read_sdp(sdp).candidates if c.ufrag == a_ufrag(sdp))
    line = (f"a=candidate:2 1 udp {(srflx_type_preference << 24) | (65535 << 8) | 255} "
            f"192.0.2.7 {host.address.port} typ srflx raddr {host.address.ip} rport {host.address.port}")
    analysis = analyse(CAPTURES / "ice-host.pcapng", with_line_for_a(sdp, line))
    found = [v for v in analysis.verdicts if v.code == "ice-priority-inversion"]
    assert bool(found) is inverted
    if inverted:
        (v,) = found
        checks = [t for t in analysis.transactions
                  if t.method == "Binding" and t.client == str(host.address)]
        assert str(host.address) in v.subject and set(v.frames) == {t.request_frames[0] for t in checks}
        assert f"type preference 110, not above the {srflx_type_preference}" in v.message
