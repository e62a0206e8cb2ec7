"""A check's outcome: passed, failed or inconclusive (torch-free, read by the masking evaluator and the leaderboard).

A check that compares an interval with a tolerance (e.g. the masking checks' paired CIs of an accuracy gap) has
three outcomes: ``passed`` (the interval lies on the good side of the tolerance: the data exclude the failure),
``failed`` (it lies on the bad side) and ``inconclusive`` (it spans the tolerance: the sample is too small to
tell; the check then says the n that would decide it). A check on a point value (a count, a maximum rise) has the
first two only. Stored checks keep ``passed`` (True only for :attr:`Outcome.PASSED`) beside ``outcome``; files
written before ``outcome`` existed are read from their ``passed`` / ``conclusive`` fields."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    """A check's outcome (its value is what a result file stores)."""

    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return self.value


def interval_outcome(low: float, high: float, tolerance: float) -> Outcome:
    """The outcome of "the quantity is at most ``tolerance``" from its interval ``[low, high]``: failed when the
    whole interval lies above the tolerance, passed when it lies at or below it, else inconclusive."""
    if low > tolerance:
        return Outcome.FAILED
    if high <= tolerance:
        return Outcome.PASSED
    return Outcome.INCONCLUSIVE


def outcome_of(check: Mapping[str, Any]) -> Outcome:
    """A stored check's outcome: its ``outcome`` field, else (older files) ``passed`` with ``conclusive: false``
    read as inconclusive."""
    stored = check.get("outcome")
    if stored in {o.value for o in Outcome}:
        return Outcome(stored)
    if check.get("passed") and check.get("conclusive") is False:
        return Outcome.INCONCLUSIVE
    return Outcome.PASSED if check.get("passed") else Outcome.FAILED


def stored_checks(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A stored result's checks as ``[{"name", "passed", ...}]`` whichever shape it stores them in
    (``details["checks"]`` as a list or a name -> check mapping)."""
    checks = (result.get("details") or {}).get("checks") or []
    if isinstance(checks, Mapping):
        checks = [{"name": name, **(c if isinstance(c, Mapping) else {"passed": bool(c)})}
                  for name, c in checks.items()]
    return [dict(c) for c in checks if isinstance(c, Mapping) and "passed" in c]


def outcome_summary(checks: list[Mapping[str, Any]]) -> str:
    """``"6/8 passed (failed: a; inconclusive: b, n ≈ 240 decides)"``: the passes out of all checks, the failed
    ones and the inconclusive ones with the n that would decide each (``n_to_decide``, where known)."""
    passed = sum(outcome_of(c) is Outcome.PASSED for c in checks)
    failed = [str(c.get("name")) for c in checks if outcome_of(c) is Outcome.FAILED]
    open_ = []
    for c in checks:
        if outcome_of(c) is Outcome.INCONCLUSIVE:
            n = c.get("n_to_decide")
            open_.append(str(c.get("name")) + (f", n ≈ {n} decides" if n else ""))
    parts = ([f"failed: {', '.join(failed)}"] if failed else []) + (
        [f"inconclusive: {'; '.join(open_)}"] if open_ else [])
    return f"{passed}/{len(checks)} passed" + (f" ({'; '.join(parts)})" if parts else "")


__all__ = ["Outcome", "interval_outcome", "outcome_of", "outcome_summary", "stored_checks"]
