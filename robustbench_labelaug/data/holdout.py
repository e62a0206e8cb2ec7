"""The held-out validation split of a training set (CFA's FAWA gate, FRL's multipliers): carved from the training
split, never from the test split; class-balanced (the same share of every class, at least one sample each),
fixed by a seed, and described by a record that ``rbla train`` writes into ``args.yaml``."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset, Subset

from ..errors import UserError


def dataset_labels(ds: Dataset) -> np.ndarray:
    """Integer labels of every sample: ``ds.targets`` when the dataset has them, the (path, label) list of timm's
    ``ImageDataset`` reader (folder and tar readers), else by reading each sample."""
    targets = getattr(ds, "targets", None)
    if targets is None:
        samples = getattr(getattr(ds, "reader", None), "samples", None)
        if samples is not None:
            targets = [label for _, label in samples]
    if targets is None:
        targets = [int(ds[i][1]) for i in range(len(ds))]
    return np.asarray([int(t) for t in targets], dtype=np.int64)


def dataset_class_folders(ds: Dataset) -> list[str] | None:
    """The class (folder) names of a dataset in index order: its ``class_to_idx`` or that of timm's reader, else
    its ``classes``; None where it has neither."""
    for owner in (ds, getattr(ds, "reader", None)):
        mapping = getattr(owner, "class_to_idx", None)
        if isinstance(mapping, dict) and mapping:
            return [str(n) for n, _ in sorted(mapping.items(), key=lambda kv: kv[1])]
    names = getattr(ds, "classes", None)
    return [str(n) for n in names] if names else None


def holdout_indices(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices), both sorted: ``round(fraction * n_c)`` (at least 1, at most n_c - 1)
    samples of each class c, drawn with ``numpy.random.default_rng(seed)``."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"--val-split must lie in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            raise UserError(f"class {c} has {len(idx)} training sample(s): a validation split needs at least 2 per "
                            "class; drop --val-split / --fair or add data")
        n = min(max(1, int(round(fraction * len(idx)))), len(idx) - 1)
        val.append(np.sort(rng.choice(idx, size=n, replace=False)))
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx


def holdout_record(labels: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, fraction: float, seed: int
                   ) -> dict[str, Any]:
    """What a run records of its validation split (both training doors write the same keys)."""
    per_class = {int(c): int((labels[val_idx] == c).sum()) for c in np.unique(labels)}
    return {"fraction": float(fraction), "seed": int(seed), "of_split": "train", "size": int(len(val_idx)),
            "train_size": int(len(train_idx)), "per_class": per_class,
            "first_indices": [int(i) for i in val_idx[:10]]}


def carve_validation(train_ds: Dataset, eval_view: Dataset, fraction: float, seed: int
                     ) -> tuple[Subset, Subset, dict[str, Any]]:
    """Split the training set: (training subset of ``train_ds``, validation subset of ``eval_view``, record).
    ``eval_view`` is the same training split loaded without training augmentation (same sample order)."""
    if len(eval_view) != len(train_ds):
        raise UserError("the training split changed between two reads (different sample counts): check the folder")
    labels = dataset_labels(train_ds)
    train_idx, val_idx = holdout_indices(labels, fraction, seed)
    record = holdout_record(labels, train_idx, val_idx, fraction, seed)
    train_sub, val_sub = Subset(train_ds, train_idx.tolist()), Subset(eval_view, val_idx.tolist())
    train_sub.targets = labels[train_idx].tolist()
    val_sub.targets = labels[val_idx].tolist()
    return train_sub, val_sub, record
