"""The per-example correctness table a study's statistics read: one row per (arm, seed, example), with the
example's class and whether that seed's model classified it correctly.

Columns (:data:`COLUMNS`): ``arm`` (a method and its knobs, e.g. ``adv`` or ``trades_beta=6``), ``seed`` (the
training seed: one trained model per arm and seed), ``index`` (the test example's index in the dataset), ``class``
(its true class, 0..K-1) and ``correct`` (bool: that model's prediction under the attack was the true class). Every
seed of every arm is scored on the same test examples, so example ``i`` is the same image for every model: the
statistics pair the arms over examples, never over seeds (seeds of different arms are independent trainings).

:func:`outcome_table` builds (and checks) such a table from arrays, :func:`outcomes_from_predictions` from one
model's per-example predictions (an evaluator's stored part: ``index``, ``y_true``, ``y_pred``), and
:func:`arm_outcomes` turns one arm's rows into the (seeds x examples) matrix the bootstrap resamples. numpy and
pandas only (no torch)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError

COLUMNS = ("arm", "seed", "index", "class", "correct")


@dataclass(frozen=True)
class ArmOutcomes:
    """One arm's outcomes as arrays: ``seeds`` (S,), ``index`` (N,) sorted, ``y`` (N,) the examples' classes and
    ``wrong`` (S, N) bool, row s = seed ``seeds[s]``."""

    arm: str
    seeds: np.ndarray
    index: np.ndarray
    y: np.ndarray
    wrong: np.ndarray

    @property
    def num_seeds(self) -> int:
        return int(self.seeds.size)


def outcome_table(arm, seed, index, y, correct):
    """A :data:`COLUMNS` DataFrame from equal-length arrays (a scalar ``arm`` / ``seed`` is repeated), checked:
    ``UserError`` naming the problem for unequal lengths, negative classes, a duplicated (arm, seed, index)
    row, or an example given two classes."""
    import pandas as pd

    index = np.asarray(index, dtype=np.int64).ravel()
    n = index.size
    cols = {"arm": arm, "seed": seed, "index": index, "class": y, "correct": correct}
    out = {}
    for name, value in cols.items():
        v = np.asarray(value)
        if v.ndim == 0:
            v = np.repeat(v, n)
        v = v.ravel()
        if v.size != n:
            raise UserError(f"outcome_table: '{name}' has {v.size} entries but 'index' has {n}: give one per row")
        out[name] = v
    frame = pd.DataFrame({"arm": out["arm"].astype(str), "seed": out["seed"].astype(np.int64),
                          "index": out["index"], "class": out["class"].astype(np.int64),
                          "correct": out["correct"].astype(bool)})
    check_table(frame)
    return frame


def outcomes_from_predictions(arm: str, seed: int, arrays: Mapping[str, Any]):
    """One model's rows from its per-example arrays (``index``, ``y_true``, ``y_pred``: an evaluator's stored
    part, e.g. AutoAttack's): ``correct = y_pred == y_true``."""
    y_true, y_pred = np.asarray(arrays["y_true"]), np.asarray(arrays["y_pred"])
    return outcome_table(arm, seed, arrays["index"], y_true, y_pred == y_true)


def concat_tables(tables: Iterable[Any]):
    """Several tables as one (checked again: no duplicated row, one class per example)."""
    import pandas as pd

    frame = pd.concat(list(tables), ignore_index=True)
    check_table(frame)
    return frame


def check_table(frame) -> None:
    """``UserError`` (one line) unless ``frame`` has the :data:`COLUMNS`, no duplicated (arm, seed, index) row,
    non-negative classes and one class per example index."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"the outcome table lacks the columns {missing}: it needs {list(COLUMNS)}")
    if len(frame) and int(frame["class"].min()) < 0:
        raise UserError("the outcome table has a negative class: classes are 0..K-1")
    if frame.duplicated(["arm", "seed", "index"]).any():
        row = frame[frame.duplicated(["arm", "seed", "index"])].iloc[0]
        raise UserError(f"the outcome table has two rows for arm {row['arm']!r}, seed {row['seed']}, example "
                         f"{row['index']}: give each model's outcome on an example once")
    classes = frame.groupby("index")["class"].nunique()
    if (classes > 1).any():
        raise UserError(f"example {int(classes[classes > 1].index[0])} has two classes in the outcome table: "
                         "every model must be scored on the same labelled examples")


def arm_outcomes(table, arm: str) -> ArmOutcomes:
    """``arm``'s rows as an :class:`ArmOutcomes` matrix. ``UserError`` when the arm has no rows or its seeds were
    scored on different examples (every seed of an arm must be scored on the same examples)."""
    rows = table[table["arm"] == arm]
    if rows.empty:
        arms = sorted(table["arm"].unique().tolist())
        raise UserError(f"the outcome table has no arm {arm!r}: it has {arms}")
    seeds = np.sort(rows["seed"].unique())
    wide = rows.pivot(index="seed", columns="index", values="correct").reindex(seeds)
    if wide.isna().any().any():
        bad = int(wide.index[wide.isna().any(axis=1)][0])
        raise UserError(f"arm {arm!r}: seed {bad} was scored on other examples than the arm's other seeds: score "
                         "every seed on the same test examples")
    index = wide.columns.to_numpy(dtype=np.int64)
    classes = rows.drop_duplicates("index").set_index("index")["class"].reindex(index).to_numpy(dtype=np.int64)
    wrong = ~wide.to_numpy(dtype=bool)
    return ArmOutcomes(arm, seeds.astype(np.int64), index, classes, wrong)


def same_examples(arms: Sequence[ArmOutcomes]) -> tuple[np.ndarray, np.ndarray]:
    """The example ``index`` and classes ``y`` every arm was scored on; ``UserError`` naming the first arm whose
    examples differ (the arms are paired over examples, so they must share them)."""
    first = arms[0]
    for other in arms[1:]:
        if not np.array_equal(other.index, first.index):
            raise UserError(f"arms {first.arm!r} and {other.arm!r} were scored on different test examples: "
                             "score every arm on the same examples (the comparison pairs them)")
    return first.index, first.y


__all__ = ["COLUMNS", "ArmOutcomes", "arm_outcomes", "check_table", "concat_tables", "outcome_table",
           "outcomes_from_predictions", "same_examples"]
