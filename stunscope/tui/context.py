"""What the filter language learns from the analysis: verdict evidence, ICE sessions, allocations.

ICE sessions and TURN allocations are numbered from 1 in the analysis' order (the order the ICE
and TURN views list them). A session's messages are those whose USERNAME is
``remote_ufrag:local_ufrag`` or the reverse (RFC 8445 §7.2.2), responses inheriting it from their
request; an allocation's are those between its client and server, and between its relayed
address and its peers.
"""

from __future__ import annotations

from collections.abc import Collection

from stunscope.analysis.results import Allocation, Analysis, IceSession
from stunscope.tui.index import MessageIndex
from stunscope.tui.summary import Summaries, row_label
from stunscope.wire.message import Endpoint


def session_usernames(session: IceSession) -> set[str]:
    """USERNAME values a session's checks carry, in both directions."""
    local, remote = session.local_ufrag, session.remote_ufrag
    return {f"{remote}:{local}", f"{local}:{remote}"}


def allocation_endpoints(allocation: Allocation) -> set[str]:
    """Client, server, relayed address and every peer of an allocation, as ``ip:port`` text."""
    ends = {allocation.client, allocation.server}
    if allocation.relayed:
        ends.add(allocation.relayed)
    ends.update(c.peer for c in allocation.channels)
    ends.update(p.peer for p in allocation.peers)
    return ends


class AnalysisContext:
    """A :class:`~stunscope.tui.filter.FilterContext` over an index and its latest analysis."""

    def __init__(self, index: MessageIndex, analysis: Analysis | None) -> None:
        self.index = index
        self.analysis = analysis
        self._summaries = Summaries(index, size=64)
        """Private to this context: filters run in a worker thread, the UI has its own."""

    def verdict_frames(self, code: str) -> Collection[int]:
        """Evidence frames of every verdict with ``code``."""
        if self.analysis is None:
            return ()
        return {f for v in self.analysis.verdicts if v.code == code for f in v.frames}

    def session_usernames(self, number: int) -> Collection[str]:
        """USERNAMEs of ICE session ``number`` (1-based); empty when there is no such session."""
        sessions = self.analysis.ice if self.analysis else ()
        return session_usernames(sessions[number - 1]) if 0 < number <= len(sessions) else ()

    def allocation_endpoints(self, number: int) -> Collection[Endpoint]:
        """Endpoints of TURN allocation ``number`` (1-based) that appear in the index."""
        allocations = self.analysis.allocations if self.analysis else ()
        if not 0 < number <= len(allocations):
            return ()
        wanted = allocation_endpoints(allocations[number - 1])
        return [e for e in self.index.endpoints if str(e) in wanted]

    def row_text(self, row: int) -> str:
        """Label, addresses and summary of a row (what free text matches)."""
        index = self.index
        return " ".join((
            row_label(index, row),
            str(index.endpoints[index.src[row]]),
            str(index.endpoints[index.dst[row]]),
            self._summaries(row),
        ))
