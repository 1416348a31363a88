"""A Linux ``PF_PACKET`` socket that scapy's sniffer loop reads: raw frames in batches, with the
kernel's timestamps and drop counters, never dissected (``capture.layers`` does that).

One interface gives its own frames (Ethernet, loopback, tun); ``any`` gives every interface's
packets through one cooked socket, recorded as Linux cooked capture v2 (``LINKTYPE_LINUX_SLL2``),
which keeps the interface index and the direction of each packet.
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import threading
import time
from typing import Any

from stunscope.capture.bpf import (
    LINKTYPE_LINUX_SLL2, SLL2, SNAPLEN, Program, attach_program, compile_program, cooked_program,
)
from stunscope.errors import InputError

ANY = "any"
"""The pseudo-interface name that captures on every interface (as libpcap's on Linux)."""

SOCKET_BUFFER = 64 * 1024 * 1024
"""Kernel receive buffer (root: SO_RCVBUFFORCE; else capped at net.core.rmem_max): absorbs about
a second of 50,000 frames/s while the capture thread waits for the CPU or the GIL. Memory is
only taken while frames wait in it."""

_BATCH = 512
"""Most frames read from the socket per wake-up of the sniffer thread."""

# Linux constants (linux/if_packet.h, asm-generic/socket.h, linux/if_arp.h).
_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_SO_TIMESTAMPNS = 35
_SO_RCVBUFFORCE = 33
_ARPHRD_LOOPBACK = 772
_LINKTYPES = {1: 1, _ARPHRD_LOOPBACK: 1, 0xFFFE: 101}
"""ARPHRD_ hardware type -> LINKTYPE_: Ethernet and loopback frames carry an Ethernet header,
ARPHRD_NONE (tun devices) gives raw IP."""

_HEADER_CACHE = 4096
"""Distinct (interface, protocol, direction, source address) SLL2 headers kept ready."""

_TIMESPEC = struct.Struct("@qq")
_TPACKET_STATS = struct.Struct("@II")
_ANCILLARY_SIZE = socket.CMSG_SPACE(_TIMESPEC.size)


def _permission_message(iface: str) -> str:
    return (
        f"capturing on {iface} needs root or CAP_NET_RAW "
        "(try: sudo setcap cap_net_raw,cap_net_admin=eip $(readlink -f $(which python3)))"
    )


class Batch(list):  # type: ignore[type-arg]
    """The frames one wake-up read: what the sniffer loop passes to ``prn`` as one "packet"."""

    __slots__ = ("sniffed_on",)


def _loopback_index() -> int | None:
    """The index of ``lo`` (libpcap names it so too), or None without one."""
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        return None


class FrameSocket:
    """A ``PF_PACKET`` socket that the scapy sniffer loop can select on and ``recv`` from.

    ``recv`` returns a ``Batch`` of ``(ts_ns, data, orig_len)`` without dissecting anything. On a
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
    (``bpf.cooked_program``); the outgoing copy of a loopback packet is skipped in the kernel by the filter
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
                attach_program(self._sock, program)
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
        header = SLL2.size if cooked else 0
        self._buf = bytearray(SNAPLEN - header)
        self._view = memoryview(self._buf)
        self.kernel_drops = 0
        self.error: OSError | None = None
        """The error that ended the capture (the interface went down or away), if any."""
        self._stats_lock = threading.Lock()

    def _bind(self, iface: str, bpf: str | None) -> tuple[int, Program | None]:
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
        return linktype, compile_program(linktype, bpf, "inbound" if hatype == _ARPHRD_LOOPBACK else None)

    @staticmethod
    def _any_filter(bpf: str | None) -> tuple[int, Program | None]:
        """SLL2, and the filter to attach to the unbound cooked socket."""
        loopback = _loopback_index()
        guard = None if loopback is None else f"not (outbound and ifindex {loopback})"
        program = compile_program(LINKTYPE_LINUX_SLL2, bpf, guard)
        return LINKTYPE_LINUX_SLL2, program and cooked_program(program, bpf or "")

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
        header = SLL2.pack(protocol, ifindex, hatype, pkttype, len(hwaddr), hwaddr)
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
            self._sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, SOCKET_BUFFER)
        except PermissionError:  # without CAP_NET_ADMIN: up to net.core.rmem_max
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)

    def fileno(self) -> int:
        """The socket's descriptor (for ``select``)."""
        return self._sock.fileno()

    @staticmethod
    def select(sockets: list[Any], remain: float | None = None) -> list[Any]:
        """What scapy's sniffer loop calls to wait for readable sockets."""
        return select.select(sockets, [], [], remain)[0]

    def recv(self, _size: int = 0, wait: bool = True) -> Batch:
        """Every frame readable now, up to ``_BATCH``; waits for the first one if ``wait``."""
        batch = Batch()
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
                size += SLL2.size
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
