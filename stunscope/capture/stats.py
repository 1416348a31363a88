"""Counters a capture stream keeps while it runs (read them during or after the stream)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class CaptureStats:
    """What the stream saw, for reports and progress displays.

    ``kinds`` counts UDP payloads and framed TCP messages by RFC 7983 class (``stun``,
    ``channeldata``, ``dtls``, ``rtp``, ``rtcp``, ``quic``, ``other``, ...), TCP segments of
    connections that carry no STUN (``tcp-other``), ICMP errors quoting a flow (``icmp-error``),
    and frames that carried no UDP/TCP payload by why (``non-ip``, ``icmp``, ``fragment``,
    ``malformed``, ``other-ip-proto``, ``unsupported-link``). ``messages`` counts message events
    (tunnelled ones included), ``undecodable`` payloads that looked like STUN but did not decode.
    ``truncated`` counts frames cut by the snap length (captured shorter than on the wire).
    Evictions count state dropped to keep memory bounded: fragment reassembly (RFC 791 §3.2,
    RFC 8200 §4.5) and TCP directions (RFC 9293 §3.10) pushed out by newer ones.
    """

    frames: int = 0
    bytes: int = 0
    messages: int = 0
    undecodable: int = 0
    unreachable: int = 0
    truncated: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    fragments: int = 0
    reassembled: int = 0
    fragment_evictions: int = 0
    fragment_timeouts: int = 0
    tcp_streams: int = 0
    tcp_evictions: int = 0
    tcp_retransmitted_bytes: int = 0
    tcp_gaps: int = 0
