"""NAT behaviour per local endpoint: RFC 4787 mapping and filtering, RFC 3489 classic names,
RFC 5780 §4.5 hairpinning and §4.6 mapping lifetime tests.

Mapping (RFC 4787 §4.1, tested as in RFC 5780 §4.3): the XOR-MAPPED-ADDRESS one local endpoint
gets from Binding (and Allocate) answers of different servers. The same mapping toward two
server IP addresses is endpoint-independent; a mapping that changes with the server address is
address-dependent, and one that changes with the server port alone is address-and-port-dependent
(when no test toward two ports of one address was made, a mapping that changes with the address
is reported as address-dependent, the reason says the port case was not tested).

Filtering (RFC 4787 §5, tested as in RFC 5780 §4.4): Binding requests with CHANGE-REQUEST. An
answer to "change IP and port" means endpoint-independent filtering; only "change port"
answered means address-dependent; neither answered means address-and-port-dependent.

Classic names (RFC 3489 §5): symmetric when the mapping depends on the destination; full cone,
restricted cone and port-restricted cone for an endpoint-independent mapping with the
corresponding filtering; open internet when the mapped address is the local one and
unsolicited answers arrive. Otherwise ``unknown`` and ``reason`` says what evidence was missing.

Hairpinning (RFC 5780 §4.5, RFC 4787 §6): a Binding request sent to the mapped address of a
local endpoint. It is supported when the request is seen again delivered to that endpoint
(translated by the NAT) or is answered; not supported when neither happened within one initial
RTO (500 ms, RFC 8489 §6.2.1) after its last transmission. When the mapped address is the local
address there is no NAT to hairpin through, so the test says nothing.

Mapping lifetime (RFC 5780 §4.6, RFC 4787 §4.3): after an idle interval, a Binding request from
another local endpoint carries RESPONSE-PORT (§7.5) set to the port of the idle endpoint's
mapping. An answer delivered to the idle endpoint shows the mapping was still alive (the
lifetime is at least the idle interval); no answer within one RTO shows it gone (at most the
interval). The idle interval runs from the last Binding message seen from or to the endpoint,
so traffic the analysis does not see (media on the same socket) would make it shorter.

The tracker is fed by :meth:`NatTracker.binding` (every Binding message not inside a TURN
tunnel, in capture order) and :meth:`NatTracker.mapped` (answered Binding transactions, not ICE
checks and not RFC 5780 test requests, and Allocate answers).
"""

from __future__ import annotations

from stunscope.analysis.results import (
    NatBinding, NatEndpoint, NatHairpinning, NatMappingLifetime, Verdict,
)
from stunscope.analysis.verdicts import verdict
from stunscope.wire.message import Endpoint, MessageClass, StunMessage

CHANGE_REQUEST = 0x0003
CHANGE_IP, CHANGE_PORT = 0x04, 0x02
USERNAME = 0x0006
RESPONSE_PORT = 0x0027

RTO_S = 0.5
"""RFC 8489 §6.2.1 initial RTO: a hairpinned request or a RESPONSE-PORT answer not seen this
long after the last transmission is taken as lost."""

MAX_LOCALS = 5_000
"""Local endpoints kept; more are counted as evicted."""
MAX_SERVERS_PER_LOCAL = 16
"""Servers remembered per local endpoint."""
MAX_REFLEXIVE = 50_000
"""Mapped addresses remembered for candidate typing and as hairpinning targets."""
MAX_PROBES = 5_000
"""RFC 5780 §4.5 / §4.6 test requests remembered."""

EI, AD, APD, UNKNOWN = (
    "endpoint-independent", "address-dependent", "address-and-port-dependent", "unknown",
)


def change_flags(msg: StunMessage) -> int | None:
    """The CHANGE-REQUEST flags of ``msg`` (RFC 5780 §7.2), or None when absent."""
    for attr in msg.attributes:
        if attr.type == CHANGE_REQUEST and len(attr.raw) == 4:
            return attr.raw[3] & (CHANGE_IP | CHANGE_PORT)
    return None


def response_port(msg: StunMessage) -> int | None:
    """The port of RESPONSE-PORT (RFC 5780 §7.5), or None when absent or malformed."""
    for attr in msg.attributes:
        if attr.type == RESPONSE_PORT and len(attr.raw) == 4:
            return int.from_bytes(attr.raw[:2], "big")
    return None


