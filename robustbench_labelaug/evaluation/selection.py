"""Which examples an evaluator evaluates: all of them, or ``n_examples`` chosen class-balanced (every class
covered, for the class-wise numbers) or RobustBench's way (the first n)."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from ..errors import UserError

FIRST_N = "robustbench"  # RobustBench's choice: the first n examples in dataset order
SELECTIONS = ("class_balanced", FIRST_N)


def select_examples(dataset: Dataset, n: int | None, selection: str = "class_balanced") -> list[int]:
    """The indices of ``n`` examples of ``dataset`` (all when ``n`` is None or too large), sorted.

    ``class_balanced``: taken round-robin over the classes (the first of each class, then the second, ...) when
    the dataset exposes ``targets``, so a subset of a class-sorted folder still covers every class (the class-wise
    numbers need every class); otherwise the first ``n``. ``robustbench``: the first ``n`` in dataset order,
    RobustBench's own choice: its first n test points, or, on a dataset with ``subset: robustbench``, the first n
    of its ImageNet id list. For both, the examples chosen for a smaller ``n`` are among those chosen for a
    larger one."""
    if selection not in SELECTIONS:
        raise UserError(f"selection '{selection}' is not known: use one of {', '.join(SELECTIONS)}")
    if n is None or n >= len(dataset):
        return list(range(len(dataset)))
    targets = getattr(dataset, "targets", None)
    if targets is None or selection == "robustbench":
        return list(range(n))
    return class_interleaved(np.asarray(targets), n)


def class_interleaved(labels: np.ndarray, n: int) -> list[int]:
    """``n`` indices taken round-robin over classes (by rank within class, then class), returned sorted."""
    labels = np.asarray(labels).ravel()
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank_in_class = np.empty(len(labels), dtype=np.int64)
    rank_in_class[order] = np.arange(len(labels)) - starts
    chosen = np.lexsort((labels, rank_in_class))[:n]
    return sorted(int(i) for i in chosen)




def uncovered_classes(dataset: Dataset, indices: list[int], num_classes: int) -> list[int] | None:
    """The classes (of ``dataset.targets``) with examples in the dataset but none among ``indices``; None where
    the dataset does not expose ``targets``."""
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    labels = np.asarray(targets).ravel()
    present = set(np.unique(labels).tolist())
    chosen = set(np.unique(labels[np.asarray(indices, dtype=np.int64)]).tolist()) if len(indices) else set()
    return sorted(int(c) for c in present - chosen if 0 <= c < num_classes)


def warn_uncovered_classes(evaluator, dataset: Dataset, indices: list[int], num_classes: int) -> None:
    """One warning line where the chosen examples leave classes of the data without any (their class-wise error
    is then NaN), naming a selection that covers every class."""
    import warnings

    missing = uncovered_classes(dataset, indices, num_classes)
    if not missing:
        return
    selection = getattr(evaluator, "selection", "class_balanced")
    shown = ", ".join(map(str, missing[:8])) + (", ..." if len(missing) > 8 else "")
    n = len(indices)
    if selection != "class_balanced":
        fix = (f"selection: class_balanced (round-robin over the classes) covers every class with n_examples >= "
               f"{num_classes}")
    else:
        fix = f"n_examples >= {num_classes} covers every class"
    warnings.warn(f"{evaluator.name}: the {n} examples of selection '{selection}' leave {len(missing)} of "
                  f"{num_classes} classes without any (classes {shown}: their class-wise error is NaN); {fix}",
                  UserWarning, stacklevel=2)


__all__ = ["SELECTIONS", "class_interleaved", "select_examples", "uncovered_classes", "warn_uncovered_classes"]
