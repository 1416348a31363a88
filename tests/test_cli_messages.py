"""``stunscope messages``: golden text/JSON Lines outputs, the JSON contract, errors and exit codes.

Goldens live in ``tests/golden/messages/``; regenerate them with ``STUNSCOPE_UPDATE_GOLDEN=1``
after an intended output change (and review the diff). The crafted capture is built here from
encoded messages so the goldens do not depend on ``../shared``; corpus goldens skip without it.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import orjson
import pytest

from conftest import CAPTURES, CORPUS
from stunscope.cli import main
from stunscope.capture.events import MessageEvent, Undecodable
from stunscope.capture.stream import open_events
from stunscope.report.messages import MessageFormatter
from stunscope.wire.decode import decode_message
from stunscope.wire.encode import (
    encode_channeldata,
    encode_error_code,
    encode_message,
    encode_u16_rffu,
    encode_u32,
    encode_xor_address,
)
from stunscope.wire.message import DecodeFailure, Endpoint

GOLDEN = Path(__file__).parent / "golden" / "messages"
UPDATE = os.environ.get("STUNSCOPE_UPDATE_GOLDEN") == "1"

CLIENT, SERVER, PEER = ("10.0.0.1", 50000), ("192.0.2.10", 3478), ("203.0.113.5", 40000)
RELAYED = Endpoint("192.0.2.10", 49152)
USER, REALM, PASSWORD = "alice", "example.org", "s3cret-pw"
KEY = hashlib.md5(f"{USER}:{REALM}:{PASSWORD}".encode()).digest()
EVIL_SOFTWARE = b"evil\x1b[31m\x07\xc2\x9b2J\xe2\x80\xae"
"""ESC [ 31 m, BEL, the C1 CSI (U+009B) and RIGHT-TO-LEFT OVERRIDE (U+202E): never raw on output."""
EVIL_REASON = "Unauthorized\x1b]0;pwned\x07\u202e"
"""An ERROR-CODE reason phrase with an OSC title sequence and a bidi override (shown in text lines)."""

CONTRACT = {"frame", "ts", "src", "dst", "transport", "kind", "method", "class", "txid", "mapped",
            "relayed", "peers", "error_code", "fingerprint", "integrity", "channel", "tunnel",
            "findings", "attributes"}
EXTRAS = {"length", "rtt_ms", "peer"}


def _udp_frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes, proto: int = 17) -> bytes:
    """Ethernet / IPv4 / UDP (or a raw IPv4 payload when ``proto`` is not UDP)."""
    l4 = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload if proto == 17 else payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0,
                     bytes(map(int, src[0].split("."))), bytes(map(int, dst[0].split("."))))
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + l4


def _pcap(frames: list[bytes]) -> bytes:
    """A microsecond pcap with one frame every 10 ms from t = 1700000000."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, frame in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000, i * 10_000, len(frame), len(frame)) + frame)
    return b"".join(out)


def crafted_capture() -> bytes:
    """A TURN session: 401 challenge, authenticated Allocate, ChannelBind, tunnelled STUN in
    ChannelData and a Send indication, a truncated STUN message, an ICMP port unreachable."""
    tx = [bytes([i]) * 12 for i in range(1, 8)]
    auth = [(0x0006, USER.encode()), (0x0014, REALM.encode()), (0x0015, b"nonce-123")]
    inner = encode_message(0x001, 0, tx[5], [(0x0024, encode_u32(0x6E0001FF))])
    quoted_ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 48, 1, 0, 64, 17, 0,
                            bytes([10, 0, 0, 1]), bytes([203, 0, 113, 9]))
    icmp = struct.pack("!BBHI", 3, 3, 0, 0) + quoted_ip + struct.pack("!HHHH", 50000, 3478, 28, 0)
    damaged = encode_message(0x003, 0, tx[6], [(0x0019, b"\x11\0\0\0")])[:-6]
    messages = [
        (CLIENT, SERVER, encode_message(0x003, 0, tx[0], [(0x0019, b"\x11\0\0\0"), (0x8022, EVIL_SOFTWARE)])),
        (SERVER, CLIENT, encode_message(0x003, 3, tx[0], [(0x0009, encode_error_code(401, EVIL_REASON)),
                                                         (0x0014, REALM.encode()), (0x0015, b"nonce-123")])),
        (CLIENT, SERVER, encode_message(0x003, 0, tx[1], [(0x0019, b"\x11\0\0\0"), *auth], integrity_key=KEY)),
        (SERVER, CLIENT, encode_message(0x003, 2, tx[1], [
            (0x0016, encode_xor_address(RELAYED, tx[1])),
            (0x0020, encode_xor_address(Endpoint("198.51.100.7", 61000), tx[1])),
            (0x000D, encode_u32(600))], integrity_key=KEY)),
        (CLIENT, SERVER, encode_message(0x009, 0, tx[2], [
            (0x000C, encode_u16_rffu(0x4001)), (0x0012, encode_xor_address(Endpoint(*PEER), tx[2])), *auth],
            integrity_key=KEY)),
        (SERVER, CLIENT, encode_message(0x009, 2, tx[2], [], integrity_key=KEY)),
        (CLIENT, SERVER, encode_channeldata(0x4001, inner, tcp=False)),
        (CLIENT, SERVER, encode_message(0x006, 1, tx[3], [
            (0x0012, encode_xor_address(Endpoint(*PEER), tx[3])), (0x0013, inner)], fingerprint=False)),
        (SERVER, CLIENT, damaged),
    ]
    frames = [_udp_frame(src, dst, payload) for src, dst, payload in messages]
    frames.append(_udp_frame(("10.0.0.254", 0), CLIENT, icmp, proto=1))
    return _pcap(frames)


