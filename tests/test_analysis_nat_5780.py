"""RFC 5780 §4.5 hairpinning and §4.6 mapping lifetime in the NAT analysis.

The bundled captures nat-hairpin and nat-lifetime were recorded from coturn's
turnutils_natdiscovery (-H, -t -T N) against a real turnserver, behind a user-space cone NAT
that does or does not hairpin and drops idle mappings after 2 s, and without a NAT
(captures/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_analysis_support import (
    BINDING, ERROR, REQUEST, SUCCESS, Script, codes, txid, username, xor_mapped,
)

from stunscope.analysis.analyzer import analyze_file
from stunscope.analysis.results import NatEndpoint
from stunscope.capture.events import MessageEvent
from stunscope.capture.stats import CaptureStats
from stunscope.capture.stream import open_events
from stunscope.cli import main
from stunscope.report.analysis_text import render
from stunscope.wire.message import Endpoint

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
HAIRPIN = CAPTURES / "nat-hairpin.pcapng"
LIFETIME = CAPTURES / "nat-lifetime.pcapng"
PUBLIC = "127.0.0.5"  # the user-space NAT's outside address in both captures
RESPONSE_PORT = 0x0027


def nat_results(s: Script) -> list[NatEndpoint]:
    return list(s.analyze().nat)


def from_file(path: Path, upto: int | None = None) -> tuple[list[NatEndpoint], dict[int, MessageEvent]]:
    """The NAT results of the capture (cut after frame ``upto``), and its messages by frame."""
    s = Script()
    s.events = [ev for ev in open_events(path, CaptureStats()) if upto is None or ev[0] <= upto]
    frames = {ev[0]: ev for ev in s.events if ev.__class__ is MessageEvent}
    return nat_results(s), frames


def by_hairpinning(nats: list[NatEndpoint]) -> dict[str, NatEndpoint]:
    """The first endpoint of each hairpinning result."""
    out: dict[str, NatEndpoint] = {}
    for nat in nats:
        out.setdefault(nat.hairpinning.result, nat)
    return out


# -- hairpinning (RFC 5780 §4.5) ------------------------------------------------------------

def test_hairpin_capture_supported_not_supported_and_no_nat() -> None:
    nats, frames = from_file(HAIRPIN)
    tested = [n for n in nats if n.hairpinning.frames]
    assert sorted(n.hairpinning.result for n in tested) == ["not-supported", "supported", "unknown"]
    found = by_hairpinning(tested)

    yes = found["supported"]
    sent, arrived = (frames[f] for f in yes.hairpinning.frames)
    assert str(sent.dst) == yes.mapped[0] and sent.dst.ip == PUBLIC  # to its mapped address
    assert str(arrived.dst) == yes.local and arrived.src.ip == PUBLIC  # back in through the NAT
    assert arrived.message.txid == sent.message.txid

    no = found["not-supported"]
    (sent_no,) = (frames[f] for f in no.hairpinning.frames)
    assert str(sent_no.dst) == no.mapped[0] and sent_no.dst.ip == PUBLIC
    assert not [ev for ev in frames.values()
                if ev.message.txid == sent_no.message.txid and ev.frame != sent_no.frame]

    none = found["unknown"]
    assert none.mapped == (none.local,) and "no NAT" in none.hairpinning.reason
    assert str(frames[none.hairpinning.frames[0]].dst) == none.local


def test_hairpin_request_at_the_end_of_a_capture_is_unknown() -> None:
    full, _ = from_file(HAIRPIN)
    sent = by_hairpinning(full)["not-supported"].hairpinning.frames[0]
    cut, _ = from_file(HAIRPIN, upto=sent)  # the capture stops right after the request
    (nat,) = [n for n in cut if n.hairpinning.frames == (sent,)]
    assert nat.hairpinning.result == "unknown" and "capture ended" in nat.hairpinning.reason


def test_answered_hairpin_request_is_supported() -> None:
    s = Script()
    s.transaction(0, "10.0.0.1:5000", "192.0.2.1:3478", BINDING, resp=[xor_mapped("203.0.113.5:6000")])
    tid = txid()
    sent = s.send(1, "10.0.0.2:5001", "203.0.113.5:6000", BINDING, REQUEST, tid)
    answer = s.send(1.01, "203.0.113.5:6000", "10.0.0.2:5001", BINDING, SUCCESS, tid,
                    [xor_mapped("203.0.113.5:6001")])
    (nat,) = nat_results(s)
    assert nat.hairpinning.result == "supported" and nat.hairpinning.frames == (sent, answer)
    assert "answered" in nat.hairpinning.reason


def test_ice_checks_to_a_mapped_address_are_not_hairpin_tests() -> None:
    s = Script()
    s.transaction(0, "10.0.0.1:5000", "192.0.2.1:3478", BINDING, resp=[xor_mapped("203.0.113.5:6000")])
    s.transaction(1, "10.0.0.2:5001", "203.0.113.5:6000", BINDING, [username("a:b")], resp=None)
    s.transaction(5, "10.9.9.9:1", "192.0.2.1:3478", BINDING, resp=[])  # the clock moves on
    (nat,) = [n for n in nat_results(s) if n.local == "10.0.0.1:5000"]
    assert nat.hairpinning.result == "unknown" and nat.hairpinning.frames == ()


# -- mapping lifetime (RFC 5780 §4.6) -------------------------------------------------------

def test_lifetime_capture_bounds() -> None:
    nats, frames = from_file(LIFETIME)
    tested = {n.local: n for n in nats if n.mapping_lifetime.frames}
    assert len(tested) == 3
    gone = [n for n in tested.values() if n.mapping_lifetime.max_s is not None]
    alive = [n for n in tested.values() if n.mapping_lifetime.min_s is not None]
    assert len(gone) == 1 and len(alive) == 2

    (expired,) = gone  # natdiscovery -T 3 behind a NAT that forgets mappings idle for 2 s
    life = expired.mapping_lifetime
    assert life.min_s is None and 2.9 < life.max_s < 3.5  # type: ignore[operator]
    (probe,) = (frames[f] for f in life.frames)
    attr = next(a for a in probe.message.attributes if a.type == RESPONSE_PORT)
    mapped = Endpoint(PUBLIC, int.from_bytes(attr.raw[:2], "big"))
    assert expired.mapped == (str(mapped),) and str(probe.src) != expired.local

    for nat in alive:  # natdiscovery -T 1, behind the NAT and without one
        life = nat.mapping_lifetime
        assert life.max_s is None and 0.9 < life.min_s < 1.5  # type: ignore[operator]
        request, answer = (frames[f] for f in life.frames)
        assert request.message.txid == answer.message.txid
        assert str(answer.dst) == nat.local != str(request.src)  # answered to the idle endpoint
    assert ["no NAT" in n.mapping_lifetime.reason for n in alive].count(True) == 1


def _lifetime_script(answer_to: str | None, cls: int = SUCCESS) -> Script:
    s = Script()
    s.transaction(0, "10.0.0.1:5000", "192.0.2.1:3478", BINDING, resp=[xor_mapped("203.0.113.5:6000")])
    tid = txid()
    port = (6000).to_bytes(2, "big") + b"\0\0"
    s.send(30, "10.0.0.1:5002", "192.0.2.1:3478", BINDING, REQUEST, tid, [(RESPONSE_PORT, port)])
    if answer_to is not None:
        s.send(30.02, "192.0.2.1:3478", answer_to, BINDING, cls, tid, [xor_mapped("203.0.113.5:6002")])
    s.transaction(31, "10.9.9.9:1", "192.0.2.1:3478", BINDING, resp=[])  # the clock moves on
    return s


def test_lifetime_from_a_script_both_ways() -> None:
    (alive,) = [n for n in nat_results(_lifetime_script("10.0.0.1:5000"))
                if n.local == "10.0.0.1:5000"]
    assert (alive.mapping_lifetime.min_s, alive.mapping_lifetime.max_s) == (29.98, None)
    (gone,) = [n for n in nat_results(_lifetime_script(None)) if n.local == "10.0.0.1:5000"]
    assert (gone.mapping_lifetime.min_s, gone.mapping_lifetime.max_s) == (None, 29.98)


@pytest.mark.parametrize("answer_to, cls, why", [
    ("10.0.0.1:5002", SUCCESS, "not to this endpoint's mapping"),  # RESPONSE-PORT ignored
    ("10.0.0.1:5000", ERROR, "refused"),  # e.g. 420 Unknown Attribute
])
def test_lifetime_test_the_server_did_not_run_is_unknown(answer_to: str, cls: int, why: str) -> None:
    (nat,) = [n for n in nat_results(_lifetime_script(answer_to, cls))
              if n.local == "10.0.0.1:5000"]
    life = nat.mapping_lifetime
    assert (life.min_s, life.max_s) == (None, None) and why in life.reason and life.frames


# -- captures without these tests, JSON and text --------------------------------------------

@pytest.mark.parametrize("name", ["binding", "nat-symmetric", "ipv6", "bad-fingerprint"])
def test_captures_without_5780_tests_are_unknown(name: str) -> None:
    nats, _ = from_file(CAPTURES / f"{name}.pcapng")
    assert nats
    for nat in nats:
        assert nat.hairpinning.result == "unknown" and nat.hairpinning.frames == ()
        assert "no RFC 5780 §4.5 test" in nat.hairpinning.reason
        life = nat.mapping_lifetime
        assert (life.min_s, life.max_s, life.frames) == (None, None, ())
        assert "no RFC 5780 §4.6 test" in life.reason


@pytest.mark.parametrize("path", [HAIRPIN, LIFETIME])
def test_analyze_json_has_the_fields(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(path), "--format", "json"]) == 0
    nat = json.loads(capsys.readouterr().out)["nat"]
    assert nat
    for entry in nat:
        assert {"local", "mapped", "mapping_behavior", "filtering_behavior", "rfc3489_type"} <= set(entry)
        assert set(entry["hairpinning"]) == {"result", "reason", "frames"}
        assert entry["hairpinning"]["result"] in ("supported", "not-supported", "unknown")
        assert set(entry["mapping_lifetime"]) == {"min_s", "max_s", "reason", "frames"}


def test_test_requests_are_not_unanswered_requests() -> None:
    """A hairpinning request nobody answers, and a lifetime test whose answer is lost, are
    RFC 5780 results, not failures; a plain Binding nobody answers still is one."""
    for path in (HAIRPIN, LIFETIME):
        assert "unanswered-request" not in codes(analyze_file(path)[0]), path.name
    s = _lifetime_script(None)
    s.transaction(40, "10.0.0.1:5003", "192.0.2.1:3478", BINDING, resp=None)
    assert "unanswered-request" in codes(s.analyze())


def test_text_report_shows_the_tests() -> None:
    section = "".join(render(analyze_file(path)[0]).partition("NAT BEHAVIOUR")[2]
                      for path in (HAIRPIN, LIFETIME))
    for word in ("hairpinning supported", "hairpinning not-supported", "hairpinning unknown: no NAT",
                 "mapping lifetime at least 1", "mapping lifetime at most 3"):
        assert word in section, word
    quiet = render(analyze_file(CAPTURES / "nat-symmetric.pcapng")[0])
    assert "hairpinning" not in quiet and "mapping lifetime" not in quiet



def test_unanswered_requests_leave_no_state_in_the_nat_tracker() -> None:
    """Plain Binding requests waiting for an answer are the transaction table's business (bounded,
    evictions counted). A NAT-side copy of them, evicted oldest-first from a dict, once made
    bench/abuse.py's million unanswered requests take 28 s instead of 13 s: the tracker keeps
    nothing for a request that is no RFC 5780 test, and a mapping still comes from the answer."""
    from test_analysis_support import ep, message

    from stunscope.analysis import nat

    tracker = nat.NatTracker()
    client, server = ep("10.0.0.2:5000"), ep("192.0.2.1:3478")
    for frame in range(1, 5001):
        tracker.binding(client, server, message(BINDING, REQUEST, frame.to_bytes(12, "big")),
                        frame, frame * 1e-3)
    tables = {name: getattr(tracker, name) for name in nat.NatTracker.__slots__}
    assert {name: len(t) for name, t in tables.items() if hasattr(t, "__len__") and t} == {}
    s = Script()
    tid = txid()
    s.send(0.0, "10.0.0.2:5000", "192.0.2.1:3478", BINDING, REQUEST, tid)
    s.send(0.01, "192.0.2.1:3478", "10.0.0.2:5000", BINDING, SUCCESS, tid, [xor_mapped("203.0.113.7:7000")])
    (result,) = nat_results(s)
    assert result.mapped == ("203.0.113.7:7000",)
