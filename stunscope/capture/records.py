"""Streaming reader of capture files: pcap and pcapng, plain or gzip-compressed.

Formats:

- pcap (draft-ietf-opsawg-pcap §4-§5): a 24-byte file header whose magic gives the byte order and
  the timestamp unit (``a1b2c3d4`` microseconds, ``a1b23c4d`` nanoseconds), then 16-byte record
  headers (seconds, fraction, captured length, original length) each followed by the bytes.
- pcapng (draft-ietf-opsawg-pcapng §3-§4): blocks of ``type, total length, body, total length``.
  A Section Header Block (§4.1) sets the byte order and resets the interfaces; each Interface
  Description Block (§4.2) gives a link type and the options ``if_tsresol`` (§4.2, code 9: a power
  of 10, or of 2 when the top bit is set) and ``if_tsoffset`` (code 14, seconds). Packets come in
  Enhanced (§4.3), Simple (§4.4) and the obsolete Packet blocks (Appendix); other blocks are
  skipped.
- gzip (RFC 1952): recognised by its magic ``1f 8b``, never by the file name.

The file is read in large chunks and never held whole. On damage, every good record is yielded
first, then one :class:`~stunscope.errors.CaptureError` line says where and why.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from stunscope.errors import CaptureError

__all__ = ["Record", "read_records"]

CHUNK = 1 << 20
"""Bytes read at a time: large enough that refills cost nothing per record."""

MAX_RECORD = 1 << 24
"""Largest captured length or block we accept (16 MiB) before calling the file corrupt."""


class Record(NamedTuple):
    """One captured frame: 1-based ``frame`` number, ``ts`` in seconds since the epoch, the
    ``linktype`` of its interface (tcpdump.org LINKTYPE_ value), the captured ``data`` and the
    ``orig_len`` the frame had on the wire (larger than ``len(data)`` when the snap length cut it).
    """

    frame: int
    ts: float
    linktype: int
    data: bytes
    orig_len: int


new = tuple.__new__
"""``new(Record, fields)`` builds a record without the Python-level ``NamedTuple.__new__``: a
third of the per-record cost on a million-record file. Other hot capture modules use it too."""


class _Damage(Exception):
    """Raised inside a format reader; turned into one CaptureError line with the position."""

    def __init__(self, what: str, offset: int, frame: int) -> None:
        super().__init__(what)
        self.what = what
        self.offset = offset
        self.frame = frame


_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_GZIP = b"\x1f\x8b"

_LOOKS_LIKE = (
    (b"PK\x03\x04", "a zip archive"),
    (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an ELF executable"),
    (b"\x34\xcd\xb2\xa1", "a modified (Kuznetzov) pcap, which is not supported"),
    (b"\xa1\xb2\xcd\x34", "a modified (Kuznetzov) pcap, which is not supported"),
    (b"BZh", "a bzip2 archive (decompress it first)"),
    (b"\xfd7zXZ", "an xz archive (decompress it first)"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive (decompress it first)"),
    (b"\x00\x00\x00\x18ftyp", "an MP4 video"),
    (b"XCP\x00", "a NetXray/Sniffer capture, which is not supported"),
    (b"\x0a\x0d\x0d\x0a", "pcapng"),
)


def _describe(head: bytes) -> str:
    """Say what a file that is neither pcap nor pcapng looks like, from its first bytes."""
    if not head:
        return "the file is empty"
    for magic, what in _LOOKS_LIKE:
        if head.startswith(magic):
            return f"it looks like {what}"
    hexed = head[:8].hex(" ")
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head[:64]):
        return f"it looks like text (starts with {hexed})"
    return f"unknown magic {hexed}"


def read_records(path: str | Path) -> Iterator[Record]:
    """Yield every record of a pcap or pcapng file (optionally gzip-compressed), in file order.

    Raises :class:`CaptureError` for an unreadable or unknown file before yielding anything, and
    for a truncated or corrupt file after yielding every record before the damage.
    """
    name = str(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed in the finally below, also on early exit
    except OSError as exc:
        raise CaptureError(f"{name}: cannot open: {exc.strerror or exc}") from None
    frame_box = [0]
    stream: BinaryIO = raw
    try:
        head = raw.read(4)
        if head[:2] == _GZIP:
            raw.seek(0)
            stream = _Gunzip(raw)  # type: ignore[assignment]
            head = stream.read(4)
        if head in _PCAP_MAGICS:
            yield from _read_pcap(stream, head, frame_box)
        elif head == _PCAPNG_SHB:
            yield from _read_pcapng(stream, head, frame_box)
        else:
            raise CaptureError(f"{name}: not a pcap or pcapng file: {_describe(head + stream.read(60))}")
    except _Damage as exc:
        raise CaptureError(f"{name}: {exc.what} at byte {exc.offset} (frame {exc.frame})") from None
    except EOFError:
        raise CaptureError(f"{name}: truncated gzip stream after frame {frame_box[0]}") from None
    except zlib.error as exc:
        raise CaptureError(f"{name}: corrupt gzip data after frame {frame_box[0]}: {exc}") from None
    except OSError as exc:
        raise CaptureError(f"{name}: read error after frame {frame_box[0]}: {exc.strerror or exc}") from None
    finally:
        raw.close()


class _Gunzip:
    """Decompress a gzip file (RFC 1952, possibly several members) as it is read.

    Unlike :class:`gzip.GzipFile`, whatever decompresses before a truncation or a corrupt byte is
    returned first; the next read raises (``EOFError`` or ``zlib.error``), so the reader can yield
    every good record before it reports the damage.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buf = b""
        self._done = False
        self._error: Exception | None = None

    def read(self, size: int) -> bytes:
        while len(self._buf) < size and not self._done and self._error is None:
            self._fill()
        if not self._buf and self._error is not None:
            raise self._error
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def _fill(self) -> None:
        z = self._z
        if z.eof:  # a member ended: another may follow (RFC 1952 §2.2)
            chunk = z.unused_data or self._raw.read(CHUNK)
            if not chunk:
                self._done = True
                return
            self._z = z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        else:
            chunk = self._raw.read(CHUNK)
            if not chunk:
                self._error = EOFError("the gzip stream ends before its end marker")
                return
        try:
            self._buf += z.decompress(chunk)
        except zlib.error as exc:
            self._error = exc


