"""The names of ``messages``: one object per line of ``stunscope messages --format jsonl``.

The objects are those of the JSON Lines contract (DESIGN.md, "The JSON contract (v1)"), built by
:class:`stunscope.report.messages.MessageFormatter`: a STUN, classic STUN (RFC 3489) or
ChannelData message (RFC 8656 §12.4) has ``frame`` ... ``attributes`` plus ``length``,
``rtt_ms`` and ``peer``; the two other event kinds of the stream add ``error``/``offset``
(``kind`` "undecodable") and ``reporter``/``icmp`` (``kind`` "icmp-unreachable"). Attributes
are ``{type, name, offset, length, value}`` with the RFC spelling in ``name``
(``"REQUESTED-TRANSPORT"``, ``"SOFTWARE"``; RFC 8489 §18.3), so a rule asks for one with
``attributes.name has "SOFTWARE"`` or ``any attributes where name == "SOFTWARE" and ...``.

:mod:`stunscope.check.names` adds these kinds to its table; a saved analysis JSON has no
messages, so rules that read them need the capture (:mod:`stunscope.check.message_tally`).
"""

from __future__ import annotations

TOP_LEVEL: dict[str, str | None] = {"messages": "[message]"}
"""The top-level name: a list of message objects."""

KINDS: dict[str, dict[str, str | None]] = {
    "message": {
        "frame": None, "ts": None, "src": None, "dst": None, "transport": None, "kind": None,
        "method": None, "class": None, "txid": None, "mapped": None, "relayed": None,
        "peers": None, "error_code": None, "fingerprint": None, "integrity": None,
        "channel": None, "tunnel": None, "findings": None, "attributes": "[attribute]",
        "length": None, "rtt_ms": None, "peer": None, "error": None, "offset": None,
        "reporter": None, "icmp": None,
    },
    "attribute": {"type": None, "name": None, "offset": None, "length": None, "value": None},
}
"""Object kind -> field -> child kind, as in :data:`stunscope.check.names.FIELDS`."""
