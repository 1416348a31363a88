"""pytest plugin (entry point ``pytest11``): fixtures to open captures and assert on their analysis.

Kept light: importing this module (which pytest does for every run once stunscope is installed)
imports only pytest and the standard library; the analysis is imported when a fixture is used.
"""

from __future__ import annotations
