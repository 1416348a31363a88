"""The compact per-message index behind the timeline, the ladder and the filter.

One row per event (STUN / classic STUN / ChannelData message, ICMP unreachable, undecodable
payload), stored column-wise in ``array`` objects: about 60 bytes a row, so a million-packet
capture costs tens of megabytes, not the gigabytes that decoded messages would. The message bytes
go to a :class:`~stunscope.tui.spool.Spool` and are decoded again only for the rows on screen or
the selected one (DESIGN.md principles 5 and 7).

While indexing, requests and responses are paired by transaction id alone (RFC 8489 §6.3: the id
identifies the transaction, whatever address the answer comes from) within a bounded window of
recent requests, so that the timeline can colour a request by its outcome, fold its
retransmissions under it and show the RTT on its response. The authoritative transaction analysis
is the analysis package's; this pairing only serves the display.

Threading: the loader thread appends; the UI thread reads rows below :attr:`MessageIndex.count`,
which :meth:`MessageIndex.publish` advances after flushing the spool.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections import OrderedDict
from enum import IntEnum
from typing import NamedTuple

from stunscope.capture.events import Event, MessageEvent, Unreachable
from stunscope.tui.spool import Spool
from stunscope.wire.attributes import channel_number, error_code, username, xor_peers, xor_relayed
from stunscope.wire.message import Endpoint, MessageClass, StunMessage


class RowKind(IntEnum):
    """What a row stands for."""

    STUN = 0
    CLASSIC = 1
    CHANNELDATA = 2
    UNREACHABLE = 3
    UNDECODABLE = 4


KIND_OF_EVENT = {"stun": RowKind.STUN, "classic-stun": RowKind.CLASSIC,
                 "channeldata": RowKind.CHANNELDATA}
"""``MessageEvent.kind`` -> row kind."""


class Outcome(IntEnum):
    """How a row is coloured: the fate of its transaction, as far as the index can tell."""

    NONE = 0
    PENDING = 1
    SUCCESS = 2
    ERROR = 3
    TIMEOUT = 4


TUNNELS = (None, "channeldata", "send", "data")
"""Tunnel codes stored in a row (index into this tuple)."""

RETRANSMISSION = 0x10
"""Flag bit: the row is a retransmitted request (same txid and source as an earlier request),
or a second answer to a transaction (the answer to a retransmission)."""

TCP = 0x20
"""Flag bit: the carrying transport is TCP."""

RELAYED_COPY = 0x40
"""Flag bit: a message seen again on the other leg of a TURN relay (once between the relay and
the peer, once tunnelled between the client and the server); drawn between the same ends."""

FOLDED = RETRANSMISSION | RELAYED_COPY
"""Rows a folded view hides under their transaction's first request."""

_ALLOCATE = 0x003
_CHANNEL_BIND = 0x009
_TUNNEL_MASK = 0x03
_TUNNEL_CODES = {tunnel: code for code, tunnel in enumerate(TUNNELS)}
_NO_TXID = bytes(16)
_CHANNEL_HEADER = struct.Struct("!HH")

CHANNELDATA_KEPT = 256
"""Application bytes kept per ChannelData message for the hex view (the rest is media)."""
_TIMEOUT_S = 39.5
"""RFC 8489 §6.2.1: with the default RTO of 500 ms and Rc=7, a client gives up after 39.5 s."""

_WINDOW = 100_000
"""At most this many recent requests are kept for pairing (memory stays bounded)."""


class _Pending(NamedTuple):
    row: int
    src: int
    dst: int
    ts: float


