"""ICE sessions (RFC 8445) rebuilt from connectivity checks, and consent freshness (RFC 7675).

A check is a Binding request whose USERNAME is ``RUFRAG:LUFRAG`` (RFC 8445 §7.2.2): the
receiver's ufrag, a colon, the sender's. Both directions of one session share the unordered
ufrag pair. The *local* agent is the one whose check was seen first; pairs are (local candidate,
remote candidate) from its side, so a check from the remote agent counts on the reversed pair.
Checks tunnelled through TURN arrive with their logical ends (relayed address, peer).

Per pair: checks, retransmissions, successes, RTT, nomination (a successful check carrying
USE-CANDIDATE, RFC 8445 §8.1.1), failure (an error answer, a timeout, or an ICMP error quoting
the check). Roles come from ICE-CONTROLLING / ICE-CONTROLLED with their tie-breakers (§7.1.3);
a 487 Role Conflict (§7.3.1.1) is counted and the sender's following role switch recorded.
Candidate types are inferred when no SDP says them: an address that is a TURN relayed address
is ``relay``, one that a STUN server reported as XOR-MAPPED-ADDRESS is ``srflx``, one learned
only from a check's answer is ``prflx``, anything else ``host``. PRIORITY is split per
§5.1.2.1 (type preference, local preference, component).

Consent (RFC 7675 §5.1): after selection the checks on the selected pair are consent checks; a
check sent more than 30 s after the last answered one, or a capture that runs on more than 30 s
past the last answer while checks keep going, is consent lost. libwebrtc replaces some of them
with GOOG-PING (method 0x080, IANA-registered by Google): a request with no USERNAME, only
GOOG-MESSAGE-INTEGRITY-32, sent on the 5-tuple of a pair whose last Binding check it repeats.
A GOOG-PING on a known pair's 5-tuple counts for consent exactly as a check does (the request a
consent check, a success answer a refresh), and for nothing else: no nomination, no new pair.

With an SDP, each pair also carries its local candidate's SDP priority, and a check whose
PRIORITY (§7.1.1: the peer-reflexive type preference) is not above the type preference its
sender gives its server-reflexive candidates of the same transport breaks §5.1.2.1
(``ice-priority-inversion``); see :mod:`stunscope.analysis.sdp` for the SDP's own priorities.
"""

from __future__ import annotations

from typing import Callable

from stunscope.analysis.results import IceSession, Pair, Priority, Verdict
from stunscope.analysis.sdp import SdpCandidates, follows_formula
from stunscope.analysis.verdicts import VerdictLog, verdict
from stunscope.wire.attributes import ice_role, priority, xor_mapped
from stunscope.wire.message import Endpoint, StunMessage

CONSENT_S = 30.0
"""RFC 7675 §5.1: consent expires 30 s after the last response."""

PRFLX_TYPE_PREFERENCE = 110
"""RFC 8445 §5.1.2.2: recommended type preference of peer-reflexive candidates."""

MAX_SESSIONS = 2_000
"""ICE sessions kept; further sessions are counted as evicted."""
MAX_PAIRS = 1_000
"""Pairs kept per session."""
MAX_ALL_PAIRS = 50_000
"""Pairs kept over all sessions."""
MAX_FRAMES = 32
"""Evidence frames kept per pair."""

_ROLE_ATTRS = {0x802A: "controlling", 0x8029: "controlled"}
"""ICE-CONTROLLING / ICE-CONTROLLED (RFC 8445 §16.1)."""
USE_CANDIDATE = 0x0025
"""RFC 8445 §16.1: the controlling agent nominates the pair of this check."""

PairKey = tuple[Endpoint, Endpoint]
TypeOf = Callable[[str, Endpoint, "IceSessionState"], str]