class _Local:
    __slots__ = ("bindings", "tests", "first_frame", "active_ts", "probes")

    def __init__(self, frame: int) -> None:
        self.bindings: dict[Endpoint, tuple[Endpoint, int]] = {}
        self.tests: dict[int, tuple[bool, int]] = {}
        self.first_frame = frame
        self.active_ts: float | None = None
        self.probes: list[_Probe] = []


class _Probe:
    """One RFC 5780 test request toward ``owner``'s mapping ``target``: a hairpinning test
    (§4.5, ``idle_s`` None) or a mapping lifetime test (§4.6, after ``idle_s`` of silence)."""

    __slots__ = ("tester", "target", "idle_s", "frames", "last_ts", "arrived", "answer")

    def __init__(self, tester: Endpoint, target: Endpoint, idle_s: float | None, frame: int,
                 ts: float) -> None:
        self.tester, self.target, self.idle_s = tester, target, idle_s
        self.frames = [frame]
        self.last_ts = ts
        self.arrived: int | None = None
        self.answer: tuple[int, bool, Endpoint] | None = None  # frame, success, destination


class NatTracker:
    """Mapped addresses and filtering tests per local endpoint."""

    __slots__ = ("locals", "reflexive", "by_port", "evicted", "probes", "last_ts")

    def __init__(self) -> None:
        self.locals: dict[Endpoint, _Local] = {}
        self.reflexive: dict[Endpoint, Endpoint] = {}  # mapped address -> local endpoint
        self.by_port: dict[int, Endpoint] = {}  # port -> the last mapped address with it
        self.evicted = 0
        self.probes: dict[bytes, tuple[Endpoint, _Probe]] = {}  # txid -> (owner, test)
        self.last_ts = 0.0

    def _local(self, local: Endpoint, frame: int) -> _Local | None:
        state = self.locals.get(local)
        if state is None:
            if len(self.locals) >= MAX_LOCALS:
                self.evicted += 1
                return None
            state = self.locals[local] = _Local(frame)
        return state

    def mapped(self, local: Endpoint, server: Endpoint, mapped: Endpoint, frame: int,
               ts: float | None = None) -> None:
        """A server answered ``local`` with ``mapped`` (RFC 8489 §14.2), at ``ts`` for a Binding
        answer (the mapping was in use then: RFC 5780 §4.6 idle time starts there)."""
        if mapped in self.reflexive or len(self.reflexive) < MAX_REFLEXIVE:
            self.reflexive[mapped] = local
            self.by_port[mapped.port] = mapped
        state = self._local(local, frame)
        if state is not None and (server in state.bindings or len(state.bindings) < MAX_SERVERS_PER_LOCAL):
            state.bindings[server] = (mapped, frame)
        if state is not None and ts is not None:
            state.active_ts = ts

    def change_test(self, local: Endpoint, flags: int, answered: bool, frame: int) -> None:
        """The outcome of an RFC 5780 §4.4 filtering test (a Binding with CHANGE-REQUEST)."""
        if not flags:
            return
        state = self._local(local, frame)
        if state is not None:
            previous = state.tests.get(flags)
            if previous is None or (answered and not previous[0]):
                state.tests[flags] = (answered, frame)

    def binding(self, src: Endpoint, dst: Endpoint, msg: StunMessage, frame: int,
                ts: float) -> None:
        """A Binding message seen from ``src`` to ``dst`` (not inside a TURN tunnel): when the
        endpoints were last active, and RFC 5780 §4.5 / §4.6 tests and their outcome. Mappings
        come from answered transactions through :meth:`mapped`."""
        if ts > self.last_ts:
            self.last_ts = ts
        txid = msg.txid
        probe = self.probes.get(txid)
        if msg.cls == MessageClass.REQUEST:
            self._active(src, ts)
            if probe is not None:
                _again(probe[0], probe[1], dst, frame, ts)
            elif not any(a.type == USERNAME for a in msg.attributes):  # not an ICE check
                self._request(src, dst, msg, frame, ts)
            return
        self._active(dst, ts)
        if probe is not None and probe[1].answer is None:
            probe[1].answer = (frame, msg.cls == MessageClass.SUCCESS, dst)

    def _active(self, endpoint: Endpoint, ts: float) -> None:
        state = self.locals.get(endpoint)
        if state is not None:
            state.active_ts = ts

    def _request(self, src: Endpoint, dst: Endpoint, msg: StunMessage, frame: int,
                 ts: float) -> None:
        owner, target, idle_s = self.reflexive.get(dst), dst, None
        if owner is None:
            port = response_port(msg)
            found = self._idle_mapping(src, port, ts) if port is not None else None
            if found is not None:
                owner, target, idle_s = found
        state = self.locals.get(owner) if owner is not None else None
        if state is not None and len(self.probes) < MAX_PROBES:
            probe = _Probe(src, target, idle_s, frame, ts)
            state.probes.append(probe)
            self.probes[msg.txid] = (owner, probe)

    def _idle_mapping(self, tester: Endpoint, port: int,
                      ts: float) -> tuple[Endpoint, Endpoint, float] | None:
        """The local endpoint whose mapping (the last one seen) has port ``port``, that
        mapping, and how long the endpoint had been idle (RFC 5780 §4.6)."""
        mapped = self.by_port.get(port)
        local = self.reflexive.get(mapped) if mapped is not None else None
        state = self.locals.get(local) if local is not None else None
        if state is None or state.active_ts is None or local == tester:
            return None
        return local, mapped, round(ts - state.active_ts, 3)  # type: ignore[return-value]

    def results(self, now: float | None = None) -> tuple[list[NatEndpoint], list[Verdict]]:
        """Behaviour per local endpoint, and ``symmetric-nat`` verdicts. ``now`` is the capture's
        last timestamp (default: the last Binding message seen)."""
        now = self.last_ts if now is None else now
        out: list[NatEndpoint] = []
        found: list[Verdict] = []
        for local, state in self.locals.items():
            result = _classify(local, state, now)
            out.append(result)
            if result.mapping_behavior in (AD, APD):
                found.append(verdict(
                    "symmetric-nat", "warning", str(local),
                    f"{local} is behind a NAT whose mapping is {result.mapping_behavior} "
                    f"(symmetric): it got {len(result.mapped)} different public addresses "
                    "toward different servers, so a peer cannot reach it on the address a STUN "
                    "server reported; direct ICE pairs will likely fail and a TURN relay is needed.",
                    [b.frame for b in result.bindings],
                ))
        out.sort(key=lambda n: n.first_frame)
        return out, found


