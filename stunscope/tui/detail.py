"""The detail pane: the selected message as a tree (frame, header, attributes, findings, pairing).

Each node that stands for bytes carries their ``(offset, length)`` in the message, so the hex view
can highlight what the cursor is on. Labels are Rich ``Text`` built from plain strings (never
markup), and wire strings pass through ``safe_text`` (``format_value`` does it for values), so a
``[bold]`` or an escape sequence in a SOFTWARE attribute is shown, not obeyed.
"""

from __future__ import annotations

from datetime import datetime, timezone

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from stunscope.tui.index import RELAYED_COPY, RETRANSMISSION, TCP, MessageIndex, Outcome
from stunscope.tui.summary import decode_row, row_label
from stunscope.wire.attributes import format_value, realm, username
from stunscope.wire.decode import FINDINGS
from stunscope.wire.integrity import Keyring, check_fingerprint, check_integrity
from stunscope.wire.message import ChannelData, DecodeFailure, MessageClass, StunMessage
from stunscope.wire.registry import attr_name
from stunscope.wire.text import safe_text

Span = tuple[int, int]

class DetailTree(Tree[Span]):
    """Attribute tree of one index row; node data is the byte span it describes."""

    DEFAULT_CSS = """
    DetailTree { height: 1fr; scrollbar-size-horizontal: 0; }
    """

    def __init__(self, index: MessageIndex, keyring: Keyring | None, **kwargs: object) -> None:
        super().__init__(Text("no message selected"), **kwargs)  # type: ignore[arg-type]
        self.index = index
        self.keyring = keyring
        self.row: int | None = None
        self.show_root = True
        self.guide_depth = 2

    def show_row(self, row: int | None) -> bytes:
        """Fill the tree for ``row``; returns the message bytes for the hex view."""
        self.row = row
        self.clear()
        if row is None:
            self.root.set_label(Text("no message selected"))
            return b""
        index = self.index
        self.root.set_label(Text(f"Frame {index.frame[row]}: {row_label(index, row)}", "bold"))
        frame = self._frame_node(row)
        decoded = decode_row(index, row)
        data = index.message_bytes(row)
        if isinstance(decoded, str):
            self.root.add_leaf(Text(decoded))
            data = b""
        elif isinstance(decoded, DecodeFailure):
            self.root.add_leaf(Text(f"undecodable: {decoded.reason} at byte {decoded.offset}"),
                               data=(decoded.offset, max(1, len(data) - decoded.offset)))
            self.root.add_leaf(Text(safe_text(decoded.detail)))
        elif isinstance(decoded, ChannelData):
            self._channeldata(decoded)
        else:
            self._stun(row, decoded)
        self.root.expand_all()
        frame.collapse()
        self.move_cursor(self.root)
        return data

    def _frame_node(self, row: int) -> TreeNode[Span]:
        index = self.index
        when = datetime.fromtimestamp(index.ts[row], timezone.utc)
        node = self.root.add(Text(
            f"{index.endpoints[index.src[row]]} → {index.endpoints[index.dst[row]]}"
        ))
        node.add_leaf(Text(f"time {when:%Y-%m-%d %H:%M:%S.%f} UTC"))
        transport = "tcp" if index.flags[row] & TCP else "udp"
        tunnel = index.tunnel(row)
        via = f", tunnelled via {tunnel}" if tunnel else ""
        node.add_leaf(Text(f"transport {transport}{via}"))
        return node

    def _channeldata(self, message: ChannelData) -> None:
        self.root.add_leaf(Text(f"channel 0x{message.channel:04x}"), data=(0, 2))
        self.root.add_leaf(Text(f"length {message.length}"), data=(2, 2))
        kept = f" (first {len(message.data)} shown)" if len(message.data) < message.length else ""
        self.root.add_leaf(Text(f"application data, {message.length} bytes{kept}"),
                           data=(4, len(message.data)))

    def _stun(self, row: int, message: StunMessage) -> None:
        index = self.index
        header = self.root.add(Text("header"), data=(0, 20))
        header.add_leaf(Text(f"type 0x{message.msg_type:04x}: {row_label(index, row)}"),
                        data=(0, 2))
        header.add_leaf(Text(f"length {message.length}"), data=(2, 2))
        if message.magic:
            header.add_leaf(Text("magic cookie 0x2112a442"), data=(4, 4))
            header.add_leaf(Text(f"transaction id {message.txid.hex()}"), data=(8, 12))
        else:
            header.add_leaf(Text(f"transaction id {message.txid.hex()} (classic RFC 3489)"),
                            data=(4, 16))
        attributes = self.root.add(Text(f"attributes ({len(message.attributes)})"))
        for attr in message.attributes:
            label = Text.assemble(
                (attr_name(attr.type), "bold"),
                f"  {format_value(message, attr)}",
                (f"  @{attr.offset}+{attr.length}", "dim"),
            )
            attributes.add_leaf(label, data=(attr.offset, 4 + len(attr.raw)))
        self._findings(message.findings)
        self._checks(row, message)
        self._pairing(row, message)

    def _findings(self, findings: tuple[str, ...]) -> None:
        if not findings:
            return
        node = self.root.add(Text(f"findings ({len(findings)})", "bold red"))
        for code in findings:
            node.add_leaf(Text(f"{code}: {FINDINGS.get(code, '')}".rstrip(": ")))

    def _checks(self, row: int, message: StunMessage) -> None:
        """FINGERPRINT and MESSAGE-INTEGRITY verdicts (a response is checked with the USERNAME
        of its request)."""
        fingerprint = check_fingerprint(message)
        user = request_realm = None
        partner = self.index.partner[row]
        if message.cls in (MessageClass.SUCCESS, MessageClass.ERROR) and partner >= 0:
            request = decode_row(self.index, partner)
            if isinstance(request, StunMessage):
                user, request_realm = username(request), realm(request)
        integrity = check_integrity(message, self.keyring, user, request_realm)
        for name, result in (("FINGERPRINT", fingerprint), ("MESSAGE-INTEGRITY", integrity)):
            if result is not None:
                style = {"ok": "green", "bad": "bold red"}.get(result, "yellow")
                hint = " (give --credential, --ice-pwd or --sdp)" if result == "no-key" else ""
                self.root.add_leaf(Text.assemble(f"{name} ", (result, style), hint))

    def _pairing(self, row: int, message: StunMessage) -> None:
        index = self.index
        partner = index.partner[row]
        retx = index.retransmissions[row]
        if index.flags[row] & RELAYED_COPY:
            first = index.partner[partner] if message.cls != MessageClass.REQUEST else partner
            text = f"frame {index.frame[first]} again, on the other leg of the TURN relay"
        elif message.cls == MessageClass.REQUEST:
            if index.flags[row] & RETRANSMISSION:
                text = f"retransmission of frame {index.frame[partner]}"
            elif partner >= 0:
                rtt = (index.ts[partner] - index.ts[row]) * 1000
                text = f"answered in frame {index.frame[partner]} after {rtt:.1f} ms"
            else:
                text = f"unanswered ({Outcome(index.outcome[row]).name.lower()})"
            if retx:
                text += f"; {retx} retransmission{'s' if retx > 1 else ''}"
        elif message.cls != MessageClass.INDICATION:
            text = f"answers frame {index.frame[partner]}" if partner >= 0 else \
                "no request seen (orphan response)"
            if partner >= 0 and index.flags[row] & RETRANSMISSION:
                text += f" again (its first answer is frame {index.frame[index.partner[partner]]})"
        else:
            return
        self.root.add_leaf(Text(text, "italic"))

