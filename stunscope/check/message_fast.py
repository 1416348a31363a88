"""Plain-function versions of the common parts of message rules, for speed.

The general evaluator (:mod:`stunscope.check.evaluation`) wraps every value with where it came
from; over a million messages that costs tens of microseconds per message and rule. The shapes
QA rules use, ``messages[.FIELD] [where COND]`` with conditions made of message fields,
literals, comparisons, ``and``/``or``/``not``, ``LIST has X`` and ``any|all|no attributes
where ...``, compile here to closures over the message dict with the same semantics (the same
``apply``, ``_equal`` and ``truthy``; both sides of ``and``/``or`` evaluated, as there).

Anything else is not compiled (:class:`NotFast` at compile time) and a value outside the plain
shapes met at run time (a list or an object where one value was expected) raises
:class:`Fallback`: that message then goes through the general evaluator, so the result is the
same either way (``tests/test_check_messages.py`` compares both with a naive evaluation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stunscope.check.evaluation import _equal, _Evaluator, truthy
from stunscope.check.expressions import Compare, Expr, Literal, Logical, Not, Path, Quantified, Where
from stunscope.check.names import COMPUTED, field_kind, scope_has

Obj = dict[str, Any]
Test = Callable[[Obj], bool]
Items = Callable[[Obj], list[tuple[Any, Obj]]]
"""A message -> its stream values, each with the object a condition reads (the message)."""


class NotFast(Exception):
    """The expression has a shape this module does not compile."""


class Fallback(Exception):
    """A value outside the plain shapes: evaluate this message the general way."""


def _field(kind: str, name: str) -> tuple[str | None, bool]:
    """(child kind, is a list of objects) of a plain field of ``kind``; NotFast otherwise."""
    if not scope_has(kind, name) or name in COMPUTED.get(kind, {}):
        raise NotFast(name)
    _known, child, is_list = field_kind(kind, name)
    return child, is_list


def _one(value: Any) -> Any:
    """``value`` when it is one value (a list is many: Fallback)."""
    if value.__class__ is list:
        raise Fallback
    return value


def _scalar(value: Any) -> Any:
    """``value`` when it is a plain value (an object is also a scope: Fallback)."""
    if value.__class__ is list or value.__class__ is dict:
        raise Fallback
    return value


class _Compiler:
    """Compiles conditions read on objects of one kind, with the evaluator's ``apply``."""

    def __init__(self, evaluator: _Evaluator) -> None:
        self.evaluator = evaluator

    def value(self, node: Expr, kind: str) -> Callable[[Obj], Any]:
        """One plain value of the object (a literal, or a field that is not a list)."""
        if isinstance(node, Literal):
            constant = node.value
            return lambda _obj: constant
        if isinstance(node, Path) and len(node.names) == 1:
            name = node.names[0]
            child, is_list = _field(kind, name)
            if child is not None or is_list:
                raise NotFast(name)
            return lambda obj: _one(obj.get(name))
        raise NotFast(type(node).__name__)

    def many(self, node: Expr, kind: str) -> Callable[[Obj], list[Any]]:
        """The values of ``FIELD`` (a list field spread) or ``LIST.FIELD`` (a list of objects)."""
        if not isinstance(node, Path) or len(node.names) > 2:
            raise NotFast("path")
        first = node.names[0]
        child, is_list = _field(kind, first)
        if len(node.names) == 1:
            if child is not None:
                raise NotFast(first)
            return lambda obj: _spread(obj.get(first))
        if not is_list or child is None:
            raise NotFast(first)
        second = node.names[1]
        grandchild, _ = _field(child, second)
        if grandchild is not None:
            raise NotFast(second)

        def values(obj: Obj) -> list[Any]:
            elements = obj.get(first)
            if elements.__class__ is not list:
                raise Fallback
            return [_one(e.get(second)) if e.__class__ is dict else None for e in elements]
        return values

    def test(self, node: Expr, kind: str) -> Test:
        """Whether ``node`` holds on the object (the evaluator's ``truth``)."""
        if isinstance(node, Logical):
            left, right = self.test(node.left, kind), self.test(node.right, kind)
            if node.op == "and":
                return lambda obj: _both(left(obj), right(obj))
            return lambda obj: _either(left(obj), right(obj))
        if isinstance(node, Not):
            operand = self.test(node.operand, kind)
            return lambda obj: not operand(obj)
        if isinstance(node, Quantified):
            return self.quantified(node, kind)
        if isinstance(node, Compare):
            return self.compare(node, kind)
        read = self.value(node, kind)
        return lambda obj: truthy(read(obj))

    def quantified(self, node: Quantified, kind: str) -> Test:
        """``any|all|no LIST where COND`` over a list of objects of the object."""
        body = node.body
        if not (isinstance(body, Where) and isinstance(body.subject, Path) and len(body.subject.names) == 1):
            raise NotFast("quantifier")
        name = body.subject.names[0]
        child, is_list = _field(kind, name)
        if not is_list or child is None:
            raise NotFast(name)
        condition = self.test(body.condition, child)
        quantifier = node.quantifier

        def holds(obj: Obj) -> bool:
            elements = obj.get(name)
            if elements.__class__ is not list or any(e.__class__ is not dict for e in elements):
                raise Fallback
            held = [condition(e) for e in elements]
            if quantifier == "any":
                return True in held
            return False not in held if quantifier == "all" else True not in held
        return holds

    def compare(self, node: Compare, kind: str) -> Test:
        if node.op == "has":
            values = self.many(node.left, kind)
            target = self.value(node.right, kind)
            return lambda obj: _has(values(obj), target(obj))
        left, right = self.value(node.left, kind), self.value(node.right, kind)
        if node.op in ("in", "not in"):
            wanted = node.op == "in"

            def member(obj: Obj) -> bool:
                a, b = left(obj), right(obj)
                members = b if isinstance(b, (list, tuple)) else (b,)
                return any(_equal(a, m) for m in members) is wanted
            return member
        apply = self.evaluator.apply
        return lambda obj: apply(node, left(obj), right(obj))


