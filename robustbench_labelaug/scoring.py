"""Pure scoring functions on arrays: predictions in, metrics out. Errors are percentages (0-100).

Evaluators produce per-sample predictions; everything here is deterministic numpy (bootstrap CIs take a seed).
The ImageNet reference data these functions use ships with installed packages and is read once, never
downloaded: the ReaL label sets from timm (``timm/data/_info/imagenet_real_labels.json``), the official
validation labels and the ImageNet-X annotations from the ``imagenet-x`` package
(``imagenet_x/annotations/``), and AlexNet's ImageNet-C errors, kept here as :data:`ALEXNET_IMAGENET_C_ERRORS`.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError

# ----------------------------------------------------------------------------------------------------------------
# Top-1 and class-wise errors
# ----------------------------------------------------------------------------------------------------------------


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
CI_STATISTICS = ("sd", "worst_error")
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
        "mean": float(scored.mean()), "sd": sd,
        "sd_sample": float(scored.std(ddof=1)) if scored.size > 1 else 0.0,
        "worst_class": worst_class, "worst_error": worst,
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


# ----------------------------------------------------------------------------------------------------------------
# ImageNet-C: corruption errors and mCE
# ----------------------------------------------------------------------------------------------------------------

IMAGENET_C_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)

# Top-1 error (%) of torchvision's AlexNet on ImageNet-C, per corruption and severity 1..5: the reference of
# Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations"
# (ICLR 2019). Per-severity values as posted by the authors in https://github.com/hendrycks/robustness/issues/10;
# their means are the per-corruption AlexNet errors of that repository's README (0.886428 for Gaussian noise, ...).
ALEXNET_IMAGENET_C_ERRORS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (69.528, 82.542, 93.554, 98.138, 99.452),
    "shot_noise": (71.224, 85.108, 93.574, 98.182, 99.146),
    "impulse_noise": (78.374, 89.808, 94.870, 98.720, 99.548),
    "defocus_blur": (65.624, 73.202, 85.036, 91.364, 94.714),
    "glass_blur": (64.308, 75.054, 88.806, 91.622, 93.344),
    "motion_blur": (58.430, 70.048, 82.108, 89.750, 92.638),
    "zoom_blur": (70.008, 76.992, 80.784, 84.198, 87.198),
    "snow": (71.726, 88.392, 86.468, 91.870, 94.952),
    "frost": (61.390, 79.734, 88.790, 89.942, 93.430),
    "fog": (67.474, 76.050, 84.378, 87.260, 94.500),
    "brightness": (45.140, 48.502, 54.048, 62.166, 72.440),
    "contrast": (64.548, 76.150, 88.874, 97.760, 99.270),
    "elastic_transform": (52.596, 70.116, 55.686, 64.076, 80.554),
    "pixelate": (52.218, 54.620, 73.728, 87.092, 91.262),
    "jpeg_compression": (51.002, 54.718, 57.294, 65.458, 74.778),
}


def _error_table(errors: Mapping[str, Sequence[float]] | np.ndarray, names: Sequence[str] | None,
                 what: str) -> tuple[list[str], np.ndarray]:
    if isinstance(errors, Mapping):
        if names is not None:
            missing = [n for n in names if n not in errors]
            if missing:
                raise UserError(f"{what} has no errors for corruption '{missing[0]}': give all of "
                                f"{', '.join(names)}")
        names = list(names) if names is not None else list(errors)
        rows = [np.asarray(errors[n], dtype=np.float64).ravel() for n in names]
        if len({r.size for r in rows}) > 1:
            raise UserError(f"{what}: corruptions have different numbers of severities "
                            f"({', '.join(f'{n}: {r.size}' for n, r in zip(names, rows))}): give every "
                            "corruption the same severities")
        table = np.stack(rows) if rows else np.zeros((0, 0))
    else:
        table = np.asarray(errors, dtype=np.float64)
        if table.ndim != 2 or names is None or len(names) != table.shape[0]:
            raise UserError(f"{what}: an array of errors must be (corruptions, severities) and come with one "
                            "name per row (names=...)")
        names = list(names)
    if table.size == 0:
        raise UserError(f"{what}: no corruption errors given: pass corruption -> [error per severity] (%)")
    if not np.all(np.isfinite(table)) or table.min() < 0 or table.max() > 100:
        raise UserError(f"{what}: errors must be finite percentages in [0, 100] (got min {np.nanmin(table):g}, "
                        f"max {np.nanmax(table):g}): pass errors in %, not fractions or accuracies")
    return names, table


def corruption_errors(errors: Mapping[str, Sequence[float]] | np.ndarray,
                      alexnet_errors: Mapping[str, Sequence[float]] | None = None, *,
                      names: Sequence[str] | None = None, severities: Sequence[int] | None = None,
                      normalize: str | None = None) -> dict[str, Any]:
    """Corruption errors from the table E_{c,s} (%): ``errors`` maps corruption -> error per severity (or is a
    (C, S) array with ``names``); ``severities`` says which severities the columns hold (default 1..S).

    Returns ``E`` (the table), ``CE`` per corruption = mean over severities (unnormalised, as the paper) and
    ``mce`` = mean of ``CE`` over corruptions. With a reference (``alexnet_errors``, or ``normalize="alexnet"``
    for :data:`ALEXNET_IMAGENET_C_ERRORS`) it adds Hendrycks & Dietterich's normalised
    ``CE_normalized[c] = 100 * sum_s E_{c,s} / sum_s E^ref_{c,s}`` (same severities) and ``mce_normalized``."""
    names, table = _error_table(errors, names, "corruption errors")
    if severities is None:
        severities = list(range(1, table.shape[1] + 1))
    severities = [int(s) for s in severities]
    if len(severities) != table.shape[1] or len(set(severities)) != len(severities) or min(severities) < 1:
        raise UserError(f"severities {severities} do not match the {table.shape[1]} error columns: give one "
                        "distinct severity (1-based) per column")
    ce = table.mean(axis=1)
    out: dict[str, Any] = {
        "corruptions": names, "severities": severities,
        "E": {n: row.tolist() for n, row in zip(names, table)},
        "CE": {n: float(v) for n, v in zip(names, ce)},
        "mce": float(ce.mean()),
    }
    if normalize not in (None, "alexnet"):
        raise UserError(f"normalize='{normalize}' is not known: use None or 'alexnet'")
    if normalize == "alexnet" and alexnet_errors is None:
        alexnet_errors = ALEXNET_IMAGENET_C_ERRORS
    if alexnet_errors is not None:
        ref_names, ref = _error_table(alexnet_errors, names, "reference (AlexNet) errors")
        if max(severities) > ref.shape[1]:
            raise UserError(f"the reference errors have {ref.shape[1]} severities but severity {max(severities)} "
                            "was asked for: give reference errors for every severity")
        ref = ref[:, [s - 1 for s in severities]]
        if np.any(ref.sum(axis=1) == 0):
            raise UserError("a reference corruption has zero error at every severity: cannot normalise by it")
        ce_norm = 100.0 * table.sum(axis=1) / ref.sum(axis=1)
        out["CE_normalized"] = {n: float(v) for n, v in zip(names, ce_norm)}
        out["mce_normalized"] = float(ce_norm.mean())
        out["reference"] = "alexnet" if alexnet_errors is ALEXNET_IMAGENET_C_ERRORS else "custom"
    return out


# ----------------------------------------------------------------------------------------------------------------
# ImageNet validation images: official names, labels, ReaL
# ----------------------------------------------------------------------------------------------------------------

NUM_VAL_IMAGES = 50_000
VAL_NAME_PATTERN = "ILSVRC2012_val_XXXXXXXX.JPEG (8 digits, 00000001-00050000)"
_VAL_NAME = re.compile(r"^ILSVRC2012_val_(\d{8})(\.[A-Za-z]+)?$")


def _val_image_ids(filenames: Sequence[str | os.PathLike]) -> np.ndarray:
    """Official val image numbers (1-based) of ``filenames``; 0 where a name is not an official val name."""
    ids = np.zeros(len(filenames), dtype=np.int64)
    for i, name in enumerate(filenames):
        m = _VAL_NAME.match(os.path.basename(os.fspath(name)))
        if m is not None and 1 <= int(m.group(1)) <= NUM_VAL_IMAGES:
            ids[i] = int(m.group(1))
    return ids


def val_image_ids(filenames: Sequence[str | os.PathLike]) -> np.ndarray:
    """The official ImageNet-1k validation image number (1..50000) of each file name (basename or path, any
    image extension), or :class:`UserError` naming the first name that is not an official one."""
    ids = _val_image_ids(filenames)
    bad = np.flatnonzero(ids == 0)
    if bad.size:
        raise UserError(f"'{os.fspath(filenames[bad[0]])}' is not an ImageNet validation file name: ReaL and "
                        f"ImageNet-X need the official names {VAL_NAME_PATTERN}, as in <root>/val/<wnid>/")
    return ids


def _imagenet_x_annotation_dir() -> Path:
    """``imagenet_x/annotations`` of the installed imagenet-x package, found without importing it."""
    from .packages import package_folder

    folder = package_folder("imagenet_x")
    if folder is None:
        raise UserError("the imagenet-x package is not installed: pip install imagenet-x (it ships the "
                        "ImageNet validation labels and ImageNet-X annotations)")
    return folder / "annotations"


@lru_cache(maxsize=1)
def _official_labels() -> np.ndarray:
    labels = np.full(NUM_VAL_IMAGES + 1, -1, dtype=np.int64)
    with open(_imagenet_x_annotation_dir() / "filename_label.csv", newline="") as f:
        for row in csv.DictReader(f):
            labels[int(row["file_name"][15:23])] = int(row["label"])
    labels.setflags(write=False)
    return labels


def official_val_labels(filenames: Sequence[str | os.PathLike]) -> np.ndarray:
    """Official ImageNet-1k class index of each validation file (from imagenet-x's ``filename_label.csv``,
    the ILSVRC2012 validation ground truth, 50 images per class)."""
    return _official_labels()[val_image_ids(filenames)]


def check_official_labels(filenames: Sequence[str | os.PathLike], y_true) -> None:
    """:class:`UserError` unless every file's label ``y_true`` is its official ImageNet-1k class, i.e. the
    validation folder is arranged by the official labels in the 1000-class order."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    official = official_val_labels(filenames)
    bad = np.flatnonzero(official != y_true)
    if bad.size:
        i = bad[0]
        raise UserError(f"{os.path.basename(os.fspath(filenames[i]))} has label {y_true[i]} in the data but its "
                        f"official ImageNet class is {official[i]} ({bad.size} such files): put each validation "
                        "image in the folder of its official class and load the folder as dataset 'imagenet'")


