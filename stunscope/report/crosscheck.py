"""Differential check of stunscope's decoder against tshark's, message by message.

Both decoders are run over the same capture and reduced to the same comparable record per
message (the fields of the ``messages --format jsonl`` contract that tshark also decodes):
``kind``, ``method``, ``class``, ``txid``, ``mapped``, ``relayed``, ``peers``, ``error_code``,
``fingerprint`` and ``channel``. Records are matched by frame number (and by transaction id, then
order, inside a frame). Every difference becomes a :class:`Disagreement`; those that match a
documented case where tshark 4.0 is wrong or blind (:data:`KNOWN_CASES`, evidence in
``docs/tshark-disagreements.md``) are labelled ``known`` and do not fail the check.

tshark is found through pyshark (imported lazily, only here) but run directly, once per file,
with ``-T json --no-duplicate-keys``: pyshark's ``FileCapture(use_json=True)`` merges the
protocol layers of a frame by name, so the second STUN message of a TCP segment is silently
lost, and its per-packet asyncio parsing is two orders of magnitude slower than one JSON read.

Scope of the comparison: messages sent directly on UDP/TCP. Messages tunnelled inside
ChannelData or Send/Data indications are not dissected by tshark (it shows them as ``data``)
and copies of STUN quoted inside ICMP errors are not traffic (tshark decodes them; stunscope
reports an ``icmp-unreachable`` event); both are counted, not compared.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stunscope.errors import InputError, StunscopeError
from stunscope.wire.registry import method_name

__all__ = [
    "COMPARED_FIELDS",
    "KNOWN_CASES",
    "CrosscheckResult",
    "Disagreement",
    "TsharkUnavailable",
    "compare",
    "crosscheck",
    "stunscope_records",
    "tshark_records",
]

COMPARED_FIELDS = (
    "kind", "method", "class", "txid", "mapped", "relayed", "peers", "error_code", "fingerprint",
    "channel",
)
"""The JSON contract keys both decoders produce."""

TSHARK_FILTER = "stun || classicstun"
TSHARK_PREFS = ("-o", "udp.try_heuristic_first:TRUE", "-o", "tcp.try_heuristic_first:TRUE")
"""Let content, not the port table, pick the dissector (DESIGN.md principle 8); without these
tshark hands STUN on a port registered to another protocol (UDP 3503: MPLS LSP ping) to that
protocol's dissector."""

_CLASSES = ("request", "indication", "success", "error")
_MISSING = "missing"

Record = dict[str, Any]


class TsharkUnavailable(StunscopeError):
    """tshark (or pyshark, which locates it) is not installed: the comparison cannot run (exit 3)."""


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One difference between the decoders on one message.

    ``field`` is a compared key, or ``message`` when only one decoder found a message there
    (then ``ours``/``theirs`` hold ``kind method class`` or ``None``). ``case`` is the
    :data:`KNOWN_CASES` key that explains it, or None when it is unexplained.
    """

    frame: int
    field: str
    ours: Any
    theirs: Any
    case: str | None

    @property
    def known(self) -> bool:
        """True when a documented tshark error or blind spot explains the difference."""
        return self.case is not None


@dataclass(slots=True)
class CrosscheckResult:
    """The comparison of one capture: counts, disagreements, and a capture error if any."""

    path: Path
    compared: int = 0
    ours_only: int = 0
    theirs_only: int = 0
    tunnelled: int = 0
    icmp_quoted: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    error: str | None = None

    @property
    def unexplained(self) -> list[Disagreement]:
        """Disagreements no documented case explains: each is a bug in one of the decoders."""
        return [d for d in self.disagreements if not d.known]


# --------------------------------------------------------------------------- tshark side

def _tshark_path() -> str:
    """The tshark executable pyshark would run (lazy pyshark import)."""
    try:
        from pyshark.tshark.tshark import TSharkNotFoundException, get_process_path
    except ImportError as exc:
        raise TsharkUnavailable("pyshark is not installed (pip install pyshark)") from exc
    try:
        return get_process_path()
    except TSharkNotFoundException as exc:
        raise TsharkUnavailable("tshark is not installed (apt-get install tshark)") from exc


def _as_list(value: Any) -> list[Any]:
    """tshark JSON gives one child as an object and several as a list: always a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _split_type(msg_type: int) -> tuple[int, str]:
    """RFC 8489 §5: method bits M11..M0 and class bits C1 C0 of a message type."""
    method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)
    cls = ((msg_type >> 4) & 1) | ((msg_type >> 7) & 2)
    return method, _CLASSES[cls]


