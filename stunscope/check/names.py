"""The names a rule can use: the analysis JSON contract (DESIGN.md) plus a few friendly extras.

Each object kind lists its fields. A field whose kind is ``[kind]`` holds a list of such objects,
``kind`` one such object, ``None`` a plain value. Computed fields (``ice.connected``,
``pair.relayed``, ``integrity.valid``, ...) are listed in ``COMPUTED`` with the function that
derives them from the JSON, so a saved ``analyze --format json`` baseline answers them as well as a
live analysis. Every list also answers ``.count``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

from stunscope.check import message_names

Obj = dict[str, Any]

# kind -> field -> child kind ("[kind]" for lists of objects, None for values).
FIELDS: dict[str, dict[str, str | None]] = {
    "analysis": {
        "schema": None, "capture": "capture", "transactions": "[transaction]",
        "servers": "[server]", "allocations": "[allocation]", "ice": "[ice]", "nat": "[nat]",
        "verdicts": "[verdict]",
    },
    "capture": {
        "file": None, "frames": None, "messages": None, "undecodable": None, "unreachable": None,
        "first_ts": None, "last_ts": None, "evictions": "counts", "complete": None,
    },
    "transaction": {
        "txid": None, "method": None, "client": None, "server": None, "transport": None,
        "via": None, "request_frames": None, "response_frame": None, "outcome": None,
        "error_code": None, "error_reason": None, "rtt_ms": None, "rtt_last_ms": None,
        "retransmissions": None, "first_ts": None, "ended_by": None, "timing": None, "ice": None,
    },
    "server": {
        "server": None, "requests": None, "success": None, "errors": None, "timeouts": None,
        "success_rate": None, "rtt_ms": "rtt",
    },
    "rtt": {"count": None, "p50": None, "p95": None, "max": None},
    "allocation": {
        "client": None, "server": None, "transport": None, "relayed": None, "mapped": None,
        "lifetime_s": None, "state": None, "first_frame": None, "username": None, "realm": None,
        "challenges": None, "auth_failures": None, "stale_nonces": None, "refreshes": None,
        "expires_ts": None, "deallocated_frame": None, "permissions": "[permission]",
        "channels": "[channel]", "peers": "[peer]", "tcp_connections": "[tcp_connection]",
    },
    "permission": {"peer_ip": None, "installed_frame": None, "refreshes": None, "expires_ts": None,
                   "state": None},
    "channel": {"number": None, "peer": None, "bound_frame": None, "refreshes": None,
                "expires_ts": None, "state": None, "packets": None, "bytes": None},
    "peer": {"peer": None, "to_peer_packets": None, "to_peer_bytes": None, "from_peer_packets": None,
             "from_peer_bytes": None, "channel_packets": None, "indication_packets": None},
    "tcp_connection": {"connection_id": None, "peer": None, "initiated_by": None, "bound": None,
                       "frames": None},
    "ice": {
        "local_ufrag": None, "remote_ufrag": None, "controlling": None, "state": None,
        "pairs": "[pair]", "selected_pair": "pair", "relayed": None, "role_conflicts": None,
        "role_switches": None, "tie_breakers": "counts", "consent": None, "first_frame": None,
    },
    "pair": {
        "local": None, "remote": None, "state": None, "nominated": None, "local_type": None,
        "remote_type": None, "rtt_ms": None, "checks": None, "retransmissions": None,
        "successes": None, "failure": None, "priority": "priority", "first_frame": None,
        "frames": None, "sdp_priority": "priority", "goog_pings": None,
        "goog_ping_successes": None,
    },
    "priority": {"value": None, "type_preference": None, "local_preference": None, "component": None},
    "nat": {
        "local": None, "mapped": None, "bindings": "[binding]", "mapping_behavior": None,
        "filtering_behavior": None, "rfc3489_type": None, "reason": None, "first_frame": None,
        "hairpinning": "hairpinning", "mapping_lifetime": "mapping_lifetime",
    },
    "binding": {"server": None, "mapped": None, "frame": None},
    "hairpinning": {"result": None, "reason": None, "frames": None},
    "mapping_lifetime": {"min_s": None, "max_s": None, "reason": None, "frames": None},
    "verdict": {"code": None, "severity": None, "message": None, "frames": None, "count": None,
                "subject": None},
    "check": {"valid": None, "bad": None},
}

# Kinds whose objects are maps with any keys (eviction counts per table, tie-breakers per agent).
OPEN_KINDS = frozenset({"counts"})

# `messages`: the objects of `stunscope messages --format jsonl` (stunscope.check.message_names).
FIELDS["analysis"].update(message_names.TOP_LEVEL)
FIELDS.update(message_names.KINDS)

# Friendly singular spellings of the top-level lists.
ALIASES = {"transaction": "transactions", "allocation": "allocations", "verdict": "verdicts",
           "session": "ice", "sessions": "ice"}

# A computed field: (function(object, analysis) -> (value, evidence objects), kind, help text).
Computed = tuple[Callable[[Obj, Obj], tuple[Any, tuple[Obj, ...]]], "str | None", str]


def _selected(session: Obj, _root: Obj) -> tuple[Any, tuple[Obj, ...]]:
    """The session's selected pair as a pair object (the contract allows an object or an index)."""
    chosen = session.get("selected_pair")
    pairs = session.get("pairs") or []
    if isinstance(chosen, int) and not isinstance(chosen, bool) and 0 <= chosen < len(pairs):
        chosen = pairs[chosen]
    if isinstance(chosen, dict):
        return chosen, (chosen,)
    return None, (session,)


