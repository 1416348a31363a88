"""Built-in rule profiles (``--profile NAME`` or ``profile = "NAME"`` in a rules file).

Each profile is what a rules file would hold: optional ``profile`` includes and ``rule`` tables
(``name``, ``expect``, ``severity``, ``description``). A rules file may override a profile rule by
giving one of the same name, or switch it off with ``disable = ["name"]``.
"""

from __future__ import annotations

from typing import Any

_ICE_FAILURES = '["ice-failed", "ice-no-response", "ice-auth-failure"]'
_TURN_FAILURES = ('["turn-auth-failure", "turn-allocation-mismatch", "turn-forbidden-peer", '
                  '"turn-allocation-expired", "turn-data-without-permission"]')

PROFILES: dict[str, dict[str, Any]] = {
    "connectivity": {
        "description": "an ICE session connected and none failed",
        "rule": [
            {"name": "ice-connected", "expect": "ice.connected",
             "description": "an ICE session reached the connected state"},
            {"name": "no-ice-failure", "expect": f"no verdicts where code in {_ICE_FAILURES}",
             "description": "no ICE session failed, went unanswered or failed authentication"},
        ],
    },
    "direct": {
        "description": "connectivity, over a pair that is not relayed (host or server-reflexive)",
        "profile": ["connectivity"],
        "rule": [
            {"name": "selected-not-relayed", "expect": "all ice.selected.relayed == false",
             "description": "every selected pair avoids TURN"},
        ],
    },
    "relayed": {
        "description": "connectivity through a TURN relay",
        "profile": ["connectivity", "turn"],
        "rule": [
            {"name": "selected-relayed", "expect": "ice.selected.relayed == true",
             "description": "a selected pair goes through a TURN relay"},
        ],
    },
    "turn": {
        "description": "a TURN allocation succeeded and TURN reported no failure",
        "rule": [
            {"name": "allocation-made", "expect": "allocations.count >= 1",
             "description": "at least one TURN allocation"},
            {"name": "allocate-succeeded",
             "expect": 'any transactions where method == "Allocate" and outcome == "success"',
             "description": "an Allocate request succeeded"},
            {"name": "no-turn-failure", "expect": f"no verdicts where code in {_TURN_FAILURES}",
             "description": "no TURN authentication, mismatch, permission or expiry failure"},
            {"name": "allocate-rtt", "severity": "warning",
             "expect": 'p95(transactions.rtt_ms where method == "Allocate") < 500',
             "description": "Allocate answered within 500 ms (p95)"},
        ],
    },
    "strict": {
        "description": "connectivity, and a clean capture: no errors, timeouts or bad messages",
        "profile": ["connectivity"],
        "rule": [
            {"name": "no-error-verdicts", "expect": 'no verdicts where severity == "error"',
             "description": "no verdict of severity error"},
            {"name": "no-timeouts", "expect": 'no transactions where outcome == "timeout"',
             "description": "every request was answered"},
            {"name": "few-retransmissions", "expect": "all transactions.retransmissions <= 2",
             "description": "no request needed more than two retransmissions"},
            {"name": "fingerprints-valid", "expect": "fingerprint.valid",
             "description": "every FINGERPRINT is valid"},
            {"name": "integrity-valid", "expect": "integrity.valid",
             "description": "every MESSAGE-INTEGRITY that could be checked is valid"},
            {"name": "no-orphan-responses", "severity": "warning",
             "expect": 'no transactions where outcome == "orphan-response"',
             "description": "every response matches a request in the capture"},
        ],
    },
}


def profile_help() -> str:
    """One line per profile with its rules, for ``--help-rules``."""
    lines = []
    for name, profile in PROFILES.items():
        includes = "".join(f" + {p}" for p in profile.get("profile", []))
        lines.append(f"  {name}{includes}: {profile['description']}")
        for rule in profile["rule"]:
            severity = rule.get("severity", "error")
            lines.append(f"      {rule['name']} [{severity}]: {rule['expect']}")
    return "\n".join(lines)
