"""The model as the training attack sees it: its train/eval flags and ``requires_grad`` kept and restored around
the attack (:func:`preserved_state`), and under float16 autocast the loss-scaled view the attack differentiates
(:func:`scaled_attack_model`: sign steps are unchanged by a positive scale, the gradient no longer underflows)."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def device_of(model: nn.Module) -> torch.device | None:
    param = next(iter(model.parameters()), None)
    return None if param is None else param.device


@contextlib.contextmanager
def preserved_state(model: nn.Module, freeze: bool):
    """Restore every module's train/eval flag and every parameter's requires_grad on exit; optionally
    freeze the parameters meanwhile."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    if freeze:
        for p, _ in flags:
            p.requires_grad_(False)
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            p.requires_grad_(flag)


# -- fp16: the attack loss is scaled (sign steps do not change under a positive scale) ---------------------------
FP16_GRAD_TARGET = 1.0  # the largest |d loss / d logit| after scaling: far from fp16's overflow and underflow


def _power_of_two_scale(peak: torch.Tensor) -> torch.Tensor:
    """2**floor(log2(FP16_GRAD_TARGET / peak)) where ``peak`` is finite and > 0, else 1."""
    ok = torch.isfinite(peak) & (peak > 0)
    safe = torch.where(ok, peak, torch.ones_like(peak))
    return torch.where(ok, torch.exp2(torch.floor(torch.log2(FP16_GRAD_TARGET / safe))), torch.ones_like(peak))


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the (float32) logits' gradient by a power of two that brings its
    largest entry to about ``FP16_GRAD_TARGET``, before it is cast to float16 for the network's backward pass.

    ``per_sample``: one power of two per sample (row), from that row's largest entry. A confident sample's
    logit gradient can be 1e-8 while an unsure one's in the same batch is 0.1: one scale for the batch leaves the
    confident one's gradient below float16's range. Each sample's input gradient depends on its own logits only
    when the samples do not interact (BatchNorm frozen: the hook's ``attack_mode="eval"``), so there a positive
    per-row scale keeps every sample's sign step equal to float32's. With batch statistics (``attack_mode=
    "train"``) samples interact and one scale per batch is used."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, per_sample: bool = True) -> torch.Tensor:
        ctx.per_sample = bool(per_sample) and logits.dim() > 1
        return logits.view_as(logits)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        g = grad.detach().abs()
        if ctx.per_sample:
            scale = _power_of_two_scale(g.flatten(1).amax(1)).view(-1, *[1] * (grad.dim() - 1))
        else:
            scale = _power_of_two_scale(g.amax())
        return grad * scale, None


class _ScaledLossModel(nn.Module):
    """``model``'s logits in float32 with :class:`_ScaleGradient` on them: a loss on these logits is scaled before
    the float16 backward (the attack's gradient keeps its sign and is no longer flushed to zero)."""

    def __init__(self, model: nn.Module, per_sample: bool = True) -> None:
        super().__init__()
        self.model = model
        self.per_sample = per_sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ScaleGradient.apply(self.model(x).float(), self.per_sample)


def scaled_attack_model(model: nn.Module, autocast_dtype: torch.dtype | None, per_sample: bool = True) -> nn.Module:
    """The model the attack differentiates: ``model`` itself, or under float16 autocast the loss-scaled view
    (``per_sample``: one scale per sample; pass False when the samples interact, e.g. BatchNorm in train mode)."""
    return _ScaledLossModel(model, per_sample) if autocast_dtype == torch.float16 else model