def _spread(value: Any) -> list[Any]:
    """A field's values: a list's scalar elements, or the value itself."""
    if value.__class__ is list:
        return [_one(v) for v in value]
    return [value]


def _both(a: bool, b: bool) -> bool:
    return a and b


def _either(a: bool, b: bool) -> bool:
    return a or b


def _has(values: list[Any], target: Any) -> bool:
    """``LIST has X``: an item is X, or an object whose code is X (as the evaluator)."""
    return any(_equal(v, target) or (v.__class__ is dict and _equal(v.get("code"), target))
               for v in values)


def compile_stream(node: Expr, evaluator: _Evaluator) -> Items:
    """``messages``, ``messages.FIELD`` and either narrowed by ``where`` (conditions read the
    message); NotFast for other shapes."""
    compiler = _Compiler(evaluator)
    if isinstance(node, Where):
        inner = compile_stream(node.subject, evaluator)
        condition = compiler.test(node.condition, "message")
        return lambda msg: [item for item in inner(msg) if condition(item[1])]
    if not isinstance(node, Path) or len(node.names) > 2 or node.names[-1] == "count":
        raise NotFast("stream")
    if len(node.names) == 1:
        return lambda msg: [(msg, msg)]
    read = compiler.value(Path(node.start, node.end, node.names[1:], node.positions[1:]), "message")
    return lambda msg: [(_scalar(read(msg)), msg)]


def compile_condition(node: Expr, evaluator: _Evaluator) -> Test:
    """A ``where`` condition read on a message."""
    return _Compiler(evaluator).test(node, "message")


def compile_test(node: Expr | None, evaluator: _Evaluator) -> Callable[[Any], bool]:
    """A test of one stream value (plain, or a message): ``VALUE OP LITERAL`` /
    ``LITERAL OP VALUE`` with the stream side given as the value, or the value's truth;
    NotFast for other shapes."""
    if not isinstance(node, Compare):
        return truthy
    if node.op in ("has", "in", "not in"):
        raise NotFast(node.op)
    apply = evaluator.apply
    if isinstance(node.right, Literal):
        constant = node.right.value
        return lambda value: apply(node, value, constant)
    if isinstance(node.left, Literal):
        constant = node.left.value
        return lambda value: apply(node, constant, value)
    raise NotFast("compare")
