"""The analysis entry points: ``Analyzer`` (fed one event at a time) and ``analyze`` (a stream).

The analyzer routes each event to the trackers: every request and answer to the transaction
table (RFC 8489 §6.3), Binding checks with an ICE USERNAME and libwebrtc's GOOG-PING consent
requests to the ICE tracker (RFC 8445, RFC 7675),
TURN methods and ChannelData to the allocation tracker (RFC 8656, RFC 6062), other Binding
answers to the NAT tracker (RFC 4787 / RFC 5780). The packet timestamp is the only clock, so a
replay gives the same analysis; ``snapshot`` can be called at any time (the TUI does it twice a
second) and never changes the state.

Per event the work is small on purpose: ChannelData goes straight to its channel counters, and
attribute values are decoded only for the messages whose tracker needs them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from stunscope.analysis.ice import Check, IceSessionState, IceTracker, Ping, ufrags
from stunscope.analysis.nat import NatTracker, change_flags
from stunscope.analysis.results import SCHEMA, Analysis, CaptureSummary, Verdict
from stunscope.analysis.sdp import SdpCandidates, SdpIce, read_sdp, with_ice_passwords
from stunscope.analysis import transactions as _transactions
from stunscope.analysis.transactions import COPY_S, TransactionTracker
from stunscope.analysis.turn import ALLOCATE, METHODS as TURN_METHODS, TurnRequest, TurnTracker
from stunscope.analysis.verdicts import VerdictLog, merged, ordered
from stunscope.capture.events import Event, MessageEvent, Undecodable, Unreachable
from stunscope.capture.stats import CaptureStats
from stunscope.capture.stream import open_events
from stunscope.errors import CaptureError
from stunscope.wire.attributes import error_code, xor_mapped
from stunscope.wire.integrity import Keyring, check_integrity
from stunscope.wire.message import Endpoint, MessageClass, StunMessage
from stunscope.wire.registry import method_name

BINDING = 0x001
GOOG_PING = 0x080
USERNAME = 0x0006
REQUEST, INDICATION, ERROR = MessageClass.REQUEST, MessageClass.INDICATION, MessageClass.ERROR
_MI_TYPES = (0x0008, 0x001C, 0xC060)  # MESSAGE-INTEGRITY, -SHA256, GOOG-MESSAGE-INTEGRITY-32


class Analyzer:
    """Incremental analysis: ``feed(event)`` for each event in capture order, ``snapshot()``.

    ``keyring`` verifies MESSAGE-INTEGRITY; the ICE passwords of ``sdp`` (parsed
    :class:`~stunscope.analysis.sdp.SdpIce` or file paths) are added to it, and the SDP
    candidates label candidate types and have their priorities checked (RFC 8445 §5.1.2).
    """

    __slots__ = (
        "keyring", "log", "tx", "turn", "ice", "nat", "frames", "messages", "undecodable",
        "unreachable", "first_ts", "last_ts", "file", "stats", "complete", "relay_ends",
    )

    def __init__(self, keyring: Keyring | None = None, sdp: Iterable[SdpIce | str | Path] = (),
                 *, file: str | None = None, stats: CaptureStats | None = None) -> None:
        self.log = VerdictLog()
        self.tx = TransactionTracker()
        self.turn = TurnTracker(self.log)
        parsed = [s if isinstance(s, SdpIce) else read_sdp(s) for s in sdp]
        self.ice = IceTracker(self.log, SdpCandidates(parsed) if parsed else None)
        self.nat = NatTracker()
        self.frames = 0
        self.messages = 0
        self.undecodable = 0
        self.unreachable = 0
        self.first_ts: float | None = None
        self.last_ts = 0.0
        self.file = file
        self.stats = stats
        self.complete = True
        self.relay_ends: set[Endpoint] = set()
        keyring = with_ice_passwords(keyring, parsed)
        self.keyring = keyring if keyring else None

    # -- feeding ----------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        """Apply one event (in capture order)."""
        frame = event[0]
        ts = event[1]
        if self.first_ts is None:
            self.first_ts = ts
        if ts > self.last_ts:
            self.last_ts = ts
        if frame > self.frames:
            self.frames = frame
        if ts >= self.tx.next_expiry:
            self._expire(ts)
        cls = event.__class__
        if cls is MessageEvent:
            self.messages += 1
            _frame, _ts, src, dst, transport, kind, message, tunnel = event[:8]
            if kind == "channeldata":
                if tunnel is None:
                    self.turn.channeldata(message, transport, src, dst, frame, ts)
                return
            self._stun(event, message)
        elif cls is Unreachable:
            self._unreachable(event)
        elif cls is Undecodable:
            self.undecodable += 1
            failure = event.failure
            self.log.add(
                "undecodable", "warning", f"{event.src} -> {event.dst}",
                f"A message from {event.src} to {event.dst} looked like STUN but could not be "
                f"decoded ({failure.reason} at byte {failure.offset}: {failure.detail}).",
                (event.frame,),
            )

    def _stun(self, ev: MessageEvent, msg: StunMessage) -> None:
        if msg.findings and "bad-fingerprint" in msg.findings:
            self.log.add(
                "bad-fingerprint", "error", str(ev.src),
                f"Messages from {ev.src} carry a FINGERPRINT that does not match their bytes "
                "(RFC 8489 §14.7): they were altered in transit or by a broken sender, and "
                "receivers discard them.",
                (ev.frame,),
            )
        if msg.method == BINDING and ev.tunnel is None:
            self.nat.binding(ev.src, ev.dst, msg, ev.frame, ev.ts)
        mcls = msg.cls
        if mcls == REQUEST:
            self._request(ev, msg)
        elif mcls == INDICATION:
            if ev.tunnel is None and msg.method in TURN_METHODS:
                self.turn.indication(msg.method, msg, ev.transport, ev.src, ev.dst, ev.frame, ev.ts)
        else:
            self._answer(ev, msg, mcls)

    def _ends(self, ev: MessageEvent) -> tuple[Endpoint, Endpoint, Endpoint | None]:
        """The logical source and destination of a message, and the TURN server it went via."""
        tunnel = ev.tunnel
        if tunnel is None:
            return ev.src, ev.dst, None
        transport = ev.transport
        if tunnel == "send":
            relayed = self.turn.relayed_of(transport, ev.src, ev.dst) or self._relay_end(ev.dst)
            return relayed, ev.peer or ev.dst, ev.dst
        if tunnel == "data":
            relayed = self.turn.relayed_of(transport, ev.dst, ev.src) or self._relay_end(ev.src)
            return ev.peer or ev.src, relayed, ev.src
        relayed, peer, outbound = self.turn.channel_peer(transport, ev.src, ev.dst, ev.channel or 0)
        server = ev.dst if outbound else ev.src
        relayed = relayed or self._relay_end(server)
        if peer is None:
            peer = Endpoint(f"channel-0x{ev.channel or 0:04x}", 0)
        return (relayed, peer, server) if outbound else (peer, relayed, server)

    def _relay_end(self, server: Endpoint) -> Endpoint:
        """Stand-in for a relayed address the capture did not show: the TURN server itself."""
        self.relay_ends.add(server)
        return server

    def _request(self, ev: MessageEvent, msg: StunMessage) -> None:
        if ev.tunnel is None:
            src, dst, via = ev.src, ev.dst, None
        else:
            src, dst, via = self._ends(ev)
        method = msg.method
        tx = self.tx.request(msg.txid, method, src, dst, ev.transport, via, ev.frame, ev.ts)
        if tx is None:
            return
        if len(tx.times) > 1:
            if tx.ice and tx.info is not None and tx.times[-1] - tx.times[-2] >= COPY_S:
                IceTracker.retransmitted(tx.info, ev.frame)
            return
        if len(self.tx.pending) > _transactions.MAX_PENDING:
            self._unanswered(self.tx.evict_oldest(), "eviction")
        names = None
        if method == BINDING:
            for attr in msg.attributes:
                if attr.type == USERNAME:  # RFC 8489 §14.3 UTF-8, invalid bytes escaped as in wire
                    names = ufrags(attr.raw.decode("utf-8", "backslashreplace"))
                    break
            if names is not None:
                tx.ice = True
                tx.info = self.ice.check(names, msg, src, dst, ev.frame, ev.ts)
            else:
                tx.info = change_flags(msg)
        elif method == GOOG_PING:
            tx.info = self.ice.ping(src, dst, ev.frame, ev.ts)
            tx.ice = tx.info is not None
        elif method in TURN_METHODS and via is None:
            tx.info = self.turn.request(method, msg, ev.transport, src, dst, ev.frame, ev.ts)
        if self.keyring is not None and check_integrity(msg, self.keyring) == "bad":
            self._bad_integrity(ev, msg, tx.info if names else None, names)

    def _bad_integrity(self, ev: MessageEvent, msg: StunMessage, check: Check | Ping | None,
                       names: tuple[str, str] | None) -> None:
        self.log.add(
            "bad-integrity", "error", str(ev.src),
            f"A {method_name(msg.method)} {msg.cls.label} from {ev.src} fails MESSAGE-INTEGRITY "
            "with every key given (RFC 8489 §14.5): the sender uses another password, or the "
            "message was altered.",
            (ev.frame,),
        )
        if names is not None:
            self.ice.bad_integrity(check, names, ev.frame)

    def _answer(self, ev: MessageEvent, msg: StunMessage, mcls: MessageClass) -> None:
        txid = msg.txid
        error = None
        if mcls == ERROR:
            error = error_code(msg) or (0, "malformed ERROR-CODE")
        tx = self.tx.answer(txid)
        if tx is None:
            if not self.tx.seen(txid):
                dst, src, via = self._ends(ev)
                self.tx.orphan(txid, msg.method, src, dst, ev.transport, via, ev.frame, ev.ts, error)
                self.log.add(
                    "orphan-response", "info", f"{ev.src} -> {ev.dst}",
                    f"Answers from {ev.src} to {ev.dst} whose requests are not in the capture "
                    "(it started late, or the requests went by another path).",
                    (ev.frame,),
                )
            return
        ts = ev.ts
        timing = self.tx.finish(tx, "success" if error is None else "error", ev.frame, ts, error)
        if timing:
            self._timing(tx.client, tx.server, tx.method, timing, tx.frames)
        info = tx.info
        if tx.ice:
            if info is not None:
                self.ice.answered(info, msg, error, tx.client, (ts - tx.times[-1]) * 1000.0,
                                  ev.frame, ts)
        elif tx.method == BINDING:
            if info:
                self.nat.change_test(tx.client, info, error is None, ev.frame)
            if error is None and tx.via is None and tx.txid not in self.nat.probes:
                mapped = xor_mapped(msg)
                if mapped is not None:
                    self.nat.mapped(tx.client, tx.server, mapped, ev.frame, ts)
        elif info is not None:
            self.turn.answered(info, msg, error, ev.frame, ts)
            alloc = info.alloc
            if info.method == ALLOCATE and error is None and alloc.mapped is not None:
                self.nat.mapped(tx.client, tx.server, alloc.mapped, ev.frame)
        if self.keyring is not None and any(a.type in _MI_TYPES for a in msg.attributes):
            user = realm = None
            if info.__class__ is TurnRequest:
                user, realm = info.alloc.username, info.alloc.realm
            if check_integrity(msg, self.keyring, user, realm) == "bad":
                self._bad_integrity(ev, msg, info if tx.ice else None,
                                    (info.session.remote_ufrag, info.session.local_ufrag)
                                    if tx.ice and info is not None else None)
        tx.info = None  # listed transactions keep no tracker state (evicted allocations die)

    def _timing(self, client: Endpoint, server: Endpoint, method: int, timing: tuple[str, ...],
                frames: list[int]) -> None:
        name = method_name(method)
        subject = f"{client} -> {server} {name}"
        for finding in timing:
            if finding == "retransmit-too-fast":
                self.log.add(finding, "warning", subject,
                             f"{client} retransmits {name} requests to {server} less than 250 ms "
                             "apart; RFC 8489 §6.2.1 starts at an RTO of 500 ms and doubles it.",
                             frames)
            elif finding == "retransmit-over-reliable":
                self.log.add(finding, "warning", subject,
                             f"{client} retransmits {name} requests to {server} over TCP; RFC 8489 "
                             "§6.2.2 forbids retransmission over a reliable transport.", frames)
            else:
                self.log.add(finding, "info", subject,
                             f"{client} gave up on {name} requests to {server} after fewer than "
                             "three transmissions; RFC 8489 §6.2.1 sends up to 7 (Rc) over 39.5 s.",
                             frames)

    def _expire(self, now: float) -> None:
        for tx in self.tx.expire(now):
            timing = self.tx.finish(tx, "timeout", None, None, None, "schedule")
            if timing:
                self._timing(tx.client, tx.server, tx.method, timing, tx.frames)
            self._unanswered(tx, "schedule")

    def _unanswered(self, tx, ended_by: str) -> None:  # type: ignore[no-untyped-def]
        info = tx.info
        tx.info = None
        if tx.ice:
            if info is not None:
                self.ice.unanswered(info)
            return
        if tx.method == BINDING and info:
            self.nat.change_test(tx.client, info, False, tx.frames[0])
            return
        if tx.txid in self.nat.probes:  # an RFC 5780 §4.5/§4.6 test: silence is its result
            return
        self._unanswered_verdict(tx.client, tx.server, tx.method, tx.frames, tx.via, ended_by)

    def _unanswered_verdict(self, client: Endpoint, server: Endpoint, method: int,
                            frames: list[int], via: Endpoint | None, ended_by: str,
                            log: VerdictLog | None = None) -> None:
        name = method_name(method)
        how = {
            "schedule": "within the 39.5 s RFC 8489 retransmission span",
            "capture-end": "before the capture ended",
            "eviction": "(dropped from the full transaction table)",
        }[ended_by]
        path = f" via TURN server {via}" if via is not None else ""
        (log or self.log).add(
            "unanswered-request", "warning", f"{client} -> {server} {name}",
            f"{name} requests from {client} to {server}{path} got no answer {how}: the server is "
            "down, unreachable, or a firewall drops the traffic.",
            frames,
        )

    def _unreachable(self, ev: Unreachable) -> None:
        self.unreachable += 1
        self.ice.unreachable(ev.src, ev.dst, ev.frame)
        self.log.add(
            "icmp-unreachable", "warning", f"{ev.src} -> {ev.dst}",
            f"ICMP {ev.icmp} from {ev.reporter}: packets from {ev.src} to {ev.dst} "
            f"({ev.transport}) do not arrive (nothing listens there, or a firewall rejects them).",
            (ev.frame,),
        )

    # -- results ----------------------------------------------------------------------------

    def _type_of(self, ufrag: str, addr: Endpoint, session: IceSessionState) -> str:
        """Candidate type of ``addr`` (RFC 8445 §5.1.1): SDP first, else inferred."""
        sdp = self.ice.sdp.find(ufrag, addr) if self.ice.sdp is not None else None
        if sdp is not None:
            return sdp.type
        if addr in self.turn.relayed or addr in self.relay_ends:
            return "relay"
        if addr in self.nat.reflexive and addr not in self.nat.locals:
            return "srflx"
        if addr in session.prflx:
            return "prflx"
        return "host"

    def snapshot(self, final: bool = False) -> Analysis:
        """The analysis so far. With ``final`` (the capture ended) requests still open are
        timeouts ended by ``capture-end``; otherwise they are listed as ``pending``."""
        now = self.last_ts if self.first_ts is not None else None
        extra = VerdictLog()
        open_txs = self.tx.open_transactions()
        outcome = "timeout" if final else "pending"
        ended_by = "capture-end" if final else None
        finished = self.tx.finished()
        room = max(0, _transactions.MAX_LISTED - len(finished))
        open_results = [
            self.tx.result(tx, outcome, None, None, None, ended_by) for tx in open_txs[:room]
        ]
        for tx in open_txs:
            if (final and not tx.ice and not (tx.method == BINDING and tx.info)
                    and tx.txid not in self.nat.probes):
                self._unanswered_verdict(tx.client, tx.server, tx.method, tx.frames, tx.via,
                                         "capture-end", extra)
        transactions = sorted(
            [*finished, *open_results],
            key=lambda t: t.request_frames[0] if t.request_frames else t.response_frame or 0,
        )
        allocations, turn_verdicts = self.turn.results(now)
        sessions, ice_verdicts = self.ice.results(now, self._type_of, final)
        nat, nat_verdicts = self.nat.results(now)
        verdicts: list[Verdict] = [
            *self.log.results(), *extra.results(), *turn_verdicts, *ice_verdicts, *nat_verdicts,
        ]
        evictions = {
            "transactions_open": self.tx.evicted_pending,
            "transactions_unlisted": self.tx.unlisted + len(open_txs) - len(open_results),
            "servers": self.tx.evicted_servers,
            "allocations": self.turn.evicted,
            "allocation_peers": self.turn.evicted_peers,
            "ice_sessions": self.ice.evicted,
            "ice_pairs": self.ice.evicted_pairs,
            "nat_endpoints": self.nat.evicted,
            "verdicts": self.log.evicted,
        }
        stats = self.stats
        if stats is not None:
            evictions["tcp_streams"] = stats.tcp_evictions
            evictions["ip_fragments"] = stats.fragment_evictions
        capture = CaptureSummary(
            self.file, max(self.frames, stats.frames if stats is not None else 0), self.messages,
            self.undecodable, self.unreachable, self.first_ts,
            self.last_ts if self.first_ts is not None else None, evictions, self.complete,
        )
        servers = sorted(self.tx.server_results(), key=lambda s: s.server)
        return Analysis(
            SCHEMA, capture, tuple(transactions), tuple(servers), tuple(allocations), tuple(sessions),
            tuple(nat), ordered(merged(verdicts)),
        )


def analyze(events: Iterable[Event], *, keyring: Keyring | None = None,
            sdp: Iterable[SdpIce | str | Path] = (), stats: CaptureStats | None = None,
            file: str | None = None) -> Analysis:
    """Analyse a whole event stream (e.g. ``open_events(path, stats)``) and return the final
    :class:`~stunscope.analysis.results.Analysis`. Errors of the source propagate; use
    :class:`Analyzer` directly to keep what was read before a corrupt record."""
    analyzer = Analyzer(keyring, sdp, file=file, stats=stats)
    feed = analyzer.feed
    for event in events:
        feed(event)
    return analyzer.snapshot(final=True)


def analyze_file(path: str | Path, *, keyring: Keyring | None = None,
                 sdp: Iterable[SdpIce | str | Path] = ()) -> tuple[Analysis, CaptureError | None]:
    """Analyse a capture file as fast as the machine allows (a second reading process for big
    files, see :mod:`stunscope.capture.pipeline`). A damaged file gives the analysis of what was
    read, marked incomplete, and the error met; every command that analyses a file comes here."""
    stats = CaptureStats()
    analyzer = Analyzer(keyring, sdp, file=str(path), stats=stats)
    feed = analyzer.feed
    damage: CaptureError | None = None
    with _young_collections_rare():
        try:
            for event in open_events(path, stats, parallel=None):
                feed(event)
        except CaptureError as exc:
            damage = exc
            analyzer.complete = False
    return analyzer.snapshot(final=True), damage


@contextmanager
def _young_collections_rare() -> Iterator[None]:
    """The stream makes millions of short-lived, acyclic tuples: collecting the youngest
    generation every 700 allocations, and rescanning the modules loaded so far, is wasted work."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
