"""JUnit XML for ``check --junit FILE``: one testsuite per input, one testcase per rule.

The layout CI servers read (Jenkins, GitLab, GitHub test reporters): ``testsuites`` >
``testsuite`` (tests/failures/errors/skipped counts) > ``testcase`` (classname, name, and the
seconds the rule took to evaluate) with a ``failure`` (message attribute, evidence text) for a
failed error-severity rule and an ``error`` for one that could not be evaluated. A failed warning-severity rule stays a passing testcase with
the warning in ``system-out``, so it does not turn the pipeline red (unless ``--fail-on-warning``,
which makes it a ``failure`` too). A damaged input adds a testcase
``capture readable`` with an ``error``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from stunscope.check.outcome import CheckOutcome, frame_list
from stunscope.check.rules import RuleResult
from stunscope.errors import UsageError

# Characters XML 1.0 cannot carry (wire strings may hold any of them).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _details(result: RuleResult) -> str:
    lines = [f"expected: {result.rule.expect}"]
    lines += [f"found: {found}" for found in result.found]
    lines.append(f"frames: {frame_list(result.frames) if result.frames else '(none)'}")
    return "\n".join(lines)


def junit_tree(outcome: CheckOutcome) -> ET.ElementTree:
    """The JUnit document for one check run."""
    suite_name = f"stunscope check {outcome.source}"
    classname = "stunscope." + re.sub(r"[^A-Za-z0-9_-]+", "_", Path(outcome.source).stem or "input")
    cases = []
    failures = errors = 0
    for result in outcome.results:
        case = ET.Element("testcase", classname=classname, name=_text(result.rule.name),
                          time=f"{result.seconds:.6f}")
        if result.status == "error":
            errors += 1
            ET.SubElement(case, "error", message=_text(result.message), type="rule-error").text = \
                _text(f"expected: {result.rule.expect}\n{result.message}")
        elif outcome.fails_run(result):
            failures += 1
            message = f"expected {result.rule.expect}; found {'; '.join(result.found)}"
            ET.SubElement(case, "failure", message=_text(message), type=result.rule.severity).text = \
                _text(_details(result))
        elif result.failed:
            ET.SubElement(case, "system-out").text = _text("warning: " + _details(result))
        cases.append(case)
    if outcome.input_error is not None:
        errors += 1
        case = ET.Element("testcase", classname=classname, name="capture readable", time="0")
        ET.SubElement(case, "error", message=_text(str(outcome.input_error)), type="input-error")
        cases.append(case)
    seconds = sum(result.seconds for result in outcome.results)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": str(errors),
              "skipped": "0", "time": f"{seconds:.6f}"}
    root = ET.Element("testsuites", name="stunscope", **counts)
    suite = ET.SubElement(root, "testsuite", name=_text(suite_name), **counts)
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="source", value=_text(outcome.source))
    suite.extend(cases)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(outcome: CheckOutcome, path: Path) -> None:
    """Write the JUnit document; an unwritable path is a usage error (exit 2)."""
    try:
        with path.open("wb") as handle:
            junit_tree(outcome).write(handle, encoding="utf-8", xml_declaration=True)
            handle.write(b"\n")
    except OSError as exc:
        raise UsageError(f"--junit {path}: {exc.strerror or exc}") from None
