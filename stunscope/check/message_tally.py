"""The parts of rules that range over ``messages``, computed in one pass over the capture.

The pass runs after the analysis, only when a rule reads ``messages``, and serves every such
part of every rule at once. Each message is the object ``stunscope messages --format jsonl`` prints for it (built by the
same :class:`~stunscope.report.messages.MessageFormatter`, with the same keyring), shown to the
rules as a one-item ``messages`` list next to the analysis JSON, so ``where`` conditions read
the message's fields first and the analysis' top-level names after (the common shapes run as
plain functions, :mod:`stunscope.check.message_fast`, with the same results). A part
(:mod:`stunscope.check.message_plan`) keeps only what its result needs, so memory does not grow
with the capture:

- ``count``/``sum``/``avg``: a running count and total; ``min``/``max``: the best value so far;
- ``median``/``pNN``: exact, from a count per distinct value, at most
  :data:`DISTINCT_MAX` of them (past that the rule cannot be evaluated: exit 2, and the message
  says to narrow it with ``where``);
- quantifiers and tests: how many values held and how many did not, the first
  :data:`EVIDENCE_FRAMES` frames and :data:`SHOWN_VALUES` values of each.

Evidence frames are those of the messages the values come from, the first
:data:`EVIDENCE_FRAMES` of them (a ``pNN`` names the first message of each value at or above the
result, a ``min``/``max`` the message that holds it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stunscope.check.evaluation import (
    Expression,
    Truth,
    _equal,
    _Evaluator,
    _is_number,
    _single,
    _Val,
    format_value,
    truthy,
)
from stunscope.check.expressions import Call, Compare, Expr, ExpressionError, Quantified, Where
from stunscope.check.message_fast import Fallback, NotFast, compile_condition, compile_stream, compile_test
from stunscope.check.message_plan import AGGREGATE, QUANTIFIER, Reducer
from stunscope.check.rules import Rule, reads_messages
from stunscope.check.sources import is_analysis_json
from stunscope.errors import CaptureError, UsageError

if TYPE_CHECKING:
    from stunscope.wire.integrity import Keyring

Obj = dict[str, Any]
EVIDENCE_FRAMES = 10
SHOWN_VALUES = 3
DISTINCT_MAX = 100_000


def _evidence(frames: list[int]) -> tuple[Obj, ...]:
    """Evidence objects naming ``frames`` (what :func:`~stunscope.check.evaluation.frames_of` reads)."""
    return tuple({"frame": frame} for frame in frames)


class _Sample:
    """How many values fell in a group, with the frames and values of the first ones."""

    __slots__ = ("count", "frames", "values")

    def __init__(self) -> None:
        self.count = 0
        self.frames: list[int] = []
        self.values: list[Any] = []

    def add(self, frame: int, value: Any) -> None:
        self.count += 1
        if len(self.values) < SHOWN_VALUES:
            self.values.append(value)
        if (len(self.frames) < EVIDENCE_FRAMES and (not self.frames or self.frames[-1] != frame)):
            self.frames.append(frame)

    def shown(self) -> str:
        """The first values, ``[a, b, c, … 7 more]``."""
        text = format_value(self.values, SHOWN_VALUES)
        more = self.count - len(self.values)
        return text[:-1] + f", … {more} more]" if more > 0 else text


Pairs = list[tuple[Any, bool]]
"""One message's values of a part's stream, each with whether it held (aggregates: True)."""


class _Part:
    """One reducer's running state; ``feed`` one message at a time, then ``result``.

    ``fast`` is the part compiled by :mod:`stunscope.check.message_fast` when it has a plain
    shape; ``slow`` asks the general evaluator (``stand_in`` is its table of known results,
    where the stream's items of the current message are put)."""

    def __init__(self, reducer: Reducer, evaluator: _Evaluator, stand_in: dict[int, Any]) -> None:
        self.reducer = reducer
        self.evaluator = evaluator
        self.stand_in = stand_in
        try:
            self.fast: Callable[[Obj], Pairs] | None = self.compile()
        except NotFast:
            self.fast = None

    def compile(self) -> Callable[[Obj], Pairs]:
        items = compile_stream(self.reducer.stream, self.evaluator)
        return lambda message: [(value, True) for value, _scope in items(message)]

    def items(self) -> _Val:
        """The current message's values of the stream."""
        self.stand_in.clear()  # the previous message's items
        return self.evaluator.value(self.reducer.stream, None)

    def slow(self) -> Pairs:
        return [(item.value, True) for item in self.items().items]

    def feed(self, frame: int, message: Obj) -> None:
        pairs = None
        if self.fast is not None:
            try:
                pairs = self.fast(message)
            except Fallback:
                pass
        self.take(frame, self.slow() if pairs is None else pairs)

    def text(self, node: Any) -> str:
        return self.evaluator.text(node)

    def take(self, frame: int, pairs: Pairs) -> None:
        raise NotImplementedError

    def result(self) -> _Val | Truth:
        raise NotImplementedError


class _Aggregate(_Part):
    """``count|sum|min|max|avg|median|pNN(STREAM)`` and ``STREAM.count``."""

    def __init__(self, reducer: Reducer, evaluator: _Evaluator, stand_in: dict[int, Any]) -> None:
        super().__init__(reducer, evaluator, stand_in)
        node = reducer.node
        self.function = node.function if isinstance(node, Call) else "count"
        self.sample = _Sample()
        self.total: Any = 0
        self.best: tuple[Any, int] | None = None
        self.distinct: dict[Any, list[int]] = {}  # value -> [count, first frame]

    def take(self, frame: int, pairs: Pairs) -> None:
        function = self.function
        for value, _held in pairs:
            if value is None:
                continue
            if function != "count" and not _is_number(value):
                raise self.evaluator.fail(f"{function}() needs numbers, found {format_value(value)}",
                                          self.reducer.node)
            self.sample.add(frame, value)
            if function in ("sum", "avg"):
                self.total += value
            elif function in ("min", "max"):
                best = self.best
                if best is None or (value < best[0] if function == "min" else value > best[0]):
                    self.best = (value, frame)
            elif function != "count":
                seen = self.distinct.get(value)
                if seen is None:
                    if len(self.distinct) >= DISTINCT_MAX:
                        raise self.evaluator.fail(
                            f"{function}() over more than {DISTINCT_MAX} distinct values; narrow "
                            f"it with 'where'", self.reducer.node)
                    self.distinct[value] = [1, frame]
                else:
                    seen[0] += 1

    def result(self) -> _Val:
        function, count = self.function, self.sample.count
        if function == "count":
            return _single(count, _evidence(self.sample.frames))
        if not count:
            return _single(None)
        if function in ("min", "max"):
            assert self.best is not None
            return _single(self.best[0], _evidence([self.best[1]]))
        if function in ("sum", "avg"):
            value = self.total if function == "sum" else self.total / count
            return _single(value, _evidence(self.sample.frames))
        percent = 50 if function == "median" else int(function[1:])
        rank = max(1, -(-percent * count // 100))  # nearest rank, as evaluation._percentile
        ordered = sorted(self.distinct)
        seen = 0
        for value in ordered:
            seen += self.distinct[value][0]
            if seen >= rank:
                break
        above = sorted(self.distinct[v][1] for v in ordered if v >= value)
        return _single(value, _evidence(above[:EVIDENCE_FRAMES]))


class _Tested(_Part):
    """A part that tests each value of its stream: how many held, how many did not."""

    def __init__(self, reducer: Reducer, evaluator: _Evaluator, stand_in: dict[int, Any]) -> None:
        super().__init__(reducer, evaluator, stand_in)
        self.held, self.missed = _Sample(), _Sample()

    @property
    def test(self) -> Expr | None:
        """What is asked of each value: a ``where`` (its condition), a comparison, or None
        (the value's truth)."""
        raise NotImplementedError

    def compile(self) -> Callable[[Obj], Pairs]:
        items = compile_stream(self.reducer.stream, self.evaluator)
        test = self.test
        if isinstance(test, Where):
            condition = compile_condition(test.condition, self.evaluator)
            return lambda message: [(value, condition(scope)) for value, scope in items(message)]
        check = compile_test(test, self.evaluator)
        return lambda message: [(value, check(value)) for value, _scope in items(message)]

    def slow(self) -> Pairs:
        items = self.items()
        test = self.test
        if isinstance(test, Where):
            return [(it.value, self.evaluator.truth(test.condition, it).ok) for it in items.items]
        if isinstance(test, Compare) and test.op == "has":
            target = self.evaluator.value(test.right, None).items[0].value
            return [(it.value, _equal(it.value, target) or (
                isinstance(it.value, dict) and _equal(it.value.get("code"), target))) for it in items.items]
        if isinstance(test, Compare):
            self.stand_in[id(self.reducer.stream)] = items
            results = self.evaluator.value(test, None).items
            return [(it.value, truthy(r.value)) for it, r in zip(items.items, results)]
        return [(it.value, truthy(it.value)) for it in items.items]

    def take(self, frame: int, pairs: Pairs) -> None:
        held, missed = self.held, self.missed
        for value, ok in pairs:
            (held if ok else missed).add(frame, value)


class _Quantifier(_Tested):
    """``any|all|no STREAM [where COND | OP VALUE]``."""

    @property
    def test(self) -> Expr:
        node = self.reducer.node
        assert isinstance(node, Quantified)
        return node.body

    def result(self) -> Truth:
        node = self.reducer.node
        assert isinstance(node, Quantified)
        held, missed = self.held, self.missed
        if node.quantifier == "any":
            ok, shown, what = bool(held.count), held if held.count else missed, \
                "hold" if held.count else "do not hold"
        elif node.quantifier == "all":
            ok, shown, what = not missed.count, missed if missed.count else held, \
                "do not hold" if missed.count else "hold"
        else:
            ok, shown, what = not held.count, held if held.count else missed, \
                "match" if held.count else "do not match"
        subject = self.text(self.reducer.stream)
        total = held.count + missed.count
        if not total:
            return Truth(ok, [f"{subject} is empty"], [])
        found = f"{shown.count} of {total} {subject} {what}: {shown.shown()}"
        return Truth(ok, [found], list(_evidence(shown.frames)))


class _Exists(_Tested):
    """``STREAM`` or ``STREAM OP VALUE`` where a truth is expected: one true value is enough."""

    @property
    def test(self) -> Expr | None:
        node = self.reducer.node
        return node if isinstance(node, Compare) else None

    def result(self) -> Truth:
        held, missed = self.held, self.missed
        subject = self.text(self.reducer.stream)
        total = held.count + missed.count
        if held.count:
            found = f"{self.text(self.reducer.node)}: {held.count} of {total} values hold: {held.shown()}"
            return Truth(True, [found], list(_evidence(held.frames)))
        found = f"{subject} = {missed.shown() if total else '[] (nothing found)'}"
        return Truth(False, [found], list(_evidence(missed.frames)))


_PARTS = {AGGREGATE: _Aggregate, QUANTIFIER: _Quantifier}


class MessageTally:
    """The running state of every part over messages of ``expressions``, against ``analysis``."""

    def __init__(self, expressions: Iterable[Expression], analysis: Obj) -> None:
        self.box: list[Obj | None] = [None]
        view = dict(analysis)
        view["messages"] = self.box  # one message at a time
        self.parts: list[_Part] = []
        self.errors: dict[int, ExpressionError] = {}
        for expression in expressions:
            for reducer in expression.reducers:
                stand_in: dict[int, Any] = {}
                evaluator = _Evaluator(expression.source, view, stand_in)
                self.parts.append(_PARTS.get(reducer.form, _Exists)(reducer, evaluator, stand_in))

    def feed(self, message: Obj) -> None:
        """Count one message (a ``messages --format jsonl`` object) in every part."""
        self.box[0] = message
        frame = message.get("frame")
        for part in self.parts:
            key = id(part.reducer.node)
            if key in self.errors:
                continue
            try:
                part.feed(frame if isinstance(frame, int) else 0, message)
            except ExpressionError as exc:
                self.errors[key] = exc

    def known(self) -> dict[int, _Val | Truth | ExpressionError]:
        """Each part's result (or the error it met), by id of the node it stands for."""
        results: dict[int, _Val | Truth | ExpressionError] = {}
        for part in self.parts:
            key = id(part.reducer.node)
            results[key] = self.errors[key] if key in self.errors else part.result()
        return results


def iter_messages(path: Path, keyring: Keyring | None = None) -> Iterator[Obj]:
    """The ``messages --format jsonl`` objects of a capture, streamed; a damaged capture ends
    the stream where the damage is (the analysis of the same file reports it)."""
    from stunscope.capture.stream import open_events
    from stunscope.report.messages import MessageFormatter

    to_json = MessageFormatter(keyring).to_json
    try:
        for event in open_events(path, parallel=None):
            yield to_json(event)
    except CaptureError:
        return


def tally(path: Path, expressions: Iterable[Expression], analysis: Obj,
          keyring: Keyring | None = None) -> dict[int, _Val | Truth | ExpressionError]:
    """Read the messages of ``path`` once and compute every part of ``expressions`` that
    ranges over them; pass the result to :meth:`Expression.evaluate` as ``known``."""
    running = MessageTally(expressions, analysis)
    if not running.parts:
        return {}
    feed = running.feed
    for message in iter_messages(path, keyring):
        feed(message)
    return running.known()


def message_results(rules: Sequence[Rule], path: Path | None, analysis: Obj,
                    keyring: Keyring | None = None) -> dict[int, _Val | Truth | ExpressionError]:
    """The results over messages of the ``rules`` that read them, from the capture ``path``
    (nothing is read when no rule does). A saved analysis keeps no messages: then a UsageError
    (exit 2) names the first such rule."""
    streaming = [rule for rule in rules if reads_messages(rule)]
    if not streaming:
        return {}
    if path is None or is_analysis_json(path):
        raise UsageError(f"rule {streaming[0].name!r} reads messages, which a saved analysis does "
                         f"not keep: pass the capture file instead")
    return tally(path, [rule.expression for rule in streaming if rule.expression is not None],
                 analysis, keyring)
