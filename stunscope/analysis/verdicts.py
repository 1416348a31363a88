"""Verdicts: what went wrong (or right), in a sentence, with the frames that prove it.

Trackers report a verdict when the evidence appears (``VerdictLog.add``), so verdicts survive
the eviction of the state that produced them; verdicts that depend on the final state (an ICE
session that never connected, an allocation that expired) are derived in the trackers'
snapshots. One entry per (code, subject): repeats raise ``count`` and add evidence frames up to
``MAX_FRAMES``. The log itself is bounded by ``MAX_ENTRIES`` (excess counted as an eviction).

Codes (severity): ice-no-response, ice-auth-failure, ice-failed, ice-consent-lost,
turn-auth-failure, turn-allocation-mismatch, turn-forbidden-peer, turn-allocation-expired,
bad-fingerprint, bad-integrity (error); ice-role-conflict, turn-stale-nonce (a note when the
retry succeeded), turn-data-without-permission, turn-channel-unbound, turn-channel-rebind,
turn-request-error, unanswered-request, retransmit-too-fast, retransmit-over-reliable,
symmetric-nat, undecodable, icmp-unreachable, ice-priority-inversion (warning); ice-connected,
ice-priority-unusual, orphan-response, gave-up-early (info). The SDP's verdicts
(``ice-priority-inversion``, ``ice-priority-unusual`` about an ``a=candidate`` line) name no
frame: their evidence is the line, quoted in the message.
"""

from __future__ import annotations

from stunscope.analysis.results import SEVERITIES, Verdict

MAX_FRAMES = 16
"""Evidence frames kept per verdict."""

MAX_ENTRIES = 4096
"""Distinct (code, subject) verdicts kept."""

_RANK = {s: i for i, s in enumerate(SEVERITIES)}


class _Entry:
    __slots__ = ("severity", "message", "frames", "count")

    def __init__(self, severity: str, message: str) -> None:
        self.severity = severity
        self.message = message
        self.frames: list[int] = []
        self.count = 0


class VerdictLog:
    """Verdicts as they are found, keyed by (code, subject)."""

    __slots__ = ("_entries", "evicted")

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}
        self.evicted = 0

    def add(
        self, code: str, severity: str, subject: str, message: str, frames: tuple[int, ...] | list[int]
    ) -> None:
        """Record evidence for ``code`` about ``subject``; the first message is kept, a more
        serious severity wins."""
        key = (code, subject)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= MAX_ENTRIES:
                self.evicted += 1
                return
            entry = self._entries[key] = _Entry(severity, message)
        elif _RANK[severity] < _RANK[entry.severity]:
            entry.severity = severity
            entry.message = message
        entry.count += 1
        room = MAX_FRAMES - len(entry.frames)
        if room > 0:
            entry.frames.extend(f for f in frames[:room] if f not in entry.frames)

    def results(self) -> list[Verdict]:
        """The logged verdicts as immutable results."""
        return [
            Verdict(code, e.severity, e.message, tuple(sorted(e.frames)), e.count, subject)
            for (code, subject), e in self._entries.items()
        ]


def verdict(code: str, severity: str, subject: str, message: str,
            frames: tuple[int, ...] | list[int]) -> Verdict:
    """A state-derived verdict (one occurrence), frames sorted and bounded."""
    return Verdict(code, severity, message, tuple(sorted(frames)[:MAX_FRAMES]), 1, subject)


def merged(verdicts: list[Verdict]) -> list[Verdict]:
    """Verdicts with the same (code, subject) folded into one (counts added, frames joined)."""
    out: dict[tuple[str, str], Verdict] = {}
    for v in verdicts:
        key = (v.code, v.subject)
        seen = out.get(key)
        if seen is None:
            out[key] = v
            continue
        first, other = (seen, v) if _RANK[seen.severity] <= _RANK[v.severity] else (v, seen)
        frames = tuple(sorted(set(first.frames) | set(other.frames))[:MAX_FRAMES])
        out[key] = Verdict(first.code, first.severity, first.message, frames,
                           first.count + other.count, first.subject)
    return list(out.values())


def ordered(verdicts: list[Verdict]) -> tuple[Verdict, ...]:
    """The stable JSON order: by first evidence frame, then code and subject."""
    return tuple(sorted(verdicts, key=lambda v: (v.frames[0] if v.frames else 0, v.code, v.subject)))
