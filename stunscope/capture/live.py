"""Live capture with Scapy: frames from a Linux packet socket, through a bounded queue, as Records.

The only module that imports scapy, and only when a capture starts or interfaces are listed, so
importing this module (for ``DEFAULT_FILTER``) costs nothing.

Pipeline: a ``PF_PACKET`` socket with the BPF filter attached in the kernel (compiled by scapy)
-> scapy's ``AsyncSniffer(store=False)`` thread -> ``prn`` numbers each frame, writes it to the
pcapng file (``-w``) and appends it to a bounded queue -> ``LiveCapture.records()`` yields
``Record``s for ``capture.stream.iter_events``.

Lossless where it matters: frames are numbered and written in the capture thread, so the file
holds every frame the kernel delivered even when the analysis falls behind; a frame that finds the
queue full is counted in ``dropped_queue`` (its number is skipped, so live frame numbers equal
the file's). Frames the kernel could not deliver (socket buffer full) are counted in
``dropped_kernel`` from ``PACKET_STATISTICS``. Nothing is dropped silently.

Speed: the socket hands the sniffer a batch of frames per wake-up (everything readable, up to
``_BATCH``) instead of one dissected scapy ``Packet`` per frame; frames are never dissected here
(``capture.layers`` does that). See ``bench/live_capture.py`` for the measured rate.

``-i any`` (every interface at once, as tcpdump and dumpcap on Linux): see ``_FrameSocket``; the
frames are recorded as Linux cooked capture v2 (``LINKTYPE_LINUX_SLL2``), which keeps the
interface index and the direction of each packet.
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from stunscope.capture.pcapng_writer import PcapngWriter, RingWriter
from stunscope.capture.records import Record
from stunscope.errors import InputError, UsageError

__all__ = ["ANY", "DEFAULT_FILTER", "Interface", "LiveCapture", "LiveStats", "list_interfaces"]

ANY = "any"
"""The pseudo-interface name that captures on every interface (as libpcap's on Linux)."""

# Well-known UDP services whose first payload byte can fall in the STUN (0-3) or ChannelData
# (64-127) ranges by chance: DNS, DHCP, NTP, NetBIOS, SSDP, mDNS, LLMNR.
_UDP_NOISE_PORTS = (53, 67, 68, 123, 137, 138, 1900, 5353, 5355)
# TCP ports whose traffic is bulk and never decodable STUN: SSH, and TLS (HTTPS, TURNS).
_TCP_NOISE_PORTS = (22, 443, 5349)

DEFAULT_FILTER = (
    "(udp and (udp[8] < 4 or (udp[8] > 63 and udp[8] < 128))"
    + "".join(f" and not port {p}" for p in _UDP_NOISE_PORTS)
    + ") or (tcp"
    + "".join(f" and not port {p}" for p in _TCP_NOISE_PORTS)
    + ") or icmp or icmp6 or (ip and ip[6:2] & 0x3fff != 0) or (ip6 and ip6[6] == 44)"
)
"""The capture filter used unless ``-f`` is given (RFC 7983 first-byte ranges, checked in-kernel).

Keeps: UDP datagrams whose first payload byte is 0-3 (STUN, classic STUN, on any port) or 64-127
(TURN ChannelData with the channel numbers 0x4000-0x7FFF of RFC 5766, which coturn's clients still
use, though RFC 8656 narrowed them to 0x4000-0x4FFF; this lets QUIC short headers through too);
all TCP (STUN over TCP cannot be recognised per segment); ICMP/ICMPv6 (unreachables quoting STUN
flows); IP fragments (later fragments carry no UDP header to test). Keeps out: UDP media and
other payloads (DTLS 20-63, RTP/RTCP 128-191, QUIC long headers, raw data relayed between a TURN
relay and its peers), the UDP services in ``_UDP_NOISE_PORTS`` and TCP on ports 22, 443 and 5349
(SSH and TLS, which cannot be decoded). Pass ``-f ''`` to capture everything.
"""

SNAPLEN = 262144
"""Largest frame kept whole (as dumpcap); the loopback MTU is 65536."""

_SOCKET_BUFFER = 64 * 1024 * 1024
"""Kernel receive buffer (root: SO_RCVBUFFORCE; else capped at net.core.rmem_max): absorbs about
a second of 50,000 frames/s while the capture thread waits for the CPU or the GIL. Memory is
only taken while frames wait in it."""

_BATCH = 512
"""Most frames read from the socket per wake-up of the sniffer thread."""

_DRAIN_FRAMES = _SOCKET_BUFFER // 256
"""At a stop, the most frames read from what the socket buffer still holds: more than it can
hold (a frame takes at least ~700 bytes of buffer), so it empties even with traffic still coming."""

_DRAIN_S = 10.0
"""At a stop, the longest the socket buffer is drained (a backstop: reading it takes well under
a second, unless the decoding thread keeps the GIL)."""

# Linux constants (linux/if_packet.h, asm-generic/socket.h, linux/if_arp.h, linux/filter.h).
_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_SO_TIMESTAMPNS = 35
_SO_RCVBUFFORCE = 33
_ARPHRD_LOOPBACK = 772
_LINKTYPES = {1: 1, _ARPHRD_LOOPBACK: 1, 0xFFFE: 101}
"""ARPHRD_ hardware type -> LINKTYPE_: Ethernet and loopback frames carry an Ethernet header,
ARPHRD_NONE (tun devices) gives raw IP."""

_SO_ATTACH_FILTER = 26
_SKF_AD_OFF = 2**32 - 0x1000  # as an unsigned BPF ``k``
_SKF_AD_PROTOCOL = 0
_SKF_AD_PKTTYPE = 4
_SKF_AD_IFINDEX = 8

_LINKTYPE_LINUX_SLL2 = 276
_SLL2 = struct.Struct("!HxxIHBB8s")
"""The LINKTYPE_LINUX_SLL2 header (tcpdump.org linktypes/LINKTYPE_LINUX_SLL2): protocol,
reserved, interface index, ARPHRD_ type, packet type, address length, address (8 bytes)."""
_SLL2_FIELDS = {0: _SKF_AD_PROTOCOL, 4: _SKF_AD_IFINDEX, 10: _SKF_AD_PKTTYPE}
"""SLL2 header offset -> the kernel's ancillary BPF load of the same field (as libpcap maps
them in ``fix_offset``): a cooked socket's filter sees the packet from its network header on."""
_HEADER_CACHE = 4096
"""Distinct (interface, protocol, direction, source address) SLL2 headers kept ready."""

_TIMESPEC = struct.Struct("@qq")
_TPACKET_STATS = struct.Struct("@II")
_ANCILLARY_SIZE = socket.CMSG_SPACE(_TIMESPEC.size)


class Interface(NamedTuple):
    """A capturable interface: ``name``, its IP ``addresses``, whether it is ``up``; a
    pseudo-interface (``any``) has a ``description`` instead of addresses."""

    name: str
    addresses: tuple[str, ...]
    up: bool
    description: str = ""

    def __str__(self) -> str:
        state = "up" if self.up else "down"
        detail = self.description or " ".join(self.addresses)
        return f"{self.name:<12} {state:<4} {detail}".rstrip()


class LiveStats(NamedTuple):
    """Counters of a capture: frames ``captured`` (numbered and written), frames lost because the
    analysis queue was full (``dropped_queue``) or the kernel buffer was (``dropped_kernel``)."""

    captured: int
    dropped_queue: int
    dropped_kernel: int

    @property
    def dropped(self) -> int:
        """All frames lost to the analysis."""
        return self.dropped_queue + self.dropped_kernel

    def __str__(self) -> str:
        return (
            f"{self.captured} packets captured, {self.dropped} dropped "
            f"({self.dropped_queue} queue full, {self.dropped_kernel} by the kernel)"
        )


def list_interfaces() -> list[Interface]:
    """The interfaces scapy can capture on, in the kernel's index order, then ``any`` (as
    ``tcpdump -D`` lists it)."""
    import scapy.arch  # noqa: F401 (loads the platform's interface provider into conf.ifaces)
    from scapy.config import conf

    found = []
    for iface in sorted(conf.ifaces.values(), key=lambda i: i.index):
        addresses = tuple(a for family in (4, 6) for a in iface.ips.get(family, ()))
        flags = str(getattr(iface, "flags", "")).split("+")
        found.append(Interface(iface.name, addresses, "UP" in flags))
    found.append(Interface(ANY, (), True, "(pseudo-interface: all interfaces, Linux cooked)"))
    return found


def _permission_message(iface: str) -> str:
    return (
        f"capturing on {iface} needs root or CAP_NET_RAW "
        "(try: sudo setcap cap_net_raw,cap_net_admin=eip $(readlink -f $(which python3)))"
    )


class _Batch(list):  # type: ignore[type-arg]
    """The frames one wake-up read: what the sniffer loop passes to ``prn`` as one "packet"."""

    __slots__ = ("sniffed_on",)


_Program = list[tuple[int, int, int, int]]
"""Classic BPF instructions: (code, jt, jf, k)."""


def _compile(linktype: int, bpf: str | None, guard: str | None) -> _Program | None:
    """The user's filter ``bpf`` and a ``guard`` of our own (tcpdump syntax, both optional)
    compiled by libpcap for ``linktype``, returning ``SNAPLEN`` bytes of an accepted frame
    (libpcap, through scapy, would cut them at 65535); None without either."""
    from scapy.arch.common import compile_filter, free_filter
    from scapy.error import Scapy_Exception

    expression = " and ".join(c for c in (guard, f"({bpf})" if bpf else None) if c)
    if not expression:
        return None
    try:
        compiled = compile_filter(expression, linktype=linktype)
    except Scapy_Exception as exc:
        reason = str(exc).rpartition(" (")[2].rstrip(")")  # libpcap's words
        raise UsageError(
            f"bad capture filter {bpf!r}: {reason} (tcpdump syntax, see man pcap-filter)"
        ) from None
    program = []
    for i in range(compiled.bf_len):
        insn = compiled.bf_insns[i]
        k = insn.k & 0xFFFFFFFF
        if insn.code == 0x06 and k:  # BPF_RET|BPF_K, accept: keep the whole frame
            k = SNAPLEN
        program.append((insn.code, insn.jt, insn.jf, k))
    free_filter(compiled)
    return program


def _cooked(program: _Program, bpf: str) -> _Program:
    """An SLL2 ``program`` rewritten for a cooked (``SOCK_DGRAM``) socket, whose filter sees the
    packet from the network header on: packet loads move back by the 20-byte header, loads of
    the header's protocol, ifindex and packet type become the kernel's ancillary loads. As
    libpcap's ``fix_offset``; a load of another header field cannot run in the kernel, nor
    a test of the frame length (``len``, ``greater``, ``less``: the kernel's lacks the header)."""
    fixed = []
    for code, jt, jf, k in program:
        mode = code & 0xE0
        if code & 0x07 in (0x00, 0x01) and mode in (0x20, 0x40, 0x80, 0xA0):  # BPF_LD, BPF_LDX
            if mode == 0x80:  # BPF_LEN
                raise UsageError(
                    f"capture filter {bpf!r} tests the frame length, which -i {ANY} cannot "
                    "filter on (the kernel counts it without the SLL2 header)"
                )
            if k >= _SLL2.size:  # BPF_ABS, BPF_IND, BPF_MSH: a load from the packet
                k -= _SLL2.size
            elif mode == 0x20 and k in _SLL2_FIELDS:
                k = _SKF_AD_OFF + _SLL2_FIELDS[k]
            else:
                raise UsageError(
                    f"capture filter {bpf!r} reads link-layer header fields that -i {ANY} "
                    "does not have (only its protocol, ifindex, inbound/outbound)"
                )
        fixed.append((code, jt, jf, k))
    return fixed


def _attach(sock: socket.socket, program: _Program) -> None:
    """Attach ``program`` to ``sock`` (``SO_ATTACH_FILTER``): the kernel runs it on every
    packet and queues only those it accepts, cut to the length it returns."""
    import ctypes

    from scapy.libs.structures import bpf_insn, sock_fprog

    insns = (bpf_insn * len(program))(*(bpf_insn(*insn) for insn in program))  # k wraps to int
    fprog = sock_fprog(len(program), ctypes.cast(insns, ctypes.POINTER(bpf_insn)))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, bytes(fprog))


