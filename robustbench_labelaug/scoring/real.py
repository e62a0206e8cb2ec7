"""ImageNet-ReaL scoring (Beyer et al., "Are we done with ImageNet?") and the official validation labels: top-1
predictions of official validation files against label tables. The tables are read by
:mod:`robustbench_labelaug.data.imagenet_labels` (once per process) and may be passed in (``table=``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.imagenet_labels import (  # noqa: F401  (re-exported)
    NUM_VAL_IMAGES,
    VAL_NAME_PATTERN,
    official_label_table,
    real_label_table,
    val_image_ids,
)
from ..errors import UserError
from .classwise import classwise_error_from_mistakes, classwise_summary_from_mistakes


def official_val_labels(filenames: Sequence[str | os.PathLike], table: np.ndarray | None = None) -> np.ndarray:
    """Official ImageNet-1k class index of each validation file (``table``: image number -> class, default
    :func:`~robustbench_labelaug.data.imagenet_labels.official_label_table`, the ILSVRC2012 validation ground
    truth)."""
    table = official_label_table() if table is None else table
    return table[val_image_ids(filenames)]


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


def real_label_sets(filenames: Sequence[str | os.PathLike], table=None) -> list[list[int]]:
    """The ReaL label set of each validation file (empty: no ReaL label, the image is not scored)."""
    keys, _ = real_label_table() if table is None else table
    out = []
    for image in val_image_ids(filenames):
        lo, hi = np.searchsorted(keys, [1000 * image, 1000 * (image + 1)])
        out.append((keys[lo:hi] - 1000 * image).tolist())
    return out


def real_correct(filenames: Sequence[str | os.PathLike], preds, table=None) -> tuple[np.ndarray, np.ndarray]:
    """Per image: ``correct`` (top-1 prediction in the image's ReaL label set) and ``scored`` (the set is
    not empty). Works on any subset of the 50 000 official validation file names. ``table``: the ReaL label sets
    as :func:`~robustbench_labelaug.data.imagenet_labels.real_label_table` gives them (its default)."""
    preds = np.asarray(preds).astype(np.int64).ravel()
    if len(filenames) != preds.size:
        raise ValueError(f"filenames and preds differ in length: {len(filenames)} vs {preds.size}")
    ids = val_image_ids(filenames)
    keys, sizes = real_label_table() if table is None else table
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
