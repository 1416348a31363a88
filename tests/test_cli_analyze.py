"""``stunscope analyze``: text report (verdicts first), JSON contract, damaged input, usage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CORPUS

from stunscope.cli import main

STUN = CORPUS / "ntop+nDPI" / "stun.pcap"
CONTRACT = {
    "transactions": {"txid", "method", "client", "server", "request_frames", "response_frame",
                     "outcome", "error_code", "rtt_ms", "retransmissions"},
    "allocations": {"client", "server", "transport", "relayed", "mapped", "lifetime_s", "state",
                    "permissions", "channels"},
    "ice": {"local_ufrag", "remote_ufrag", "controlling", "state", "pairs", "selected_pair",
            "role_conflicts"},
    "nat": {"local", "mapped", "mapping_behavior", "filtering_behavior", "rfc3489_type"},
    "verdicts": {"code", "severity", "message", "frames"},
}


@pytest.fixture
def stun_pcap() -> Path:
    if not STUN.is_file():
        pytest.skip(f"{STUN} is absent")
    return STUN


def test_json_follows_the_contract(stun_pcap: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(stun_pcap), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "stunscope.analysis/1"
    assert {"file", "frames", "messages", "first_ts", "last_ts", "evictions"} <= set(doc["capture"])
    for key, fields in CONTRACT.items():
        assert doc[key], key
        for item in doc[key]:
            assert fields <= set(item), (key, fields - set(item))
    pair_fields = {"local", "remote", "state", "nominated", "local_type", "remote_type", "rtt_ms"}
    assert all(pair_fields <= set(p) for s in doc["ice"] for p in s["pairs"])
    assert all({"peer_ip"} <= set(p) for a in doc["allocations"] for p in a["permissions"])
    assert all({"number", "peer"} <= set(c) for a in doc["allocations"] for c in a["channels"])
    assert doc["capture"]["frames"] == 201


def test_cli_json_is_to_json(stun_pcap: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stunscope.analysis import analyze
    from stunscope.capture.stats import CaptureStats
    from stunscope.capture.stream import open_events

    main(["analyze", str(stun_pcap), "--format", "json"])
    printed = json.loads(capsys.readouterr().out)
    stats = CaptureStats()
    direct = analyze(open_events(stun_pcap, stats), stats=stats, file=str(stun_pcap)).to_json()
    assert printed == json.loads(json.dumps(direct))


def test_json_is_stable_between_runs(stun_pcap: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["analyze", str(stun_pcap), "--format", "json"])
    first = capsys.readouterr().out
    main(["analyze", str(stun_pcap), "--format", "json"])
    assert capsys.readouterr().out == first


def test_text_report_puts_verdicts_first(stun_pcap: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(stun_pcap)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("VERDICTS\n")
    order = [out.index(h) for h in ("VERDICTS", "ICE SESSIONS", "TURN ALLOCATIONS", "TRANSACTIONS", "CAPTURE")]
    assert order == sorted(order)
    assert "turn-forbidden-peer" in out and "\x1b" not in out


def test_damaged_capture_reports_then_exits_3(stun_pcap: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.pcap"
    data = stun_pcap.read_bytes()
    cut.write_bytes(data[: len(data) // 2 + 7])
    assert main(["analyze", str(cut), "--format", "json"]) == 3
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["capture"]["complete"] is False and doc["capture"]["frames"] > 0
    assert len(captured.err.strip().splitlines()) == 1


def test_missing_file_and_sdp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "nope.pcap")]) == 3
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    assert main(["analyze", str(empty), "--sdp", str(tmp_path / "no.sdp")]) == 3
    assert main(["analyze", str(empty)]) == 0
    assert "nothing to report" in capsys.readouterr().out
