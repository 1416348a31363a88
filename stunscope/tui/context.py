"""What the filter language learns from the analysis: verdict evidence, ICE sessions, allocations.

ICE sessions and TURN allocations are numbered from 1 in the analysis' order (the order the ICE
and TURN views list them). A session's messages are those whose USERNAME is
``remote_ufrag:local_ufrag`` or the reverse (RFC 8445 §7.2.2), responses inheriting it from their
request; an allocation's are those between its client and server, and between its relayed
address and its peers.

Free text (:class:`TextMatch`) matches a row's label, addresses and summary. Building a summary
means decoding the message again, which takes seconds over a million rows, so only the rows whose
summary may hold the word are built: labels and addresses come from the index columns, words can
only come from a USERNAME or a reason phrase (which the index says a row has) unless a summary
prints them itself, and numbers are looked for in the message bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any

from stunscope.analysis.results import Allocation, Analysis, IceSession
from stunscope.tui.index import TUNNELS, MessageIndex, RowKind
from stunscope.tui.summary import SUMMARY_WORDS, label_of, may_be_number, row_label, row_summary
from stunscope.wire.attributes import decode_address, decode_xor_address
from stunscope.wire.message import HEADER_LEN, Endpoint, MessageClass
from stunscope.wire.registry import ERROR_REASONS
from stunscope.wire.text import safe_text

_CHUNK = 8192
"""Rows worked out at once by a free-text match."""
_SEEN = 100_000
"""At most this many attribute verdicts are remembered."""
_TLV = struct.Struct("!HH")
_TEXT_KINDS = RowKind.UNREACHABLE
"""This kind and the next (undecodable) have a summary that is all text from the capture."""


def session_usernames(session: IceSession) -> set[str]:
    """USERNAME values a session's checks carry, in both directions."""
    local, remote = session.local_ufrag, session.remote_ufrag
    return {f"{remote}:{local}", f"{local}:{remote}"}


def allocation_endpoints(allocation: Allocation) -> set[str]:
    """Client, server, relayed address and every peer of an allocation, as ``ip:port`` text."""
    ends = {allocation.client, allocation.server}
    if allocation.relayed:
        ends.add(allocation.relayed)
    ends.update(c.peer for c in allocation.channels)
    ends.update(p.peer for p in allocation.peers)
    return ends


class AnalysisContext:
    """A :class:`~stunscope.tui.filter.FilterContext` over an index and its latest analysis."""

    def __init__(self, index: MessageIndex, analysis: Analysis | None) -> None:
        self.index = index
        self.analysis = analysis

    def verdict_frames(self, code: str) -> Collection[int]:
        """Evidence frames of every verdict with ``code``."""
        if self.analysis is None:
            return ()
        return {f for v in self.analysis.verdicts if v.code == code for f in v.frames}

    def session_usernames(self, number: int) -> Collection[str]:
        """USERNAMEs of ICE session ``number`` (1-based); empty when there is no such session."""
        sessions = self.analysis.ice if self.analysis else ()
        return session_usernames(sessions[number - 1]) if 0 < number <= len(sessions) else ()

    def allocation_endpoints(self, number: int) -> Collection[Endpoint]:
        """Endpoints of TURN allocation ``number`` (1-based) that appear in the index."""
        allocations = self.analysis.allocations if self.analysis else ()
        if not 0 < number <= len(allocations):
            return ()
        wanted = allocation_endpoints(allocations[number - 1])
        return [e for e in self.index.endpoints if str(e) in wanted]

    def row_text(self, row: int) -> str:
        """Label, addresses and summary of a row (what free text matches)."""
        index = self.index
        return " ".join((
            row_label(index, row),
            str(index.endpoints[index.src[row]]),
            str(index.endpoints[index.dst[row]]),
            row_summary(index, row),
        ))

    def text_match(self, needle: str) -> TextMatch:
        """A predicate: does the lower-cased :meth:`row_text` of a row contain ``needle``
        (lower-case)?"""
        return TextMatch(self, needle)


