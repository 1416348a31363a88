"""The rule language: tokens, syntax tree and a small recursive-descent parser.

A rule is one expression over the analysis JSON (DESIGN.md contract: ``transactions``,
``allocations``, ``ice``, ``nat``, ``verdicts``). Grammar (keywords are lower case)::

    rule        := or_expr END
    or_expr     := and_expr ("or" and_expr)*
    and_expr    := not_expr ("and" not_expr)*
    not_expr    := "not" not_expr | quantified
    quantified  := ("any" | "all" | "no") comparison | comparison
    comparison  := selection [COMPARATOR selection]
    COMPARATOR  := "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in" | "has" | "matches"
    selection   := operand ["where" or_expr]
    operand     := literal | list | call | path | "(" or_expr ")"
    call        := FUNCTION "(" or_expr ")"
    FUNCTION    := count | sum | min | max | avg | median | p1 ... p100
    path        := NAME ("." NAME)*
    list        := "[" [literal ("," literal)*] "]"
    literal     := NUMBER | STRING | true | false | null

Strings take double or single quotes with backslash escapes; numbers are decimal (``-2``,
``0.5``, ``1e3``). A ``where`` condition extends as far as it can: write
``(any ice where state == "connected") and ...`` when more follows. What names mean is in
:mod:`stunscope.check.names`; how values combine is in :mod:`stunscope.check.evaluation`.

Syntax errors raise :class:`ExpressionError` (a ``UsageError``, exit 2) naming the 1-based column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

from stunscope.errors import UsageError

KEYWORDS = frozenset(
    {"and", "or", "not", "any", "all", "no", "where", "in", "has", "matches",
     "true", "false", "null"}
)
QUANTIFIERS = ("any", "all", "no")
SYMBOL_COMPARATORS = ("==", "!=", "<=", ">=", "<", ">")
WORD_COMPARATORS = ("in", "has", "matches")
AGGREGATES = ("count", "sum", "min", "max", "avg", "median")
PERCENTILE = re.compile(r"p([1-9][0-9]?|100)\Z")

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<symbol>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}
MAX_TOKENS = 400  # keeps the tree shallow enough to walk recursively
MAX_NESTING = 40  # parentheses, calls and `not` inside one another


class ExpressionError(UsageError):
    """A rule expression that does not parse or names something unknown (exit 2)."""

    def __init__(self, message: str, column: int, source: str) -> None:
        super().__init__(f"column {column}: {message} in: {_excerpt(source, column)}")
        self.column = column
        self.reason = message
        self.source = source


def _excerpt(source: str, column: int, width: int = 40) -> str:
    """``source``, or for a long one the part around ``column`` with ``…`` where it was cut."""
    if len(source) <= 2 * width + 20:
        return source
    start = max(0, column - 1 - width)
    end = min(len(source), column - 1 + width)
    return ("…" if start else "") + source[start:end] + ("…" if end < len(source) else "")


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token; ``kind`` is number/name/string/symbol/end, ``pos`` 0-based."""

    kind: str
    text: str
    pos: int


def tokenize(source: str) -> list[Token]:
    """Split an expression into tokens, ending with an ``end`` token."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            char = source[pos]
            if char in "\"'":
                raise ExpressionError("unterminated string", pos + 1, source)
            raise ExpressionError(f"unexpected character {char!r}", pos + 1, source)
        kind = match.lastgroup or "space"
        if kind != "space":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


# --- syntax tree -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """Base of the syntax tree: ``start``/``end`` are the node's 0-based span in the source."""

    start: int
    end: int

    @property
    def column(self) -> int:
        """The 1-based column where the node starts (for error messages)."""
        return self.start + 1


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A constant: number, string, true, false, null, or a list of constants."""

    value: Any


@dataclass(frozen=True, slots=True)
class Path(Node):
    """A dotted name such as ``ice.selected.relayed``; ``positions`` are each name's offsets."""

    names: tuple[str, ...]
    positions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Call(Node):
    """An aggregate over its argument: ``count(...)``, ``p95(...)``."""

    function: str
    argument: "Expr"


@dataclass(frozen=True, slots=True)
class Where(Node):
    """``subject where condition``: the items of ``subject`` for which ``condition`` holds."""

    subject: "Expr"
    condition: "Expr"


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """``left OP right`` with OP one of the comparators (``not in`` included)."""

    op: str
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True, slots=True)
class Quantified(Node):
    """``any|all|no body``: how many items of ``body`` must hold."""

    quantifier: str
    body: "Expr"


@dataclass(frozen=True, slots=True)
class Not(Node):
    """``not operand``."""

    operand: "Expr"


@dataclass(frozen=True, slots=True)
class Logical(Node):
    """``left and right`` / ``left or right``."""

    op: str
    left: "Expr"
    right: "Expr"


Expr = Union[Literal, Path, Call, Where, Compare, Quantified, Not, Logical]


