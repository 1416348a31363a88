"""The state of one TURN allocation (RFC 8656) and of what a TURN request asked for.

An allocation belongs to a client 5-tuple and server (RFC 8656 §2.2) and lives LIFETIME seconds
from the success that set it (§7.3, Refresh §7.5; LIFETIME 0 deallocates; default §3.2). Inside
it: permissions per peer IP, 300 s from their CreatePermission or ChannelBind (§9), channels
per number, 600 s from their ChannelBind (§12), with a number or peer kept reserved 5 minutes
after the binding expires (§12.2), and RFC 6062 TCP peer data connections by CONNECTION-ID
(§4.3, §4.4, §6.2.1).

The TURN methods are here too (RFC 8656 §18, RFC 6062 §6.1). ``stunscope.analysis.turn`` holds
the tracker that moves these states as the capture goes.
"""

from __future__ import annotations

from stunscope.wire.attributes import channel_number, lifetime, xor_peers
from stunscope.wire.message import Endpoint, StunMessage

ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND = 0x003, 0x004, 0x006, 0x007, 0x008, 0x009
CONNECT, CONNECTION_BIND, CONNECTION_ATTEMPT = 0x00A, 0x00B, 0x00C
METHODS = frozenset({ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND, CONNECT,
                     CONNECTION_BIND, CONNECTION_ATTEMPT})
"""The TURN methods (RFC 8656 §18, RFC 6062 §6.1)."""

CONNECTION_ID, XOR_PEER_ADDRESS = 0x002A, 0x0012
_INTEGRITY = (0x0008, 0x001C)
"""MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256."""

DEFAULT_LIFETIME_S = 600
"""RFC 8656 §3.2: the default allocation lifetime when the response carries no LIFETIME."""
PERMISSION_S = 300
"""RFC 8656 §9: permission lifetime."""
CHANNEL_S = 600
"""RFC 8656 §12: channel binding lifetime."""
CHANNEL_QUARANTINE_S = 300
"""RFC 8656 §12.2: after expiry, a number/peer is not rebound to another for 5 minutes."""

Key = tuple[str, Endpoint, Endpoint]


class PermissionState:
    """A permission toward one peer IP (RFC 8656 §9): lives 300 s from its last install."""

    __slots__ = ("frame", "expires", "refreshes")

    def __init__(self, frame: int, expires: float) -> None:
        self.frame = frame
        self.expires = expires
        self.refreshes = 0


class ChannelState:
    """A channel bound to one peer (RFC 8656 §12): lives 600 s from its last ChannelBind;
    ``packets``/``bytes`` count its ChannelData (§12.4)."""

    __slots__ = ("peer", "frame", "expires", "refreshes", "packets", "bytes")

    def __init__(self, peer: Endpoint, frame: int, expires: float) -> None:
        self.peer = peer
        self.frame = frame
        self.expires = expires
        self.refreshes = 0
        self.packets = 0
        self.bytes = 0


class ConnectionState:
    """An RFC 6062 peer data connection, by CONNECTION-ID: opened by Connect (§4.3) or
    ConnectionAttempt (§4.4), ``bound`` once a ConnectionBind (§4.4) claims it."""

    __slots__ = ("peer", "initiated_by", "bound", "frames")

    def __init__(self, peer: Endpoint | None, initiated_by: str, frame: int) -> None:
        self.peer = peer
        self.initiated_by = initiated_by
        self.bound = False
        self.frames = [frame]


class AllocationState:
    """The live state of one allocation. ``seen_start`` tells whether its Allocate was captured."""

    __slots__ = (
        "key", "first_frame", "state", "relayed", "mapped", "lifetime_s", "expires", "refreshes",
        "username", "realm", "challenges", "auth_failures", "stale_nonces", "dealloc_frame",
        "permissions", "channels", "old_channels", "peers", "connections", "seen_start",
        "expiry_reported", "last_frame", "asked", "stale_frames",
    )

    def __init__(self, key: Key, frame: int, seen_start: bool) -> None:
        self.key = key
        self.first_frame = frame
        self.state = "requested" if seen_start else "observed"
        self.relayed: Endpoint | None = None
        self.mapped: Endpoint | None = None
        self.lifetime_s: int | None = None
        self.expires: float | None = None
        self.refreshes = 0
        self.username: str | None = None
        self.realm: str | None = None
        self.challenges = 0
        self.auth_failures = 0
        self.stale_nonces = 0
        self.dealloc_frame: int | None = None
        self.permissions: dict[str, PermissionState] = {}
        self.channels: dict[int, ChannelState] = {}
        self.old_channels: dict[int, tuple[Endpoint, float]] = {}
        self.peers: dict[Endpoint, list[int]] = {}
        self.connections: dict[int, ConnectionState] = {}
        self.seen_start = seen_start
        self.expiry_reported = False
        self.last_frame = frame
        self.asked: set[str] = set()
        self.stale_frames: tuple[int, ...] = ()

    def ended(self, now: float) -> bool:
        """Deallocated, failed, or past its lifetime at ``now``."""
        return self.state in ("deallocated", "failed") or (
            self.expires is not None and now > self.expires
        )

    def subject(self) -> str:
        """How verdicts name this allocation."""
        transport, client, server = self.key
        return f"{client} -> {server} ({transport})"


class TurnRequest:
    """What a TURN request asked for, kept on its transaction until the answer."""

    __slots__ = ("alloc", "method", "peers", "channel", "msg", "lifetime", "conn_id", "frame",
                 "ts")

    def __init__(self, alloc: AllocationState, method: int, msg: StunMessage, frame: int,
                 ts: float) -> None:
        self.alloc = alloc
        self.method = method
        self.frame = frame
        self.ts = ts
        self.msg = msg
        self.peers = xor_peers(msg) if method in (CREATE_PERMISSION, CHANNEL_BIND, CONNECT) else []
        self.channel = channel_number(msg) if method == CHANNEL_BIND else None
        self.lifetime = lifetime(msg) if method == REFRESH else None
        self.conn_id = connection_id(msg) if method == CONNECTION_BIND else None


    @property
    def credentialed(self) -> bool:
        """Whether the request carried MESSAGE-INTEGRITY(-SHA256) (RFC 8489 §9.2.3)."""
        return any(a.type in _INTEGRITY for a in self.msg.attributes)


def connection_id(msg: StunMessage) -> int | None:
    """CONNECTION-ID (RFC 6062 §6.2.1): a 32-bit number."""
    for attr in msg.attributes:
        if attr.type == CONNECTION_ID and len(attr.raw) == 4:
            return int.from_bytes(attr.raw, "big")
    return None

