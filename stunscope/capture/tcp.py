"""Per-direction TCP reassembly for the STUN/TURN streams of a capture.

RFC 9293 §3.4, §3.10.7.4: a receiver delivers bytes in sequence-number order (modulo 2**32),
drops bytes it already has (retransmissions and overlaps) and holds segments that arrive ahead
of a hole. Each tracked direction feeds its in-order bytes to a
:class:`~stunscope.wire.framing.StreamFramer`, which cuts STUN, ChannelData (RFC 8656 §12.5) and
RFC 4571/6544-framed messages.

Only directions whose data starts with a STUN message are tracked, or with ChannelData when the
other direction carries STUN or the segment itself looks like TURN-TCP (a capture started
mid-connection), so TLS, HTTP or MySQL connections cost nothing and are never mistaken for TURN. Memory is bounded: at most ``max_directions`` directions (the least
recently used is evicted) and ``max_pending`` out-of-order bytes per direction; past that, the
hole is declared lost (a counted gap) and the framer starts afresh after it. RFC 6062: after a
ConnectionBind success a connection carries the peer's raw data, so both of its directions turn
into passthrough and their bytes are no longer framed.
"""

from __future__ import annotations

from collections import OrderedDict

from stunscope.capture.layers import TCP_FIN, TCP_RST, TCP_SYN
from stunscope.capture.stats import CaptureStats
from stunscope.wire.framing import StreamFramer
from stunscope.wire.message import MAGIC_COOKIE

_COOKIE = MAGIC_COOKIE.to_bytes(4, "big")
_SEQ_MOD = 1 << 32
_HALF = 1 << 31

FlowKey = tuple[bytes, int, bytes, int]
"""(source address, source port, destination address, destination port) of one direction."""


def _delta(seq: int, base: int) -> int:
    """Signed distance from ``base`` to ``seq`` in sequence space (RFC 9293 §3.4, modulo 2**32)."""
    return ((seq - base + _HALF) % _SEQ_MOD) - _HALF


def starts_with_stun(payload: bytes) -> bool:
    """True when a segment starts with a STUN header (RFC 8489 §5: cookie, length a multiple of
    4), bare, behind an RFC 4571 length (RFC 6544 §3) or behind an [MS-TURN] §2.1.4 frame header.
    A TURN-TCP or ICE-TCP connection starts this way (RFC 8656 §5: the client sends Allocate)."""
    if payload[4:8] == _COOKIE:
        return payload[0] < 0x40 and not payload[3] & 3
    if payload[6:10] == _COOKIE:
        return payload[2] < 0x40 and not payload[5] & 3 and ((payload[0] << 8) | payload[1]) >= 20
    return payload[8:12] == _COOKIE and payload[0] in (2, 3) and payload[1] == 0


def starts_with_channeldata(payload: bytes) -> bool:
    """True when a segment starts with a whole ChannelData message (RFC 8656 §12.4, channels
    0x4000-0x4FFF). Alone this is weak evidence (MySQL and XMPP bytes pass it), so it only
    starts a direction whose reverse direction already carries STUN, or see
    :func:`looks_like_turn_tcp`."""
    return len(payload) >= 4 and 0x40 <= payload[0] <= 0x4F and 4 + ((payload[2] << 8) | payload[3]) <= len(payload)


def looks_like_turn_tcp(payload: bytes) -> bool:
    """Stronger evidence for a capture that starts in the middle of a TURN-TCP connection: the
    segment splits exactly into ChannelData messages padded to 4 bytes (RFC 8656 §12.5) and STUN
    messages, or its first ChannelData carries a STUN message (magic cookie). RTP inside is not
    evidence: a quarter of random bytes (TLS) pass RTP's first-byte check."""
    size = len(payload)
    if size < 4 or not 0x40 <= payload[0] <= 0x4F:
        return False
    pos = 0
    while pos + 4 <= size:
        length = (payload[pos + 2] << 8) | payload[pos + 3]
        if 0x40 <= payload[pos] <= 0x4F:
            pos += 4 + ((length + 3) & ~3)
        elif payload[pos] < 0x40 and payload[pos + 4 : pos + 8] == _COOKIE:
            pos += 20 + length
        else:
            break
        if pos == size:
            return True
    return payload[8:12] == _COOKIE and payload[4] < 0x40


class _Direction:
    """One direction's reassembly state: the next expected sequence number, segments held ahead
    of a hole, their byte count, the framer, and whether it carries raw RFC 6062 peer data."""

    __slots__ = ("next_seq", "pending", "pending_bytes", "framer", "passthrough")

    def __init__(self, next_seq: int, passthrough: bool = False) -> None:
        self.next_seq = next_seq
        self.pending: dict[int, bytes] = {}
        self.pending_bytes = 0
        self.framer = StreamFramer()
        self.passthrough = passthrough


