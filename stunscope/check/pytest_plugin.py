"""pytest plugin (entry point ``pytest11``): open captures in tests and assert on their analysis.

Options: ``--stunscope-captures DIR`` or the ini key ``stunscope_captures`` (relative to the
rootdir) say where captures live; the default is ``captures/`` under the rootdir.

Fixtures:

- ``stunscope_capture``: a function ``(name, *, sdp=None, credentials=(), allow_damaged=False)
  -> CaptureAnalysis``; ``name`` is relative to the captures folder (or absolute); ``sdp=None``
  reads the sidecar ``NAME.sdp`` when there is one; ``credentials`` are ``USER:PASSWORD`` /
  ``ice=PASSWORD`` strings. A damaged capture fails the test unless ``allow_damaged`` (then
  ``.input_error`` says what happened). Each capture is analysed once per test.
- ``stun_analysis``: the analysis of the capture named by ``@pytest.mark.stunscope_capture(NAME)``.
- ``stunscope_captures_dir``: the captures folder.

Assertions live in :mod:`stunscope.check.assertions` (``assert_connected``,
``assert_no_verdict``, ``assert_rule``); rules over ``messages`` (the objects of
``stunscope messages --format jsonl``) read the capture in one more streaming pass, and
``CaptureAnalysis.messages()`` streams those objects. Importing this module (pytest does, in every run once
stunscope is installed) imports only pytest and the standard library; the analysis is imported
when a fixture is used. ``-p no:stunscope`` switches the plugin off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from stunscope.check.assertions import CaptureAnalysis

OPTION = "--stunscope-captures"
INI = "stunscope_captures"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--stunscope-captures`` and the ini key ``stunscope_captures``."""
    group = parser.getgroup("stunscope", "stunscope capture analysis")
    group.addoption(OPTION, dest="stunscope_captures", metavar="DIR", default=None,
                    help="folder of captures for the stunscope_capture fixture "
                         "(default: captures/ under the rootdir)")
    parser.addini(INI, "folder of captures for the stunscope_capture fixture (relative to the rootdir)",
                  default="")


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker, so ``--strict-markers`` runs accept it."""
    config.addinivalue_line("markers", "stunscope_capture(name): the capture stun_analysis opens")


def captures_dir(config: pytest.Config) -> Path:
    """Where captures are looked up: the option, else the ini key, else ``captures/``."""
    option = config.getoption("stunscope_captures")
    if option:
        return Path(option).resolve()
    ini = config.getini(INI)
    if ini:
        return (config.rootpath / str(ini)).resolve()
    return config.rootpath / "captures"


@pytest.fixture
def stunscope_captures_dir(pytestconfig: pytest.Config) -> Path:
    """The folder captures are looked up in."""
    return captures_dir(pytestconfig)


@pytest.fixture
def stunscope_capture(stunscope_captures_dir: Path) -> Callable[..., "CaptureAnalysis"]:
    """Open a capture by name and return its analysis (see the module docstring)."""
    from stunscope.check.assertions import CaptureAnalysis
    from stunscope.errors import StunscopeError
    from stunscope.wire.integrity import Keyring, parse_credential

    opened: dict[tuple[Path, tuple[Path, ...], tuple[str, ...]], CaptureAnalysis] = {}

    def open_capture(name: str | Path, *, sdp: Sequence[str | Path] | None = None,
                     credentials: Sequence[str] = (), allow_damaged: bool = False) -> CaptureAnalysis:
        path = stunscope_captures_dir / name
        if not path.is_file():
            pytest.fail(f"stunscope: capture {name} not found in {stunscope_captures_dir} "
                        f"(set {OPTION} or the ini key {INI})", pytrace=False)
        if sdp is None:
            sidecar = path.with_suffix(".sdp")
            sdp_paths = (sidecar,) if sidecar.is_file() else ()
        else:
            sdp_paths = tuple(stunscope_captures_dir / s for s in sdp)
        key = (path, sdp_paths, tuple(credentials))
        if key not in opened:
            keyring = None
            if credentials:
                keyring = Keyring()
                for number, text in enumerate(credentials, 1):
                    try:
                        keyring.add(parse_credential(text))
                    except ValueError as exc:
                        pytest.fail(f"stunscope: credential #{number}: {exc}", pytrace=False)
            try:
                opened[key] = CaptureAnalysis.from_file(path, keyring, sdp_paths)
            except StunscopeError as exc:
                pytest.fail(f"stunscope: {exc}", pytrace=False)
        analysis = opened[key]
        if analysis.input_error is not None and not allow_damaged:
            pytest.fail(f"stunscope: {analysis.input_error} (pass allow_damaged=True to test "
                        f"what was read)", pytrace=False)
        return analysis

    return open_capture


@pytest.fixture
def stun_analysis(request: pytest.FixtureRequest,
                  stunscope_capture: Callable[..., "CaptureAnalysis"]) -> "CaptureAnalysis":
    """The analysis of the capture named by ``@pytest.mark.stunscope_capture(NAME)``."""
    marker = request.node.get_closest_marker("stunscope_capture")
    if marker is None or not marker.args:
        pytest.fail("stun_analysis needs @pytest.mark.stunscope_capture(NAME)", pytrace=False)
    return stunscope_capture(marker.args[0], **marker.kwargs)
