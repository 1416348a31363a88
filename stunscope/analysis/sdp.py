"""The ICE parts of an SDP offer or answer (RFC 8839 §5.1, §5.4; RFC 8866 for the line syntax).

``a=ice-ufrag`` and ``a=ice-pwd`` (session level, or per media section where they override it)
give the credentials: the password is the short-term key of MESSAGE-INTEGRITY for checks sent
*to* that agent (RFC 8445 §7.2.2). ``a=candidate`` lines (RFC 8839 §5.1) give each candidate's
foundation, component, transport, priority, address and type, used to label candidate pairs.

Candidate priorities are judged against RFC 8445 §5.1.2 (:class:`SdpCandidates`): a priority
built with the §5.1.2.1 formula has ``256 - component`` in its low byte and a type preference of
0..126 in its high byte; one that does not is noted (``ice-priority-unusual``, info) and left out
of the comparisons, since its type preference cannot be read. Among one agent's candidates (one
ufrag) of one transport, a type that must rank below another and does not is an
``ice-priority-inversion`` warning: a relayed candidate not below a host one (§5.1.2.1 makes
type preference 0 the last resort; §5.1.2.2 recommends 126 for host, 0 for relayed) and a
server-reflexive one not below a peer-reflexive one (a MUST of §5.1.2.1). Type preferences of
other types are not compared: libwebrtc, for one, ranks TCP host candidates (90) below
server-reflexive ones (100) on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from stunscope.analysis.results import Verdict
from stunscope.analysis.verdicts import verdict
from stunscope.errors import InputError
from stunscope.wire.integrity import Keyring
from stunscope.wire.message import Endpoint

MAX_TYPE_PREFERENCE = 126
"""RFC 8445 §5.1.2.1: a type preference is an integer from 0 to 126."""

MUST_RANK_BELOW = (
    ("relay", "host", "a relayed candidate is the last resort (RFC 8445 §5.1.2.1: type "
     "preference 0; §5.1.2.2 recommends 126 for host and 0 for relayed candidates), so this agent "
     "may check, and select, the relay as early as a direct path"),
    ("srflx", "prflx", "RFC 8445 §5.1.2.1 requires the peer-reflexive type preference to be "
     "higher than the server-reflexive one"),
)
"""(lower type, higher type, why): type preferences one agent must keep in this order."""


class SdpCandidate(NamedTuple):
    """One ``a=candidate`` line, with the ufrag of its media section."""

    ufrag: str | None
    foundation: str
    component: int
    transport: str
    priority: int
    address: Endpoint
    type: str
    line: str


class SdpIce(NamedTuple):
    """The ICE credentials and candidates of one SDP."""

    source: str
    credentials: tuple[tuple[str, str], ...]
    candidates: tuple[SdpCandidate, ...]


def parse_candidate(value: str, ufrag: str | None) -> SdpCandidate | None:
    """``candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY ADDRESS PORT typ TYPE ...``."""
    parts = value.split()
    if len(parts) < 8 or parts[6] != "typ":
        return None
    foundation = parts[0].split(":", 1)[-1]
    try:
        return SdpCandidate(
            ufrag, foundation, int(parts[1]), parts[2].lower(), int(parts[3]),
            Endpoint(parts[4], int(parts[5])), parts[7],
            "candidate:" + " ".join([foundation, *parts[1:]]),
        )
    except ValueError:
        return None


def parse_sdp(text: str, source: str = "sdp") -> SdpIce:
    """The ufrag/pwd pairs and candidates of an SDP text (media sections inherit the session's)."""
    sections: list[dict[str, object]] = [{"ufrag": None, "pwd": None, "candidates": []}]
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            sections.append({"ufrag": None, "pwd": None, "candidates": []})
            continue
        if not line.startswith("a="):
            continue
        name, _, value = line[2:].partition(":")
        if name == "ice-ufrag":
            sections[-1]["ufrag"] = value.strip()
        elif name == "ice-pwd":
            sections[-1]["pwd"] = value.strip()
        elif name == "candidate":
            sections[-1]["candidates"].append(value)  # type: ignore[union-attr]
    session = sections[0]
    credentials: dict[tuple[str, str], None] = {}
    candidates: list[SdpCandidate] = []
    for section in sections:
        ufrag = section["ufrag"] or session["ufrag"]
        pwd = section["pwd"] or session["pwd"]
        if ufrag and pwd:
            credentials[(str(ufrag), str(pwd))] = None
        for value in section["candidates"]:  # type: ignore[union-attr]
            cand = parse_candidate(value, str(ufrag) if ufrag else None)
            if cand is not None:
                candidates.append(cand)
    return SdpIce(source, tuple(credentials), tuple(candidates))


def read_sdp(path: str | Path) -> SdpIce:
    """Parse an SDP file; an unreadable file is an :class:`InputError`."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read SDP file {path}: {exc.strerror or exc}") from exc
    return parse_sdp(text, str(path))


def with_ice_passwords(keyring: Keyring | None, sdps: Iterable[SdpIce]) -> Keyring | None:
    """``keyring`` plus the ``a=ice-pwd`` of every SDP, the short-term keys of the ICE checks
    (RFC 8839 §5.4, RFC 8445 §7.2.2). A copy: the caller's keyring is unchanged (``check``
    analyses a capture and its baseline with one). None when there is no key at all."""
    passwords = [pwd for sdp in sdps for _ufrag, pwd in sdp.credentials]
    if not passwords:
        return keyring
    ring = keyring.copy() if keyring is not None else Keyring()
    for pwd in passwords:
        ring.add_short_term(pwd)
    return ring


def keyring_with_sdp(keyring: Keyring | None, paths: Iterable[str | Path]) -> Keyring | None:
    """:func:`with_ice_passwords` of the SDP files at ``paths`` (``--sdp``); an unreadable file
    is an :class:`InputError` (exit 3)."""
    return with_ice_passwords(keyring, [read_sdp(path) for path in paths])


def follows_formula(priority: int, component: int) -> bool:
    """RFC 8445 §5.1.2.1: ``2^24 * type preference + 2^8 * local preference + (256 - component)``
    with a type preference of 0..126 (the local preference fills the 16 bits between)."""
    return 1 <= component <= 256 and (priority & 0xFF) == 256 - component and \
        0 <= priority >> 24 <= MAX_TYPE_PREFERENCE


AgentKey = tuple[str | None, str, str]
"""(ufrag, transport, candidate type): one agent's candidates of one type on one transport."""


