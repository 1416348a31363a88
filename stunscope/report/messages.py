"""The ``stunscope messages`` outputs: one JSON object or one text line per event.

JSON follows the v1 contract of DESIGN.md (``frame``, ``ts``, ``src``, ``dst``, ``transport``,
``kind``, ``method``, ``class``, ``txid``, ``mapped``, ``relayed``, ``peers``, ``error_code``,
``fingerprint``, ``integrity``, ``channel``, ``tunnel``, ``findings``, ``attributes``) and adds:

- ``length``: the header's length field (STUN body length, ChannelData data length);
- ``rtt_ms``: on a response whose request was seen (first transmission), else null;
- ``peer``: the carrier's XOR-PEER-ADDRESS for STUN tunnelled in a Send/Data indication.

Two more event kinds share the stream (documented additions): ``{"kind": "undecodable", ...,
"findings": [reason], "error": detail, "offset": n}`` for a payload that looked like STUN but
could not be decoded, and ``{"kind": "icmp-unreachable", "reporter", "icmp", ...}`` for an ICMP
error that quotes a flow (the quote is not counted as a message).

Wire strings (USERNAME, SOFTWARE, reason phrases, ...) pass through
:func:`~stunscope.wire.text.safe_text` in both outputs, so control and bidi-override characters
reach neither a terminal nor a log viewer raw.

Responses are matched to their request by transaction id in a bounded table
(:class:`MessageFormatter`): that gives the RTT and, for MESSAGE-INTEGRITY, the USERNAME/REALM
whose long-term key signs the response (RFC 8489 §9.2.4: responses carry neither).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from stunscope.capture.events import Event, MessageEvent, Undecodable, Unreachable
from stunscope.wire.attributes import (
    attribute_value,
    channel_number,
    error_code,
    username,
    xor_mapped,
    xor_peers,
    xor_relayed,
)
from stunscope.wire.integrity import Keyring, check_fingerprint, check_integrity
from stunscope.wire.message import ChannelData, Endpoint, MessageClass, StunMessage
from stunscope.wire.registry import ATTRIBUTES, METHODS, attr_name, method_name
from stunscope.wire.text import safe_text

__all__ = ["MessageFormatter", "event_line", "event_to_json", "message_json"]

_REQUEST = MessageClass.REQUEST
_RESPONSES = (MessageClass.SUCCESS, MessageClass.ERROR)
_USERNAME, _REALM = 0x0006, 0x0014
_WIRE_TEXT_KINDS = frozenset({"text", "nonce", "error-code", "address-error-code"})
"""Value kinds that carry sender-chosen text (RFC 8489 §14.3, §14.8-§14.10, §14.14)."""
_UNCACHEABLE_KINDS = frozenset({"data"})
_UNCACHEABLE_TYPES = frozenset({0x0008, 0x001C, 0xC060, 0x8028})
"""Values not worth caching: DATA is large, MESSAGE-INTEGRITY(-SHA256), GOOG-MESSAGE-INTEGRITY-32
and FINGERPRINT are unique per message. Everything else (USERNAME, PRIORITY, ICE-CONTROLLING, REALM, NONCE, LIFETIME...)
depends on its bytes only and repeats across messages."""
_XOR_KIND = "xor-address"
"""XOR addresses depend on their bytes only for IPv4 in a message with the magic cookie (the
key is the cookie, RFC 8489 §14.2); IPv6 and classic messages XOR with the transaction id."""
_IPV4_XOR_VALUE = 8

# Summary roles of the attributes that feed the contract's top-level keys.
_PEER, _FINGERPRINT, _INTEGRITY, _ERROR, _RELAYED, _MAPPED = 1, 2, 3, 4, 5, 6
_ROLES = {0x0012: _PEER, 0x8028: _FINGERPRINT, 0x0008: _INTEGRITY, 0x001C: _INTEGRITY, 0xC060: _INTEGRITY,
          0x0009: _ERROR, 0x0016: _RELAYED, 0x0020: _MAPPED, 0x8020: _MAPPED + 1, 0x0001: _MAPPED + 2}
"""``_MAPPED + rank``: the reflexive address preference of
:func:`~stunscope.wire.attributes.xor_mapped` (XOR-MAPPED-ADDRESS, then 0x8020, then MAPPED-ADDRESS)."""

_NEVER, _ALWAYS, _IF_IPV4_COOKIE = 0, 1, 2
"""Whether an attribute's decoded value may be cached by its type and bytes."""


def _cacheability(code: int, kind: str) -> int:
    if kind in _UNCACHEABLE_KINDS or code in _UNCACHEABLE_TYPES:
        return _NEVER
    return _IF_IPV4_COOKIE if kind == _XOR_KIND else _ALWAYS


