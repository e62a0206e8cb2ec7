"""The training hook's inputs, checked once at the door (:class:`robustbench_labelaug.hook.AdvLabelAug`): every
mode sees the same rules, so a bad batch is one :class:`UserError` line rather than a traceback deep in the loss or
a silently wrong target.

- the images: a float tensor (N, C, H, W) with N >= 1; numpy arrays are taken as tensors, float64 is converted to
  float32 (the model's precision); integer images (uint8) are refused (scale them to [0,1] floats);
- the labels: integer class indices of shape (N,) in [0, K); other integer widths (int32, uint8) are converted to
  int64; float and bool labels are refused (``int(3.7)`` would silently train class 3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import UserError


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        try:
            return torch.from_numpy(np.ascontiguousarray(value))
        except TypeError:
            raise UserError(f"the hook's {what} is a numpy array of dtype {value.dtype}, which torch cannot take: "
                            "pass a torch tensor") from None
    raise UserError(f"the hook's {what} must be a torch tensor, got {type(value).__name__}")


def check_hook_batch(input: Any, target: Any, num_classes: int,
                     device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input, target)`` as the hook needs them (see the module docstring), or one :class:`UserError`."""
    x = _as_tensor(input, "input")
    y = _as_tensor(target, "target")
    if device is not None and not isinstance(input, torch.Tensor):
        x = x.to(device)
    if device is not None and not isinstance(target, torch.Tensor):
        y = y.to(device)
    if x.dim() != 4:
        raise UserError(f"the hook takes a batch of images of shape (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise UserError("the hook got an empty batch (0 images): drop empty batches in the loader "
                        "(drop_last=True) or skip the call")
    if not x.is_floating_point():
        raise UserError(f"the hook's images are {str(x.dtype).replace('torch.', '')}: pass float images scaled "
                        "to [0,1] (e.g. torchvision's ToTensor)")
    if x.dtype == torch.float64:
        x = x.float()
    if y.dim() != 1:
        raise UserError("the hook takes integer class labels of shape (N,); put it before mixup/cutmix and "
                        "label smoothing (turn those off)")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise UserError(f"the hook's labels are {str(y.dtype).replace('torch.', '')}: pass integer class indices "
                        "(torch.long); float labels would be truncated to a class")
    if y.dtype != torch.long:
        y = y.long()
    if y.shape[0] != x.shape[0]:
        raise UserError(f"the hook got {x.shape[0]} images but {y.shape[0]} labels: pass one label per image")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise UserError(f"the hook's labels must lie in [0, {num_classes}) (K={num_classes}), got {bad}: check the "
                        "dataset's classes and num_classes")
    return x, y


__all__ = ["check_hook_batch"]