# --- parser ------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the token list; one method per grammar rule."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0
        self.depth = 0
        if len(self.tokens) > MAX_TOKENS:
            raise ExpressionError(f"expression too long ({len(self.tokens) - 1} tokens, at most "
                                  f"{MAX_TOKENS - 1}); split it into several rules",
                                  self.tokens[MAX_TOKENS - 1].pos + 1, source)

    def enter(self) -> None:
        """Count one more level of nesting; refuse expressions nested too deep."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExpressionError(f"nested more than {MAX_NESTING} levels deep",
                                  self.token.pos + 1, self.source)

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def at(self, text: str) -> bool:
        """True when the current token is the keyword or symbol ``text``."""
        return self.token.kind in ("name", "symbol") and self.token.text == text

    def error(self, expected: str) -> ExpressionError:
        found = "end of expression" if self.token.kind == "end" else repr(self.token.text)
        return ExpressionError(f"expected {expected}, found {found}", self.token.pos + 1, self.source)

    def expect(self, text: str) -> Token:
        if not self.at(text):
            raise self.error(repr(text))
        return self.advance()

    def parse(self) -> Expr:
        if self.token.kind == "end":
            raise self.error("an expression")
        node = self.or_expr()
        if self.token.kind != "end":
            raise self.error("an operator ('and', 'or', a comparison) or the end")
        return node

    def or_expr(self) -> Expr:
        return self.logical("or", self.and_expr)

    def and_expr(self) -> Expr:
        return self.logical("and", self.not_expr)

    def logical(self, op: str, operand: Callable[[], Expr]) -> Expr:
        """``operand (op operand)*``, left-associative."""
        node = operand()
        while self.at(op):
            self.advance()
            right = operand()
            node = Logical(node.start, right.end, op, node, right)
        return node

    def not_expr(self) -> Expr:
        if self.at("not"):
            start = self.advance().pos
            self.enter()
            operand = self.not_expr()
            self.depth -= 1
            return Not(start, operand.end, operand)
        return self.quantified()

    def quantified(self) -> Expr:
        if self.token.kind == "name" and self.token.text in QUANTIFIERS:
            token = self.advance()
            body = self.comparison()
            return Quantified(token.pos, body.end, token.text, body)
        return self.comparison()

    def comparator(self) -> str | None:
        token = self.token
        if token.kind == "symbol" and token.text in SYMBOL_COMPARATORS:
            return token.text
        if token.kind == "name" and token.text in WORD_COMPARATORS:
            return token.text
        if self.at("not") and self.tokens[self.index + 1].text == "in":
            return "not in"
        return None

    def comparison(self) -> Expr:
        left = self.selection()
        op = self.comparator()
        if op is None:
            return left
        self.advance()
        if op == "not in":
            self.advance()
        right = self.selection()
        return Compare(left.start, right.end, op, left, right)

    def selection(self) -> Expr:
        subject = self.operand()
        if not self.at("where"):
            return subject
        self.advance()
        condition = self.or_expr()
        return Where(subject.start, condition.end, subject, condition)

    def operand(self) -> Expr:
        token = self.token
        if token.kind == "number" or token.kind == "string" or token.text in ("true", "false", "null"):
            return self.literal()
        if self.at("["):
            return self.list_literal()
        if self.at("("):
            self.advance()
            self.enter()
            node = self.or_expr()
            self.expect(")")
            self.depth -= 1
            return node
        if token.kind == "name" and token.text not in KEYWORDS:
            if self.tokens[self.index + 1].text == "(" and self.tokens[self.index + 1].kind == "symbol":
                return self.call()
            return self.path()
        raise self.error("a name, a value, '(' or '['")

    def literal(self) -> Literal:
        token = self.advance()
        end = token.pos + len(token.text)
        if token.kind == "number":
            number = float(token.text)
            value: Any = int(number) if re.fullmatch(r"-?\d+", token.text) else number
            return Literal(token.pos, end, value)
        if token.kind == "string":
            return Literal(token.pos, end, _unquote(token.text))
        return Literal(token.pos, end, {"true": True, "false": False, "null": None}[token.text])

    def list_literal(self) -> Literal:
        start = self.expect("[").pos
        values: list[Any] = []
        while not self.at("]"):
            token = self.token
            if not (token.kind in ("number", "string") or token.text in ("true", "false", "null")):
                raise self.error("a value (number, string, true, false, null) or ']'")
            values.append(self.literal().value)
            if not self.at("]"):
                self.expect(",")
        end = self.advance().pos + 1
        return Literal(start, end, tuple(values))

    def path(self) -> Path:
        first = self.advance()
        names = [first.text]
        positions = [first.pos]
        end = first.pos + len(first.text)
        while self.at("."):
            self.advance()
            token = self.token
            if token.kind != "name" or token.text in KEYWORDS:
                raise self.error("a field name after '.'")
            names.append(self.advance().text)
            positions.append(token.pos)
            end = token.pos + len(token.text)
        return Path(first.pos, end, tuple(names), tuple(positions))

    def call(self) -> Call:
        token = self.advance()
        name = token.text
        if name not in AGGREGATES and not PERCENTILE.match(name):
            raise ExpressionError(
                f"unknown function {name!r} (known: {', '.join(AGGREGATES)}, p1..p100)",
                token.pos + 1,
                self.source,
            )
        self.expect("(")
        self.enter()
        argument = self.or_expr()
        end = self.expect(")").pos + 1
        self.depth -= 1
        return Call(token.pos, end, name, argument)


def _unescape(match: re.Match[str]) -> str:
    escape = match.group(1)
    if len(escape) == 5:  # \uXXXX, as json.dumps writes control characters
        return chr(int(escape[1:], 16))
    return _ESCAPES.get(escape, escape)


def _unquote(text: str) -> str:
    """The value of a quoted string token (escapes: \\n \\t \\\\ \\" \\' \\uXXXX)."""
    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", _unescape, text[1:-1], flags=re.DOTALL)


def parse(source: str) -> Expr:
    """Parse one rule expression; raises :class:`ExpressionError` (exit 2) with the column."""
    return _Parser(source).parse()
