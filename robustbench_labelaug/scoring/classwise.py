"""Class-wise errors: top-1 error, per-class error, its summary (mean, population SD, worst/best class) and
bootstrap confidence intervals. Pure numpy on arrays (the bootstrap takes a seed)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..results import keys


def _labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true).astype(np.int64).ravel(), np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}")
    return y_true, y_pred


def _mistakes(y_true, mistakes) -> tuple[np.ndarray, np.ndarray]:
    y_true, mistakes = np.asarray(y_true).astype(np.int64).ravel(), np.asarray(mistakes).astype(bool).ravel()
    if y_true.shape != mistakes.shape:
        raise ValueError(f"y_true and mistakes differ in length: {y_true.shape[0]} vs {mistakes.shape[0]}")
    return y_true, mistakes


def top1_error(y_true, y_pred) -> float:
    """Top-1 error (%) of predictions ``y_pred`` against labels ``y_true``."""
    y_true, y_pred = _labels(y_true, y_pred)
    if y_true.size == 0:
        return float("nan")
    return float(100.0 * np.mean(y_true != y_pred))


def classwise_error_from_mistakes(y_true, mistakes, num_classes: int) -> np.ndarray:
    """Per-class error (%), shape (K,), from per-sample ``mistakes`` (True = wrong) grouped by ``y_true``.
    A class with no samples gets NaN."""
    y_true, mistakes = _mistakes(y_true, mistakes)
    counts = np.bincount(y_true, minlength=num_classes).astype(np.float64)[:num_classes]
    wrong = np.bincount(y_true[mistakes], minlength=num_classes).astype(np.float64)[:num_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, 100.0 * wrong / np.maximum(counts, 1), np.nan)


def classwise_error(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Per-class top-1 error (%), shape (K,). A class with no samples gets NaN."""
    y_true, y_pred = _labels(y_true, y_pred)
    return classwise_error_from_mistakes(y_true, y_true != y_pred, num_classes)


CI_METHODS = ("percentile", "BCa", "basic")
CI_STATISTICS = (keys.SD, keys.WORST_ERROR)
# Above this many resampled examples (n_boot x examples, e.g. ImageNet-C's 75 x 50 000 images), resampling each
# example costs minutes; a class's resampled error is then drawn directly from its exact distribution,
# Binomial(n, observed error) / n, which is the same bootstrap distribution (percentile and basic intervals only).
MAX_RESAMPLED_EXAMPLES = 200_000_000


def _classwise_statistics(*samples: np.ndarray, constants: np.ndarray, axis: int = -1) -> np.ndarray:
    """(population SD, max) of the per-class errors (%): one sample of per-example mistakes (0/1) per class, plus
    the fixed errors of classes with a single example (a resample cannot change them)."""
    errors = 100.0 * np.stack([np.mean(x, axis=axis) for x in samples], axis=-1) if samples else None
    if constants.size:
        shape = errors.shape[:-1] if errors is not None else ()
        fixed = np.broadcast_to(constants, (*shape, constants.size))
        errors = fixed if errors is None else np.concatenate([errors, fixed], axis=-1)
    return np.stack([errors.std(axis=-1), errors.max(axis=-1)])