def _tshark_address(att: dict[str, Any], prefix: str) -> str | None:
    """``ip:port`` / ``[ip]:port`` of a tshark address attribute (already un-XORed by tshark)."""
    port = att.get(f"{prefix}.port")
    if f"{prefix}.ipv4" in att:
        return f"{att[f'{prefix}.ipv4']}:{port}"
    if f"{prefix}.ipv6" in att:
        return f"[{att[f'{prefix}.ipv6']}]:{port}"
    return None


def _find(tree: dict[str, Any], key: str) -> dict[str, Any]:
    """The subtree under ``key``, searched depth-first: tshark nests the attributes under an
    expert item (e.g. ``Packet length is not multiple of 4 bytes``) when it flags the header."""
    if key in tree:
        return tree[key]
    for value in tree.values():
        for child in _as_list(value):
            if isinstance(child, dict):
                found = _find(child, key)
                if found:
                    return found
    return {}


def _tshark_attributes(layer: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """The attribute subtrees of a ``stun`` or ``classicstun`` layer, in wire order."""
    if prefix == "stun":
        return _as_list(_find(layer, "stun.attributes").get("stun.attribute_tree"))
    atts: list[dict[str, Any]] = []
    for value in (layer.get("classicstun.att") or {}).values():
        atts.extend(_as_list(value))
    return atts


def _tshark_record(layer: dict[str, Any], prefix: str) -> Record:
    """Reduce one tshark ``stun``/``classicstun`` layer to the compared fields."""
    if "stun.channel" in layer:
        return {"kind": "channeldata", "method": None, "class": None, "txid": None, "mapped": None,
                "relayed": None, "peers": [], "error_code": None, "fingerprint": None,
                "channel": int(layer["stun.channel"], 16)}
    method, cls = _split_type(int(layer[f"{prefix}.type"], 16))
    rec: Record = {
        "kind": "stun" if prefix == "stun" else "classic-stun",
        "method": method_name(method), "class": cls,
        "txid": layer.get(f"{prefix}.id", "").replace(":", ""),
        "mapped": None, "relayed": None, "peers": [], "error_code": None, "fingerprint": None,
        "channel": None,
    }
    plain_mapped = None
    for att in _tshark_attributes(layer, prefix):
        atype = int(att.get(f"{prefix}.att.type", "0xffff"), 16)
        if atype in (0x0020, 0x8020):
            rec["mapped"] = rec["mapped"] or _tshark_address(att, f"{prefix}.att")
        elif atype == 0x0001:
            plain_mapped = plain_mapped or _tshark_address(att, f"{prefix}.att")
        elif atype == 0x0016:
            rec["relayed"] = rec["relayed"] or _tshark_address(att, f"{prefix}.att")
        elif atype == 0x0012:  # XOR-PEER-ADDRESS; MS-TURN REMOTE-ADDRESS in cookie-less messages
            addr = _tshark_address(att, f"{prefix}.att")
            if addr:
                rec["peers"].append(addr)
        elif atype == 0x0009 and rec["error_code"] is None:
            klass, number = att.get(f"{prefix}.att.error.class"), att.get(f"{prefix}.att.error")
            if klass is not None and number is not None:
                rec["error_code"] = int(klass) * 100 + int(number)
        elif atype == 0x8028:
            status = att.get(f"{prefix}.att.crc32.status")
            rec["fingerprint"] = {"1": "ok", "0": "bad"}.get(status)
    rec["mapped"] = rec["mapped"] or plain_mapped
    return rec


class _TsharkRun:
    """tshark started in the background over one file, its JSON going to a temporary file, so
    stunscope decodes the same capture meanwhile (two processes, two cores)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        cmd = [_tshark_path(), "-r", str(path), "-n", *TSHARK_PREFS, "-Y", TSHARK_FILTER,
               "-T", "json", "--no-duplicate-keys", "-J", "frame stun classicstun"]
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)

    def records(self, timeout_s: float) -> tuple[dict[int, list[Record]], int]:
        """Wait for tshark: frame -> records of direct messages, and the ICMP-quoted count."""
        import orjson

        try:
            self.proc.wait(timeout=timeout_s)
            self.out.seek(0)
            data = self.out.read()
            if self.proc.returncode != 0 and not data.strip():
                self.err.seek(0)
                reason = self.err.read().decode("utf-8", "replace").strip().splitlines()
                raise InputError(f"tshark cannot read {self.path}: {reason[-1] if reason else self.proc.returncode}")
        finally:
            self.close()
        frames: dict[int, list[Record]] = {}
        quoted = 0
        for packet in orjson.loads(data or b"[]"):
            layers = packet["_source"]["layers"]
            frame = int(layers["frame"]["frame.number"])
            protocols = layers["frame"]["frame.protocols"].split(":")
            in_icmp = any(p in ("icmp", "icmpv6") for p in protocols)
            for prefix in ("stun", "classicstun"):
                for layer in _as_list(layers.get(prefix)):
                    if in_icmp:
                        quoted += 1
                        continue
                    frames.setdefault(frame, []).append(_tshark_record(layer, prefix))
        return frames, quoted

    def close(self) -> None:
        """Stop tshark if it still runs and drop the temporary files."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.err.close()


def tshark_records(path: Path, timeout_s: float = 120.0) -> tuple[dict[int, list[Record]], int]:
    """Run tshark once over ``path``: frame -> records of direct messages, and ICMP-quoted count.

    Raises :class:`TsharkUnavailable` when tshark is missing and :class:`InputError` when
    tshark cannot read the file at all.
    """
    return _TsharkRun(path).records(timeout_s)


# --------------------------------------------------------------------------- stunscope side

def stunscope_records(path: Path) -> tuple[dict[int, list[Record]], int, str | None]:
    """Decode ``path`` with stunscope: frame -> records of direct messages, tunnelled count, error.

    A capture error (truncated file, ...) ends the stream; what was read is still returned with
    the error's text, so the comparison covers everything before the damage.
    """
    from stunscope.capture.events import MessageEvent
    from stunscope.capture.stream import open_events
    from stunscope.report.messages import event_to_json

    frames: dict[int, list[Record]] = {}
    tunnelled = 0
    error = None
    try:
        for event in open_events(path):
            if type(event) is not MessageEvent:
                continue
            if event.tunnel is not None:
                tunnelled += 1
                continue
            obj = event_to_json(event, None)
            record = {k: obj[k] for k in COMPARED_FIELDS}
            record["findings"] = obj["findings"]  # context for the known cases, not compared
            frames.setdefault(event.frame, []).append(record)
    except InputError as exc:
        error = str(exc)
    return frames, tunnelled, error


# --------------------------------------------------------------------------- known cases

Explainer = Callable[[str, Record | None, Record | None], bool]


def _method_above_0xff(fld: str, ours: Record | None, theirs: Record | None) -> bool:
    """tshark 4.0 rejects every STUN message whose method is 0x100 or above, even on port 3478,
    although methods are 12 bits (RFC 8489 §5, IANA range 0x000-0xFFF): WhatsApp's 0x200-0x205
    requests and responses are shown as UDP data."""
    if fld != "message" or theirs is not None or ours is None or ours["kind"] != "stun":
        return False
    method = str(ours["method"])
    return method.startswith("0x") and int(method, 16) >= 0x100


def _ms_turn_mux(fld: str, ours: Record | None, theirs: Record | None) -> bool:
    """[MS-TURN] §2.2.3: tshark shows the 0xFF10 multiplexing wrapper as ChannelData 0xff10 (not
    a valid channel, RFC 8656 §12) instead of unwrapping the STUN message inside."""
    return (ours is not None and theirs is not None and ours["kind"] != "channeldata"
            and theirs["kind"] == "channeldata" and theirs["channel"] == 0xFF10)


def _overrun_value(fld: str, ours: Record | None, theirs: Record | None) -> bool:
    """An attribute whose length runs past the message end is malformed (RFC 8489 §14): stunscope
    reports ``attribute-overrun`` and no value; tshark decodes the bytes that happen to be there
    (and parses more attributes out of the overrun value)."""
    return (ours is not None and theirs is not None and "attribute-overrun" in ours["findings"]
            and fld in ("mapped", "relayed", "peers", "error_code") and not ours[fld] and bool(theirs[fld]))


def _unpadded_attributes(fld: str, ours: Record | None, theirs: Record | None) -> bool:
    """Pre-RFC 5389 / [MS-TURN] senders do not pad attributes to 4 bytes: stunscope re-reads
    them unpadded (``unpadded-attributes``); tshark assumes padding, loses the alignment after
    the first odd-length attribute and misses the attributes behind it."""
    return (ours is not None and theirs is not None and "unpadded-attributes" in ours["findings"]
            and fld in ("mapped", "relayed", "peers", "error_code") and bool(ours[fld]) and not theirs[fld])


KNOWN_CASES: dict[str, tuple[str, Explainer]] = {
    "method-above-0xff": (
        "tshark rejects STUN messages with a method of 0x100 or above (WhatsApp's 0x200-0x205) "
        "and shows them as UDP data", _method_above_0xff),
    "ms-turn-mux": (
        "tshark shows the MS-TURN 0xFF10 multiplexing wrapper as ChannelData 0xff10 and does "
        "not decode the STUN message inside", _ms_turn_mux),
    "overrun-attribute": (
        "tshark decodes a value from an attribute whose length runs past the end of the "
        "message; stunscope reports attribute-overrun", _overrun_value),
    "unpadded-attributes": (
        "tshark assumes 4-byte padding in MS-TURN messages whose attributes are unpadded and "
        "misses the attributes after the first odd-length one", _unpadded_attributes),
}
"""Documented cases where tshark 4.0 is wrong or blind: key -> (summary, matcher)."""


def _explain(fld: str, ours: Record | None, theirs: Record | None) -> str | None:
    """The key of the first known case that explains a difference, or None."""
    for key, (_, matches) in KNOWN_CASES.items():
        if matches(fld, ours, theirs):
            return key
    return None


# --------------------------------------------------------------------------- comparison

def _summary(rec: Record) -> str:
    """``stun Binding request`` / ``channeldata 0x4000``: how a lone message is shown."""
    if rec["kind"] == "channeldata":
        return f"channeldata 0x{rec['channel']:04x}"
    return f"{rec['kind']} {rec['method']} {rec['class']} {rec['txid']}"


def _pair(ours: list[Record], theirs: list[Record]) -> Iterable[tuple[Record | None, Record | None]]:
    """Match the messages of one frame: same transaction id first, then in order."""
    left = list(theirs)
    unmatched: list[Record] = []
    for rec in ours:
        hit = next((t for t in left if rec["txid"] is not None and t["txid"] == rec["txid"]), None)
        if hit is None:
            unmatched.append(rec)
        else:
            left.remove(hit)
            yield rec, hit
    for i, rec in enumerate(unmatched):
        yield rec, left[i] if i < len(left) else None
    for rec in left[len(unmatched):]:
        yield None, rec


def compare(ours: dict[int, list[Record]], theirs: dict[int, list[Record]],
            result: CrosscheckResult) -> CrosscheckResult:
    """Fill ``result`` with the counts and disagreements between two frame -> records maps."""
    for frame in sorted(ours.keys() | theirs.keys()):
        for mine, tsh in _pair(ours.get(frame, []), theirs.get(frame, [])):
            if mine is None or tsh is None:
                if mine is None:
                    result.theirs_only += 1
                else:
                    result.ours_only += 1
                result.disagreements.append(Disagreement(
                    frame, "message", _summary(mine) if mine else None,
                    _summary(tsh) if tsh else None, _explain("message", mine, tsh)))
                continue
            result.compared += 1
            for key in COMPARED_FIELDS:
                if mine[key] != tsh[key]:
                    result.disagreements.append(Disagreement(
                        frame, key, mine[key], tsh[key], _explain(key, mine, tsh)))
    return result


def crosscheck(path: Path, timeout_s: float = 120.0) -> CrosscheckResult:
    """Compare stunscope with tshark on one capture (tshark runs once, alongside stunscope)."""
    run = _TsharkRun(path)
    try:
        ours, tunnelled, error = stunscope_records(path)
    except BaseException:
        run.close()
        raise
    theirs, quoted = run.records(timeout_s)
    result = CrosscheckResult(path=path, tunnelled=tunnelled, icmp_quoted=quoted, error=error)
    return compare(ours, theirs, result)
