"""Shared argparse helpers for the commands: capture input, credentials, output format.

Every command that reads a capture or checks MESSAGE-INTEGRITY uses these, so the flags read
the same everywhere::

    from stunscope.cli import options

    def register(subparsers):
        parser = subparsers.add_parser("analyze", ...)
        options.add_capture(parser)
        options.add_credentials(parser)
        options.add_format(parser, ("text", "json"))
        parser.set_defaults(func=run)

    def run(args):
        path = options.capture_path(args)        # UsageError (exit 2) when missing
        keyring = options.keyring(args)          # None when no credential was given
        ...

Credentials come from ``--credential`` (repeatable), ``--credentials-file`` (one per line, ``#``
comments), the ``STUNSCOPE_CREDENTIALS`` environment variable (whitespace-separated) and
``--ice-pwd`` (repeatable, short-term). The syntax is that of
:mod:`stunscope.wire.integrity` (``USER:PASSWORD``, ``REALM/USER:PASSWORD``, ``ice=PASSWORD``).
Secrets are never printed back: errors name the entry by position only, and ``--help`` shows no
default values for these flags.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from stunscope.errors import InputError, UsageError
from stunscope.wire.integrity import CREDENTIALS_ENV, Keyring, parse_credential, parse_credentials_text

__all__ = [
    "CREDENTIALS_HELP",
    "add_analysis_input",
    "add_capture",
    "add_credentials",
    "add_format",
    "capture_path",
    "keyring",
]

CREDENTIALS_HELP = f"""\
credentials (to verify MESSAGE-INTEGRITY; never printed back):
  --credential USER:PASSWORD          long-term, realm taken from the message
  --credential REALM/USER:PASSWORD    long-term, only for that realm
  --credential ice=PASSWORD           short-term (same as --ice-pwd PASSWORD)
  --credentials-file FILE             one credential per line, '#' comments
  ${CREDENTIALS_ENV}              whitespace-separated credentials
  percent-encode ':' '/' ' ' '%' inside fields (%3A %2F %20 %25)
"""
"""Text for a command's epilog, explaining the credential flags."""


def add_capture(parser: argparse.ArgumentParser, *, help_text: str | None = None) -> None:
    """Add the positional ``FILE`` (pcap, pcapng, optionally gzip-compressed)."""
    parser.add_argument(
        "file", metavar="FILE", type=Path,
        help=help_text or "capture file: pcap or pcapng, optionally gzip-compressed")


def add_credentials(parser: argparse.ArgumentParser) -> None:
    """Add ``--credential`` (repeatable), ``--credentials-file`` and ``--ice-pwd`` (repeatable)."""
    group = parser.add_argument_group("credentials")
    group.add_argument(
        "--credential", action="append", default=[], metavar="CRED",
        help="USER:PASSWORD, REALM/USER:PASSWORD or ice=PASSWORD (repeatable)")
    group.add_argument(
        "--credentials-file", type=Path, metavar="FILE",
        help="file with one credential per line")
    group.add_argument(
        "--ice-pwd", action="append", default=[], metavar="PASSWORD",
        help="ICE password (a=ice-pwd), a short-term credential (repeatable)")


def add_analysis_input(parser: argparse.ArgumentParser) -> None:
    """``--sdp`` (repeatable) and the credential flags: what the analysis of a capture needs to
    check MESSAGE-INTEGRITY and label candidates (RFC 8839 §5.1, §5.4)."""
    parser.add_argument("--sdp", action="append", default=[], type=Path, metavar="FILE",
                        help="SDP offer/answer for the capture: ICE passwords and candidate "
                             "types (repeatable)")
    add_credentials(parser)


def add_format(parser: argparse.ArgumentParser, choices: tuple[str, ...], default: str | None = None) -> None:
    """Add ``--format`` with ``choices``; the default is the first choice unless given."""
    parser.add_argument(
        "--format", choices=choices, default=default or choices[0],
        help=f"output format (default: {default or choices[0]})")


def capture_path(args: argparse.Namespace) -> Path:
    """The capture path of ``args.file``; InputError (exit 3) when it is not a readable file."""
    path: Path = args.file
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a capture file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")
    return path


def keyring(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Keyring | None:
    """The Keyring from every credential source, or None when no credential was given.

    A malformed credential is a UsageError (exit 2) naming its source and position, never its
    text; an unreadable credentials file is an InputError (exit 3).
    """
    env = os.environ if environ is None else environ
    ring = Keyring()
    for number, text in enumerate(getattr(args, "credential", []), 1):
        try:
            ring.add(parse_credential(text))
        except ValueError as exc:
            raise UsageError(f"--credential #{number}: {exc}") from None
    cred_file: Path | None = getattr(args, "credentials_file", None)
    if cred_file is not None:
        try:
            text = cred_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise InputError(f"--credentials-file {cred_file}: {reason}") from None
        try:
            for credential in parse_credentials_text(text):
                ring.add(credential)
        except ValueError as exc:
            raise UsageError(f"--credentials-file {cred_file}: {exc}") from None
    if env.get(CREDENTIALS_ENV):
        try:
            for credential in parse_credentials_text(env[CREDENTIALS_ENV], lines=False):
                ring.add(credential)
        except ValueError as exc:
            raise UsageError(f"${CREDENTIALS_ENV}: {exc}") from None
    for password in getattr(args, "ice_pwd", []):
        password = password.strip()  # as parse_credential does: a pasted SDP line ends in CR LF
        if not password:
            raise UsageError("--ice-pwd: empty password")
        ring.add_short_term(password)
    return ring if len(ring) else None