class PairState:
    """One candidate pair's checks in both directions."""

    __slots__ = ("session", "local", "remote", "checks", "retransmissions", "successes", "errors",
                 "timeouts", "icmp", "failure", "rtt_ms", "nominated", "priority", "first_frame",
                 "frames", "open", "last_success_ts", "last_check_ts", "goog_pings",
                 "goog_ping_successes")

    def __init__(self, session: IceSessionState, local: Endpoint, remote: Endpoint,
                 frame: int) -> None:
        self.session = session
        self.local = local
        self.remote = remote
        self.checks = 0
        self.retransmissions = 0
        self.successes = 0
        self.errors = 0
        self.timeouts = 0
        self.icmp = 0
        self.failure: str | None = None
        self.rtt_ms: float | None = None
        self.nominated = False
        self.priority: int | None = None
        self.first_frame = frame
        self.frames: list[int] = []
        self.open = 0
        self.last_success_ts: float | None = None
        self.last_check_ts = 0.0
        self.goog_pings = 0
        self.goog_ping_successes = 0

    def note(self, frame: int) -> None:
        """Keep ``frame`` as evidence (bounded)."""
        if len(self.frames) < MAX_FRAMES:
            self.frames.append(frame)


class Agent:
    """One ICE agent of a session, named by its ufrag."""

    __slots__ = ("role", "tie_breaker", "switches", "conflicted")

    def __init__(self) -> None:
        self.role: str | None = None
        self.tie_breaker: int | None = None
        self.switches: list[int] = []
        self.conflicted = False


class IceSessionState:
    """The live state of one ICE session."""

    __slots__ = ("local_ufrag", "remote_ufrag", "agents", "pairs", "first_frame", "selected",
                 "selected_ts", "conflicts", "responses", "prflx", "check_frames", "consent_lost")

    def __init__(self, local_ufrag: str, remote_ufrag: str, frame: int) -> None:
        self.local_ufrag = local_ufrag
        self.remote_ufrag = remote_ufrag
        self.agents = {local_ufrag: Agent(), remote_ufrag: Agent()}
        self.pairs: dict[PairKey, PairState] = {}
        self.first_frame = frame
        self.selected: PairState | None = None
        self.selected_ts = 0.0
        self.conflicts = 0
        self.responses = 0
        self.prflx: set[Endpoint] = set()
        self.check_frames: list[int] = []
        self.consent_lost = False

    def subject(self) -> str:
        """How verdicts name this session."""
        return f"{self.local_ufrag}:{self.remote_ufrag}"


class Check:
    """What one check asked, kept on its transaction until the answer."""

    __slots__ = ("session", "pair", "sender", "use_candidate", "frame")

    def __init__(self, session: IceSessionState, pair: PairState, sender: str, nominate: bool,
                 frame: int) -> None:
        self.session = session
        self.pair = pair
        self.sender = sender
        self.use_candidate = nominate
        self.frame = frame


class Ping:
    """A GOOG-PING request on a pair's 5-tuple, kept on its transaction until the answer."""

    __slots__ = ("session", "pair")

    def __init__(self, pair: PairState) -> None:
        self.session = pair.session
        self.pair = pair


def ufrags(user: str | None) -> tuple[str, str] | None:
    """(receiver ufrag, sender ufrag) from an ICE USERNAME ``RUFRAG:LUFRAG``, else None."""
    if not user:
        return None
    receiver, sep, sender = user.partition(":")
    if not sep or not receiver or not sender:
        return None
    return receiver, sender


def split_priority(value: int) -> Priority:
    """RFC 8445 §5.1.2.1: 2^24 * type preference + 2^8 * local preference + (256 - component)."""
    return Priority(value, value >> 24, (value >> 8) & 0xFFFF, 256 - (value & 0xFF))


