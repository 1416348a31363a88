"""Which parts of a rule range over ``messages``, so that they can be computed in one pass.

A capture has up to millions of messages, so ``messages`` is never a list in memory: each part
of a rule that reads it must reduce the messages to one value or one truth, and is computed
while the messages stream by (:mod:`stunscope.check.message_tally`); the rest of the rule then
runs on the analysis JSON with those results in place. The parts (each a :class:`Reducer`):

- ``aggregate``: ``count|sum|min|max|avg|median|pNN(MESSAGES)``, and ``MESSAGES.count``;
- ``quantifier``: ``any|all|no MESSAGES``, ``... where COND``, ``... OP VALUE``;
- ``exists``: ``MESSAGES`` or ``MESSAGES OP VALUE`` (``has`` included) where a truth is
  expected: it holds when one value is true, as for any list.

``MESSAGES`` is a path that starts at the top-level ``messages`` (``messages``,
``messages.length``, ``messages.attributes.name``), optionally narrowed by ``where`` (whose
condition may use any name but ``messages``). Any other use is an :class:`ExpressionError` at
its column, before the capture is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from stunscope.check.expressions import (
    Call,
    Compare,
    Expr,
    ExpressionError,
    Logical,
    Not,
    Path,
    Quantified,
    Where,
)

AGGREGATE, QUANTIFIER, EXISTS = "aggregate", "quantifier", "exists"


@dataclass(frozen=True, slots=True)
class Reducer:
    """One part of a rule computed over the messages: its ``form``, the ``node`` it replaces
    and the ``stream``, the messages expression under it whose values it ranges over (a
    quantifier's ``where`` gives its subject: the condition is asked of each item)."""

    form: str
    node: Expr
    stream: Expr


def _children(node: Expr) -> tuple[Expr, ...]:
    if isinstance(node, Call):
        return (node.argument,)
    if isinstance(node, Where):
        return (node.subject, node.condition)
    if isinstance(node, (Compare, Logical)):
        return (node.left, node.right)
    if isinstance(node, Quantified):
        return (node.body,)
    if isinstance(node, Not):
        return (node.operand,)
    return ()


class _Planner:
    """Finds the reducers of one checked tree; ``paths`` are the ids of the paths that read the
    top-level ``messages`` (found by the name checker, which knows the scopes)."""

    def __init__(self, source: str, paths: frozenset[int]) -> None:
        self.source = source
        self.paths = paths
        self.found: list[Reducer] = []

    def fail(self, message: str, node: Expr) -> ExpressionError:
        return ExpressionError(message, node.column, self.source)

    def message_paths(self, node: Expr) -> list[Path]:
        """The paths under ``node`` (itself included) that read ``messages``."""
        found = [node] if isinstance(node, Path) and id(node) in self.paths else []
        for child in _children(node):
            found.extend(self.message_paths(child))
        return found  # type: ignore[return-value]

    def is_stream(self, node: Expr) -> bool:
        """``messages...`` (not ending in ``.count``), optionally narrowed by ``where``."""
        if isinstance(node, Path):
            return id(node) in self.paths and node.names[-1] != "count"
        return isinstance(node, Where) and self.is_stream(node.subject)

    def compared(self, node: Expr) -> bool:
        """``STREAM OP VALUE`` or ``VALUE OP STREAM`` (not a membership test in a stream)."""
        if not isinstance(node, Compare):
            return False
        if self.is_stream(node.left):
            return True
        return self.is_stream(node.right) and node.op not in ("in", "not in", "has")

    def stream_of(self, node: Expr) -> Expr:
        """The messages expression a reducer ranges over."""
        if isinstance(node, Call):
            return node.argument
        if isinstance(node, Quantified):
            body = node.body
            return body.subject if isinstance(body, Where) else self.stream_of(body)
        if isinstance(node, Compare):
            return node.left if self.is_stream(node.left) else node.right
        if isinstance(node, Path) and node.names[-1] == "count":  # the items it counts
            return Path(node.start, node.positions[-1] - 1, node.names[:-1], node.positions[:-1])
        return node

    def form(self, node: Expr, truth: bool) -> str | None:
        if isinstance(node, Call) and self.is_stream(node.argument):
            return AGGREGATE
        if isinstance(node, Path) and id(node) in self.paths and node.names[-1] == "count":
            return AGGREGATE
        if isinstance(node, Quantified) and (self.is_stream(node.body) or (
                self.compared(node.body) and getattr(node.body, "op", "") != "has")):
            return QUANTIFIER
        if truth and (self.is_stream(node) or self.compared(node)):
            return EXISTS
        return None

    def visit(self, node: Expr, truth: bool) -> None:
        """Record the reducers under ``node``; ``truth`` when a true/false is expected there."""
        paths = self.message_paths(node)
        if not paths:
            return
        form = self.form(node, truth)
        if form is not None:
            if len(paths) > 1:
                raise self.fail("one part of a rule ranges over messages once: 'messages' cannot "
                                "appear again inside it (write two parts joined by 'and')", paths[1])
            self.found.append(Reducer(form, node, self.stream_of(node)))
            return
        if isinstance(node, Path) or self.is_stream(node):
            raise self.fail("messages are streamed, not kept: count, aggregate (sum, min, max, "
                            "avg, median, pNN), quantify (any, all, no) or test them here",
                            node)
        if isinstance(node, (Logical, Not)):
            for child in _children(node):
                self.visit(child, True)
        elif isinstance(node, Where):
            self.visit(node.subject, False)
            self.visit(node.condition, True)
        else:
            for child in _children(node):
                self.visit(child, False)


def plan(source: str, tree: Expr, paths: frozenset[int]) -> tuple[Reducer, ...]:
    """The reducers of a checked rule, in the order they appear; ExpressionError (exit 2) for a
    use of ``messages`` that would need the whole list."""
    if not paths:
        return ()
    planner = _Planner(source, paths)
    planner.visit(tree, True)
    return tuple(planner.found)
