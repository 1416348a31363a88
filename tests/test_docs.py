"""The docs cannot drift from the code: docs/architecture.md lists every module of every package
with the first paragraph of its docstring, and the README's verdict table has every code the
analysis can give."""

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


def test_the_readme_lists_every_verdict_code() -> None:
    """Every code of the list in analysis/verdicts.py's docstring (which the code is checked
    against in test_every_emitted_verdict_is_documented) has a row in the README's table."""
    codes = _documented_codes()
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("### Verdicts"):readme.index("### The TUI")]
    assert codes and {code for code in codes if f"`{code}`" not in table} == set()


def _documented_codes() -> set[str]:
    docstring = ast.get_docstring(ast.parse((ROOT / "stunscope/analysis/verdicts.py").read_text())) or ""
    listed = docstring[docstring.index("Codes (severity):"):docstring.index("The SDP's verdicts")]
    return set(re.findall(r"[a-z]+(?:-[a-z]+)+", listed))


def test_every_emitted_verdict_is_documented() -> None:
    """The analysis of every bundled capture (with its SDP) gives only codes the docstring lists."""
    from conftest import bundled_captures

    from stunscope.analysis.analyzer import analyze_file

    emitted = set()
    for path in bundled_captures():
        sdp = [path.with_suffix(".sdp")] if path.with_suffix(".sdp").exists() else []
        emitted |= {v.code for v in analyze_file(path, sdp=sdp)[0].verdicts}
    assert len(emitted) > 10 and emitted - _documented_codes() == set()
