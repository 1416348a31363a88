"""The people's report of ``stunscope analyze``: verdicts first, then the story behind them.

Sections: verdicts (errors, warnings, then notes, each with its evidence frames), ICE sessions
(one table of candidate pairs each; with an SDP the check's and the SDP's type preferences, with
GOOG-PING consent pings their answers), TURN allocations (permissions, channels, data per peer),
transactions (outcomes and per-server RTT), NAT behaviour (with RFC 5780 hairpinning and mapping
lifetime tests where the capture has them), and what was read. Every string that
came from the wire (usernames, realms, reason phrases inside verdict messages) goes through
:func:`~stunscope.wire.text.safe_text`.
"""

from __future__ import annotations

from collections import Counter

from stunscope.analysis.results import (
    SEVERITIES,
    Allocation,
    Analysis,
    IceSession,
    NatEndpoint,
    Priority,
)
from stunscope.wire.text import safe_text

_MARK = {"error": "ERROR", "warning": "WARN ", "info": "note "}
MAX_ITEMS = 50
"""Sessions, allocations, servers and NAT endpoints shown per section (the JSON has them all)."""


def _more(total: int) -> list[str]:
    return [f"  … {total - MAX_ITEMS} more (see --format json)"] if total > MAX_ITEMS else []


def _frames(frames: tuple[int, ...], count: int) -> str:
    if not frames:
        return ""
    shown = ", ".join(str(f) for f in frames[:8])
    more = " …" if len(frames) > 8 else ""
    times = f" ({count}×)" if count > 1 else ""
    return f" [frames {shown}{more}]{times}"


def _table(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]


def _verdicts(analysis: Analysis) -> list[str]:
    lines = ["VERDICTS"]
    if not analysis.verdicts:
        return lines + ["  nothing to report"]
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    for v in sorted(analysis.verdicts, key=lambda v: rank[v.severity]):
        lines.append(f"  {_MARK[v.severity]} {v.code}: {safe_text(v.message)}{_frames(v.frames, v.count)}")
    return lines


def _session(session: IceSession) -> list[str]:
    role = {True: "controlling", False: "controlled", None: "role unknown"}[session.controlling]
    head = (f"  {safe_text(session.local_ufrag)} <-> {safe_text(session.remote_ufrag)}: "
            f"{session.state.upper()}, local agent {role}")
    if session.role_conflicts:
        head += f", {session.role_conflicts} role conflict(s)"
    if session.consent:
        head += f", consent {session.consent}"
    lines = [head]
    if session.selected_pair is not None:
        sel = session.selected_pair
        via = "relayed" if session.relayed else "direct"
        lines.append(f"    selected: {sel.local} ({sel.local_type}) <-> {sel.remote} "
                     f"({sel.remote_type}), {via}")
    # Shown only when there is something in them: type preferences need an SDP, GOOG-PING
    # (libwebrtc's consent ping, RFC 7675) a libwebrtc peer.
    prefs = any(p.sdp_priority is not None for p in session.pairs)
    pings = any(p.goog_pings for p in session.pairs)
    rows = [("local", "type", "remote", "type", "state", "checks", "rtx", "rtt ms", "nom", "why")
            + (("pref check/sdp",) if prefs else ()) + (("goog-ping ok/sent",) if pings else ())]
    for p in session.pairs:
        row: tuple[str, ...] = (
            p.local, p.local_type, p.remote, p.remote_type, p.state, str(p.checks),
            str(p.retransmissions), f"{p.rtt_ms:.1f}" if p.rtt_ms is not None else "-",
            "yes" if p.nominated else "", p.failure or "",
        )
        if prefs:
            row += (f"{_type_preference(p.priority)}/{_type_preference(p.sdp_priority)}",)
        if pings:
            row += (f"{p.goog_ping_successes}/{p.goog_pings}",)
        rows.append(row)
    return lines + _table(rows, "    ")


def _type_preference(priority: Priority | None) -> str:
    """The RFC 8445 §5.1.2.1 type preference of a priority, or ``-``."""
    return str(priority.type_preference) if priority is not None else "-"


