"""When an allocation ends, its permissions and channels end with it (RFC 8656 §7, §9, §12).

A deallocated (Refresh with LIFETIME 0, §7.2) or expired (§7) allocation takes its permissions and
channel bindings along: the analysis must not report them as still active, nor give them an expiry
after the allocation's end. Checked on every real capture with TURN allocations.
"""

from __future__ import annotations

import pytest
from conftest import CAPTURES

from stunscope.analysis import analyze
from stunscope.capture.stream import open_events

TURN_CAPTURES = ["ice-turn-relay", "turn-udp", "turn-tcp", "turn-expired", "turn-stale-nonce", "ipv6"]


def _allocations(name: str) -> list[dict]:
    path = CAPTURES / f"{name}.pcapng"
    return analyze(open_events(path), file=str(path)).to_json()["allocations"]


@pytest.mark.parametrize("name", TURN_CAPTURES)
def test_permissions_and_channels_end_with_their_allocation(name: str) -> None:
    ended = [a for a in _allocations(name) if a["state"] in ("deallocated", "expired")]
    assert ended, f"{name}: no allocation ended"
    for alloc in ended:
        children = alloc["permissions"] + alloc["channels"]
        for child in children:
            assert child["state"] != "active", (name, alloc["state"], child)
        end_ts = alloc["expires_ts"]
        assert all(child["expires_ts"] <= end_ts + 1e-6 for child in children), (name, alloc)


def test_an_allocation_alive_at_the_end_keeps_its_permissions_active() -> None:
    """The opposite case, so the test above cannot pass by never saying `active`."""
    alive = [a for name in TURN_CAPTURES for a in _allocations(name)
             if a["state"] == "active" and a["permissions"]]
    states = {p["state"] for a in alive for p in a["permissions"]}
    assert alive and "active" in states
