"""Baselines: compare the story two analyses tell, ignoring what changes from run to run.

Two recordings of the same scenario differ in timestamps, ports, addresses, transaction ids,
nonces, ufrags and RTTs; none of those appear in the story. What does:

- ``verdicts``: the set of verdict codes with their severity;
- ``transactions.METHOD``: the set of outcomes seen for each method (``success``, ``error 401``,
  ``timeout``, ...); ``rtt.METHOD``: the median RTT, changed only beyond a tolerance;
- ``ice``: how many sessions, and for each (in order of first frame) its state, the candidate
  types of its selected pair, whether roles conflicted, and the type pairs that succeeded. Types
  are sorted (``host/relay``) and roles left out, because which agent a capture calls local is
  whichever sent the first check seen;
- ``allocations``: how many, and for each its transport, state, and how many permissions and
  channels it had;
- ``nat``: the set of mapping/filtering behaviours and RFC 3489 types.

Endpoints are therefore never compared as addresses: sessions, allocations and candidates are known
by their order and their role (host/srflx/prflx/relay).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stunscope.check.evaluation import format_value, frames_of
from stunscope.check.outcome import frame_list
from stunscope.check.rules import Rule, RuleResult

RTT_TOLERANCE_MS = 50.0
RTT_TOLERANCE_RATIO = 0.5


@dataclass(frozen=True, slots=True)
class Fact:
    """One line of the story: a value and the frames it comes from. For a set of values
    (verdict codes, outcomes), ``element_frames`` gives the frames behind each element."""

    value: Any
    frames: tuple[int, ...] = ()
    element_frames: dict[str, tuple[int, ...]] | None = None


@dataclass(frozen=True, slots=True)
class Difference:
    """A fact that is not the same in the baseline and the new analysis."""

    key: str
    baseline: Fact | None
    new: Fact | None

    def to_json(self) -> dict[str, Any]:
        """The entry in ``diff --format json``."""
        return {"key": self.key, "baseline": _fact_json(self.baseline), "new": _fact_json(self.new)}

    @property
    def new_frames(self) -> tuple[int, ...]:
        """The frames of the new analysis that show this difference."""
        if self.new is None:
            return ()
        old = self.baseline.value if self.baseline is not None else []
        if self.new.element_frames is not None and isinstance(old, list):
            added = [v for v in self.new.value if v not in old]
            return tuple(sorted({f for v in added for f in self.new.element_frames.get(v, ())}))
        return self.new.frames

    def describe(self) -> str:
        """One line for people: ``key: old -> new``; added and removed elements of a set as
        ``+x`` / ``-y``, each with the frames behind it."""
        old = None if self.baseline is None else self.baseline.value
        new = None if self.new is None else self.new.value
        if isinstance(old, list) and isinstance(new, list):
            parts = [_element("+", v, self.new, "new") for v in new if v not in old]
            parts += [_element("-", v, self.baseline, "baseline") for v in old if v not in new]
            return f"{self.key}: {' '.join(parts)}"
        frames = []
        if self.baseline is not None and self.baseline.frames:
            frames.append(f"baseline frames {frame_list(self.baseline.frames, 10)}")
        if self.new is not None and self.new.frames:
            frames.append(f"new frames {frame_list(self.new.frames, 10)}")
        text = f"{self.key}: {_shown(old)} -> {_shown(new)}"
        return text + (f"  ({'; '.join(frames)})" if frames else "")


def _element(sign: str, value: Any, fact: Fact | None, side: str) -> str:
    frames = (fact.element_frames or {}).get(value, ()) if fact is not None else ()
    suffix = f" ({side} frames {frame_list(frames, 5)})" if frames else ""
    return f"{sign}{format_value(value)}{suffix}"


def _fact_json(fact: Fact | None) -> dict[str, Any] | None:
    if fact is None:
        return None
    document = {"value": fact.value, "frames": list(fact.frames)}
    if fact.element_frames is not None:
        document["element_frames"] = {k: list(v) for k, v in fact.element_frames.items()}
    return document


def _shown(value: Any) -> str:
    if value is None:
        return "absent"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return format_value(value)


def _set_fact(elements: list[tuple[str, dict[str, Any]]]) -> Fact:
    """A set of strings, each with the frames of the objects that gave it."""
    frames: dict[str, set[int]] = {}
    for element, obj in elements:
        frames.setdefault(element, set()).update(frames_of([obj]))
    return Fact(sorted(frames), (), {k: tuple(sorted(v)) for k, v in frames.items()})


def _objects(analysis: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [o for o in analysis.get(key) or [] if isinstance(o, dict)]


def _frames(obj: dict[str, Any]) -> tuple[int, ...]:
    return tuple(frames_of([obj]))


def _outcome(transaction: dict[str, Any]) -> str:
    outcome = str(transaction.get("outcome"))
    code = transaction.get("error_code")
    return f"{outcome} {code}" if outcome == "error" and code is not None else outcome


def _pair_types(pair: Any) -> str | None:
    """The pair's candidate types, sorted: which agent a capture calls local is a race (the
    first check seen), so ``host/relay`` and ``relay/host`` are the same story."""
    if not isinstance(pair, dict):
        return None
    return "/".join(sorted((str(pair.get("local_type")), str(pair.get("remote_type")))))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def story(analysis: dict[str, Any]) -> dict[str, Fact]:
    """The facts of an analysis JSON object that a baseline comparison looks at, by key."""
    facts: dict[str, Fact] = {}
    verdicts = _objects(analysis, "verdicts")
    facts["verdicts"] = _set_fact([(f"{v.get('code')} ({v.get('severity')})", v) for v in verdicts])
    by_method: dict[str, list[dict[str, Any]]] = {}
    for transaction in _objects(analysis, "transactions"):
        by_method.setdefault(str(transaction.get("method")), []).append(transaction)
    for method, transactions in sorted(by_method.items()):
        facts[f"transactions.{method}"] = _set_fact([(_outcome(t), t) for t in transactions])
        rtts = [t["rtt_ms"] for t in transactions if isinstance(t.get("rtt_ms"), (int, float))]
        if rtts:
            facts[f"rtt.{method}"] = Fact(round(_median(rtts), 3))
    sessions = _objects(analysis, "ice")
    facts["ice.sessions"] = Fact(len(sessions))
    for number, session in enumerate(sessions, 1):
        prefix = f"ice[{number}]"
        selected = session.get("selected_pair")
        facts[f"{prefix}.state"] = Fact(session.get("state"), _frames(session))
        facts[f"{prefix}.selected"] = Fact(_pair_types(selected),
                                           _frames(selected) if isinstance(selected, dict) else ())
        facts[f"{prefix}.role_conflict"] = Fact(bool(session.get("role_conflicts")))
        succeeded = [p for p in session.get("pairs") or [] if isinstance(p, dict)
                     and p.get("state") == "succeeded"]
        facts[f"{prefix}.succeeded_pairs"] = _set_fact([(_pair_types(p) or "", p) for p in succeeded])
    allocations = _objects(analysis, "allocations")
    facts["allocations"] = Fact(len(allocations))
    for number, allocation in enumerate(allocations, 1):
        prefix = f"allocations[{number}]"
        frames = _frames(allocation)
        facts[f"{prefix}.transport"] = Fact(allocation.get("transport"), frames)
        facts[f"{prefix}.state"] = Fact(allocation.get("state"), frames)
        facts[f"{prefix}.permissions"] = Fact(len(allocation.get("permissions") or []), frames)
        facts[f"{prefix}.channels"] = Fact(len(allocation.get("channels") or []), frames)
    facts["nat"] = Fact(sorted({
        f"{n.get('mapping_behavior')} mapping, {n.get('filtering_behavior')} filtering, "
        f"{n.get('rfc3489_type')}" for n in _objects(analysis, "nat")
    }))
    return facts


def _rtt_changed(old: Any, new: Any, tolerance_ms: float) -> bool:
    return abs(new - old) > tolerance_ms + RTT_TOLERANCE_RATIO * old


def compare(baseline: dict[str, Any], new: dict[str, Any],
            rtt_tolerance_ms: float = RTT_TOLERANCE_MS) -> list[Difference]:
    """The differences between two analysis JSON objects' stories, in key order.

    A median RTT counts as changed when it moves by more than ``rtt_tolerance_ms`` plus half
    the baseline's value (a method present on one side only shows in ``transactions.METHOD``).
    A session or allocation present on one side only is one difference with all its facts.
    """
    old_story, new_story = story(baseline), story(new)
    differences = []
    for key in sorted(set(old_story) | set(new_story), key=_key_order):
        old, fresh = old_story.get(key), new_story.get(key)
        if key.startswith("rtt."):
            if old is None or fresh is None or not _rtt_changed(old.value, fresh.value, rtt_tolerance_ms):
                continue
        elif old is not None and fresh is not None and old.value == fresh.value:
            continue
        differences.append(Difference(key, old, fresh))
    return _merge_one_sided(differences)


def _merge_one_sided(differences: list[Difference]) -> list[Difference]:
    """Fold ``ice[2].state``, ``ice[2].selected`` ... into one ``ice[2]`` when one side lacks it."""
    merged: list[Difference] = []
    groups: dict[str, list[Difference]] = {}
    for difference in differences:
        head, _, field = difference.key.partition(".")
        if "[" in head and field and (difference.baseline is None or difference.new is None):
            if head not in groups:
                groups[head] = []
                merged.append(Difference(head, None, None))
            groups[head].append(difference)
        else:
            merged.append(difference)
    out = []
    for difference in merged:
        parts = groups.get(difference.key) if difference.baseline is None and difference.new is None else None
        if parts is None:
            out.append(difference)
            continue
        out.append(Difference(difference.key, _combined(parts, "baseline"), _combined(parts, "new")))
    return out


def _combined(parts: list[Difference], side: str) -> Fact | None:
    facts = {d.key.partition(".")[2]: getattr(d, side) for d in parts}
    if any(f is None for f in facts.values()):
        return None
    frames = sorted({f for fact in facts.values() for f in fact.frames})
    return Fact({name: fact.value for name, fact in facts.items()}, tuple(frames))


def _key_order(key: str) -> tuple[int, str]:
    """Sort keys by section (verdicts, ice, allocations, transactions, rtt, nat), then naturally."""
    sections = ("verdicts", "ice", "allocations", "transactions", "rtt", "nat")
    head = key.split(".")[0].split("[")[0]
    rank = sections.index(head) if head in sections else len(sections)
    return rank, key


def baseline_result(differences: list[Difference], baseline: str) -> RuleResult:
    """``check --baseline``: one rule result, failed when the story changed."""
    rule = Rule("matches baseline", f"the same story as {baseline}", None,
                description="verdicts, ICE outcome, allocations and transaction outcomes unchanged")
    if not differences:
        return RuleResult(rule, "pass")
    frames = sorted({f for d in differences for f in d.new_frames})
    return RuleResult(rule, "fail", [d.describe() for d in differences], frames)
