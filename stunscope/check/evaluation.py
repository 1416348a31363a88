"""What a rule means: name checking before the run, then evaluation over the analysis JSON.

Values. A path that crosses a list yields *many* values (``transactions.rtt_ms`` is one value
per transaction); each remembers the object it was read from, which is where a ``where``
condition looks its names up and whose frames are the evidence when the rule fails.

- Comparing many values with one value compares each (``ice.selected.relayed == false`` is one
  true/false per session). A rule or a condition holds when *some* value is true, like XPath;
  an empty list never holds. Say ``all`` or ``no`` to quantify otherwise: ``all X`` holds when
  every value of ``X`` is true (also when there is none), ``no X`` when none is, ``any X`` when
  one is. ``Q LIST where C`` asks the same of the condition ``C`` on each item.
- ``where`` keeps the items for which the condition holds; names in the condition are looked up
  in the item first, then at the top level.
- ``count`` counts the non-null values; ``sum``, ``min``, ``max``, ``avg``, ``median`` and
  ``pNN`` (nearest-rank percentile) skip nulls and give null on an empty list.
- ``==``/``!=`` never fail (true equals only true, not 1); ``<`` ``<=`` ``>`` ``>=`` compare
  numbers with numbers and strings with strings, and are false when either side is null.
- ``x in [..]`` / ``not in``: membership; ``LIST has x``: the list holds ``x``, or an object whose
  ``code`` is ``x`` (``verdicts has "ice-connected"``); ``s matches "regex"``: ``re.search``.
- Truth: null, false, 0, "" and empty lists are false; everything else is true.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from stunscope.check.expressions import (
    Call,
    Compare,
    Expr,
    ExpressionError,
    Literal,
    Logical,
    Not,
    Path,
    Quantified,
    Where,
    parse,
)
from stunscope.check.message_plan import Reducer, plan
from stunscope.check.names import ALIASES, COMPUTED, Obj, field_kind, known_names, scope_has

_SUMMARY_KEYS = ("code", "method", "class", "outcome", "state", "severity", "local_type", "remote_type",
                 "error_code", "rtt_ms", "retransmissions")
_SHOWN_VALUES = 8
_SHOWN_ITEMS = 3  # objects a quantifier shows (each is a summary of several fields)


# --- static name checking ----------------------------------------------------------------------


class _Shape(NamedTuple):
    """What an expression yields, known before the run: one or many values, of which kind."""

    many: bool
    kind: str | None  # object kind of the values, None for plain values
    scope: str | None  # kind of the object each value is read from


_VALUE = _Shape(False, None, None)


class _Checker:
    """Walks the tree once to reject unknown names and misused operators with their column."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.message_paths: set[int] = set()  # ids of the paths that read the top-level messages

    def fail(self, message: str, position: int) -> ExpressionError:
        return ExpressionError(message, position + 1, self.source)

    def shape(self, node: Expr, scope: str | None) -> _Shape:
        if isinstance(node, Literal):
            return _VALUE
        if isinstance(node, Path):
            return self.path(node, scope)
        if isinstance(node, Call):
            argument = self.shape(node.argument, scope)
            if node.function != "count" and argument.kind is not None:
                raise self.fail(f"{node.function}() needs numbers, not {argument.kind} objects "
                                f"(pick a field, e.g. transactions.rtt_ms)", node.argument.start)
            return _VALUE
        if isinstance(node, Where):
            subject = self.shape(node.subject, scope)
            self.shape(node.condition, subject.scope)
            return _Shape(True, subject.kind, subject.scope)
        if isinstance(node, Compare):
            return self.compare(node, scope)
        if isinstance(node, Quantified):
            self.shape(node.body, scope)
        elif isinstance(node, Not):
            self.shape(node.operand, scope)
        else:
            self.shape(node.left, scope)
            self.shape(node.right, scope)
        return _VALUE

    def compare(self, node: Compare, scope: str | None) -> _Shape:
        left = self.shape(node.left, scope)
        right = self.shape(node.right, scope)
        if right.many and node.op not in ("in", "not in"):
            raise self.fail(f"the right side of {node.op!r} must be one value, not a list",
                            node.right.start)
        if node.op == "has":
            if not left.many:
                raise self.fail("'has' needs a list on its left (e.g. verdicts has \"ice-connected\")",
                                node.left.start)
            return _VALUE
        if node.op == "matches":
            if not (isinstance(node.right, Literal) and isinstance(node.right.value, str)):
                raise self.fail("'matches' needs a quoted regular expression", node.right.start)
            try:
                re.compile(node.right.value)
            except re.error as exc:
                raise self.fail(f"bad regular expression: {exc}", node.right.start) from None
        return _Shape(left.many, None, left.scope)

    def path(self, node: Path, scope: str | None) -> _Shape:
        kind = scope if scope_has(scope, node.names[0]) else "analysis"
        if kind == "analysis" and node.names[0] == "messages":
            self.message_paths.add(id(node))
        shape = _Shape(False, kind, kind)
        for name, position in zip(node.names, node.positions):
            if name == "count" and shape.many:
                shape = _VALUE
                continue
            if shape.kind is None:
                raise self.fail(f"{name!r}: the name before it is a value, not an object", position)
            known, child, is_list = field_kind(shape.kind, name)
            if not known:
                where = "" if shape.kind == "analysis" else f" on {shape.kind} objects"
                names = known_names(shape.kind)
                if shape.kind == "analysis":
                    names += sorted(ALIASES)
                raise self.fail(f"unknown name {name!r}{where} (known: {', '.join(names)})", position)
            shape = _Shape(shape.many or is_list, child, child or shape.kind)
        return shape


