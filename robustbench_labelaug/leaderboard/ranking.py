"""How the leaderboard ranks: by the strongest attack each model was measured under, with a rank interval.

Each row is ranked by the first of :data:`ADVERSARIAL_RANKING` it has (for a corruption threat model,
:data:`CORRUPTION_RANKING`): RobustBench's best known robust accuracy (``external``, the strongest of several
attacks) > AutoAttack > PGD (sound) > PGD (paper protocol); a model without AutoAttack is ranked by its PGD error,
never by its clean error. Ties on that number break on the next measures of the same list, in order (a model
measured by the stronger attack first), never on clean error; models with no robust measure come last, by clean
error.

The **rank interval** ``[a, b]`` is the set of ranks a model could hold if each model's ranking number could be
anywhere in its 95 % Wilson interval (:func:`~.intervals.wilson_interval`, from the measure's n):
``a = 1 + #{models whose upper bound lies below this model's lower bound}`` (certainly better) and ``b = N -
#{models whose lower bound lies above this model's upper bound}`` (certainly worse), N = the ranked models. A
model whose n is unknown (RobustBench's files) enters the others' intervals with its point value and gets no
interval of its own. Pure functions on the table's row dicts; no torch."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..results import keys
from ..results.vocab import CORRUPTION_THREAT_MODELS
from ..scoring.intervals import wilson_interval


@dataclass(frozen=True)
class RankingMeasure:
    """One error (%) a row may be ranked by: ``key`` a headline key (or ``"external"``: RobustBench's best known
    robust accuracy, as an error), ``n_key`` the headline holding its number of examples (None: unknown)."""

    name: str
    key: str
    n_key: str | None = None


EXTERNAL = "external"
ADVERSARIAL_RANKING: tuple[RankingMeasure, ...] = (
    RankingMeasure("best known", EXTERNAL),
    RankingMeasure("AutoAttack", keys.AUTOATTACK_ERROR, keys.AUTOATTACK_N),
    RankingMeasure("PGD (sound)", keys.PGD_ERROR, keys.count(keys.PGD)),
    RankingMeasure("PGD (paper protocol)", keys.PGD_PAPER_ERROR, keys.count(keys.pgd_key("paper"))),
)
CORRUPTION_RANKING: tuple[RankingMeasure, ...] = (
    RankingMeasure("corruptions", keys.CORRUPTIONS_ERROR),
    RankingMeasure("mCE", keys.MCE),
)

RANKING_NOTE = ("Ranked by the strongest attack each model has: best known (RobustBench's 'external'), else "
                "AutoAttack, else PGD (sound), else PGD (paper protocol); never by clean error ('ranked by' names "
                "it, the page shows its protocol on hover; corruption boards: the corruption error). Ties break on "
                "the next of these; models without any robust number come last, by clean error. 'rank (a–b)': the "
                "ranks the model could hold within the 95 % Wilson intervals of the ranking numbers (a = 1 + the "
                "models whose upper bound is below its lower bound, b = N − the models whose lower bound is above "
                "its upper bound); none where n is unknown.")


def measures_for(row: Mapping[str, Any]) -> tuple[RankingMeasure, ...]:
    """The ranking list of a row's threat model (adversarial unless it is a corruption one)."""
    threat = row.get("threat_model")
    return CORRUPTION_RANKING if threat in CORRUPTION_THREAT_MODELS else ADVERSARIAL_RANKING


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
        return None
    return float(value)


def measure_value(row: Mapping[str, Any], measure: RankingMeasure) -> tuple[float | None, int | None]:
    """The row's error (%) under ``measure`` and its n (None where absent / unknown)."""
    if measure.key == EXTERNAL:
        return _number(row.get(EXTERNAL)), None
    heads = row.get("headlines") or {}
    h = heads.get(measure.key)
    value = None if h is None else _number(h.value)
    n_head = heads.get(measure.n_key) if measure.n_key else None
    n = None if n_head is None or _number(n_head.value) is None else int(n_head.value)
    return value, n


def ranking_measure(row: Mapping[str, Any]) -> tuple[RankingMeasure | None, float | None, int | None]:
    """The strongest measure the row has, its error and its n ((None, None, None): no robust number)."""
    for m in measures_for(row):
        value, n = measure_value(row, m)
        if value is not None:
            return m, value, n
    return None, None, None


def ranking_label(row: Mapping[str, Any]) -> str:
    """What the row is ranked by, for its "ranked by" cell: the ranking headline's protocol where it names one
    (``PGD-40 + AutoAttack (standard)``, ``PGD-40 (sound)``), else the measure's name; "" without one."""
    measure = ranking_measure(row)[0]
    if measure is None:
        return ""
    h = (row.get("headlines") or {}).get(measure.key)
    protocol = getattr(h, "protocol", None)
    return str(protocol) if protocol else measure.name


def robust_sort_key(row: Mapping[str, Any]) -> tuple:
    """Lowest error under the strongest measure first; ties on the measures after it (in list order, missing =
    worst); rows without any robust number last, by clean error (from ``clean_acc``), then name."""
    measure, value, _ = ranking_measure(row)
    if measure is None:
        clean = row.get("clean_acc")
        return (1, -(clean if clean is not None else -1.0), row["model"])
    rest = tuple(v if (v := measure_value(row, m)[0]) is not None else math.inf for m in measures_for(row))
    return (0, value, *rest, row["model"])


def rank_intervals(rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, int] | None]:
    """Per row (in the given order): the rank interval ``(a, b)`` (see the module docstring) among the rows
    that have a ranking number; None for a row without one or without an n."""
    bounds: list[tuple[float, float] | None] = []
    own: list[bool] = []
    for row in rows:
        _, value, n = ranking_measure(row)
        ci = wilson_interval(value * n / 100.0, n) if value is not None and n else None  # errors, %
        bounds.append(ci if ci is not None else (None if value is None else (value, value)))
        own.append(ci is not None)
    ranked = [(i, b) for i, b in enumerate(bounds) if b is not None]
    out: list[tuple[int, int] | None] = []
    for i, (b, has_ci) in enumerate(zip(bounds, own)):
        if b is None or not has_ci:
            out.append(None)
            continue
        lo, hi = b
        better = sum(1 for j, o in ranked if j != i and o[1] < lo)
        worse = sum(1 for j, o in ranked if j != i and o[0] > hi)
        out.append((1 + better, len(ranked) - worse))
    return out


__all__ = ["ADVERSARIAL_RANKING", "CORRUPTION_RANKING", "RANKING_NOTE", "RankingMeasure", "measure_value",
           "measures_for", "rank_intervals", "ranking_label", "ranking_measure", "robust_sort_key"]
