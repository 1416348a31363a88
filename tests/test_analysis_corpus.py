"""Public captures with TURN sessions: allocations, permissions and channels as tshark shows them.

Expectations were read off ``tshark -r FILE -Y stun -V`` (Allocate/Refresh/CreatePermission/
ChannelBind requests and their answers); the files live in ../shared/corpus (skipped when absent).
"""

from __future__ import annotations


import pytest
from conftest import CORPUS

from stunscope.analysis import analyze
from stunscope.capture.stream import open_events

NDPI = CORPUS / "ntop+nDPI"


def allocations(name: str) -> dict[tuple[str, str], object]:
    path = NDPI / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    analysis = analyze(open_events(path), file=str(path))
    return {(a.client, a.server): a for a in analysis.allocations}


def perms(alloc) -> dict[str, int]:
    return {p.peer_ip: p.refreshes for p in alloc.permissions}


def test_adult_content_allocation_permission_channel() -> None:
    (a,) = allocations("adult_content.pcap").values()
    assert (a.client, a.server, a.transport) == ("192.168.1.199:42759", "31.220.27.69:80", "udp")
    assert (a.relayed, a.mapped, a.lifetime_s, a.challenges) == ("127.0.0.254:46990", "93.35.171.161:59534", 600, 1)
    # CreatePermission (frame 7 -> 9), then ChannelBind 0x4000 (frame 12 -> 14) refreshes it.
    assert perms(a) == {"31.220.27.69": 1}
    (ch,) = a.channels
    assert (ch.number, ch.peer, ch.bound_frame) == (0x4000, "31.220.27.69:13304", 14)
    # Frames 15-25: ChannelData, all on that channel.
    assert ch.packets == 11
    (peer,) = a.peers
    assert peer.channel_packets == ch.packets


def test_ndpi_stun_pcap_three_allocations() -> None:
    found = allocations("stun.pcap")
    google = found[("192.168.12.169:43016", "74.125.247.128:3478")]
    assert (google.relayed, google.lifetime_s, google.state) == ("10.2.0.86:44908", 120, "deallocated")
    fb = found[("192.168.12.169:38123", "31.13.86.54:40003")]
    assert (fb.relayed, fb.mapped, fb.lifetime_s) == ("31.13.86.54:53789", "93.47.226.1:11162", 900)
    # Frames 71/72 are refused (403); 74, 80, 94 and the ChannelBind 104 refresh 185.170.139.1.
    assert perms(fb) == {"185.170.139.1": 3, "31.13.86.54": 0}
    assert [(c.number, c.peer) for c in fb.channels] == [(0x4003, "185.170.139.1:12176")]
    assert fb.state == "deallocated"  # Refresh LIFETIME 0, frames 140/141
    tcp = found[("54.1.57.155:37257", "87.47.100.17:3478")]
    assert tcp.transport == "tcp" and tcp.relayed == "66.55.92.16:40576"
    assert perms(tcp) == {"192.168.8.153": 0, "127.0.0.1": 0, "5.162.130.14": 0, "66.55.92.16": 1}
    assert tcp.channels == ()


def test_stun_dtls_rtp_tcp_allocation() -> None:
    (a,) = allocations("stun_dtls_rtp.pcapng").values()
    assert (a.transport, a.relayed, a.mapped, a.lifetime_s) == ("tcp", "10.13.0.62:15530", "93.35.170.27:64994", 120)
    assert perms(a) == {"10.13.0.50": 0}
    assert a.channels == ()  # the ChannelBind (frames 58, 91) is never answered


def test_telegram_six_allocations_and_forbidden_private_peer() -> None:
    found = allocations("telegram_videocall.pcapng")
    assert len(found) == 6
    assert {a.lifetime_s for a in found.values()} == {60}
    first = found[("192.168.12.169:40643", "91.108.9.35:1400")]
    assert first.relayed == "91.108.9.35:56058"
    assert "10.46.103.200" not in perms(first)  # refused with 403 (frame 623)
    assert "93.36.13.115" in perms(first)
    path = NDPI / "telegram_videocall.pcapng"
    verdicts = analyze(open_events(path)).verdicts
    refused = [v for v in verdicts if v.code == "turn-forbidden-peer"]
    assert len(refused) == 3 and all("10.46.103.200" in v.message for v in refused)