# --- evaluation --------------------------------------------------------------------------------


class _Item(NamedTuple):
    """One value with where it came from."""

    value: Any
    kind: str | None  # object kind when ``value`` is an object of the contract
    scope: Obj | None  # the object a where-condition reads (the value itself when an object)
    scope_kind: str | None
    evidence: tuple[Obj, ...]  # objects whose frames back this value


class _Val(NamedTuple):
    """The result of an expression: its items, and whether it stands for a list."""

    items: tuple[_Item, ...]
    many: bool


@dataclass(frozen=True, slots=True)
class Truth:
    """Whether an expression held, what was found, and the objects that show it."""

    ok: bool
    found: list[str]
    evidence: list[Obj]


def _single(value: Any, evidence: tuple[Obj, ...] = ()) -> _Val:
    return _Val((_Item(value, None, None, None, evidence),), False)


def truthy(value: Any) -> bool:
    """Truth of a JSON value: null, false, 0, "" and empty lists are false."""
    if isinstance(value, (list, tuple, str, dict)):
        return len(value) > 0
    return bool(value) if value is not None else False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


def format_value(value: Any, most: int = _SHOWN_VALUES) -> str:
    """A short display of a JSON value (objects summarised by their telling fields; lists cut
    after ``most`` items)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, dict):
        shown = [k for k in _SUMMARY_KEYS if k in value][:4]
        if not shown:
            shown = [k for k, v in value.items() if not isinstance(v, (dict, list))][:3]
        return "{" + ", ".join(f"{k}: {format_value(value[k])}" for k in shown) + "}"
    if isinstance(value, (list, tuple)):
        head = ", ".join(format_value(v) for v in value[:most])
        more = f", … {len(value) - most} more" if len(value) > most else ""
        return f"[{head}{more}]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _percentile(values: list[float], percent: int) -> float:
    """Nearest-rank percentile of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


Known = Mapping[int, "_Val | Truth | ExpressionError"]
"""Results computed beforehand, by ``id`` of the node they stand for (the parts of a rule that
range over messages, :mod:`stunscope.check.message_tally`); an error is raised where it is met."""