_TypeInfo = tuple[str, int, bool, int]
"""(RFC name, cacheability, value carries wire text, summary role or 0) of an attribute type."""
_TYPE_INFO: dict[int, _TypeInfo] = {
    code: (spec.name, _cacheability(code, spec.kind), spec.kind in _WIRE_TEXT_KINDS, _ROLES.get(code, 0))
    for code, spec in ATTRIBUTES.items()
}
_CACHEABLE_LEN = 64
_CACHE_MAX = 4096
"""Decoded values kept per formatter (cleared when full): memory stays flat."""
_CLASS_LABELS = {cls: cls.label for cls in MessageClass}
_METHOD_NAMES = dict(METHODS)
_ENDPOINT_TEXT_MAX = 65536
_REQUEST_TTL_S = 64.0
"""Requests are forgotten 64 s (capture time) after they were first seen: a client gives up a
transaction after 39.5 s (RFC 8489 §6.2.1, Rc = 7 with RTO 500 ms; Ti = 39.5 s over TCP), so a
later answer has no transaction to belong to. Memory then follows the request rate, not the file
size."""
_DEFAULT_PENDING = 65536
"""Requests remembered for RTT/integrity: 65,536 outstanding transactions is far more than any
client keeps in flight (RFC 8489 §6.2.1 paces new transactions), and caps memory at a few MB."""


