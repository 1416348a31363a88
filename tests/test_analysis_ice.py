"""ICE sessions (RFC 8445): grouping by ufrags, pairs, nomination, roles, consent, candidates."""

from __future__ import annotations

from test_analysis_support import (
    ALLOCATE,
    BINDING,
    ERROR,
    REQUEST,
    SUCCESS,
    USE_CANDIDATE,
    Script,
    codes,
    controlled,
    controlling,
    error,
    find,
    priority,
    txid,
    username,
    xor_mapped,
    xor_peer,
    xor_relayed,
)

from stunscope.analysis.ice import split_priority
from stunscope.analysis.sdp import parse_sdp

L, R = "10.0.0.1:5000", "10.0.0.2:6000"
L2 = "10.0.0.1:5001"


def check(s: Script, at: float, src: str, dst: str, sender: str, receiver: str, role: list,
          extra: list = (), answer: list | None = None, cls: int = SUCCESS, rtt: float = 0.01):  # type: ignore[assignment]
    tid = txid()
    req = [username(f"{receiver}:{sender}"), priority(110), *role, *extra]
    first = s.send(at, src, dst, BINDING, REQUEST, tid, req)
    if answer is not None:
        s.send(at + rtt, dst, src, BINDING, cls, tid, answer)
    return first


def test_both_directions_form_one_session_with_a_nominated_pair() -> None:
    s = Script()
    check(s, 0.0, L, R, "aaaa", "bbbb", [controlling(5)], answer=[xor_mapped(L)])
    check(s, 0.01, R, L, "bbbb", "aaaa", [controlled(9)], answer=[xor_mapped(R)])
    check(s, 0.5, L, R, "aaaa", "bbbb", [controlling(5)], [USE_CANDIDATE], answer=[xor_mapped(L)])
    result = s.analyze()
    (session,) = result.ice
    assert (session.local_ufrag, session.remote_ufrag) == ("aaaa", "bbbb")
    assert session.state == "connected" and session.controlling is True
    (pair,) = session.pairs
    assert (pair.local, pair.remote, pair.state, pair.nominated) == (L, R, "succeeded", True)
    assert pair.checks == 3 and pair.successes == 3
    assert session.selected_pair == pair and session.relayed is False
    assert session.tie_breakers == {"aaaa": f"{5:016x}", "bbbb": f"{9:016x}"}
    assert "ice-connected" in codes(result)


def test_no_response_and_failure() -> None:
    s = Script()
    for i in range(3):
        check(s, i * 0.5, L, R, "aaaa", "bbbb", [controlling(5)])
    result = s.analyze()
    (session,) = result.ice
    assert session.state == "failed" and session.pairs[0].failure == "timeout"
    assert {"ice-no-response", "ice-failed"} <= codes(result)


def test_icmp_unreachable_fails_the_pair() -> None:
    s = Script()
    check(s, 0.0, L, R, "aaaa", "bbbb", [controlling(5)])
    frame = s.unreachable(0.001, L, R)
    result = s.analyze()
    (pair,) = result.ice[0].pairs
    assert pair.failure == "icmp-unreachable" and frame in pair.frames
    (failed,) = find(result, "ice-failed")
    assert "ICMP" in failed.message


def test_auth_failure_on_401() -> None:
    s = Script()
    check(s, 0.0, L, R, "aaaa", "bbbb", [controlling(5)], answer=[error(401, "Unauthorized")], cls=ERROR)
    result = s.analyze()
    assert "ice-auth-failure" in codes(result)
    assert result.ice[0].pairs[0].failure == "error 401"


def test_role_conflict_and_switch() -> None:
    s = Script()
    check(s, 0.0, L, R, "aaaa", "bbbb", [controlling(5)], answer=[error(487, "Role Conflict")], cls=ERROR)
    check(s, 0.01, R, L, "bbbb", "aaaa", [controlling(9)], answer=[xor_mapped(R)])
    switch = check(s, 0.5, L, R, "aaaa", "bbbb", [controlled(5)], answer=[xor_mapped(L)])
    result = s.analyze()
    (session,) = result.ice
    assert session.role_conflicts == 1 and session.role_switches == (switch,)
    assert session.controlling is False
    assert "ice-role-conflict" in codes(result)


def test_consent_lost_after_30_s_without_answers() -> None:
    s = Script()
    check(s, 0.0, L, R, "aaaa", "bbbb", [controlling(5)], [USE_CANDIDATE], answer=[xor_mapped(L)])
    for at in (5.0, 10.0, 15.0):
        check(s, at, L, R, "aaaa", "bbbb", [controlling(5)], answer=[xor_mapped(L)])
    for at in range(20, 60, 5):
        check(s, float(at), L, R, "aaaa", "bbbb", [controlling(5)])
    result = s.analyze()
    assert result.ice[0].consent == "lost"
    assert "ice-consent-lost" in codes(result)