class IceTracker:
    """Follows every ICE session of a capture; see the module docstring."""

    __slots__ = ("sessions", "by_flow", "log", "sdp", "evicted", "evicted_pairs")

    def __init__(self, log: VerdictLog, sdp: SdpCandidates | None = None) -> None:
        self.sessions: dict[tuple[str, str], IceSessionState] = {}
        self.by_flow: dict[PairKey, PairState] = {}
        self.log = log
        self.sdp = sdp
        self.evicted = 0
        self.evicted_pairs = 0

    def check(self, names: tuple[str, str], msg: StunMessage, src: Endpoint, dst: Endpoint,
              frame: int, ts: float) -> Check | None:
        """A new check from ``src`` to ``dst``; None when the tables are full."""
        receiver, sender = names
        key = (receiver, sender) if receiver < sender else (sender, receiver)
        session = self.sessions.get(key)
        if session is None:
            if len(self.sessions) >= MAX_SESSIONS:
                self.evicted += 1
                return None
            session = self.sessions[key] = IceSessionState(sender, receiver, frame)
        outbound = sender == session.local_ufrag
        pkey = (src, dst) if outbound else (dst, src)
        pair = session.pairs.get(pkey)
        if pair is None:
            if len(session.pairs) >= MAX_PAIRS or len(self.by_flow) >= 2 * MAX_ALL_PAIRS:
                self.evicted_pairs += 1
                return None
            pair = session.pairs[pkey] = PairState(session, pkey[0], pkey[1], frame)
            self.by_flow[(src, dst)] = pair
            self.by_flow[(dst, src)] = pair
        pair.checks += 1
        pair.open += 1
        if len(pair.frames) < MAX_FRAMES:
            pair.frames.append(frame)
        if len(session.check_frames) < MAX_FRAMES:
            session.check_frames.append(frame)
        if outbound and pair.priority is None:
            pair.priority = priority(msg)
        role = None
        nominate = False
        for attr in msg.attributes:
            kind = attr.type
            if kind in _ROLE_ATTRS:
                role = _ROLE_ATTRS[kind]
            elif kind == USE_CANDIDATE:
                nominate = True
        if role is not None and session.agents[sender].role != role:
            self._role(session, sender, role, msg, frame)
        if self.sdp is not None:
            self._check_priority(self.sdp, session, sender, msg, src, frame)
        self._consent_check(session, pair, frame, ts)
        return Check(session, pair, sender, nominate, frame)

    def ping(self, src: Endpoint, dst: Endpoint, frame: int, ts: float) -> Ping | None:
        """A GOOG-PING request from ``src`` to ``dst``: a consent check on the pair with that
        5-tuple (see the module docstring); None when no pair has it."""
        pair = self.by_flow.get((src, dst))
        if pair is None:
            return None
        pair.goog_pings += 1
        pair.note(frame)
        self._consent_check(pair.session, pair, frame, ts)
        return Ping(pair)

    def _consent_check(self, session: IceSessionState, pair: PairState, frame: int,
                       ts: float) -> None:
        """A check or GOOG-PING sent on ``pair`` at ``ts``: on the selected pair, more than 30 s
        after the last answer, consent is lost (RFC 7675 §5.1)."""
        if pair is session.selected and pair.last_success_ts is not None:
            if ts - pair.last_success_ts > CONSENT_S:
                self._consent_lost(session, pair, frame, ts)
        pair.last_check_ts = ts

    def _check_priority(self, sdp: SdpCandidates, session: IceSessionState, sender: str,
                        msg: StunMessage, src: Endpoint, frame: int) -> None:
        """RFC 8445 §7.1.1: a check's PRIORITY has the peer-reflexive type preference, which
        §5.1.2.1 puts above the server-reflexive one; compare it with the sender's SDP."""
        cand = sdp.find(sender, src)
        if cand is None or cand.ufrag not in (sender, None):
            return
        value = priority(msg)
        if value is None or not follows_formula(value, cand.component):
            return
        srflx = sdp.highest(cand.ufrag, cand.transport, "srflx")
        if srflx is None or value >> 24 > srflx:
            return
        own = " (the candidate's own priority)" if value == cand.priority else ""
        self.log.add(
            "ice-priority-inversion", "warning", f"{session.subject()} {src}",
            f"Checks from {src} ({cand.type} candidate a={cand.line}) carry PRIORITY {value}"
            f"{own}, type preference {value >> 24}, not above the {srflx} its agent gives its "
            "server-reflexive candidates in the SDP: RFC 8445 §7.1.1 sets PRIORITY with the "
            "peer-reflexive type preference, which §5.1.2.1 requires to be higher, so the peer "
            "ranks the peer-reflexive candidate it learns from this check wrongly.",
            (frame,),
        )

    @staticmethod
    def _role(session: IceSessionState, sender: str, role: str, msg: StunMessage, frame: int) -> None:
        """The sender's role changed (or is first seen): record the switch and its tie-breaker."""
        agent = session.agents[sender]
        if agent.role is not None:
            agent.switches.append(frame)
        decoded = ice_role(msg)
        agent.role, agent.tie_breaker = decoded if decoded is not None else (role, None)

    def _consent_lost(self, session: IceSessionState, pair: PairState, frame: int,
                      ts: float) -> None:
        session.consent_lost = True
        gap = ts - (pair.last_success_ts or ts)
        self.log.add(
            "ice-consent-lost", "error", session.subject(),
            f"Consent on the selected pair {pair.local} <-> {pair.remote} was lost: "
            f"{gap:.1f} s passed without an answered consent check (RFC 7675 allows 30 s); "
            "the agent must stop sending media.",
            (frame,),
        )

    @staticmethod
    def retransmitted(check: Check | Ping, frame: int) -> None:
        """A retransmission of ``check`` (a GOOG-PING's is not a check's)."""
        if isinstance(check, Check):
            check.pair.retransmissions += 1

    def answered(self, check: Check | Ping, msg: StunMessage, error: tuple[int, str] | None,
                 src: Endpoint, rtt_ms: float | None, frame: int, ts: float) -> None:
        """The answer to ``check``; ``src`` is the logical source of the request. A GOOG-PING's
        success answer refreshes consent (RFC 7675 §5.1) and nothing else."""
        if not isinstance(check, Check):
            check.pair.note(frame)
            if error is None:
                check.pair.goog_ping_successes += 1
                check.pair.last_success_ts = ts
            return
        session, pair = check.session, check.pair
        pair.open -= 1
        if len(pair.frames) < MAX_FRAMES:
            pair.frames.append(frame)
        session.responses += 1
        if error is None:
            pair.successes += 1
            pair.rtt_ms = round(rtt_ms, 3) if rtt_ms is not None else None
            pair.last_success_ts = ts
            if pair.successes == 1:
                mapped = xor_mapped(msg)
                if mapped is not None and mapped != src:
                    session.prflx.add(mapped)
            if check.use_candidate and session.agents[check.sender].role != "controlled":
                pair.nominated = True
                session.selected = pair
                session.selected_ts = ts
            return
        code, reason = error
        if code == 487:
            session.conflicts += 1
            session.agents[check.sender].conflicted = True
            self.log.add(
                "ice-role-conflict", "warning", session.subject(),
                f"Both ICE agents of session {session.subject()} claimed the same role; the check "
                f"from {src} was answered 487 Role Conflict and its sender must switch role "
                "(RFC 8445 §7.2.5.1); this costs a round of checks.",
                (check.frame, frame),
            )
            return
        pair.errors += 1
        pair.failure = f"error {code}"
        if code in (400, 401):
            self.log.add(
                "ice-auth-failure", "error", session.subject(),
                f"The ICE check from {src} was rejected with {code} {reason}: the "
                "USERNAME or the MESSAGE-INTEGRITY (ICE password) does not match what the peer "
                "expects; the offer/answer exchanged the wrong credentials.",
                (check.frame, frame),
            )

    def unanswered(self, check: Check | Ping) -> None:
        """``check`` got no answer within the transaction span (an unanswered GOOG-PING fails
        no pair: only consent, judged by time, suffers)."""
        if not isinstance(check, Check):
            return
        pair = check.pair
        pair.open -= 1
        pair.timeouts += 1
        if pair.failure is None:
            pair.failure = "icmp-unreachable" if pair.icmp else "timeout"

    def bad_integrity(self, check: Check | Ping | None, names: tuple[str, str], frame: int) -> None:
        """A check or its answer failed MESSAGE-INTEGRITY with the ICE password we hold."""
        subject = check.session.subject() if check else f"{names[1]}:{names[0]}"
        self.log.add(
            "ice-auth-failure", "error", subject,
            f"ICE messages of session {subject} fail MESSAGE-INTEGRITY with the password from the "
            "SDP: one agent uses the wrong ice-pwd, so its peer drops the checks silently.",
            (frame,),
        )

    def unreachable(self, src: Endpoint, dst: Endpoint, frame: int) -> bool:
        """An ICMP error quoting a datagram ``src`` -> ``dst``; True when it hit an ICE pair."""
        pair = self.by_flow.get((src, dst))
        if pair is None:
            return False
        pair.icmp += 1
        pair.note(frame)
        if pair.failure is None or pair.failure == "timeout":
            pair.failure = "icmp-unreachable"
        return True

    # -- results ------------------------------------------------------------------------------

    def results(self, now: float | None, type_of: TypeOf,
                final: bool) -> tuple[list[IceSession], list[Verdict]]:
        """Every session as of ``now``; with ``final``, checks still open count as unanswered."""
        out: list[IceSession] = []
        found: list[Verdict] = []
        for session in self.sessions.values():
            result = self._session(session, now, type_of, final)
            out.append(result)
            found.extend(self._verdicts(session, result, now))
        if self.sdp is not None:
            found.extend(self.sdp.findings)
        out.sort(key=lambda s: s.first_frame)
        return out, found

    def _pair(self, session: IceSessionState, pair: PairState, type_of: TypeOf, final: bool) -> Pair:
        if pair.successes:
            state = "succeeded"
        elif pair.open and not final:
            state = "in-progress"
        elif pair.errors or pair.timeouts or pair.icmp or pair.open:
            state = "failed"
        else:
            state = "in-progress"
        failure = pair.failure
        if state == "failed" and failure is None:
            failure = "icmp-unreachable" if pair.icmp else "timeout"
        cand = self.sdp.find(session.local_ufrag, pair.local) if self.sdp is not None else None
        return Pair(
            str(pair.local), str(pair.remote), state, pair.nominated,
            type_of(session.local_ufrag, pair.local, session),
            type_of(session.remote_ufrag, pair.remote, session),
            pair.rtt_ms, pair.checks, pair.retransmissions, pair.successes,
            failure if state == "failed" else None,
            split_priority(pair.priority) if pair.priority is not None else None,
            pair.first_frame, tuple(pair.frames),
            split_priority(cand.priority) if cand is not None else None,
            pair.goog_pings, pair.goog_ping_successes,
        )

    def _session(self, session: IceSessionState, now: float | None, type_of: TypeOf,
                 final: bool) -> IceSession:
        pairs = {id(p): self._pair(session, p, type_of, final) for p in session.pairs.values()}
        ordered = sorted(pairs.values(), key=lambda p: p.first_frame)
        selected = session.selected
        selected_pair = pairs[id(selected)] if selected is not None else None
        if selected_pair is None:
            succeeded = [p for p in session.pairs.values() if p.successes]
            if succeeded:
                best = max(succeeded, key=lambda p: p.last_success_ts or 0.0)
                selected_pair = pairs[id(best)]
        if selected_pair is not None:
            state = "connected"
        elif any(p.state == "in-progress" for p in ordered):
            state = "checking"
        else:
            state = "failed"
        local = session.agents[session.local_ufrag]
        tie_breakers = {
            ufrag: f"{agent.tie_breaker:016x}"
            for ufrag, agent in session.agents.items() if agent.tie_breaker is not None
        }
        switches = sorted(f for agent in session.agents.values() for f in agent.switches)
        relayed = None
        if selected_pair is not None:
            relayed = "relay" in (selected_pair.local_type, selected_pair.remote_type)
        consent = None
        if selected is not None:
            lost = session.consent_lost or (
                now is not None and selected.last_success_ts is not None
                and selected.last_check_ts > selected.last_success_ts
                and now - selected.last_success_ts > CONSENT_S
            )
            consent = "lost" if lost else "fresh"
        return IceSession(
            session.local_ufrag, session.remote_ufrag,
            None if local.role is None else local.role == "controlling",
            state, tuple(ordered), selected_pair, relayed, session.conflicts, tuple(switches),
            tie_breakers, consent, session.first_frame,
        )

    def _verdicts(self, session: IceSessionState, result: IceSession, now: float | None) -> list[Verdict]:
        subject = session.subject()
        found: list[Verdict] = []
        for pair in result.pairs:
            prio = pair.priority
            if prio is not None and prio.type_preference != PRFLX_TYPE_PREFERENCE:
                found.append(verdict(
                    "ice-priority-unusual", "info", f"{subject} {pair.local}",
                    f"Checks from {pair.local} carry PRIORITY {prio.value} (type preference "
                    f"{prio.type_preference}); RFC 8445 §7.1.1 sets it to the priority of a "
                    "peer-reflexive candidate, recommended type preference 110 (§5.1.2.2), so "
                    "a learned peer-reflexive candidate will rank oddly.",
                    (pair.first_frame,),
                ))
        if result.state == "connected" and result.selected_pair is not None:
            sel = result.selected_pair
            how = "through a TURN relay" if result.relayed else "directly (no relay)"
            nominated = "nominated" if sel.nominated else "answered (no USE-CANDIDATE seen)"
            found.append(verdict(
                "ice-connected", "info", subject,
                f"ICE session {subject} connected {how} on {sel.local} ({sel.local_type}) <-> "
                f"{sel.remote} ({sel.remote_type}), {nominated}.",
                sel.frames[:4],
            ))
            if result.consent == "lost" and not session.consent_lost and session.selected:
                found.append(verdict(
                    "ice-consent-lost", "error", subject,
                    f"Consent on the selected pair {sel.local} <-> {sel.remote} was lost: its "
                    "consent checks went unanswered for more than 30 s (RFC 7675 §5.1).",
                    sel.frames[-4:],
                ))
        if result.state == "failed":
            if session.responses == 0:
                found.append(verdict(
                    "ice-no-response", "error", subject,
                    f"ICE session {subject}: {sum(p.checks for p in result.pairs)} connectivity "
                    f"check(s) on {len(result.pairs)} pair(s), "
                    f"{sum(p.checks + p.retransmissions for p in result.pairs)} transmissions, "
                    "and nothing came back: the "
                    "peer is unreachable (firewall, wrong candidates) or drops the checks "
                    "(wrong ICE credentials).",
                    session.check_frames,
                ))
            reasons: dict[str, int] = {}
            for p in result.pairs:
                if p.failure:
                    reasons[p.failure] = reasons.get(p.failure, 0) + 1
            why = ", ".join(f"{n} by {r}" for r, n in sorted(reasons.items()))
            icmp = (" ICMP errors say the remote port is closed or unreachable."
                    if "icmp-unreachable" in reasons else "")
            found.append(verdict(
                "ice-failed", "error", subject,
                f"ICE session {subject} failed: none of its {len(result.pairs)} candidate pairs "
                f"succeeded ({why or 'no answers'}).{icmp}",
                [f for p in result.pairs for f in p.frames[:2]],
            ))
        return found
