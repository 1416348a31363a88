"""``stunscope decode HEX|BASE64|-``: the full attribute tree of one message.

The argument is hex (spaces, colons and a ``0x`` prefix allowed, as copied from Wireshark or a
log) or base64 (standard or URL-safe); ``-`` reads stdin, as hex/base64 text or as raw bytes.
The bytes are classified by content (RFC 7983/9443) and decoded as STUN (RFC 8489), classic
STUN (RFC 3489), ChannelData (RFC 8656 §12.4) or an [MS-TURN] 0xFF10 wrapper; STUN carried in
ChannelData or a Send/Data indication's DATA attribute is decoded too and shown nested.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import sys
from typing import Any

from stunscope.cli import options
from stunscope.errors import InputError, UsageError
from stunscope.report.messages import message_json
from stunscope.wire.attributes import format_value
from stunscope.wire.decode import decode_channeldata, decode_message, decode_ms_turn_mux
from stunscope.wire.demux import classify
from stunscope.wire.integrity import Keyring
from stunscope.wire.message import ChannelData, DecodeFailure, StunMessage
from stunscope.wire.registry import attr_name
from stunscope.wire.text import safe_text

EPILOG = f"""\
examples:
  stunscope decode 000100002112a442b7e7a701bc34d686fa87dfae
  stunscope decode 'AAEAACESpEK356cBvDTWhvqH364='
  xxd -r -p msg.hex | stunscope decode -            raw bytes on stdin
  stunscope decode --format json 0101000c2112a442... | jq .attributes
  stunscope decode --ice-pwd VOkJxbRl1RmTxUk/WvJxBt 0001005821...   check MESSAGE-INTEGRITY
  stunscope decode --credential alice:secret --realm example.org 0103...   a response

{options.CREDENTIALS_HELP}
exit codes: 0 decoded (findings are data), 2 not hex or base64,
            3 not a decodable message (what could be read is printed first)
"""

_HEX_NOISE = re.compile(r"0x|[\s:.\-]", re.IGNORECASE)
_HEX = re.compile(r"[0-9a-fA-F]*")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
"""Standard or URL-safe alphabet (RFC 4648 §4-§5), padding optional."""
_TUNNELS = {0x006: "Send", 0x007: "Data"}
_DATA_ATTR = 0x0013


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``decode`` command."""
    parser = subparsers.add_parser(
        "decode", help="decode one message given as hex or base64",
        description="Print the full attribute tree of one STUN, classic STUN or ChannelData "
                    "message: offsets, lengths, names, decoded values, findings, checks.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", metavar="HEX|BASE64|-", help="the message bytes, or - for stdin")
    options.add_format(parser, ("text", "json"))
    options.add_credentials(parser)
    parser.add_argument("--username", help="USERNAME of the request, to check a response's integrity")
    parser.add_argument("--realm", help="REALM of the request, to check a response's integrity")
    parser.set_defaults(func=run)


def parse_bytes(text: str | bytes) -> bytes:
    """Hex (with separators) or base64 text -> bytes; UsageError when it is neither."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise UsageError("input is neither hex nor base64 text") from None
    compact = _HEX_NOISE.sub("", text.strip())
    if compact and _HEX.fullmatch(compact) and len(compact) % 2 == 0:
        return bytes.fromhex(compact)
    b64 = "".join(text.split())
    if b64 and _BASE64.fullmatch(b64):
        padded = b64.rstrip("=") + "=" * (-len(b64.rstrip("=")) % 4)
        try:
            return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            pass
    raise UsageError("input is neither hex (even number of digits) nor base64")


def _read_stdin() -> bytes:
    """stdin as bytes: hex/base64 text when it is printable ASCII, else the raw message."""
    raw = sys.stdin.buffer.read()
    stripped = raw.strip()
    if not stripped:
        raise UsageError("stdin is empty")
    if all(32 <= b < 127 or b in b"\t\r\n" for b in stripped):
        return parse_bytes(stripped)
    return raw


# --------------------------------------------------------------------------- decoding

def decode_any(data: bytes) -> tuple[str, StunMessage | ChannelData | DecodeFailure]:
    """(kind, decoded) for one message's bytes, classified by content first."""
    kind = classify(data)
    if kind == "channeldata":
        return kind, decode_channeldata(data, tcp=False)
    if kind == "ms-turn-mux":
        wrapper = decode_ms_turn_mux(data)
        if isinstance(wrapper, DecodeFailure):
            return kind, wrapper
        return decode_any(wrapper.data)
    message = decode_message(data)
    if isinstance(message, StunMessage):
        return ("stun" if message.magic else "classic-stun"), message
    return kind, message


