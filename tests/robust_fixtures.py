"""Models shared by the attack, robust-evaluator and masking tests (trained once per session)."""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from robustbench_labelaug.models.tiny_resnet import train_tiny_digits


@lru_cache(maxsize=1)
def trained_resnet8_digits() -> nn.Module:
    """resnet8_tiny (K=10, M=1, normalisation mean = std = 0.5 inside) after 4 shuffled clean epochs on digits:
    ~95 % clean accuracy and non-trivial PGD numbers at eps 0.03 (~1-2 s on CPU). Do not modify it. Trained
    with 2 torch threads whatever the current count (CPU kernels sum in another order with another thread
    count, which changes the weights), so the model does not depend on which tests ran before."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return train_tiny_digits(4)
    finally:
        torch.set_num_threads(threads)
