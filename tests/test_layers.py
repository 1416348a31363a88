"""DESIGN.md layering: headless modules never pull in textual or scapy (heavy imports stay lazy)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import stunscope

HEAVY = ("textual", "scapy", "pyshark")


def _headless_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(stunscope.__path__, "stunscope."):
        if info.name.startswith("stunscope.tui") or info.name == "stunscope.capture.live":
            continue
        if info.name in ("stunscope.__main__", "stunscope.check.pytest_plugin"):
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("module", _headless_modules())
def test_headless_module_imports_no_heavy_package(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"


def test_cli_parser_builds_without_heavy_imports() -> None:
    code = (
        "import sys\nfrom stunscope.cli import build_parser\nbuild_parser()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
