"""TURN allocations (RFC 8656): credential flow, expiry math, permissions, channels, data."""

from __future__ import annotations

from test_analysis_support import (
    ALLOCATE,
    CHANNEL_BIND,
    CONNECT,
    CONNECTION_ATTEMPT,
    CONNECTION_BIND,
    CREATE_PERMISSION,
    DATA,
    ERROR,
    INDICATION,
    REFRESH,
    SEND,
    SUCCESS,
    Script,
    channel,
    codes,
    connection_id,
    data_attr,
    error,
    find,
    integrity,
    lifetime,
    realm,
    txid,
    username,
    xor_mapped,
    xor_peer,
    xor_relayed,
)

C, S = "10.0.0.1:5000", "192.0.2.1:3478"
RELAYED, MAPPED = "192.0.2.1:50000", "203.0.113.5:6000"
PEER, PEER2 = "198.51.100.7:7000", "198.51.100.8:8000"
AUTH = [username("alice"), realm("example.org"), integrity()]


def allocate(s: Script, at: float = 0.0, life: int = 600) -> None:
    """The usual flow: unauthenticated Allocate, 401 challenge, authenticated retry, success."""
    s.transaction(at, C, S, ALLOCATE, resp=[error(401, "Unauthorized"), realm("example.org")], cls=ERROR)
    s.transaction(at + 0.1, C, S, ALLOCATE, AUTH,
                  [xor_relayed(RELAYED), xor_mapped(MAPPED), lifetime(life)])


def test_challenge_then_success_is_not_an_auth_failure() -> None:
    s = Script()
    allocate(s)
    result = s.analyze()
    (a,) = result.allocations
    assert (a.state, a.relayed, a.mapped, a.lifetime_s) == ("active", RELAYED, MAPPED, 600)
    assert (a.challenges, a.auth_failures, a.username, a.realm) == (1, 0, "alice", "example.org")
    assert "turn-auth-failure" not in codes(result)


def test_401_to_credentialed_request_is_wrong_password() -> None:
    s = Script()
    s.transaction(0, C, S, ALLOCATE, resp=[error(401)], cls=ERROR)
    s.transaction(0.1, C, S, ALLOCATE, AUTH, [error(401)], cls=ERROR)
    result = s.analyze()
    (a,) = result.allocations
    assert a.state == "failed" and a.auth_failures == 1
    (v,) = find(result, "turn-auth-failure")
    assert v.severity == "error" and v.frames == (3, 4)


def test_stale_nonce_then_retry() -> None:
    s = Script()
    allocate(s)
    s.transaction(100, C, S, REFRESH, AUTH, [error(438, "Stale Nonce")], cls=ERROR)
    s.transaction(100.1, C, S, REFRESH, AUTH, [lifetime(600)])
    result = s.analyze()
    (a,) = result.allocations
    assert a.stale_nonces == 1 and a.refreshes == 1
    assert a.expires_ts == s.t0 + 100.1 + 0.02 + 600
    (v,) = find(result, "turn-stale-nonce")
    assert v.severity == "info"  # recovered by the retry


def test_stale_nonce_without_a_successful_retry_is_a_warning() -> None:
    s = Script()
    allocate(s)
    s.transaction(100, C, S, REFRESH, AUTH, [error(438, "Stale Nonce")], cls=ERROR)
    (v,) = find(s.analyze(), "turn-stale-nonce")
    assert v.severity == "warning" and v.count == 2


def test_expiry_is_computed_from_the_packet_clock() -> None:
    s = Script()
    allocate(s, life=30)
    s.transaction(31, C, "192.0.2.99:3478", 1)  # unrelated traffic moves the clock on
    result = s.analyze()
    (a,) = result.allocations
    assert a.state == "expired"
    assert [v.severity for v in find(result, "turn-allocation-expired")] == ["warning"]


def test_refresh_after_expiry_is_an_error() -> None:
    s = Script()
    allocate(s, life=30)
    s.transaction(45, C, S, REFRESH, AUTH, [error(437, "Allocation Mismatch")], cls=ERROR)
    result = s.analyze()
    (v,) = find(result, "turn-allocation-expired")
    assert v.severity == "error"
    assert "turn-allocation-mismatch" not in codes(result)


def test_mismatch_without_a_known_expiry() -> None:
    s = Script()
    s.transaction(0, C, S, REFRESH, AUTH, [error(437, "Allocation Mismatch")], cls=ERROR)
    assert "turn-allocation-mismatch" in codes(s.analyze())


def test_deallocation_with_lifetime_zero() -> None:
    s = Script()
    allocate(s)
    s.transaction(1, C, S, CHANNEL_BIND, [channel(0x4001), xor_peer(PEER), *AUTH])
    _, frame = s.transaction(10, C, S, REFRESH, [lifetime(0), *AUTH], [lifetime(0)])
    s.transaction(11, C, "192.0.2.99:3478", 1)  # the clock moves past the deallocation
    (a,) = s.analyze().allocations
    assert a.state == "deallocated" and a.deallocated_frame == frame
    # Its permission and channel go with it, although their own timers still run.
    assert [p.state for p in a.permissions] == [c.state for c in a.channels] == ["expired"]


def test_permission_lifetime_and_refresh_by_channelbind() -> None:
    s = Script()
    allocate(s)
    s.transaction(1, C, S, CREATE_PERMISSION, [xor_peer(PEER), *AUTH])
    s.transaction(200, C, S, CHANNEL_BIND, [channel(0x4000), xor_peer(PEER), *AUTH])
    (a,) = s.analyze().allocations
    (perm,) = a.permissions
    assert perm.peer_ip == "198.51.100.7" and perm.refreshes == 1
    assert perm.expires_ts == s.t0 + 200.02 + 300
    (ch,) = a.channels
    assert (ch.number, ch.peer, ch.expires_ts) == (0x4000, PEER, s.t0 + 200.02 + 600)


