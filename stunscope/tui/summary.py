"""Display text for index rows: the message label and the one-line summary, decoded on demand.

Labels depend only on a row's compact columns and are few, so they are cached without bound.
Summaries need the message decoded again from the spool; only rows on screen ask for one, and a
small LRU keeps scrolling back and forth cheap. Every wire string goes through ``safe_text``.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

from stunscope.tui.index import TUNNELS, MessageIndex, RowKind
from stunscope.wire.attributes import (
    channel_number,
    error_code,
    lifetime,
    use_candidate,
    username,
    xor_mapped,
    xor_peers,
    xor_relayed,
)
from stunscope.wire.decode import FAILURES, FINDINGS, decode_message
from stunscope.wire.message import (
    ChannelData,
    DecodeFailure,
    MessageClass,
    StunMessage,
)
from stunscope.wire.registry import method_name
from stunscope.wire.text import safe_text

_labels: dict[tuple[int, int, int, bool], str] = {}
_SHORT_CLASS = {MessageClass.REQUEST: "req", MessageClass.INDICATION: "ind",
                MessageClass.SUCCESS: "ok", MessageClass.ERROR: "err"}


def row_label(index: MessageIndex, row: int, short: bool = False) -> str:
    """``Binding request``, ``Allocate error``, ``ChannelData``, ``ICMP``, ``undecodable``;
    ``short`` abbreviates the class (``Binding req``, ``Allocate err``) for narrow screens."""
    return label_of((index.kind[row], index.method[row], index.cls[row]), short)


def label_of(key: tuple[int, int, int], short: bool = False) -> str:
    """The label of rows whose (kind, method, class) columns are ``key`` (see :func:`row_label`)."""
    label = _labels.get((*key, short))
    if label is None:
        kind = RowKind(key[0])
        if kind in (RowKind.STUN, RowKind.CLASSIC):
            cls = MessageClass(key[2])
            label = f"{method_name(key[1])} {_SHORT_CLASS[cls] if short else cls.label}"
        elif kind == RowKind.CHANNELDATA:
            label = "ChannelData"
        elif kind == RowKind.UNREACHABLE:
            label = "ICMP unreachable"
        else:
            label = "undecodable"
        _labels[(*key, short)] = label
    return label


def decode_row(index: MessageIndex, row: int) -> StunMessage | ChannelData | DecodeFailure | str:
    """The row's message decoded again from the spool; for ICMP/undecodable rows, their text.

    ChannelData comes back with at most ``CHANNELDATA_KEPT`` bytes of ``data`` and no findings.
    """
    data = index.message_bytes(row)
    kind = index.kind[row]
    if kind in (RowKind.STUN, RowKind.CLASSIC):
        return decode_message(data)
    if kind == RowKind.CHANNELDATA:
        # The index keeps the header and the first CHANNELDATA_KEPT application bytes.
        channel, length = struct.unpack_from("!HH", data)
        return ChannelData(channel, length, data[4:], (), False)
    return safe_text(data)


def message_summary(message: StunMessage) -> str:
    """The key facts of a STUN message in one line (addresses, error, lifetime, user)."""
    parts: list[str] = []
    code = error_code(message) if message.cls == MessageClass.ERROR else None
    if code:
        parts.append(f"{code[0]} {safe_text(code[1])}".rstrip())
    relayed = xor_relayed(message)
    if relayed:
        parts.append(f"relayed {relayed}")
    mapped = xor_mapped(message)
    if mapped:
        parts.append(f"mapped {mapped}")
    peers = xor_peers(message)
    if peers:
        parts.append("peer " + ", ".join(str(p) for p in peers))
    channel = channel_number(message)
    if channel is not None:
        parts.append(f"ch 0x{channel:04x}")
    life = lifetime(message)
    if life is not None:
        parts.append(f"lifetime {life}s")
    user = username(message)
    if user:
        parts.append(f"user {safe_text(user)}")
    if use_candidate(message):
        parts.append("USE-CANDIDATE")
    if message.findings:
        parts.append("! " + " ".join(message.findings))
    return "  ".join(parts)


SUMMARY_WORDS = (
    "relayed", "mapped", "peer", "ch", "lifetime", "user", "use-candidate", "!", "rtt", "ms",
    "retransmission)", "retransmissions)", "[via", "b", "undecodable:",
    *(f"{tunnel}]" for tunnel in TUNNELS if tunnel), *FINDINGS, *FAILURES,
)
"""Every word, lower-cased, that :func:`message_summary` and :func:`row_summary` print themselves
(the rest is numbers, addresses and the wire's USERNAME and reason phrase)."""

_NUMBER_CHARS = frozenset("0123456789abcdefx.:[],()+-s")
"""Characters of the numbers a summary prints: addresses (``[::1]:3478,`` in a peer list),
``0x4000``, ``600s``, error codes, ``-0.5`` ms, ``(+2``, ChannelData's length."""


def may_be_number(word: str) -> bool:
    """Whether ``word`` (lower-case) can be part of a number a summary prints.

    A word that is neither this nor part of one of :data:`SUMMARY_WORDS` can only come from the
    wire: a USERNAME or an ERROR-CODE reason phrase (RFC 8489 §14.3, §14.8), or an ICMP or
    undecodable row's text.
    """
    return set(word) <= _NUMBER_CHARS


class Summaries:
    """Row -> summary text, with a small LRU (only visible rows are ever asked for)."""

    def __init__(self, index: MessageIndex, size: int = 2048) -> None:
        self._index = index
        self._size = size
        self._cache: OrderedDict[tuple[int, int, int], str] = OrderedDict()

    def __call__(self, row: int) -> str:
        index = self._index
        # The pairing of a request can change while loading: it is part of the key.
        key = (row, index.partner[row], index.retransmissions[row])
        text = self._cache.get(key)
        if text is not None:
            self._cache.move_to_end(key)
            return text
        text = row_summary(index, row)
        self._cache[key] = text
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return text


def row_summary(index: MessageIndex, row: int) -> str:
    """The row's one-line summary (decoded again from the spool; :class:`Summaries` caches it)."""
    decoded = decode_row(index, row)
    if isinstance(decoded, str):
        return decoded
    if isinstance(decoded, DecodeFailure):
        return f"undecodable: {decoded.reason}"
    parts: list[str] = []
    partner = index.partner[row]
    retx = index.retransmissions[row]
    if isinstance(decoded, ChannelData):
        parts.append(f"ch 0x{decoded.channel:04x}  {decoded.length} B")
    else:
        summary = message_summary(decoded)
        if summary:
            parts.append(summary)
        if decoded.cls in (MessageClass.SUCCESS, MessageClass.ERROR) and partner >= 0:
            parts.append(f"rtt {(index.ts[row] - index.ts[partner]) * 1000:.1f} ms")
    if retx:
        parts.append(f"(+{retx} retransmission{'s' if retx > 1 else ''})")
    tunnel = index.tunnel(row)
    if tunnel:
        parts.append(f"[via {tunnel}]")
    return "  ".join(parts)
