"""Which examples an evaluator takes with n_examples: class-balanced (default) or RobustBench's first n."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from robustbench_labelaug import UserError
from robustbench_labelaug.evaluation import create_evaluator
from robustbench_labelaug.evaluation.base import select_examples


class Sorted(Dataset):
    """10 classes x 20 examples, sorted by class, with ``targets``."""

    targets = [c for c in range(10) for _ in range(20)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return torch.zeros(1), self.targets[i]


def test_select_examples():
    data = Sorted()
    balanced = select_examples(data, 30)
    assert np.bincount([data.targets[i] for i in balanced], minlength=10).tolist() == [3] * 10
    assert select_examples(data, 30, "robustbench") == list(range(30))
    assert select_examples(data, 500) == select_examples(data, None, "robustbench") == list(range(200))
    for selection in ("class_balanced", "robustbench"):  # a smaller n takes a subset of a larger n's examples
        assert set(select_examples(data, 12, selection)) <= set(select_examples(data, 30, selection))
    plain = TensorDataset(torch.zeros(9, 1), torch.arange(9) % 3)  # no targets: the first n
    assert select_examples(plain, 4) == [0, 1, 2, 3]
    with pytest.raises(UserError, match="selection"):
        select_examples(data, 3, "random")


def test_evaluator_selection_defaults():
    """AutoAttack's number is compared with RobustBench's: it takes RobustBench's first n by default; PGD and the
    masking checks take them class-balanced (their class-wise numbers need every class)."""
    data = Sorted()
    assert create_evaluator("autoattack", n_examples=20).example_indices(data) == list(range(20))
    aa = create_evaluator("autoattack", n_examples=20, selection="class_balanced")
    assert aa.example_indices(data) == select_examples(data, 20) and aa.settings["selection"] == "class_balanced"
    assert create_evaluator("pgd", n_examples=20).example_indices(data) == select_examples(data, 20)
    assert create_evaluator("masking", n_examples=20).example_indices(data) == select_examples(data, 20)
    with pytest.raises(UserError, match="autoattack: selection 'first'"):
        create_evaluator("autoattack", selection="first")
