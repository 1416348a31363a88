"""The ICE parts of an SDP offer or answer (RFC 8839 §5.1, §5.4; RFC 8866 for the line syntax).

``a=ice-ufrag`` and ``a=ice-pwd`` (session level, or per media section where they override it)
give the credentials: the password is the short-term key of MESSAGE-INTEGRITY for checks sent
*to* that agent (RFC 8445 §7.2.2). ``a=candidate`` lines (RFC 8839 §5.1) give each candidate's
foundation, component, transport, priority, address and type, used to label candidate pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from stunscope.errors import InputError
from stunscope.wire.message import Endpoint

RECOMMENDED_TYPE_PREFERENCE = {"host": 126, "prflx": 110, "srflx": 100, "relay": 0}
"""RFC 8445 §5.1.2.2: recommended type preferences."""


class SdpCandidate(NamedTuple):
    """One ``a=candidate`` line, with the ufrag of its media section."""

    ufrag: str | None
    foundation: str
    component: int
    transport: str
    priority: int
    address: Endpoint
    type: str


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
    try:
        return SdpCandidate(
            ufrag, parts[0].split(":", 1)[-1], int(parts[1]), parts[2].lower(), int(parts[3]),
            Endpoint(parts[4], int(parts[5])), parts[7],
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
