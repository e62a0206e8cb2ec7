"""RobustBench's data shape: ``load_clean_dataset(dataset, n_examples, data_dir, split) -> (x, y)``.

``robustbench.data.load_clean_dataset(dataset, n_examples, data_dir, prepr)`` returns the first ``n_examples``
test images of CIFAR-10/100 (file order) or of its 5 000 ImageNet ids as one float tensor ``x`` (N x C x H x W in
[0,1]) and the labels ``y`` (int64). This one does the same for every dataset of the registry (the embedded
digits included): what a training loop or an attack of one's own takes directly::

    from robustbench_labelaug import load_clean_dataset
    x, y = load_clean_dataset("digits", split="train")     # 1 437 x 3 x 32 x 32 in [0,1], labels 0..9
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

from ..checks import check_positive_int
from ..errors import UserError
from . import create_dataset
from .registry import get_dataset_spec

# the subset RobustBench evaluates on, where a dataset declares it (data/registry.py: subsets={"robustbench": ...})
ROBUSTBENCH_SUBSET = "robustbench"
BATCH_SIZE = 100  # RobustBench's _load_dataset reads in batches of 100


def load_clean_dataset(dataset: str | Enum = "digits", n_examples: int | None = None,
                       data_dir: str | Path | None = None, split: str = "test", *,
                       subset: str | None = ROBUSTBENCH_SUBSET, input_size: int | None = None,
                       **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n_examples`` (None: all) images of a registered dataset's ``split`` as ``(x, y)``: ``x`` float32
    N x 3 x H x W in [0,1], ``y`` int64, as ``robustbench.data.load_clean_dataset``.

    ``dataset``: a registered name (``robustbench_labelaug.data.list_datasets()``) or RobustBench's
    ``BenchmarkDataset`` (its value names the dataset). ``split``: the dataset's split or a synonym (``test`` is
    the evaluated split of every built-in dataset). ``subset``: on the evaluated split of a dataset that declares
    RobustBench's evaluation points (ImageNet: its 5 000 ids in its order; CIFAR: the test set in file order),
    the first n are taken from those, as RobustBench does; None: the split in dataset order. ``input_size`` and
    ``options`` (``crop_pct``, ``interpolation``, ...) go to :func:`~robustbench_labelaug.data.create_dataset`
    (None: the dataset's own size; ImageNet: Resize(256) + CenterCrop(224), RobustBench's ``Res256Crop224``)."""
    name = str(dataset.value if isinstance(dataset, Enum) else dataset)
    spec = get_dataset_spec(name)
    canonical = spec.resolve_split(split)
    n = check_positive_int("load_clean_dataset", "n_examples", n_examples, allow_none=True)
    data = create_dataset(name, data_dir, canonical, input_size=input_size, **options)
    if subset is not None and canonical == spec.eval_split and (subset in spec.subsets
                                                               or subset != ROBUSTBENCH_SUBSET):
        data = spec.make_subset(subset, data, name)  # an undeclared subset asked for by name: one line
    if n is not None and n > len(data):
        raise UserError(f"n_examples={n} exceeds the {len(data)} examples of the '{canonical}' split of dataset "
                        f"'{name}': use n_examples <= {len(data)} (or None: all)")
    return _stack(data if n is None else _first(data, n))


def _first(data, n: int):
    if isinstance(data, TensorDataset):  # in memory (digits): a view, no copy through a loader
        return TensorDataset(*(t[:n] for t in data.tensors))
    return Subset(data, range(n))


def _stack(data) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, TensorDataset):
        x, y = data.tensors[:2]
        return x.float().contiguous(), y.long().contiguous()
    xs, ys = [], []
    for batch in DataLoader(data, batch_size=BATCH_SIZE, shuffle=False, num_workers=0):
        xs.append(batch[0].float())
        ys.append(torch.as_tensor(batch[1]).long())
    if not xs:
        raise UserError("the dataset has no examples: check data_dir and split")
    return torch.cat(xs), torch.cat(ys)


__all__ = ["load_clean_dataset"]
