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

from typing import Any

from stunscope.capture.events import Event, MessageEvent, Undecodable, Unreachable
from stunscope.wire.attributes import attribute_value, error_code, xor_mapped, xor_peers, xor_relayed
from stunscope.wire.integrity import Keyring, check_fingerprint, check_integrity
from stunscope.wire.message import ChannelData, MessageClass, StunMessage
from stunscope.wire.registry import ATTRIBUTES, attr_name, method_name
from stunscope.wire.text import safe_text

__all__ = ["MessageFormatter", "event_line", "event_to_json", "message_json"]

_REQUEST = MessageClass.REQUEST
_RESPONSES = (MessageClass.SUCCESS, MessageClass.ERROR)
_USERNAME, _REALM = 0x0006, 0x0014
_CHANNEL_NUMBER = 0x000C
_TEXT_KINDS = frozenset({"text", "nonce"})
_TEXT_TYPES = frozenset(code for code, spec in ATTRIBUTES.items() if spec.kind in _TEXT_KINDS)
_DEFAULT_PENDING = 65536
"""Requests remembered for RTT/integrity: 65,536 outstanding transactions is far more than any
client keeps in flight (RFC 8489 §6.2.1 paces new transactions), and caps memory at a few MB."""


def _clean(value: Any) -> Any:
    """``value`` with every string inside passed through ``safe_text``."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _attributes(msg: StunMessage) -> list[dict[str, Any]]:
    """The contract's ``attributes`` list: ``{type, name, offset, length, value}`` in wire order."""
    out = []
    for attr in msg.attributes:
        value = attribute_value(msg, attr)
        if attr.type in _TEXT_TYPES or isinstance(value, dict):
            value = _clean(value)
        out.append({"type": attr.type, "name": attr_name(attr.type), "offset": attr.offset,
                    "length": attr.length, "value": value})
    return out


def _first_text(msg: StunMessage, attr_type: int) -> str | None:
    """First USERNAME/REALM value as text (the bytes the key derivation uses), or None."""
    for attr in msg.attributes:
        if attr.type == attr_type:
            return attr.raw.decode("utf-8", "backslashreplace")
    return None


def message_json(msg: StunMessage, keyring: Keyring | None = None, username: str | None = None,
                 realm: str | None = None) -> dict[str, Any]:
    """The message part of the JSON contract for one STUN or classic STUN message: ``kind``,
    ``method``, ``class``, ``txid``, ``mapped``, ``relayed``, ``peers``, ``error_code``,
    ``fingerprint``, ``integrity``, ``channel`` (None), ``tunnel`` (None), ``findings``,
    ``attributes``, ``length``. ``username``/``realm`` are the request's, for a response."""
    mapped = xor_mapped(msg)
    relayed = xor_relayed(msg)
    err = error_code(msg)
    return {
        "kind": "stun" if msg.magic else "classic-stun", "method": method_name(msg.method),
        "class": msg.cls.label, "txid": msg.txid.hex(),
        "mapped": str(mapped) if mapped is not None else None,
        "relayed": str(relayed) if relayed is not None else None,
        "peers": [str(p) for p in xor_peers(msg)],
        "error_code": err[0] if err is not None else None,
        "fingerprint": check_fingerprint(msg),
        "integrity": check_integrity(msg, keyring, username, realm),
        "channel": None, "tunnel": None, "findings": list(msg.findings),
        "attributes": _attributes(msg), "length": msg.length,
    }


class MessageFormatter:
    """Formats a capture's events in order, remembering recent requests by transaction id.

    ``keyring`` verifies MESSAGE-INTEGRITY(-SHA256); without it a signed message is ``no-key``.
    ``max_pending`` bounds the request table (oldest evicted first; evictions are counted in
    ``evicted``), so memory does not grow with the capture.
    """

    def __init__(self, keyring: Keyring | None = None, max_pending: int = _DEFAULT_PENDING) -> None:
        self.keyring = keyring
        self.max_pending = max_pending
        self.evicted = 0
        self.first_ts: float | None = None
        self._requests: dict[bytes, tuple[float, str | None, str | None]] = {}

    def _track(self, event: MessageEvent, msg: StunMessage) -> tuple[float | None, str | None, str | None]:
        """Remember a request; for a response return (rtt_ms, request USERNAME, request REALM)."""
        cls = msg.cls
        if cls is _REQUEST:
            requests = self._requests
            if msg.txid not in requests:
                if len(requests) >= self.max_pending:
                    del requests[next(iter(requests))]
                    self.evicted += 1
                requests[msg.txid] = (event.ts, _first_text(msg, _USERNAME), _first_text(msg, _REALM))
            return None, None, None
        if cls in _RESPONSES:
            seen = self._requests.get(msg.txid)
            if seen is not None:
                return round((event.ts - seen[0]) * 1000.0, 3), seen[1], seen[2]
        return None, None, None

    def to_json(self, event: Event) -> dict[str, Any]:
        """The JSON object of one event (module doc); call in capture order."""
        if self.first_ts is None:
            self.first_ts = event.ts
        cls = event.__class__
        if cls is MessageEvent:
            msg = event.message
            if msg.__class__ is ChannelData:
                return {
                    "frame": event.frame, "ts": event.ts, "src": str(event.src), "dst": str(event.dst),
                    "transport": event.transport, "kind": "channeldata", "method": None, "class": None,
                    "txid": None, "mapped": None, "relayed": None, "peers": [], "error_code": None,
                    "fingerprint": None, "integrity": None, "channel": msg.channel,
                    "tunnel": event.tunnel, "findings": list(msg.findings), "attributes": [],
                    "length": msg.length, "rtt_ms": None, "peer": None,
                }
            rtt, username, realm = self._track(event, msg)
            obj = {"frame": event.frame, "ts": event.ts, "src": str(event.src), "dst": str(event.dst),
                   "transport": event.transport}
            obj.update(message_json(msg, self.keyring, username, realm))
            obj["channel"] = event.channel
            obj["tunnel"] = event.tunnel
            obj["rtt_ms"] = rtt
            obj["peer"] = str(event.peer) if event.peer is not None else None
            return obj
        if cls is Undecodable:
            failure = event.failure
            return {
                "frame": event.frame, "ts": event.ts, "src": str(event.src), "dst": str(event.dst),
                "transport": event.transport, "kind": "undecodable", "findings": [failure.reason],
                "error": safe_text(failure.detail), "offset": failure.offset,
            }
        return {
            "frame": event.frame, "ts": event.ts, "src": str(event.src), "dst": str(event.dst),
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
        rtt, username, realm = self._track(event, msg)
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
        for attr in msg.attributes:
            if attr.type == _CHANNEL_NUMBER:
                number = attribute_value(msg, attr)
                words.append(f"channel=0x{number:04x}" if isinstance(number, int) else "channel=malformed")
        if rtt is not None:
            words.append(f"rtt={rtt:.1f}ms")
        fp = check_fingerprint(msg)
        if fp is not None:
            words.append(f"fp={fp}")
        mi = check_integrity(msg, self.keyring, username, realm)
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
