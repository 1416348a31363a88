"""``stunscope messages FILE``: one line (or one JSON object) per STUN/TURN message.

Streams the capture: events are formatted as they are decoded and written in batches to the
binary stdout, so memory stays flat and a pipe into ``head`` stops early. On a damaged capture
everything before the damage is printed first, then one line on stderr and exit code 3.
"""

from __future__ import annotations

import argparse
import sys

from stunscope.capture.stream import open_events
from stunscope.cli import options
from stunscope.report.messages import MessageFormatter

_BATCH = 2048
"""Events formatted per write: large enough to amortise the write call, small enough that
``messages | head`` shows its first lines at once."""

EPILOG = f"""\
examples:
  stunscope messages call.pcapng
  stunscope messages call.pcapng --format jsonl | jq 'select(.class == "error")'
  stunscope messages turn.pcap --credential alice:secret          check MESSAGE-INTEGRITY
  stunscope messages ice.pcap --ice-pwd 4pWbUG3H7v5xBhz2           ICE short-term password
  stunscope messages ice.pcap --sdp offer.sdp --sdp answer.sdp     their a=ice-pwd values

text columns: frame, time since the first event, src → dst, transport, method class,
[error], tx=first 8 hex digits of the transaction id, mapped=/relayed=/peer= addresses,
channel=, rtt= (request seen), fp= FINGERPRINT and mi= MESSAGE-INTEGRITY, -SHA256 or
GOOG-MESSAGE-INTEGRITY-32 (ok/bad/no-key),
'! findings'. [in channeldata 0x4000] / [in send peer ...] marks tunnelled messages.
jsonl: one object per message, JSON contract v1 (DESIGN.md), plus kind "undecodable" and
"icmp-unreachable" events.

{options.CREDENTIALS_HELP}
exit codes: 0 ok, 2 usage error, 3 unreadable or damaged capture (after printing what was read)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``messages`` command."""
    parser = subparsers.add_parser(
        "messages", help="one line per STUN/TURN/ChannelData message",
        description="List every STUN, classic STUN and ChannelData message of a capture, "
                    "including messages tunnelled in ChannelData and Send/Data indications.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_capture(parser)
    options.add_format(parser, ("text", "jsonl"))
    options.add_analysis_input(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the messages of ``args.file`` in ``args.format``; returns the exit code."""
    path = options.capture_path(args)
    keyring = options.keyring(args)
    if args.sdp:  # imported only then: keeps the analysis off the command's startup
        from stunscope.analysis.sdp import keyring_with_sdp

        keyring = keyring_with_sdp(keyring, args.sdp)
    formatter = MessageFormatter(keyring)
    out = sys.stdout.buffer
    batch: list[bytes] = []
    try:
        if args.format == "jsonl":
            import orjson

            dumps = orjson.dumps
            to_json = formatter.to_json
            for event in open_events(path, parallel=None):
                batch.append(dumps(to_json(event)))
                if len(batch) >= _BATCH:
                    out.write(b"\n".join(batch) + b"\n")
                    batch.clear()
        else:
            line = formatter.line
            for event in open_events(path, parallel=None):
                batch.append(line(event).encode())
                if len(batch) >= _BATCH:
                    out.write(b"\n".join(batch) + b"\n")
                    batch.clear()
    finally:
        # Runs on a capture error too: the good lines come out before the error line.
        if batch:
            out.write(b"\n".join(batch) + b"\n")
        out.flush()
    return 0
