"""Pure scoring functions on arrays: predictions in, metrics out. Errors are percentages (0-100).

Evaluators produce per-sample predictions; everything here is deterministic numpy (bootstrap CIs take a seed).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true).astype(np.int64).ravel(), np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}")
    return y_true, y_pred


def top1_error(y_true, y_pred) -> float:
    """Top-1 error (%) of predictions ``y_pred`` against labels ``y_true``."""
    y_true, y_pred = _labels(y_true, y_pred)
    if y_true.size == 0:
        return float("nan")
    return float(100.0 * np.mean(y_true != y_pred))


def classwise_error(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Per-class top-1 error (%), shape (K,). A class with no samples gets NaN."""
    y_true, y_pred = _labels(y_true, y_pred)
    counts = np.bincount(y_true, minlength=num_classes).astype(np.float64)[:num_classes]
    wrong = np.bincount(y_true[y_true != y_pred], minlength=num_classes).astype(np.float64)[:num_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, 100.0 * wrong / np.maximum(counts, 1), np.nan)


def _summary_stats(errors: np.ndarray) -> tuple[float, float, float]:
    valid = errors[~np.isnan(errors)]
    return float(valid.mean()), float(valid.std(ddof=0)), float(valid.max())


def classwise_summary(y_true, y_pred, num_classes: int, n_boot: int = 1000, ci: float = 0.95,
                      seed: int = 0) -> dict[str, Any]:
    """Mean, SD and extremes of the per-class errors (%), with bootstrap CIs.

    ``sd`` is the *population* SD across classes (``ddof=0``, as in the paper's figures); ``sd_sample`` uses
    ``ddof=1``. The CIs for ``sd`` and ``worst_error`` resample examples within each class (stratified bootstrap,
    ``n_boot`` draws, percentile interval). Classes without samples are left out."""
    y_true, y_pred = _labels(y_true, y_pred)
    errors = classwise_error(y_true, y_pred, num_classes)
    valid = ~np.isnan(errors)
    if not valid.any():
        raise ValueError("no class has any sample")
    mean, sd, worst = _summary_stats(errors)
    idx = np.where(valid)[0]
    worst_class = int(idx[np.argmax(errors[idx])])
    best_class = int(idx[np.argmin(errors[idx])])
    out: dict[str, Any] = {
        "mean": mean, "sd": sd, "sd_sample": float(errors[valid].std(ddof=1)) if valid.sum() > 1 else 0.0,
        "worst_class": worst_class, "worst_error": float(errors[worst_class]),
        "best_class": best_class, "best_error": float(errors[best_class]),
        "num_classes_scored": int(valid.sum()), "ci_level": ci, "n_boot": n_boot,
    }
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        wrong = (y_true != y_pred)
        per_class = [wrong[y_true == c] for c in idx]
        sds, worsts = np.empty(n_boot), np.empty(n_boot)
        for b in range(n_boot):
            errs = np.array([100.0 * w[rng.integers(0, len(w), len(w))].mean() for w in per_class])
            sds[b], worsts[b] = errs.std(ddof=0), errs.max()
        lo, hi = 100 * (1 - ci) / 2, 100 * (1 + ci) / 2
        out["sd_ci"] = [float(np.percentile(sds, lo)), float(np.percentile(sds, hi))]
        out["worst_error_ci"] = [float(np.percentile(worsts, lo)), float(np.percentile(worsts, hi))]
    return out
