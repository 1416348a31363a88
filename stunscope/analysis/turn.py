"""TURN allocations (RFC 8656), their permissions, channels, relayed data, and RFC 6062 TCP.

One allocation per client 5-tuple and server (RFC 8656 §2.2). The long-term credential flow is
followed (§7.2 / RFC 8489 §9.2): a 401 to a request without MESSAGE-INTEGRITY is the normal
challenge; a 401 to a request that carried credentials means the credentials are wrong; a 438
(Stale Nonce) asks for a retry with the new NONCE; 437 (Allocation Mismatch) says the server has
no allocation for this 5-tuple (or already has one, for an Allocate).

Times come from packet timestamps: an allocation expires LIFETIME seconds after the success that
set it (§7.3, Refresh §7.5; LIFETIME 0 deallocates), a permission 300 s after it was installed
or refreshed by CreatePermission or ChannelBind (§9), a channel 600 s after its ChannelBind
(§12), and a channel number or peer stays reserved 5 minutes after the binding expires (§12.2).
The state types and these lifetimes are in ``stunscope.analysis.allocations``; this module holds
the tracker that moves them.

Flags (as verdicts): data sent to a peer without a live permission (the server drops it, §10.2),
ChannelData on an unbound or expired channel (§12.6), a ChannelBind that would rebind a live
number or peer (§12.2), a request after the allocation expired, 403 toward a peer. Flags that
depend on state the capture may have missed are only raised for allocations whose Allocate
was captured.

RFC 6062: Connect (§4.3) and ConnectionAttempt (§4.4) create peer data connections identified
by CONNECTION-ID; ConnectionBind (§4.4) on a new client connection binds one.

Tables are bounded: ``MAX_ALLOCATIONS`` allocations (ended ones evicted first among the oldest),
``MAX_PEERS`` permissions, channels and peers per allocation and ``MAX_ENTRIES`` in all;
evictions are counted.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from itertools import islice

from stunscope.analysis.allocations import (
    ALLOCATE,
    CHANNEL_BIND,
    CHANNEL_QUARANTINE_S,
    CHANNEL_S,
    CONNECT,
    CONNECTION_ATTEMPT,
    CONNECTION_BIND,
    CREATE_PERMISSION,
    DATA,
    DEFAULT_LIFETIME_S,
    METHODS,
    PERMISSION_S,
    REFRESH,
    SEND,
    XOR_PEER_ADDRESS,
    AllocationState,
    ChannelState,
    ConnectionState,
    Key,
    PermissionState,
    TurnRequest,
    connection_id,
)
from stunscope.analysis.results import (
    Allocation,
    Channel,
    PeerTraffic,
    Permission,
    TcpConnection,
    Verdict,
)
from stunscope.analysis.verdicts import VerdictLog, verdict
from stunscope.wire.attributes import (
    lifetime,
    realm,
    username,
    xor_mapped,
    xor_peers,
    xor_relayed,
)
from stunscope.wire.message import ChannelData, Endpoint, StunMessage
from stunscope.wire.registry import method_name

__all__ = ["ALLOCATE", "METHODS", "MAX_ALLOCATIONS", "MAX_ENTRIES", "MAX_PEERS", "AllocationState",
           "TurnRequest", "TurnTracker"]

MAX_ALLOCATIONS = 5_000
"""Allocations kept (live and ended); the oldest ended one (else the oldest) is evicted."""
MAX_PEERS = 256
"""Permissions, channels and peers with data counters, each, per allocation."""
MAX_ENTRIES = 100_000
"""Permissions, channels and peers over all allocations."""


def _forbidden_cause(peer: Endpoint, relayed: set[Endpoint]) -> str:
    """The usual reason a TURN server refuses a peer (RFC 8656 §9.1: server policy)."""
    if peer in relayed:
        return "the peer is itself a relayed address of a TURN server, and relay-to-relay is refused"
    try:
        ip = ipaddress.ip_address(peer.ip)
    except ValueError:
        return "the server's peer-address policy refused it"
    if ip.is_loopback:
        return "it is a loopback address, which servers refuse by default (coturn no-loopback-peers)"
    if ip.is_multicast:
        return "it is a multicast address (coturn no-multicast-peers)"
    if ip.is_private or ip.is_link_local:
        return ("it is a private address, which the server's policy denies (coturn denied-peer-ip "
                "ranges)")
    return "the server's policy denies this peer (coturn denied-peer-ip / allowed-peer-ip)"


class TurnTracker:
    """Follows every TURN allocation of a capture; see the module docstring."""

    __slots__ = ("allocs", "closed", "order", "by_connection", "relayed", "log", "evicted",
                 "evicted_peers", "peer_cache", "entries")

    def __init__(self, log: VerdictLog) -> None:
        self.allocs: dict[Key, AllocationState] = {}
        self.closed: deque[AllocationState] = deque()
        self.order: deque[AllocationState] = deque()
        self.by_connection: dict[int, AllocationState] = {}
        self.relayed: dict[Endpoint, AllocationState] = {}
        self.log = log
        self.evicted = 0
        self.evicted_peers = 0
        self.peer_cache: dict[bytes, Endpoint] = {}
        self.entries = 0

    # -- lookup -----------------------------------------------------------------------------

    def find(self, transport: str, src: Endpoint, dst: Endpoint) -> tuple[AllocationState | None, bool]:
        """The allocation of a packet and whether it goes client to server."""
        alloc = self.allocs.get((transport, src, dst))
        if alloc is not None:
            return alloc, True
        return self.allocs.get((transport, dst, src)), False

    def _open(self, key: Key, frame: int, seen_start: bool) -> AllocationState:
        if len(self.allocs) + len(self.closed) >= MAX_ALLOCATIONS:
            self._evict(frame)
        alloc = self.allocs[key] = AllocationState(key, frame, seen_start)
        self.order.append(alloc)
        return alloc

    def _evict(self, frame: int) -> None:
        """Drop one allocation: a closed one, else an ended one among the 32 oldest, else the
        oldest. ``order`` keeps creation order; entries no longer in the table are skipped."""
        self.evicted += 1
        if self.closed:
            self._forget(self.closed.popleft())
            return
        allocs, order = self.allocs, self.order
        while allocs.get(order[0].key) is not order[0]:
            order.popleft()
        victim = next(
            (a for a in islice(order, 32)
             if a.state in ("deallocated", "failed") and allocs.get(a.key) is a),
            order[0],
        )
        del allocs[victim.key]
        self._forget(victim)

    def _room(self, table: dict) -> bool:  # type: ignore[type-arg]
        """Whether one more permission/channel/peer may be kept (else counted as evicted)."""
        if len(table) >= MAX_PEERS or self.entries >= MAX_ENTRIES:
            self.evicted_peers += 1
            return False
        self.entries += 1
        return True

    def _forget(self, alloc: AllocationState) -> None:
        self.entries -= len(alloc.permissions) + len(alloc.channels) + len(alloc.peers)
        if alloc.relayed is not None and self.relayed.get(alloc.relayed) is alloc:
            del self.relayed[alloc.relayed]
        for conn_id in alloc.connections:
            self.by_connection.pop(conn_id, None)

    def relayed_of(self, transport: str, client: Endpoint, server: Endpoint) -> Endpoint | None:
        """The relayed address of the allocation of ``client`` on ``server``, if known."""
        alloc = self.allocs.get((transport, client, server))
        return alloc.relayed if alloc is not None else None

    def channel_peer(self, transport: str, src: Endpoint, dst: Endpoint,
                     number: int) -> tuple[Endpoint | None, Endpoint | None, bool]:
        """(relayed address, peer, outbound) for a channel number on the flow src -> dst."""
        alloc, outbound = self.find(transport, src, dst)
        if alloc is None:
            return None, None, outbound
        chan = alloc.channels.get(number)
        return alloc.relayed, chan.peer if chan is not None else None, outbound

    # -- requests ---------------------------------------------------------------------------

    def request(self, method: int, msg: StunMessage, transport: str, client: Endpoint,
                server: Endpoint, frame: int, ts: float) -> TurnRequest:
        """A new TURN request from ``client`` to ``server``: open or find its allocation."""
        key = (transport, client, server)
        alloc = self.allocs.get(key)
        if method == CONNECTION_BIND:
            conn_id = connection_id(msg)
            bound_to = self.by_connection.get(conn_id) if conn_id is not None else None
            if bound_to is not None:
                alloc = bound_to
        if alloc is None or (method == ALLOCATE and alloc.state == "deallocated"):
            if alloc is not None:
                self._close(alloc)
            alloc = self._open(key, frame, method == ALLOCATE)
        req = TurnRequest(alloc, method, msg, frame, ts)
        if alloc.realm is None:
            alloc.username = username(msg)
            alloc.realm = realm(msg)
        if alloc.seen_start and alloc.state == "active" and alloc.expires is not None and ts > alloc.expires:
            self._expired_use(alloc, frame, f"a {method_name(method)} request")
        if method == CHANNEL_BIND and req.channel is not None and req.peers:
            self._check_rebind(alloc, req.channel, req.peers[0], frame, ts)
        if method in (CREATE_PERMISSION, CHANNEL_BIND):
            alloc.asked.update(peer.ip for peer in req.peers)
        return req

    def _close(self, alloc: AllocationState) -> None:
        del self.allocs[alloc.key]
        self.closed.append(alloc)

    def _expired_use(self, alloc: AllocationState, frame: int, what: str) -> None:
        alloc.expiry_reported = True
        self.log.add(
            "turn-allocation-expired", "error", alloc.subject(),
            f"The TURN allocation of {alloc.subject()} expired (its lifetime of "
            f"{alloc.lifetime_s} s ran out without a Refresh) but the client still sent {what}; "
            "the server no longer knows it (437 Allocation Mismatch or silence).",
            (alloc.first_frame, frame),
        )

    def _check_rebind(self, alloc: AllocationState, number: int, peer: Endpoint, frame: int,
                      ts: float) -> None:
        """RFC 8656 §12.2: a number is bound to one peer and a peer to one number while the
        binding lives, and for 5 minutes after it expires."""
        chan = alloc.channels.get(number)
        conflict = None
        if chan is not None and chan.peer != peer and ts <= chan.expires + CHANNEL_QUARANTINE_S:
            conflict = f"channel 0x{number:04x} is still bound to {chan.peer}"
        else:
            old = alloc.old_channels.get(number)
            if old is not None and old[0] != peer and ts <= old[1] + CHANNEL_QUARANTINE_S:
                conflict = f"channel 0x{number:04x} was bound to {old[0]} less than 5 minutes ago"
        if conflict is None:
            for other, ch in alloc.channels.items():
                if other != number and ch.peer == peer and ts <= ch.expires + CHANNEL_QUARANTINE_S:
                    conflict = f"{peer} is still bound to channel 0x{other:04x}"
                    break
        if conflict is not None:
            self.log.add(
                "turn-channel-rebind", "warning", alloc.subject(),
                f"A ChannelBind asks for channel 0x{number:04x} to {peer} but {conflict} "
                "(RFC 8656 §12.2 forbids rebinding; the server answers 400).",
                (frame,),
            )

    # -- answers ----------------------------------------------------------------------------

    def answered(self, req: TurnRequest, msg: StunMessage, error: tuple[int, str] | None,
                 frame: int, ts: float) -> None:
        """Apply a success or error response to the allocation."""
        alloc = req.alloc
        alloc.last_frame = frame
        if error is None:
            alloc.stale_frames = ()
        if req.peers and alloc.asked:
            alloc.asked.difference_update(peer.ip for peer in req.peers)
        if error is None:
            self._success(req, alloc, msg, frame, ts)
        else:
            self._error(req, alloc, error, frame, ts)

    def _success(self, req: TurnRequest, alloc: AllocationState, msg: StunMessage, frame: int,
                 ts: float) -> None:
        method = req.method
        if method == ALLOCATE:
            alloc.state = "active"
            alloc.relayed = xor_relayed(msg)
            alloc.mapped = xor_mapped(msg)
            alloc.lifetime_s = lifetime(msg)
            if alloc.lifetime_s is None:
                alloc.lifetime_s = DEFAULT_LIFETIME_S
            alloc.expires = ts + alloc.lifetime_s
            if alloc.relayed is not None:
                self.relayed[alloc.relayed] = alloc
        elif method == REFRESH:
            granted = lifetime(msg)
            if granted is None:
                granted = req.lifetime if req.lifetime is not None else DEFAULT_LIFETIME_S
            if granted == 0:
                alloc.state = "deallocated"
                alloc.dealloc_frame = frame
                alloc.expires = ts
            else:
                if alloc.state == "observed":
                    alloc.state = "active"
                alloc.refreshes += 1
                alloc.lifetime_s = granted
                alloc.expires = ts + granted
        elif method == CREATE_PERMISSION:
            for peer in req.peers:
                self._permit(alloc, peer.ip, frame, ts)
        elif method == CHANNEL_BIND:
            if req.channel is not None and req.peers:
                self._bind(alloc, req.channel, req.peers[0], frame, ts)
        elif method == CONNECT:
            conn_id = connection_id(msg)
            if conn_id is not None:
                self._connection(alloc, conn_id, req.peers[0] if req.peers else None, "connect", frame)
        elif method == CONNECTION_BIND and req.conn_id is not None:
            conn = alloc.connections.get(req.conn_id)
            if conn is not None:
                conn.bound = True
                conn.frames.append(frame)

    def _permit(self, alloc: AllocationState, peer_ip: str, frame: int, ts: float) -> None:
        perm = alloc.permissions.get(peer_ip)
        if perm is None:
            if self._room(alloc.permissions):
                alloc.permissions[peer_ip] = PermissionState(frame, ts + PERMISSION_S)
        else:
            perm.refreshes += 1
            perm.expires = ts + PERMISSION_S

    def _bind(self, alloc: AllocationState, number: int, peer: Endpoint, frame: int, ts: float) -> None:
        chan = alloc.channels.get(number)
        if chan is None or chan.peer != peer:
            if chan is not None:
                alloc.old_channels[number] = (chan.peer, chan.expires)
                alloc.channels[number] = ChannelState(peer, frame, ts + CHANNEL_S)
            elif self._room(alloc.channels):
                alloc.channels[number] = ChannelState(peer, frame, ts + CHANNEL_S)
        else:
            chan.refreshes += 1
            chan.expires = ts + CHANNEL_S
        self._permit(alloc, peer.ip, frame, ts)

    def _connection(self, alloc: AllocationState, conn_id: int, peer: Endpoint | None,
                    initiated_by: str, frame: int) -> None:
        if conn_id not in alloc.connections:
            alloc.connections[conn_id] = ConnectionState(peer, initiated_by, frame)
            self.by_connection[conn_id] = alloc

    def _error(self, req: TurnRequest, alloc: AllocationState, error: tuple[int, str], frame: int,
               ts: float) -> None:
        code, reason = error
        name = method_name(req.method)
        subject = alloc.subject()
        evidence = (req.frame, frame)
        if code == 401:
            if req.credentialed:
                alloc.auth_failures += 1
                if alloc.state in ("requested", "challenged"):
                    alloc.state = "failed"
                self.log.add(
                    "turn-auth-failure", "error", subject,
                    f"The TURN server rejected the credentials of {alloc.username or 'the client'} "
                    f"with 401 Unauthorized although the {name} request carried MESSAGE-INTEGRITY: "
                    "the username or password is wrong (or the realm differs).",
                    evidence,
                )
            else:
                alloc.challenges += 1
                if alloc.state == "requested":
                    alloc.state = "challenged"
        elif code == 438:
            alloc.stale_nonces += 1
            alloc.stale_frames = evidence
            self.log.add(
                "turn-stale-nonce", "info", subject,
                f"The TURN server answered {name} with 438 Stale Nonce (its nonce expired): the "
                "client has to retry with the new NONCE (RFC 8489 §9.2.5); it did, as a later "
                "success shows (otherwise this is a warning).",
                evidence,
            )
        elif code == 437:
            if (alloc.seen_start and alloc.expires is not None and req.ts > alloc.expires
                    and alloc.state == "active"):
                alloc.state = "expired"
                self._expired_use(alloc, frame, f"a {name} request")
            else:
                self.log.add(
                    "turn-allocation-mismatch", "error", subject,
                    f"The TURN server answered {name} with 437 Allocation Mismatch: "
                    + ("an allocation already exists on this 5-tuple (the client allocated twice)."
                       if req.method == ALLOCATE else
                       "it has no allocation for this 5-tuple (never allocated, deallocated, or "
                       "expired)."),
                    evidence,
                )
                if req.method == ALLOCATE and alloc.state in ("requested", "challenged"):
                    alloc.state = "failed"
        elif code == 403 and req.method in (CREATE_PERMISSION, CHANNEL_BIND, CONNECT):
            relayed = set(self.relayed)
            for peer in req.peers or [None]:
                if peer is None:
                    text = "a peer"
                    cause = "the server's peer-address policy refused it"
                else:
                    text = str(peer)
                    cause = _forbidden_cause(peer, relayed)
                self.log.add(
                    "turn-forbidden-peer", "error", f"{subject} peer {text}",
                    f"The TURN server {alloc.key[2]} refused {name} toward {text} with 403 "
                    f"Forbidden: {cause}.",
                    evidence,
                )
        else:
            if req.method == ALLOCATE and alloc.state in ("requested", "challenged"):
                alloc.state = "failed"
            self.log.add(
                "turn-request-error", "warning", f"{subject} {code}",
                f"The TURN server answered {name} with {code} {reason}.",
                evidence,
            )

    # -- indications and data -----------------------------------------------------------------

    def indication(self, method: int, msg: StunMessage, transport: str, src: Endpoint,
                   dst: Endpoint, frame: int, ts: float) -> None:
        """Send (client to server) and Data (server to client) indications (RFC 8656 §11), and
        RFC 6062 ConnectionAttempt."""
        if method == SEND:
            alloc = self.allocs.get((transport, src, dst))
            if alloc is None:
                alloc = self._open((transport, src, dst), frame, False)
            outbound = True
        elif method in (DATA, CONNECTION_ATTEMPT):
            alloc = self.allocs.get((transport, dst, src))
            if alloc is None:
                alloc = self._open((transport, dst, src), frame, False)
            outbound = False
        else:
            return
        peer = self._indication_peer(msg)
        if method == CONNECTION_ATTEMPT:
            conn_id = connection_id(msg)
            if conn_id is not None:
                self._connection(alloc, conn_id, peer, "peer", frame)
            return
        size = 0
        for attr in msg.attributes:
            if attr.type == 0x0013:
                size = len(attr.raw)
                break
        if peer is None:
            return
        if outbound and alloc.seen_start:
            self._check_live(alloc, peer, frame, ts)
        counters = self._peer(alloc, peer)
        if counters is not None:
            base = 0 if outbound else 2
            counters[base] += 1
            counters[base + 1] += size
            counters[5] += 1

    def _indication_peer(self, msg: StunMessage) -> Endpoint | None:
        """The XOR-PEER-ADDRESS of a Send/Data indication. An IPv4 value is XORed with the
        cookie only (RFC 8489 §14.2), so its 8 raw bytes name the peer: decoded once, cached."""
        for attr in msg.attributes:
            if attr.type == XOR_PEER_ADDRESS:
                if len(attr.raw) != 8:
                    break
                peer = self.peer_cache.get(attr.raw)
                if peer is None:
                    peers = xor_peers(msg)
                    if not peers:
                        return None
                    if len(self.peer_cache) >= MAX_PEERS * 16:
                        self.peer_cache.clear()
                    peer = self.peer_cache[attr.raw] = peers[0]
                return peer
        peers = xor_peers(msg)
        return peers[0] if peers else None

    def _check_live(self, alloc: AllocationState, peer: Endpoint, frame: int, ts: float) -> None:
        if alloc.expires is not None and ts > alloc.expires and alloc.state != "deallocated":
            if not alloc.expiry_reported:
                self._expired_use(alloc, frame, "data")
            return
        perm = alloc.permissions.get(peer.ip)
        if perm is None and peer.ip in alloc.asked:
            return  # sent while the CreatePermission/ChannelBind is in flight: a race, not a bug
        if perm is None or ts > perm.expires:
            self.log.add(
                "turn-data-without-permission", "warning", f"{alloc.subject()} peer {peer.ip}",
                f"The client sent data toward {peer} through {alloc.key[2]} without a live "
                f"permission for {peer.ip} ("
                + ("none was installed" if perm is None else "it expired after 300 s")
                + "): the server drops it silently (RFC 8656 §10.2). Send CreatePermission first.",
                (frame,),
            )

    def _peer(self, alloc: AllocationState, peer: Endpoint) -> list[int] | None:
        counters = alloc.peers.get(peer)
        if counters is None:
            if not self._room(alloc.peers):
                return None
            counters = alloc.peers[peer] = [0, 0, 0, 0, 0, 0]
        return counters

    def channeldata(self, cd: ChannelData, transport: str, src: Endpoint, dst: Endpoint,
                    frame: int, ts: float) -> None:
        """Account one ChannelData message (RFC 8656 §12.4) to its channel and real peer."""
        alloc = self.allocs.get((transport, src, dst))
        outbound = True
        if alloc is None:
            alloc = self.allocs.get((transport, dst, src))
            if alloc is None:
                return  # no TURN message of this flow seen: nothing to attribute it to
            outbound = False
        number = cd.channel
        chan = alloc.channels.get(number)
        size = len(cd.data)
        if chan is None or (outbound and ts > chan.expires):
            if outbound and alloc.seen_start:
                self.log.add(
                    "turn-channel-unbound", "warning", f"{alloc.subject()} channel 0x{number:04x}",
                    f"The client sent ChannelData on channel 0x{number:04x} through {alloc.key[2]} "
                    + ("which was never bound" if chan is None else
                       "after its binding expired (600 s without a ChannelBind refresh)")
                    + ": the server discards it (RFC 8656 §12.6).",
                    (frame,),
                )
            if chan is None:
                return
        chan.packets += 1
        chan.bytes += size
        counters = alloc.peers.get(chan.peer)
        if counters is None:
            counters = self._peer(alloc, chan.peer)
            if counters is None:
                return
        counters[4] += 1
        if outbound:
            counters[0] += 1
            counters[1] += size
        else:
            counters[2] += 1
            counters[3] += size

    # -- results ------------------------------------------------------------------------------

    def results(self, now: float | None) -> tuple[list[Allocation], list[Verdict]]:
        """Every allocation as of ``now`` (the last packet time), and the end-state verdicts."""
        out: list[Allocation] = []
        found: list[Verdict] = []
        for alloc in [*self.closed, *self.allocs.values()]:
            state = alloc.state
            if state == "active" and now is not None and alloc.expires is not None and now > alloc.expires:
                state = "expired"
                if alloc.seen_start and not alloc.expiry_reported:
                    found.append(verdict(
                        "turn-allocation-expired", "warning", alloc.subject(),
                        f"The TURN allocation of {alloc.subject()} expired: its lifetime of "
                        f"{alloc.lifetime_s} s ran out without a Refresh before the capture ended.",
                        (alloc.first_frame, alloc.last_frame),
                    ))
            if alloc.stale_frames:
                found.append(verdict(
                    "turn-stale-nonce", "warning", alloc.subject(),
                    f"The TURN server answered with 438 Stale Nonce and no request of "
                    f"{alloc.subject()} succeeded afterwards: the client did not retry with the "
                    "new NONCE (RFC 8489 §9.2.5) and will lose the allocation.",
                    alloc.stale_frames,
                ))
            out.append(self._result(alloc, state, now))
        out.sort(key=lambda a: a.first_frame)
        return out, found

    @staticmethod
    def _result(alloc: AllocationState, state: str, now: float | None) -> Allocation:
        # Permissions and channels die with their allocation (RFC 8656 §7: deallocation and
        # expiry delete them), whatever their own timers say: they expire when it ends.
        end = alloc.expires if alloc.expires is not None else float("inf")
        ended = state in ("deallocated", "expired")

        def until(expires: float) -> float:  # a live allocation may still be refreshed
            return round(min(expires, end) if ended else expires, 6)

        def live(expires: float) -> str:
            if ended:
                return "expired"
            return "expired" if now is not None and now > min(expires, end) else "active"

        transport, client, server = alloc.key
        perms = tuple(
            Permission(ip, p.frame, p.refreshes, until(p.expires), live(p.expires))
            for ip, p in alloc.permissions.items()
        )
        chans = tuple(
            Channel(n, str(c.peer), c.frame, c.refreshes, until(c.expires), live(c.expires),
                    c.packets, c.bytes)
            for n, c in sorted(alloc.channels.items())
        )
        peers = tuple(
            PeerTraffic(str(peer), *counts) for peer, counts in alloc.peers.items()
        )
        conns = tuple(
            TcpConnection(conn_id, str(c.peer) if c.peer else None, c.initiated_by, c.bound,
                          tuple(c.frames))
            for conn_id, c in alloc.connections.items()
        )
        return Allocation(
            str(client), str(server), transport,
            str(alloc.relayed) if alloc.relayed else None,
            str(alloc.mapped) if alloc.mapped else None,
            alloc.lifetime_s, state, alloc.first_frame, alloc.username, alloc.realm,
            alloc.challenges, alloc.auth_failures, alloc.stale_nonces, alloc.refreshes,
            round(alloc.expires, 6) if alloc.expires is not None else None, alloc.dealloc_frame,
            perms, chans, peers, conns,
        )
