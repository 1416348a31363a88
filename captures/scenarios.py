"""Traffic generators for the bundled captures and the live-capture tests.

Every scenario starts the real programs it needs on loopback addresses only (coturn's
``turnserver``, ``turnutils_stunclient``, ``turnutils_uclient``, ``turnutils_peer``, aioice
agents, and, where the coturn tools cannot provoke a case, a small Python client that speaks
to the real coturn), runs bounded in time, and stops every process it started.

API::

    from captures import scenarios            # or import by path (captures/ is not a package
                                              # that is installed; tests add it to sys.path)
    plan = scenarios.Plan.allocate()           # a block of free loopback ports
    plan.bpf()                                 # a capture filter that matches the scenario only
    result = scenarios.SCENARIOS["turn-udp"](plan)
    result.sdp                                 # ICE ufrag/pwd/candidates (ICE scenarios), or ""
    plan.cleanup()

``SCENARIOS[name](plan=None)`` also works with no plan (a fresh one is allocated and cleaned up).
Each function's docstring says what its traffic shows. All ports a scenario listens on or sends
to live in ``plan``'s block (``plan.base`` .. ``plan.base + BLOCK - 1``), so ``plan.bpf()``
captures it and nothing else, and several scenarios can run in parallel.

Credentials: TURN user ``alice``, password ``wonderland``, realm ``stunscope.test``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

USER = "alice"
PASSWORD = "wonderland"
WRONG_PASSWORD = "looking-glass"
REALM = "stunscope.test"

BLOCK = 48  # ports per plan
# Below Linux's default ephemeral range (32768-60999), so clients' random ports never collide.
PORT_LOW, PORT_HIGH = 20000, 32000

# Offsets of each role's port in the block.
SERVER = 0  # turnserver listening port (UDP and TCP)
ALT = 1  # turnserver alternate port (RFC 5780, coturn default: port + 1)
PEER = 2  # turnutils_peer / echo peer
PEER2 = 3
DEAD = 4  # nobody listens here
SINK = 5  # a socket that reads and never answers
AGENTS = 8  # 8..15: aioice host sockets
RELAY_MIN, RELAY_MAX = 16, BLOCK - 1  # coturn relay range

DEFAULT_TIMEOUT = 60.0


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(fam, kind)
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


@dataclass
class Plan:
    """A block of free loopback ports and a work directory for one scenario run."""

    base: int
    workdir: Path
    _own_workdir: bool = True
    notes: list[str] = field(default_factory=list)

    @classmethod
    def allocate(cls, workdir: Path | None = None, tries: int = 50) -> "Plan":
        """Pick a block of ``BLOCK`` ports free on 127.0.0.1, 127.0.0.2 and ::1 (UDP and TCP)."""
        rng = random.Random()
        for _ in range(tries):
            base = rng.randrange(PORT_LOW, PORT_HIGH - BLOCK)
            if all(
                _port_free(base + i, h)
                for i in range(BLOCK)
                for h in ("127.0.0.1", "127.0.0.2", "::1")
            ):
                own = workdir is None
                wd = Path(tempfile.mkdtemp(prefix="stunscope-scn-")) if own else Path(workdir)
                wd.mkdir(parents=True, exist_ok=True)
                return cls(base=base, workdir=wd, _own_workdir=own)
        raise RuntimeError("no free block of loopback ports")

    def port(self, offset: int) -> int:
        return self.base + offset

    @property
    def server_port(self) -> int:
        return self.base + SERVER

    @property
    def peer_port(self) -> int:
        return self.base + PEER

    @property
    def dead_port(self) -> int:
        return self.base + DEAD

    def bpf(self) -> str:
        """Capture filter: UDP/TCP on the block's ports, and ICMP errors quoting them."""
        lo, hi = self.base, self.base + BLOCK - 1
        return (
            f"((udp or tcp) and portrange {lo}-{hi})"
            # ICMP (v4) error quoting a UDP datagram: inner destination port at icmp[30:2]
            f" or (icmp and icmp[0] = 3 and icmp[30:2] >= {lo} and icmp[30:2] <= {hi})"
            # ICMPv6 destination unreachable: inner UDP destination port at ip6[90:2]
            f" or (icmp6 and ip6[40] = 1 and ip6[90:2] >= {lo} and ip6[90:2] <= {hi})"
        )

    def cleanup(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class Result:
    """What a scenario run produced besides packets."""

    name: str
    sdp: str = ""  # ICE scenarios: a=ice-ufrag / a=ice-pwd / a=candidate per agent
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- processes


def _listening(port: int, tcp: bool) -> bool:
    hexport = f":{port:04X}"
    files = ("/proc/net/tcp", "/proc/net/tcp6") if tcp else ("/proc/net/udp", "/proc/net/udp6")
    for f in files:
        with contextlib.suppress(OSError):
            for line in Path(f).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[1].endswith(hexport) and (not tcp or cols[3] == "0A"):
                    return True
    return False


def _wait_listening(port: int, tcp: bool = False, timeout: float = 10.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(port, tcp):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}: {proc.args}")
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


def _stop(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    """Stop one process we started, by its pid: SIGTERM, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout)


def _run(args: list[str], plan: Plan, timeout: float = 30.0, log: str = "client.log") -> int:
    """Run a client to completion (bounded); its output goes to the plan's work directory."""
    with open(plan.workdir / log, "ab") as out:
        out.write(("\n$ " + " ".join(args) + "\n").encode())
        out.flush()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            return -1


@contextlib.contextmanager
def turnserver(
    plan: Plan,
    *,
    ips: tuple[str, ...] = ("127.0.0.1",),
    extra: tuple[str, ...] = (),
    allow_loopback: bool = True,
):
    """Run coturn's turnserver on ``plan``'s ports (UDP and TCP) with user alice/wonderland."""
    wd = plan.workdir
    args = ["turnserver", "-n", "--log-file", str(wd / "turnserver.log"), "--simple-log",
            "--no-stdout-log", "--pidfile", str(wd / "turnserver.pid"), "--db", str(wd / "turndb"),
            "-p", str(plan.port(SERVER)), "--alt-listening-port", str(plan.port(ALT)),
            "--min-port", str(plan.port(RELAY_MIN)), "--max-port", str(plan.port(RELAY_MAX)),
            "--lt-cred-mech", "--user", f"{USER}:{PASSWORD}", "--realm", REALM,
            "--fingerprint", "--no-cli", "--no-tls", "--no-dtls", "--relay-threads", "1",
            "--no-multicast-peers"]
    for ip in ips:
        args += ["--listening-ip", ip]
    args += ["--relay-ip", ips[0]]
    if allow_loopback:
        args.append("--allow-loopback-peers")
    args += list(extra)
    with open(wd / "turnserver.out", "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        _wait_listening(plan.port(SERVER), tcp=False, proc=proc)
        _wait_listening(plan.port(SERVER), tcp=True, proc=proc)
        time.sleep(0.2)
        yield proc
    finally:
        _stop(proc)


@contextlib.contextmanager
def turn_peer(plan: Plan, offset: int = PEER, ip: str = "127.0.0.1"):
    """coturn's turnutils_peer: a UDP echo peer for the uclient's relayed data."""
    with open(plan.workdir / "peer.out", "ab") as out:
        proc = subprocess.Popen(["turnutils_peer", "-p", str(plan.port(offset)), "-L", ip],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_listening(plan.port(offset), proc=proc)
        yield proc
    finally:
        _stop(proc)


def _uclient(plan: Plan, *flags: str, server: str = "127.0.0.1", user: str = USER,
             password: str = PASSWORD, n: int = 4, peer: str = "127.0.0.1",
             timeout: float = 30.0) -> int:
    args = ["turnutils_uclient", "-u", user, "-w", password, "-p", str(plan.server_port),
            "-e", peer, "-r", str(plan.peer_port), "-n", str(n), "-m", "1", "-l", "64",
            "-z", "50", *flags, server]
    return _run(args, plan, timeout=timeout)


# --------------------------------------------------------------------------- a tiny STUN client
# Hand-built STUN (RFC 8489/8656) for the cases the coturn tools cannot provoke. The server it
# talks to is always the real coturn.

COOKIE = 0x2112A442
BINDING, ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND = (
    0x001, 0x003, 0x004, 0x006, 0x007, 0x008, 0x009)
REQUEST, INDICATION, SUCCESS, ERROR = 0x000, 0x010, 0x100, 0x110


def _attr(t: int, v: bytes) -> bytes:
    return struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4)


def _xaddr(ip: str, port: int, txid: bytes) -> bytes:
    if ":" in ip:
        raw = socket.inet_pton(socket.AF_INET6, ip)
        key = struct.pack("!I", COOKIE) + txid
        return struct.pack("!BBH", 0, 2, port ^ (COOKIE >> 16)) + bytes(a ^ b for a, b in zip(raw, key))
    raw = struct.unpack("!I", socket.inet_aton(ip))[0]
    return struct.pack("!BBHI", 0, 1, port ^ (COOKIE >> 16), raw ^ COOKIE)


def stun_message(method: int, cls: int, attrs: list[tuple[int, bytes]], *, txid: bytes | None = None,
                 key: bytes | None = None, fingerprint: bool = True) -> bytes:
    """Encode a STUN message; MESSAGE-INTEGRITY with ``key``, then FINGERPRINT. An attribute
    value may be a function of the transaction id (XOR-PEER-ADDRESS over IPv6)."""
    txid = txid or os.urandom(12)
    t = (method & 0xF) | ((method & 0x70) << 1) | ((method & 0xF80) << 2) | cls
    body = b"".join(_attr(a, v(txid) if callable(v) else v) for a, v in attrs)

    def hdr(length: int) -> bytes:
        return struct.pack("!HHI", t, length, COOKIE) + txid

    if key is not None:
        mac = hmac.new(key, hdr(len(body) + 24) + body, hashlib.sha1).digest()
        body += _attr(0x0008, mac)
    if fingerprint:
        crc = (zlib.crc32(hdr(len(body) + 8) + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += _attr(0x8028, struct.pack("!I", crc))
    return hdr(len(body)) + body


def _parse(data: bytes) -> tuple[int, dict[int, bytes]]:
    t = struct.unpack("!H", data[:2])[0]
    attrs, off = {}, 20
    while off + 4 <= len(data):
        a, n = struct.unpack("!HH", data[off:off + 4])
        attrs.setdefault(a, data[off + 4:off + 4 + n])
        off += 4 + n + (-n % 4)
    return t, attrs


def _error_code(attrs: dict[int, bytes]) -> int | None:
    v = attrs.get(0x0009)
    return None if v is None else (v[2] & 7) * 100 + v[3]


class TurnClient:
    """A minimal long-term-credential TURN client over UDP (RFC 8656), blocking, bounded."""

    def __init__(self, server: tuple[str, int], user: str = USER, password: str = PASSWORD,
                 sock: socket.socket | None = None) -> None:
        fam = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        self.server = server
        self.sock = sock or socket.socket(fam, socket.SOCK_DGRAM)
        if sock is None:
            self.sock.bind((server[0], 0))
        self.sock.settimeout(0.5)
        self.user, self.password = user, password
        self.realm: bytes | None = None
        self.nonce: bytes | None = None

    @property
    def key(self) -> bytes:
        return hashlib.md5(f"{self.user}:{self.realm.decode()}:{self.password}".encode()).digest()

    def transact(self, method: int, attrs: list[tuple[int, bytes]], *, auth: bool = True,
                 retries: int = 3) -> tuple[int, dict[int, bytes]]:
        """Send a request (retransmitting up to ``retries`` times) and return the response."""
        txid = os.urandom(12)
        a = list(attrs)
        key = None
        if auth and self.nonce is not None:
            a += [(0x0006, self.user.encode()), (0x0014, self.realm), (0x0015, self.nonce)]
            key = self.key
        msg = stun_message(method, REQUEST, a, txid=txid, key=key)
        for _ in range(retries):
            self.sock.sendto(msg, self.server)
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                try:
                    data, _addr = self.sock.recvfrom(4096)
                except (socket.timeout, ConnectionRefusedError):
                    break
                if len(data) >= 20 and data[8:20] == txid:
                    t, at = _parse(data)
                    if 0x0014 in at:
                        self.realm = at[0x0014]
                    if 0x0015 in at:
                        self.nonce = at[0x0015]
                    return t, at
        return 0, {}

    def request(self, method: int, attrs: list[tuple[int, bytes]]) -> tuple[int, dict[int, bytes]]:
        """A request with the long-term credential flow: retry once after 401 or 438."""
        t, at = self.transact(method, attrs)
        if t & 0x110 == ERROR and _error_code(at) in (401, 438):
            t, at = self.transact(method, attrs)
        return t, at

    def allocate(self, lifetime: int | None = None) -> tuple[int, dict[int, bytes]]:
        attrs = [(0x0019, bytes([17, 0, 0, 0]))]
        if ":" in self.server[0]:  # REQUESTED-ADDRESS-FAMILY: an IPv6 relay (RFC 8656 §18.11)
            attrs.append((0x0017, bytes([2, 0, 0, 0])))
        if lifetime is not None:
            attrs.append((0x000D, struct.pack("!I", lifetime)))
        return self.request(ALLOCATE, attrs)

    def refresh(self, lifetime: int) -> tuple[int, dict[int, bytes]]:
        return self.request(REFRESH, [(0x000D, struct.pack("!I", lifetime))])

    def create_permission(self, ip: str, port: int = 0) -> tuple[int, dict[int, bytes]]:
        return self.request(CREATE_PERMISSION, [(0x0012, lambda txid: _xaddr(ip, port, txid))])

    def send_indication(self, ip: str, port: int, data: bytes) -> None:
        msg = stun_message(SEND, INDICATION,
                           [(0x0012, lambda txid: _xaddr(ip, port, txid)), (0x0013, data)])
        self.sock.sendto(msg, self.server)

    def close(self) -> None:
        self.sock.close()


class _Sink:
    """A UDP socket that reads and never answers (requests to it go unanswered, no ICMP)."""

    def __init__(self, addr: tuple[str, int]) -> None:
        fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind(addr)
        self.sock.settimeout(0.05)
        self.received: list[bytes] = []

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.received.append(self.sock.recv(4096))

    def close(self) -> None:
        self.drain()
        self.sock.close()


# --------------------------------------------------------------------------- coturn scenarios


def binding(plan: Plan | None = None) -> Result:
    """Plain STUN Binding request/response (turnutils_stunclient against turnserver), then an
    RFC 5780 run (-f): CHANGE-REQUEST tests answered from the alternate address 127.0.0.2 and
    the alternate port, with OTHER-ADDRESS and RESPONSE-ORIGIN in the responses."""
    with _planned(plan) as plan:
        with turnserver(plan, ips=("127.0.0.1", "127.0.0.2")):
            _run(["turnutils_stunclient", "-p", str(plan.server_port), "127.0.0.1"], plan, 15)
            time.sleep(0.2)
            _run(["turnutils_stunclient", "-f", "-p", str(plan.server_port), "127.0.0.1"],
                 plan, 15)
            time.sleep(0.3)
        return Result("binding")


def turn_udp(plan: Plan | None = None) -> Result:
    """TURN over UDP with turnutils_uclient and turnutils_peer: the 401 challenge, authenticated
    Allocate, CreatePermission, ChannelBind and ChannelData (first run), then Send and Data
    indications (second run, -s), Refresh and deallocation (Refresh LIFETIME 0)."""
    with _planned(plan) as plan:
        with turnserver(plan), turn_peer(plan):
            _uclient(plan, "-c")
            time.sleep(0.3)
            _uclient(plan, "-c", "-s")
            time.sleep(0.3)
        return Result("turn-udp")


def turn_tcp(plan: Plan | None = None) -> Result:
    """TURN over TCP (uclient -t) with a UDP relay to turnutils_peer, then an RFC 6062 TCP relay
    between two uclient sessions (-T): Connect, ConnectionAttempt, ConnectionBind."""
    with _planned(plan) as plan:
        with turnserver(plan), turn_peer(plan):
            _uclient(plan, "-t", "-c")
            time.sleep(0.3)
            _uclient(plan, "-T", n=2)
            time.sleep(0.3)
        return Result("turn-tcp")


def turn_wrong_password(plan: Plan | None = None) -> Result:
    """turnutils_uclient with the wrong password for alice: the 401 challenge, then the
    authenticated Allocate is answered 401 again (and again on the client's retries): a wrong
    password (turn-auth-failure). No allocation is made."""
    with _planned(plan) as plan:
        with turnserver(plan), turn_peer(plan):
            _uclient(plan, "-c", password=WRONG_PASSWORD, timeout=12)
            time.sleep(0.3)
        return Result("turn-wrong-password")


def turn_stale_nonce(plan: Plan | None = None) -> Result:
    """coturn with --stale-nonce=3: a Python TURN client allocates, then after 4 s sends a
    Refresh with the old nonce, gets 438 Stale Nonce with a new NONCE, and retries successfully;
    the same happens to a CreatePermission; then it deallocates (Refresh LIFETIME 0)."""
    with _planned(plan) as plan:
        with turnserver(plan, extra=("--stale-nonce=3",)):
            c = TurnClient(("127.0.0.1", plan.server_port))
            try:
                c.allocate()
                time.sleep(4)
                c.refresh(600)
                time.sleep(4)
                c.create_permission("127.0.0.1", plan.peer_port)
                c.refresh(0)
            finally:
                c.close()
            time.sleep(0.2)
        return Result("turn-stale-nonce")


def turn_forbidden_peer(plan: Plan | None = None) -> Result:
    """coturn refuses peer 127.0.0.3 (--denied-peer-ip=127.0.0.3; other loopback peers are
    allowed): turnutils_uclient's ChannelBind (first run) and CreatePermission (second run, -s)
    toward 127.0.0.3 get 403 Forbidden (turn-forbidden-peer)."""
    with _planned(plan) as plan:
        with turnserver(plan, extra=("--denied-peer-ip=127.0.0.3",)):
            _uclient(plan, "-c", peer="127.0.0.3", n=2, timeout=12)
            time.sleep(0.3)
            _uclient(plan, "-c", "-s", peer="127.0.0.3", n=2, timeout=12)
            time.sleep(0.3)
        return Result("turn-forbidden-peer")


def turn_allocation_mismatch(plan: Plan | None = None) -> Result:
    """A Python TURN client allocates (401 then success), then sends a second Allocate from the
    same 5-tuple: 437 Allocation Mismatch (turn-allocation-mismatch). Then it deallocates."""
    with _planned(plan) as plan:
        with turnserver(plan):
            c = TurnClient(("127.0.0.1", plan.server_port))
            try:
                c.allocate()
                c.allocate()
                c.refresh(0)
            finally:
                c.close()
            time.sleep(0.2)
        return Result("turn-allocation-mismatch")


def turn_expired(plan: Plan | None = None) -> Result:
    """coturn with --max-allocate-lifetime=3: a Python TURN client allocates (LIFETIME 3 granted),
    creates a permission for the echo peer (turnutils_peer) and exchanges Send/Data indications,
    lets the allocation expire (no Refresh for 5 s), then sends a Send indication (dropped) and
    a Refresh that gets 437 Allocation Mismatch (turn-allocation-expired)."""
    with _planned(plan) as plan:
        with turnserver(plan, extra=("--max-allocate-lifetime=3",)), turn_peer(plan):
            c = TurnClient(("127.0.0.1", plan.server_port))
            try:
                c.allocate(lifetime=3)
                c.create_permission("127.0.0.1", plan.peer_port)
                c.send_indication("127.0.0.1", plan.peer_port, b"before expiry")
                time.sleep(5)
                c.send_indication("127.0.0.1", plan.peer_port, b"after expiry")
                c.refresh(600)
            finally:
                c.close()
            time.sleep(0.3)
        return Result("turn-expired")


def turn_data_without_permission(plan: Plan | None = None) -> Result:
    """A Python TURN client allocates and creates a permission for 127.0.0.1 only, sends a Send
    indication to the echo peer on 127.0.0.1 (relayed, echoed back as a Data indication), then
    Send indications to 127.0.0.5 where it has no permission: coturn drops them silently
    (turn-data-without-permission). Then it deallocates."""
    with _planned(plan) as plan:
        with turnserver(plan), turn_peer(plan):
            c = TurnClient(("127.0.0.1", plan.server_port))
            try:
                c.allocate()
                c.create_permission("127.0.0.1", plan.peer_port)
                c.send_indication("127.0.0.1", plan.peer_port, b"hello permitted peer")
                time.sleep(0.3)
                for i in range(2):
                    c.send_indication("127.0.0.5", plan.port(PEER2), f"no permission {i}".encode())
                    time.sleep(0.2)
                c.refresh(0)
            finally:
                c.close()
            time.sleep(0.2)
        return Result("turn-data-without-permission")


def unanswered(plan: Plan | None = None) -> Result:
    """Binding requests nobody answers. First an aioice agent gathers candidates with a STUN
    server that reads and never answers: its Binding request is retransmitted (RTO 500 ms,
    doubling) until aioice gives up gathering after 5 s. Then turnutils_stunclient asks a
    port where nothing listens: Linux answers with ICMP port unreachable (unanswered-request)."""
    import aioice

    with _planned(plan) as plan:
        sink = _Sink(("127.0.0.1", plan.port(SINK)))
        try:
            async def body(plan, result):
                a = aioice.Connection(ice_controlling=True, use_ipv6=False,
                                      stun_server=("127.0.0.1", plan.port(SINK)))
                try:
                    await a.gather_candidates()
                    result.notes.append("candidates: " + ", ".join(
                        c.type for c in a.local_candidates))
                finally:
                    await a.close()

            result = _ice(plan, "unanswered", body)
            _run(["turnutils_stunclient", "-p", str(plan.dead_port), "127.0.0.1"], plan, 2.5)
            time.sleep(0.2)
        finally:
            sink.close()
        return result


def ipv6(plan: Plan | None = None) -> Result:
    """STUN and TURN over IPv6 loopback: turnserver listening and relaying on ::1,
    turnutils_stunclient Binding to [::1], then turnutils_uclient (-x: IPv6 relay) with
    turnutils_peer on [::1]: 401, Allocate with XOR-RELAYED-ADDRESS [::1], permissions,
    channels and ChannelData, deallocation. Then two aioice agents connect with host candidates
    on [::1] (checks, nomination, datagrams)."""
    with _planned(plan) as plan:
        with turnserver(plan, ips=("::1",)), turn_peer(plan, ip="::1"):
            _run(["turnutils_stunclient", "-p", str(plan.server_port), "::1"], plan, 10)
            time.sleep(0.2)
            _uclient(plan, "-c", "-x", server="::1", peer="::1")
            time.sleep(0.3)

        async def body(plan, result):
            async with _agent_pair(ipv6=True) as (a, b):
                result.notes += await _connect_both(a, b, 20)
                await _talk(a, b)
                result.sdp = _sdp([("A", a), ("B", b)])

        return _ice(plan, "ipv6", body, family="::1")


def _datagrams(stop, sockets: Callable[[], list[socket.socket]]):
    """Yield ``(socket, data, source)`` for each datagram on ``sockets()`` (asked again before
    each wait) until ``stop`` is set or DEFAULT_TIMEOUT passes: the loop of the user-space NATs."""
    import select

    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while not stop.is_set() and time.monotonic() < deadline:
        ready, _, _ = select.select(sockets(), [], [], 0.05)
        for sk in ready:
            try:
                data, src = sk.recvfrom(4096)
            except OSError:
                continue
            yield sk, data, src


class SymmetricNat:
    """A user-space NAT with address-and-port-dependent mapping and filtering, on loopback.

    Each ``front`` address (what the client sends to, standing for a server's public address)
    forwards to its ``back`` address (the real server). Every new (client, front) pair gets a
    new outside socket on ``public_ip`` (a new mapping per destination: a symmetric NAT), and
    only answers from that exact back address come in. A capture filter that excludes
    ``public_ip`` shows the client's side of the NAT only, as a capture on a phone would.
    """

    def __init__(self, fronts: dict[tuple[str, int], tuple[str, int]], public_ip: str,
                 public_ports: list[int]) -> None:
        import threading

        self.fronts = {}
        for front, back in fronts.items():
            sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sk.bind(front)
            self.fronts[sk] = (front, back)
        self.public_ip, self.ports = public_ip, iter(public_ports)
        self.mappings: dict[tuple, socket.socket] = {}  # (client, front) -> outside socket
        self.reverse: dict[socket.socket, tuple] = {}  # outside socket -> (client, front sock, back)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        for sk, data, src in _datagrams(self.stop, lambda: list(self.fronts) + list(self.reverse)):
            if sk in self.fronts:
                front, back = self.fronts[sk]
                out = self.mappings.get((src, front))
                if out is None:
                    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    out.bind((self.public_ip, next(self.ports)))
                    self.mappings[(src, front)] = out
                    self.reverse[out] = (src, sk, back)
                out.sendto(data, back)
            else:
                client, front_sock, back = self.reverse[sk]
                if src == back:  # address-and-port-dependent filtering
                    front_sock.sendto(data, client)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sk in list(self.fronts) + list(self.reverse):
            sk.close()


def _binding(sock: socket.socket, server: tuple[str, int], attrs=(), tries: int = 3) -> None:
    txid = os.urandom(12)
    msg = stun_message(BINDING, REQUEST, list(attrs), txid=txid)
    for _ in range(tries):
        sock.sendto(msg, server)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                data = sock.recv(4096)
            except (socket.timeout, ConnectionRefusedError):
                break
            if data[8:20] == txid:
                return


def nat_symmetric(plan: Plan | None = None) -> Result:
    """A client behind a symmetric NAT, seen from the client's side. Two STUN servers (one
    turnserver listening on 127.0.0.3 and 127.0.0.4, plus an auxiliary listener on
    127.0.0.3:port+1) sit behind a user-space NAT (SymmetricNat) whose fronts are 127.0.0.1:port,
    127.0.0.2:port and 127.0.0.1:port+1 and whose public address is 127.0.0.5. One client socket
    (a Python STUN client) sends Binding requests to the three fronts and again to the first:
    XOR-MAPPED-ADDRESS is 127.0.0.5 with a different port per destination address and port,
    and the same port again for the same destination (symmetric-nat: address-and-port-dependent
    mapping). The capture excludes 127.0.0.5, the NAT's outside."""
    with _planned(plan) as plan:
        S = plan.server_port
        extra = ("--no-rfc5780", f"--aux-server=127.0.0.3:{S + 1}")
        with turnserver(plan, ips=("127.0.0.3", "127.0.0.4"), extra=extra):
            nat = SymmetricNat({("127.0.0.1", S): ("127.0.0.3", S),
                                ("127.0.0.2", S): ("127.0.0.4", S),
                                ("127.0.0.1", S + 1): ("127.0.0.3", S + 1)},
                               "127.0.0.5", list(range(plan.port(AGENTS), plan.port(RELAY_MIN))))
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind(("127.0.0.1", plan.port(SINK)))
                sock.settimeout(0.5)
                for dst in (("127.0.0.1", S), ("127.0.0.2", S), ("127.0.0.1", S + 1),
                            ("127.0.0.1", S)):
                    _binding(sock, dst)
                    time.sleep(0.1)
            finally:
                sock.close()
                nat.close()
        return Result("nat-symmetric")


nat_symmetric.capture_filter = lambda plan: f"({plan.bpf()}) and not host 127.0.0.5"


class ConeNat:
    """A user-space NAT with endpoint-independent mapping (RFC 4787 §4.1), on loopback, for the
    RFC 5780 §4.5 (hairpinning) and §4.6 (mapping lifetime) tests.

    Like :class:`SymmetricNat`, each ``front`` (what the client sends to) forwards to its
    ``back`` (the real server), but every inside endpoint gets one outside socket on
    ``public_ip`` for all destinations. Packets from any back come in through it. With
    ``hairpin``, a packet an inside endpoint sends to a mapped address is delivered to the
    endpoint behind it from the sender's own mapping (RFC 4787 §6, REQ-9); without, it is
    dropped. A mapping with no outbound packet for ``idle_s`` is removed (RFC 4787 §4.3), so
    answers sent to it afterwards are lost.
    """

    def __init__(self, fronts: dict[tuple[str, int], tuple[str, int]], public_ip: str,
                 public_ports: list[int], *, hairpin: bool, idle_s: float = DEFAULT_TIMEOUT) -> None:
        import threading

        self.fronts: dict[socket.socket, tuple[str, int]] = {}
        self.front_of: dict[tuple[str, int], socket.socket] = {}
        for front, back in fronts.items():
            sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sk.bind(front)
            self.fronts[sk] = back
            self.front_of[back] = sk
        self.public_ip, self.ports = public_ip, iter(public_ports)
        self.hairpin, self.idle_s = hairpin, idle_s
        self.mappings: dict[tuple, list] = {}  # inside endpoint -> [outside socket, last out]
        self.owner: dict[socket.socket, tuple] = {}  # outside socket -> inside endpoint
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _out(self, inside: tuple) -> socket.socket:
        mapping = self.mappings.get(inside)
        if mapping is None:
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            out.bind((self.public_ip, next(self.ports)))
            mapping = self.mappings[inside] = [out, 0.0]
            self.owner[out] = inside
        mapping[1] = time.monotonic()
        return mapping[0]

    def _expire(self) -> None:
        now = time.monotonic()
        for inside, (out, last) in list(self.mappings.items()):
            if now - last > self.idle_s:
                del self.mappings[inside], self.owner[out]
                out.close()

    def _sockets(self) -> list[socket.socket]:
        self._expire()
        return list(self.fronts) + list(self.owner)

    def _loop(self) -> None:
        for sk, data, src in _datagrams(self.stop, self._sockets):
            if sk in self.fronts:
                self._out(src).sendto(data, self.fronts[sk])
            elif src in self.front_of:
                self.front_of[src].sendto(data, self.owner[sk])
            elif self.hairpin:
                self._out(src).sendto(data, self.owner[sk])

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sk in list(self.fronts) + list(self.owner):
            sk.close()


def _behind_cone_nat(plan: Plan, ports: range, args: list[str], **nat) -> None:
    """Run ``turnutils_natdiscovery ARGS 127.0.0.1`` behind a :class:`ConeNat` whose front
    127.0.0.1:port leads to the turnserver on 127.0.0.3:port; its mappings use ``ports``."""
    S = plan.server_port
    cone = ConeNat({("127.0.0.1", S): ("127.0.0.3", S)}, "127.0.0.5",
                   [plan.port(p) for p in ports], **nat)
    try:
        _run(["turnutils_natdiscovery", *args, "-p", str(S), "127.0.0.1"], plan, 20)
        time.sleep(0.2)
    finally:
        cone.close()


def nat_hairpin(plan: Plan | None = None) -> Result:
    """RFC 5780 §4.5 hairpinning tests by turnutils_natdiscovery -H (one socket learns its mapped
    address from coturn, a second socket sends a Binding request to it). First behind a cone NAT
    (ConeNat, public address 127.0.0.5) that does not hairpin: the request to the first
    socket's mapped address is dropped, natdiscovery waits 3 s twice. Then behind one that
    hairpins: the request arrives at the first socket from the second socket's mapped address.
    Last without a NAT (natdiscovery straight to coturn, the first socket on a fixed port): the
    mapped address is the local one and the request goes straight to it, which tests no NAT.
    coturn listens on 127.0.0.3 and 127.0.0.4 (RFC 5780); the capture leaves out the NAT's
    outside leg (127.0.0.5 to the server)."""
    with _planned(plan) as plan:
        with turnserver(plan, ips=("127.0.0.3", "127.0.0.4")):
            _behind_cone_nat(plan, range(AGENTS, AGENTS + 4), ["-H"], hairpin=False)
            _behind_cone_nat(plan, range(AGENTS + 4, RELAY_MIN), ["-H"], hairpin=True)
            _run(["turnutils_natdiscovery", "-H", "-L", "127.0.0.1", "-l", str(plan.port(SINK)),
                  "-p", str(plan.server_port), "127.0.0.3"], plan, 20)
            time.sleep(0.3)
        return Result("nat-hairpin")


def nat_lifetime(plan: Plan | None = None) -> Result:
    """RFC 5780 §4.6 mapping lifetime tests by turnutils_natdiscovery -t -T N: one socket sends a
    Binding request to coturn and learns its mapping, then after N s of silence a second socket
    sends a Binding request with RESPONSE-PORT set to the first mapping's port; coturn answers
    to that port. Behind a cone NAT (ConeNat, public address 127.0.0.5) that drops a mapping
    after 2 s without outbound traffic: with -T 3 the answer meets no mapping and is lost
    (natdiscovery waits 3 s), with -T 1 it reaches the first socket. Last -T 1 without a NAT
    (straight to coturn on 127.0.0.3): the answer reaches the first socket. coturn listens on
    127.0.0.3 and 127.0.0.4 (RFC 5780); the capture leaves out the NAT's outside leg."""
    with _planned(plan) as plan:
        with turnserver(plan, ips=("127.0.0.3", "127.0.0.4")):
            _behind_cone_nat(plan, range(AGENTS, AGENTS + 4), ["-t", "-T", "3"], hairpin=False,
                             idle_s=2.0)
            _behind_cone_nat(plan, range(AGENTS + 4, RELAY_MIN), ["-t", "-T", "1"],
                             hairpin=False, idle_s=2.0)
            _run(["turnutils_natdiscovery", "-t", "-T", "1", "-p", str(plan.server_port),
                  "127.0.0.3"], plan, 20)
            time.sleep(0.3)
        return Result("nat-lifetime")


def _outside_leg_excluded(plan: Plan) -> str:
    """The capture filter of the ConeNat scenarios: the client's side only, as a capture on
    the client's machine would see it (no packets between the NAT's outside and the server)."""
    return f"({plan.bpf()}) and not (host 127.0.0.5 and (host 127.0.0.3 or host 127.0.0.4))"


nat_hairpin.capture_filter = _outside_leg_excluded
nat_lifetime.capture_filter = _outside_leg_excluded


def bad_fingerprint(plan: Plan | None = None) -> Result:
    """A Python STUN client sends coturn a good Binding request (answered), then one whose
    FINGERPRINT is wrong (CRC-32 off by one) twice: coturn (run with --fingerprint) does not
    answer it; then a good one again (answered) (bad-fingerprint, unanswered-request)."""
    with _planned(plan) as plan:
        with turnserver(plan):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind(("127.0.0.1", 0))
                sock.settimeout(0.5)
                server = ("127.0.0.1", plan.server_port)
                _binding(sock, server)
                bad = bytearray(stun_message(BINDING, REQUEST, [(0x8022, b"stunscope")]))
                bad[-1] ^= 0x01
                for _ in range(2):
                    sock.sendto(bytes(bad), server)
                    with contextlib.suppress(OSError):
                        sock.recv(4096)
                _binding(sock, server)
            finally:
                sock.close()
            time.sleep(0.2)
        return Result("bad-fingerprint")


# --------------------------------------------------------------------------- aioice scenarios


def _patch_aioice(plan: Plan, loop: asyncio.AbstractEventLoop, family: str = "127.0.0.1"):
    """Keep aioice on loopback: host candidates only on ``family`` (127.0.0.1 or ::1), bound to
    the plan's agent ports (so the capture filter sees them). Returns an undo function."""
    import aioice.ice

    ports = iter(range(plan.port(AGENTS), plan.port(RELAY_MIN)))
    orig_hosts = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [family]
    orig_cde = loop.create_datagram_endpoint

    async def cde(factory, local_addr=None, **kw):
        if local_addr is not None and local_addr[1] == 0:
            local_addr = (local_addr[0], next(ports))
        return await orig_cde(factory, local_addr=local_addr, **kw)

    loop.create_datagram_endpoint = cde  # type: ignore[method-assign]

    def undo() -> None:
        aioice.ice.get_host_addresses = orig_hosts
        with contextlib.suppress(AttributeError):
            del loop.create_datagram_endpoint

    return undo


def _sdp(agents: list[tuple[str, object]]) -> str:
    """A minimal SDP with one m= section per agent: ufrag, pwd, candidates, role."""
    lines = ["v=0", "o=- 0 0 IN IP4 127.0.0.1", "s=stunscope capture", "t=0 0"]
    for label, conn in agents:
        lines += [f"m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0",
                  f"a=mid:{label}", f"a=ice-ufrag:{conn.local_username}",
                  f"a=ice-pwd:{conn.local_password}",
                  f"a=x-stunscope-role:{'controlling' if conn.ice_controlling else 'controlled'}"]
        lines += [f"a=candidate:{c.to_sdp()}" for c in conn.local_candidates]
        lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"


async def _exchange(a, b, *, a_pwd: str | None = None, b_pwd: str | None = None) -> None:
    """Signal in-process: ufrag/pwd and every candidate, as an offer/answer would."""
    a.remote_username, a.remote_password = b.local_username, a_pwd or b.local_password
    b.remote_username, b.remote_password = a.local_username, b_pwd or a.local_password
    for src, dst in ((a, b), (b, a)):
        for c in src.local_candidates:
            await dst.add_remote_candidate(c)
        await dst.add_remote_candidate(None)


@contextlib.asynccontextmanager
async def _agent_pair(*, ipv6: bool = False, b_controlling: bool = False,
                      a_opts: dict | None = None, a_pwd: str | None = None,
                      b_pwd: str | None = None, linger: float = 0.0):
    """Two aioice agents, A controlling and B controlled (unless ``b_controlling``), with host
    candidates on 127.0.0.1 (or only ::1 with ``ipv6``), created, gathered and signalled to each
    other (``_exchange``, with ``a_pwd``/``b_pwd`` in place of the real remote passwords); yields
    ``(a, b)``, then closes A and B and waits ``linger`` seconds. ``a_opts`` adds
    ``aioice.Connection`` arguments for A (a TURN server, a transport policy)."""
    import aioice

    where = {"use_ipv4": False, "use_ipv6": True} if ipv6 else {"use_ipv6": False}
    a = aioice.Connection(ice_controlling=True, **where, **(a_opts or {}))
    b = aioice.Connection(ice_controlling=b_controlling, **where)
    try:
        await a.gather_candidates()
        await b.gather_candidates()
        await _exchange(a, b, a_pwd=a_pwd, b_pwd=b_pwd)
        yield a, b
    finally:
        await a.close()
        await b.close()
        if linger:
            await asyncio.sleep(linger)


async def _connect_both(a, b, timeout: float) -> list[str]:
    results = await asyncio.wait_for(
        asyncio.gather(a.connect(), b.connect(), return_exceptions=True), timeout)
    return [f"agent {n}: {'connected' if r is None else type(r).__name__ + ': ' + str(r)}"
            for n, r in zip("AB", results)]


async def _talk(a, b, count: int = 3) -> None:
    for i in range(count):
        await a.send(f"ping {i}".encode())
        await asyncio.wait_for(b.recv(), 2)
        await b.send(f"pong {i}".encode())
        await asyncio.wait_for(a.recv(), 2)


def _ice(plan: Plan | None, name: str, body, *, family: str = "127.0.0.1",
         consent_interval: float | None = None, consent_failures: int | None = None,
         retry_max: int | None = None, timeout: float = DEFAULT_TIMEOUT) -> Result:
    """Run ``body(plan, result)`` (a coroutine function) in a fresh loop with aioice patched,
    for at most ``timeout`` seconds."""
    import aioice.ice
    import aioice.stun

    with _planned(plan) as plan:
        result = Result(name)

        async def main():
            undo = _patch_aioice(plan, asyncio.get_running_loop(), family)
            saved = (aioice.ice.CONSENT_INTERVAL, aioice.ice.CONSENT_FAILURES,
                     aioice.stun.RETRY_MAX)
            if consent_interval is not None:
                aioice.ice.CONSENT_INTERVAL = consent_interval
            if consent_failures is not None:
                aioice.ice.CONSENT_FAILURES = consent_failures
            if retry_max is not None:
                aioice.stun.RETRY_MAX = retry_max
            try:
                await asyncio.wait_for(body(plan, result), timeout)
            finally:
                (aioice.ice.CONSENT_INTERVAL, aioice.ice.CONSENT_FAILURES,
                 aioice.stun.RETRY_MAX) = saved
                undo()

        asyncio.run(main())
        return result


def ice_host(plan: Plan | None = None) -> Result:
    """Two aioice agents on 127.0.0.1 (A controlling, B controlled) with host candidates only:
    connectivity checks both ways, nomination (USE-CANDIDATE), a few datagrams each way, and
    consent-freshness checks (RFC 7675) on the selected pair (aioice's interval shortened to
    1 s, so each agent sends exactly one in the 1.4 s the capture lasts after connecting)."""
    async def body(plan, result):
        async with _agent_pair() as (a, b):
            result.notes += await _connect_both(a, b, 20)
            await _talk(a, b)
            await asyncio.sleep(1.4)  # exactly one consent check per agent (every 0.8-1.2 s)
            result.sdp = _sdp([("A", a), ("B", b)])

    return _ice(plan, "ice-host", body, consent_interval=1)


def ice_host_2(plan: Plan | None = None) -> Result:
    """A second recording of the ice-host scenario (same story, other ports, ufrags and
    transaction ids): ``stunscope diff`` should find no difference with ice-host."""
    r = ice_host(plan)
    r.name = "ice-host-2"
    return r


def ice_turn_relay(plan: Plan | None = None) -> Result:
    """Two aioice agents: A gathers only a relayed candidate from coturn (transport_policy
    RELAY, TURN over UDP, alice/wonderland: 401 challenge, Allocate, ChannelBind, Refresh on
    close), B has a host candidate. Checks from A reach B through the relay inside ChannelData;
    B's checks arrive at A's relayed address; the selected pair is relayed. Datagrams follow."""
    from aioice.ice import TransportPolicy

    async def body(plan, result):
        relay_only = {"turn_server": ("127.0.0.1", plan.server_port), "turn_username": USER,
                      "turn_password": PASSWORD, "transport_policy": TransportPolicy.RELAY}
        async with _agent_pair(a_opts=relay_only, linger=0.3) as (a, b):
            result.notes += await _connect_both(a, b, 20)
            await _talk(a, b)
            await asyncio.sleep(0.5)
            result.sdp = _sdp([("A", a), ("B", b)])

    with _planned(plan) as plan, turnserver(plan):
        return _ice(plan, "ice-turn-relay", body)


def ice_wrong_password(plan: Plan | None = None) -> Result:
    """Two aioice agents on 127.0.0.1 whose remote ICE passwords are both wrong (a mangled
    offer/answer): every check is answered 401 Unauthenticated and ICE fails on both sides."""
    async def body(plan, result):
        async with _agent_pair(a_pwd="wrong-password-of-b-0000",
                               b_pwd="wrong-password-of-a-0000") as (a, b):
            result.notes += await _connect_both(a, b, 40)
            result.sdp = _sdp([("A", a), ("B", b)])

    return _ice(plan, "ice-wrong-password", body, retry_max=4)


def ice_unreachable(plan: Plan | None = None) -> Result:
    """One aioice agent (controlling) whose only remote candidate is a loopback port nobody
    listens on: its checks go unanswered (Linux answers each with ICMP port unreachable),
    are retransmitted on aioice's schedule (RTO 500 ms, retransmissions capped at 4 here to keep
    the capture short), and ICE fails."""
    import aioice
    from aioice.candidate import Candidate

    async def body(plan, result):
        a = aioice.Connection(ice_controlling=True, use_ipv6=False)
        try:
            await a.gather_candidates()
            a.remote_username, a.remote_password = "deadbeef", "0123456789abcdef01234567"
            dead = Candidate(foundation="1", component=1, transport="udp", priority=2130706431,
                             host="127.0.0.1", port=plan.dead_port, type="host")
            await a.add_remote_candidate(dead)
            await a.add_remote_candidate(None)
            try:
                await asyncio.wait_for(a.connect(), 40)
                result.notes.append("agent A: connected (unexpected)")
            except Exception as exc:  # ConnectionError: ICE negotiation failed
                result.notes.append(f"agent A: {type(exc).__name__}: {exc}")
            sdp = _sdp([("A", a)])
            sdp += ("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
                    "a=mid:B\r\na=ice-ufrag:deadbeef\r\na=ice-pwd:0123456789abcdef01234567\r\n"
                    f"a=candidate:{dead.to_sdp()}\r\na=end-of-candidates\r\n")
            result.sdp = sdp
        finally:
            await a.close()

    return _ice(plan, "ice-unreachable", body, retry_max=4)


def ice_role_conflict(plan: Plan | None = None) -> Result:
    """Two aioice agents that both start controlling (both saw an offer): checks carry
    ICE-CONTROLLING on both sides, the agent with the smaller tie-breaker gets 487 Role Conflict
    and switches to controlled, and ICE then connects."""
    async def body(plan, result):
        async with _agent_pair(b_controlling=True) as (a, b):
            result.notes += await _connect_both(a, b, 30)
            result.notes.append(f"roles after: A controlling={a.ice_controlling}, "
                                f"B controlling={b.ice_controlling}")
            with contextlib.suppress(Exception):
                await _talk(a, b, 1)
            result.sdp = _sdp([("A", a), ("B", b)])

    return _ice(plan, "ice-role-conflict", body)


def ice_consent_lost(plan: Plan | None = None) -> Result:
    """Two aioice agents on 127.0.0.1 (A controlling, B controlled, host candidates) connect,
    exchange a few datagrams, and each sends one consent check (RFC 7675; aioice's own interval,
    5 s x 0.8-1.2), answered. Then agent B goes away without a word (it closes its socket, as
    when its process dies): A's next consent checks (not retransmitted) draw only ICMP port
    unreachable from the kernel. aioice gives up after a count of failed checks, not after 30 s;
    allowing 7 of them here (aioice's 6 can end at 26.5 s) puts its last check more than 30 s
    (31-45 s) after the last answer, so consent has expired by RFC 7675's clock; A closes."""
    async def body(plan, result):
        loop = asyncio.get_running_loop()
        async with _agent_pair() as (a, b):
            result.notes += await _connect_both(a, b, 20)
            await _talk(a, b)
            await asyncio.sleep(6.5)  # one answered consent check per agent (every 4-6 s)
            result.sdp = _sdp([("A", a), ("B", b)])
            await b.close()
            gone = loop.time()
            try:
                await asyncio.wait_for(a.recv(), 55)
                result.notes.append("agent A: received data from a closed peer (unexpected)")
            except ConnectionError as exc:  # aioice closed A: "Consent to send expired"
                result.notes.append(f"agent A: {exc} {loop.time() - gone:.1f} s after B left")
            except asyncio.TimeoutError:
                result.notes.append("agent A: consent not lost within 55 s (unexpected)")

    return _ice(plan, "ice-consent-lost", body, consent_interval=5, consent_failures=7,
                timeout=90)


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _planned(plan: Plan | None):
    own = plan is None
    plan = plan or Plan.allocate()
    try:
        yield plan
    finally:
        if own:
            plan.cleanup()


SCENARIOS: dict[str, Callable[..., Result]] = {
    "binding": binding,
    "turn-udp": turn_udp,
    "turn-tcp": turn_tcp,
    "turn-wrong-password": turn_wrong_password,
    "turn-stale-nonce": turn_stale_nonce,
    "turn-forbidden-peer": turn_forbidden_peer,
    "turn-allocation-mismatch": turn_allocation_mismatch,
    "turn-expired": turn_expired,
    "turn-data-without-permission": turn_data_without_permission,
    "unanswered": unanswered,
    "ipv6": ipv6,
    "nat-symmetric": nat_symmetric,
    "nat-hairpin": nat_hairpin,
    "nat-lifetime": nat_lifetime,
    "bad-fingerprint": bad_fingerprint,
    "ice-host": ice_host,
    "ice-host-2": ice_host_2,
    "ice-turn-relay": ice_turn_relay,
    "ice-wrong-password": ice_wrong_password,
    "ice-unreachable": ice_unreachable,
    "ice-role-conflict": ice_role_conflict,
    "ice-consent-lost": ice_consent_lost,
}


def capture_filter(name: str, plan: Plan) -> str:
    """The capture filter for scenario ``name`` run with ``plan`` (usually ``plan.bpf()``)."""
    custom = getattr(SCENARIOS[name], "capture_filter", None)
    return custom(plan) if custom else plan.bpf()


def run(name: str, plan: Plan | None = None) -> Result:
    """Run one scenario by name."""
    return SCENARIOS[name](plan)
