"""Per-class counts (correct / seen) accumulated over an epoch, all-reduced across DDP ranks, so every rank's policy
sees the same class accuracies and sets the same epsilon and weights."""

from __future__ import annotations

import torch
import torch.distributed as dist


class ClassCounts:
    """``update(pred, y)`` adds one batch; ``accuracy()`` is the per-class share correct (NaN for an unseen
    class) after :meth:`all_reduce`."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)
        self.correct = torch.zeros(self.num_classes, dtype=torch.float64)
        self.total = torch.zeros(self.num_classes, dtype=torch.float64)

    def update(self, pred: torch.Tensor, y: torch.Tensor) -> None:
        y = y.detach().cpu().long()
        hit = (pred.detach().cpu() == y).double()
        self.total.index_add_(0, y, torch.ones_like(hit))
        self.correct.index_add_(0, y, hit)

    def all_reduce(self) -> ClassCounts:
        """Sum the counts over the process group (no-op without one). Returns self."""
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            backend = dist.get_backend()
            device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
            both = torch.stack([self.correct, self.total]).to(device)
            dist.all_reduce(both)
            self.correct, self.total = both[0].cpu(), both[1].cpu()
        return self

    def accuracy(self) -> torch.Tensor:
        """(K,) float64 per-class accuracy in [0,1]; NaN where a class had no sample."""
        return torch.where(self.total > 0, self.correct / self.total.clamp(min=1), torch.full_like(self.total,
                                                                                               float("nan")))

    def reset(self) -> None:
        self.correct.zero_()
        self.total.zero_()