@pytest.fixture
def crafted(tmp_path: Path) -> Path:
    """The crafted capture as a file."""
    path = tmp_path / "crafted.pcap"
    path.write_bytes(crafted_capture())
    return path


def run(argv: list[str], capsysbinary: pytest.CaptureFixture[bytes]) -> tuple[int, bytes, str]:
    """Run the CLI in-process: (exit code, stdout bytes, stderr text)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsysbinary.readouterr()
    return code, out, err.decode()


def check_golden(name: str, output: bytes) -> None:
    """Compare ``output`` with the golden file (or rewrite it with STUNSCOPE_UPDATE_GOLDEN=1)."""
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(output)
    assert path.exists(), f"missing golden {path}: run with STUNSCOPE_UPDATE_GOLDEN=1"
    assert output.decode() == path.read_text(), f"output differs from {path}"


CORPUS_GOLDENS = {
    "adult_content": CORPUS / "ntop+nDPI" / "adult_content.pcap",  # TURN, Send/Data, ChannelData
    "stun_classic": CORPUS / "cisco+mercury" / "stun_classic.pcap",  # RFC 3489
    "tcp_multiple": CORPUS / "ntop+nDPI" / "stun_tcp_multiple_msgs_same_pkt.pcap",  # TCP framing
}


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_crafted_golden(crafted: Path, fmt: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, err = run(["messages", str(crafted), "--format", fmt, "--credential", f"{USER}:{PASSWORD}"],
                         capsysbinary)
    assert (code, err) == (0, "")
    check_golden(f"crafted.{'txt' if fmt == 'text' else 'jsonl'}", out)


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
@pytest.mark.parametrize("name", sorted(CORPUS_GOLDENS))
def test_corpus_golden(name: str, fmt: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = CORPUS_GOLDENS[name]
    if not path.exists():
        pytest.skip(f"{path} is absent")
    code, out, err = run(["messages", str(path), "--format", fmt], capsysbinary)
    assert (code, err) == (0, "")
    check_golden(f"{name}.{'txt' if fmt == 'text' else 'jsonl'}", out)


def test_jsonl_follows_the_contract(crafted: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = run(["messages", str(crafted), "--format", "jsonl"], capsysbinary)
    objects = [orjson.loads(line) for line in out.splitlines()]
    kinds = [o["kind"] for o in objects]
    assert code == 0 and kinds.count("stun") == 10 and kinds.count("channeldata") == 1
    assert kinds[-1] == "icmp-unreachable" and objects[-1]["reporter"] == "10.0.0.254"
    for obj in objects:
        if obj["kind"] in ("stun", "classic-stun", "channeldata"):
            assert set(obj) == CONTRACT | EXTRAS
            for attr in obj["attributes"]:
                assert set(attr) == {"type", "name", "offset", "length", "value"}
            assert obj["fingerprint"] in ("ok", "bad", None) and obj["integrity"] in ("ok", "bad", "no-key", None)
    channel = next(o for o in objects if o["kind"] == "channeldata")
    assert (channel["method"], channel["class"], channel["txid"], channel["channel"]) == (None, None, None, 0x4001)
    tunnelled = [o for o in objects if o.get("tunnel") is not None]
    assert [(o["tunnel"], o["channel"], o["peer"]) for o in tunnelled] == [
        ("channeldata", 0x4001, None), ("send", None, "203.0.113.5:40000")]
    success = next(o for o in objects if o["method"] == "Allocate" and o["class"] == "success")
    assert success["relayed"] == "192.0.2.10:49152" and success["mapped"] == "198.51.100.7:61000"
    assert success["rtt_ms"] == 10.0 and len(success["txid"]) == 24
    error = next(o for o in objects if o["class"] == "error")
    assert error["error_code"] == 401
    damaged = objects[-2]
    assert damaged["kind"] == "stun" and "truncated" in damaged["findings"]


def test_undecodable_event_says_where_and_why() -> None:
    failure = DecodeFailure(4, "truncated", "8 bytes of application data, 32 announced\x1b")
    event = Undecodable(3, 1.5, Endpoint("10.0.0.1", 1), Endpoint("10.0.0.2", 3478), "tcp", failure)
    formatter = MessageFormatter()
    obj = formatter.to_json(event)
    assert (obj["kind"], obj["findings"], obj["offset"], obj["frame"]) == ("undecodable", ["truncated"], 4, 3)
    assert "\x1b" not in obj["error"]
    line = formatter.line(event)
    assert "UNDECODABLE at byte 4: truncated" in line and "\x1b" not in line


def test_integrity_verified_for_requests_and_responses(crafted: Path,
                                                        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    signed = lambda out: [orjson.loads(l)["integrity"] for l in out.splitlines()  # noqa: E731
                          if orjson.loads(l).get("integrity")]
    _, out, _ = run(["messages", str(crafted), "--format", "jsonl"], capsysbinary)
    assert set(signed(out)) == {"no-key"}
    _, out, _ = run(["messages", str(crafted), "--format", "jsonl", "--credential", f"{USER}:{PASSWORD}"],
                    capsysbinary)
    assert signed(out) == ["ok"] * 4  # Allocate and ChannelBind, requests and responses
    _, out, _ = run(["messages", str(crafted), "--format", "jsonl", "--credential", f"{REALM}/{USER}:wrong"],
                    capsysbinary)
    assert signed(out) == ["bad"] * 4


def test_control_characters_never_reach_output_raw(crafted: Path,
                                                   capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    for fmt in ("text", "jsonl"):
        code, out, _ = run(["messages", str(crafted), "--format", fmt], capsysbinary)
        assert code == 0
        text = out.decode()
        assert not any(ch in text for ch in "\x1b\x07\x9b\u202e"), fmt
        shown = text if fmt == "text" else text.replace("\\\\", "\\")  # undo JSON's escaping
        assert "Unauthorized\\x1b]0;pwned\\x07\\u202e" in shown, fmt


def test_missing_file_is_one_line_and_exit_3(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, err = run(["messages", str(tmp_path / "nope.pcap")], capsysbinary)
    assert (code, out) == (3, b"") and err.count("\n") == 1 and "no such file" in err


def test_not_a_capture_is_exit_3(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a capture file at all\n")
    code, out, err = run(["messages", str(path)], capsysbinary)
    assert (code, out) == (3, b"") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_truncated_capture_prints_good_lines_then_exit_3(crafted: Path, fmt: str,
                                                          capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    _, full, _ = run(["messages", str(crafted), "--format", fmt], capsysbinary)
    data = crafted.read_bytes()
    crafted.write_bytes(data[: len(data) - 30])  # cut inside the last record (the ICMP error)
    code, out, err = run(["messages", str(crafted), "--format", fmt], capsysbinary)
    assert code == 3 and err.count("\n") == 1 and err.startswith("stunscope: ")
    good = full.splitlines()[:-1]
    assert out.splitlines() == good


def test_bad_flags_are_usage_errors(crafted: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert run(["messages", str(crafted), "--format", "xml"], capsysbinary)[0] == 2
    assert run(["messages"], capsysbinary)[0] == 2
    assert run(["messages", str(crafted), "--no-such-flag"], capsysbinary)[0] == 2


def test_bad_credential_is_exit_2_without_the_secret(crafted: Path,
                                                     capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, err = run(["messages", str(crafted), "--credential", "hunter2-no-colon"], capsysbinary)
    assert (code, out) == (2, b"") and "hunter2" not in err and err.count("\n") == 1


def test_credentials_file_and_environment(crafted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    creds = tmp_path / "creds"
    creds.write_text(f"# comment\n{REALM}/{USER}:{PASSWORD}\n")
    _, out, _ = run(["messages", str(crafted), "--format", "jsonl", "--credentials-file", str(creds)],
                    capsysbinary)
    assert b'"integrity":"ok"' in out
    monkeypatch.setenv("STUNSCOPE_CREDENTIALS", f"{USER}:{PASSWORD}")
    _, out, _ = run(["messages", str(crafted), "--format", "jsonl"], capsysbinary)
    assert b'"integrity":"ok"' in out and b'"integrity":"no-key"' not in out
    code, _, err = run(["messages", str(crafted), "--credentials-file", str(tmp_path / "absent")], capsysbinary)
    assert code == 3 and err.count("\n") == 1


def test_request_table_is_bounded(crafted: Path) -> None:
    formatter = MessageFormatter(max_pending=1)
    objects = [formatter.to_json(e) for e in open_events(crafted) if isinstance(e, MessageEvent)]
    assert formatter.evicted > 0 and len(formatter._requests) == 1
    # Each response follows its request directly, so RTTs survive a table of one.
    assert all(o["rtt_ms"] == 10.0 for o in objects if o["class"] in ("success", "error"))


def test_help_has_examples(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = run(["messages", "--help"], capsysbinary)
    assert code == 0 and b"examples:" in out and b"--credential" in out


def test_bundled_ice_relay_capture_verifies_with_its_sdp(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """Real aioice + coturn traffic: with the SDP's ICE passwords (pasted as is, CR LF included)
    and the TURN credential, every signed message verifies, tunnelled checks included."""
    capture, sdp = CAPTURES / "ice-turn-relay.pcapng", CAPTURES / "ice-turn-relay.sdp"
    if not capture.exists() or not sdp.exists():
        pytest.skip("captures/ice-turn-relay is not recorded")
    flags = [arg for line in sdp.read_bytes().decode().splitlines(keepends=True)
             if line.startswith("a=ice-pwd:") for arg in ("--ice-pwd", line.split(":", 1)[1])]
    code, out, _ = run(["messages", str(capture), "--format", "jsonl", "--credential", "alice:wonderland",
                        *flags], capsysbinary)
    statuses = [(o.get("tunnel"), o.get("integrity")) for o in map(orjson.loads, out.splitlines())]
    assert code == 0 and ("channeldata", "ok") in statuses
    assert {status for _, status in statuses} <= {None, "ok"}


def test_value_cache_never_mixes_transaction_ids() -> None:
    """IPv6 XOR addresses (and classic messages) XOR with the transaction id: the same bytes in
    two messages are two addresses. IPv4 with the cookie is the same address (cached)."""
    raw = encode_xor_address(Endpoint("2001:db8::1", 3478), b"a" * 12)
    formatter = MessageFormatter()
    objects = []
    for txid in (b"a" * 12, b"b" * 12):
        msg = decode_message(encode_message(0x001, 2, txid, [(0x0020, raw)]))
        event = MessageEvent(1, 0.0, Endpoint("::1", 1), Endpoint("::1", 2), "udp", "stun", msg, None, None, None, 0)
        objects.append(formatter.to_json(event))
    assert objects[0]["mapped"] == "[2001:db8::1]:3478" != objects[1]["mapped"]


def test_requests_expire_after_the_transaction_timeout() -> None:
    """RFC 8489 §6.2.1: a transaction times out after 39.5 s; an answer 70 s later has no RTT,
    and the request table holds only recent requests."""
    formatter = MessageFormatter()
    a, b = Endpoint("10.0.0.1", 1), Endpoint("10.0.0.2", 3478)

    def event(ts: float, cls: int, txid: bytes) -> MessageEvent:
        msg = decode_message(encode_message(0x001, cls, txid, []))
        return MessageEvent(1, ts, a, b, "udp", "stun", msg, None, None, None, 0)

    formatter.to_json(event(0.0, 0, b"o" * 12))
    formatter.to_json(event(70.0, 0, b"n" * 12))  # a new request pushes the old one out
    assert formatter.to_json(event(70.5, 2, b"o" * 12))["rtt_ms"] is None
    assert formatter.to_json(event(70.5, 2, b"n" * 12))["rtt_ms"] == 500.0
    assert list(formatter._requests) == [b"n" * 12] and formatter.evicted == 0


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_second_process_reader_gives_the_same_output(fmt: str) -> None:
    """`messages` reads big files with a second process (capture/pipeline.py); forced on a small
    capture with TCP, tunnels and Send/Data, it must print exactly what one process prints."""
    import os
    import subprocess
    import sys

    capture = Path(__file__).resolve().parent.parent / "captures" / "turn-tcp.pcapng"
    outputs = []
    for parallel in ("0", "1"):
        env = {**os.environ, "STUNSCOPE_PARALLEL": parallel}
        out = subprocess.run([sys.executable, "-m", "stunscope", "messages", str(capture),
                              "--format", fmt], capture_output=True, env=env, check=True)
        outputs.append(out.stdout)
    assert outputs[0] and outputs[0] == outputs[1]