class _Evaluator:
    """Evaluates a checked tree against one analysis JSON object."""

    def __init__(self, source: str, root: Obj, known: Known | None = None) -> None:
        self.source = source
        self.root = root
        self.known = known

    def fail(self, message: str, node: Expr) -> ExpressionError:
        return ExpressionError(message, node.column, self.source)

    def looked_up(self, node: Expr) -> "_Val | Truth | None":
        """The result computed beforehand for ``node``, if any."""
        found = self.known.get(id(node)) if self.known else None
        if isinstance(found, ExpressionError):
            raise found
        return found

    def value(self, node: Expr, scope: _Item | None) -> _Val:
        found = self.looked_up(node)
        if isinstance(found, Truth):
            return _single(found.ok, tuple(found.evidence))
        if found is not None:
            return found
        if isinstance(node, Literal):
            return _single(node.value)
        if isinstance(node, Path):
            return self.path(node, scope)
        if isinstance(node, Call):
            return self.call(node, scope)
        if isinstance(node, Where):
            subject = self.value(node.subject, scope)
            kept = tuple(it for it in subject.items if self.truth(node.condition, it).ok)
            return _Val(kept, True)
        if isinstance(node, Compare):
            return self.compare(node, scope)
        truth = self.truth(node, scope)
        return _single(truth.ok, tuple(truth.evidence))

    def path(self, node: Path, scope: _Item | None) -> _Val:
        if scope is not None and scope.scope is not None and scope_has(scope.scope_kind, node.names[0]):
            start = _Item(scope.scope, scope.scope_kind, scope.scope, scope.scope_kind, scope.evidence)
        else:
            start = _Item(self.root, "analysis", self.root, "analysis", ())
        current = _Val((start,), False)
        for name in node.names:
            if current.many and name == "count":
                counted = [it for it in current.items if it.value is not None]
                current = _single(len(counted), _evidence(counted))
                continue
            current = self.step(current, name)
        return current

    def step(self, current: _Val, name: str) -> _Val:
        """Read field ``name`` of every item; lists are spread into many items."""
        out: list[_Item] = []
        many = current.many
        for item in current.items:
            obj = item.value
            if not isinstance(obj, dict):
                out.append(_Item(None, None, item.scope, item.scope_kind, item.evidence))
                continue
            _known, child, _is_list = field_kind(item.kind, name)
            computed = COMPUTED.get(item.kind or "", {}).get(name)
            parent_evidence = item.evidence or ((obj,) if obj is not self.root else ())
            if computed is not None:
                value, evidence = computed[0](obj, self.root)
            else:
                key = ALIASES.get(name, name) if item.kind == "analysis" else name
                value, evidence = obj.get(key), parent_evidence
            if isinstance(value, list):
                many = True
                for element in value:
                    if isinstance(element, dict):
                        out.append(_Item(element, child, element, child, (element,)))
                    else:
                        out.append(_Item(element, None, obj, item.kind, parent_evidence))
            elif isinstance(value, dict):
                out.append(_Item(value, child, value, child, evidence or (value,)))
            else:
                out.append(_Item(value, None, obj, item.kind, evidence))
        return _Val(tuple(out), many)

    def call(self, node: Call, scope: _Item | None) -> _Val:
        argument = self.value(node.argument, scope)
        items = [it for it in argument.items if it.value is not None]
        if node.function == "count":
            return _single(len(items), _evidence(items))
        for item in items:
            if not _is_number(item.value):
                raise self.fail(f"{node.function}() needs numbers, found {format_value(item.value)}", node)
        if not items:
            return _single(None)
        values = [it.value for it in items]
        if node.function in ("min", "max"):
            pick = (min if node.function == "min" else max)(items, key=lambda it: it.value)
            return _single(pick.value, pick.evidence)
        if node.function == "sum":
            return _single(sum(values), _evidence(items))
        if node.function == "avg":
            return _single(sum(values) / len(values), _evidence(items))
        percent = 50 if node.function == "median" else int(node.function[1:])
        result = _percentile(values, percent)
        return _single(result, _evidence([it for it in items if it.value >= result]))

    def compare(self, node: Compare, scope: _Item | None) -> _Val:
        left = self.value(node.left, scope)
        right = self.value(node.right, scope)
        if node.op == "has":
            target = right.items[0].value if right.items else None
            hits = [it for it in left.items if _equal(it.value, target)
                    or (isinstance(it.value, dict) and _equal(it.value.get("code"), target))]
            return _single(bool(hits), _evidence(hits or left.items))
        if node.op in ("in", "not in"):
            if right.many:
                members: tuple[Any, ...] = tuple(it.value for it in right.items)
            else:
                members = right.items[0].value if isinstance(right.items[0].value, (list, tuple)) else (right.items[0].value,)
            other: tuple[Obj, ...] = _evidence(right.items) if right.many else right.items[0].evidence
            results = []
            for it in left.items:
                inside = any(_equal(it.value, m) for m in members)
                results.append(it._replace(value=inside if node.op == "in" else not inside,
                                           kind=None, evidence=it.evidence + other))
            return _Val(tuple(results), left.many)
        if left.many and right.many:
            raise self.fail(f"{node.op!r} compares a list with one value, not two lists", node)
        many, single, flipped = (right, left, True) if right.many else (left, right, False)
        fixed = single.items[0]
        results = []
        for it in many.items:
            a, b = (fixed.value, it.value) if flipped else (it.value, fixed.value)
            results.append(it._replace(value=self.apply(node, a, b), kind=None,
                                       evidence=it.evidence + fixed.evidence))
        return _Val(tuple(results), many.many)

    def apply(self, node: Compare, a: Any, b: Any) -> bool:
        """One comparison of two plain values."""
        op = node.op
        if op == "==":
            return _equal(a, b)
        if op == "!=":
            return not _equal(a, b)
        if op == "matches":
            return isinstance(a, str) and re.search(b, a) is not None
        if a is None or b is None:
            return False
        if not ((_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
            raise self.fail(f"cannot order {format_value(a)} against {format_value(b)} with {op!r}", node)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]

    def truth(self, node: Expr, scope: _Item | None) -> Truth:
        """Whether ``node`` holds, with what was found and the evidence."""
        found = self.looked_up(node)
        if isinstance(found, Truth):
            return found
        if isinstance(node, Logical):
            left = self.truth(node.left, scope)
            right = self.truth(node.right, scope)
            ok = (left.ok and right.ok) if node.op == "and" else (left.ok or right.ok)
            # Show the sides that decided: the false ones of a failed `and`, the true ones of `or`.
            parts = [t for t in (left, right) if t.ok == ok] or [left, right]
            return Truth(ok, [f for t in parts for f in t.found], [e for t in parts for e in t.evidence])
        if isinstance(node, Not):
            inner = self.truth(node.operand, scope)
            return Truth(not inner.ok, inner.found, inner.evidence)
        if isinstance(node, Quantified):
            return self.quantified(node, scope)
        val = self.value(node, scope)
        if val.many:
            hits = [it for it in val.items if truthy(it.value)]
            ok = bool(hits)
            evidence = _evidence(hits if ok else val.items)
        else:
            ok = truthy(val.items[0].value)
            evidence = val.items[0].evidence
        return Truth(ok, [self.describe(node, val, scope)], list(evidence))

    def quantified(self, node: Quantified, scope: _Item | None) -> Truth:
        body = node.body
        subject = body.subject if isinstance(body, Where) else body
        if isinstance(body, Where):
            items = self.value(body.subject, scope).items
            held = [self.truth(body.condition, it).ok for it in items]
            shown_values = [it.value for it in items]
        else:
            items = self.value(body, scope).items
            held = [truthy(it.value) for it in items]
            shown_values = [it.value for it in items]
            if isinstance(body, Compare):  # show the values compared, not the true/false results
                subject = body.left
                lefts = self.value(body.left, scope).items
                if len(lefts) == len(items):
                    shown_values = [it.value for it in lefts]
        hits = [i for i, h in enumerate(held) if h]
        misses = [i for i, h in enumerate(held) if not h]
        if node.quantifier == "any":
            ok, shown, what = bool(hits), hits or misses, "hold" if hits else "do not hold"
        elif node.quantifier == "all":
            ok, shown, what = not misses, misses or hits, "do not hold" if misses else "hold"
        else:
            ok, shown, what = not hits, hits or misses, "match" if hits else "do not match"
        if not items:
            found = f"{self.text(subject)} is empty"
        else:
            found = (f"{len(shown)} of {len(items)} {self.text(subject)} {what}: "
                     f"{format_value([shown_values[i] for i in shown], _SHOWN_ITEMS)}")
        return Truth(ok, [found], list(_evidence(items[i] for i in shown)))

    def describe(self, node: Expr, val: _Val, scope: _Item | None) -> str:
        """``text = value`` for the telling operand of ``node``."""
        if isinstance(node, Compare):
            shown = [node.left] + ([node.right] if not isinstance(node.right, Literal) else [])
            return ", ".join(f"{self.text(n)} = {self.show(self.value(n, scope))}" for n in shown)
        return f"{self.text(node)} = {self.show(val)}"

    @staticmethod
    def show(val: _Val) -> str:
        if val.many and not val.items:
            return "[] (nothing found)"
        if val.many:
            return format_value([it.value for it in val.items])
        return format_value(val.items[0].value)

    def text(self, node: Expr) -> str:
        return self.source[node.start:node.end]


def _evidence(items: Any) -> tuple[Obj, ...]:
    """The evidence objects of ``items``, each once, in order."""
    seen: dict[int, Obj] = {}
    for item in items:
        for obj in item.evidence:
            seen.setdefault(id(obj), obj)
    return tuple(seen.values())


def frames_of(evidence: list[Obj]) -> list[int]:
    """The frame numbers the evidence objects name (``frames``, ``request_frames``,
    ``response_frame``, ``first_frame`` ...); an object without a ``*frames`` list also lends
    those of its listed children (an ICE session its pairs' checks, an allocation its
    permissions and channels)."""
    frames: set[int] = set()
    for obj in evidence:
        frames.update(_object_frames(obj, depth=2))
    return sorted(frames)


def _object_frames(obj: Obj, depth: int) -> set[int]:
    found: set[int] = set()
    has_list = False
    for key, value in obj.items():
        if key.endswith("frames") and isinstance(value, list):
            has_list = True
            found.update(v for v in value if _is_number(v))
        elif key.endswith("frame") and _is_number(value):
            found.add(value)
    if not has_list and depth > 0:
        for value in obj.values():
            if isinstance(value, list):
                for child in value:
                    if isinstance(child, dict):
                        found.update(_object_frames(child, depth - 1))
    return found


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed and name-checked rule expression, ready to run on analyses."""

    source: str
    tree: Expr
    reducers: tuple[Reducer, ...] = ()  # the parts that range over messages

    def evaluate(self, analysis: Obj, known: Known | None = None) -> Truth:
        """Run on one analysis JSON object, with ``known`` results for the parts over messages;
        data-dependent type errors raise ExpressionError, and so does a rule over messages
        without their results (an analysis JSON has no messages to read)."""
        if self.reducers and known is None and "messages" not in analysis:
            raise ExpressionError("this reads messages, which only a capture has (an analysis JSON "
                                  "keeps none)", self.reducers[0].node.column, self.source)
        return _Evaluator(self.source, analysis, known).truth(self.tree, None)


def compile_expression(source: str) -> Expression:
    """Parse and name-check ``source``; raises ExpressionError (exit 2) with the column."""
    tree = parse(source)
    checker = _Checker(source)
    checker.shape(tree, None)
    return Expression(source, tree, plan(source, tree, frozenset(checker.message_paths)))
