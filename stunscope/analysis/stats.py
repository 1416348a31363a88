"""Per-server request statistics with bounded memory: counts, success rate, RTT percentiles.

RTT samples are kept in a bounded list: when it fills, every other sample is dropped and only
every second new one is kept from then on (deterministic decimation), so a million answers
cost at most ``MAX_SAMPLES`` doubles while p50/p95 stay representative; ``max`` is exact.
"""

from __future__ import annotations

from array import array

from stunscope.analysis.results import RttSummary, ServerStats

MAX_SAMPLES = 1024
"""RTT samples kept per server before decimation (8 bytes each, in an ``array``)."""


class RttSamples:
    """A bounded, deterministically decimated sample of round-trip times (ms)."""

    __slots__ = ("samples", "stride", "seen", "max", "count")

    def __init__(self) -> None:
        self.samples = array("d")
        self.stride = 1
        self.seen = 0
        self.max: float | None = None
        self.count = 0

    def add(self, rtt_ms: float) -> None:
        """Record one RTT."""
        self.count += 1
        if self.max is None or rtt_ms > self.max:
            self.max = rtt_ms
        self.seen += 1
        if self.seen % self.stride:
            return
        self.samples.append(rtt_ms)
        if len(self.samples) >= MAX_SAMPLES:
            del self.samples[1::2]
            self.stride *= 2

    def summary(self) -> RttSummary:
        """Nearest-rank p50 and p95 and the exact maximum."""
        if not self.samples:
            return RttSummary(self.count, None, None, None)
        ordered = sorted(self.samples)
        return RttSummary(
            self.count, _rank(ordered, 0.50), _rank(ordered, 0.95), round(self.max or 0.0, 3)
        )


def _rank(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted non-empty list."""
    index = max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))
    return round(ordered[index], 3)


class ServerCounters:
    """Request outcomes toward one server endpoint."""

    __slots__ = ("requests", "success", "errors", "timeouts", "rtt")

    def __init__(self) -> None:
        self.requests = 0
        self.success = 0
        self.errors = 0
        self.timeouts = 0
        self.rtt = RttSamples()

    def result(self, server: str, still_open: int = 0) -> ServerStats:
        """The immutable per-server figures; ``still_open`` requests count as timeouts."""
        timeouts = self.timeouts + still_open
        decided = self.success + self.errors + timeouts
        rate = round(self.success / decided, 4) if decided else None
        return ServerStats(
            server, self.requests, self.success, self.errors, timeouts, rate, self.rtt.summary()
        )
