"""Differential test against tshark: every bundled and corpus capture, message by message.

For each capture, tshark (run once, JSON output) and stunscope decode the same file; every
disagreement on frame, method, class, transaction id, mapped/relayed/peer addresses, error code
or fingerprint status must be one of the documented cases where tshark is wrong or blind
(``stunscope.report.crosscheck.KNOWN_CASES``, evidence in docs/tshark-disagreements.md).
The crafted tests below reproduce each documented case from bytes, so the table cannot rot.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from conftest import bundled_captures, corpus_files
from stunscope.report.crosscheck import KNOWN_CASES, CrosscheckResult, Disagreement, compare, crosscheck
from stunscope.wire.encode import encode_message, encode_ms_turn_mux, encode_u32, encode_xor_address
from stunscope.wire.message import Endpoint

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
]
pyshark = pytest.importorskip("pyshark")

ROOT = Path(__file__).resolve().parent.parent


def _label(path: Path) -> str:
    return str(path.relative_to(path.parents[1]))


CAPTURES = bundled_captures() + corpus_files()


def _describe(result: CrosscheckResult) -> str:
    return "\n".join(f"frame {d.frame} {d.field}: stunscope={d.ours!r} tshark={d.theirs!r}"
                     for d in result.unexplained[:20])


@pytest.mark.parametrize("path", CAPTURES, ids=[_label(p) for p in CAPTURES])
def test_no_unexplained_disagreement(path: Path) -> None:
    result = crosscheck(path)
    assert result.error is None, result.error
    assert not result.unexplained, f"{len(result.unexplained)} unexplained:\n{_describe(result)}"


# ----------------------------------------------------------------------------- crafted evidence

def _frame(payload: bytes, sport: int = 40000, dport: int = 3478) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp


def _pcap(tmp_path: Path, payloads: list[bytes], **ports: int) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, payload in enumerate(payloads):
        frame = _frame(payload, **ports)
        out.append(struct.pack("<IIII", 1_700_000_000, i, len(frame), len(frame)) + frame)
    path = tmp_path / "crafted.pcap"
    path.write_bytes(b"".join(out))
    return path


def _cases(result: CrosscheckResult) -> set[str | None]:
    return {d.case for d in result.disagreements}


def test_methods_above_0xff_are_rejected_by_tshark(tmp_path: Path) -> None:
    msgs = [encode_message(m, 0, bytes([m & 0xFF]) * 12, [(0x8022, b"test")]) for m in (0x001, 0x0FF, 0x100, 0x201)]
    result = crosscheck(_pcap(tmp_path, msgs))
    assert result.compared == 2 and result.ours_only == 2
    assert _cases(result) == {"method-above-0xff"}


def test_ms_turn_mux_is_shown_as_channeldata_by_tshark(tmp_path: Path) -> None:
    inner = encode_message(0x001, 2, b"m" * 12, [])
    result = crosscheck(_pcap(tmp_path, [encode_ms_turn_mux(b"S" * 8, inner)]))
    assert result.disagreements and _cases(result) == {"ms-turn-mux"}


def test_overrun_attribute_value_is_read_by_tshark(tmp_path: Path) -> None:
    msg = bytearray(encode_message(0x001, 2, b"o" * 12, [(0x0001, b"\x00\x01\x11\xfc\x46\xc7\x80\x2e")],
                                   fingerprint=False))
    msg[22:24] = b"\xff\xff"  # MAPPED-ADDRESS length 65535 (corelight's stun-attribute-length-ffff)
    result = crosscheck(_pcap(tmp_path, [bytes(msg)]))
    assert [(d.field, d.case) for d in result.disagreements] == [("mapped", "overrun-attribute")]


def test_response_port_and_port_3503_do_not_disagree_on_compared_fields(tmp_path: Path) -> None:
    """tshark 4.0 decodes RESPONSE-PORT (RFC 5780 §7.5) as an XOR-RESPONSE-TARGET address and,
    with default preferences, UDP 3503 as MPLS echo; the crosscheck runs tshark with heuristics
    first, and RESPONSE-PORT is not a compared field, so neither shows as a disagreement."""
    msg = encode_message(0x001, 0, b"p" * 12, [(0x0027, encode_u32(5000 << 16))])
    result = crosscheck(_pcap(tmp_path, [msg], dport=3503))
    assert result.compared == 1 and not result.disagreements


def test_an_unknown_difference_is_unexplained() -> None:
    record = {"kind": "stun", "method": "Binding", "class": "success", "txid": "aa" * 12,
              "mapped": "192.0.2.1:1", "relayed": None, "peers": [], "error_code": None,
              "fingerprint": "ok", "channel": None}
    ours = {7: [{**record, "findings": []}]}
    theirs = {7: [{**record, "mapped": "192.0.2.1:2"}], 9: [record]}
    result = compare(ours, theirs, CrosscheckResult(path=Path("x")))
    assert [(d.frame, d.field, d.known) for d in result.disagreements] == [(7, "mapped", False), (9, "message", False)]
    assert result.compared == 1 and result.theirs_only == 1


def test_every_known_case_is_documented() -> None:
    doc = (ROOT / "docs" / "tshark-disagreements.md").read_text()
    for case in KNOWN_CASES:
        assert f"`{case}`" in doc, case


def test_crosscheck_command_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from stunscope.cli import main

    path = _pcap(tmp_path, [encode_message(0x201, 0, b"w" * 12, [(0x8022, b"test")])])
    assert main(["crosscheck", str(path)]) == 0
    out = capsys.readouterr().out
    assert "[known: method-above-0xff]" in out and "0 unexplained" in out
    def compare_with_a_bug(ours: dict, theirs: dict, result: CrosscheckResult) -> CrosscheckResult:
        compare(ours, theirs, result)
        result.disagreements.append(Disagreement(1, "txid", "aa", "bb", None))
        return result

    monkeypatch.setattr("stunscope.report.crosscheck.compare", compare_with_a_bug)
    assert main(["crosscheck", str(path)]) == 1
    assert "UNEXPLAINED" in capsys.readouterr().out
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["crosscheck", str(path)]) == 3
    assert capsys.readouterr().err.count("\n") == 1


def test_unpadded_attributes_are_missed_by_tshark(tmp_path: Path) -> None:
    txid = b"u" * 12
    software = b"\x80\x22\x00\x05" + b"lync5"  # 5-byte value, no padding ([MS-TURN] style)
    mapped = b"\x00\x20\x00\x08" + encode_xor_address(Endpoint("192.0.2.7", 40000), txid)
    body = software + mapped
    msg = struct.pack("!HHI", 0x0101, len(body), 0x2112A442) + txid + body
    result = crosscheck(_pcap(tmp_path, [msg]))
    assert [(d.field, d.case) for d in result.disagreements] == [("mapped", "unpadded-attributes")]


def test_crosscheck_of_a_damaged_capture_compares_up_to_the_damage(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from stunscope.cli import main

    msgs = [encode_message(0x001, 0, bytes([i]) * 12, [(0x8022, b"test")]) for i in range(3)]
    path = _pcap(tmp_path, msgs)
    path.write_bytes(path.read_bytes()[:-10])
    assert main(["crosscheck", str(path)]) == 3
    captured = capsys.readouterr()
    assert "2 messages compared" in captured.out and "0 unexplained" in captured.out
    assert captured.err.count("\n") == 1 and "compared up to the damage" in captured.err
