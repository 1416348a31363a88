"""The filter bar's expression language, compiled to a predicate over index rows.

Grammar (case-insensitive keywords)::

    expr  := and ( ("or" | "||") and )*
    and   := unary ( ["and" | "&&"] unary )*          # juxtaposition means "and"
    unary := ("not" | "!") unary | "(" expr ")" | term
    term  := FIELD OP VALUE | WORD                   # a bare word is free text

Operators: ``=`` (also ``==``), ``!=``, ``~`` (contains), ``<``, ``<=``, ``>``, ``>=``.
Fields are listed, with what they match, in :data:`FIELD_HELP` (the help screen shows it).
A comparison on a STUN field (``method``, ``class``) holds for STUN messages only, so
``class!=request`` keeps responses and indications while ``not class=request`` also keeps
ChannelData.

Examples: ``method=binding class=error``, ``addr=10.0.0.1 or port=3478``,
``verdict=ice-no-response``, ``not kind=channeldata``, ``401``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection
from typing import NamedTuple, Protocol

from stunscope.tui.index import RETRANSMISSION, MessageIndex, Outcome, RowKind, TUNNELS
from stunscope.wire.message import Endpoint, MessageClass
from stunscope.wire.registry import METHODS

Predicate = Callable[[int], bool]

_TOKEN = re.compile(
    r'\s*(?:(?P<paren>[()])|(?P<op>==|!=|<=|>=|=|~|<|>)|(?P<str>"[^"]*")|(?P<word>[^\s()=!<>~"]+)'
    r"|(?P<bang>!))"
)
_OPS: dict[str, Callable[[object, object], bool]] = {
    "=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}
_KINDS = {"stun": RowKind.STUN, "classic": RowKind.CLASSIC, "classic-stun": RowKind.CLASSIC,
          "channeldata": RowKind.CHANNELDATA, "icmp": RowKind.UNREACHABLE,
          "undecodable": RowKind.UNDECODABLE}
_CLASSES = {c.label: c for c in MessageClass}
_OUTCOMES = {o.name.lower(): o for o in Outcome}
FIELD_HELP = {
    "method": "method name or code: method=allocate, method=0x003",
    "class": "request, indication, success, error",
    "kind": "stun, classic, channeldata, icmp, undecodable",
    "outcome": "pending, success, error, timeout (a request's fate)",
    "addr": "source or destination: 10.0.0.1 or 10.0.0.1:3478",
    "src": "source address (dst: destination)",
    "dst": "destination address",
    "port": "source or destination port (sport, dport)",
    "sport": "source port",
    "dport": "destination port",
    "txid": "transaction id, a hex prefix",
    "error": "error code: error=401, error>=400",
    "verdict": "a verdict code: the rows of its evidence frames",
    "session": "ICE session number, as in the ICE view",
    "alloc": "TURN allocation number, as in the TURN view",
    "frame": "frame number: frame>=100",
    "user": "USERNAME: user=alice, user~ufrag",
    "tunnel": "channeldata, send, data",
    "text": "free text in label, addresses, summary (a bare word)",
    "retx": "retx=1 retransmissions only, retx=0 none",
}
"""Every field and what it matches (one short line each, for the help screen)."""

FIELDS = tuple(FIELD_HELP)


class FilterError(ValueError):
    """A filter expression that does not parse; the message says where."""


class FilterContext(Protocol):
    """What the filter needs from the analysis (and the display) besides the index."""

    def verdict_frames(self, code: str) -> Collection[int]:
        """Evidence frames of every verdict with this code."""

    def session_usernames(self, number: int) -> Collection[str]:
        """USERNAME values (``remote:local`` and the reverse) of ICE session ``number``."""

    def allocation_endpoints(self, number: int) -> Collection[Endpoint]:
        """Client, server and relayed addresses of TURN allocation ``number``."""

    def row_text(self, row: int) -> str:
        """Everything free text matches against: label, addresses, summary."""

    def text_match(self, needle: str) -> Predicate:
        """Rows whose lower-cased :meth:`row_text` contains ``needle`` (lower-case)."""


class _Term(NamedTuple):
    field: str
    op: str
    value: str
    position: int


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"unexpected {text[pos:].strip()[:10]!r} at {pos + 1}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "str":
            kind, value = "word", value[1:-1]
        tokens.append((kind, value, match.start(kind) + 1))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, compile_term: Callable[[_Term], Predicate]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.compile_term = compile_term

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] in ("word", "bang") and token[1].lower() in words:
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        if not self.tokens:
            return lambda row: True
        predicate = self.expr()
        if self.peek():
            raise FilterError(f"unexpected {self.peek()[1]!r} at {self.peek()[2]}")
        return predicate

    def expr(self) -> Predicate:
        parts = [self.conjunction()]
        while self.keyword("or", "||"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while True:
            self.keyword("and", "&&")
            token = self.peek()
            if token is None or token[1] == ")" or (
                token[0] == "word" and token[1].lower() in ("or", "||")
            ):
                break
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def unary(self) -> Predicate:
        if self.keyword("not", "!"):
            inner = self.unary()
            return lambda row: not inner(row)
        token = self.peek()
        if token is None:
            raise FilterError("expression ends too early")
        if token[0] == "paren":
            if token[1] == ")":
                raise FilterError(f"unexpected ')' at {token[2]}")
            self.take()
            inner = self.expr()
            closing = self.peek()
            if not closing or closing[1] != ")":
                raise FilterError(f"missing ')' for '(' at {token[2]}")
            self.take()
            return inner
        kind, word, position = self.take()
        if kind != "word":
            raise FilterError(f"unexpected {word!r} at {position}")
        following = self.peek()
        if following and following[0] == "op":
            _, op, _ = self.take()
            if not self.peek() or self.peek()[0] != "word":
                raise FilterError(f"{word}{op} needs a value (at {position})")
            return self.compile_term(_Term(word.lower(), op, self.take()[1], position))
        return self.compile_term(_Term("text", "~", word, position))


def _method_code(value: str, position: int) -> int:
    if value.lower().startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            raise FilterError(f"bad method code {value!r} at {position}") from None
    for code, name in METHODS.items():
        if name.lower() == value.lower():
            return code
    raise FilterError(f"unknown method {value!r} at {position}")


def _int(value: str, position: int) -> int:
    try:
        return int(value, 0)
    except ValueError:
        raise FilterError(f"expected a number, got {value!r} at {position}") from None


def _choice(table: dict[str, int], value: str, term: _Term) -> int:
    try:
        return table[value.lower()]
    except KeyError:
        raise FilterError(
            f"{term.field} is one of {', '.join(table)} (at {term.position})"
        ) from None


def _compare(op: str, position: int, numeric: bool) -> Callable[[object, object], bool]:
    if op == "~":
        if numeric:
            raise FilterError(f"'~' needs a text field (at {position})")
        return lambda a, b: str(b) in str(a)
    if not numeric and op not in ("=", "==", "!="):
        raise FilterError(f"{op!r} needs a numeric field (at {position})")
    return _OPS[op]


def compile_filter(text: str, index: MessageIndex, context: FilterContext) -> Predicate:
    """Compile ``text`` to ``predicate(row) -> bool``; raises :class:`FilterError`."""

    def term(t: _Term) -> Predicate:
        field, op, value, pos = t
        if field not in FIELDS:
            raise FilterError(f"unknown field {field!r} at {pos} (fields: {', '.join(FIELDS)})")
        numeric = field in ("port", "sport", "dport", "error", "frame", "session", "alloc", "retx")
        cmp = _compare(op, pos, numeric)
        if field == "method":
            code = _method_code(value, pos)
            stun = (RowKind.STUN, RowKind.CLASSIC)
            return lambda row: index.kind[row] in stun and cmp(index.method[row], code)
        if field == "class":
            cls = _choice(_CLASSES, value, t)
            stun = (RowKind.STUN, RowKind.CLASSIC)
            return lambda row: index.kind[row] in stun and cmp(index.cls[row], cls)
        if field == "kind":
            kind = _choice(_KINDS, value, t)
            return lambda row: cmp(index.kind[row], kind)
        if field == "outcome":
            outcome = _choice(_OUTCOMES, value, t)
            return lambda row: cmp(index.outcome[row], outcome)
        if field in ("addr", "src", "dst"):
            return _address(field, cmp, op, value, index)
        if field in ("port", "sport", "dport"):
            port = _int(value, pos)
            ends = [index.src] if field == "sport" else [index.dst] if field == "dport" else \
                [index.src, index.dst]
            eps = index.endpoints
            if op == "!=":
                return lambda row: all(eps[e[row]].port != port for e in ends)
            return lambda row: any(cmp(eps[e[row]].port, port) for e in ends)
        if field == "txid":
            want = value.lower()
            return lambda row: cmp(index.txid_hex(row).startswith(want), True)
        if field == "error":
            code = _int(value, pos)
            return lambda row: index.error[row] != 0 and cmp(index.error[row], code)
        if field == "frame":
            frame = _int(value, pos)
            return lambda row: cmp(index.frame[row], frame)
        if field == "retx":
            flag = _int(value, pos)
            return lambda row: cmp(int(bool(index.flags[row] & RETRANSMISSION)), flag)
        if field == "tunnel":
            tunnel = _choice({t: i for i, t in enumerate(TUNNELS) if t}, value, t)
            return lambda row: cmp(index.flags[row] & 0x03, tunnel)
        if field == "user":
            names = index.usernames
            return lambda row: cmp(names[index.user[row]], value) if op != "~" else \
                value in names[index.user[row]]
        if field == "verdict":
            frames = set(context.verdict_frames(value))
            return lambda row: cmp(index.frame[row] in frames, True)
        if field == "session":
            ids = index.username_ids(set(context.session_usernames(_int(value, pos))))
            return lambda row: cmp(index.user[row] in ids, True)
        if field == "alloc":
            wanted = {index.endpoint_id(e) for e in context.allocation_endpoints(_int(value, pos))}
            wanted.discard(None)
            return lambda row: cmp(index.src[row] in wanted and index.dst[row] in wanted, True)
        matches = context.text_match(value.lower())
        if op == "!=":
            return lambda row: not matches(row)
        return matches

    return _Parser(text, term).parse()


def _address(
    field: str, cmp: Callable[[object, object], bool], op: str, value: str, index: MessageIndex
) -> Predicate:
    eps = index.endpoints
    ends = [index.src] if field == "src" else [index.dst] if field == "dst" else \
        [index.src, index.dst]
    with_port = value.count(":") == 1 or value.startswith("[")

    def key(endpoint: Endpoint) -> str:
        return str(endpoint) if with_port else endpoint.ip

    if op == "!=":
        return lambda row: all(key(eps[e[row]]) != value for e in ends)
    return lambda row: any(cmp(key(eps[e[row]]), value) for e in ends)
