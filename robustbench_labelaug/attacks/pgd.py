"""``PGD``: torchattacks' L-inf PGD with the projection fused and done in place.

Same algorithm, arguments and iterates as ``torchattacks.PGD`` (random start, sign steps, projection onto the
eps-ball and [0,1]) up to float rounding: the eps-ball and the image range are intersected once per call into
per-pixel bounds, so each step costs one clamp instead of four element-wise passes. Normalisation and model-mode
handling stay torchattacks' own (``set_normalization_used``, ``set_model_training_mode``).

Per-sample radius: ``attack(images, labels, eps=tensor_of_N)`` attacks sample i inside its own ball of radius
``eps[i]`` (random start uniform in that ball, projection per sample; the step size ``alpha`` stays as set). A
tensor whose entries are all equal runs the scalar code with that value, so a constant radius gives exactly the
iterates of ``eps=float`` (class-wise epsilon in CFA / FRL, see ``robustbench_labelaug.fair``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchattacks

from ..checks import check_eps, check_steps
from ..results.rules import DEFAULT_EPS


def linf_bounds(images: torch.Tensor, eps: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel lower/upper bounds of the L-inf ball of radius ``eps`` around ``images``, inside [0,1]; ``eps`` is
    a number or a tensor broadcastable to ``images`` (one radius per sample: shape (N, 1, 1, 1))."""
    return (images - eps).clamp_(min=0.0), (images + eps).clamp_(max=1.0)


def per_sample_eps(eps: torch.Tensor | float | None, images: torch.Tensor) -> float | torch.Tensor | None:
    """``eps`` as the attack uses it: None (the attack's own), a float (all samples alike; also for a tensor whose
    entries are all equal, so the scalar code runs), or an (N, 1, 1, 1) tensor in the images' dtype."""
    if eps is None or isinstance(eps, (int, float)):
        return None if eps is None else float(eps)
    eps = torch.as_tensor(eps).detach().flatten()
    if eps.numel() != images.shape[0]:
        raise ValueError(f"per-sample eps has {eps.numel()} entries for a batch of {images.shape[0]}")
    if not bool(torch.isfinite(eps).all()) or bool((eps < 0).any()):
        raise ValueError("per-sample eps must be finite and >= 0")
    if eps.numel() == 0 or bool((eps == eps[0]).all()):
        return float(eps[0]) if eps.numel() else None
    return eps.to(device=images.device, dtype=images.dtype).view(-1, *([1] * (images.dim() - 1)))


class PGD(torchattacks.PGD):
    """torchattacks ``PGD`` (untargeted) with a fused in-place projection; see the module docstring. The default
    eps is the package's (``results.rules.DEFAULT_EPS``, 0.03; torchattacks' is 8/255)."""

    def __init__(self, model, eps: float = DEFAULT_EPS, alpha: float = 2 / 255, steps: int = 10,
                 random_start: bool = True) -> None:
        super().__init__(model, eps=check_eps("PGD", eps), alpha=check_eps("PGD", alpha, "alpha"),
                         steps=check_steps("PGD", steps), random_start=random_start)

    def forward(self, images: torch.Tensor, labels: torch.Tensor,
                eps: torch.Tensor | float | None = None) -> torch.Tensor:
        """``eps``: None (the attack's own), a float, or one radius per sample (see the module docstring)."""
        images = images.detach().to(self.device)
        eps = per_sample_eps(eps, images)
        if eps is None:
            eps = self.eps
        if self.targeted:
            if not isinstance(eps, float) or eps != self.eps:
                raise ValueError("a targeted PGD takes no per-sample eps")
            return super().forward(images, labels)
        labels = labels.detach().to(self.device)
        lower, upper = linf_bounds(images, eps)
        adv = images.clone()
        if self.random_start:
            if isinstance(eps, float):
                adv.add_(torch.empty_like(adv).uniform_(-eps, eps)).clamp_(0.0, 1.0)
            else:  # uniform in each sample's own ball
                adv.add_(torch.empty_like(adv).uniform_(-1.0, 1.0).mul_(eps)).clamp_(0.0, 1.0)
        for _ in range(self.steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(self.get_logits(adv), labels)
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach_().add_(grad.sign_(), alpha=self.alpha)
            adv = torch.minimum(adv, upper, out=adv)
            adv = torch.maximum(adv, lower, out=adv)
        return adv