def _verdict_check(code: str) -> Callable[[Obj, Obj], tuple[Any, tuple[Obj, ...]]]:
    """A ``{valid, bad}`` fact from the verdicts with ``code`` (bad = frames they name)."""

    def fact(root: Obj, _root: Obj) -> tuple[Any, tuple[Obj, ...]]:
        found = tuple(v for v in root.get("verdicts") or [] if isinstance(v, dict) and v.get("code") == code)
        bad = sum(v.get("count") or len(v.get("frames") or []) or 1 for v in found)
        return {"valid": not found, "bad": bad}, found

    return fact


COMPUTED: dict[str, dict[str, Computed]] = {
    "analysis": {
        "integrity": (_verdict_check("bad-integrity"), "check",
                      "`integrity.valid`: no bad-integrity verdict; `integrity.bad`: frames with a "
                      "MESSAGE-INTEGRITY that did not verify (keys come from --credential/--sdp)"),
        "fingerprint": (_verdict_check("bad-fingerprint"), "check",
                        "`fingerprint.valid`: no bad-fingerprint verdict; `fingerprint.bad`: "
                        "frames with a wrong FINGERPRINT"),
    },
    "ice": {
        "connected": (lambda s, _r: (s.get("state") == "connected", (s,)), None,
                      "the session's state is connected"),
        "selected": (_selected, "pair", "the selected pair (null when none)"),
    },
    "pair": {
        "relayed": (lambda p, _r: ("relay" in (p.get("local_type"), p.get("remote_type")), (p,)),
                    None, "either candidate is a relayed one"),
        "types": (lambda p, _r: (f"{p.get('local_type')}/{p.get('remote_type')}", (p,)), None,
                  'local and remote candidate types, e.g. "host/srflx"'),
    },
}

LIST_FIELDS = {"count": "how many items the list holds"}


def field_kind(kind: str | None, name: str) -> tuple[bool, str | None, bool]:
    """How ``name`` reads on a ``kind`` object: (known, child kind, is a list of objects)."""
    if kind is None:
        return False, None, False
    if name in COMPUTED.get(kind, {}):
        return True, COMPUTED[kind][name][1], False
    child = FIELDS.get(kind, {}).get(name, "")
    if child == "" and kind == "analysis" and name in ALIASES:
        child = FIELDS["analysis"][ALIASES[name]]
    if child == "":
        return kind in OPEN_KINDS, None, False
    if child is not None and child.startswith("["):
        return True, child[1:-1], True
    return True, child, False


def scope_has(kind: str | None, name: str) -> bool:
    """True when ``name`` inside a ``where`` reads the current item rather than the top level.

    Open kinds answer any key, so there a top-level name (``verdicts``) keeps its top-level meaning.
    """
    if not field_kind(kind, name)[0]:
        return False
    return not (kind in OPEN_KINDS and name not in FIELDS.get(kind, {}) and field_kind("analysis", name)[0])


def known_names(kind: str | None) -> list[str]:
    """The names a ``kind`` object answers (for 'unknown name' messages and the help)."""
    if kind is None:
        return []
    return sorted([*FIELDS.get(kind, {}), *COMPUTED.get(kind, {})])


def help_text() -> str:
    """Every name, for ``stunscope check --help-rules``."""
    lines = []
    for kind, fields in FIELDS.items():
        if kind == "check" or kind in OPEN_KINDS:
            continue
        title = "top level" if kind == "analysis" else f"{kind} objects"
        lines.append(f"  {title}:")
        parts = [f"{name}{' (list)' if (child or '').startswith('[') else ''}" for name, child in fields.items()]
        lines.append(textwrap.fill(", ".join(parts), 96, initial_indent="    ", subsequent_indent="    "))
        for name, (_fn, _kind, text) in COMPUTED.get(kind, {}).items():
            lines.append(f"    {name}: {text}")
    lines.append("  aliases: " + ", ".join(f"{a} = {b}" for a, b in ALIASES.items()))
    lines.append("  every list: .count (" + LIST_FIELDS["count"] + ")")
    return "\n".join(lines)
