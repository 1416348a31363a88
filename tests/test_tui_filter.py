"""The TUI's filter language, the compact index behind it, the ladder text forms and the pcapng
export, on the bundled captures (no Textual app involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stunscope.analysis import Analyzer
from stunscope.capture.records import read_records
from stunscope.capture.stream import open_events
from stunscope.tui.context import AnalysisContext
from stunscope.tui.export import pick_records, write_pcapng
from stunscope.tui.filter import FilterError, compile_filter
from stunscope.tui.index import RELAYED_COPY, MessageIndex, Outcome
from stunscope.tui.ladder import Ladder
from stunscope.tui.summary import row_label
from stunscope.tui.view import RowView

from conftest import CAPTURES


class Loaded:
    """An index and its analysis, as the app builds them."""

    def __init__(self, name: str) -> None:
        path = CAPTURES / name
        if not path.is_file():
            pytest.skip(f"captures/{name} is absent")
        self.path = path
        self.index = MessageIndex()
        analyzer = Analyzer()
        for event in open_events(path):
            self.index.add(event)
            analyzer.feed(event)
        self.index.finish()
        self.analysis = analyzer.snapshot(final=True)
        self.context = AnalysisContext(self.index, self.analysis)

    def rows(self, expression: str, fold: bool = False) -> list[int]:
        view = RowView(self.index, compile_filter(expression, self.index, self.context),
                       fold=fold)
        view.extend()
        return list(view.rows)

    def labels(self, expression: str) -> list[str]:
        return [row_label(self.index, r) for r in self.rows(expression)]


@pytest.fixture(scope="module")
def turn() -> Loaded:
    return Loaded("turn-udp.pcapng")


@pytest.fixture(scope="module")
def unreachable() -> Loaded:
    return Loaded("ice-unreachable.pcapng")


def test_fields_and_operators(turn: Loaded) -> None:
    assert set(turn.labels("method=allocate class=error")) == {"Allocate error"}
    assert set(turn.labels("method=0x009")) == {"ChannelBind request", "ChannelBind success"}
    assert set(turn.labels("kind=channeldata")) == {"ChannelData"}
    assert set(turn.labels("error=401")) == {"Allocate error"}
    assert turn.rows("error>=400") == turn.rows("error=401")
    assert turn.rows("frame<=3") == [0, 1, 2]
    assert len(turn.rows("")) == turn.index.count


def test_boolean_structure(turn: Loaded) -> None:
    index = turn.index
    either = set(turn.rows("method=refresh or method=channelbind"))
    assert either == set(turn.rows("method=refresh")) | set(turn.rows("method=channelbind"))
    assert set(turn.rows("not kind=channeldata")) == set(range(index.count)) - set(
        turn.rows("kind=channeldata"))
    assert turn.rows("(method=allocate or method=refresh) and class=success") == turn.rows(
        "class=success (method=allocate || method=refresh)")
    assert turn.rows("! class=request") == turn.rows("not class=request")
    # A class comparison holds for STUN messages only: ChannelData is neither = nor != request.
    assert set(turn.rows("class!=request")) == set(turn.rows("not class=request")) - set(
        turn.rows("kind=channeldata"))


def test_addresses_ports_txid_user_and_free_text(turn: Loaded) -> None:
    index = turn.index
    server = str(index.endpoints[index.dst[0]])
    port = index.endpoints[index.dst[0]].port
    assert turn.rows(f"dst={server}") == turn.rows(f"dport={port}")
    assert set(turn.rows(f"addr={server}")) == set(turn.rows(f"src={server}")) | set(
        turn.rows(f"dst={server}"))
    txid = index.txid_hex(0)
    assert turn.labels(f"txid={txid[:10]}") == ["Allocate request", "Allocate error"]
    assert set(turn.labels("user=alice")) >= {"Allocate request", "Allocate success"}
    assert turn.rows("Unauthorized") == turn.rows("error=401")
    assert turn.rows('text~"401 Unauth"') == turn.rows("error=401")


def test_analysis_fields(turn: Loaded, unreachable: Loaded) -> None:
    verdict = unreachable.analysis.verdicts[0]
    frames = {unreachable.index.frame[r] for r in unreachable.rows(f"verdict={verdict.code}")}
    assert frames and frames <= set(verdict.frames)
    assert unreachable.rows("session=1") and not unreachable.rows("session=2")
    allocation = turn.analysis.allocations[1]
    ends = {allocation.client, allocation.server, allocation.relayed}
    index = turn.index
    for row in turn.rows("alloc=2"):
        pair = {str(index.endpoints[index.src[row]]), str(index.endpoints[index.dst[row]])}
        assert pair & ends


@pytest.mark.parametrize(("expression", "message"), [
    ("method=", "needs a value"),
    ("(method=binding", "missing ')'"),
    ("method=binding)", "unexpected ')'"),
    ("colour=red", "unknown field 'colour'"),
    ("method=frobnicate", "unknown method 'frobnicate' at 1"),
    ("class=answer", "class is one of"),
    ("port~34", "'~' needs a text field"),
    ("method>binding", "needs a numeric field"),
    ("frame=abc", "expected a number"),
    ("not", "ends too early"),
])
def test_errors_say_what_and_where(turn: Loaded, expression: str, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_filter(expression, turn.index, turn.context)


def test_index_pairs_and_folds_retransmissions(unreachable: Loaded) -> None:
    index = unreachable.index
    requests = unreachable.rows("method=binding class=request")
    first, *retransmissions = requests
    assert len(retransmissions) == 4 and index.retransmissions[first] == 4
    assert all(index.partner[r] == first for r in retransmissions)
    assert index.outcome[first] == Outcome.ERROR  # every transmission drew an ICMP error
    assert first in unreachable.rows("method=binding", fold=True)
    assert not set(retransmissions) & set(unreachable.rows("method=binding", fold=True))
    assert unreachable.rows("retx=1") == retransmissions


def test_unanswered_requests_time_out_and_icmp_errors_fail_them() -> None:
    loaded = Loaded("unanswered.pcapng")
    outcomes = [Outcome(loaded.index.outcome[r]) for r in loaded.rows("class=request", fold=True)]
    assert outcomes == [Outcome.TIMEOUT, Outcome.ERROR]


def test_answers_to_retransmissions_fold_with_them() -> None:
    loaded = Loaded("ice-wrong-password.pcapng")
    index = loaded.index
    folded = loaded.rows("class=request or class=error", fold=True)
    requests = [r for r in folded if index.cls[r] == 0]
    answers = [r for r in folded if index.cls[r] == 3]
    assert len(requests) == len(answers) == 2  # one check each way, each answered 401
    assert all(index.partner[a] in requests for a in answers)
    again = loaded.rows("retx=1 class=error")
    assert again and all(index.partner[r] in requests for r in again)


def test_index_pairs_responses_with_requests(turn: Loaded) -> None:
    index = turn.index
    request, response = turn.rows("txid=" + index.txid_hex(0))
    assert index.partner[request] == response and index.partner[response] == request
    assert index.outcome[request] == Outcome.ERROR and index.error[response] == 401


def test_ladder_text_and_mermaid(turn: Loaded) -> None:
    rows = turn.rows("alloc=2")
    ladder = Ladder(turn.index, rows)
    text = list(ladder.text_lines())
    assert len(text) == 1 + 2 * len(rows)
    assert all(name in text[0] for name in ladder.names)
    assert "▶" in text[2] or "◀" in text[2]
    mermaid = list(ladder.mermaid_lines())
    assert mermaid[0] == "sequenceDiagram"
    assert len(mermaid) == 1 + len(ladder.names) + len(rows)
    assert mermaid[len(ladder.names) + 1].startswith("    P0->>P1: Allocate request")


def test_pcapng_export_round_trips(turn: Loaded, tmp_path: Path) -> None:
    frames = sorted({turn.index.frame[r] for r in turn.rows("alloc=2")})
    out = tmp_path / "alloc.pcapng"
    assert write_pcapng(out, pick_records(read_records(turn.path), frames)) == len(frames)
    original = {r.frame: r for r in read_records(turn.path)}
    written = list(read_records(out))
    assert [(r.data, r.linktype, r.orig_len) for r in written] == [
        (original[f].data, original[f].linktype, original[f].orig_len) for f in frames]
    # Written with microsecond timestamps (the pcapng default resolution).
    assert all(abs(r.ts - original[f].ts) <= 1e-6 for r, f in zip(written, frames))


def test_a_message_on_both_legs_of_a_relay_is_one_message() -> None:
    loaded = Loaded("ice-turn-relay.pcapng")
    index = loaded.index
    copies = [r for r in range(index.count) if index.flags[r] & RELAYED_COPY]
    assert copies
    for copy in copies:
        first = index.partner[copy]
        if index.cls[copy] != 0:  # a response: compare with the first answer
            first = index.partner[first]
        # Drawn between the same ends (relay and peer), carried differently (one tunnelled).
        assert (index.src[copy], index.dst[copy]) == (index.src[first], index.dst[first])
        assert index.tunnel(copy) != index.tunnel(first)
    assert not set(copies) & set(loaded.rows("", fold=True))
    assert not set(copies) & set(loaded.rows("retx=1"))
