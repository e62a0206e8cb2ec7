"""``PGD``: torchattacks' L-inf PGD with the projection fused and done in place.

Same algorithm, arguments and iterates as ``torchattacks.PGD`` (random start, sign steps, projection onto the
eps-ball and [0,1]) up to float rounding: the eps-ball and the image range are intersected once per call into
per-pixel bounds, so each step costs one clamp instead of four element-wise passes. Normalisation and model-mode
handling stay torchattacks' own (``set_normalization_used``, ``set_model_training_mode``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchattacks

from ..checks import check_eps, check_steps


def linf_bounds(images: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel lower/upper bounds of the L-inf ball of radius ``eps`` around ``images``, inside [0,1]."""
    return (images - eps).clamp_(min=0.0), (images + eps).clamp_(max=1.0)


class PGD(torchattacks.PGD):
    """torchattacks ``PGD`` (untargeted) with a fused in-place projection; see the module docstring."""

    def __init__(self, model, eps: float = 8 / 255, alpha: float = 2 / 255, steps: int = 10,
                 random_start: bool = True) -> None:
        super().__init__(model, eps=check_eps("PGD", eps), alpha=check_eps("PGD", alpha, "alpha"),
                         steps=check_steps("PGD", steps), random_start=random_start)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.targeted:
            return super().forward(images, labels)
        images = images.detach().to(self.device)
        labels = labels.detach().to(self.device)
        lower, upper = linf_bounds(images, self.eps)
        adv = images.clone()
        if self.random_start:
            adv.add_(torch.empty_like(adv).uniform_(-self.eps, self.eps)).clamp_(0.0, 1.0)
        for _ in range(self.steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(self.get_logits(adv), labels)
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach_().add_(grad.sign_(), alpha=self.alpha)
            adv = torch.minimum(adv, upper, out=adv)
            adv = torch.maximum(adv, lower, out=adv)
        return adv