def _mapping(local: Endpoint, bindings: dict[Endpoint, tuple[Endpoint, int]]) -> tuple[str, str]:
    servers = list(bindings.items())
    diff_ip: list[bool] = []
    same_ip: list[bool] = []
    for i, (s1, (m1, _)) in enumerate(servers):
        for s2, (m2, _) in servers[i + 1:]:
            (diff_ip if s1.ip != s2.ip else same_ip).append(m1 != m2)
    if any(same_ip):
        return APD, "the mapping changed between two ports of one server address"
    if any(diff_ip):
        if same_ip:
            return AD, "the mapping changed with the server address but not with its port"
        return AD, ("the mapping changed with the server address (no two ports of one server "
                    "were tested, so it may also be address-and-port-dependent)")
    if diff_ip:
        if servers[0][1][0] == local:
            return EI, "no NAT: the mapped address is the local address"
        return EI, "the same mapping toward different server addresses"
    if not servers:
        return UNKNOWN, "no Binding answer carried a mapped address"
    if all(m == local for _, (m, _) in servers):
        return EI, "no NAT: the mapped address is the local address (nothing translates it)"
    return UNKNOWN, "a mapped address was seen toward one server address only"


def _filtering(tests: dict[int, tuple[bool, int]]) -> tuple[str, str]:
    both = tests.get(CHANGE_IP | CHANGE_PORT)
    port = tests.get(CHANGE_PORT)
    if both is not None and both[0]:
        return EI, "an answer from another address and port came through"
    if both is not None and port is not None:
        if port[0]:
            return AD, "only an answer from another port of the same address came through"
        return APD, "no answer from another address or port came through"
    if not tests:
        return UNKNOWN, "no RFC 5780 CHANGE-REQUEST test in the capture"
    return UNKNOWN, "the RFC 5780 CHANGE-REQUEST tests are incomplete"


def _again(owner: Endpoint, probe: _Probe, dst: Endpoint, frame: int, ts: float) -> None:
    """A test request seen again: delivered to ``owner`` through the NAT (a different frame
    toward the local endpoint behind the mapping), or a retransmission."""
    if dst == owner != probe.target and probe.idle_s is None:
        if probe.arrived is None:
            probe.arrived = frame
    else:
        probe.frames.append(frame)
        probe.last_ts = ts