@lru_cache(maxsize=1)
def _real_label_sets() -> tuple[np.ndarray, np.ndarray]:
    """timm's ReaL labels as (sorted keys ``image_number * 1000 + label``, set size per image number)."""
    path = resources.files("timm.data") / "_info" / "imagenet_real_labels.json"
    sets = json.loads(path.read_text())
    if len(sets) != NUM_VAL_IMAGES:
        raise UserError(f"{path} holds {len(sets)} label sets, not {NUM_VAL_IMAGES}: reinstall timm")
    sizes = np.zeros(NUM_VAL_IMAGES + 1, dtype=np.int64)
    sizes[1:] = [len(s) for s in sets]
    keys = np.fromiter((1000 * (i + 1) + label for i, s in enumerate(sets) for label in s), dtype=np.int64)
    keys.sort()
    keys.setflags(write=False)
    sizes.setflags(write=False)
    return keys, sizes


def real_label_sets(filenames: Sequence[str | os.PathLike]) -> list[list[int]]:
    """The ReaL label set of each validation file (empty: no ReaL label, the image is not scored)."""
    keys, _ = _real_label_sets()
    out = []
    for image in val_image_ids(filenames):
        lo, hi = np.searchsorted(keys, [1000 * image, 1000 * (image + 1)])
        out.append((keys[lo:hi] - 1000 * image).tolist())
    return out