class MessageIndex:
    """Rows of compact columns, endpoint and username interning, and the message spool."""

    def __init__(self) -> None:
        self.spool = Spool()
        self.frame = array("I")
        self.ts = array("d")
        self.src = array("I")
        self.dst = array("I")
        self.kind = array("B")
        self.method = array("H")
        """Method code, or the channel number for ChannelData."""
        self.cls = array("B")
        self.outcome = array("B")
        self.flags = array("B")
        self.error = array("H")
        self.partner = array("i")
        """Request: its first response row; response or retransmission: the first request row."""
        self.retransmissions = array("B")
        self.user = array("I")
        self.txid = bytearray()
        """16 bytes a row (RFC 5389 ids are left-aligned and zero-padded)."""
        self.offset = array("Q")
        self.length = array("I")
        self.endpoints: list[Endpoint] = []
        self._endpoint_ids: dict[Endpoint, int] = {}
        self.usernames: list[str] = [""]
        self._username_ids: dict[str, int] = {"": 0}
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()
        self._last_request: OrderedDict[tuple[int, int], int] = OrderedDict()
        """(source, destination) -> the last request row of that flow, for ICMP errors."""
        self._relayed: dict[tuple[int, int], int] = {}
        self._channel_peers: dict[tuple[int, int, int], int] = {}
        self.count = 0
        """Rows readable by other threads (see :meth:`publish`)."""
        self.last_ts = 0.0

    def _endpoint(self, endpoint: Endpoint) -> int:
        ident = self._endpoint_ids.get(endpoint)
        if ident is None:
            ident = self._endpoint_ids[endpoint] = len(self.endpoints)
            self.endpoints.append(endpoint)
        return ident

    def _username(self, name: str) -> int:
        ident = self._username_ids.get(name)
        if ident is None:
            ident = self._username_ids[name] = len(self.usernames)
            self.usernames.append(name)
        return ident

    def endpoint_id(self, endpoint: Endpoint) -> int | None:
        """The interned id of ``endpoint``, or None if no row uses it."""
        return self._endpoint_ids.get(endpoint)

    def username_ids(self, names: set[str]) -> set[int]:
        """Interned ids of those of ``names`` that some row carries."""
        return {self._username_ids[n] for n in names if n in self._username_ids}

    def add(self, event: Event) -> int:
        """Append a row for ``event`` and return its number (not visible until :meth:`publish`)."""
        row = len(self.frame)
        ids = self._endpoint_ids
        src = ids.get(event.src)
        if src is None:
            src = self._endpoint(event.src)
        dst = ids.get(event.dst)
        if dst is None:
            dst = self._endpoint(event.dst)
        if event.__class__ is MessageEvent:
            if event.tunnel is not None:
                src, dst = self._logical_ends(event, src, dst)
            elif event.message.__class__ is StunMessage:
                self._note_relay(event.message, src, dst)
        flags = TCP if event.transport == "tcp" else 0
        method = cls = err = user = 0
        outcome = Outcome.NONE
        partner = -1
        txid = _NO_TXID
        data = b""
        if event.__class__ is MessageEvent:
            kind = KIND_OF_EVENT[event.kind]
            flags |= _TUNNEL_CODES[event.tunnel]
            message = event.message
            if message.__class__ is StunMessage:
                method, cls, data = message.method, message.cls, message.raw
                txid = message.txid.ljust(16, b"\0")
                name = username(message)
                if name:
                    user = self._username_ids.get(name) or self._username(name)
                outcome, partner, flags, user = self._pair(row, src, dst, event.ts, message, flags,
                                                          user)
                if cls == MessageClass.ERROR:
                    code = error_code(message)
                    err = code[0] if code else 0
            else:
                method = message.channel
                data = _CHANNEL_HEADER.pack(message.channel, message.length) + \
                    message.data[:CHANNELDATA_KEPT]
        elif event.__class__ is Unreachable:
            kind = RowKind.UNREACHABLE
            outcome = Outcome.ERROR
            self._unreachable(src, dst)
            data = f"{event.icmp} reported by {event.reporter}".encode()
        else:
            kind = RowKind.UNDECODABLE
            outcome = Outcome.ERROR
            failure = event.failure
            data = f"{failure.reason} at byte {failure.offset}: {failure.detail}".encode()
        self.frame.append(event.frame)
        self.ts.append(event.ts)
        self.last_ts = event.ts
        self.src.append(src)
        self.dst.append(dst)
        self.kind.append(kind)
        self.method.append(method)
        self.cls.append(cls)
        self.outcome.append(outcome)
        self.flags.append(flags)
        self.error.append(err)
        self.partner.append(partner)
        self.retransmissions.append(0)
        self.user.append(user)
        self.txid += txid
        self.offset.append(self.spool.append(data))
        self.length.append(len(data))
        return row

    def _note_relay(self, message: StunMessage, src: int, dst: int) -> None:
        """Remember relayed addresses (Allocate success) and channel peers (ChannelBind), per
        client and server, to draw tunnelled messages between the relay and the peer."""
        if message.method == _ALLOCATE and message.cls == MessageClass.SUCCESS:
            relayed = xor_relayed(message)
            if relayed is not None and len(self._relayed) < _WINDOW:
                self._relayed[(dst, src)] = self._endpoint(relayed)
        elif message.method == _CHANNEL_BIND and message.cls == MessageClass.REQUEST:
            channel = channel_number(message)
            peers = xor_peers(message)
            if channel is not None and peers and len(self._channel_peers) < _WINDOW:
                self._channel_peers[(src, dst, channel)] = self._endpoint(peers[0])

    def _logical_ends(self, event: MessageEvent, src: int, dst: int) -> tuple[int, int]:
        """A tunnelled message's ends as the peer and the relayed address (RFC 8656 §11-§12),
        when the allocation and the peer are known; else the carrier's ends."""
        to_server = event.tunnel == "send" or (src, dst, event.channel) in self._channel_peers
        client, server = (src, dst) if to_server else (dst, src)
        relayed = self._relayed.get((client, server))
        if event.peer is not None:
            peer: int | None = self._endpoint(event.peer)
        else:
            peer = self._channel_peers.get((client, server, event.channel))
        if relayed is None or peer is None:
            return src, dst
        return (relayed, peer) if to_server else (peer, relayed)

    def _pair(
        self, row: int, src: int, dst: int, ts: float, message: StunMessage, flags: int,
        user: int,
    ) -> tuple[Outcome, int, int, int]:
        """Pair ``message`` with a recent request; returns (outcome, partner, flags, user)."""
        pending = self._pending.get(message.txid)
        if message.cls == MessageClass.REQUEST:
            if pending is None:
                self._remember(message.txid, _Pending(row, src, dst, ts))
                return Outcome.PENDING, -1, flags, user
            if pending.src == src:
                first = pending.row
                if (self.flags[first] ^ flags) & _TUNNEL_MASK:
                    # The same request on the other leg of a TURN relay, not a retransmission.
                    return Outcome(self.outcome[first]), first, flags | RELAYED_COPY, user
                self.retransmissions[first] = min(255, self.retransmissions[first] + 1)
                return Outcome(self.outcome[first]), first, flags | RETRANSMISSION, user
            return Outcome.PENDING, -1, flags, user
        if message.cls == MessageClass.INDICATION or pending is None:
            return (Outcome.ERROR if message.cls == MessageClass.ERROR else Outcome.NONE), -1, \
                flags, user
        first = pending.row
        outcome = Outcome.SUCCESS if message.cls == MessageClass.SUCCESS else Outcome.ERROR
        answer = self.partner[first]
        if answer < 0:
            self.partner[first] = row
            self.outcome[first] = outcome
        elif (self.flags[answer] ^ flags) & _TUNNEL_MASK:
            flags |= RELAYED_COPY  # the same answer on the other leg of a TURN relay
        else:
            flags |= RETRANSMISSION  # the answer to a retransmission: folded with them
        return outcome, first, flags, user or self.user[first]

    def _remember(self, txid: bytes, pending: _Pending) -> None:
        self._pending[txid] = pending
        self._age(pending.ts)
        flow = (pending.src, pending.dst)
        self._last_request.pop(flow, None)
        self._last_request[flow] = pending.row
        if len(self._last_request) > _WINDOW:
            self._last_request.popitem(last=False)

    def _age(self, now: float) -> None:
        """Forget requests older than the RFC 8489 retransmission span (they timed out) and
        the oldest beyond the window, by the packet clock."""
        horizon = now - _TIMEOUT_S
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if len(self._pending) <= _WINDOW and oldest.ts >= horizon:
                break
            self._pending.popitem(last=False)
            self._expire(oldest.row)

    def _unreachable(self, src: int, dst: int) -> None:
        """An ICMP error quotes the flow of a request: that request failed (RFC 8445 §7.2.5.2.1
        treats it as a failed check; a client gives up the transaction)."""
        row = self._last_request.get((src, dst))
        if row is not None and self.outcome[row] in (Outcome.PENDING, Outcome.TIMEOUT):
            self.outcome[row] = Outcome.ERROR

    def _expire(self, row: int) -> None:
        if self.outcome[row] == Outcome.PENDING:
            self.outcome[row] = Outcome.TIMEOUT

    def finish(self) -> None:
        """The source has ended: every request still unanswered has timed out."""
        for pending in self._pending.values():
            self._expire(pending.row)
        self._pending.clear()
        self.publish()

    def publish(self) -> None:
        """Flush the spool and make every appended row visible to readers (requests older than
        the retransmission span by the packet clock are marked as timed out first)."""
        self._age(self.last_ts)
        self.spool.flush()
        self.count = len(self.frame)

    def tunnel(self, row: int) -> str | None:
        """How the row's message was carried (None, ``channeldata``, ``send``, ``data``)."""
        return TUNNELS[self.flags[row] & _TUNNEL_MASK]

    def txid_hex(self, row: int) -> str:
        """The transaction id of a STUN row in lower-case hex (24 or 32 digits), else ``""``."""
        if self.kind[row] == RowKind.STUN:
            return self.txid[row * 16:row * 16 + 12].hex()
        if self.kind[row] == RowKind.CLASSIC:
            return self.txid[row * 16:row * 16 + 16].hex()
        return ""

    def message_bytes(self, row: int) -> bytes:
        """The row's message bytes; for ICMP and undecodable rows, the UTF-8 text that says why."""
        length = self.length[row]
        return self.spool.read(self.offset[row], length) if length else b""

    def row_of_frame(self, frame: int) -> int | None:
        """The first row of ``frame`` (or of the next frame that has one), or None past the end."""
        pos = bisect_left(self.frame, frame, 0, self.count)
        return pos if pos < self.count else None

    def close(self) -> None:
        """Release the spool."""
        self.spool.close()
