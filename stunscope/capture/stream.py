"""Turn capture records into a stream of STUN/TURN events.

For each frame: unwrap it (:mod:`stunscope.capture.layers`), classify the UDP payload or each
message of a reassembled TCP direction by content (RFC 7983 §7 / RFC 9443 §3, never by port),
decode STUN (RFC 8489 §5, classic RFC 3489 §11) and ChannelData (RFC 8656 §12.4), and emit
:class:`~stunscope.capture.events.MessageEvent` s. STUN tunnelled inside ChannelData application
data (RFC 8656 §12.4) or in the DATA attribute of Send/Data indications (RFC 8656 §11) follows
its carrier as extra events. The [MS-TURN] §2.2.3 0xFF10 wrapper is unwrapped first. ICMP errors
quoting a flow become :class:`~stunscope.capture.events.Unreachable` events (never traffic).

Everything streams: one record in, its events out, with bounded fragment and TCP tables.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from stunscope.capture.channels import CHANNEL_BIND, BoundChannels
from stunscope.capture.events import Event, MessageEvent, Undecodable, Unreachable
from stunscope.capture.fragments import FragmentTable
from stunscope.capture.layers import UDP, IcmpQuote, Transport, decode_frame
from stunscope.capture.records import Record, new, read_records
from stunscope.capture.stats import CaptureStats
from stunscope.capture.tcp import TcpReassembler
from stunscope.wire.attributes import data as data_attribute
from stunscope.wire.attributes import xor_peers
from stunscope.wire.decode import decode_channeldata, decode_message, decode_ms_turn_mux
from stunscope.wire.demux import classify
from stunscope.wire.message import DecodeFailure, Endpoint, MessageClass, StunMessage

__all__ = ["CaptureStats", "iter_events", "open_events"]

_STUN_KINDS = frozenset({"stun", "classic-stun"})
_MESSAGE_KINDS = frozenset({"stun", "classic-stun", "channeldata", "ms-turn-mux"})
_SEND = 0x006
_DATA = 0x007
_CONNECTION_BIND = 0x00B
_TUNNELS = {_SEND: "send", _DATA: "data"}
_ENDPOINT_CACHE_MAX = 65536


def open_events(path: str | Path, stats: CaptureStats | None = None) -> Iterator[Event]:
    """Events of a capture file: ``iter_events(read_records(path), stats=stats)``."""
    return iter_events(read_records(path), stats=stats)


def iter_events(records: Iterable[Record], *, stats: CaptureStats | None = None) -> Iterator[Event]:
    """Yield the events of ``records`` in frame order (see the module doc); ``stats`` is updated
    as the stream goes. Raises only what the record source raises (``CaptureError``)."""
    if stats is None:
        stats = CaptureStats()
    kinds = stats.kinds
    fragments = FragmentTable(stats)
    tcp = TcpReassembler(stats)
    endpoint = _endpoint_cache()
    channels = BoundChannels()
    payload_events = _PayloadDecoder(stats, channels).events
    for frame, ts, linktype, data, orig_len in records:
        stats.frames += 1
        stats.bytes += orig_len
        if orig_len > len(data):
            stats.truncated += 1
        unwrapped = decode_frame(linktype, data, ts, fragments)
        cls = unwrapped.__class__
        if cls is Transport:
            proto, src_ip, dst_ip, sport, dport, payload, seq, flags = unwrapped
            if proto == UDP:
                kind = classify(payload)
                if kind not in _MESSAGE_KINDS:
                    if kind != "quic" or not channels or not channels.is_bound(endpoint(src_ip, sport), endpoint(dst_ip, dport), payload):
                        kinds[kind] += 1
                        continue
                    kind = "channeldata"  # a channel above 0x4FFF that a ChannelBind bound
                kinds[kind] += 1
                yield from payload_events(frame, ts, endpoint(src_ip, sport), endpoint(dst_ip, dport), "udp", kind, payload, 0)
                continue
            key = (src_ip, sport, dst_ip, dport)
            messages = tcp.segment(key, seq, flags, payload)
            if messages is None:
                if payload:
                    kinds["tcp-other"] += 1
                continue
            if not messages:
                continue
            src = endpoint(src_ip, sport)
            dst = endpoint(dst_ip, dport)
            events: list[Event] = []
            for message in messages:
                kind = classify(message)
                kinds[kind] += 1
                if kind in _MESSAGE_KINDS:
                    events += payload_events(frame, ts, src, dst, "tcp", kind, message, len(events))
            if _binds_connection(events):
                tcp.passthrough(key)
            yield from events
        elif cls is IcmpQuote:
            stats.unreachable += 1
            kinds["icmp-error"] += 1
            yield Unreachable(
                frame,
                ts,
                endpoint(unwrapped.reporter, 0).ip,
                endpoint(unwrapped.src, unwrapped.sport),
                endpoint(unwrapped.dst, unwrapped.dport),
                "udp" if unwrapped.proto == UDP else "tcp",
                unwrapped.icmp,
            )
        else:
            kinds[unwrapped] += 1


class _PayloadDecoder:
    """Decodes one classified payload into its events, counts them in the stats and follows
    ChannelBind transactions."""

    __slots__ = ("_stats", "_channels")

    def __init__(self, stats: CaptureStats, channels: BoundChannels) -> None:
        self._stats = stats
        self._channels = channels

    def events(
        self, frame: int, ts: float, src: Endpoint, dst: Endpoint, transport: str, kind: str, payload: bytes, index: int
    ) -> list[Event]:
        """The events of one payload: the message (or why it is undecodable), then any STUN it
        tunnels (RFC 8656 §11-§12), then nothing else."""
        if kind == "ms-turn-mux":
            wrapper = decode_ms_turn_mux(payload)
            if wrapper.__class__ is DecodeFailure:
                return self._undecodable(frame, ts, src, dst, transport, wrapper)
            payload = wrapper.data
            kind = classify(payload)
            if kind not in _MESSAGE_KINDS or kind == "ms-turn-mux":
                return []
        if kind == "channeldata":
            message = decode_channeldata(payload, transport == "tcp")
            if message.__class__ is DecodeFailure:
                return self._undecodable(frame, ts, src, dst, transport, message)
            event = new(MessageEvent, (frame, ts, src, dst, transport, kind, message, None, None, message.channel, index))
            inner = message.data
            if inner[:1] < b"\x40" and classify(inner) in _STUN_KINDS:  # STUN's first byte is 0-0x3F
                return self._tunnelled(event, inner, "channeldata", None, message.channel)
            self._stats.messages += 1
            return [event]
        message = decode_message(payload)
        if message.__class__ is DecodeFailure:
            return self._undecodable(frame, ts, src, dst, transport, message)
        kind = "stun" if message.magic else "classic-stun"
        event = new(MessageEvent, (frame, ts, src, dst, transport, kind, message, None, None, None, index))
        if message.method == CHANNEL_BIND:
            self._channels.note(message, src, dst)
        tunnel = _TUNNELS.get(message.method)
        if tunnel is not None and message.cls is MessageClass.INDICATION:
            inner = data_attribute(message)
            if inner is not None and classify(inner) in _STUN_KINDS:
                peers = xor_peers(message)
                return self._tunnelled(event, inner, tunnel, peers[0] if peers else None, None)
        self._stats.messages += 1
        return [event]

    def _undecodable(
        self, frame: int, ts: float, src: Endpoint, dst: Endpoint, transport: str, failure: DecodeFailure
    ) -> list[Event]:
        self._stats.undecodable += 1
        return [Undecodable(frame, ts, src, dst, transport, failure)]

    def _tunnelled(
        self, carrier: MessageEvent, inner: bytes, tunnel: str, peer: Endpoint | None, channel: int | None
    ) -> list[Event]:
        """The carrier, then the STUN message tunnelled in ``inner``, numbered next in the frame.
        A tunnelled payload that fails to decode is not an event: application data may look like
        STUN by chance."""
        message = decode_message(inner)
        if message.__class__ is not StunMessage:
            self._stats.messages += 1
            return [carrier]
        self._stats.messages += 2
        kind = "stun" if message.magic else "classic-stun"
        return [carrier, carrier._replace(kind=kind, message=message, tunnel=tunnel, peer=peer, channel=channel, index=carrier.index + 1)]


def _binds_connection(events: list[Event]) -> bool:
    """True when a ConnectionBind success response is among ``events`` (RFC 6062 §4.4, §5.4)."""
    for event in events:
        if event.__class__ is MessageEvent and event.tunnel is None:
            message = event.message
            if message.__class__ is StunMessage and message.method == _CONNECTION_BIND and message.cls is MessageClass.SUCCESS:
                return True
    return False


def _endpoint_cache() -> Callable[[bytes, int], Endpoint]:
    """A function giving shared :class:`Endpoint` objects per (raw address, port), so a busy flow
    costs one dict lookup per packet instead of an address formatting; the cache is cleared when
    it grows past its bound."""
    cache: dict[tuple[bytes, int], Endpoint] = {}
    get = cache.get

    def endpoint(ip: bytes, port: int) -> Endpoint:
        found = get((ip, port))
        if found is None:
            if len(cache) >= _ENDPOINT_CACHE_MAX:
                cache.clear()
            family = socket.AF_INET if len(ip) == 4 else socket.AF_INET6
            found = cache[ip, port] = Endpoint(socket.inet_ntop(family, ip), port)
        return found

    return endpoint
