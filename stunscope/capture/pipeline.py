"""The event stream of a large capture file, read by a second process.

One Python process cannot read, unwrap, decode and analyse a million-frame capture as fast as
two cores can, so :func:`open_events_parallel` splits :func:`~stunscope.capture.stream.iter_events`
in two along the cheapest seam:

- a **reader** process (:func:`_read`) reads the records (pcap, pcapng, gzip), unwraps every frame
  (:func:`~stunscope.capture.layers.decode_frame` with its IP fragment table), reassembles and
  frames TCP (:class:`~stunscope.capture.tcp.TcpReassembler`, including the RFC 6062
  ConnectionBind switch to application data, which it recognises by decoding the segment's STUN
  messages as the one-process path does) and classifies each payload (RFC 7983/9443). Payloads
  that never become events (RTP, RTCP, DTLS, ZRTP, ...) are only counted. STUN requests and
  indications with the magic cookie are decoded there (:func:`~stunscope.wire.decode.decode_message`);
  when the decoder finds nothing wrong, the attributes travel as a :mod:`marshal` dump of plain
  tuples with the message bytes. Everything else that may be an event (answers, which the caller
  decodes to balance the work, ChannelData, classic STUN, [MS-TURN] wrappers, QUIC-looking payloads
  that a ChannelBind may have made ChannelData, ICMP quotes) travels as it came, with its kind;
  each 5-tuple is sent once and then named by a number.
- the **calling** process rebuilds the same :class:`~stunscope.wire.message.StunMessage` and
  makes the events with the same :class:`~stunscope.capture.stream.Demux` payload decoder as the
  one-process path (ChannelData, tunnelled STUN, bound channels), so the events, their order, the
  stats and the errors are the same. Tests compare both paths event by event on the bundled
  captures, the public corpus, the benchmark's mixed traffic, fragments, IPv6, TCP and ICMP, and
  damaged files.

Why this seam: on the benchmark's 1M-frame capture one process spends about 8.5 s CPU (reading
and unwrapping 1.6 s, decoding and events 3.4 s, analysis 3.4 s). Split like this each process
has about 4.4 s of it (the caller: events 1.5 s, analysis 2.9 s), and the two overlap.

Batches are one ``bytes`` per about :data:`BATCH_BYTES` of forwarded data (struct headers, no
pickling) with the counters of the frames they cover in front; they go through a pipe (1 MiB
kernel buffer on Linux), so memory stays bounded: the reader blocks while the caller is busy.
A damaged file gives every event before the damage, then the same
:class:`~stunscope.errors.CaptureError`. Closing the generator early, an exception in the caller
or Ctrl-C terminates the reader; the reader also stops by itself when the caller is gone (broken
pipe), and is a daemon process. Small files, non-regular files (pipes, stdin), one-CPU machines
and ``STUNSCOPE_PARALLEL=0`` stay in one process; live capture never comes here.
"""

from __future__ import annotations

import marshal
import multiprocessing
import os
import signal
import stat
import struct
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from stunscope.capture.events import Event, MessageEvent, Unreachable
from stunscope.capture.fragments import FragmentTable
from stunscope.capture.layers import FAST_UDP4, UDP, UDP_TUNNEL_PORTS, IcmpQuote, Transport, decode_frame
from stunscope.capture.records import new, read_records
from stunscope.capture.stats import CaptureStats
from stunscope.capture.tcp import TcpReassembler
from stunscope.errors import CaptureError
from stunscope.wire.demux import KINDS, classify
from stunscope.wire.decode import TYPE_TABLE, decode_message, decode_ms_turn_mux
from stunscope.wire.message import MAGIC_COOKIE, Attribute, ChannelData, DecodeFailure, Endpoint, MessageClass, StunMessage

__all__ = ["BATCH_BYTES", "open_events_parallel", "worth_it"]

BATCH_BYTES = 1 << 18
"""Forwarded bytes per batch (a few thousand packets)."""

ENV = "STUNSCOPE_PARALLEL"
"""``0`` keeps every capture in one process, ``1`` uses the reader process for any regular file."""

