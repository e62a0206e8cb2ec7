"""Does any gradient reach the input? A model whose logits are detached, or computed without autograd
(``argmax`` one-hot, numpy, ``torch.no_grad`` inside), gives gradient attacks nothing to follow: the most
extreme gradient masking. The gradient attacks call :func:`require_input_gradient` before they start, so such a
model fails with one clear line instead of a ``RuntimeError`` from ``torch.autograd.grad``; the masking evaluator
reports it as its failed check ``gradient_reaches_input``."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError


def gradient_problem(model: nn.Module, images: torch.Tensor) -> str | None:
    """None when the logits of ``model`` at ``images`` have a gradient w.r.t. the input (it may still be zero);
    otherwise why not, in words."""
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        if not (isinstance(logits, torch.Tensor) and logits.requires_grad):
            return "the logits do not require grad (detached, or computed outside autograd)"
        (grad,) = torch.autograd.grad(logits.float().sum(), x, allow_unused=True)
    if grad is None:
        return "the logits do not depend on the input in the autograd graph"
    return None


def require_input_gradient(model: nn.Module, images: torch.Tensor, evaluator: str) -> None:
    """:class:`UserError` (one line) when no gradient reaches the input of ``model`` (see :func:`gradient_problem`)."""
    problem = gradient_problem(model, images)
    if problem is not None:
        raise UserError(f"{evaluator}: no gradient reaches the input ({problem}), so gradient attacks cannot run "
                        "and their number would mean nothing; the masking evaluator reports this as its failed check "
                        "'gradient_reaches_input'")