def _read_pcap(f: BinaryIO, magic: bytes, frame_box: list[int]) -> Iterator[Record]:
    """pcap records (draft-ietf-opsawg-pcap §4 file header, §5 packet record)."""
    order, units = _PCAP_MAGICS[magic]
    rest = f.read(20)
    if len(rest) < 20:
        raise _Damage("truncated pcap file header", 4 + len(rest), 0)
    _major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", rest)
    linktype = network & 0xFFFF  # the upper bits carry FCS information (§4, LinkType field)
    limit = max(snaplen, 262144)
    unpack = struct.Struct(order + "IIII").unpack_from
    buf = b""
    pos = 0
    base = 24  # file offset of buf[0]
    frame = 0
    while True:
        n = len(buf)
        while pos + 16 <= n:
            sec, frac, caplen, orig_len = unpack(buf, pos)
            if caplen > limit:
                raise _Damage(
                    f"corrupt record: captured length {caplen} exceeds the snap length {snaplen}",
                    base + pos,
                    frame + 1,
                )
            end = pos + 16 + caplen
            if end > n:
                break
            frame += 1
            yield new(Record, (frame, sec + frac / units, linktype, buf[pos + 16 : end], orig_len))
            pos = end
        frame_box[0] = frame
        more = f.read(CHUNK)
        if not more:
            if pos < n:
                raise _Damage(
                    f"truncated record: {n - pos} bytes left of a record", base + pos, frame + 1
                )
            return
        base += pos
        buf = buf[pos:] + more
        pos = 0


class _Interface(NamedTuple):
    """What a pcapng Interface Description Block says about its packets."""

    linktype: int
    snaplen: int
    units: int  # timestamp units per second (if_tsresol)
    offset: int  # seconds added to every timestamp (if_tsoffset)


_EPB = 6
_SPB = 3
_PB = 2
_IDB = 1
_SHB = 0x0A0D0D0A