def real_correct(filenames: Sequence[str | os.PathLike], preds) -> tuple[np.ndarray, np.ndarray]:
    """Per image: ``correct`` (top-1 prediction in the image's ReaL label set) and ``scored`` (the set is
    not empty). Works on any subset of the 50 000 official validation file names."""
    preds = np.asarray(preds).astype(np.int64).ravel()
    if len(filenames) != preds.size:
        raise ValueError(f"filenames and preds differ in length: {len(filenames)} vs {preds.size}")
    ids = val_image_ids(filenames)
    keys, sizes = _real_label_sets()
    query = 1000 * ids + preds
    pos = np.clip(np.searchsorted(keys, query), 0, keys.size - 1)
    in_set = (keys[pos] == query) & (preds >= 0) & (preds < 1000)
    return in_set, sizes[ids] > 0


def real_error(filenames: Sequence[str | os.PathLike], preds, *,
               return_count: bool = False) -> float | tuple[float, int]:
    """ReaL top-1 error (%) (Beyer et al., "Are we done with ImageNet?"): an image counts as correct when its
    top-1 prediction ``preds`` (class indices, shape (N,)) is in its reassessed label set; images with an empty
    set are skipped. ``return_count=True`` also returns the number of scored images. NaN if none is scored."""
    correct, scored = real_correct(filenames, preds)
    n = int(scored.sum())
    error = float(100.0 * (1.0 - correct[scored].mean())) if n else float("nan")
    return (error, n) if return_count else error


