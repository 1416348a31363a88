"""Immutable events that the capture layer streams to the analysis and the outputs.

A capture is read as a generator of these (never loaded whole): ``Packet`` is one transport
payload (a UDP datagram or a TCP segment's bytes after reassembly); ``MessageEvent`` is one STUN,
classic STUN or ChannelData message found in it (including messages tunnelled inside ChannelData
and Send/Data indications, RFC 8656 §11-§12); ``Unreachable`` is an ICMP/ICMPv6 error that quotes
a flow (RFC 792, RFC 4443); ``Undecodable`` is a payload that looked like STUN but failed to decode.
"""

from __future__ import annotations

from typing import NamedTuple, Union

from stunscope.wire.message import ChannelData, DecodeFailure, Endpoint, StunMessage

__all__ = ["Endpoint", "Event", "MessageEvent", "Packet", "Undecodable", "Unreachable"]


class Packet(NamedTuple):
    """One transport payload: a UDP datagram, or bytes a TCP direction delivered in one frame.

    ``frame`` is 1-based as in tshark; ``ts`` is seconds since the epoch from the capture;
    ``transport`` is ``udp`` or ``tcp``.
    """

    frame: int
    ts: float
    src: Endpoint
    dst: Endpoint
    transport: str
    payload: bytes


class MessageEvent(NamedTuple):
    """One message found in a capture.

    ``kind`` is ``stun``, ``classic-stun`` or ``channeldata``; ``message`` the decoded message.
    ``src``/``dst``/``transport`` are those of the packet that carried it. ``tunnel`` is None for a
    message sent directly, else how it was carried: ``channeldata``, ``send`` or ``data``; for
    ``send``/``data`` ``peer`` is the carrier's XOR-PEER-ADDRESS, for ``channeldata`` ``channel``
    is the carrier's channel number (the analysis resolves it to a peer through ChannelBind).
    ``index`` numbers messages within one frame from 0 (several can share a TCP segment).
    """

    frame: int
    ts: float
    src: Endpoint
    dst: Endpoint
    transport: str
    kind: str
    message: Union[StunMessage, ChannelData]
    tunnel: str | None
    peer: Endpoint | None
    channel: int | None
    index: int


class Unreachable(NamedTuple):
    """An ICMP/ICMPv6 error quoting a datagram from ``src`` to ``dst`` (the original flow).

    ``reporter`` is the address that sent the ICMP error; ``icmp`` is e.g. ``port-unreachable``.
    The quoted datagram is not traffic and is never counted as a message. Every ICMP error that
    quotes a UDP or TCP datagram yields one, whatever the flow carried: match ``src``/``dst``
    against the flows you track. ``icmp`` names: ``net-unreachable``, ``host-unreachable``,
    ``protocol-unreachable``, ``port-unreachable``, ``fragmentation-needed``,
    ``admin-prohibited``, ``ttl-exceeded`` (RFC 792); ``no-route``, ``address-unreachable``,
    ``packet-too-big``, ``hop-limit-exceeded`` ... (RFC 4443); others ``<type>-<code>``.
    """

    frame: int
    ts: float
    reporter: str
    src: Endpoint
    dst: Endpoint
    transport: str
    icmp: str


class Undecodable(NamedTuple):
    """A payload classified as STUN/ChannelData that could not be decoded (see ``failure``)."""

    frame: int
    ts: float
    src: Endpoint
    dst: Endpoint
    transport: str
    failure: DecodeFailure


Event = Union[MessageEvent, Unreachable, Undecodable]
