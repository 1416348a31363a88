"""docs/architecture.md lists every module of every package with the first paragraph of its
docstring, so the map cannot drift from the code."""

from __future__ import annotations

import ast
import re

import pytest
from conftest import ROOT

DOC = ROOT / "docs" / "architecture.md"
TABLE = re.compile(r"^### `stunscope/(\w+)/`\n\n\| module \| what it holds \|\n\|---\|---\|\n((?:\|.*\n)+)", re.M)
ROW = re.compile(r"^\| `([\w.]+)` \| (.*) \|$", re.M)
PACKAGES = sorted(p.parent.name for p in (ROOT / "stunscope").glob("*/__init__.py"))


def _tables() -> dict[str, dict[str, str]]:
    return {package: dict(ROW.findall(body)) for package, body in TABLE.findall(DOC.read_text())}


def _summary(path: str) -> str:
    docstring = ast.get_docstring(ast.parse((ROOT / path).read_text())) or ""
    return " ".join(docstring.split("\n\n")[0].split())


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_is_listed_with_its_docstring(package: str) -> None:
    listed = _tables().get(package)
    assert listed is not None, f"docs/architecture.md has no table for stunscope/{package}/"
    modules = sorted(p.name for p in (ROOT / "stunscope" / package).glob("*.py") if p.name != "__init__.py")
    assert sorted(listed) == modules
    assert {name: listed[name] for name in modules} == {
        name: _summary(f"stunscope/{package}/{name}") for name in modules}
