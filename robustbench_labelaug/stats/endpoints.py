"""The verdict table over a study's pre-specified endpoints: each effect with its interval, its p-value adjusted
by Holm's step-down procedure over the endpoints (family-wise error at ``alpha``; S. Holm, Scand. J. Stat. 6,
1979; ``stats.paired.holm``, the one implementation), and, where the effect is not significant, the
equivalence bound (:mod:`.equivalence`).

Only the endpoints declared before the data were seen belong in the family: adding endpoints after the fact
breaks the error control Holm's procedure gives. Intervals are the unadjusted ``level`` intervals; the adjusted p
decides significance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import UserError
from .equivalence import equivalence_bound, includes_zero
from .paired import holm


def endpoint_verdicts(endpoints: Mapping[str, Mapping[str, Any]], alpha: float = 0.05,
                      directions: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """``endpoints``: name -> ``{"diff", "ci", "p"}`` (e.g. one statistic of
    :func:`.bootstrap.difference`), in the pre-specified order. Returns name -> the same plus ``p_holm``,
    ``significant`` (``p_holm < alpha``) and ``equivalence_bound`` (the two-sided bound, or the side named in
    ``directions[name]``: ``decrease`` / ``increase``) wherever the effect is not significant after the adjustment
    (None where it is, or where the interval is missing), and ``ci_includes_zero``."""
    if not 0 < alpha < 1:
        raise UserError(f"alpha must be in (0, 1), e.g. 0.05, got {alpha!r}")
    names = list(endpoints)
    missing = [n for n in names if "p" not in endpoints[n] or "ci" not in endpoints[n]]
    if missing:
        raise UserError(f"endpoints {missing} lack a p-value or an interval: give each {{'diff', 'ci', 'p'}}")
    adjusted = holm([float("nan") if endpoints[n]["p"] is None else endpoints[n]["p"] for n in names])
    out = {}
    for name, p_holm in zip(names, adjusted):
        e = dict(endpoints[name])
        ci = e.get("ci")
        significant = bool(p_holm < alpha) if p_holm == p_holm else None
        bound = None
        if ci is not None and not significant:
            bound = equivalence_bound(ci, (directions or {}).get(name, "two-sided"))
        out[name] = {**e, "p_holm": None if p_holm != p_holm else float(p_holm), "significant": significant,
                     "equivalence_bound": bound, "ci_includes_zero": includes_zero(ci)}
    return out


__all__ = ["endpoint_verdicts"]