_KIND_INDEX = {kind: i for i, kind in enumerate(KINDS)}
_COOKIE = MAGIC_COOKIE.to_bytes(4, "big")
_CHANNELDATA = _KIND_INDEX["channeldata"]
_STUN = _KIND_INDEX["stun"]
_SPECIAL = frozenset({0x006, 0x007, 0x009})
"""Send, Data (they may tunnel STUN) and ChannelBind (it binds channels): the decoder's full path."""
_FORWARD = frozenset({"stun", "classic-stun", "channeldata", "ms-turn-mux", "quic"})
"""Kinds the reader forwards: those that may be events (QUIC-looking payloads may be ChannelData
on a channel above 0x4FFF that a ChannelBind bound)."""

_U32 = struct.Struct("<I")
"""A batch is ``B``, the length of its counters, the counters (a :mod:`marshal` dump of frames,
bytes and truncated frames covered, payloads counted and not sent per kind, and the fragment and
TCP figures of :data:`_TABLE_FIELDS` so far), then its items."""
_TABLE_FIELDS = ("fragments", "reassembled", "fragment_evictions", "fragment_timeouts", "tcp_streams",
                 "tcp_evictions", "tcp_retransmitted_bytes", "tcp_gaps")
"""The stats that IP reassembly and TCP reassembly keep: both run in the reader."""
_UDP_ITEM = struct.Struct("<BIdIBH")
"""A UDP payload: 1, frame, ts, flow number, kind (index in ``KINDS``), length; then the bytes."""
_FLOW_ITEM = struct.Struct("<BIBHH")
"""A flow number's definition, before its first use: 3, number, address length (4 or 16), ports;
then the source and destination addresses. At most :data:`MAX_FLOWS` are numbered, then numbering
starts again from 0."""
MAX_FLOWS = 1 << 16
_STUN_ITEM = struct.Struct("<BIdIIH")
"""A STUN message the reader decoded (RFC 8489 with the cookie, no findings): 4 (UDP) or 5 (one
message of a TCP segment), frame, ts, flow number, length of its attributes (a :mod:`marshal` dump
of their plain tuples: both ends are the same interpreter) and of the message bytes, which follow.
The caller rebuilds the same :class:`StunMessage`."""
_unpack_stun_item = _STUN_ITEM.unpack_from
_STUN_ITEM_SIZE = _STUN_ITEM.size
_TCP_ITEM = struct.Struct("<BIdIBI")
"""Another message of a TCP segment (RFC 6062/8656 framing done by the reader): 6, frame, ts, flow
number, kind, length; then the bytes. ``_END_FRAME`` follows a segment's last message."""
_END_FRAME = b"\x08"
_ICMP_ITEM = struct.Struct("<BI")
"""An ICMP error quoting a flow: 7, length of a :mod:`marshal` dump of frame, ts and the
:class:`~stunscope.capture.layers.IcmpQuote` fields."""
_CONNECTION_BIND = 0x00B
_MESSAGE_KINDS = frozenset({"stun", "classic-stun", "channeldata", "ms-turn-mux"})
_DONE, _DAMAGE, _FAILURE = b"D", b"X", b"F"


def worth_it(path: str | Path, *, force: bool = False) -> bool:
    """True when ``path`` is a regular file that the reader process should read: with ``force``
    any, else one of at least ``PARALLEL_MIN_BYTES`` on a machine with two CPUs or more."""
    from stunscope.capture.stream import PARALLEL_MIN_BYTES

    setting = os.environ.get(ENV)
    if setting == "0":
        return False
    try:
        info = os.stat(path)
    except OSError:
        return False  # the one-process path reports it
    if not stat.S_ISREG(info.st_mode):
        return False
    if force or setting == "1":
        return True
    return info.st_size >= PARALLEL_MIN_BYTES and _cpus() >= 2


