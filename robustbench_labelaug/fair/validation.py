"""Class-wise clean and PGD accuracy on the held-out validation split, each rank on its share, counts all-reduced
(every rank gets the same numbers)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from .. import distributed as dist_utils
from ..attacks.pgd import PGD
from ..models.classifier import KWayClassifier, unwrap_model
from .stats import ClassCounts


def classwise_validation(model: nn.Module, ds: Dataset, num_classes: int, eps: float, steps: int,
                         device: torch.device, batch_size: int = 128) -> tuple[ClassCounts, ClassCounts]:
    """(clean counts, PGD-``steps`` counts) per class, model in eval mode (restored after)."""
    inner = unwrap_model(model)
    kway = KWayClassifier(inner, num_classes)
    was_training = inner.training
    inner.eval()
    clean, robust = ClassCounts(num_classes), ClassCounts(num_classes)
    share = Subset(ds, dist_utils.shard_indices(len(ds)))
    attack = PGD(kway, eps=eps, alpha=2.5 * eps / steps, steps=steps) if steps > 0 else None
    try:
        for x, y in DataLoader(share, batch_size=batch_size, shuffle=False):
            x, y = x.to(device), y.to(device)
            with torch.no_grad():
                clean.update(kway(x).argmax(1), y)
            if attack is not None:
                attack.set_device(device)
                x_adv = attack(x, y)
                with torch.no_grad():
                    robust.update(kway(x_adv).argmax(1), y)
    finally:
        inner.train(was_training)
    return clean.all_reduce(), robust.all_reduce()
