"""ImageNet-X scoring (Idrissi et al., 2022): error and error ratio per factor of variation of top-1 predictions on
official validation files, aggregated by the imagenet-x package itself. The annotations are read by
:mod:`robustbench_labelaug.data.imagenet_labels`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.imagenet_labels import IMAGENET_X_FACTORS, VAL_NAME_PATTERN, imagenet_x_table, val_image_numbers
from ..errors import UserError


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
    row_of, classes, factors = imagenet_x_table(which_factor, bool(filter_prototypes))
    rows = row_of[val_image_numbers(filenames)]
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