class TextMatch:
    """``needle in context.row_text(row).lower()``, building the text only for rows that may match.

    The row text is ``label src dst summary``: a word without a space lies within one of them. A
    label or address that holds it settles the row (both come from the index columns). Otherwise
    only the rows whose summary may hold the word are built:

    - the rows with a USERNAME that holds it (a response carries its request's in the index),
      the error responses whose code or reason phrase may (RFC 8489 §14.8, found in the bytes),
      and the ICMP and undecodable rows, whose summary is all text from the capture;
    - for a word that may be part of a word the summary prints itself
      (:data:`~stunscope.tui.summary.SUMMARY_WORDS`), the rows that may print that word
      (:data:`_PRINTED_WHERE`), or every row for a finding;
    - for a word made of digits and address characters, the rows that may print it as a number:
      a round trip time or a retransmission count (from the index), an address, channel or
      lifetime attribute (found in the message bytes), a ChannelData header.

    A needle with spaces is looked for by its longest word, then in the whole text. Rows are
    worked out a chunk at a time, from the row asked about on (or back, for a search going up),
    so a live capture's new rows are worked out once.
    """

    def __init__(self, context: AnalysisContext, needle: str) -> None:
        self._context = context
        self._index = context.index
        self._needle = needle
        self._word = word = max(needle.split(" "), key=len)
        self._settled = word == needle
        """A label or address holding the word holds the needle."""
        printed = [known for known in SUMMARY_WORDS if word in known]
        self._everywhere = any(known not in _PRINTED_WHERE for known in printed)
        """The word may be part of a summary word that any row may print."""
        self._printed = set() if self._everywhere else {_PRINTED_WHERE[k] for k in printed}
        """Else, where the summary words that hold it may be printed."""
        self._number = may_be_number(word)
        self._labels = _LabelHits(word)
        self._endpoints = b""
        """Per interned endpoint: 1 when its text holds the word (grows with the index)."""
        self._users = b""
        """Per interned USERNAME: 1 when its display text holds the word."""
        self._seen: dict[bytes, bool] = {}
        """Attribute bytes (type first) -> whether they print the word; a ChannelData header too."""
        self._state: tuple[range, set[int]] = (range(0), set())
        """The rows last worked out, and those of them that match."""

    def __call__(self, row: int) -> bool:
        """Whether published ``row`` (below ``index.count``) matches."""
        chunk, hits = self._state  # one read: a refolded view may scan in another thread
        if row not in chunk:
            if row < chunk.start:  # a search going up
                chunk = range(max(0, row - _CHUNK + 1), row + 1)
            else:
                chunk = range(row, min(row + _CHUNK, self._index.count))
            hits = self._matches(chunk) if chunk else set()
            self._state = (chunk, hits)
        return row in hits

    def _matches(self, rows: range) -> set[int]:
        sure = self._in_label_or_address(rows)
        maybe = set(rows) if self._everywhere else self._in_summary(rows)
        for where in self._printed:
            maybe |= where(self._index, rows)
        if self._settled:
            return sure | {row for row in maybe - sure if self._in_text(row)}
        return {row for row in maybe | sure if self._in_text(row)}

    def _in_label_or_address(self, rows: range) -> set[int]:
        index = self._index
        kind, method, cls, src, dst = index.kind, index.method, index.cls, index.src, index.dst
        labels = self._labels
        found = {row for row in rows if labels[kind[row], method[row], cls[row]]}
        ends = self._endpoints = self._grown(self._endpoints, index.endpoints, str)
        if 1 in ends:
            found.update(row for row in rows if ends[src[row]] or ends[dst[row]])
        return found

    def _in_summary(self, rows: range) -> set[int]:
        """Rows whose summary may hold the word, when the summary does not print it itself."""
        index = self._index
        kind, error, user = index.kind, index.error, index.user
        users = self._users = self._grown(self._users, index.usernames, safe_text)
        if 1 in users:
            found = {r for r in rows if kind[r] >= _TEXT_KINDS or users[user[r]]}
        else:
            found = {r for r in rows if kind[r] >= _TEXT_KINDS}
        word, seen = self._word, self._seen
        found.update(r for r in rows if error[r] and (
            word in str(error[r]) or _reason_may_hold(index.message_bytes(r), word, seen)))
        if self._number:
            found |= self._in_numbers(rows)
        return found

    def _in_numbers(self, rows: range) -> set[int]:
        """Rows that may print the word as a number (a superset: each is then checked)."""
        index, word = self._index, self._word
        ts, partner, cls, retx = index.ts, index.partner, index.cls, index.retransmissions
        found = {r for r in rows if partner[r] >= 0 and cls[r] >= MessageClass.SUCCESS
                 and word in f"{(ts[r] - ts[partner[r]]) * 1000:.1f}"}
        found.update(r for r in rows if retx[r] and word in f"(+{retx[r]}")
        return found | _numbers_in_bytes(index, rows, word, self._seen)

    def _grown(self, hits: bytes, texts: Sequence[Any], show: Callable[[Any], str]) -> bytes:
        """``hits`` for every one of ``texts`` (which the loader may have grown); a new object,
        so that another thread holding the old one still sees it consistent."""
        if len(hits) == len(texts):
            return hits
        word = self._word
        return hits + bytes(word in show(text).lower() for text in texts[len(hits):])

    def _in_text(self, row: int) -> bool:
        return self._needle in self._context.row_text(row).lower()


