"""The wire codec is pure: importing it loads nothing but the standard library (DESIGN.md layers)."""

from __future__ import annotations

import json
import subprocess
import sys

WIRE_MODULES = ["attributes", "decode", "demux", "encode", "framing", "integrity", "message",
                "registry", "text"]


def test_wire_imports_only_the_standard_library() -> None:
    imports = "; ".join(f"import stunscope.wire.{name}" for name in WIRE_MODULES)
    # Modules the interpreter loads at start-up (site hooks) are not the codec's doing.
    script = f"import sys, json; before = set(sys.modules); {imports}; print(json.dumps(sorted(set(sys.modules) - before)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], check=True,
                                       capture_output=True, text=True).stdout)
    foreign = {
        name.split(".")[0] for name in loaded
        if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith(("stunscope", "_"))
    }
    assert foreign == set()
    assert not [name for name in loaded if name.startswith("stunscope.") and not name.startswith("stunscope.wire")]