def _cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _rebuilt_stun(batch: bytes, view: memoryview, pos: int) -> tuple[int, int, float, int, StunMessage]:
    """Items 4 and 5: a STUN message the reader decoded, rebuilt from its marshalled attribute
    table and raw bytes into the very tuple ``decode_message`` makes (a cookie message without
    findings): ``(next position, frame, ts, flow, message)``."""
    _item, frame, ts, flow, count, size = _unpack_stun_item(batch, pos)
    pos += _STUN_ITEM_SIZE
    stop = pos + count
    attributes = tuple([new(Attribute, attr) for attr in marshal.loads(view[pos:stop])])
    pos = stop + size
    raw = batch[stop:pos]
    msg_type = (raw[0] << 8) | raw[1]
    method, mcls = TYPE_TABLE[msg_type]
    message = new(StunMessage, (msg_type, method, mcls, (raw[2] << 8) | raw[3], True, raw[8:20],
                                attributes, (), raw))
    return pos, frame, ts, flow, message


def open_events_parallel(path: str | Path, stats: CaptureStats | None = None) -> Iterator[Event]:
    """The events of ``open_events(path, stats)``, with the reading done by another process."""
    from stunscope.capture.stream import Demux

    if stats is None:
        stats = CaptureStats()
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    receiver, sender = context.Pipe(duplex=False)
    try:  # Linux: room for a few batches in the pipe, so neither side waits on every batch
        import fcntl

        fcntl.fcntl(sender.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 4 * BATCH_BYTES)
    except (ImportError, OSError):
        pass
    for stream in (sys.stdout, sys.stderr):  # a forked child must not repeat buffered output
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    reader = context.Process(target=_read, args=(str(path), sender, receiver), name="stunscope-reader", daemon=True)
    reader.start()
    sender.close()
    try:
        demux = Demux(stats)
        kinds = stats.kinds
        endpoint = demux.endpoint
        udp_between = demux.udp_between
        stun_events = demux.stun_events
        flow_item = _FLOW_ITEM.unpack_from
        tcp_item = _TCP_ITEM.unpack_from
        tcp_size = _TCP_ITEM.size
        icmp_item = _ICMP_ITEM.unpack_from
        icmp_size = _ICMP_ITEM.size
        u32 = _U32.unpack_from
        payload_events = demux.payload_events
        group: list[Event] = []
        reported = (0,) * len(_TABLE_FIELDS)
        flow_size = _FLOW_ITEM.size
        ends: list[tuple[Endpoint, Endpoint]] = []
        loads = marshal.loads
        rebuilt = _rebuilt_stun
        udp_item = _UDP_ITEM.unpack_from
        udp_size = _UDP_ITEM.size
        while True:
            try:
                batch = receiver.recv_bytes()
            except EOFError:
                reader.join()
                raise CaptureError(f"{path}: the reading process ended unexpectedly (exit code {reader.exitcode})") from None
            tag = batch[:1]
            if tag != b"B":
                if tag == _DONE:
                    return
                text = batch[1:].decode("utf-8", "replace")
                if tag == _DAMAGE:
                    raise CaptureError(text)
                raise RuntimeError(f"the reading process failed: {text}")
            clen = u32(batch, 1)[0]
            frames, size, truncated, dropped, figures = loads(batch[5 : 5 + clen])
            stats.frames += frames
            stats.bytes += size
            stats.truncated += truncated
            for kind, count in dropped.items():
                kinds[kind] += count
            for name, value, before in zip(_TABLE_FIELDS, figures, reported):
                if value != before:
                    setattr(stats, name, getattr(stats, name) + value - before)
            reported = figures
            head = 5 + clen
            pos = head
            end = len(batch)
            view = memoryview(batch)
            while pos < end:
                item = batch[pos]
                if item == 1:
                    _one, frame, ts, flow, k, length = udp_item(batch, pos)
                    pos += udp_size
                    stop = pos + length
                    src, dst = ends[flow]
                    if k == _STUN:  # the common STUN message: as _PayloadDecoder.events does it
                        message = decode_message(batch[pos:stop])
                        pos = stop
                        kinds["stun"] += 1
                        if message.__class__ is StunMessage and message.magic and message.method not in _SPECIAL:
                            stats.messages += 1
                            yield new(MessageEvent, (frame, ts, src, dst, "udp", "stun", message, None, None, None, 0))
                            continue
                        events = stun_events(frame, ts, src, dst, "udp", message, 0)
                    else:
                        if k == _CHANNELDATA and length >= 4:  # ChannelData not carrying STUN: as in iter_events
                            clen = (batch[pos + 2] << 8) | batch[pos + 3]
                            if clen + 4 == length and (clen == 0 or batch[pos + 4] >= 0x40):
                                kinds["channeldata"] += 1
                                stats.messages += 1
                                cd = new(ChannelData, ((batch[pos] << 8) | batch[pos + 1], clen, batch[pos + 4 : stop], (), not clen & 3))
                                pos = stop
                                yield new(MessageEvent, (frame, ts, src, dst, "udp", "channeldata", cd, None, None, cd.channel, 0))
                                continue
                        events = udp_between(frame, ts, src, dst, batch[pos:stop], KINDS[k])
                        pos = stop
                elif item == 4:  # a STUN message the reader decoded
                    pos, frame, ts, flow, message = rebuilt(batch, view, pos)
                    src, dst = ends[flow]
                    kinds["stun"] += 1
                    if message[1] in _SPECIAL:  # the method: channels to note, STUN in Send/Data
                        events = stun_events(frame, ts, src, dst, "udp", message, 0)
                    else:
                        stats.messages += 1
                        yield new(MessageEvent, (frame, ts, src, dst, "udp", "stun", message, None, None, None, 0))
                        continue
                elif item == 3:
                    _three, flow, width, sport, dport = flow_item(batch, pos)
                    pos += flow_size
                    src_ip = batch[pos : pos + width]
                    dst_ip = batch[pos + width : pos + 2 * width]
                    pos += 2 * width
                    if flow == len(ends):
                        ends.append((endpoint(src_ip, sport), endpoint(dst_ip, dport)))
                    else:
                        ends[flow] = (endpoint(src_ip, sport), endpoint(dst_ip, dport))
                    continue
                elif item == 5:  # a decoded STUN message of a TCP segment
                    pos, frame, ts, flow, message = rebuilt(batch, view, pos)
                    src, dst = ends[flow]
                    kinds["stun"] += 1
                    group += stun_events(frame, ts, src, dst, "tcp", message, len(group))
                    continue
                elif item == 6:  # another message of a TCP segment
                    _six, frame, ts, flow, k, length = tcp_item(batch, pos)
                    pos += tcp_size
                    stop = pos + length
                    src, dst = ends[flow]
                    kind = KINDS[k]
                    kinds[kind] += 1
                    group += payload_events(frame, ts, src, dst, "tcp", kind, batch[pos:stop], len(group))
                    pos = stop
                    continue
                elif item == 8:  # the end of a TCP segment's messages
                    pos += 1
                    events = group
                    group = []
                elif item == 7:
                    _seven, length = icmp_item(batch, pos)
                    pos += icmp_size
                    stop = pos + length
                    frame, ts, reporter, icmp, proto, src_ip, dst_ip, sport, dport = loads(view[pos:stop])
                    pos = stop
                    stats.unreachable += 1
                    kinds["icmp-error"] += 1
                    events = [Unreachable(frame, ts, endpoint(reporter, 0).ip, endpoint(src_ip, sport), endpoint(dst_ip, dport),
                                          "udp" if proto == UDP else "tcp", icmp)]
                else:
                    raise RuntimeError(f"the reading process sent an unknown item {item}")
                if events:
                    yield from events
    finally:
        receiver.close()
        if reader.is_alive():
            reader.terminate()
        reader.join()