def real_classwise_error(filenames: Sequence[str | os.PathLike], preds, y_true, num_classes: int) -> np.ndarray:
    """Per original class (``y_true``), ReaL error (%) over its scored images, shape (K,); NaN for a class
    without scored images."""
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    correct, scored = real_correct(filenames, preds)
    return classwise_error_from_mistakes(y_true[scored], ~correct[scored], num_classes)


def real_classwise_summary(filenames: Sequence[str | os.PathLike], preds, y_true, num_classes: int,
                           **kwargs: Any) -> dict[str, Any]:
    """:func:`classwise_summary` of the ReaL class-wise errors (keyword arguments: ``n_boot``, ``ci``, ``seed``)."""
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    correct, scored = real_correct(filenames, preds)
    return classwise_summary_from_mistakes(y_true[scored], ~correct[scored], num_classes, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# ImageNet-X: error per factor of variation
# ----------------------------------------------------------------------------------------------------------------

IMAGENET_X_FACTORS: tuple[str, ...] = (
    "pose", "background", "pattern", "color", "smaller", "shape", "partial_view", "subcategory", "texture",
    "larger", "darker", "object_blocking", "person_blocking", "style", "brighter", "multiple_objects",
)


@lru_cache(maxsize=4)
def _imagenet_x_table(which_factor: str, filter_prototypes: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image number -> row, class per row, factor matrix (rows, 16) bool) from ``imagenet_x.load_annotations``."""
    try:
        import imagenet_x
    except ImportError:
        raise UserError("the imagenet-x package is not installed: pip install imagenet-x") from None
    if tuple(imagenet_x.FACTORS) != IMAGENET_X_FACTORS:
        raise UserError(f"imagenet-x {getattr(imagenet_x, '__version__', '')} lists other factors than this "
                        "package knows: install imagenet-x 0.0.7")
    frame = imagenet_x.load_annotations(which_factor=which_factor, partition="val",
                                        filter_prototypes=filter_prototypes)
    ids = _val_image_ids(list(frame["file_name"]))
    row_of = np.full(NUM_VAL_IMAGES + 1, -1, dtype=np.int64)
    row_of[ids] = np.arange(ids.size)
    row_of[0] = -1
    classes = frame["class"].to_numpy(dtype=np.int64)
    factors = frame[list(IMAGENET_X_FACTORS)].to_numpy(dtype=np.int64) > 0
    for a in (row_of, classes, factors):
        a.setflags(write=False)
    return row_of, classes, factors


def _imagenet_x_aggregate(shows: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-factor accuracy and error ratio from the imagenet-x package's own aggregation
    (``imagenet_x.compute_factor_accuracies`` and ``imagenet_x.error_ratio``) on one model's scored images.
    NaN where a factor has no image, and the ratio where the overall error is 0. Where no image at all is correct
    the package's group-by drops the model from the correct counts (NaN); the accuracy of a factor with images
    is then 0."""
    import imagenet_x
    import pandas as pd

    frame = pd.DataFrame(shows.astype(np.int64), columns=list(IMAGENET_X_FACTORS))
    frame["is_correct"] = correct.astype(bool)
    frame["model"] = "model"
    accuracies = imagenet_x.compute_factor_accuracies(frame, list(IMAGENET_X_FACTORS), error_type="is_correct")
    if not correct.any():
        accuracies.loc["model", list(IMAGENET_X_FACTORS)] = np.where(shows.sum(axis=0) > 0, 0.0, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = imagenet_x.error_ratio(accuracies)
    acc = accuracies.loc["model", list(IMAGENET_X_FACTORS)].to_numpy(dtype=np.float64)
    ratio = ratios.loc["model", list(IMAGENET_X_FACTORS)].to_numpy(dtype=np.float64, copy=True)
    ratio[~np.isfinite(ratio)] = np.nan  # overall error 0: no ratio (the package divides by it)
    return acc, ratio


def imagenet_x_scores(filenames: Sequence[str | os.PathLike], preds, labels=None, *, which_factor: str = "top",
                      filter_prototypes: bool = True) -> dict[str, Any]:
    """ImageNet-X (Idrissi et al., 2022) errors of top-1 predictions on validation files.

    Uses the imagenet-x package's annotations (``imagenet_x.load_annotations``: ``which_factor`` ``"top"`` or
    ``"multi"``, prototypical images filtered by default) and its aggregation (``compute_factor_accuracies``,
    ``error_ratio``; only its ``evaluate.py`` is broken on numpy 2): for factor f, acc_f = correct images
    showing f / images showing f, the overall accuracy is over all annotated images, and ``error_ratio`` =
    (1 - acc_f) / (1 - acc). An image is correct when its prediction is its annotated class;
    ``labels``, when given, must agree with that class. Files without an annotation (or with names that are not
    official) are skipped; if none is annotated, :class:`UserError`.

    Returns ``error`` (%, overall), ``count`` (annotated images scored), ``skipped``, ``worst_factor`` and
    ``factors``: factor -> {``error`` (%), ``error_ratio``, ``count``}; NaN where a factor has no image (or the
    overall error is 0 for the ratio)."""
    if which_factor not in ("top", "multi"):
        raise UserError(f"which_factor='{which_factor}' is not known: use 'top' or 'multi'")
    preds = np.asarray(preds).astype(np.int64).ravel()
    if len(filenames) != preds.size:
        raise ValueError(f"filenames and preds differ in length: {len(filenames)} vs {preds.size}")
    row_of, classes, factors = _imagenet_x_table(which_factor, bool(filter_prototypes))
    rows = row_of[_val_image_ids(filenames)]
    hit = rows >= 0
    if not hit.any():
        example = os.path.basename(os.fspath(filenames[0])) if len(filenames) else "(no files)"
        raise UserError(f"none of the {len(filenames)} images (e.g. {example}) has an ImageNet-X annotation: "
                        f"evaluate on ImageNet validation images with their official names ({VAL_NAME_PATTERN})")
    rows_hit = rows[hit]
    if np.unique(rows_hit).size != rows_hit.size:
        raise UserError("some validation image appears more than once: give each image once")
    true = classes[rows_hit]
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64).ravel()
        if labels.size != preds.size:
            raise ValueError(f"labels and preds differ in length: {labels.size} vs {preds.size}")
        bad = np.flatnonzero(labels[hit] != true)
        if bad.size:
            name = os.path.basename(os.fspath(filenames[np.flatnonzero(hit)[bad[0]]]))
            raise UserError(f"{name} has label {labels[hit][bad[0]]} but ImageNet-X annotates class "
                            f"{true[bad[0]]}: arrange the validation folder by the official labels")
    correct = preds[hit] == true
    shows = factors[rows_hit]
    total = shows.sum(axis=0)
    acc, ratio = _imagenet_x_aggregate(shows, correct)
    overall_error = 1.0 - correct.mean()
    table = {f: {"error": float(100.0 * (1.0 - a)), "error_ratio": float(r), "count": int(n)}
             for f, a, r, n in zip(IMAGENET_X_FACTORS, acc, ratio, total)}
    scored = [f for f in IMAGENET_X_FACTORS if table[f]["count"] > 0]
    return {"error": float(100.0 * overall_error), "count": int(hit.sum()), "skipped": int((~hit).sum()),
            "worst_factor": max(scored, key=lambda f: table[f]["error"]) if scored else None, "factors": table}


def imagenet_x_errors(filenames: Sequence[str | os.PathLike], preds, labels=None, *, which_factor: str = "top",
                      filter_prototypes: bool = True) -> dict[str, dict[str, float]]:
    """Factor -> {``error`` (%), ``error_ratio``, ``count``} for the 16 ImageNet-X factors
    (``imagenet_x.FACTORS`` order); see :func:`imagenet_x_scores` for the overall error and the rules."""
    return imagenet_x_scores(filenames, preds, labels, which_factor=which_factor,
                             filter_prototypes=filter_prototypes)["factors"]
