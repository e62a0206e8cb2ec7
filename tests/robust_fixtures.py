"""Models shared by the attack, robust-evaluator and masking tests (trained once per session)."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from robustbench_labelaug import create_classifier
from robustbench_labelaug.data import create_dataset


@lru_cache(maxsize=1)
def trained_resnet8_digits() -> nn.Module:
    """resnet8_tiny (K=10, M=1, normalisation mean = std = 0.5 inside) after 4 shuffled clean epochs on digits:
    ~95 % clean accuracy and non-trivial PGD numbers at eps 0.03 (~1-2 s on CPU). Do not modify it."""
    torch.manual_seed(0)
    model = create_classifier("resnet8_tiny", 10, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = create_dataset("digits", split="train").tensors
    model.train()
    for _ in range(4):
        perm = torch.randperm(len(y))
        for i in range(0, len(y) - 63, 64):
            b = perm[i:i + 64]
            loss = F.cross_entropy(model(x[b])[:, :10], y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