def _loopback_index() -> int | None:
    """The index of ``lo`` (libpcap names it so too), or None without one."""
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        return None


class _FrameSocket:
    """A ``PF_PACKET`` socket that the scapy sniffer loop can select on and ``recv`` from.

    ``recv`` returns a ``_Batch`` of ``(ts_ns, data, orig_len)`` without dissecting anything. On a
    loopback interface each frame is seen twice (leaving and arriving); as libpcap does, the
    outgoing copy is skipped, here in the kernel (BPF ``inbound``).

    ``-i any``: a ``SOCK_DGRAM`` packet socket bound to no interface gets the packets of all of
    them, each without its link-layer header (interfaces differ: Ethernet, loopback, tun, ...)
    and with a ``sockaddr_ll`` saying where it came from. This is what libpcap does; its rx
    ring (``PACKET_RX_RING``) would save a system call per packet but needs a memory map walked
    in Python, so packets are read like on one interface, with ``recvmsg`` (which returns the
    ``sockaddr_ll`` as ``(ifname, protocol, pkttype, hatype, address)``; CPython looks the name
    up from the index, so the index is looked up back from the name, once per name). Each frame
    gets an SLL2 header built from that address (cached: a host sees few distinct ones), as
    libpcap's for ``any``. The filter is compiled for SLL2 and rewritten for the cooked socket
    (``_cooked``); the outgoing copy of a loopback packet is skipped in the kernel by the filter
    ``not (outbound and ifindex LO)``, the test libpcap makes in user space.
    """

    nonblocking_socket = False

    def __init__(self, iface: str, bpf: str | None) -> None:
        cooked = iface == ANY
        kind = socket.SOCK_DGRAM if cooked else socket.SOCK_RAW
        try:
            self._sock = socket.socket(socket.AF_PACKET, kind, socket.htons(_ETH_P_ALL))
        except PermissionError:
            raise InputError(_permission_message(iface)) from None
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)  # nothing before filter
            self.linktype, program = self._any_filter(bpf) if cooked else self._bind(iface, bpf)
            if program:
                _attach(self._sock, program)
            self._drain()
            self._set_buffer()
            self._sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except BaseException:
            self._sock.close()
            raise
        self._cooked = cooked
        self._headers: dict[tuple[str, int, int, int, bytes], bytes] = {}
        """``-i any``: SLL2 headers by ``sockaddr_ll``."""
        self._ifindexes: dict[str, int] = {}
        header = _SLL2.size if cooked else 0
        self._buf = bytearray(SNAPLEN - header)
        self._view = memoryview(self._buf)
        self.kernel_drops = 0
        self.error: OSError | None = None
        """The error that ended the capture (the interface went down or away), if any."""
        self._stats_lock = threading.Lock()

    def _bind(self, iface: str, bpf: str | None) -> tuple[int, _Program | None]:
        """Bind to ``iface``; return the link type of its frames and the filter to attach."""
        self._sock.bind((iface, _ETH_P_ALL))
        hatype = self._sock.getsockname()[3]
        if hatype not in _LINKTYPES:
            raise InputError(
                f"cannot capture on {iface}: hardware type {hatype} is not supported "
                "(Ethernet, loopback and tun interfaces are)"
            )
        linktype = _LINKTYPES[hatype]
        # On loopback each frame is seen leaving and arriving: keep one.
        return linktype, _compile(linktype, bpf, "inbound" if hatype == _ARPHRD_LOOPBACK else None)

    @staticmethod
    def _any_filter(bpf: str | None) -> tuple[int, _Program | None]:
        """SLL2, and the filter to attach to the unbound cooked socket."""
        loopback = _loopback_index()
        guard = None if loopback is None else f"not (outbound and ifindex {loopback})"
        program = _compile(_LINKTYPE_LINUX_SLL2, bpf, guard)
        return _LINKTYPE_LINUX_SLL2, program and _cooked(program, bpf or "")

    def _header(self, address: tuple[str, int, int, int, bytes]) -> bytes:
        """The SLL2 header of a packet received from ``address`` (remembered)."""
        ifname, protocol, pkttype, hatype, hwaddr = address
        ifindex = self._ifindexes.get(ifname)
        if ifindex is None:
            try:
                ifindex = socket.if_nametoindex(ifname)
            except OSError:  # gone already (or a name CPython could not look up)
                ifindex = 0
            self._ifindexes[ifname] = ifindex
        header = _SLL2.pack(protocol, ifindex, hatype, pkttype, len(hwaddr), hwaddr)
        if len(self._headers) >= _HEADER_CACHE:
            self._headers.clear()
        self._headers[address] = header
        return header

    def _drain(self) -> None:
        """Discard what arrived between socket creation and the filter taking effect."""
        while select.select([self._sock], [], [], 0)[0]:
            self._sock.recv(SNAPLEN)

    def _set_buffer(self) -> None:
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _SOCKET_BUFFER)
        except PermissionError:  # without CAP_NET_ADMIN: up to net.core.rmem_max
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)

    def fileno(self) -> int:
        """The socket's descriptor (for ``select``)."""
        return self._sock.fileno()

    @staticmethod
    def select(sockets: list[Any], remain: float | None = None) -> list[Any]:
        """What scapy's sniffer loop calls to wait for readable sockets."""
        return select.select(sockets, [], [], remain)[0]

    def recv(self, _size: int = 0, wait: bool = True) -> _Batch:
        """Every frame readable now, up to ``_BATCH``; waits for the first one if ``wait``."""
        batch = _Batch()
        flags = 0 if wait else socket.MSG_DONTWAIT
        sock, buf, view, cooked, headers = (
            self._sock, self._buf, self._view, self._cooked, self._headers)
        limit = len(buf)
        while len(batch) < _BATCH:
            try:
                size, ancillary, _, address = sock.recvmsg_into(
                    [buf], _ANCILLARY_SIZE, socket.MSG_TRUNC | flags
                )
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EBADF or batch:  # closed; or report the error next call
                    break
                self.error = exc  # e.g. ENETDOWN: the interface went away
                raise EOFError from None  # the sniffer loop closes the socket quietly and ends
            flags = socket.MSG_DONTWAIT
            ts_ns = 0
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(data)
                    ts_ns = sec * 1_000_000_000 + nsec
            data = bytes(view[: min(size, limit)])
            if cooked:  # -i any: the SLL2 header first
                header = headers.get(address) or self._header(address)
                data = header + data
                size += _SLL2.size
            batch.append((ts_ns or time.time_ns(), data, size))
        return batch

    def read_kernel_drops(self) -> int:
        """Frames the kernel dropped for this socket so far (the counter resets when read)."""
        with self._stats_lock:
            try:
                raw = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _TPACKET_STATS.size)
            except OSError:  # closed
                return self.kernel_drops
            self.kernel_drops += _TPACKET_STATS.unpack(raw)[1]
            return self.kernel_drops

    def close(self) -> None:
        """Close the socket (reading the last drop counters first)."""
        self.read_kernel_drops()
        self._view.release()
        self._sock.close()


