"""Synthetic per-example outcomes with a known truth: what the tests (coverage, power, the mixed-model check) and
the docs' worked examples draw from.

The model (a crossed random-effects logistic model, the one :mod:`.mixed` fits): example ``i`` of class ``c`` is
misclassified by seed ``s`` of arm ``a`` with probability ``expit(class_logit[c] + effect[a][c] + u[a, s] + v[i])``,
``u ~ N(0, seed_sd^2)`` one per trained model (seed-to-seed variation), ``v ~ N(0, example_sd^2)`` one per test
example, shared by every model (some images are hard for all of them). :func:`true_class_errors` gives the
population values the statistics estimate (an infinite test set, the expectation over seeds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .outcomes import ArmOutcomes, concat_tables, outcome_table

QUADRATURE_NODES = 64


def expit(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def _normal_nodes(sd: float, n: int = QUADRATURE_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights (summing to 1) of N(0, sd^2)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return sd * x, w / w.sum()


def _effects(effect: float | Sequence[float], k: int) -> np.ndarray:
    e = np.asarray(effect, dtype=np.float64)
    return np.full(k, float(e)) if e.ndim == 0 else e.reshape(k)


def simulate_arms(seed: int, *, arms: Mapping[str, float | Sequence[float]], n_seeds: int | Mapping[str, int],
                  n_per_class: int, class_logits: Sequence[float], seed_sd: float,
                  example_sd: float) -> dict[str, ArmOutcomes]:
    """Draw every arm's outcomes on one shared synthetic test set (``n_per_class`` examples of each class, class
    ``c``'s examples first). ``arms``: arm name -> its logit effect (a number, or one per class); ``n_seeds``: per
    arm or for all. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    base = np.asarray(class_logits, dtype=np.float64)
    k = base.size
    y = np.repeat(np.arange(k), n_per_class)
    index = np.arange(y.size, dtype=np.int64)
    v = rng.normal(0.0, example_sd, size=y.size)
    out = {}
    for arm, effect in arms.items():
        s = int(n_seeds[arm] if isinstance(n_seeds, Mapping) else n_seeds)
        u = rng.normal(0.0, seed_sd, size=(s, 1))
        p = expit(base[y] + _effects(effect, k)[y] + u + v)
        out[arm] = ArmOutcomes(arm, np.arange(s, dtype=np.int64), index, y, rng.random(p.shape) < p)
    return out


def true_class_errors(effect: float | Sequence[float], *, class_logits: Sequence[float], seed_sd: float,
                      example_sd: float) -> np.ndarray:
    """Per-class error (%) of an arm on the population of examples, averaged over seeds:
    ``E[expit(class_logit + effect + u + v)]``, by Gauss-Hermite quadrature (u + v ~ N(0, seed_sd^2 +
    example_sd^2))."""
    base = np.asarray(class_logits, dtype=np.float64)
    z, w = _normal_nodes(float(np.hypot(seed_sd, example_sd)))
    return 100.0 * expit(base[:, None] + _effects(effect, base.size)[:, None] + z[None, :]) @ w


def true_model_summaries(effect: float | Sequence[float], *, class_logits: Sequence[float], seed_sd: float,
                         example_sd: float) -> dict[str, float]:
    """The ``per_model`` estimands of :func:`.bootstrap.bootstrap_draws` for an infinite test set: the
    expectation over seeds of one model's class mean error, population class SD and worst-class error (%)."""
    base = np.asarray(class_logits, dtype=np.float64)
    e = _effects(effect, base.size)
    zu, wu = _normal_nodes(seed_sd)
    zv, wv = _normal_nodes(example_sd)
    # per seed node: the model's per-class error over the example population
    errors = 100.0 * np.einsum("ckv,v->kc", expit(base[:, None, None] + e[:, None, None] + zu[None, :, None]
                                                  + zv[None, None, :]), wv)
    return {"mean": float(errors.mean(axis=1) @ wu), "sd": float(errors.std(axis=1) @ wu),
            "worst": float(errors.max(axis=1) @ wu)}


def to_table(arms: Mapping[str, ArmOutcomes]):
    """The arms as one outcome table (:data:`.outcomes.COLUMNS`)."""
    parts = []
    for a in arms.values():
        s, n = a.wrong.shape
        parts.append(outcome_table(a.arm, np.repeat(a.seeds, n), np.tile(a.index, s), np.tile(a.y, s),
                                   ~a.wrong.ravel()))
    return concat_tables(parts)


__all__ = ["expit", "simulate_arms", "to_table", "true_class_errors", "true_model_summaries"]