class SdpCandidates:
    """The candidates of every SDP given, to label candidate pairs (by ufrag and address) and to
    judge check priorities (:meth:`highest`); ``findings`` are the verdicts about the SDP
    priorities themselves (see the module docstring)."""

    __slots__ = ("by_address", "_lowest", "_highest", "findings")

    def __init__(self, sdps: Iterable[SdpIce]) -> None:
        self.by_address: dict[tuple[str | None, Endpoint], SdpCandidate] = {}
        self._lowest: dict[AgentKey, SdpCandidate] = {}
        self._highest: dict[AgentKey, int] = {}
        self.findings: list[Verdict] = []
        readable: list[SdpCandidate] = []
        for sdp in sdps:
            for cand in sdp.candidates:
                self.by_address[(cand.ufrag, cand.address)] = cand
                self.by_address.setdefault((None, cand.address), cand)
                if not follows_formula(cand.priority, cand.component):
                    self.findings.append(_unusual(cand))
                    continue
                readable.append(cand)
                key = (cand.ufrag, cand.transport, cand.type)
                low = self._lowest.get(key)
                if low is None or cand.priority >> 24 < low.priority >> 24:
                    self._lowest[key] = cand
                self._highest[key] = max(self._highest.get(key, 0), cand.priority >> 24)
        for cand in readable:
            for lower, higher, why in MUST_RANK_BELOW:
                above = self._lowest.get((cand.ufrag, cand.transport, higher))
                if cand.type == lower and above is not None and \
                        cand.priority >> 24 >= above.priority >> 24:
                    self.findings.append(_inversion(cand, above, why))

    def find(self, ufrag: str, address: Endpoint) -> SdpCandidate | None:
        """The candidate ``ufrag``'s agent signalled at ``address`` (any agent's as a fallback)."""
        return self.by_address.get((ufrag, address)) or self.by_address.get((None, address))

    def highest(self, ufrag: str | None, transport: str, kind: str) -> int | None:
        """The highest type preference of ``ufrag``'s ``kind`` candidates on ``transport`` (those
        built with the §5.1.2.1 formula), or None when it signalled none."""
        return self._highest.get((ufrag, transport, kind))


def _subject(cand: SdpCandidate) -> str:
    return f"sdp {cand.ufrag or '-'} {cand.address} {cand.transport}"


def _unusual(cand: SdpCandidate) -> Verdict:
    value, component = cand.priority, cand.component
    if not 1 <= component <= 256:
        why = f"the component ID {component} is outside 1..256"
    elif value & 0xFF != 256 - component:
        why = f"its low byte is {value & 0xFF}, not 256 - component ID = {256 - component}"
    else:
        why = f"its type preference {value >> 24} is outside 0..{MAX_TYPE_PREFERENCE}"
    return verdict(
        "ice-priority-unusual", "info", _subject(cand),
        f"The SDP candidate a={cand.line} has priority {value}, which is not built with the "
        f"RFC 8445 §5.1.2.1 formula ({why}): its type preference cannot be read, so it is not "
        "compared with the agent's other candidates.",
        (),
    )


def _inversion(cand: SdpCandidate, above: SdpCandidate, why: str) -> Verdict:
    return verdict(
        "ice-priority-inversion", "warning", _subject(cand),
        f"The SDP candidate a={cand.line} ({cand.type}) has type preference "
        f"{cand.priority >> 24}, not below the {above.priority >> 24} of a={above.line} "
        f"({above.type}) of the same agent ({cand.ufrag or 'no ufrag'}): {why}.",
        (),
    )