def _read_pcapng(f: BinaryIO, magic: bytes, frame_box: list[int]) -> Iterator[Record]:
    """pcapng blocks (draft-ietf-opsawg-pcapng §3.1 block layout, §4 block types)."""
    buf = magic + f.read(CHUNK)
    pos = 0
    base = 0
    frame = 0
    order = "<"
    head = struct.Struct("<II").unpack_from
    epb = struct.Struct("<7I").unpack_from  # block type, length, then the EPB fields
    u32 = struct.Struct("<I").unpack_from
    pb = struct.Struct("<HHIIII").unpack_from
    interfaces: list[_Interface] = []
    while True:
        n = len(buf)
        while pos + 12 <= n:
            if pos + 32 <= n:  # fast path: a whole, sound EPB in one unpack
                btype, blen, ifid, hi, lo, caplen, orig_len = epb(buf, pos)
                end = pos + blen
                if (
                    btype == _EPB
                    and end <= n
                    and ifid < len(interfaces)
                    and caplen <= blen - 32
                    and not blen & 3
                    and u32(buf, end - 4)[0] == blen
                ):
                    linktype, _snaplen, units, offset = interfaces[ifid]
                    frame += 1
                    yield new(Record, (frame, ((hi << 32) | lo) / units + offset, linktype, buf[pos + 28 : pos + 28 + caplen], orig_len))
                    pos = end
                    continue
            btype, blen = head(buf, pos)
            end = pos + blen
            if btype == _SHB:
                bom = buf[pos + 8 : pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    order = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    order = ">"
                else:
                    raise _Damage(f"corrupt section header: byte-order magic {bom.hex()}", base + pos, frame + 1)
                head = struct.Struct(order + "II").unpack_from
                epb = struct.Struct(order + "7I").unpack_from
                u32 = struct.Struct(order + "I").unpack_from
                pb = struct.Struct(order + "HHIIII").unpack_from
                btype, blen = head(buf, pos)
                end = pos + blen
            if blen < 12 or blen % 4 or blen > MAX_RECORD:
                raise _Damage(f"corrupt block: type 0x{btype:08x} with length {blen}", base + pos, frame + 1)
            if end > n:
                break
            if u32(buf, end - 4)[0] != blen:
                raise _Damage(
                    f"corrupt block: type 0x{btype:08x} trailing length differs from {blen}",
                    base + pos,
                    frame + 1,
                )
            if btype == _EPB or btype == _PB:
                if blen < 32:
                    raise _Damage(f"corrupt packet block: length {blen}", base + pos, frame + 1)
                if btype == _EPB:
                    _type, _len, ifid, hi, lo, caplen, orig_len = epb(buf, pos)
                else:  # obsolete Packet Block: 16-bit interface id and drops count
                    ifid, _drops, hi, lo, caplen, orig_len = pb(buf, pos + 8)
                if ifid >= len(interfaces) or caplen > blen - 32:
                    raise _Damage(
                        f"corrupt packet block: interface {ifid}, captured length {caplen}",
                        base + pos,
                        frame + 1,
                    )
                linktype, _snaplen, units, offset = interfaces[ifid]
                frame += 1
                yield new(Record, (frame, ((hi << 32) | lo) / units + offset, linktype, buf[pos + 28 : pos + 28 + caplen], orig_len))
            elif btype == _IDB:
                interfaces.append(_parse_idb(buf, pos, blen, order, base, frame))
            elif btype == _SHB:
                interfaces = []
            elif btype == _SPB:
                if not interfaces or blen < 16:
                    raise _Damage("corrupt simple packet block: no interface 0", base + pos, frame + 1)
                iface = interfaces[0]
                (orig_len,) = u32(buf, pos + 8)
                caplen = min(orig_len, blen - 16, iface.snaplen or orig_len)
                frame += 1
                yield new(Record, (frame, 0.0, iface.linktype, buf[pos + 12 : pos + 12 + caplen], orig_len))
            pos = end
        frame_box[0] = frame
        more = f.read(CHUNK)
        if not more:
            if pos < n:
                raise _Damage(f"truncated block: {n - pos} bytes left of a block", base + pos, frame + 1)
            return
        base += pos
        buf = buf[pos:] + more
        pos = 0


def _parse_idb(buf: bytes, pos: int, blen: int, order: str, base: int, frame: int) -> _Interface:
    """Interface Description Block (pcapng §4.2): link type, snap length, if_tsresol, if_tsoffset."""
    if blen < 20:
        raise _Damage(f"corrupt interface description block: length {blen}", base + pos, frame + 1)
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
    units = 1_000_000
    offset = 0
    opt = pos + 16
    end = pos + blen - 4
    option = struct.Struct(order + "HH").unpack_from
    while opt + 4 <= end:
        code, length = option(buf, opt)
        value = buf[opt + 4 : opt + 4 + length]
        if code == 0:  # opt_endofopt
            break
        if opt + 4 + length > end:
            raise _Damage(f"corrupt interface option {code}: length {length}", base + opt, frame + 1)
        if code == 9 and length >= 1:  # if_tsresol
            res = value[0]
            exponent = res & 0x7F
            units = (2 if res & 0x80 else 10) ** exponent
        elif code == 14 and length == 8:  # if_tsoffset
            (offset,) = struct.unpack(order + "q", value)
        opt += 4 + length + (-length % 4)
    return _Interface(linktype, snaplen, units, offset)