class TcpReassembler:
    """Tracked TCP directions; :meth:`segment` returns the messages a segment completes."""

    def __init__(
        self,
        stats: CaptureStats,
        *,
        max_directions: int = 1024,
        max_pending: int = 64 * 1024,
        max_segments: int = 64,
    ) -> None:
        self._stats = stats
        self._max_directions = max_directions
        self._max_pending = max_pending
        self._max_segments = max_segments
        self._dirs: OrderedDict[FlowKey, _Direction] = OrderedDict()
        self._syn: OrderedDict[FlowKey, int] = OrderedDict()  # initial sequence numbers seen in SYNs

    def segment(self, key: FlowKey, seq: int, flags: int, payload: bytes) -> list[bytes] | None:
        """Feed one segment; return the messages it completes, or None for an untracked or
        passthrough direction (its payload is then not STUN traffic)."""
        dirs = self._dirs
        state = dirs.pop(key, None)  # re-inserted below: dict order is least recently used first
        if flags & TCP_SYN:
            self._remember_syn(key, seq)
            if state is not None:
                state = None  # a new connection on the same ports
        if state is None:
            if not payload:
                return None
            if not starts_with_stun(payload):
                src, sport, dst, dport = key
                if (dst, dport, src, sport) in dirs:
                    if not starts_with_channeldata(payload):
                        return None
                elif not looks_like_turn_tcp(payload):
                    return None
            isn = self._syn.pop(key, None)
            state = _Direction(seq if isn is None else (isn + 1) % _SEQ_MOD)
            self._stats.tcp_streams += 1
        if not flags & (TCP_FIN | TCP_RST):
            if len(dirs) >= self._max_directions:
                del dirs[next(iter(dirs))]
                self._stats.tcp_evictions += 1
            dirs[key] = state
        if state.passthrough:
            return None
        return self._deliver(state, seq, payload) if payload else []

    def passthrough(self, key: FlowKey) -> None:
        """RFC 6062 §5.4: after ConnectionBind succeeds the connection carries peer data; stop
        framing both of its directions."""
        src, sport, dst, dport = key
        for k in (key, (dst, dport, src, sport)):
            state = self._dirs.get(k)
            if state is None:
                if len(self._dirs) >= self._max_directions:
                    del self._dirs[next(iter(self._dirs))]
                    self._stats.tcp_evictions += 1
                state = self._dirs[k] = _Direction(0, passthrough=True)
            state.passthrough = True
            state.pending.clear()
            state.pending_bytes = 0

    def _remember_syn(self, key: FlowKey, seq: int) -> None:
        syn = self._syn
        if len(syn) >= self._max_directions:
            del syn[next(iter(syn))]
        syn[key] = seq

    def _deliver(self, state: _Direction, seq: int, payload: bytes) -> list[bytes]:
        """Put the segment in order (RFC 9293 §3.10.7.4) and return what the framer completes."""
        stats = self._stats
        rel = _delta(seq, state.next_seq)
        if rel < 0:
            dup = min(-rel, len(payload))
            stats.tcp_retransmitted_bytes += dup
            if dup == len(payload):
                return []
            payload = payload[dup:]
            rel = 0
        if rel > 0:
            held = state.pending.get(seq)
            if held is None or len(held) < len(payload):
                state.pending[seq] = payload
                state.pending_bytes += len(payload) - (len(held) if held else 0)
            if state.pending_bytes <= self._max_pending and len(state.pending) <= self._max_segments:
                return []
            self._skip_hole(state)
            out: list[bytes] = []
        else:
            out = state.framer.feed(payload)
            state.next_seq = (state.next_seq + len(payload)) % _SEQ_MOD
        if state.pending:
            self._drain(state, out)
        return out

    def _skip_hole(self, state: _Direction) -> None:
        """Give up on the missing bytes: resume at the earliest held segment with a fresh framer
        (a message cut by the hole cannot be completed)."""
        self._stats.tcp_gaps += 1
        state.next_seq = min(state.pending, key=lambda s: _delta(s, state.next_seq))
        state.framer = StreamFramer()

    def _drain(self, state: _Direction, out: list[bytes]) -> None:
        """Deliver held segments that the sequence now reaches, dropping bytes already had."""
        pending = state.pending
        progress = True
        while pending and progress:
            progress = False
            for seq in list(pending):
                rel = _delta(seq, state.next_seq)
                if rel > 0:
                    continue
                data = pending.pop(seq)
                state.pending_bytes -= len(data)
                self._stats.tcp_retransmitted_bytes += min(-rel, len(data))
                if -rel < len(data):
                    data = data[-rel:]
                    out.extend(state.framer.feed(data))
                    state.next_seq = (state.next_seq + len(data)) % _SEQ_MOD
                progress = True
