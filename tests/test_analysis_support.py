"""Builders for analysis tests: scenarios of real encoded STUN messages as capture events.

Every message is encoded with :func:`stunscope.wire.encode.encode_message` and decoded back, so
the trackers see exactly what the capture layer would give them.
"""

from __future__ import annotations

import os
from typing import Callable, Union

from stunscope.analysis import Analysis, Analyzer
from stunscope.capture.events import Event, MessageEvent, Unreachable
from stunscope.wire.decode import decode_channeldata, decode_message
from stunscope.wire.encode import (
    encode_error_code,
    encode_priority,
    encode_u16_rffu,
    encode_u32,
    encode_u64,
    encode_xor_address,
)
from stunscope.wire.message import Endpoint, StunMessage

REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3
BINDING, ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND = 1, 3, 4, 6, 7, 8, 9
CONNECT, CONNECTION_BIND, CONNECTION_ATTEMPT = 0xA, 0xB, 0xC

AttrSpec = Union[tuple[int, bytes], Callable[[bytes], tuple[int, bytes]]]


def ep(text: str) -> Endpoint:
    """``"1.2.3.4:5"`` -> Endpoint."""
    host, _, port = text.rpartition(":")
    return Endpoint(host.strip("[]"), int(port))


def xor_mapped(addr: str) -> AttrSpec:
    return lambda txid: (0x0020, encode_xor_address(ep(addr), txid))


def xor_relayed(addr: str) -> AttrSpec:
    return lambda txid: (0x0016, encode_xor_address(ep(addr), txid))


def xor_peer(addr: str) -> AttrSpec:
    return lambda txid: (0x0012, encode_xor_address(ep(addr), txid))


def error(code: int, reason: str = "") -> AttrSpec:
    return (0x0009, encode_error_code(code, reason))


def lifetime(seconds: int) -> AttrSpec:
    return (0x000D, encode_u32(seconds))


def channel(number: int) -> AttrSpec:
    return (0x000C, encode_u16_rffu(number))


def username(text: str) -> AttrSpec:
    return (0x0006, text.encode())


def realm(text: str) -> AttrSpec:
    return (0x0014, text.encode())


def integrity() -> AttrSpec:
    """A MESSAGE-INTEGRITY attribute with an arbitrary MAC (the tests give no keyring)."""
    return (0x0008, bytes(20))


def controlling(tie: int) -> AttrSpec:
    return (0x802A, encode_u64(tie))


def controlled(tie: int) -> AttrSpec:
    return (0x8029, encode_u64(tie))


def priority(type_pref: int, local_pref: int = 65535, component: int = 1) -> AttrSpec:
    return (0x0024, encode_priority(type_pref, local_pref, component))


USE_CANDIDATE: AttrSpec = (0x0025, b"")


def change_request(ip: bool, port: bool) -> AttrSpec:
    return (0x0003, bytes((0, 0, 0, (4 if ip else 0) | (2 if port else 0))))


def connection_id(number: int) -> AttrSpec:
    return (0x002A, encode_u32(number))


def data_attr(payload: bytes) -> AttrSpec:
    return (0x0013, payload)


def txid() -> bytes:
    return os.urandom(12)


def message(method: int, cls: int, tid: bytes, attrs: list[AttrSpec] = ()) -> StunMessage:  # type: ignore[assignment]
    from stunscope.wire.encode import encode_message

    resolved = [a(tid) if callable(a) else a for a in attrs]
    decoded = decode_message(encode_message(method, cls, tid, resolved))
    assert isinstance(decoded, StunMessage)
    return decoded


class Script:
    """A scenario: messages appended in capture order with increasing frame numbers."""

    def __init__(self, t0: float = 1_000_000.0) -> None:
        self.t0 = t0
        self.events: list[Event] = []
        self.frame = 0

    def send(self, at: float, src: str, dst: str, method: int, cls: int, tid: bytes,
             attrs: list[AttrSpec] = (), transport: str = "udp", tunnel: str | None = None,  # type: ignore[assignment]
             peer: str | None = None, chan: int | None = None) -> int:
        """Append one message ``at`` seconds after t0; returns its frame number."""
        self.frame += 1
        msg = message(method, cls, tid, list(attrs))
        self.events.append(MessageEvent(
            self.frame, self.t0 + at, ep(src), ep(dst), transport, "stun", msg, tunnel,
            ep(peer) if peer else None, chan, 0,
        ))
        return self.frame

    def channeldata(self, at: float, src: str, dst: str, number: int, payload: bytes) -> int:
        self.frame += 1
        cd = decode_channeldata(number.to_bytes(2, "big") + len(payload).to_bytes(2, "big") + payload, False)
        self.events.append(MessageEvent(
            self.frame, self.t0 + at, ep(src), ep(dst), "udp", "channeldata", cd, None, None, number, 0,
        ))
        return self.frame

    def unreachable(self, at: float, src: str, dst: str) -> int:
        self.frame += 1
        self.events.append(Unreachable(self.frame, self.t0 + at, ep(dst).ip, ep(src), ep(dst), "udp",
                                       "port-unreachable"))
        return self.frame

    def transaction(self, at: float, client: str, server: str, method: int, req: list[AttrSpec] = (),  # type: ignore[assignment]
                    resp: list[AttrSpec] | None = (), rtt: float = 0.02, cls: int = SUCCESS,
                    transport: str = "udp") -> tuple[int, int | None]:
        """A request and (unless ``resp`` is None) its answer ``rtt`` later."""
        tid = txid()
        first = self.send(at, client, server, method, REQUEST, tid, req, transport)
        if resp is None:
            return first, None
        return first, self.send(at + rtt, server, client, method, cls, tid, resp, transport)

    def analyze(self, **kwargs: object) -> Analysis:
        analyzer = Analyzer(**kwargs)  # type: ignore[arg-type]
        for event in self.events:
            analyzer.feed(event)
        return analyzer.snapshot(final=True)


def codes(analysis: Analysis) -> set[str]:
    return {v.code for v in analysis.verdicts}


def find(analysis: Analysis, code: str) -> list:
    return [v for v in analysis.verdicts if v.code == code]
