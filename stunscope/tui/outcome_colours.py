"""The colours of a message's outcome, shared by the timeline and the ladder.

Both widgets colour a message by the outcome of its transaction (success, error, timeout,
pending, none), indications apart and retransmissions dimmed. Each widget has its own component
classes (``timeline--success``, ``ladder--success``, ...); their rules come from here so the two
views cannot drift apart.
"""

from __future__ import annotations

_RULES = (
    ("success", "color: $text-success;"),
    ("error", "color: $text-error;"),
    ("timeout", "color: $text-warning;"),
    ("pending", "color: $foreground;"),
    (None, "color: $foreground;"),  # no transaction: the widget names this class
    ("indication", "color: $text-secondary;"),
    ("retransmission", "color: $foreground-muted; text-style: italic;"),
)


def outcome_classes(prefix: str, none: str) -> set[str]:
    """The component classes ``{prefix}--success`` ... with ``{prefix}--{none}`` for messages
    outside any transaction."""
    return {f"{prefix}--{name or none}" for name, _ in _RULES}


def outcome_css(widget: str, prefix: str, none: str) -> str:
    """The CSS rules of :func:`outcome_classes` for the widget type ``widget``."""
    return "".join(f"    {widget} > .{prefix}--{name or none} {{ {rule} }}\n"
                   for name, rule in _RULES)
