"""Checks on a model before its numbers are trusted (called by the evaluators' ``check_model``): finite weights
and outputs (a NaN weight would be evaluated to "90 % error" and ranked), and images with the channels its first
convolution takes (a 1-channel image would be broadcast silently by the normalisation of an RGB model)."""

from __future__ import annotations

import torch
from torch import nn

from .errors import UserError


def first_non_finite(model: nn.Module) -> str | None:
    """The name of the first parameter or floating-point buffer of ``model`` holding NaN or inf, else None."""
    for kind, named in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, tensor in named:
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor.detach()).all()):
                return f"{kind} {name}"
    return None


def check_finite_state(state_dict, what: str) -> None:
    """:class:`UserError` naming the first floating-point tensor of a state dict holding NaN or inf (checked before
    anything is built or written)."""
    for name, tensor in state_dict.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{what} has NaN or infinite values in parameter {name}: its numbers would be "
                            "meaningless; use a checkpoint from before training diverged (or retrain with a lower "
                            "learning rate)")


def check_finite_model(model: nn.Module, what: str = "the model") -> None:
    """:class:`UserError` naming the first non-finite parameter or buffer."""
    bad = first_non_finite(model)
    if bad is not None:
        raise UserError(f"{what} has NaN or infinite values in {bad}: its numbers would be meaningless; use a "
                        "checkpoint from before training diverged (or retrain with a lower learning rate)")


def check_finite_logits(logits: torch.Tensor, what: str = "the model") -> None:
    """:class:`UserError` if the model's outputs hold NaN or inf (naming the first such example and logit)."""
    bad = (~torch.isfinite(logits.detach())).nonzero()
    if bad.numel():
        i, j = (int(v) for v in bad[0][:2]) if bad.shape[1] >= 2 else (int(bad[0][0]), 0)
        raise UserError(f"{what} outputs NaN or infinite logits (example {i}, logit {j}: "
                        f"{float(logits[i, j]) if logits.dim() == 2 else 'nan'}): its numbers would be meaningless; "
                        "check its weights and the input images")


def input_channels(model: nn.Module) -> int | None:
    """The channels the model's first convolution takes (None: no convolution)."""
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return int(module.in_channels)
    return None


def check_input_channels(model: nn.Module, x: torch.Tensor, what: str = "the model") -> None:
    """:class:`UserError` if images ``x`` (N, C, H, W) have another number of channels than the model takes."""
    want = input_channels(model)
    if want is not None and x.dim() == 4 and x.shape[1] != want:
        raise UserError(f"the images have {x.shape[1]} channel(s) but {what} takes {want}: convert the images "
                        f"({'grayscale to RGB' if want == 3 and x.shape[1] == 1 else 'to its channels'}) in the "
                        "dataset, do not let broadcasting do it")


def check_model_sees(model: nn.Module, x: torch.Tensor, logits: torch.Tensor, what: str = "the model") -> None:
    """All of the above on one example batch ``x`` and its ``logits``."""
    check_input_channels(model, x, what)
    check_finite_model(model, what)
    check_finite_logits(logits, what)


__all__ = ["check_finite_logits", "check_finite_state", "check_finite_model", "check_input_channels", "check_model_sees",
           "first_non_finite", "input_channels"]