def _allocation(a: Allocation) -> list[str]:
    head = f"  {a.client} -> {a.server} ({a.transport}): {a.state.upper()}"
    if a.relayed:
        head += f", relayed {a.relayed}"
    if a.mapped:
        head += f", mapped {a.mapped}"
    if a.lifetime_s is not None:
        head += f", lifetime {a.lifetime_s} s"
    lines = [head]
    auth = []
    if a.username:
        auth.append(f"user {safe_text(a.username)}")
    if a.realm:
        auth.append(f"realm {safe_text(a.realm)}")
    for label, plural, n in (("challenge", "challenges", a.challenges),
                             ("auth failure", "auth failures", a.auth_failures),
                             ("stale nonce", "stale nonces", a.stale_nonces),
                             ("refresh", "refreshes", a.refreshes)):
        if n:
            auth.append(f"{n} {plural if n > 1 else label}")
    if auth:
        lines.append("    " + ", ".join(auth))
    for perm in a.permissions:
        lines.append(f"    permission {perm.peer_ip}: {perm.state}, {perm.refreshes} refresh(es), "
                     f"from frame {perm.installed_frame}")
    for ch in a.channels:
        lines.append(f"    channel 0x{ch.number:04x} -> {ch.peer}: {ch.state}, {ch.packets} pkts "
                     f"{ch.bytes} B, from frame {ch.bound_frame}")
    for peer in a.peers:
        lines.append(f"    data {peer.peer}: to peer {peer.to_peer_packets} pkts "
                     f"{peer.to_peer_bytes} B, from peer {peer.from_peer_packets} pkts "
                     f"{peer.from_peer_bytes} B")
    for conn in a.tcp_connections:
        lines.append(f"    tcp connection {conn.connection_id} -> {conn.peer or '?'} "
                     f"({conn.initiated_by}), {'bound' if conn.bound else 'not bound'}")
    return lines


def _nat_tests(nat: NatEndpoint) -> list[str]:
    """The RFC 5780 §4.5 hairpinning and §4.6 mapping lifetime lines, when the capture holds
    such a test for this endpoint."""
    lines = []
    hp = nat.hairpinning
    if hp.frames:
        lines.append(f"    hairpinning {hp.result}: {hp.reason}{_frames(hp.frames, 1)}")
    life = nat.mapping_lifetime
    if life.frames:
        if life.min_s is not None and life.max_s is not None:
            bound = f"between {life.min_s:g} s and {life.max_s:g} s"
        elif life.min_s is not None:
            bound = f"at least {life.min_s:g} s"
        elif life.max_s is not None:
            bound = f"at most {life.max_s:g} s"
        else:
            bound = "unknown"
        lines.append(f"    mapping lifetime {bound}: {life.reason}{_frames(life.frames, 1)}")
    return lines


def _transactions(analysis: Analysis) -> list[str]:
    outcomes = Counter(t.outcome for t in analysis.transactions)
    unlisted = analysis.capture.evictions.get("transactions_unlisted", 0)
    summary = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())) or "none"
    lines = [f"TRANSACTIONS: {summary}" + (f" (+{unlisted} not listed)" if unlisted else "")]
    rtx = sum(t.retransmissions for t in analysis.transactions)
    if rtx:
        lines.append(f"  {rtx} retransmissions")
    if analysis.servers:
        rows = [("server", "requests", "ok", "error", "timeout", "success", "p50 ms", "p95 ms",
                 "max ms")]
        for s in analysis.servers[:MAX_ITEMS]:
            rate = f"{s.success_rate * 100:.0f}%" if s.success_rate is not None else "-"
            rtt = s.rtt_ms
            rows.append((s.server, str(s.requests), str(s.success), str(s.errors),
                         str(s.timeouts), rate,
                         *(f"{x:.1f}" if x is not None else "-" for x in (rtt.p50, rtt.p95, rtt.max))))
        lines += _table(rows) + _more(len(analysis.servers))
    return lines


def render(analysis: Analysis) -> str:
    """The whole text report."""
    lines = _verdicts(analysis)
    if analysis.ice:
        lines += ["", f"ICE SESSIONS ({len(analysis.ice)})"]
        for session in analysis.ice[:MAX_ITEMS]:
            lines += _session(session)
        lines += _more(len(analysis.ice))
    if analysis.allocations:
        lines += ["", f"TURN ALLOCATIONS ({len(analysis.allocations)})"]
        for alloc in analysis.allocations[:MAX_ITEMS]:
            lines += _allocation(alloc)
        lines += _more(len(analysis.allocations))
    lines += [""] + _transactions(analysis)
    if analysis.nat:
        lines += ["", "NAT BEHAVIOUR"]
        for nat in analysis.nat[:MAX_ITEMS]:
            lines.append(f"  {nat.local} -> {', '.join(nat.mapped) or '-'}: mapping "
                         f"{nat.mapping_behavior}, filtering {nat.filtering_behavior}, "
                         f"RFC 3489 {nat.rfc3489_type}")
            lines.append(f"    {nat.reason}")
            lines += _nat_tests(nat)
        lines += _more(len(analysis.nat))
    cap = analysis.capture
    span = (cap.last_ts - cap.first_ts) if cap.first_ts is not None and cap.last_ts is not None else 0.0
    evicted = {k: v for k, v in cap.evictions.items() if v}
    lines += ["", f"CAPTURE: {cap.frames} frames, {cap.messages} messages over {span:.3f} s"
              + (f", {cap.undecodable} undecodable" if cap.undecodable else "")
              + (", incomplete (damaged file)" if not cap.complete else "")]
    if evicted:
        lines.append("  evictions: " + ", ".join(f"{k} {v}" for k, v in evicted.items()))
    return "\n".join(lines) + "\n"
