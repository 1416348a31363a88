"""Verdicts and stories on the captures recorded from real programs (captures/: coturn, aioice).

Each capture's scenario (captures/scenarios.py) guarantees some facts; the tests assert those
properties, not numbers copied from a run. A capture that is not recorded yet is skipped.
Two verdicts come from the public corpus, where real traffic shows them: ``bad-fingerprint``
(nDPI stun.pcap frame 195) and ``symmetric-nat`` (a WhatsApp client getting a new public port
from every server).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CAPTURES, CORPUS

from stunscope.analysis import Analysis, analyze
from stunscope.capture.stream import open_events
from stunscope.wire.integrity import Keyring

EXPECTED = {
    "binding": set(),
    "turn-udp": set(),
    "turn-tcp": set(),
    "ice-host": {"ice-connected"},
    "ice-host-2": {"ice-connected"},
    "ice-turn-relay": {"ice-connected"},
    "ice-wrong-password": {"ice-auth-failure", "ice-failed"},
    "ice-unreachable": {"ice-failed", "ice-no-response", "icmp-unreachable"},
    "ice-role-conflict": {"ice-role-conflict", "ice-connected"},
    "ice-consent-lost": {"ice-connected", "ice-consent-lost", "icmp-unreachable"},
    "turn-wrong-password": {"turn-auth-failure", "bad-integrity"},
    "turn-stale-nonce": {"turn-stale-nonce"},
    "turn-forbidden-peer": {"turn-forbidden-peer"},
    "turn-allocation-mismatch": {"turn-allocation-mismatch"},
    "turn-expired": {"turn-allocation-expired"},
    "turn-data-without-permission": {"turn-data-without-permission"},
    "unanswered": {"unanswered-request"},
    "ipv6": set(),
}
"""Verdict codes each scenario provokes (at least these)."""

ERRORS_ALLOWED = {name for name, codes in EXPECTED.items() if codes - {"ice-connected"}}


def run(name: str) -> Analysis:
    path = CAPTURES / f"{name}.pcapng"
    if not path.is_file():
        pytest.skip(f"captures/{name}.pcapng is not recorded yet")
    sdp = [CAPTURES / f"{name}.sdp"] if (CAPTURES / f"{name}.sdp").is_file() else []
    keyring = Keyring()
    keyring.add_long_term("alice", "wonderland")  # the scenarios' TURN credential
    return analyze(open_events(path), keyring=keyring, sdp=sdp, file=str(path))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_provokes_its_verdicts(name: str) -> None:
    analysis = run(name)
    found = {v.code for v in analysis.verdicts}
    assert EXPECTED[name] <= found, EXPECTED[name] - found
    if name not in ERRORS_ALLOWED:
        errors = [v for v in analysis.verdicts if v.severity == "error"]
        assert errors == [], errors
    for v in analysis.verdicts:
        assert v.frames and v.message and v.severity in ("error", "warning", "info")
        assert all(1 <= f <= analysis.capture.frames for f in v.frames)


def test_binding_rfc5780_answers_pair_and_show_no_nat() -> None:
    analysis = run("binding")
    assert analysis.transactions and {t.outcome for t in analysis.transactions} == {"success"}
    # coturn answers CHANGE-REQUEST tests from its alternate address; on loopback nothing
    # filters them, and the mapped address is the local one.
    tested = [n for n in analysis.nat if n.filtering_behavior != "unknown"]
    assert tested and all(n.filtering_behavior == "endpoint-independent" for n in tested)
    assert all(n.mapped == (n.local,) for n in analysis.nat)


def test_ice_host_connects_directly_on_sdp_host_candidates() -> None:
    (session,) = run("ice-host").ice
    assert session.state == "connected" and session.relayed is False
    sel = session.selected_pair
    assert sel.nominated and sel.local_type == sel.remote_type == "host"
    assert session.consent == "fresh"


def test_ice_through_turn_uses_the_relay_and_accounts_its_channel() -> None:
    analysis = run("ice-turn-relay")
    (session,) = analysis.ice
    assert session.state == "connected" and session.relayed is True
    (alloc,) = analysis.allocations
    assert alloc.challenges >= 1 and alloc.auth_failures == 0
    sel = session.selected_pair
    assert alloc.relayed in (sel.local, sel.remote)
    (channel,) = alloc.channels
    assert channel.peer in (sel.local, sel.remote) and channel.packets > 0
    (peer,) = alloc.peers
    assert peer.to_peer_packets > 0 and peer.from_peer_packets > 0
    assert "bad-integrity" not in {v.code for v in analysis.verdicts}


def test_turn_udp_allocations_follow_the_credential_flow() -> None:
    analysis = run("turn-udp")
    assert analysis.allocations
    for alloc in analysis.allocations:
        assert alloc.challenges >= 1 and alloc.auth_failures == 0
        assert alloc.relayed and alloc.lifetime_s and alloc.state in ("active", "deallocated")
    assert any(a.channels for a in analysis.allocations)
    assert any(p.to_peer_bytes and p.from_peer_bytes for a in analysis.allocations for p in a.peers)
    assert all(t.outcome in ("success", "error") for t in analysis.transactions)
    assert {t.error_code for t in analysis.transactions if t.outcome == "error"} <= {401}


def test_turn_tcp_allocation_is_over_tcp_with_rfc6062_connections() -> None:
    analysis = run("turn-tcp")
    assert analysis.allocations and all(a.transport == "tcp" for a in analysis.allocations)
    conns = [c for a in analysis.allocations for c in a.tcp_connections]
    # turnutils_uclient -T: one side Connects, the other gets a ConnectionAttempt; both bind.
    assert {c.initiated_by for c in conns} == {"connect", "peer"}
    assert all(c.bound and c.peer for c in conns)


def test_ipv6_allocations_have_ipv6_addresses() -> None:
    analysis = run("ipv6")
    assert analysis.allocations
    for alloc in analysis.allocations:
        assert alloc.client.startswith("[") and alloc.relayed.startswith("[")


def test_turn_wrong_password_fails_the_allocation() -> None:
    analysis = run("turn-wrong-password")
    assert analysis.allocations
    assert all(a.state == "failed" and a.auth_failures >= 1 for a in analysis.allocations)


def test_turn_expired_allocation_state() -> None:
    analysis = run("turn-expired")
    assert any(a.state == "expired" for a in analysis.allocations)


def test_turn_forbidden_peer_names_the_refused_peer() -> None:
    analysis = run("turn-forbidden-peer")
    refused = [v for v in analysis.verdicts if v.code == "turn-forbidden-peer"]
    assert all(v.subject.split(" peer ")[1] in v.message for v in refused)
    allowed = {p.peer_ip for a in analysis.allocations for p in a.permissions}
    assert all(v.subject.split(" peer ")[1].rsplit(":", 1)[0] not in allowed for v in refused)


def test_ice_unreachable_pairs_fail_by_icmp() -> None:
    analysis = run("ice-unreachable")
    (session,) = analysis.ice
    assert session.state == "failed"
    assert all(p.state == "failed" and p.failure == "icmp-unreachable" for p in session.pairs)


def test_ice_role_conflict_resolves_by_switching() -> None:
    analysis = run("ice-role-conflict")
    (session,) = analysis.ice
    assert session.role_conflicts >= 1 and session.role_switches
    assert session.state == "connected"


def test_ice_consent_lost_after_connecting() -> None:
    """Connected, consent answered once, then more than 30 s of unanswered consent checks."""
    analysis = run("ice-consent-lost")
    (session,) = analysis.ice
    assert session.state == "connected" and session.relayed is False
    assert session.selected_pair.nominated and session.consent == "lost"
    (connected,) = [v for v in analysis.verdicts if v.code == "ice-connected"]
    (lost,) = [v for v in analysis.verdicts if v.code == "ice-consent-lost"]
    assert lost.severity == "error" and lost.subject == connected.subject
    assert min(lost.frames) > max(connected.frames)
    last_answer = max(t.response_frame for t in analysis.transactions if t.outcome == "success")
    assert min(lost.frames) > last_answer


def corpus_file(name: str) -> Path:
    path = CORPUS / "ntop+nDPI" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def test_bad_fingerprint_in_real_traffic() -> None:
    path = corpus_file("stun.pcap")
    (v,) = [v for v in analyze(open_events(path)).verdicts if v.code == "bad-fingerprint"]
    assert v.severity == "error" and v.frames == (195,)


def test_symmetric_nat_in_real_traffic() -> None:
    analysis = analyze(open_events(corpus_file("whatsapp_voice_and_message.pcap")))
    (nat,) = [n for n in analysis.nat if len(n.mapped) > 1]
    assert nat.mapping_behavior in ("address-dependent", "address-and-port-dependent")
    assert nat.rfc3489_type == "symmetric"
    assert len({b.server for b in nat.bindings}) >= 2
    assert "symmetric-nat" in {v.code for v in analysis.verdicts}


def test_wrong_ice_password_makes_real_checks_fail_integrity() -> None:
    from stunscope.analysis.sdp import parse_sdp

    path = CAPTURES / "ice-host.pcapng"
    if not path.is_file():
        pytest.skip("captures/ice-host.pcapng is not recorded yet")
    wrong = parse_sdp("a=ice-ufrag:EBB3\r\na=ice-pwd:not-the-real-password\r\n")
    found = {v.code for v in analyze(open_events(path), sdp=[wrong]).verdicts}
    assert {"bad-integrity", "ice-auth-failure"} <= found
    right = analyze(open_events(path), sdp=[CAPTURES / "ice-host.sdp"]).verdicts
    assert not {"bad-integrity", "ice-auth-failure"} & {v.code for v in right}
