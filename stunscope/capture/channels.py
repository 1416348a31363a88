"""TURN channels bound on each client/server pair, to recognise ChannelData by its channel.

RFC 9443 §3 gives the first bytes 0x50-0x7F to QUIC and narrows ChannelData to 0x4000-0x4FFF,
but RFC 5766 §11 allowed channels 0x4000-0x7FFE and RFC 5766 clients still bind them (coturn's
``turnutils_uclient`` binds 0x6494 and the server accepts). A payload whose first two bytes are a
channel that a successful ChannelBind (RFC 8656 §12.1-§12.2) bound between the same two transport
addresses is ChannelData, whatever the first-byte table says. Both tables are bounded (oldest
dropped first).
"""

from __future__ import annotations

from collections import OrderedDict

from stunscope.wire.attributes import channel_number
from stunscope.wire.message import Endpoint, MessageClass, StunMessage

CHANNEL_BIND = 0x009
"""RFC 8656 §18: the ChannelBind method."""


class BoundChannels:
    """ChannelBind requests awaiting their answer and the channels bound per address pair."""

    def __init__(self, *, max_pairs: int = 4096, max_requests: int = 4096) -> None:
        self._max_pairs = max_pairs
        self._max_requests = max_requests
        self._requests: OrderedDict[bytes, tuple[int, Endpoint, Endpoint]] = OrderedDict()
        self._bound: OrderedDict[tuple[Endpoint, Endpoint], set[int]] = OrderedDict()

    def __bool__(self) -> bool:
        return bool(self._bound)

    def note(self, message: StunMessage, src: Endpoint, dst: Endpoint) -> None:
        """Follow a ChannelBind message: remember the request's channel, bind it on success."""
        if message.cls is MessageClass.REQUEST:
            channel = channel_number(message)
            if channel is not None:
                _bounded_put(self._requests, message.txid, (channel, src, dst), self._max_requests)
        elif message.cls is MessageClass.SUCCESS:
            request = self._requests.pop(message.txid, None)
            if request is not None:
                channel, client, server = request
                channels = self._bound.get((client, server))
                if channels is None:
                    channels = set()
                    _bounded_put(self._bound, (client, server), channels, self._max_pairs)
                    _bounded_put(self._bound, (server, client), channels, self._max_pairs)
                channels.add(channel)

    def is_bound(self, src: Endpoint, dst: Endpoint, payload: bytes) -> bool:
        """True when ``payload`` starts with a channel bound between ``src`` and ``dst``."""
        channels = self._bound.get((src, dst))
        return channels is not None and len(payload) >= 4 and ((payload[0] << 8) | payload[1]) in channels


def _bounded_put(table: OrderedDict, key: object, value: object, limit: int) -> None:
    """Insert into a dict kept to ``limit`` entries by dropping the oldest."""
    if key not in table and len(table) >= limit:
        table.popitem(last=False)
    table[key] = value