class _LabelHits(dict[tuple[int, int, int], bool]):
    """(kind, method, class) -> whether the row label holds the word, worked out once a key."""

    def __init__(self, word: str) -> None:
        super().__init__()
        self._word = word

    def __missing__(self, key: tuple[int, int, int]) -> bool:
        hit = self[key] = self._word in label_of(key).lower()
        return hit


_ADDRESS_TYPES = frozenset({0x0001, 0x0012, 0x0016, 0x0020, 0x8020})
"""MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS and its pre-RFC 5389
0x8020: every address a summary prints (RFC 8489 §14.1-§14.2, RFC 8656 §18.3, §18.5)."""
_CHANNEL_NUMBER, _LIFETIME = 0x000C, 0x000D
_ERROR_CODE_TYPE = b"\x00\x09"
_CHANNEL_HEADER_CHARS = frozenset("0123456789abcdefx")
"""What a ChannelData summary prints its channel (``0x4000``) and length with."""
_SIZES = {**dict.fromkeys(_ADDRESS_TYPES, (8, 20)), _CHANNEL_NUMBER: (4,), _LIFETIME: (4,)}
"""The value sizes at which those attributes print: an IPv4 or IPv6 address (RFC 8489 §14.1),
a CHANNEL-NUMBER or LIFETIME (RFC 8656 §18.1-§18.2)."""
_HEADER_SHAPE = bytes(
    0 if byte in (0x00, 0x80) else 1 if byte in {t & 0xFF for t in _SIZES} else
    2 if byte in (4, 8, 20) else 3
    for byte in range(256)
)
_SHAPE = b"\x00\x01\x00\x02"
"""Message bytes translated through ``_HEADER_SHAPE`` show this wherever the header of one of
those attributes may be (and elsewhere too): a fast literal search instead of a slow pattern."""


def _spooled(index: MessageIndex, rows: range) -> tuple[bytes, int]:
    """The spool bytes from the first message of ``rows`` to the end of the last, and where
    they start in the spool."""
    offset, length = index.offset, index.length
    base = offset[rows[0]]
    return index.spool.read(base, offset[rows[-1]] + length[rows[-1]] - base), base


def _found(data: bytes, pattern: bytes) -> Iterator[int]:
    """Every place ``pattern`` starts in ``data``, overlapping or not."""
    at = data.find(pattern)
    while at >= 0:
        yield at
        at = data.find(pattern, at + 1)


def _in_stun(
    index: MessageIndex, rows: range, base: int, places: Iterable[int]
) -> Iterator[tuple[int, int]]:
    """(place, row) for every place (ascending, in spool bytes from ``base``) that lies in the
    message of a STUN row of ``rows``."""
    offset, length, kind = index.offset, index.length, index.kind
    row, last = rows[0], rows[-1]
    for at in places:
        while row < last and offset[row] + length[row] - base <= at:
            row += 1
        if offset[row] - base <= at and kind[row] <= RowKind.CLASSIC:
            yield at, row


def _numbers_in_bytes(
    index: MessageIndex, rows: range, word: str, seen: dict[bytes, bool]
) -> set[int]:
    """Rows of ``rows`` whose message bytes hold a number that, printed, holds ``word``.

    Every attribute-shaped header of those types and sizes counts, aligned or not, read both
    plain and XOR-ed (RFC 8489 §14.2), so every address, channel and lifetime a summary can print
    is seen; so does every ChannelData header (RFC 8656 §12.4). ``seen`` remembers the verdict on
    an attribute with the header bytes it is XOR-ed with, and on a ChannelData header.
    """
    offset, kind = index.offset, index.kind
    blob, base = _spooled(index, rows)
    found = set()
    for row in rows if set(word) <= _CHANNEL_HEADER_CHARS else ():
        if kind[row] == RowKind.CHANNELDATA:
            start = offset[row] - base
            header = blob[start:start + 4]
            hit = seen.get(header)
            if hit is None:
                channel, size = _TLV.unpack(header)
                hit = seen[header] = word in f"0x{channel:04x}" or word in str(size)
            if hit:
                found.add(row)
    for at, row in _in_stun(index, rows, base, _found(blob.translate(_HEADER_SHAPE), _SHAPE)):
        attr_type, size = _TLV.unpack_from(blob, at)
        if row in found or size not in _SIZES.get(attr_type, ()):
            continue
        start = offset[row] - base
        attribute = blob[at:at + 4 + size] + blob[start + 4:start + size]
        hit = seen.get(attribute)
        if hit is None:
            if len(seen) > _SEEN:
                seen.clear()
            hit = seen[attribute] = _prints(attribute, size, word)
        if hit:
            found.add(row)
    return found


