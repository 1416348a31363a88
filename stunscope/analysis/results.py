"""Typed, immutable results of an analysis and their JSON form (DESIGN.md "The JSON contract (v1)").

Every result is a frozen slotted dataclass built by a tracker's ``snapshot``; the field names are
the JSON keys, so ``to_json`` is one generic walk (:func:`jsonable`). Lists are tuples here and
arrays in JSON; endpoints are already strings (``1.2.3.4:3478`` / ``[::1]:3478``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

SCHEMA = "stunscope.analysis/1"
"""The ``schema`` value; bumped only when a contract key is renamed or dropped."""

SEVERITIES = ("error", "warning", "info")
"""Verdict severities, most serious first (the report's order)."""

_FIELDS: dict[type, tuple[str, ...]] = {}


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses become dicts (field order), tuples lists."""
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    names = _FIELDS.get(type(value))
    if names is None:
        if not hasattr(value, "__dataclass_fields__"):
            return value
        names = _FIELDS[type(value)] = tuple(f.name for f in fields(value))
    return {name: jsonable(getattr(value, name)) for name in names}


@dataclass(frozen=True, slots=True)
class RttSummary:
    """Round-trip times in milliseconds over the answered transactions (percentiles nearest-rank)."""

    count: int
    p50: float | None
    p95: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class Transaction:
    """One request and its answer, matched by transaction id (RFC 8489 §6.3).

    ``client``/``server`` are the logical ends: for a check tunnelled through TURN they are the
    relayed address and the peer, and ``via`` names the TURN server. ``rtt_ms`` runs from the
    first request, ``rtt_last_ms`` from the last transmission before the answer. ``ended_by`` is
    ``schedule`` when no answer came within the RFC 8489 §6.2.1 span (39.5 s) or
    ``capture-end`` when the capture stopped first. ``timing`` lists retransmission findings.
    """

    txid: str
    method: str
    client: str
    server: str
    transport: str
    via: str | None
    request_frames: tuple[int, ...]
    response_frame: int | None
    outcome: str
    error_code: int | None
    error_reason: str | None
    rtt_ms: float | None
    rtt_last_ms: float | None
    retransmissions: int
    first_ts: float
    ended_by: str | None
    timing: tuple[str, ...]
    ice: bool


@dataclass(frozen=True, slots=True)
class ServerStats:
    """Per-server request statistics (requests, answers, success rate, RTT percentiles)."""

    server: str
    requests: int
    success: int
    errors: int
    timeouts: int
    success_rate: float | None
    rtt_ms: RttSummary


@dataclass(frozen=True, slots=True)
class PeerTraffic:
    """Application data relayed to and from one peer (RFC 8656 §11-§12), by carrier."""

    peer: str
    to_peer_packets: int
    to_peer_bytes: int
    from_peer_packets: int
    from_peer_bytes: int
    channel_packets: int
    indication_packets: int


@dataclass(frozen=True, slots=True)
class Permission:
    """A TURN permission for one peer IP (RFC 8656 §9: 300 s, refreshed by CreatePermission
    and ChannelBind)."""

    peer_ip: str
    installed_frame: int
    refreshes: int
    expires_ts: float
    state: str


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel binding (RFC 8656 §12: 600 s, number to one peer transport address)."""

    number: int
    peer: str
    bound_frame: int
    refreshes: int
    expires_ts: float
    state: str
    packets: int
    bytes: int


@dataclass(frozen=True, slots=True)
class TcpConnection:
    """An RFC 6062 peer data connection (Connect or ConnectionAttempt, then ConnectionBind)."""

    connection_id: int
    peer: str | None
    initiated_by: str
    bound: bool
    frames: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Allocation:
    """One TURN allocation: client 5-tuple and server (RFC 8656 §7)."""

    client: str
    server: str
    transport: str
    relayed: str | None
    mapped: str | None
    lifetime_s: int | None
    state: str
    first_frame: int
    username: str | None
    realm: str | None
    challenges: int
    auth_failures: int
    stale_nonces: int
    refreshes: int
    expires_ts: float | None
    deallocated_frame: int | None
    permissions: tuple[Permission, ...]
    channels: tuple[Channel, ...]
    peers: tuple[PeerTraffic, ...]
    tcp_connections: tuple[TcpConnection, ...]


@dataclass(frozen=True, slots=True)
class Priority:
    """An ICE PRIORITY split per RFC 8445 §5.1.2.1: type and local preference, component."""

    value: int
    type_preference: int
    local_preference: int
    component: int


@dataclass(frozen=True, slots=True)
class Pair:
    """An ICE candidate pair seen from the local agent (RFC 8445 §6.1.2), with its checks.

    ``priority`` is the PRIORITY of the local agent's checks (§7.1.1), ``sdp_priority`` the
    local candidate's priority in the SDP given (None without one). ``goog_pings`` counts
    libwebrtc's GOOG-PING consent requests on the pair's 5-tuple, ``goog_ping_successes`` their
    success answers (RFC 7675 consent, not checks).
    """

    local: str
    remote: str
    state: str
    nominated: bool
    local_type: str
    remote_type: str
    rtt_ms: float | None
    checks: int
    retransmissions: int
    successes: int
    failure: str | None
    priority: Priority | None
    first_frame: int
    frames: tuple[int, ...]
    sdp_priority: Priority | None
    goog_pings: int
    goog_ping_successes: int


@dataclass(frozen=True, slots=True)
class IceSession:
    """Binding checks grouped by USERNAME ufrags (RFC 8445 §7.2.2): pairs, roles, selection.

    ``local_ufrag`` is the agent that sent the first check seen; ``controlling`` its final role.
    """

    local_ufrag: str
    remote_ufrag: str
    controlling: bool | None
    state: str
    pairs: tuple[Pair, ...]
    selected_pair: Pair | None
    relayed: bool | None
    role_conflicts: int
    role_switches: tuple[int, ...]
    tie_breakers: dict[str, str]
    consent: str | None
    first_frame: int


@dataclass(frozen=True, slots=True)
class NatBinding:
    """One mapping seen toward one server (RFC 4787 §4.1)."""

    server: str
    mapped: str
    frame: int


@dataclass(frozen=True, slots=True)
class NatHairpinning:
    """RFC 5780 §4.5: can this endpoint be reached at its mapped address from behind the same
    NAT? ``result`` is ``supported``, ``not-supported`` or ``unknown``; ``frames`` the test."""

    result: str
    reason: str
    frames: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class NatMappingLifetime:
    """RFC 5780 §4.6: bounds on how long this endpoint's mapping lives without traffic.
    ``min_s``: seen alive after that long idle; ``max_s``: seen gone after that long; None
    when no test showed it."""

    min_s: float | None
    max_s: float | None
    reason: str
    frames: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class NatEndpoint:
    """NAT behaviour seen from one local endpoint (RFC 4787, RFC 5780 §4, RFC 3489 §5)."""

    local: str
    mapped: tuple[str, ...]
    bindings: tuple[NatBinding, ...]
    mapping_behavior: str
    filtering_behavior: str
    rfc3489_type: str
    reason: str
    first_frame: int
    hairpinning: NatHairpinning
    mapping_lifetime: NatMappingLifetime


@dataclass(frozen=True, slots=True)
class Verdict:
    """A finding for people: stable code, severity, a sentence, and the frames that prove it."""

    code: str
    severity: str
    message: str
    frames: tuple[int, ...]
    count: int
    subject: str


@dataclass(frozen=True, slots=True)
class CaptureSummary:
    """What was read: frames, messages, time span, evictions from the bounded tables."""

    file: str | None
    frames: int
    messages: int
    undecodable: int
    unreachable: int
    first_ts: float | None
    last_ts: float | None
    evictions: dict[str, int]
    complete: bool


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything ``analyze`` found. ``to_json`` is the DESIGN.md v1 object, in a stable order
    (each list sorted by first frame) so two analyses can be diffed. The field order is the JSON
    key order, so ``orjson.dumps(analysis)`` writes the same object without building dicts."""

    schema: str
    capture: CaptureSummary
    transactions: tuple[Transaction, ...]
    servers: tuple[ServerStats, ...]
    allocations: tuple[Allocation, ...]
    ice: tuple[IceSession, ...]
    nat: tuple[NatEndpoint, ...]
    verdicts: tuple[Verdict, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``analyze --format json`` object (schema ``stunscope.analysis/1``)."""
        return jsonable(self)