def test_consent_fresh_with_regular_answers() -> None:
    s = Script()
    for at in range(0, 60, 5):
        check(s, float(at), L, R, "aaaa", "bbbb", [controlling(5)], [USE_CANDIDATE], answer=[xor_mapped(L)])
    result = s.analyze()
    assert result.ice[0].consent == "fresh" and "ice-consent-lost" not in codes(result)


def test_prflx_candidate_and_srflx_from_stun_server() -> None:
    s = Script()
    s.transaction(0.0, L2, "192.0.2.50:3478", BINDING, resp=[xor_mapped("203.0.113.1:7000")])
    check(s, 1.0, L, R, "aaaa", "bbbb", [controlling(5)], answer=[xor_mapped("203.0.113.9:5000")])
    check(s, 1.1, "203.0.113.1:7000", R, "aaaa", "bbbb", [controlling(5)], answer=[xor_mapped("203.0.113.1:7000")])
    # R answers the check it saw coming from the address L's NAT gave: learned only from the
    # first check's answer, so peer-reflexive.
    check(s, 1.2, R, "203.0.113.9:5000", "bbbb", "aaaa", [controlled(9)], answer=[xor_mapped(R)])
    result = s.analyze()
    pairs = {p.local: p for p in result.ice[0].pairs}
    assert pairs[L].local_type == "host" and pairs[L].remote_type == "host"
    assert pairs["203.0.113.1:7000"].local_type == "srflx"
    assert pairs["203.0.113.9:5000"].local_type == "prflx"


def test_checks_through_turn_use_relayed_address_and_peer() -> None:
    s = Script()
    client, server, relayed, peer = "10.0.0.1:5000", "192.0.2.1:3478", "192.0.2.1:50000", "198.51.100.7:7000"
    s.transaction(0.0, client, server, ALLOCATE, resp=[xor_relayed(relayed), xor_mapped("203.0.113.5:1")])
    tid = txid()
    s.send(1.0, client, server, BINDING, REQUEST, tid,
           [username("bbbb:aaaa"), priority(0), controlling(1), USE_CANDIDATE],
           tunnel="send", peer=peer)
    s.send(1.05, server, client, BINDING, SUCCESS, tid, [xor_mapped(relayed)], tunnel="data", peer=peer)
    result = s.analyze()
    (session,) = result.ice
    (pair,) = session.pairs
    assert (pair.local, pair.remote, pair.local_type, pair.state) == (relayed, peer, "relay", "succeeded")
    assert session.relayed is True
    (v,) = find(result, "ice-connected")
    assert "through a TURN relay" in v.message


def test_sdp_labels_candidates() -> None:
    sdp = parse_sdp(
        "v=0\r\na=ice-ufrag:aaaa\r\na=ice-pwd:secretsecretsecret\r\nm=audio 9 UDP 0\r\n"
        "a=candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host\r\n"
        "a=candidate:2 1 udp 1694498815 203.0.113.1 7000 typ srflx raddr 10.0.0.1 rport 5000\r\n",
        "offer",
    )
    assert sdp.credentials == (("aaaa", "secretsecretsecret"),)
    assert [c.type for c in sdp.candidates] == ["host", "srflx"]
    assert split_priority(sdp.candidates[0].priority).type_preference == 126
    s = Script()
    check(s, 0.0, L, R, "aaaa", "bbbb", [controlling(5)], answer=[xor_mapped(L)])
    result = s.analyze(sdp=[sdp])
    assert result.ice[0].pairs[0].local_type == "host"


def test_priority_decomposition() -> None:
    p = split_priority((110 << 24) | (65535 << 8) | (256 - 1))
    assert (p.type_preference, p.local_preference, p.component) == (110, 65535, 1)


def test_check_priority_other_than_prflx_is_noted() -> None:
    s = Script()
    tid = txid()
    s.send(0.0, L, R, BINDING, REQUEST, tid, [username("bbbb:aaaa"), priority(126), controlling(1)])
    s.send(0.01, R, L, BINDING, SUCCESS, tid, [xor_mapped(L)])
    check(s, 1.0, L2, R, "aaaa", "bbbb", [controlling(1)], answer=[xor_mapped(L2)])
    (v,) = find(s.analyze(), "ice-priority-unusual")
    assert v.severity == "info" and L in v.subject and "126" in v.message
