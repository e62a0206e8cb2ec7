"""Label augmentation targets: ``Concat[(1-delta) * onehot(y), delta * onehot(op)]`` of length K+M."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import check_delta
from ..errors import UserError
from ..results.rules import DEFAULT_DELTA


def label_aug_targets(y: torch.Tensor, num_classes: int, op: torch.Tensor | int | None = None,
                      num_ops: int = 1, delta: float = DEFAULT_DELTA, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Soft targets of shape (N, K+M) for class labels ``y`` (N,) and transformation indices ``op``.

    ``op=None`` (a clean sample) gives ``[onehot(y), 0]``; ``num_ops=0`` gives plain one-hot K-way targets.
    Every row sums to 1."""
    check_delta(None, delta)
    if num_ops < 0:
        raise UserError(f"num_ops (M) must be >= 0, got {num_ops}")
    y = y.long()
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise UserError(f"labels must lie in [0, {num_classes}), got [{int(y.min())}, {int(y.max())}]: "
                        "check --num-classes")
    cls = F.one_hot(y, num_classes).to(dtype)
    if num_ops == 0:
        return cls
    ops = torch.zeros(y.shape[0], num_ops, dtype=dtype, device=y.device)
    if op is None:
        return torch.cat([cls, ops], dim=1)
    op = torch.as_tensor(op, device=y.device).long().expand(y.shape[0])
    if int(op.min()) < 0 or int(op.max()) >= num_ops:
        raise UserError(f"transformation index must lie in [0, {num_ops}), got {op.tolist()}")
    ops.scatter_(1, op[:, None], delta)
    return torch.cat([cls * (1.0 - delta), ops], dim=1)