def _clean(value: Any) -> Any:
    """``value`` with every string inside passed through ``safe_text`` (printable ones as is)."""
    if isinstance(value, str):
        return value if value.isprintable() else safe_text(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _user_and_realm(msg: StunMessage) -> tuple[str | None, str | None]:
    """First USERNAME and REALM values as text (the bytes the key derivation uses), in one pass."""
    user = realm = None
    for attr in msg.attributes:
        if attr.type == _USERNAME and user is None:
            user = attr.raw.decode("utf-8", "backslashreplace")
        elif attr.type == _REALM and realm is None:
            realm = attr.raw.decode("utf-8", "backslashreplace")
    return user, realm


Summary = tuple[Any, Any, list[str], Any, Any, Any, list[dict[str, Any]]]
"""(mapped, relayed, peers, error_code, fingerprint, integrity, attributes) of one message."""


def _summarize(msg: StunMessage, keyring: Keyring | None, username: str | None, realm: str | None,
               cache: dict[tuple[int, bytes], Any] | None) -> Summary:
    """The contract's per-message fields, in one pass over the attributes.

    This is the hot path of ``messages --format jsonl``: each value is decoded once (or found in
    ``cache``, for attributes whose value depends only on their bytes) and the summary fields
    are picked from those values with the rules of the :mod:`stunscope.wire.attributes` helpers
    (only the first attribute of a type counts, a malformed value counts as absent; every
    well-formed XOR-PEER-ADDRESS is a peer).
    """
    attributes = []
    append = attributes.append
    mapped, mapped_rank, relayed, peers, err = None, 3, None, [], None
    has_fingerprint = signed = False
    firsts = 0  # bit per role (and mapped rank) already taken: only the first attribute counts
    magic = msg.magic
    for attr in msg.attributes:
        atype = attr.type
        info = _TYPE_INFO.get(atype)
        if info is None:  # unregistered: raw hex, nothing to clean or summarize
            append({"type": atype, "name": attr_name(atype), "offset": attr.offset,
                    "length": attr.length, "value": attribute_value(msg, attr)})
            continue
        name, cacheable, wire_text, role = info
        raw = attr.raw
        if cacheable and cache is not None and len(raw) <= _CACHEABLE_LEN and (
                cacheable == _ALWAYS or (magic and len(raw) == _IPV4_XOR_VALUE and raw[1] == 1)):
            key = (atype, raw)
            value = cache.get(key, cache)
            if value is cache:
                value = attribute_value(msg, attr)
                if wire_text:
                    value = _clean(value)
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                cache[key] = value
        else:
            value = attribute_value(msg, attr)
            if wire_text:
                value = _clean(value)
        append({"type": atype, "name": name, "offset": attr.offset, "length": attr.length, "value": value})
        if not role:
            continue
        if role == _PEER:
            if value.__class__ is str:
                peers.append(value)
        elif role == _FINGERPRINT:
            has_fingerprint = True
        elif role == _INTEGRITY:
            signed = True
        elif not firsts & (1 << role):
            firsts |= 1 << role
            if role == _ERROR:
                err = value.get("code") if value.__class__ is dict else None
            elif value.__class__ is str:  # a well-formed address (malformed ones are dicts)
                if role == _RELAYED:
                    relayed = value
                elif role - _MAPPED < mapped_rank:
                    mapped, mapped_rank = value, role - _MAPPED
    if signed:
        integrity = "no-key" if keyring is None else check_integrity(msg, keyring, username, realm)
    else:
        integrity = None
    fingerprint = check_fingerprint(msg) if has_fingerprint else None
    return mapped, relayed, peers, err, fingerprint, integrity, attributes


def message_json(msg: StunMessage, keyring: Keyring | None = None, username: str | None = None,
                 realm: str | None = None) -> dict[str, Any]:
    """The message part of the JSON contract for one STUN or classic STUN message: ``kind``,
    ``method``, ``class``, ``txid``, ``mapped``, ``relayed``, ``peers``, ``error_code``,
    ``fingerprint``, ``integrity``, ``channel`` (None), ``tunnel`` (None), ``findings``,
    ``attributes``, ``length``. ``username``/``realm`` are the request's, for a response."""
    mapped, relayed, peers, err, fingerprint, integrity, attributes = _summarize(
        msg, keyring, username, realm, None)
    return {
        "kind": "stun" if msg.magic else "classic-stun", "method": method_name(msg.method),
        "class": msg.cls.label, "txid": msg.txid.hex(), "mapped": mapped, "relayed": relayed,
        "peers": peers, "error_code": err, "fingerprint": fingerprint, "integrity": integrity,
        "channel": None, "tunnel": None, "findings": list(msg.findings), "attributes": attributes,
        "length": msg.length,
    }


class MessageFormatter:
    """Formats a capture's events in order, remembering recent requests by transaction id.

    ``keyring`` verifies MESSAGE-INTEGRITY(-SHA256) and GOOG-MESSAGE-INTEGRITY-32; without it a signed message is ``no-key``.
    Requests expire :data:`_REQUEST_TTL_S` after they were seen, and ``max_pending`` bounds the
    table besides (oldest evicted first, counted in ``evicted``), so memory does not grow with
    the capture.
    """

    def __init__(self, keyring: Keyring | None = None, max_pending: int = _DEFAULT_PENDING) -> None:
        self.keyring = keyring
        self.max_pending = max_pending
        self.evicted = 0
        self.first_ts: float | None = None
        # OrderedDict: popitem(last=False) is O(1); deleting the oldest key of a plain dict leaves
        # holes that every next(iter(d)) walks again, which made a 1M-packet run quadratic.
        self._requests: OrderedDict[bytes, tuple[float, str | None, str | None]] = OrderedDict()
        self._values: dict[tuple[int, bytes], Any] = {}
        self._endpoints: dict[Endpoint, str] = {}

    def _track(self, event: MessageEvent, msg: StunMessage) -> tuple[float | None, str | None, str | None]:
        """Remember a request; for a response return (rtt_ms, request USERNAME, request REALM)."""
        cls = msg.cls
        if cls is _REQUEST:
            requests = self._requests
            if msg.txid not in requests:
                horizon = event.ts - _REQUEST_TTL_S
                while requests and next(iter(requests.values()))[0] < horizon:
                    requests.popitem(last=False)
                if len(requests) >= self.max_pending:
                    requests.popitem(last=False)
                    self.evicted += 1
                requests[msg.txid] = (event.ts, *_user_and_realm(msg))
            return None, None, None
        if cls in _RESPONSES:
            seen = self._requests.get(msg.txid)
            if seen is not None:
                return round((event.ts - seen[0]) * 1000.0, 3), seen[1], seen[2]
        return None, None, None

    def _endpoint_text(self, endpoint: Endpoint) -> str:
        """``str(endpoint)``, memoised: a capture has few endpoints and many packets."""
        found = self._endpoints.get(endpoint)
        if found is None:
            if len(self._endpoints) >= _ENDPOINT_TEXT_MAX:
                self._endpoints.clear()
            found = self._endpoints[endpoint] = str(endpoint)
        return found

    def to_json(self, event: Event) -> dict[str, Any]:
        """The JSON object of one event (module doc); call in capture order."""
        if self.first_ts is None:
            self.first_ts = event.ts
        text = self._endpoint_text
        cls = event.__class__
        if cls is MessageEvent:
            frame, ts, src, dst, transport, kind, msg, tunnel, peer, channel, _ = event
            endpoints = self._endpoints
            src_text = endpoints.get(src) or text(src)
            dst_text = endpoints.get(dst) or text(dst)
            if msg.__class__ is ChannelData:
                return {
                    "frame": frame, "ts": ts, "src": src_text, "dst": dst_text, "transport": transport,
                    "kind": "channeldata", "method": None, "class": None, "txid": None, "mapped": None,
                    "relayed": None, "peers": [], "error_code": None, "fingerprint": None,
                    "integrity": None, "channel": msg.channel, "tunnel": tunnel,
                    "findings": list(msg.findings), "attributes": [], "length": msg.length,
                    "rtt_ms": None, "peer": None,
                }
            rtt, username, realm = self._track(event, msg)
            mapped, relayed, peers, err, fingerprint, integrity, attributes = _summarize(
                msg, self.keyring, username, realm, self._values)
            return {
                "frame": frame, "ts": ts, "src": src_text, "dst": dst_text, "transport": transport,
                "kind": kind, "method": _METHOD_NAMES.get(msg.method) or method_name(msg.method),
                "class": _CLASS_LABELS[msg.cls], "txid": msg.txid.hex(), "mapped": mapped, "relayed": relayed,
                "peers": peers, "error_code": err, "fingerprint": fingerprint, "integrity": integrity,
                "channel": channel, "tunnel": tunnel, "findings": list(msg.findings),
                "attributes": attributes, "length": msg.length, "rtt_ms": rtt,
                "peer": str(peer) if peer is not None else None,
            }
        if cls is Undecodable:
            failure = event.failure
            return {
                "frame": event.frame, "ts": event.ts, "src": text(event.src), "dst": text(event.dst),
                "transport": event.transport, "kind": "undecodable", "findings": [failure.reason],
                "error": safe_text(failure.detail), "offset": failure.offset,
            }
        return {
            "frame": event.frame, "ts": event.ts, "src": text(event.src), "dst": text(event.dst),
            "transport": event.transport, "kind": "icmp-unreachable", "reporter": event.reporter,
            "icmp": event.icmp,
        }

    def line(self, event: Event) -> str:
        """One text line for an event (no newline); call in capture order."""
        if self.first_ts is None:
            self.first_ts = event.ts
        head = (f"{event.frame:>6} {event.ts - self.first_ts:11.6f} "
                f"{event.src} → {event.dst} {event.transport}")
        cls = event.__class__
        if cls is Unreachable:
            return f"{head} ICMP {event.icmp} from {event.reporter} (quotes this flow; not a message)"
        if cls is Undecodable:
            failure = event.failure
            return f"{head} UNDECODABLE at byte {failure.offset}: {safe_text(failure.reason)} ({safe_text(failure.detail)})"
        msg = event.message
        tunnel = ""
        if event.tunnel == "channeldata":
            tunnel = f" [in channeldata 0x{event.channel:04x}]"
        elif event.tunnel is not None:
            tunnel = f" [in {event.tunnel} peer {event.peer}]" if event.peer else f" [in {event.tunnel}]"
        if msg.__class__ is ChannelData:
            line = f"{head}{tunnel} ChannelData 0x{msg.channel:04x} len={msg.length}"
        else:
            line = f"{head}{tunnel} {self._summary(event, msg)}"
        if msg.findings:
            line += "  ! " + " ".join(msg.findings)
        return line

    def _summary(self, event: MessageEvent, msg: StunMessage) -> str:
        """``Allocate error 401 Unauthorized tx=1a2b3c4d relayed=... rtt=12.3ms fp=ok mi=no-key``."""
        rtt, req_user, req_realm = self._track(event, msg)
        words = [method_name(msg.method), msg.cls.label]
        if event.kind == "classic-stun":
            words.append("(classic)")
        err = error_code(msg)
        if err is not None:
            words.append(f"{err[0]} {safe_text(err[1])}")
        words.append(f"tx={msg.txid.hex()[:8]}")
        mapped = xor_mapped(msg)
        if mapped is not None:
            words.append(f"mapped={mapped}")
        relayed = xor_relayed(msg)
        if relayed is not None:
            words.append(f"relayed={relayed}")
        words.extend(f"peer={peer}" for peer in xor_peers(msg))
        channel = channel_number(msg)
        if channel is not None:
            words.append(f"channel=0x{channel:04x}")
        user = username(msg)
        if user is not None:
            words.append(f"user={safe_text(user)}")
        if rtt is not None:
            words.append(f"rtt={rtt:.1f}ms")
        fp = check_fingerprint(msg)
        if fp is not None:
            words.append(f"fp={fp}")
        mi = check_integrity(msg, self.keyring, req_user, req_realm)
        if mi is not None:
            words.append(f"mi={mi}")
        return " ".join(words)


def event_to_json(event: Event, keyring: Keyring | None = None) -> dict[str, Any]:
    """The ``messages --format jsonl`` object of one event, without request context (no RTT,
    responses' integrity checked without the request's USERNAME/REALM). Use
    :class:`MessageFormatter` to format a whole capture."""
    return MessageFormatter(keyring).to_json(event)


def event_line(event: Event) -> str:
    """One text line for one event, without capture context (time relative to itself)."""
    return MessageFormatter().line(event)