def classwise_bootstrap(y_true, mistakes, num_classes: int, n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
                        ci_method: str = "percentile",
                        max_resampled: int | None = None) -> dict[str, Any]:
    """Stratified bootstrap CIs of the class-wise SD and worst-class error (%) with ``scipy.stats.bootstrap``:
    each class's examples are resampled with replacement on their own (one sample per class, ``paired=False``),
    ``n_boot`` resamples from ``numpy.random.default_rng(seed)``.

    With more than :data:`MAX_RESAMPLED_EXAMPLES` resampled examples (``n_boot`` x examples) the resampled
    class errors are drawn from Binomial(n_c, error_c) / n_c, the exact distribution of a class's error under
    resampling, and the percentile / basic interval is taken of those draws as scipy does (BCa: ``ValueError``).

    Returns, for ``key`` in ``sd``, ``worst_error``: ``{key}_ci`` = ``[low, high]`` inside [0, 100], or None
    when the interval is degenerate, i.e. every resample gives the same value (e.g. a class wrong on every
    example: worst error 100 in each resample) or BCa cannot be computed; then ``{key}_ci_degenerate`` says why.
    ``{key}_bias_corrected`` = ``2 t - mean(bootstrap)`` clipped to [0, 100]."""
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, got {ci_method!r}")
    from scipy.stats import bootstrap

    y_true, mistakes = _mistakes(y_true, mistakes)
    counts = np.bincount(y_true, minlength=num_classes)[:num_classes]
    scored = np.flatnonzero(counts > 0)
    if scored.size == 0:
        raise ValueError("no class has any sample")
    order = np.argsort(y_true, kind="stable")
    by_class = np.split(mistakes[order].astype(np.float64), np.cumsum(counts)[:-1])
    samples = tuple(by_class[c] for c in scored if counts[c] >= 2)
    constants = np.array([100.0 * by_class[c][0] for c in scored if counts[c] == 1])
    point = _classwise_statistics(*[x[None] for x in samples], constants=constants)[:, 0] if samples else \
        _classwise_statistics(constants=constants)
    out: dict[str, Any] = {"ci_method": ci_method}
    limit = MAX_RESAMPLED_EXAMPLES if max_resampled is None else max_resampled
    if samples and n_boot * sum(x.size for x in samples) > limit:
        if ci_method == "BCa":
            raise ValueError(f"BCa needs a jackknife over all {y_true.size} examples: use ci_method='percentile'")
        rng = np.random.default_rng(seed)
        n = np.array([x.size for x in samples])
        wrong = np.array([x.sum() for x in samples])
        errors = 100.0 * rng.binomial(n, wrong / n, size=(n_boot, n.size)) / n
        if constants.size:
            errors = np.concatenate([errors, np.broadcast_to(constants, (n_boot, constants.size))], axis=1)
        draws = np.stack([errors.std(axis=1), errors.max(axis=1)])
        alpha = (1 - ci) / 2
        lows, highs = np.percentile(draws, 100 * alpha, axis=1), np.percentile(draws, 100 * (1 - alpha), axis=1)
        if ci_method == "basic":
            lows, highs = 2 * point - highs, 2 * point - lows
        out["ci_draws"] = "binomial"
    elif samples:
        import warnings

        with warnings.catch_warnings():  # degenerate BCa: NaN bounds, reported below
            warnings.simplefilter("ignore")
            res = bootstrap(samples, lambda *x, axis=-1: _classwise_statistics(*x, constants=constants, axis=axis),
                            n_resamples=n_boot, confidence_level=ci, method=ci_method, vectorized=True,
                            paired=False, axis=-1, batch=max(1, min(n_boot, 5_000_000 // max(1, y_true.size))),
                            rng=np.random.default_rng(seed))
        draws = np.asarray(res.bootstrap_distribution).reshape(2, -1)
        lows, highs = np.atleast_1d(res.confidence_interval.low), np.atleast_1d(res.confidence_interval.high)
    else:  # every class has one example: nothing to resample
        draws = np.repeat(point[:, None], max(n_boot, 1), axis=1)
        lows, highs = point, point
    for i, key in enumerate(CI_STATISTICS):
        spread = float(np.ptp(draws[i]))
        if spread <= 1e-12 * max(1.0, abs(float(draws[i][0]))):
            out[f"{key}_ci"] = None
            out[f"{key}_ci_degenerate"] = (f"every bootstrap resample gives {float(draws[i][0]):.2f}: no interval "
                                           "(the statistic does not vary under resampling)")
        elif not (np.isfinite(lows[i]) and np.isfinite(highs[i])):
            out[f"{key}_ci"] = None
            out[f"{key}_ci_degenerate"] = f"the {ci_method} interval cannot be computed for these data"
        else:
            out[f"{key}_ci"] = [float(np.clip(lows[i], 0.0, 100.0)), float(np.clip(highs[i], 0.0, 100.0))]
        out[f"{key}_bias_corrected"] = float(np.clip(2 * point[i] - draws[i].mean(), 0.0, 100.0))
    return out


def classwise_summary_from_mistakes(y_true, mistakes, num_classes: int, n_boot: int = 1000, ci: float = 0.95,
                                    seed: int = 0, ci_method: str = "percentile") -> dict[str, Any]:
    """:func:`classwise_summary` for any per-sample notion of a mistake (e.g. ReaL: prediction outside the
    image's label set), grouped by the samples' classes ``y_true``."""
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, got {ci_method!r}")
    y_true, mistakes = _mistakes(y_true, mistakes)
    errors = classwise_error_from_mistakes(y_true, mistakes, num_classes)
    valid = ~np.isnan(errors)
    if not valid.any():
        raise ValueError("no class has any sample")
    idx = np.flatnonzero(valid)
    scored = errors[idx]
    worst_class, best_class = int(idx[np.argmax(scored)]), int(idx[np.argmin(scored)])
    sd, worst = float(scored.std(ddof=0)), float(errors[worst_class])
    out: dict[str, Any] = {
        "mean": float(scored.mean()), keys.SD: sd,
        "sd_sample": float(scored.std(ddof=1)) if scored.size > 1 else 0.0,
        keys.WORST_CLASS: worst_class, keys.WORST_ERROR: worst,
        "best_class": best_class, "best_error": float(errors[best_class]),
        "num_classes_scored": int(idx.size), "ci_level": ci, "n_boot": n_boot,
    }
    if n_boot > 0:
        out.update(classwise_bootstrap(y_true, mistakes, num_classes, n_boot=n_boot, ci=ci, seed=seed,
                                       ci_method=ci_method))
    return out


def classwise_summary(y_true, y_pred, num_classes: int, n_boot: int = 1000, ci: float = 0.95,
                      seed: int = 0, ci_method: str = "percentile") -> dict[str, Any]:
    """Mean, SD and extremes of the per-class errors (%), with bootstrap CIs.

    ``sd`` is the *population* SD across classes (``ddof=0``: all K classes; the paper doesn't say which); ``sd_sample`` uses
    ``ddof=1``. Classes without samples are left out. The CIs for ``sd`` and ``worst_error`` come from
    :func:`classwise_bootstrap` (``scipy.stats.bootstrap``, examples resampled within each class, ``n_boot``
    resamples, seeded), by default the percentile interval, always inside [0, 100], or None with a reason
    (``*_ci_degenerate``) when every resample gives the same value.

    Sampling noise in each class's error inflates both the SD across classes and the worst-class error, and the
    bootstrap inflates them once more: with few images per class (e.g. 50 per ImageNet class) the percentile
    interval lies above the classes' underlying SD. ``*_bias_corrected`` (``2 t - mean(bootstrap)``) estimate it;
    ``ci_method="basic"`` (reverse percentile, ``[2 t - q_hi, 2 t - q_lo]``, clipped to [0, 100]) targets it;
    ``"BCa"`` is scipy's bias-corrected and accelerated interval (slow for many classes: a jackknife over every
    example)."""
    y_true, y_pred = _labels(y_true, y_pred)
    return classwise_summary_from_mistakes(y_true, y_true != y_pred, num_classes, n_boot=n_boot, ci=ci,
                                           seed=seed, ci_method=ci_method)
