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
from stunscope.capture.layers import FAST_UDP4, UDP, UDP_TUNNEL_PORTS, IcmpQuote, Transport, decode_frame
from stunscope.capture.records import Record, new, read_records
from stunscope.capture.stats import CaptureStats
from stunscope.capture.tcp import TcpReassembler
from stunscope.wire.attributes import data as data_attribute
from stunscope.wire.attributes import xor_peers
from stunscope.wire.decode import decode_channeldata, decode_message, decode_ms_turn_mux
from stunscope.wire.demux import classify
from stunscope.wire.message import ChannelData, DecodeFailure, Endpoint, MessageClass, StunMessage

__all__ = ["CaptureStats", "Demux", "iter_events", "open_events"]

_STUN_KINDS = frozenset({"stun", "classic-stun"})
_MESSAGE_KINDS = frozenset({"stun", "classic-stun", "channeldata", "ms-turn-mux"})
_SEND = 0x006
_DATA = 0x007
_CONNECTION_BIND = 0x00B
_TUNNELS = {_SEND: "send", _DATA: "data"}
_ENDPOINT_CACHE_MAX = 65536


def open_events(path: str | Path, stats: CaptureStats | None = None, *, parallel: bool | None = False) -> Iterator[Event]:
    """Events of a capture file: ``iter_events(read_records(path), stats=stats)``.

    ``parallel`` None splits the work over two processes when it pays (a regular file of at
    least :data:`PARALLEL_MIN_BYTES` and two CPUs), True whenever the file is a regular file;
    the events, their order, the stats and the errors are the same either way (see
    :mod:`stunscope.capture.pipeline`).
    """
    if parallel is not False:
        from stunscope.capture import pipeline

        if pipeline.worth_it(path, force=parallel is True):
            return pipeline.open_events_parallel(path, stats)
    return iter_events(read_records(path), stats=stats)


PARALLEL_MIN_BYTES = 32 << 20
"""Smallest file that ``open_events(parallel=None)`` reads with a second process."""


def iter_events(records: Iterable[Record], *, stats: CaptureStats | None = None) -> Iterator[Event]:
    """Yield the events of ``records`` in frame order (see the module doc); ``stats`` is updated
    as the stream goes. Raises only what the record source raises (``CaptureError``)."""
    if stats is None:
        stats = CaptureStats()
    kinds = stats.kinds
    demux = Demux(stats)
    endpoint = demux.endpoint
    udp_events = demux.udp
    frame_events = demux.frame
    fast_udp4 = FAST_UDP4.get
    for frame, ts, linktype, data, orig_len in records:
        stats.frames += 1
        stats.bytes += orig_len
        size = len(data)
        if orig_len > size:
            stats.truncated += 1
        fast = fast_udp4(linktype)
        if fast is not None and size >= fast[1] + 28:
            # Ethernet/IPv4/UDP in one unpack (as decode_frame does); media is counted from its
            # first bytes without a payload copy, plain ChannelData becomes its event here.
            unpack, ip, tags = fast
            tag, vihl, total, frag, proto, src_ip, dst_ip, sport, dport, length = unpack(data)
            if vihl == 0x45 and proto == UDP and tag in tags and not frag & 0x3FFF and 8 <= length <= total - 20 and ip + total <= size and dport not in UDP_TUNNEL_PORTS:  # VXLAN, GENEVE: decode_frame unwraps them
                start = ip + 28
                if length >= 16:
                    first = data[start]
                    if 128 <= first < 192:  # RTP/RTCP (RFC 7983 §7, RFC 5761 §4): demux.classify inline
                        kinds["rtcp" if 192 <= data[start + 1] <= 223 else "rtp" if length >= 20 else "other"] += 1
                        continue
                    if 64 <= first < 80:  # ChannelData (RFC 8656 §12.4) of exactly its length, not carrying STUN
                        clen = (data[start + 2] << 8) | data[start + 3]
                        if clen + 12 == length and (clen == 0 or data[start + 4] >= 0x40):
                            kinds["channeldata"] += 1
                            stats.messages += 1
                            cd = new(ChannelData, ((first << 8) | data[start + 1], clen, data[start + 4 : start + 4 + clen], (), not clen & 3))
                            yield new(MessageEvent, (frame, ts, endpoint(src_ip, sport), endpoint(dst_ip, dport), "udp", "channeldata", cd, None, None, cd.channel, 0))
                            continue
                payload = data[start : ip + 20 + length]
                events = udp_events(frame, ts, src_ip, sport, dst_ip, dport, payload, classify(payload))
                if events:
                    yield from events
                continue
        events = frame_events(frame, ts, linktype, data)
        if events:
            yield from events