def test_channeldata_attributed_to_the_bound_peer_both_ways() -> None:
    s = Script()
    allocate(s)
    s.transaction(1, C, S, CHANNEL_BIND, [channel(0x4001), xor_peer(PEER), *AUTH])
    s.channeldata(2, C, S, 0x4001, b"x" * 100)
    s.channeldata(2.1, S, C, 0x4001, b"y" * 40)
    s.channeldata(2.2, S, C, 0x4001, b"y" * 60)
    result = s.analyze()
    (a,) = result.allocations
    (peer,) = a.peers
    assert peer.peer == PEER
    assert (peer.to_peer_packets, peer.to_peer_bytes) == (1, 100)
    assert (peer.from_peer_packets, peer.from_peer_bytes) == (2, 100)
    assert a.channels[0].packets == 3 and a.channels[0].bytes == 200
    assert "turn-channel-unbound" not in codes(result)


def test_unbound_and_expired_channels_are_flagged() -> None:
    s = Script()
    allocate(s, life=3600)
    s.channeldata(1, C, S, 0x4005, b"a")
    s.transaction(2, C, S, CHANNEL_BIND, [channel(0x4001), xor_peer(PEER), *AUTH])
    s.channeldata(700, C, S, 0x4001, b"b")  # 600 s later: binding expired
    (v1, v2) = sorted(find(s.analyze(), "turn-channel-unbound"), key=lambda v: v.frames)
    assert "never bound" in v1.message and "expired" in v2.message


def test_rebinding_a_live_channel_to_another_peer_is_flagged() -> None:
    s = Script()
    allocate(s)
    s.transaction(1, C, S, CHANNEL_BIND, [channel(0x4001), xor_peer(PEER), *AUTH])
    s.transaction(2, C, S, CHANNEL_BIND, [channel(0x4001), xor_peer(PEER), *AUTH])  # refresh: fine
    assert "turn-channel-rebind" not in codes(s.analyze())
    s.transaction(3, C, S, CHANNEL_BIND, [channel(0x4001), xor_peer(PEER2), *AUTH],
                  [error(400, "Bad Request")], cls=ERROR)
    assert "turn-channel-rebind" in codes(s.analyze())


def test_send_without_permission_and_after_permission_expiry() -> None:
    s = Script()
    allocate(s)
    s.send(1, C, S, SEND, INDICATION, txid(), [xor_peer(PEER), data_attr(b"hello")])
    s.transaction(2, C, S, CREATE_PERMISSION, [xor_peer(PEER2), *AUTH])
    s.send(3, C, S, SEND, INDICATION, txid(), [xor_peer(PEER2), data_attr(b"ok")])
    s.send(400, C, S, SEND, INDICATION, txid(), [xor_peer(PEER2), data_attr(b"late")])
    s.send(401, S, C, DATA, INDICATION, txid(), [xor_peer(PEER2), data_attr(b"back!")])
    result = s.analyze()
    verdicts = find(result, "turn-data-without-permission")
    assert sorted(v.subject.rsplit(" ", 1)[1] for v in verdicts) == ["198.51.100.7", "198.51.100.8"]
    peers = {p.peer: p for p in result.allocations[0].peers}
    assert peers[PEER2].to_peer_bytes == 2 + 4 and peers[PEER2].from_peer_bytes == 5
    assert peers[PEER2].indication_packets == 3


def test_forbidden_peer_names_address_and_cause() -> None:
    s = Script()
    allocate(s)
    s.transaction(1, C, S, CREATE_PERMISSION, [xor_peer("127.0.0.1:9000"), *AUTH],
                  [error(403, "Forbidden")], cls=ERROR)
    (v,) = find(s.analyze(), "turn-forbidden-peer")
    assert "127.0.0.1:9000" in v.message and "loopback" in v.message


def test_rfc6062_connect_and_connection_bind() -> None:
    s = Script()
    allocate(s)
    s.transaction(1, C, S, CONNECT, [xor_peer(PEER), *AUTH], [connection_id(77)], transport="tcp")
    s.send(2, S, C, CONNECTION_ATTEMPT, INDICATION, txid(), [connection_id(78), xor_peer(PEER2)])
    s.transaction(3, "10.0.0.1:5001", S, CONNECTION_BIND, [connection_id(77), *AUTH], [],
                  transport="tcp")
    allocations = s.analyze().allocations
    conns = {c.connection_id: c for a in allocations for c in a.tcp_connections}
    assert conns[77].initiated_by == "connect" and conns[77].bound and conns[77].peer == PEER
    assert conns[78].initiated_by == "peer" and not conns[78].bound


def test_allocations_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr("stunscope.analysis.turn.MAX_ALLOCATIONS", 20)
    s = Script()
    for i in range(60):
        s.transaction(i * 0.01, f"10.0.1.{i}:5000", S, ALLOCATE, AUTH, [xor_relayed(f"192.0.2.1:{50000 + i}")])
    result = s.analyze()
    assert len(result.allocations) == 20
    assert result.capture.evictions["allocations"] == 40


def test_permissions_per_allocation_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr("stunscope.analysis.turn.MAX_PEERS", 3)
    s = Script()
    allocate(s)
    s.transaction(1, C, S, CREATE_PERMISSION, [*(xor_peer(f"198.51.100.{i}:1") for i in range(10)), *AUTH])
    result = s.analyze()
    assert len(result.allocations[0].permissions) == 3
    assert result.capture.evictions["allocation_peers"] == 7
