"""Property: any sequence of real encoded messages, in any order and timing, never crashes the
analyzer, and its JSON is serialisable with every list in first-frame order."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from test_analysis_support import (
    AttrSpec,
    Script,
    channel,
    controlled,
    controlling,
    error,
    lifetime,
    priority,
    username,
    xor_mapped,
    xor_peer,
    xor_relayed,
    USE_CANDIDATE,
    change_request,
    connection_id,
    data_attr,
    integrity,
)

ENDPOINTS = ["10.0.0.1:5000", "10.0.0.2:6000", "192.0.2.1:3478", "192.0.2.1:50000", "[2001:db8::1]:3478"]
TXIDS = [bytes([i]) * 12 for i in range(6)]
ATTRS: list[AttrSpec] = [
    channel(0x4000), channel(0x4001), controlled(1), controlling(2), error(401), error(438),
    error(437), error(403), error(487), lifetime(0), lifetime(30), priority(110),
    username("a:b"), username("b:a"), username("alice"), xor_mapped("203.0.113.1:1"),
    xor_peer("198.51.100.1:7"), xor_relayed("192.0.2.1:50000"), USE_CANDIDATE,
    change_request(True, True), connection_id(5), data_attr(b"\x00\x01\x00\x00" + bytes(16)),
    integrity(),
]

event = st.tuples(
    st.floats(0, 100), st.sampled_from(ENDPOINTS), st.sampled_from(ENDPOINTS),
    st.sampled_from([1, 3, 4, 6, 7, 8, 9, 0xA, 0xB, 0xC, 0x200]), st.integers(0, 3),
    st.sampled_from(TXIDS), st.lists(st.sampled_from(ATTRS), max_size=4),
    st.sampled_from([None, None, "send", "data", "channeldata"]), st.booleans(),
)


def script(events: list) -> Script:
    """The drawn events as a scenario, in time order."""
    s = Script()
    for at, src, dst, method, cls, tid, attrs, tunnel, is_cd in sorted(events, key=lambda e: e[0]):
        if is_cd:
            s.channeldata(at, src, dst, 0x4000, b"payload")
        else:
            s.send(at, src, dst, method, cls, tid, attrs, tunnel=tunnel,
                   peer="198.51.100.1:7" if tunnel in ("send", "data") else None,
                   chan=0x4000 if tunnel == "channeldata" else None)
    return s


@settings(max_examples=150, deadline=None)
@given(st.lists(event, max_size=40))
def test_random_event_sequences_never_crash(events) -> None:
    analysis = script(events).analyze()
    doc = analysis.to_json()
    json.dumps(doc)
    for key in ("allocations", "ice", "nat"):
        firsts = [item["first_frame"] for item in doc[key]]
        assert firsts == sorted(firsts)
    firsts = [t["request_frames"][0] if t["request_frames"] else t["response_frame"] for t in doc["transactions"]]
    assert firsts == sorted(firsts)
    assert all(v["severity"] in ("error", "warning", "info") for v in doc["verdicts"])


@settings(max_examples=40, deadline=None)
@given(st.lists(event, max_size=30), st.integers(0, 30))
def test_snapshots_do_not_change_the_analysis(events, cut) -> None:
    from stunscope.analysis import Analyzer

    s = script(events)
    plain, watched = Analyzer(), Analyzer()
    for i, ev in enumerate(s.events):
        plain.feed(ev)
        watched.feed(ev)
        if i == cut:
            watched.snapshot()
            watched.snapshot(final=True)
    assert plain.snapshot(final=True) == watched.snapshot(final=True)
