"""Cheaper passes through a frozen model while an attack runs: eval-mode BatchNorm as a per-channel affine map,
and no cuDNN autotuning for batches whose size keeps changing.

An attack on a model in eval mode differentiates through BatchNorm with *fixed* running statistics, which is the
affine map ``x * scale + shift`` (``scale = weight / sqrt(running_var + eps)``, ``shift = bias - running_mean *
scale``). PyTorch still runs its general ``native_batch_norm`` forward and backward there; on a GPU under bf16
autocast with channels_last that backward plus the dtype/layout copies around it took ~50 % of a ResNet-50 PGD
step (measured on an H200, see docs/gpu.md). ``batchnorm_as_affine`` swaps each BatchNorm's forward for one
fused ``addcmul`` in the input's dtype for the duration of a ``with`` block; outputs and input gradients are those
of eval-mode BatchNorm up to float rounding (tested), and nothing about the model changes afterwards.

``cudnn_autotune(False)`` turns ``torch.backends.cudnn.benchmark`` off inside a block: the evaluation PGD shrinks
its batch as points break, and with autotuning on every new batch size re-benchmarks every convolution.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

_UNSET = object()


def _affine_forward(bn: nn.modules.batchnorm._BatchNorm):
    scale = (bn.running_var.detach().float() + bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight.detach().float()
    shift = -bn.running_mean.detach().float() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().float()
    cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(x: torch.Tensor) -> torch.Tensor:
        key = (x.dtype, x.device, x.dim())
        if key not in cache:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            cache[key] = (scale.to(x.device, x.dtype).view(shape), shift.to(x.device, x.dtype).view(shape))
        s, b = cache[key]
        return torch.addcmul(b, x, s)

    return forward


@contextlib.contextmanager
def batchnorm_as_affine(model: nn.Module, *, all_modules: bool = False) -> Iterator[int]:
    """Inside the block, every BatchNorm of ``model`` that is in eval mode (``all_modules=True``: every one,
    for callers that switch the model to eval mode inside the block, as torchattacks does) and keeps running
    statistics computes the affine map of its running statistics. Its parameters are read once on entry, so use
    it only while they are frozen (an attack). Yields the number of modules swapped; restores them on exit."""
    swapped: list[tuple[nn.Module, object]] = []
    compiled = hasattr(model, "_orig_mod")  # torch.compile: swapping forwards would recompile at every call
    try:
        for module in () if compiled else model.modules():
            if not isinstance(module, nn.modules.batchnorm._BatchNorm):
                continue
            if module.running_mean is None or module.running_var is None or not module.track_running_stats:
                continue
            if module.training and not all_modules:
                continue
            swapped.append((module, module.__dict__.get("forward", _UNSET)))
            module.forward = _affine_forward(module)
        yield len(swapped)
    finally:
        for module, previous in swapped:
            if previous is _UNSET:
                del module.forward
            else:
                module.forward = previous


@contextlib.contextmanager
def cudnn_autotune(enabled: bool) -> Iterator[None]:
    """Set ``torch.backends.cudnn.benchmark`` inside the block and restore it after."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before
