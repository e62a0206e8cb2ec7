"""Per-class counts (correct / seen) accumulated over an epoch, all-reduced across DDP ranks, so every rank's policy
sees the same class accuracies and sets the same epsilon and weights."""

from __future__ import annotations

import torch
import torch.distributed as dist


class ClassCounts:
    """``update(pred, y)`` adds one batch; ``accuracy()`` is the per-class share correct (NaN for an unseen
    class) after :meth:`all_reduce`. The counts stay on the batches' device until read (no host sync per batch:
    the training loops call ``update`` every step); ``correct`` / ``total`` read them as float64 on the CPU."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)
        self._counts = torch.zeros(2, self.num_classes, dtype=torch.float64)  # (correct, total)

    def update(self, pred: torch.Tensor, y: torch.Tensor) -> None:
        y = y.detach().long()
        if self._counts.device != y.device:  # float64 where the device has it (MPS does not: exact to 2**24)
            dtype = torch.float32 if y.device.type == "mps" else torch.float64
            self._counts = self._counts.to(device=y.device, dtype=dtype)
        hit = (pred.detach().to(y.device) == y).to(self._counts.dtype)
        self._counts[1].index_add_(0, y, torch.ones_like(hit))
        self._counts[0].index_add_(0, y, hit)

    @property
    def correct(self) -> torch.Tensor:
        return self._counts[0].to(device="cpu", dtype=torch.float64)

    @property
    def total(self) -> torch.Tensor:
        return self._counts[1].to(device="cpu", dtype=torch.float64)

    def all_reduce(self) -> ClassCounts:
        """Sum the counts over the process group (no-op without one). Returns self."""
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            backend = dist.get_backend()
            device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
            both = self._counts.to(device=device, dtype=torch.float64)
            dist.all_reduce(both)
            self._counts = both.cpu()
        return self

    def accuracy(self) -> torch.Tensor:
        """(K,) float64 per-class accuracy in [0,1]; NaN where a class had no sample."""
        correct, total = self.correct, self.total
        return torch.where(total > 0, correct / total.clamp(min=1), torch.full_like(total, float("nan")))

    def reset(self) -> None:
        self._counts.zero_()
