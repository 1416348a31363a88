"""Free text in the TUI filter: the fast match (:class:`~stunscope.tui.context.TextMatch`) keeps
exactly the rows that a plain reference keeps, one that decodes every message, builds its label,
addresses and summary, and looks for the lower-cased word in them.

The query words come from the captures themselves (every word of every row's text, pieces of
them, other case, wire strings the summary does not print such as SOFTWARE and REALM), plus words
that no capture holds, so that a fast path that drops or adds a row fails here.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from stunscope.capture.stream import open_events
from stunscope.tui import context as context_module
from stunscope.tui.context import AnalysisContext
from stunscope.tui.filter import compile_filter
from stunscope.tui.index import MessageIndex
from stunscope.tui.summary import SUMMARY_WORDS, Summaries, decode_row, row_label
from stunscope.tui.view import RowView
from stunscope.wire.attributes import nonce, realm, software
from stunscope.wire.message import StunMessage

from conftest import bundled_captures, corpus_files

_EXTRA = (
    "coturn", "nomatchxyz", "zz", "k", "\u212a", "\u0130", "\u00e9", "\\x", "x1b", "-", "!", ":",
    ".", ",", "(+", ")", "]", "[", "0", "ms", "rtt", "user", "ch 0x", "  ", "binding request",
    "request 1", "user ", " success", "unauthorized", "UNAUTHORIZED", "Stale Nonce", "401",
    "bad", "face", "s", "b", "b ",
)


def _load(path: Path) -> MessageIndex:
    index = MessageIndex()
    for event in open_events(path):
        index.add(event)
    index.finish()
    return index


def _reference_texts(index: MessageIndex) -> list[str]:
    """Every row's text, built the plain way: label, addresses, summary, lower-cased."""
    summaries = Summaries(index)
    return [
        " ".join((row_label(index, row), str(index.endpoints[index.src[row]]),
                  str(index.endpoints[index.dst[row]]), summaries(row))).lower()
        for row in range(index.count)
    ]


def _wire_strings(index: MessageIndex) -> set[str]:
    """SOFTWARE, REALM and NONCE values: in the bytes, not in the summaries."""
    found: set[str] = set()
    for row in range(index.count):
        message = decode_row(index, row)
        if isinstance(message, StunMessage):
            found.update(filter(None, (software(message), realm(message), nonce(message))))
    return found


def _queries(texts: list[str], index: MessageIndex) -> set[str]:
    words = {word for text in texts for word in text.split(" ") if word}
    words |= {" ".join(text.split(" ")[i:i + 2]) for text in texts[:20] for i in (0, 3)}
    words |= {piece for word in list(words) for piece in (word[: len(word) // 2],
                                                         word[len(word) // 2:], word[1:-1])}
    words |= {str(e.port) for e in index.endpoints} | {e.ip[:5] for e in index.endpoints}
    wire = _wire_strings(index)
    words |= wire | {w for text in wire for w in text.split()}
    words |= set(SUMMARY_WORDS) | set(_EXTRA)
    return words | {w.upper() for w in list(words)} | {w.title() for w in list(words)}


def _compare(path: Path) -> int:
    """Check every query on ``path``; returns how many queries matched some row."""
    index = _load(path)
    texts = _reference_texts(index)
    context = AnalysisContext(index, None)
    matching = 0
    for query in sorted(_queries(texts, index)):
        needle = query.lower()
        want = [row for row, text in enumerate(texts) if needle in text]
        match = context.text_match(needle)
        got = [row for row in range(index.count) if match(row)]
        assert got == want, f"{path.name}: {query!r}"
        matching += bool(want)
    index.close()
    return matching


@pytest.mark.parametrize("path", bundled_captures(), ids=lambda p: p.name)
def test_fast_text_match_equals_reference(path: Path) -> None:
    assert _compare(path) > 20


@pytest.mark.slow
@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.parent.name + "/" + p.name)
def test_fast_text_match_equals_reference_on_corpus(path: Path) -> None:
    _compare(path)


def test_filter_bar_words_and_negation() -> None:
    """Through the parser and the view, as the app runs them: bare, quoted, ``text!=``."""
    index = _load(bundled_captures()[0].parent / "turn-udp.pcapng")
    texts = _reference_texts(index)
    context = AnalysisContext(index, None)

    def rows(expression: str) -> list[int]:
        view = RowView(index, compile_filter(expression, index, context), fold=False)
        view.extend(cancelled=lambda: False)
        return list(view.rows)

    for word in ("allocate", "Unauthorized", "3478", "ChannelData", "nomatchxyz"):
        want = [row for row, text in enumerate(texts) if word.lower() in text]
        assert rows(word) == want
        assert rows(f'"{word}"') == want
        assert rows(f"text!={word}") == [r for r in range(index.count) if r not in want]
    assert rows('"allocate error"') == [r for r, t in enumerate(texts) if "allocate error" in t]
    assert rows("allocate unauthorized") == [
        r for r, t in enumerate(texts) if "allocate" in t and "unauthorized" in t]


def test_rows_endpoints_and_usernames_arriving_after_the_match_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A live capture grows the index under a filter: new endpoints and USERNAMEs count too."""
    monkeypatch.setattr(context_module, "_CHUNK", 4)
    path = bundled_captures()[0].parent / "ice-turn-relay.pcapng"
    events = list(open_events(path))
    index = MessageIndex()
    context = AnalysisContext(index, None)
    half = len(events) // 2
    for event in events[:half]:
        index.add(event)
    index.publish()
    full = _load(path)
    texts = _reference_texts(full)
    words = sorted({w for text in texts[half:] for w in text.split(" ") if w})
    matches = {word: context.text_match(word) for word in words}
    early = {word: [r for r in range(index.count) if match(r)] for word, match in matches.items()}
    for event in events[half:]:
        index.add(event)
    index.finish()
    for word, match in matches.items():
        got = early[word] + [r for r in range(half, index.count) if match(r)]
        assert got == [r for r, text in enumerate(texts) if word in text], word


@pytest.mark.parametrize("chunk", [3, 8192])
def test_rows_asked_in_any_order(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search asks rows going down or up from the cursor, in a view with gaps; small chunks
    make every order cross chunk edges."""
    monkeypatch.setattr(context_module, "_CHUNK", chunk)
    index = _load(bundled_captures()[0].parent / "turn-tcp.pcapng")
    texts = _reference_texts(index)
    context = AnalysisContext(index, None)
    order = list(range(index.count))
    random.Random(8489).shuffle(order)
    for word in ("allocate", "3478", "unauthorized", "lifetime", "0x4", "nomatchxyz"):
        want = {row for row, text in enumerate(texts) if word in text}
        for rows in (order, order[::-1], range(index.count - 1, -1, -1), range(0, index.count, 7)):
            match = context.text_match(word)
            assert {row for row in rows if match(row)} == want & set(rows), word
