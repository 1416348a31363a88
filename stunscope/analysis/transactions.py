"""Request/response transactions matched by transaction id across the whole capture.

RFC 8489 §6.3: a response belongs to the request with the same transaction id, whatever address
it comes from, so answers from an RFC 5780 alternate address and checks tunnelled through TURN
pair as well (the caller passes the logical ends). Outcomes: ``success``, ``error``, ``timeout``,
``orphan-response`` (an answer whose request was not captured).

Timeouts use the packet clock only (DESIGN.md principle 6). RFC 8489 §6.2.1: with RTO 500 ms,
Rc 7 and Rm 16 a client sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s and gives up at 39.5 s;
over TCP the transaction timer Ti is also 39.5 s (§6.2.2). A request with no answer 39.5 s after
its first transmission is a ``timeout`` ended by the ``schedule``; a request still unanswered
when the capture ends is also reported as ``timeout`` but ``ended_by`` ``capture-end`` (it may
have been answered after the capture stopped, so it is weaker evidence).

Retransmission timing (§6.2.1) is checked tolerantly, because ICE agents (RFC 8445 §14.3),
consent checks (RFC 7675) and TURN clients use their own schedules: only clear violations are
flagged — an interval under half the 500 ms minimum RTO (``retransmit-too-fast``), any
retransmission over TCP (``retransmit-over-reliable``, §6.2.2), and a plain STUN/TURN client that
stopped after fewer than three transmissions although the capture went on for the whole span
(``gave-up-early``). Two transmissions less than 5 ms apart are one request seen twice (both
legs of a relay, or two capture interfaces): counted as ``copies``, not as retransmissions.

Tables are bounded: at most ``MAX_PENDING`` open transactions (the oldest is closed as a timeout
ended by ``eviction`` when a new one would exceed it) and ``MAX_LISTED`` finished transactions
listed individually (open ones at the end included); the rest only feed the per-server
statistics. Both are counted as evictions.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Any

from stunscope.analysis.results import ServerStats, Transaction
from stunscope.analysis.stats import ServerCounters
from stunscope.wire.message import Endpoint
from stunscope.wire.registry import method_name

TIMEOUT_S = 39.5
"""RFC 8489 §6.2.1: Rc=7 transmissions at RTO 500 ms doubling, then Rm*RTO = 8 s of waiting."""

MIN_INTERVAL_S = 0.25
"""Half the 500 ms minimum RTO: a retransmission sooner than this is clearly too fast."""

COPY_S = 0.005
"""Two transmissions of one request closer than this are the same packet captured twice."""

MAX_PENDING = 20_000
"""Open transactions kept; beyond it the oldest is closed (counted)."""

MAX_LISTED = 10_000
"""Finished transactions listed individually; the rest are counted in the statistics only."""

MAX_SERVERS = 2_000
"""Servers with their own statistics; further servers are counted in one evicted figure."""

_RECENT = 8192
"""Finished transaction ids remembered to recognise duplicate answers and late retransmissions."""


class Pending:
    """An open transaction. ``info`` belongs to the tracker that cares (ICE check, TURN request)."""

    __slots__ = (
        "txid", "method", "client", "server", "transport", "via", "frames", "times", "copies",
        "first_ts", "info", "ice", "done", "counters",
    )

    def __init__(
        self, txid: bytes, method: int, client: Endpoint, server: Endpoint, transport: str,
        via: Endpoint | None, frame: int, ts: float,
    ) -> None:
        self.txid = txid
        self.method = method
        self.client = client
        self.server = server
        self.transport = transport
        self.via = via
        self.frames = [frame]
        self.times = [ts]
        self.copies = 0
        self.first_ts = ts
        self.info: Any = None
        self.ice = False
        self.done = False
        self.counters: ServerCounters | None = None

    @property
    def retransmissions(self) -> int:
        """Transmissions after the first, copies excluded."""
        return len(self.frames) - 1 - self.copies


class TransactionTracker:
    """Matches requests and answers by transaction id; the packet timestamp is the only clock."""

    __slots__ = (
        "pending", "_queue", "next_expiry", "_recent", "listed", "_built", "servers", "evicted_pending",
        "unlisted", "evicted_servers",
    )

    def __init__(self) -> None:
        self.pending: dict[bytes, Pending] = {}
        self._queue: deque[Pending] = deque()
        self.next_expiry = float("inf")
        self._recent: dict[bytes, int] = {}
        self.listed: list[Transaction | tuple[Any, ...]] = []
        self._built: list[Transaction] = []
        self.servers: dict[Endpoint, ServerCounters] = {}
        self.evicted_pending = 0
        self.unlisted = 0
        self.evicted_servers = 0

    # -- requests -------------------------------------------------------------------------

    def request(
        self, txid: bytes, method: int, client: Endpoint, server: Endpoint, transport: str,
        via: Endpoint | None, frame: int, ts: float,
    ) -> Pending | None:
        """A request was seen: its transaction (new when it has one frame, else this was a
        retransmission), or None for a late retransmission of one already answered."""
        tx = self.pending.get(txid)
        if tx is not None:
            if ts - tx.times[-1] < COPY_S:
                tx.copies += 1
            tx.frames.append(frame)
            tx.times.append(ts)
            return tx
        if txid in self._recent:
            return None
        tx = Pending(txid, method, client, server, transport, via, frame, ts)
        self.pending[txid] = tx
        queue = self._queue
        if not queue:
            self.next_expiry = ts + TIMEOUT_S
        queue.append(tx)
        counters = tx.counters = self.servers.get(server) or self._counters(server)
        if counters is not None:
            counters.requests += 1
        if not len(queue) & 1023 and len(queue) > 2 * len(self.pending) + 1024:
            self._queue = deque(t for t in queue if not t.done)
        return tx

    def _counters(self, server: Endpoint) -> ServerCounters | None:
        counters = self.servers.get(server)
        if counters is None:
            if len(self.servers) >= MAX_SERVERS:
                self.evicted_servers += 1
                return None
            counters = self.servers[server] = ServerCounters()
        return counters

    def evict_oldest(self) -> Pending:
        """Close the oldest open transaction as a timeout ended by ``eviction`` (the table is
        full: more than ``MAX_PENDING`` open) and return it."""
        queue = self._queue
        tx = queue.popleft()
        while tx.done:
            tx = queue.popleft()
        self.evicted_pending += 1
        self.finish(tx, "timeout", None, None, None, "eviction")
        self.next_expiry = queue[0].first_ts + TIMEOUT_S if queue else float("inf")
        return tx

    # -- answers --------------------------------------------------------------------------

    def answer(self, txid: bytes) -> Pending | None:
        """The open transaction an answer belongs to (removed from the table), or None for a
        duplicate answer or an orphan (see :meth:`seen`)."""
        return self.pending.pop(txid, None)

    def seen(self, txid: bytes) -> bool:
        """Whether ``txid`` belongs to a transaction already finished (a duplicate answer)."""
        return txid in self._recent

    def expire(self, now: float) -> list[Pending]:
        """Close every transaction whose first request is more than 39.5 s older than ``now``."""
        expired: list[Pending] = []
        queue = self._queue
        limit = now - TIMEOUT_S
        while queue and queue[0].first_ts < limit:
            tx = queue.popleft()
            if not tx.done:
                del self.pending[tx.txid]
                expired.append(tx)
        self.next_expiry = queue[0].first_ts + TIMEOUT_S if queue else float("inf")
        return expired

    # -- results --------------------------------------------------------------------------

    def finish(
        self, tx: Pending, outcome: str, response_frame: int | None, response_ts: float | None,
        error: tuple[int, str] | None, ended_by: str | None = None,
    ) -> tuple[str, ...]:
        """Close ``tx`` with its outcome, feed the statistics and list it (while room); returns
        its retransmission timing findings."""
        tx.done = True
        self.pending.pop(tx.txid, None)
        recent = self._recent
        recent[tx.txid] = 1
        if len(recent) > _RECENT:
            for key in list(islice(recent, _RECENT // 2)):
                del recent[key]
        found = timing(tx, outcome, ended_by) if len(tx.times) > 1 or outcome == "timeout" else ()
        counters = tx.counters
        if counters is not None:
            if outcome == "success":
                counters.success += 1
            elif outcome == "error":
                counters.errors += 1
            else:
                counters.timeouts += 1
            if response_ts is not None:
                counters.rtt.add((response_ts - tx.times[-1]) * 1000.0)
        if len(self.listed) >= MAX_LISTED:
            self.unlisted += 1
        else:
            self.listed.append((tx, outcome, response_frame, response_ts, error, ended_by, found))
        return found

    def result(
        self, tx: Pending, outcome: str, response_frame: int | None, response_ts: float | None,
        error: tuple[int, str] | None, ended_by: str | None,
        found: tuple[str, ...] | None = None,
    ) -> Transaction:
        """The immutable record of ``tx`` (no state change)."""
        rtt_ms = rtt_last_ms = None
        if response_ts is not None:
            rtt_ms = round((response_ts - tx.first_ts) * 1000.0, 3)
            rtt_last_ms = round((response_ts - tx.times[-1]) * 1000.0, 3)
        return Transaction(
            tx.txid.hex(), method_name(tx.method), str(tx.client), str(tx.server), tx.transport,
            str(tx.via) if tx.via is not None else None, tuple(tx.frames), response_frame,
            outcome, error[0] if error else None, error[1] if error else None, rtt_ms,
            rtt_last_ms, tx.retransmissions, tx.first_ts, ended_by,
            timing(tx, outcome, ended_by) if found is None else found, tx.ice,
        )

    def orphan(
        self, txid: bytes, method: int, client: Endpoint, server: Endpoint, transport: str,
        via: Endpoint | None, frame: int, ts: float, error: tuple[int, str] | None,
    ) -> None:
        """List an answer whose request is not in the capture."""
        self._recent[txid] = 1
        if len(self.listed) >= MAX_LISTED:
            self.unlisted += 1
            return
        self.listed.append(
            Transaction(
                txid.hex(), method_name(method), str(client), str(server), transport,
                str(via) if via is not None else None, (), frame, "orphan-response",
                error[0] if error else None, error[1] if error else None, None, None, 0, ts,
                None, (), False,
            )
        )

    def finished(self) -> list[Transaction]:
        """The listed finished transactions, built on first demand (results are immutable, so a
        snapshot only builds what finished since the previous one)."""
        built = self._built
        for item in self.listed[len(built):]:
            built.append(item if isinstance(item, Transaction) else self.result(*item))
        return built

    def open_transactions(self) -> list[Pending]:
        """The transactions still waiting for an answer, oldest first."""
        return [tx for tx in self._queue if not tx.done]

    def server_results(self) -> list[ServerStats]:
        """Per-server figures; open transactions count as timeouts (unanswered at the end)."""
        still_open: dict[Endpoint, int] = {}
        for tx in self.open_transactions():
            still_open[tx.server] = still_open.get(tx.server, 0) + 1
        return [
            counters.result(str(server), still_open.get(server, 0))
            for server, counters in self.servers.items()
        ]


def timing(tx: Pending, outcome: str, ended_by: str | None) -> tuple[str, ...]:
    """RFC 8489 §6.2.1/§6.2.2 retransmission findings for one transaction (see module doc)."""
    found: list[str] = []
    times = tx.times
    intervals = [b - a for a, b in zip(times, times[1:]) if b - a >= COPY_S]
    if intervals:
        if tx.transport == "tcp" and tx.via is None:
            found.append("retransmit-over-reliable")
        elif min(intervals) < MIN_INTERVAL_S:
            found.append("retransmit-too-fast")
    if (
        outcome == "timeout" and ended_by == "schedule" and not tx.ice
        and tx.transport == "udp" and len(intervals) < 2
    ):
        found.append("gave-up-early")
    return tuple(found)
