"""What ``check``, ``diff`` and the pytest plugin read: a saved analysis JSON or a capture.

A file whose first non-blank byte is ``{`` is taken as ``stunscope analyze --format json``
output; anything else is a capture, analysed on the fly. A capture that turns out damaged still
gives the analysis of every record read before the damage, together with the error, so callers
can report what was read and then exit 3 (DESIGN.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stunscope.errors import InputError

_PEEK_BYTES = 64


@dataclass(frozen=True, slots=True)
class Loaded:
    """An analysis JSON object and, when the input was damaged, the error met while reading."""

    analysis: dict[str, Any]
    error: InputError | None = None


def is_analysis_json(path: Path) -> bool:
    """True when ``path`` holds JSON (its first non-blank byte is ``{``)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_PEEK_BYTES).lstrip()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    return head.startswith(b"{")


def read_analysis_json(path: Path) -> dict[str, Any]:
    """A saved ``analyze --format json`` object; InputError (exit 3) when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("stunscope.analysis/"):
        raise InputError(f"{path}: not a stunscope analysis (expected the JSON of "
                         f"`stunscope analyze --format json`)")
    return data


def analyze_capture(path: Path, keyring: Any = None, sdp: Sequence[Path] = ()) -> Loaded:
    """Analyse a capture; a damaged file yields what was read (marked incomplete) and the error."""
    from stunscope.analysis import analyze_file  # the analysis is only needed for captures

    analysis, error = analyze_file(path, keyring=keyring, sdp=sdp)
    return Loaded(analysis.to_json(), error)


def load(path: Path, keyring: Any = None, sdp: Sequence[Path] = ()) -> Loaded:
    """An analysis JSON object from a saved analysis or a capture."""
    if is_analysis_json(path):
        return Loaded(read_analysis_json(path))
    return analyze_capture(path, keyring, sdp)