def _inner(decoded: StunMessage | ChannelData) -> bytes | None:
    """The tunnelled bytes when they classify as STUN: ChannelData data or a Send/Data DATA."""
    if isinstance(decoded, ChannelData):
        payload = decoded.data
    elif decoded.method in _TUNNELS:
        payload = next((a.raw for a in decoded.attributes if a.type == _DATA_ATTR), b"")
    else:
        return None
    return payload if classify(payload) in ("stun", "classic-stun") else None


def to_json(kind: str, decoded: StunMessage | ChannelData | DecodeFailure, keyring: Keyring | None,
            username: str | None, realm: str | None) -> dict[str, Any]:
    """JSON of one decoded message (the ``messages`` contract's message keys), with the tunnelled
    message under ``inner``; a DecodeFailure becomes ``{kind: "undecodable", findings, error}``."""
    if isinstance(decoded, DecodeFailure):
        return {"kind": "undecodable", "classified_as": kind, "findings": [decoded.reason],
                "error": safe_text(decoded.detail), "offset": decoded.offset}
    if isinstance(decoded, ChannelData):
        obj: dict[str, Any] = {"kind": "channeldata", "channel": decoded.channel, "length": decoded.length,
                               "findings": list(decoded.findings), "padded": decoded.padded}
    else:
        obj = message_json(decoded, keyring, username, realm)
    inner = _inner(decoded)
    if inner is not None:
        obj["inner"] = to_json(*decode_any(inner), keyring, username, realm)
    return obj


def tree_lines(kind: str, decoded: StunMessage | ChannelData | DecodeFailure, keyring: Keyring | None,
               username: str | None, realm: str | None, indent: str = "") -> list[str]:
    """The text tree of one decoded message (nested for a tunnelled one)."""
    if isinstance(decoded, DecodeFailure):
        return [f"{indent}undecodable ({kind}): {safe_text(decoded.reason)} at byte {decoded.offset}: "
                f"{safe_text(decoded.detail)}"]
    if isinstance(decoded, ChannelData):
        lines = [f"{indent}ChannelData channel 0x{decoded.channel:04x} (RFC 8656 §12.4)",
                 f"{indent}  length {decoded.length}, {'padded' if decoded.padded else 'not padded'}"]
        findings = decoded.findings
    else:
        info = message_json(decoded, keyring, username, realm)
        version = "RFC 5389/8489" if decoded.magic else "classic RFC 3489"
        lines = [f"{indent}{info['method']} {info['class']} ({version})",
                 f"{indent}  type 0x{decoded.msg_type:04x}  length {decoded.length}  "
                 f"transaction id {info['txid']}"]
        checks = [f"{name} {info[key]}" for key, name in (("fingerprint", "fingerprint"),
                                                          ("integrity", "integrity")) if info[key]]
        if checks:
            lines.append(f"{indent}  " + ", ".join(checks))
        lines.append(f"{indent}  attributes:" if decoded.attributes else f"{indent}  no attributes")
        for attr in decoded.attributes:
            lines.append(f"{indent}    @{attr.offset:<4} 0x{attr.type:04x} {attr_name(attr.type)} "
                         f"({attr.length} bytes): {format_value(decoded, attr)}")
        findings = decoded.findings
    if findings:
        lines.append(f"{indent}  findings: {' '.join(findings)}")
    inner = _inner(decoded)
    if inner is not None:
        lines.append(f"{indent}  carries:")
        lines += tree_lines(*decode_any(inner), keyring, username, realm, indent + "    ")
    return lines


def run(args: argparse.Namespace) -> int:
    """Decode ``args.data`` and print it; returns the exit code."""
    data = _read_stdin() if args.data == "-" else parse_bytes(args.data)
    keyring = options.keyring(args)
    kind, decoded = decode_any(data)
    if args.format == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(to_json(kind, decoded, keyring, args.username, args.realm),
                                             option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write("\n".join(tree_lines(kind, decoded, keyring, args.username, args.realm)) + "\n")
    sys.stdout.flush()
    if isinstance(decoded, DecodeFailure):
        raise InputError(f"not a decodable STUN/ChannelData message ({len(data)} bytes, "
                         f"looks like {kind}): {safe_text(decoded.reason)}")
    return 0
