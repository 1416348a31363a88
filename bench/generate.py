"""Write a large, deterministic pcap of mixed WebRTC traffic for the benchmark.

The traffic imitates many concurrent calls through a TURN server: RTP and RTCP between ICE
candidates, ChannelData relaying RTP (RFC 8656 §12.4), DTLS records (RFC 9147), ICE Binding
checks with USERNAME/PRIORITY/ICE-CONTROLLING/MESSAGE-INTEGRITY/FINGERPRINT (RFC 8445 §7.1),
TURN allocations with the 401 challenge, CreatePermission, ChannelBind, Refresh and Send/Data
indications, plus TURN over TCP (ChannelData padded to 4 bytes, RFC 8656 §12.5). Sizes and
ratios are chosen to look like a media server's capture, not to flatter a STUN decoder.

Records are packed with ``struct`` (Ethernet / IPv4 / UDP or TCP) straight into a classic
microsecond pcap; the generator is self-contained (it does not use stunscope's encoder, so a
codec bug cannot hide itself). Same seed, same bytes.

Usage: ``python bench/generate.py [--packets N] [--seed S] [--out bench/out/mixed-1000000.pcap]``
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import random
import struct
import sys
import zlib
from pathlib import Path
from typing import Callable, Iterator

COOKIE = 0x2112A442
COOKIE_BYTES = struct.pack("!I", COOKIE)
OUT_DIR = Path(__file__).resolve().parent / "out"

# STUN methods and classes (RFC 8489 §5, RFC 8656 §18).
BINDING, ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND = 1, 3, 4, 6, 7, 8, 9
REQUEST, INDICATION, SUCCESS, ERROR = 0x0000, 0x0010, 0x0100, 0x0110

# Attribute codes (IANA STUN registry).
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, CHANNEL_NUMBER, LIFETIME = 0x0006, 0x0008, 0x0009, 0x000C, 0x000D
XOR_PEER, DATA_ATTR, REALM, NONCE, XOR_RELAYED = 0x0012, 0x0013, 0x0014, 0x0015, 0x0016
REQUESTED_TRANSPORT, XOR_MAPPED, PRIORITY, USE_CANDIDATE = 0x0019, 0x0020, 0x0024, 0x0025
SOFTWARE, FINGERPRINT, ICE_CONTROLLED, ICE_CONTROLLING = 0x8022, 0x8028, 0x8029, 0x802A

Addr = tuple[bytes, int]  # (4-byte IPv4, port)


def _attr(atype: int, value: bytes) -> bytes:
    """One TLV with zero padding to 4 bytes (RFC 8489 §14)."""
    pad = (-len(value)) % 4
    return struct.pack("!HH", atype, len(value)) + value + b"\0" * pad


def _xor_addr(atype: int, addr: Addr) -> bytes:
    """An XOR-*-ADDRESS attribute for an IPv4 address (RFC 8489 §14.2)."""
    ip, port = addr
    xip = bytes(a ^ b for a, b in zip(ip, COOKIE_BYTES))
    return _attr(atype, struct.pack("!BBH", 0, 1, port ^ (COOKIE >> 16)) + xip)


def stun(method: int, cls: int, txid: bytes, attrs: list[bytes], key: bytes | None = None,
         fingerprint: bool = True) -> bytes:
    """Encode a STUN message; MESSAGE-INTEGRITY (RFC 8489 §14.5) and FINGERPRINT (§14.7) last."""
    mtype = (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | cls
    body = b"".join(attrs)
    if key is not None:
        length = len(body) + 24
        head = struct.pack("!HHI", mtype, length, COOKIE) + txid
        body += _attr(MESSAGE_INTEGRITY, hmac.new(key, head + body, hashlib.sha1).digest())
    if fingerprint:
        head = struct.pack("!HHI", mtype, len(body) + 8, COOKIE) + txid
        crc = (zlib.crc32(head + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += _attr(FINGERPRINT, struct.pack("!I", crc))
    return struct.pack("!HHI", mtype, len(body), COOKIE) + txid + body


class Call:
    """One call: a client behind a NAT, a TURN allocation, a remote peer, an ICE pair."""

    def __init__(self, rng: random.Random, index: int) -> None:
        self.rng = rng
        self.client: Addr = (bytes([10, 1, index >> 8 & 0xFF, index & 0xFF]), rng.randint(40000, 60000))
        self.mapped: Addr = (bytes([198, 51, 100, index % 250 + 1]), rng.randint(1024, 65000))
        self.server: Addr = (bytes([192, 0, 2, 10]), 3478)
        self.relayed: Addr = (bytes([192, 0, 2, 10]), rng.randint(49152, 65535))
        self.peer: Addr = (bytes([203, 0, 113, index % 250 + 1]), rng.randint(40000, 60000))
        self.channel = 0x4000 + index % 0x3FFF
        self.user = f"user{index}"
        self.realm = "bench.example.org"
        self.nonce = f"{rng.getrandbits(64):016x}".encode()
        self.turn_key = hashlib.md5(f"{self.user}:{self.realm}:secret".encode()).digest()
        self.ice_pwd = f"icepwd{index:06d}xxxxxxxxxx".encode()
        self.ufrags = (f"L{index:04x}", f"R{index:04x}")
        self.tie = rng.getrandbits(64)
        self.rtp_seq = rng.getrandbits(16)
        self.rtp_ts = rng.getrandbits(32)
        self.ssrc = rng.getrandbits(32)
        self.tcp_seq = [rng.getrandbits(32), rng.getrandbits(32)]

    def txid(self) -> bytes:
        """A fresh 96-bit transaction id (RFC 8489 §5)."""
        return self.rng.getrandbits(96).to_bytes(12, "big")

    def rtp(self) -> bytes:
        """An RTP packet (RFC 3550) carrying 80-1100 bytes of media."""
        self.rtp_seq = (self.rtp_seq + 1) & 0xFFFF
        self.rtp_ts = (self.rtp_ts + 960) & 0xFFFFFFFF
        size = self.rng.choice((80, 120, 160, 240, 900, 1100))
        return struct.pack("!BBHII", 0x80, 111, self.rtp_seq, self.rtp_ts, self.ssrc) + bytes(size)

    def rtcp(self) -> bytes:
        """An RTCP receiver report (RFC 3550 §6.4.2), first byte in 128-191 with type 201."""
        return struct.pack("!BBHI", 0x81, 201, 7, self.ssrc) + bytes(24)

    def dtls(self) -> bytes:
        """A DTLS 1.2 application-data record (first byte 23, RFC 7983 range 20-63)."""
        size = self.rng.choice((64, 120, 400))
        return struct.pack("!BHHHIH", 23, 0xFEFD, 1, 0, self.rng.getrandbits(32), size) + bytes(size)

    def binding_check(self) -> list[tuple[Addr, Addr, bytes]]:
        """An ICE connectivity check and its success response (RFC 8445 §7.2)."""
        txid = self.txid()
        username = f"{self.ufrags[1]}:{self.ufrags[0]}".encode()
        attrs = [_attr(USERNAME, username), _attr(ICE_CONTROLLING, self.tie.to_bytes(8, "big")),
                 _attr(PRIORITY, struct.pack("!I", 0x6E0001FF))]
        if self.rng.random() < 0.2:
            attrs.append(_attr(USE_CANDIDATE, b""))
        req = stun(BINDING, REQUEST, txid, attrs, key=self.ice_pwd)
        resp = stun(BINDING, SUCCESS, txid, [_xor_addr(XOR_MAPPED, self.mapped)], key=self.ice_pwd)
        return [(self.mapped, self.peer, req), (self.peer, self.mapped, resp)]

    def allocation(self) -> list[tuple[Addr, Addr, bytes]]:
        """Allocate with the 401 challenge, then an authenticated Allocate (RFC 8656 §7)."""
        c, s = self.client, self.server
        tx1, tx2 = self.txid(), self.txid()
        transport = _attr(REQUESTED_TRANSPORT, b"\x11\0\0\0")
        auth = [_attr(USERNAME, self.user.encode()), _attr(REALM, self.realm.encode()),
                _attr(NONCE, self.nonce)]
        return [
            (c, s, stun(ALLOCATE, REQUEST, tx1, [transport, _attr(SOFTWARE, b"bench client 1.0")])),
            (s, c, stun(ALLOCATE, ERROR, tx1, [_attr(ERROR_CODE, b"\0\0\x04\x01Unauthorized"),
                                               _attr(REALM, self.realm.encode()), _attr(NONCE, self.nonce)])),
            (c, s, stun(ALLOCATE, REQUEST, tx2, [transport, *auth], key=self.turn_key)),
            (s, c, stun(ALLOCATE, SUCCESS, tx2, [_xor_addr(XOR_RELAYED, self.relayed),
                                                 _xor_addr(XOR_MAPPED, self.mapped),
                                                 _attr(LIFETIME, struct.pack("!I", 600))], key=self.turn_key)),
        ]

    def turn_control(self) -> list[tuple[Addr, Addr, bytes]]:
        """CreatePermission, ChannelBind or Refresh with its response (RFC 8656 §9-§12)."""
        c, s = self.client, self.server
        txid = self.txid()
        auth = [_attr(USERNAME, self.user.encode()), _attr(REALM, self.realm.encode()),
                _attr(NONCE, self.nonce)]
        kind = self.rng.random()
        if kind < 0.4:
            method, attrs = CREATE_PERMISSION, [_xor_addr(XOR_PEER, self.peer)]
        elif kind < 0.7:
            method = CHANNEL_BIND
            attrs = [_attr(CHANNEL_NUMBER, struct.pack("!HH", self.channel, 0)), _xor_addr(XOR_PEER, self.peer)]
        else:
            method, attrs = REFRESH, [_attr(LIFETIME, struct.pack("!I", 600))]
        return [(c, s, stun(method, REQUEST, txid, attrs + auth, key=self.turn_key)),
                (s, c, stun(method, SUCCESS, txid, [], key=self.turn_key))]

    def indication(self) -> tuple[Addr, Addr, bytes]:
        """A Send or Data indication carrying RTP (RFC 8656 §10)."""
        method = SEND if self.rng.random() < 0.5 else DATA
        attrs = [_xor_addr(XOR_PEER, self.peer), _attr(DATA_ATTR, self.rtp())]
        msg = stun(method, INDICATION, self.txid(), attrs, fingerprint=False)
        if method == SEND:
            return self.client, self.server, msg
        return self.server, self.client, msg

    def channeldata(self, tcp: bool = False) -> tuple[Addr, Addr, bytes]:
        """ChannelData with RTP inside; padded to 4 bytes over TCP (RFC 8656 §12.5)."""
        data = self.rtp()
        msg = struct.pack("!HH", self.channel, len(data)) + data
        if tcp:
            msg += b"\0" * ((-len(msg)) % 4)
        if self.rng.random() < 0.5:
            return self.client, self.server, msg
        return self.server, self.client, msg


def iter_payloads(rng: random.Random, calls: list[Call]) -> Iterator[tuple[str, Addr, Addr, bytes]]:
    """Endless (transport, src, dst, payload) in realistic proportions; STUN is about a fifth."""
    def media(call: Call) -> list[tuple[Addr, Addr, bytes]]:
        if rng.random() < 0.5:
            return [(call.mapped, call.peer, call.rtp())]
        return [(call.peer, call.mapped, call.rtp())]

    def rtcp(call: Call) -> list[tuple[Addr, Addr, bytes]]:
        return [(call.mapped, call.peer, call.rtcp())]

    def dtls(call: Call) -> list[tuple[Addr, Addr, bytes]]:
        return [(call.mapped, call.peer, call.dtls())]

    def relay(call: Call) -> list[tuple[Addr, Addr, bytes]]:
        return [call.channeldata()]

    def indication(call: Call) -> list[tuple[Addr, Addr, bytes]]:
        return [call.indication()]

    # (weight, producer) per packet kind; multi-packet producers are weighted per packet.
    udp_kinds: list[tuple[float, Callable[[Call], list[tuple[Addr, Addr, bytes]]]]] = [
        (0.40, media), (0.27, relay), (0.04, rtcp), (0.03, dtls), (0.12, Call.binding_check),
        (0.025, Call.allocation), (0.05, Call.turn_control), (0.035, indication),
    ]
    weights = [w for w, _ in udp_kinds]
    producers = [p for _, p in udp_kinds]
    while True:
        call = calls[rng.randrange(len(calls))]
        if rng.random() < 0.03:  # TURN over TCP: ChannelData and control on the TCP allocation
            if rng.random() < 0.7:
                yield ("tcp", *call.channeldata(tcp=True))
            else:
                for src, dst, msg in call.turn_control():
                    yield ("tcp", src, dst, msg)
            continue
        producer = rng.choices(producers, weights)[0]
        for src, dst, payload in producer(call):
            yield ("udp", src, dst, payload)


def write_pcap(path: Path, packets: int, seed: int) -> None:
    """Write ``packets`` Ethernet/IPv4 records to ``path`` (classic pcap, microseconds)."""
    rng = random.Random(seed)
    calls = [Call(rng, i) for i in range(400)]
    tcp_seq: dict[tuple[Addr, Addr], int] = {}
    eth = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"
    ip_head = struct.Struct("!BBHHHBBH4s4s")
    udp_head = struct.Struct("!HHHH")
    tcp_head = struct.Struct("!HHIIBBHHH")
    rec_head = struct.Struct("<IIII")
    ts_us = 1_700_000_000 * 1_000_000
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb", buffering=1 << 20) as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        chunk: list[bytes] = []
        source = iter_payloads(rng, calls)
        for n in range(packets):
            transport, (sip, sport), (dip, dport), payload = next(source)
            if transport == "udp":
                l4 = udp_head.pack(sport, dport, 8 + len(payload), 0) + payload
                proto = 17
            else:
                key, back = ((sip, sport), (dip, dport)), ((dip, dport), (sip, sport))
                seq = tcp_seq.setdefault(key, rng.getrandbits(32))
                ack = tcp_seq.setdefault(back, rng.getrandbits(32))
                tcp_seq[key] = (seq + len(payload)) & 0xFFFFFFFF
                l4 = tcp_head.pack(sport, dport, seq, ack, 0x50, 0x18, 65535, 0, 0) + payload
                proto = 6
            ip = ip_head.pack(0x45, 0, 20 + len(l4), n & 0xFFFF, 0x4000, 64, proto, 0, sip, dip)
            frame = eth + ip + l4
            ts_us += rng.randint(100, 900)
            chunk.append(rec_head.pack(ts_us // 1_000_000, ts_us % 1_000_000, len(frame), len(frame)))
            chunk.append(frame)
            if len(chunk) >= 8192:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))


def main(argv: list[str] | None = None) -> int:
    """Command line: generate the benchmark capture."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000, help="number of frames (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=5389, help="random seed (default 5389)")
    parser.add_argument("--out", type=Path, help="output file (default bench/out/mixed-N.pcap)")
    args = parser.parse_args(argv)
    out = args.out or OUT_DIR / f"mixed-{args.packets}.pcap"
    write_pcap(out, args.packets, args.seed)
    sys.stdout.write(f"{out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