def _read(path: str, sender, receiver) -> None:  # type: ignore[no-untyped-def]
    """The reader process: records -> batches on ``sender`` (see the module doc)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's: it terminates us
    receiver.close()  # our copy of the caller's end: the pipe breaks when the caller is gone
    try:
        _batches(path, sender)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        pass
    finally:
        sender.close()


def _append_stun(append: Callable[[bytes], None], item: int, frame: int, ts: float, flow: int,
                 message: StunMessage) -> None:
    """Queue a decoded STUN message as item ``item`` (4: UDP, 5: TCP): header, its attributes
    (marshalled), its raw bytes."""
    attributes = marshal.dumps(tuple(map(tuple, message.attributes)))
    append(_STUN_ITEM.pack(item, frame, ts, flow, len(attributes), len(message.raw)))
    append(attributes)
    append(message.raw)


def _batches(path: str, sender) -> None:  # type: ignore[no-untyped-def]
    """Read ``path`` and send its batches (see the module doc); the last message says how it
    ended: done, damage (the CaptureError text) or failure."""
    send = sender.send_bytes
    kind_index = _KIND_INDEX
    forward = _FORWARD
    message_kinds = _MESSAGE_KINDS
    pack_udp = _UDP_ITEM.pack
    pack_tcp = _TCP_ITEM.pack
    dumps = marshal.dumps
    flows: dict[tuple[bytes, int, bytes, int], int] = {}
    fast_udp4 = FAST_UDP4.get
    tables = CaptureStats()  # fragment and TCP figures, sent whole with each batch
    fragments = FragmentTable(tables)
    tcp = TcpReassembler(tables)
    dropped: Counter[str] = Counter()
    out: list[bytes] = []
    append = out.append
    frames = size_total = truncated = 0
    pending = 0

    try:
        for frame, ts, linktype, data, orig_len in read_records(path):
            frames += 1
            size_total += orig_len
            size = len(data)
            if orig_len > size:
                truncated += 1
            payload = None
            fast = fast_udp4(linktype)
            if fast is not None and size >= fast[1] + 28:
                unpack, ip, tags = fast
                tag, vihl, total, frag, proto, src_ip, dst_ip, sport, dport, length = unpack(data)
                if vihl == 0x45 and proto == UDP and tag in tags and not frag & 0x3FFF and 8 <= length <= total - 20 and ip + total <= size and dport not in UDP_TUNNEL_PORTS:  # VXLAN, GENEVE: decode_frame unwraps them
                    start = ip + 28
                    if length >= 16 and 128 <= data[start] < 192:  # RTP/RTCP: as in iter_events
                        dropped["rtcp" if 192 <= data[start + 1] <= 223 else "rtp" if length >= 20 else "other"] += 1
                        continue
                    payload = data[start : ip + 20 + length]
            if payload is None:  # everything else: as Demux.frame does it
                unwrapped = decode_frame(linktype, data, ts, fragments)
                cls = unwrapped.__class__
                if cls is Transport:
                    proto, src_ip, dst_ip, sport, dport, payload, seq, flags = unwrapped
                    if proto != UDP:
                        key = (src_ip, sport, dst_ip, dport)
                        messages = tcp.segment(key, seq, flags, payload)
                        if messages is None:
                            if payload:
                                dropped["tcp-other"] += 1
                            continue
                        if not messages:
                            continue
                        flow = flows.get(key)
                        if flow is None:
                            flow = _new_flow(flows, key, append)
                        binds = False
                        for message in messages:
                            kind = classify(message)
                            if kind not in message_kinds:
                                dropped[kind] += 1
                                continue
                            decoded, bound = _tcp_message(kind, message)
                            binds = binds or bound
                            if decoded is not None:
                                _append_stun(append, 5, frame, ts, flow, decoded)
                            else:
                                append(pack_tcp(6, frame, ts, flow, kind_index[kind], len(message)))
                                append(message)
                            pending += len(message) + 32
                        append(_END_FRAME)
                        if binds:
                            tcp.passthrough(key)
                        if pending >= BATCH_BYTES:
                            send(_batch(out, frames, size_total, truncated, dropped, tables))
                            out.clear()
                            dropped.clear()
                            frames = size_total = truncated = pending = 0
                        continue
                elif cls is IcmpQuote:
                    quote = dumps((frame, ts, *unwrapped))
                    append(_ICMP_ITEM.pack(7, len(quote)))
                    append(quote)
                    continue
                else:
                    dropped[unwrapped] += 1
                    continue
            first = payload[0] if payload else -1
            size = len(payload)
            if 64 <= first < 80 and size >= 4:  # demux._channeldata inline
                kind = "channeldata" if 0 <= size - 4 - ((payload[2] << 8) | payload[3]) <= 3 else "other"
            elif 0 <= first < 4 and size >= 20 and payload[4:8] == _COOKIE:  # demux._stun inline
                kind = "stun"
            else:
                kind = classify(payload)
            if kind not in forward:
                dropped[kind] += 1
                continue
            message = None
            if kind == "stun" and not first & 1:  # requests and indications; answers (class bit C1, RFC 8489 §5) are decoded by the caller, which has time to spare
                message = decode_message(payload)
                if message.__class__ is not StunMessage or message.findings or not message.magic:
                    message = None
            key = (src_ip, sport, dst_ip, dport)
            flow = flows.get(key)
            if flow is None:
                flow = _new_flow(flows, key, append)
            if message is not None:
                _append_stun(append, 4, frame, ts, flow, message)
            else:
                append(pack_udp(1, frame, ts, flow, kind_index[kind], len(payload)))
                append(payload)
            pending += len(payload) + 32
            if pending >= BATCH_BYTES:
                send(_batch(out, frames, size_total, truncated, dropped, tables))
                out.clear()
                dropped.clear()
                frames = size_total = truncated = pending = 0
    except CaptureError as exc:
        send(_batch(out, frames, size_total, truncated, dropped, tables))
        send(_DAMAGE + str(exc).encode("utf-8", "replace"))
        return
    except (BrokenPipeError, ConnectionResetError):
        raise
    except Exception as exc:  # a bug: say so in the caller rather than die silently
        send(_FAILURE + repr(exc).encode("utf-8", "replace"))
        return
    send(_batch(out, frames, size_total, truncated, dropped, tables))
    send(_DONE)


def _new_flow(flows: dict[tuple[bytes, int, bytes, int], int], key: tuple[bytes, int, bytes, int], append) -> int:  # type: ignore[no-untyped-def]
    """Number a new flow and append its definition."""
    if len(flows) >= MAX_FLOWS:
        flows.clear()
    flow = flows[key] = len(flows)
    src_ip, sport, dst_ip, dport = key
    append(_FLOW_ITEM.pack(3, flow, len(src_ip), sport, dport) + src_ip + dst_ip)
    return flow


def _tcp_message(kind: str, message: bytes) -> tuple[StunMessage | None, bool]:
    """For one framed TCP message: the STUN message to send decoded (None: send the bytes), and
    whether it is a ConnectionBind success answer (RFC 6062 §4.4: the connection then carries
    application data), exactly as ``stream._binds_connection`` would find it among the events."""
    if kind == "ms-turn-mux":
        wrapper = decode_ms_turn_mux(message)
        if wrapper.__class__ is DecodeFailure or classify(wrapper.data) not in ("stun", "classic-stun"):
            return None, False
        inner = decode_message(wrapper.data)
        return None, inner.__class__ is StunMessage and inner.method == _CONNECTION_BIND and inner.cls is MessageClass.SUCCESS
    if kind == "channeldata":
        return None, False
    decoded = decode_message(message)
    if decoded.__class__ is not StunMessage:
        return None, False
    bound = decoded.method == _CONNECTION_BIND and decoded.cls is MessageClass.SUCCESS
    if decoded.findings or not decoded.magic:
        return None, bound
    return decoded, bound


def _batch(items: list[bytes], frames: int, size: int, truncated: int, dropped: Counter[str], tables: CaptureStats) -> bytes:
    counts = marshal.dumps((frames, size, truncated, dict(dropped), tuple(getattr(tables, name) for name in _TABLE_FIELDS)))
    return b"".join([b"B", _U32.pack(len(counts)), counts, *items])
