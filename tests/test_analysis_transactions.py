"""Transactions: matching by txid, outcomes, RTTs, RFC 8489 §6.2.1 timing, bounded tables."""

from __future__ import annotations

from test_analysis_support import (
    BINDING,
    ERROR,
    REQUEST,
    SUCCESS,
    Script,
    codes,
    error,
    find,
    txid,
    xor_mapped,
)

from stunscope.analysis import transactions as tx_mod

C, S, ALT = "10.0.0.1:5000", "192.0.2.1:3478", "192.0.2.2:3479"


def test_success_rtt_from_first_and_last_transmission() -> None:
    s = Script()
    tid = txid()
    s.send(0.0, C, S, BINDING, REQUEST, tid)
    s.send(0.5, C, S, BINDING, REQUEST, tid)
    s.send(0.6, S, C, BINDING, SUCCESS, tid, [xor_mapped("203.0.113.5:6000")])
    (t,) = s.analyze().transactions
    assert t.outcome == "success" and t.retransmissions == 1
    assert t.request_frames == (1, 2) and t.response_frame == 3
    assert abs(t.rtt_ms - 600.0) < 0.01 and abs(t.rtt_last_ms - 100.0) < 0.01
    assert t.timing == ()  # 500 ms is the RFC's initial RTO


def test_answer_from_alternate_address_pairs_by_txid() -> None:
    s = Script()
    tid = txid()
    s.send(0.0, C, S, BINDING, REQUEST, tid)
    s.send(0.03, ALT, C, BINDING, SUCCESS, tid, [xor_mapped("203.0.113.5:6000")])
    (t,) = s.analyze().transactions
    assert t.outcome == "success" and t.server == S


def test_error_outcome_carries_code_and_reason() -> None:
    s = Script()
    s.transaction(0.0, C, S, BINDING, resp=[error(400, "Bad Request")], cls=ERROR)
    (t,) = s.analyze().transactions
    assert (t.outcome, t.error_code, t.error_reason) == ("error", 400, "Bad Request")


def test_timeout_by_schedule_and_at_capture_end() -> None:
    s = Script()
    s.transaction(0.0, C, S, BINDING, resp=None)
    # Another request 40 s later moves the packet clock past the 39.5 s span.
    s.transaction(40.0, C, S, BINDING, resp=None)
    first, second = s.analyze().transactions
    assert first.outcome == second.outcome == "timeout"
    assert first.ended_by == "schedule" and second.ended_by == "capture-end"


def test_orphan_and_duplicate_answers() -> None:
    s = Script()
    s.send(0.0, S, C, BINDING, SUCCESS, txid(), [xor_mapped("203.0.113.5:6000")])
    tid = txid()
    s.send(1.0, C, S, BINDING, REQUEST, tid)
    s.send(1.5, C, S, BINDING, REQUEST, tid)
    s.send(1.6, S, C, BINDING, SUCCESS, tid)
    s.send(1.7, S, C, BINDING, SUCCESS, tid)  # the answer to the retransmission
    result = s.analyze()
    outcomes = [t.outcome for t in result.transactions]
    assert outcomes == ["orphan-response", "success"]
    assert "orphan-response" in codes(result)


def test_too_fast_retransmission_flagged_not_copies() -> None:
    s = Script()
    tid = txid()
    for at in (0.0, 0.1, 0.2):
        s.send(at, C, S, BINDING, REQUEST, tid)
    s.send(0.25, S, C, BINDING, SUCCESS, tid)
    tid2 = txid()
    s.send(1.0, C, "192.0.2.9:3478", BINDING, REQUEST, tid2)
    s.send(1.001, C, "192.0.2.9:3478", BINDING, REQUEST, tid2)  # same packet seen twice
    s.send(1.05, "192.0.2.9:3478", C, BINDING, SUCCESS, tid2)
    result = s.analyze()
    fast, copied = result.transactions
    assert "retransmit-too-fast" in fast.timing and fast.retransmissions == 2
    assert copied.timing == () and copied.retransmissions == 0
    assert [v.subject for v in find(result, "retransmit-too-fast")] == [f"{C} -> {S} Binding"]


def test_rfc_schedule_is_not_flagged_and_early_give_up_is() -> None:
    s = Script()
    tid = txid()
    for at in (0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5):  # RFC 8489 §6.2.1 with RTO 500 ms
        s.send(at, C, S, BINDING, REQUEST, tid)
    lazy = txid()
    s.send(0.0, C, ALT, BINDING, REQUEST, lazy)  # one transmission, never retried
    s.transaction(60.0, C, "192.0.2.77:3478", BINDING)  # the capture goes on past 39.5 s
    result = s.analyze()
    by_server = {t.server: t for t in result.transactions}
    assert by_server[S].outcome == "timeout" and by_server[S].timing == ()
    assert by_server[S].retransmissions == 6
    assert by_server[ALT].timing == ("gave-up-early",)
    assert "unanswered-request" in codes(result)


def test_retransmission_over_tcp_is_flagged() -> None:
    s = Script()
    tid = txid()
    s.send(0.0, C, S, BINDING, REQUEST, tid, transport="tcp")
    s.send(0.5, C, S, BINDING, REQUEST, tid, transport="tcp")
    (t,) = s.analyze().transactions
    assert "retransmit-over-reliable" in t.timing


def test_server_stats_count_outcomes_and_rtt() -> None:
    s = Script()
    for i in range(10):
        s.transaction(i, C, S, BINDING, rtt=0.010 * (i + 1))
    s.transaction(20, C, S, BINDING, resp=None)
    (stats,) = s.analyze().servers
    assert (stats.requests, stats.success, stats.timeouts) == (11, 10, 1)
    assert stats.success_rate == round(10 / 11, 4)
    assert stats.rtt_ms.max == 100.0
    assert stats.rtt_ms.p50 <= stats.rtt_ms.p95 <= stats.rtt_ms.max


def test_open_transactions_are_bounded_and_evictions_counted(monkeypatch) -> None:
    monkeypatch.setattr(tx_mod, "MAX_PENDING", 50)
    monkeypatch.setattr(tx_mod, "MAX_LISTED", 100)
    s = Script()
    for i in range(200):
        s.send(i * 0.001, C, S, BINDING, REQUEST, txid())
    analyzer_result = s.analyze()
    ev = analyzer_result.capture.evictions
    assert ev["transactions_open"] == 150
    # 150 closed by eviction, then 50 open at the end: 100 listed in all, the rest counted.
    assert len(analyzer_result.transactions) == 100
    assert ev["transactions_unlisted"] == 200 - 100
    assert all(t.outcome == "timeout" for t in analyzer_result.transactions)