RowsWhere = Callable[[MessageIndex, range], set[int]]
"""Which of some rows may print a summary word."""


def _with_attributes(*types: int) -> RowsWhere:
    """Rows whose STUN message bytes hold a header of one of ``types`` anywhere, of a size at
    which it prints (see :data:`_SIZES`; any size for a flag): those that may have such an
    attribute."""
    patterns = [_TLV.pack(attr_type, size) if attr_type in _SIZES else attr_type.to_bytes(2, "big")
                for attr_type in types for size in _SIZES.get(attr_type, (0,))]

    def rows_with(index: MessageIndex, rows: range) -> set[int]:
        blob, base = _spooled(index, rows)
        return {row for pattern in patterns
                for _, row in _in_stun(index, rows, base, _found(blob, pattern))}

    return rows_with


def _where(test: Callable[[MessageIndex, int], object]) -> RowsWhere:
    """Rows for which ``test(index, row)`` holds."""
    return lambda index, rows: {row for row in rows if test(index, row)}


_ANSWERED = _where(lambda index, r: index.partner[r] >= 0 and index.cls[r] >= MessageClass.SUCCESS)
_RETRANSMITTED = _where(lambda index, r: index.retransmissions[r])
_TUNNELLED = _where(lambda index, r: index.tunnel(r))
_PRINTED_WHERE: dict[str, RowsWhere] = {
    "relayed": _with_attributes(0x0016),
    "mapped": _with_attributes(0x0020, 0x8020, 0x0001),
    "peer": _with_attributes(0x0012),
    "lifetime": _with_attributes(_LIFETIME),
    "use-candidate": _with_attributes(0x0025),
    "user": _where(lambda index, r: index.user[r]),
    "rtt": _ANSWERED,
    "retransmission)": _RETRANSMITTED,
    "retransmissions)": _RETRANSMITTED,
    "[via": _TUNNELLED,
    **{f"{tunnel}]": _TUNNELLED for tunnel in TUNNELS if tunnel},
}
"""Summary words -> the rows that may print them: a STUN attribute's name where the message may
have it (RFC 8489 §14, RFC 8656 §18, RFC 8445 §16.1), ``user`` where the index has a USERNAME,
the round trip time on answers, the retransmission count, the tunnel. Other summary words (the
findings, ``!``) may be printed on any row."""


def _reason_may_hold(data: bytes, word: str, seen: dict[bytes, bool]) -> bool:
    """Whether an ERROR-CODE in message bytes ``data`` may print a reason phrase that holds
    ``word``: its own text (RFC 8489 §14.8) or the registry's for its code. Every header of that
    type counts, aligned or not, its value cut at the message's end as the decoder cuts it."""
    end = min(len(data), HEADER_LEN + int.from_bytes(data[2:4], "big"))
    at = data.find(_ERROR_CODE_TYPE)
    while 0 <= at <= end - 4:
        attribute = data[at:min(at + 4 + int.from_bytes(data[at + 2:at + 4], "big"), end)]
        hit = seen.get(attribute)
        if hit is None:
            if len(seen) > _SEEN:
                seen.clear()
            hit = seen[attribute] = len(attribute) >= 8 and (
                word in safe_text(attribute[8:]).lower()
                or word in ERROR_REASONS.get((attribute[6] & 7) * 100 + attribute[7], "").lower())
        if hit:
            return True
        at = data.find(_ERROR_CODE_TYPE, at + 1)
    return False


def _prints(attribute: bytes, size: int, word: str) -> bool:
    """Whether the attribute (header, value, then the message's bytes 4 on that XOR it) prints
    a number that holds ``word``: an address plain or XOR-ed, a channel number, a lifetime."""
    attr_type = _TLV.unpack_from(attribute)[0]
    value = attribute[4:4 + size]
    if attr_type in _ADDRESS_TYPES:
        key = attribute[4 + size:]
        shown = (decode_address(value), decode_xor_address(value, key))
        return any(word in f"{e},".lower() for e in shown if isinstance(e, Endpoint))
    if size != 4:
        return False
    if attr_type == _CHANNEL_NUMBER:
        return word in f"0x{int.from_bytes(value[:2], 'big'):04x}"
    return word in f"{int.from_bytes(value, 'big')}s"