_NO_EVENTS: list[Event] = []


class Demux:
    """The state of one event stream below the record: IP fragments, TCP directions, bound
    channels, shared endpoints. :func:`iter_events` drives it; so does the decoding side of
    :mod:`stunscope.capture.pipeline`, which gets UDP payloads and framed TCP messages from
    another process (it then uses the payload decoder and the bound channels only)."""

    __slots__ = ("stats", "kinds", "fragments", "tcp", "endpoint", "channels", "payload_events", "stun_events")

    def __init__(self, stats: CaptureStats) -> None:
        self.stats = stats
        self.kinds = stats.kinds
        self.fragments = FragmentTable(stats)
        self.tcp = TcpReassembler(stats)
        self.endpoint = _endpoint_cache()
        self.channels = BoundChannels()
        decoder = _PayloadDecoder(stats, self.channels)
        self.payload_events = decoder.events
        self.stun_events = decoder.stun_events

    def udp(self, frame: int, ts: float, src_ip: bytes, sport: int, dst_ip: bytes, dport: int, payload: bytes, kind: str) -> list[Event]:
        """The events of one UDP payload that :func:`classify` labelled ``kind`` (counted here)."""
        endpoint = self.endpoint
        if kind not in _MESSAGE_KINDS:
            channels = self.channels
            if kind != "quic" or not channels or not channels.is_bound(endpoint(src_ip, sport), endpoint(dst_ip, dport), payload):
                self.kinds[kind] += 1
                return _NO_EVENTS
            kind = "channeldata"  # a channel above 0x4FFF that a ChannelBind bound
        self.kinds[kind] += 1
        return self.payload_events(frame, ts, endpoint(src_ip, sport), endpoint(dst_ip, dport), "udp", kind, payload, 0)

    def udp_between(self, frame: int, ts: float, src: Endpoint, dst: Endpoint, payload: bytes, kind: str) -> list[Event]:
        """:meth:`udp` with the endpoints already made."""
        if kind not in _MESSAGE_KINDS:
            channels = self.channels
            if kind != "quic" or not channels or not channels.is_bound(src, dst, payload):
                self.kinds[kind] += 1
                return _NO_EVENTS
            kind = "channeldata"
        self.kinds[kind] += 1
        return self.payload_events(frame, ts, src, dst, "udp", kind, payload, 0)

    def frame(self, frame: int, ts: float, linktype: int, data: bytes) -> list[Event]:
        """The events of one frame through :func:`decode_frame` (frame counters not touched)."""
        unwrapped = decode_frame(linktype, data, ts, self.fragments)
        cls = unwrapped.__class__
        kinds = self.kinds
        endpoint = self.endpoint
        if cls is Transport:
            proto, src_ip, dst_ip, sport, dport, payload, seq, flags = unwrapped
            if proto == UDP:
                return self.udp(frame, ts, src_ip, sport, dst_ip, dport, payload, classify(payload))
            tcp = self.tcp
            key = (src_ip, sport, dst_ip, dport)
            messages = tcp.segment(key, seq, flags, payload)
            if messages is None:
                if payload:
                    kinds["tcp-other"] += 1
                return _NO_EVENTS
            if not messages:
                return _NO_EVENTS
            src = endpoint(src_ip, sport)
            dst = endpoint(dst_ip, dport)
            events: list[Event] = []
            payload_events = self.payload_events
            for message in messages:
                kind = classify(message)
                kinds[kind] += 1
                if kind in _MESSAGE_KINDS:
                    events += payload_events(frame, ts, src, dst, "tcp", kind, message, len(events))
            if _binds_connection(events):
                tcp.passthrough(key)
            return events
        if cls is IcmpQuote:
            self.stats.unreachable += 1
            kinds["icmp-error"] += 1
            return [Unreachable(
                frame,
                ts,
                endpoint(unwrapped.reporter, 0).ip,
                endpoint(unwrapped.src, unwrapped.sport),
                endpoint(unwrapped.dst, unwrapped.dport),
                "udp" if unwrapped.proto == UDP else "tcp",
                unwrapped.icmp,
            )]
        kinds[unwrapped] += 1
        return _NO_EVENTS


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
        return self.stun_events(frame, ts, src, dst, transport, decode_message(payload), index)

    def stun_events(
        self, frame: int, ts: float, src: Endpoint, dst: Endpoint, transport: str, message: StunMessage | DecodeFailure, index: int
    ) -> list[Event]:
        """:meth:`events` of a STUN payload once :func:`decode_message` has decoded it."""
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
