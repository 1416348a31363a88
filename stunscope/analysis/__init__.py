"""State reconstruction from the message stream: transactions, TURN, ICE, NAT, verdicts.

``analyze_file(path)`` for a capture file, ``analyze(events)`` for a whole stream, ``Analyzer`` for incremental use (``feed``/``snapshot``),
``Analysis.to_json()`` for the DESIGN.md contract (schema ``stunscope.analysis/1``).
"""

from stunscope.analysis.analyzer import Analyzer, analyze, analyze_file
from stunscope.analysis.results import SCHEMA, Analysis

__all__ = ["SCHEMA", "Analysis", "Analyzer", "analyze", "analyze_file"]
