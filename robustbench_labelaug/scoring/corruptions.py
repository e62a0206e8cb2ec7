"""ImageNet-C scoring: corruption errors CE per corruption, mCE, and the AlexNet-normalised mCE of Hendrycks &
Dietterich (its reference errors are kept here as :data:`ALEXNET_IMAGENET_C_ERRORS`). Pure numpy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data.imagenet_labels import IMAGENET_C_CORRUPTIONS  # noqa: F401  (re-exported: a fact of the data)
from ..errors import UserError

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
