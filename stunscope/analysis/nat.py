"""NAT behaviour per local endpoint: RFC 4787 mapping and filtering, RFC 3489 classic names.

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
"""

from __future__ import annotations

from stunscope.analysis.results import NatBinding, NatEndpoint, Verdict
from stunscope.analysis.verdicts import verdict
from stunscope.wire.message import Endpoint, StunMessage

CHANGE_REQUEST = 0x0003
CHANGE_IP, CHANGE_PORT = 0x04, 0x02

MAX_LOCALS = 5_000
"""Local endpoints kept; more are counted as evicted."""
MAX_SERVERS_PER_LOCAL = 16
"""Servers remembered per local endpoint."""
MAX_REFLEXIVE = 50_000
"""Mapped addresses remembered for candidate typing."""

EI, AD, APD, UNKNOWN = (
    "endpoint-independent", "address-dependent", "address-and-port-dependent", "unknown",
)


def change_flags(msg: StunMessage) -> int | None:
    """The CHANGE-REQUEST flags of ``msg`` (RFC 5780 §7.2), or None when absent."""
    for attr in msg.attributes:
        if attr.type == CHANGE_REQUEST and len(attr.raw) == 4:
            return attr.raw[3] & (CHANGE_IP | CHANGE_PORT)
    return None


class _Local:
    __slots__ = ("bindings", "tests", "first_frame")

    def __init__(self, frame: int) -> None:
        self.bindings: dict[Endpoint, tuple[Endpoint, int]] = {}
        self.tests: dict[int, tuple[bool, int]] = {}
        self.first_frame = frame


class NatTracker:
    """Mapped addresses and filtering tests per local endpoint."""

    __slots__ = ("locals", "reflexive", "evicted")

    def __init__(self) -> None:
        self.locals: dict[Endpoint, _Local] = {}
        self.reflexive: set[Endpoint] = set()
        self.evicted = 0

    def _local(self, local: Endpoint, frame: int) -> _Local | None:
        state = self.locals.get(local)
        if state is None:
            if len(self.locals) >= MAX_LOCALS:
                self.evicted += 1
                return None
            state = self.locals[local] = _Local(frame)
        return state

    def mapped(self, local: Endpoint, server: Endpoint, mapped: Endpoint, frame: int) -> None:
        """A server answered ``local`` with ``mapped`` (RFC 8489 §14.2)."""
        if len(self.reflexive) < MAX_REFLEXIVE:
            self.reflexive.add(mapped)
        state = self._local(local, frame)
        if state is not None and (server in state.bindings or len(state.bindings) < MAX_SERVERS_PER_LOCAL):
            state.bindings[server] = (mapped, frame)

    def change_test(self, local: Endpoint, flags: int, answered: bool, frame: int) -> None:
        """The outcome of an RFC 5780 §4.4 filtering test (a Binding with CHANGE-REQUEST)."""
        if not flags:
            return
        state = self._local(local, frame)
        if state is not None:
            previous = state.tests.get(flags)
            if previous is None or (answered and not previous[0]):
                state.tests[flags] = (answered, frame)

    def results(self) -> tuple[list[NatEndpoint], list[Verdict]]:
        """Behaviour per local endpoint, and ``symmetric-nat`` verdicts."""
        out: list[NatEndpoint] = []
        found: list[Verdict] = []
        for local, state in self.locals.items():
            result = _classify(local, state)
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


def _classify(local: Endpoint, state: _Local) -> NatEndpoint:
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
    )