def _hairpinning(local: Endpoint, probes: list[_Probe], now: float) -> NatHairpinning:
    tests = [p for p in probes if p.idle_s is None]
    if not tests:
        return NatHairpinning(UNKNOWN, "no RFC 5780 §4.5 test: no Binding request was sent to "
                              "this endpoint's mapped address", ())
    nat = [p for p in tests if p.target != local]
    for p in nat:
        if p.arrived is not None or p.answer is not None:
            how = "arrived at this endpoint" if p.arrived is not None else "was answered"
            evidence = (p.arrived,) if p.arrived is not None else (p.answer[0],)  # type: ignore[index]
            return NatHairpinning("supported", f"a Binding request from {p.tester} to the mapped "
                                  f"address {p.target} {how}", (*p.frames, *evidence))
    for p in nat:
        if now - p.last_ts >= RTO_S:
            return NatHairpinning(
                "not-supported", f"a Binding request from {p.tester} to the mapped address "
                f"{p.target} neither arrived at this endpoint nor was answered within {RTO_S:g} s",
                tuple(p.frames))
    if nat:
        p = nat[0]
        why = f"the capture ended less than {RTO_S:g} s after the request from {p.tester}"
    else:
        p = tests[0]
        why = (f"no NAT: the mapped address is the local address, so the request from {p.tester} "
               "went straight to it and passed no NAT that could hairpin")
    return NatHairpinning(UNKNOWN, why, tuple(p.frames))


def _lifetime(local: Endpoint, probes: list[_Probe], now: float) -> NatMappingLifetime:
    tests = [p for p in probes if p.idle_s is not None]
    alive: list[_Probe] = []
    gone: list[_Probe] = []
    doubtful = ""
    for p in tests:
        if p.answer is None:
            if now - p.last_ts >= RTO_S:
                gone.append(p)
            else:
                doubtful = doubtful or (f"the capture ended less than {RTO_S:g} s after the "
                                        f"RESPONSE-PORT test from {p.tester}")
        elif p.answer[1] and p.answer[2] in (local, p.target):
            alive.append(p)
        else:
            doubtful = doubtful or (
                f"the server answered the RESPONSE-PORT test from {p.tester} to {p.answer[2]}, "
                "not to this endpoint's mapping" if p.answer[1] else
                f"the server refused the RESPONSE-PORT test from {p.tester} with an error")
    low = max(alive, key=lambda p: p.idle_s or 0.0, default=None)
    high = min(gone, key=lambda p: p.idle_s or 0.0, default=None)
    said = []
    if low is not None:
        said.append(f"alive after {low.idle_s:g} s idle: the answer to a RESPONSE-PORT test "
                    f"from {low.tester} reached it")
    if high is not None:
        said.append(f"gone after {high.idle_s:g} s idle: the answer to a RESPONSE-PORT test "
                    f"from {high.tester} did not arrive within {RTO_S:g} s")
    if any(p.target == local for p in (*alive, *gone)):
        said.append("no NAT: the mapped address is the local address")
    if low is None and high is None:
        reason = doubtful or ("no RFC 5780 §4.6 test: no Binding request carried RESPONSE-PORT "
                              "toward this endpoint's mapping")
        return NatMappingLifetime(None, None, reason, tuple(f for p in tests for f in p.frames))
    frames = sorted(f for p in (low, high) if p is not None
                    for f in (*p.frames, *((p.answer[0],) if p.answer else ())))
    return NatMappingLifetime(low.idle_s if low else None, high.idle_s if high else None,
                              "; ".join(said), tuple(frames))


def _classify(local: Endpoint, state: _Local, now: float) -> NatEndpoint:
    mapping, why_mapping = _mapping(local, state.bindings)
    filtering, why_filtering = _filtering(state.tests)
    no_nat = bool(state.bindings) and all(m == local for m, _ in state.bindings.values())
    if mapping in (AD, APD):
        classic = "symmetric"
    elif no_nat and filtering == EI:
        classic = "open-internet"
    elif no_nat and filtering in (AD, APD):
        classic = "symmetric-udp-firewall"
    elif mapping == EI and filtering == EI:
        classic = "full-cone"
    elif mapping == EI and filtering == AD:
        classic = "restricted-cone"
    elif mapping == EI and filtering == APD:
        classic = "port-restricted-cone"
    else:
        classic = "unknown"
    bindings = tuple(
        NatBinding(str(server), str(mapped), frame)
        for server, (mapped, frame) in sorted(state.bindings.items(), key=lambda kv: kv[1][1])
    )
    mapped_set = tuple(dict.fromkeys(b.mapped for b in bindings))
    return NatEndpoint(
        str(local), mapped_set, bindings, mapping, filtering, classic,
        f"mapping: {why_mapping}; filtering: {why_filtering}", state.first_frame,
        _hairpinning(local, state.probes, now), _lifetime(local, state.probes, now),
    )
