"""``stunscope decode``: input forms (hex, base64, stdin text and raw bytes), the attribute tree,
checks with credentials, tunnelled messages, and one-line errors with exit codes 2 and 3."""

from __future__ import annotations

import base64
import io
import sys
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stunscope.cli import main
from stunscope.cli.decode import decode_any, parse_bytes, to_json, tree_lines
from stunscope.errors import UsageError
from stunscope.wire.encode import encode_channeldata, encode_error_code, encode_message, encode_u32

REQUEST_HEX = (
    "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff"
    "80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249"
    "c1b571a280280004e57a3bcf"
)
"""RFC 5769 §2.1 sample request (short-term password ``VOkJxbRl1RmTxUk/WvJxBt``)."""
ICE_PWD = "VOkJxbRl1RmTxUk/WvJxBt"


def run(argv: list[str], capsysbinary: pytest.CaptureFixture[bytes], stdin: bytes | None = None,
        monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsysbinary.readouterr()
    return code, out.decode(), err.decode()


def decode_json(argv: list[str], capsysbinary: pytest.CaptureFixture[bytes]) -> dict[str, Any]:
    """``decode --format json`` output, parsed (exit code 0 asserted)."""
    code, out, err = run(["decode", "--format", "json", *argv], capsysbinary)
    assert (code, err) == (0, "")
    return orjson.loads(out)


def test_rfc5769_request_tree(rfc5769_vectors: list[dict], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, err = run(["decode", REQUEST_HEX], capsysbinary)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "Binding request (RFC 5389/8489)"
    assert "@20   0x8022 SOFTWARE (16 bytes): \"STUN test client\"" in out
    assert "0x8028 FINGERPRINT" in out and "fingerprint ok, integrity no-key" in out
    assert rfc5769_vectors[0]["hex"] == REQUEST_HEX


@pytest.mark.parametrize("flags", [["--ice-pwd", ICE_PWD], ["--credential", f"ice={ICE_PWD}"]])
def test_short_term_integrity(rfc5769_vectors: list[dict], flags: list[str],
                              capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    for vector in rfc5769_vectors[:3]:
        obj = decode_json([*flags, vector["hex"]], capsysbinary)
        assert (obj["integrity"], obj["fingerprint"]) == ("ok", "ok"), vector["name"]
    obj = decode_json(["--ice-pwd", "wrong", REQUEST_HEX], capsysbinary)
    assert obj["integrity"] == "bad"


def test_long_term_integrity_with_saslprep(rfc5769_vectors: list[dict],
                                           capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    vector = rfc5769_vectors[3]
    expected = vector["expected"]
    cred = f"{expected['realm']}/{expected['username']}:{expected['password_before_saslprep']}"
    obj = decode_json(["--credential", cred, vector["hex"]], capsysbinary)
    assert obj["integrity"] == "ok" and obj["fingerprint"] is None


def test_response_integrity_needs_the_request_username_and_realm(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    import hashlib

    key = hashlib.md5(b"alice:example.org:pw").digest()
    response = encode_message(0x003, 2, b"r" * 12, [(0x000D, encode_u32(600))], integrity_key=key).hex()
    assert decode_json(["--credential", "alice:pw", response], capsysbinary)["integrity"] == "no-key"
    obj = decode_json(["--credential", "alice:pw", "--username", "alice", "--realm", "example.org", response],
                      capsysbinary)
    assert obj["integrity"] == "ok"


def test_ipv6_response_address(rfc5769_vectors: list[dict], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    obj = decode_json([rfc5769_vectors[2]["hex"]], capsysbinary)
    assert obj["mapped"] == "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
    assert obj["class"] == "success" and obj["attributes"][0]["offset"] == 20


@pytest.mark.parametrize("form", ["colons", "spaces", "0x", "base64", "base64url-unpadded"])
def test_input_forms(form: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    raw = bytes.fromhex(REQUEST_HEX)
    text = {
        "colons": ":".join(f"{b:02x}" for b in raw),
        "spaces": " ".join(REQUEST_HEX[i:i + 8] for i in range(0, len(REQUEST_HEX), 8)),
        "0x": "0x" + REQUEST_HEX.upper(),
        "base64": base64.b64encode(raw).decode(),
        "base64url-unpadded": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }[form]
    assert parse_bytes(text) == raw


def test_stdin_raw_bytes_and_text(capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    raw = bytes.fromhex(REQUEST_HEX)
    code, out, _ = run(["decode", "-"], capsysbinary, stdin=raw, monkeypatch=monkeypatch)
    assert code == 0 and out.startswith("Binding request")
    code, out, _ = run(["decode", "-"], capsysbinary, stdin=REQUEST_HEX.encode() + b"\n", monkeypatch=monkeypatch)
    assert code == 0 and out.startswith("Binding request")
    code, out, err = run(["decode", "-"], capsysbinary, stdin=b"\n", monkeypatch=monkeypatch)
    assert (code, out) == (2, "") and err.count("\n") == 1


def test_tunnelled_stun_is_decoded_nested(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    inner = encode_message(0x001, 0, b"i" * 12, [(0x0024, encode_u32(1))])
    send = encode_message(0x006, 1, b"s" * 12, [(0x0013, inner)], fingerprint=False)
    code, out, _ = run(["decode", send.hex()], capsysbinary)
    assert code == 0 and "  carries:\n    Binding request (RFC 5389/8489)" in out
    obj = decode_json([encode_channeldata(0x4002, inner, tcp=False).hex()], capsysbinary)
    assert (obj["kind"], obj["channel"], obj["inner"]["method"]) == ("channeldata", 0x4002, "Binding")


def test_classic_stun(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    classic = encode_message(0x001, 0, b"c" * 16, [(0x0003, b"\0\0\0\0")], fingerprint=False)
    obj = decode_json([classic.hex()], capsysbinary)
    assert obj["kind"] == "classic-stun" and len(obj["txid"]) == 32


def test_wire_text_is_escaped(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    msg = encode_message(0x001, 3, b"e" * 12, [(0x0009, encode_error_code(420, "Bad\x1b[2J\u202e")),
                                                (0x8022, b"soft\x07\x9b")])
    for fmt in ("text", "json"):
        code, out, _ = run(["decode", "--format", fmt, msg.hex()], capsysbinary)
        assert code == 0 and not any(ch in out for ch in "\x1b\x07\x9b\u202e")
    assert "420 Bad\\x1b[2J\\u202e" in run(["decode", msg.hex()], capsysbinary)[1]


@pytest.mark.parametrize("text", ["not hex!", "12 34 5", "%%%%"])
def test_neither_hex_nor_base64_is_exit_2(text: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, err = run(["decode", text], capsysbinary)
    assert (code, out) == (2, "") and err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(UsageError):
        parse_bytes(text)


@pytest.mark.parametrize("data", ["0001000021", "c001000c2112a442" + "00" * 12, "ff10"])
def test_undecodable_bytes_print_what_was_read_then_exit_3(data: str,
                                                           capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, err = run(["decode", data], capsysbinary)
    assert code == 3 and out.startswith("undecodable (") and err.count("\n") == 1
    code, out, _ = run(["decode", "--format", "json", data], capsysbinary)
    assert code == 3 and orjson.loads(out)["kind"] == "undecodable"


def test_truncated_message_is_data_not_an_error(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    obj = decode_json([REQUEST_HEX[:-16]], capsysbinary)
    assert "truncated" in obj["findings"] or "attribute-overrun" in obj["findings"]


def test_help_has_examples(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = run(["decode", "--help"], capsysbinary)
    assert code == 0 and "examples:" in out and "exit codes" in out


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=200),
    st.builds(lambda head, body: head + body,
              st.sampled_from([b"\x00\x01\x00\x10\x21\x12\xa4\x42" + b"t" * 12, b"\x40\x01\x00\x08",
                               b"\xff\x10\x00\x0c" + b"s" * 8, b"\x00\x17\x00\x08\x21\x12\xa4\x42" + b"t" * 12]),
              st.binary(max_size=64)),
))
def test_any_bytes_give_a_tree_and_json_without_raising(data: bytes) -> None:
    kind, decoded = decode_any(data)
    lines = tree_lines(kind, decoded, None, None, None)
    assert lines and all("\x1b" not in line for line in lines)
    orjson.dumps(to_json(kind, decoded, None, None, None))
