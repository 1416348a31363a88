"""The event stream of a large capture file, read by a second process.

One Python process cannot read, unwrap, decode and analyse a million-frame capture as fast as
two cores can, so :func:`open_events_parallel` splits :func:`~stunscope.capture.stream.iter_events`
in two along the cheapest seam:

- a **reader** process (:func:`_read`) reads the records (pcap, pcapng, gzip), unwraps the common
  Ethernet/IPv4/UDP frames and classifies their payload (RFC 7983/9443). Media and other payloads
  that never become events (RTP, RTCP, DTLS, ZRTP, ...) are only counted. STUN messages with the
  magic cookie are decoded there (:func:`~stunscope.wire.decode.decode_message`); when the decoder
  finds nothing wrong, the attributes travel as a :mod:`marshal` dump of plain tuples with the
  message bytes, else the payload travels as it came. Other payloads that may be events
  (ChannelData, classic STUN, [MS-TURN] wrappers, QUIC-looking payloads that a ChannelBind may have
  made ChannelData) go on with their kind; each 5-tuple is sent once and then named by a number.
  Every other frame (TCP, IPv6, fragments, ICMP, other link types) goes on whole.
- the **calling** process rebuilds the same :class:`~stunscope.wire.message.StunMessage` and
  decodes the rest with the same :class:`~stunscope.capture.stream.Demux` state machine as the
  one-process path (ChannelData, tunnelled STUN, TCP reassembly, fragments, ICMP, bound channels),
  so the events, their order, the stats and the errors are the same. Tests compare both paths
  event by event on the bundled captures, the public corpus, the benchmark's mixed traffic and
  damaged files.

Why this seam: on the benchmark's 1M-frame capture one process spends about 8.5 s CPU (reading
and unwrapping 1.6 s, decoding and events 3.4 s, analysis 3.4 s). The reader takes about 4.3 s
of it, the caller keeps about 5 s (events 2 s, analysis 3 s), and the two overlap.

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
from collections.abc import Iterator
from pathlib import Path

from stunscope.capture.events import Event, MessageEvent
from stunscope.capture.layers import FAST_UDP4, UDP
from stunscope.capture.records import new, read_records
from stunscope.capture.stats import CaptureStats
from stunscope.errors import CaptureError
from stunscope.wire.demux import KINDS, classify
from stunscope.wire.decode import TYPE_TABLE, decode_message
from stunscope.wire.message import MAGIC_COOKIE, Attribute, ChannelData, Endpoint, StunMessage

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

_COUNTS = struct.Struct(f"<cQQQ{len(KINDS)}Q")
"""Batch header: tag ``B``, frames, bytes, truncated frames, then dropped payloads per kind."""
_UDP_ITEM = struct.Struct("<BIdIBH")
"""A forwarded UDP payload: 1, frame, ts, flow number, kind, length."""
_FLOW_ITEM = struct.Struct("<BI4s4sHH")
"""A flow number's definition, before its first use: 3, number, source and destination IPv4,
ports. At most :data:`MAX_FLOWS` are numbered, then numbering starts again from 0."""
MAX_FLOWS = 1 << 16
_STUN_ITEM = struct.Struct("<BIdIIH")
"""A STUN message the reader decoded (RFC 8489 with the cookie, no findings): 4, frame, ts,
flow number, length of its attributes (a :mod:`marshal` dump of their plain tuples: both ends are
the same interpreter) and of the message bytes, which follow. The caller rebuilds the same :class:`StunMessage`."""
_FRAME_ITEM = struct.Struct("<BIdII")
"""A forwarded frame: 2, frame, ts, link type, captured length."""
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
        flow_size = _FLOW_ITEM.size
        ends: list[tuple[Endpoint, Endpoint]] = []
        stun_item = _STUN_ITEM.unpack_from
        stun_size = _STUN_ITEM.size
        loads = marshal.loads
        type_table = TYPE_TABLE
        frame_events = demux.frame
        udp_item = _UDP_ITEM.unpack_from
        udp_size = _UDP_ITEM.size
        frame_item = _FRAME_ITEM.unpack_from
        frame_size = _FRAME_ITEM.size
        counts = _COUNTS.unpack_from
        head = _COUNTS.size
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
            _tag, frames, size, truncated, *dropped = counts(batch)
            stats.frames += frames
            stats.bytes += size
            stats.truncated += truncated
            for kind, count in zip(KINDS, dropped):
                if count:
                    kinds[kind] += count
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
                elif item == 4:  # a STUN message the reader decoded: rebuilt from its attribute table
                    _four, frame, ts, flow, count, size = stun_item(batch, pos)
                    pos += stun_size
                    stop = pos + count
                    attributes = tuple([new(Attribute, attr) for attr in loads(view[pos:stop])])
                    pos = stop + size
                    raw = batch[stop:pos]
                    msg_type = (raw[0] << 8) | raw[1]
                    method, mcls = type_table[msg_type]
                    message = new(StunMessage, (
                        msg_type, method, mcls, (raw[2] << 8) | raw[3], True, raw[8:20],
                        attributes,
                        (), raw,
                    ))
                    src, dst = ends[flow]
                    kinds["stun"] += 1
                    if method in _SPECIAL:  # channels to note, STUN tunnelled in Send/Data
                        events = stun_events(frame, ts, src, dst, "udp", message, 0)
                    else:
                        stats.messages += 1
                        yield new(MessageEvent, (frame, ts, src, dst, "udp", "stun", message, None, None, None, 0))
                        continue
                elif item == 3:
                    _three, flow, src_ip, dst_ip, sport, dport = flow_item(batch, pos)
                    pos += flow_size
                    if flow == len(ends):
                        ends.append((endpoint(src_ip, sport), endpoint(dst_ip, dport)))
                    else:
                        ends[flow] = (endpoint(src_ip, sport), endpoint(dst_ip, dport))
                    continue
                else:
                    _two, frame, ts, linktype, length = frame_item(batch, pos)
                    pos += frame_size
                    stop = pos + length
                    events = frame_events(frame, ts, linktype, batch[pos:stop])
                    pos = stop
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


def _batches(path: str, sender) -> None:  # type: ignore[no-untyped-def]
    send = sender.send_bytes
    kind_index = _KIND_INDEX
    forward = _FORWARD
    pack_udp = _UDP_ITEM.pack
    pack_frame = _FRAME_ITEM.pack
    pack_flow = _FLOW_ITEM.pack
    pack_stun = _STUN_ITEM.pack
    dumps = marshal.dumps
    flows: dict[tuple[bytes, int, bytes, int], int] = {}
    fast_udp4 = FAST_UDP4.get
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
            fast = fast_udp4(linktype)
            if fast is not None and size >= fast[1] + 28:
                unpack, ip, tags = fast
                tag, vihl, total, frag, proto, src_ip, dst_ip, sport, dport, length = unpack(data)
                if vihl == 0x45 and proto == UDP and tag in tags and not frag & 0x3FFF and 8 <= length <= total - 20 and ip + total <= size:
                    start = ip + 28
                    if length >= 16 and 128 <= data[start] < 192:  # RTP/RTCP: as in iter_events
                        dropped["rtcp" if 192 <= data[start + 1] <= 223 else "rtp" if length >= 20 else "other"] += 1
                        continue
                    payload = data[start : ip + 20 + length]
                    first = payload[0] if length > 8 else -1
                    if 64 <= first < 80 and length >= 12:  # demux._channeldata inline
                        kind = "channeldata" if 0 <= length - 12 - ((payload[2] << 8) | payload[3]) <= 3 else "other"
                    elif 0 <= first < 4 and length >= 28 and payload[4:8] == _COOKIE:  # demux._stun inline
                        kind = "stun"
                    else:
                        kind = classify(payload)
                    if kind not in forward:
                        dropped[kind] += 1
                        continue
                    message = None
                    if kind == "stun":
                        message = decode_message(payload)
                        if message.__class__ is not StunMessage or message.findings or not message.magic:
                            message = None
                    key = (src_ip, sport, dst_ip, dport)
                    flow = flows.get(key)
                    if flow is None:
                        if len(flows) >= MAX_FLOWS:
                            flows.clear()
                        flow = flows[key] = len(flows)
                        append(pack_flow(3, flow, src_ip, dst_ip, sport, dport))
                    if message is not None:
                        attributes = dumps(tuple(map(tuple, message.attributes)))
                        append(pack_stun(4, frame, ts, flow, len(attributes), len(message.raw)))
                        append(attributes)
                        append(message.raw)
                    else:
                        append(pack_udp(1, frame, ts, flow, kind_index[kind], len(payload)))
                        append(payload)
                    pending += len(payload) + 32
                    if pending >= BATCH_BYTES:
                        send(_batch(out, frames, size_total, truncated, dropped))
                        out.clear()
                        dropped.clear()
                        frames = size_total = truncated = pending = 0
                    continue
            append(pack_frame(2, frame, ts, linktype, size))
            append(data)
            pending += size + 24
            if pending >= BATCH_BYTES:
                send(_batch(out, frames, size_total, truncated, dropped))
                out.clear()
                dropped.clear()
                frames = size_total = truncated = pending = 0
    except CaptureError as exc:
        send(_batch(out, frames, size_total, truncated, dropped))
        send(_DAMAGE + str(exc).encode("utf-8", "replace"))
        return
    except (BrokenPipeError, ConnectionResetError):
        raise
    except Exception as exc:  # a bug: say so in the caller rather than die silently
        send(_FAILURE + repr(exc).encode("utf-8", "replace"))
        return
    send(_batch(out, frames, size_total, truncated, dropped))
    send(_DONE)


def _batch(items: list[bytes], frames: int, size: int, truncated: int, dropped: Counter[str]) -> bytes:
    return b"".join([_COUNTS.pack(b"B", frames, size, truncated, *[dropped[k] for k in KINDS]), *items])