class LiveCapture:
    """Capture frames on ``iface`` (BPF ``bpf``; None for no filter) into a bounded queue;
    ``iface`` ``any`` captures on every interface, as SLL2 frames (see ``_FrameSocket``).

    ``queue_size`` bounds the frames waiting for the analysis and ``queue_bytes`` their bytes
    (loopback TCP segments reach 64 kB); ``write`` is a pcapng path, rotated
    as a ring of ``ring`` files of ``ring_size_mb`` megabytes (10**6 bytes) when ``ring`` is set.
    ``count`` and ``duration_s`` stop the capture after that many frames or seconds.

    Raises ``UsageError`` (exit 2) for an unknown interface (the message lists the real ones) or a
    bad filter, ``InputError`` (exit 3) without the permission to capture or to write the file.
    The capture starts in the constructor; use it as a context manager or call ``stop()``.
    """

    def __init__(
        self,
        iface: str,
        bpf: str | None = DEFAULT_FILTER,
        *,
        queue_size: int = 100_000,
        queue_bytes: int = 256 * 1024 * 1024,
        write: str | None = None,
        ring: int | None = None,
        ring_size_mb: float | None = None,
        count: int | None = None,
        duration_s: float | None = None,
    ) -> None:
        names = [i.name for i in list_interfaces()]
        if iface not in names:
            raise UsageError(f"no interface {iface!r}; interfaces: {', '.join(names)}")
        self.iface = iface
        self._socket = _FrameSocket(iface, bpf)
        self.linktype = self._socket.linktype
        self._write_target = write
        try:
            self._writer = self._open_writer(write, ring, ring_size_mb)
        except BaseException:
            self._socket.close()
            raise
        self._queue: deque[Record] = deque()
        self._queue_size = queue_size
        self._queue_bytes = queue_bytes
        self._bytes_in = 0
        self._bytes_out = 0
        self._ready = threading.Event()
        self._started = threading.Event()
        self._finished = threading.Event()
        self._stop_requested = threading.Event()
        self._finish_lock = threading.Lock()
        self._count = count or 0
        self._frames = 0
        self._dropped_queue = 0
        self._write_error: OSError | None = None
        self._start(duration_s)

    def _open_writer(
        self, write: str | None, ring: int | None, ring_size_mb: float | None
    ) -> PcapngWriter | RingWriter | None:
        if write is None:
            return None
        try:
            if ring:
                size = int((ring_size_mb or 100) * 1_000_000)
                return RingWriter(
                    write, self.linktype, files=ring, size_bytes=size, if_name=self.iface
                )
            return PcapngWriter(write, self.linktype, if_name=self.iface)
        except OSError as exc:
            raise InputError(f"cannot write {write}: {exc.strerror or exc}") from None

    def _call_writer(self, method: str) -> None:
        """``flush_if_due`` or ``close`` the -w file, if there is one that still works."""
        writer = self._writer
        if writer is not None:
            try:
                getattr(writer, method)()
            except OSError as exc:
                self._write_failed(writer, exc)

    def _write_failed(self, writer: PcapngWriter | RingWriter, exc: OSError) -> None:
        """The -w file cannot take more (disk full, size limit): stop, report it as the error.
        The writer has cut the file back to its last complete flush."""
        if self._write_error is None:
            self._write_error = exc
        self._writer = None
        try:
            writer.close()
        except OSError:
            pass  # the same error again; the file is closed regardless
        self.request_stop()

    def _start(self, duration_s: float | None) -> None:
        from scapy.sendrecv import AsyncSniffer

        self._sniffer = AsyncSniffer(
            opened_socket=self._socket,
            store=False,
            prn=self._on_batch,
            stop_filter=self._reached_count,
            started_callback=self._started.set,
        )
        self._deadline = None if duration_s is None else time.monotonic() + duration_s
        self._sniffer.start()
        self._ticker = threading.Thread(target=self._tick, name="stunscope-flush", daemon=True)
        self._ticker.start()

    def _on_batch(self, batch: _Batch) -> None:
        """In the sniffer thread: number, write and enqueue the frames of one wake-up."""
        if self._count:
            del batch[max(0, self._count - self._frames) :]
        writer, queue, linktype = self._writer, self._queue, self.linktype
        room = self._queue_size - len(queue)
        room_bytes = self._queue_bytes - (self._bytes_in - self._bytes_out)
        frame = self._frames
        queued_bytes = 0
        for ts_ns, data, orig_len in batch:
            frame += 1
            if writer is not None:
                try:
                    writer.write(ts_ns, data, orig_len)
                except OSError as exc:
                    self._write_failed(writer, exc)
                    writer = None
            if room > 0 and queued_bytes + len(data) <= room_bytes:
                # ts computed as the pcapng reader does, so the file reads back equal
                queue.append(Record(frame, ts_ns / 1_000_000_000, linktype, data, orig_len))
                room -= 1
                queued_bytes += len(data)
            else:
                self._dropped_queue += 1
        self._bytes_in += queued_bytes  # written by this thread only; records() has _bytes_out
        self._frames = frame
        self._ready.set()

    def _reached_count(self, _batch: _Batch | None) -> bool:
        return 0 < self._count <= self._frames

    def _tick(self) -> None:
        """Until the capture ends: flush the file every 200 ms, notice that the sniffer stopped,
        stop it at the deadline."""
        while not self._finished.wait(0.1):
            self._call_writer("flush_if_due")
            self._socket.read_kernel_drops()
            if self._stop_requested.is_set() or (
                self._deadline is not None and time.monotonic() >= self._deadline
            ):
                self.stop()
            elif not self._sniffer.thread.is_alive():
                self._finish()

    def _finish(self) -> None:
        """Once the sniffer thread is over: take in what the kernel still holds for the socket
        (frames captured before the stop, not yet read), close the socket and the file, wake
        the reader."""
        with self._finish_lock:
            if self._finished.is_set():
                return
            deadline = time.monotonic() + _DRAIN_S
            drained = 0
            while (drained < _DRAIN_FRAMES and not self._reached_count(None)
                   and time.monotonic() <= deadline):
                batch = self._socket.recv(wait=False)
                if not batch:
                    break
                self._on_batch(batch)
                drained += len(batch)
            self._socket.close()
            self._call_writer("close")
            self._finished.set()
            self._ready.set()

    @property
    def running(self) -> bool:
        """True until the capture stopped (``stop()``, ``count`` or ``duration_s`` reached)."""
        return not self._finished.is_set()

    def records(self, on_idle: Callable[[], None] | None = None) -> Iterator[Record]:
        """The captured frames as Records, until the capture stops and the queue is empty.

        ``on_idle`` is called (in the reader's thread) each time the queue runs empty and then
        every 0.5 s while it stays empty: the moment to flush output or refresh a display.
        """
        queue, ready = self._queue, self._ready
        while True:
            try:
                record = queue.popleft()
            except IndexError:
                pass
            else:
                self._bytes_out += len(record.data)
                yield record
                continue
            if self._finished.is_set():
                if not queue:
                    return
                continue
            if on_idle is not None:
                on_idle()
            ready.clear()
            if not queue:
                ready.wait(0.5)

    def stats(self) -> LiveStats:
        """Counters so far (``dropped_kernel`` is refreshed by this call)."""
        kernel = self._socket.read_kernel_drops()
        return LiveStats(self._frames, self._dropped_queue, kernel)

    @property
    def error(self) -> InputError | None:
        """Why the capture ended on its own, if it did: the interface went down or away, or the
        -w file could not take more."""
        if self._write_error is not None:
            reason = self._write_error.strerror or self._write_error
            return InputError(f"cannot write {self._write_target}: {reason}")
        error = self._socket.error
        if error is None:
            return None
        return InputError(f"capture on {self.iface} stopped: {error.strerror or error}")

    def request_stop(self) -> None:
        """Ask the capture to stop within 100 ms (safe in a signal handler, unlike ``stop``)."""
        self._stop_requested.set()

    def stop(self) -> None:
        """Stop capturing; the file is flushed and closed. Queued records can still be read."""
        thread = self._sniffer.thread
        while thread.is_alive() and not self._started.wait(0.05):
            pass  # the sniffer can only be stopped once its loop is set up
        if self._sniffer.running:
            try:
                self._sniffer.stop(join=False)
            except Exception:  # it finished on its own in between (count or duration)
                pass
        thread.join()
        self._finish()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
