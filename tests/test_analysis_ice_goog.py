"""GOOG-PING (method 0x080) as RFC 7675 consent traffic on a real aioice session.

No capture we have holds a GOOG-PING: none of the programs we can run speaks it (it is
libwebrtc's), and the shared corpus has none (``stunscope messages FILE --format jsonl`` over
every corpus file shows no method 0x080). So the frames are crafted, as libwebrtc builds them
(``ConnectionRequest::Prepare``: the request's attributes cleared, only
GOOG-MESSAGE-INTEGRITY-32 0xC060, the HMAC-SHA1 truncated to 4 bytes, keyed with the receiver's
ICE password; no FINGERPRINT), encoded with :mod:`stunscope.wire.encode`, wrapped by scapy, and
appended to the real records of ``captures/ice-host.pcapng`` on the 5-tuple of its selected pair,
with the passwords of ``captures/ice-host.sdp``. The story after the real capture ends (T):

- every 5 s from T+5 to T+35 agent A sends a GOOG-PING to B (answered or not, per test);
- at T+40 A sends an ordinary Binding consent check (frame 11's attributes, new transaction id,
  MESSAGE-INTEGRITY and FINGERPRINT recomputed), answered by B.

That Binding check comes 40 s after the last answered *Binding* check: if GOOG-PING did not count,
consent would be judged lost there (RFC 7675 §5.1, 30 s), which is what the analysis said before.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pytest
from scapy.all import IP, UDP, Ether, raw

from stunscope.analysis import Analysis, analyze_file
from stunscope.analysis.sdp import read_sdp
from stunscope.capture.pcapng_writer import PcapngWriter
from stunscope.capture.records import read_records
from stunscope.report.analysis_text import render
from stunscope.wire.attributes import username
from stunscope.wire.decode import decode_message
from stunscope.wire.encode import encode_message, encode_type, encode_xor_address
from stunscope.wire.message import Endpoint, StunMessage

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
CAPTURE, SDP = CAPTURES / "ice-host.pcapng", CAPTURES / "ice-host.sdp"
GOOG_PING, BINDING = 0x080, 0x001
REQUEST, SUCCESS = 0, 2
MESSAGE_INTEGRITY_32 = 0xC060
DROPPED = (0x0008, 0x8028)  # MESSAGE-INTEGRITY and FINGERPRINT, recomputed for a new txid


def goog_ping(cls: int, txid: bytes, password: str) -> bytes:
    """A GOOG-PING request or success answer: header + GOOG-MESSAGE-INTEGRITY-32 only."""
    header = (encode_type(GOOG_PING, cls).to_bytes(2, "big") + (8).to_bytes(2, "big")
              + bytes.fromhex("2112a442") + txid)
    mac = hmac.new(password.encode(), header, hashlib.sha1).digest()[:4]
    return encode_message(GOOG_PING, cls, txid, [(MESSAGE_INTEGRITY_32, mac)], fingerprint=False)


def udp_frame(src: Endpoint, dst: Endpoint, payload: bytes) -> bytes:
    """Ethernet (zero MACs, as dumpcap writes loopback) / IPv4 / UDP, like the real records."""
    return raw(Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00")
               / IP(src=src.ip, dst=dst.ip) / UDP(sport=src.port, dport=dst.port) / payload)


def stun_of(data: bytes) -> StunMessage:
    """The STUN message at the end of a captured loopback frame (Ethernet / IPv4 / UDP)."""
    msg = decode_message(data[14 + 20 + 8:])
    assert isinstance(msg, StunMessage)
    return msg


def extended(tmp_path: Path, *, answered: bool, pair_tuple: bool = True) -> Path:
    """ice-host.pcapng with the GOOG-PING story of the module docstring appended."""
    sdp = read_sdp(SDP)
    candidates = {c.ufrag: c.address for c in sdp.candidates}
    passwords = dict(sdp.credentials)
    records = list(read_records(CAPTURE))
    first_check = stun_of(records[0].data)  # frame 1: A's check to B, USERNAME "B:A"
    b_ufrag, a_ufrag = (username(first_check) or "").split(":")
    a, b = candidates[a_ufrag], candidates[b_ufrag]
    consent_check = stun_of(records[10].data)  # frame 11: A's consent check
    assert consent_check.method == BINDING and consent_check.cls == REQUEST
    end = records[-1].ts
    added: list[tuple[float, Endpoint, Endpoint, bytes]] = []
    pinger = a if pair_tuple else Endpoint(a.ip, a.port + 1000)
    for i in range(1, 8):
        txid = os.urandom(12)
        added.append((end + 5 * i, pinger, b, goog_ping(REQUEST, txid, passwords[b_ufrag])))
        if answered:
            added.append((end + 5 * i + 0.0003, b, pinger, goog_ping(SUCCESS, txid, passwords[b_ufrag])))
    txid = os.urandom(12)
    key = passwords[b_ufrag].encode()
    attrs = [(x.type, x.raw) for x in consent_check.attributes if x.type not in DROPPED]
    added.append((end + 40, a, b, encode_message(BINDING, REQUEST, txid, attrs, integrity_key=key)))
    added.append((end + 40.0003, b, a, encode_message(
        BINDING, SUCCESS, txid, [(0x0020, encode_xor_address(a, txid))], integrity_key=key)))
    out = tmp_path / "ice-host-goog-ping.pcapng"
    with PcapngWriter(out, records[0].linktype) as writer:
        for rec in records:
            writer.write(round(rec.ts * 1e9), rec.data, rec.orig_len)
        for ts, src, dst, payload in added:
            writer.write(round(ts * 1e9), udp_frame(src, dst, payload))
    return out


def analyse(path: Path) -> Analysis:
    analysis, damage = analyze_file(path, sdp=[SDP])
    assert damage is None
    return analysis


def codes(analysis: Analysis) -> set[str]:
    return {v.code for v in analysis.verdicts}


def test_answered_goog_pings_keep_consent(tmp_path: Path) -> None:
    real = analyse(CAPTURE)
    analysis = analyse(extended(tmp_path, answered=True))
    (session,) = analysis.ice
    (pair,) = session.pairs  # GOOG-PING makes no pair
    (real_pair,) = real.ice[0].pairs
    assert session.consent == "fresh" and "ice-consent-lost" not in codes(analysis)
    assert (pair.goog_pings, pair.goog_ping_successes) == (7, 7)
    assert pair.checks == real_pair.checks + 1  # the Binding check at T+40; pings are not checks
    assert pair.nominated and session.selected_pair == pair
    pings = [t for t in analysis.transactions if t.method == "GOOG-PING"]
    assert len(pings) == 7 and all(t.ice and t.outcome == "success" for t in pings)
    assert "unanswered-request" not in codes(analysis)
    text = render(analysis)
    assert "goog-ping ok/sent" in text and "7/7" in text


def test_unanswered_goog_pings_lose_consent(tmp_path: Path) -> None:
    analysis = analyse(extended(tmp_path, answered=False))
    (session,) = analysis.ice
    (pair,) = session.pairs
    assert (pair.goog_pings, pair.goog_ping_successes) == (7, 0)
    assert session.consent == "lost"
    (lost,) = [v for v in analysis.verdicts if v.code == "ice-consent-lost"]
    # The evidence is the first GOOG-PING sent more than 30 s after the last answer (at T): T+35.
    pings = [t for t in analysis.transactions if t.method == "GOOG-PING"]
    assert len(pings) == 7 and all(t.outcome == "timeout" for t in pings)
    assert lost.frames[0] == pings[6].request_frames[0]
    # Unanswered pings are consent failures, not unanswered requests to a server.
    assert "unanswered-request" not in codes(analysis)


def test_goog_pings_off_the_pair_count_for_nothing(tmp_path: Path) -> None:
    analysis = analyse(extended(tmp_path, answered=True, pair_tuple=False))
    (session,) = analysis.ice
    (pair,) = session.pairs  # no pair is made from a GOOG-PING's 5-tuple
    assert pair.goog_pings == 0
    # Nothing refreshed consent between T and the Binding check at T+40.
    assert session.consent == "lost" and "ice-consent-lost" in codes(analysis)


@pytest.mark.parametrize("cls", [REQUEST, SUCCESS])
def test_crafted_goog_ping_decodes_as_the_registry_names_it(cls: int) -> None:
    msg = decode_message(goog_ping(cls, bytes(12), "pw"))
    assert isinstance(msg, StunMessage) and msg.method == GOOG_PING and not msg.findings
    assert [a.type for a in msg.attributes] == [MESSAGE_INTEGRITY_32]
