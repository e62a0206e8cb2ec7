"""``MarginPGD``: L-inf PGD on the scale-invariant DLR margin loss (Croce & Hein, 2020, the loss of AutoAttack's
APGD-DLR), for spotting gradient masking by logit scaling.

The cross entropy of logits ``c * z`` saturates as ``c`` grows: on a confidently classified point its gradient
underflows to exactly zero, and a cross-entropy PGD stops moving although the decision boundary is as close as
before. The difference-of-logits-ratio loss

    DLR(z, y) = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)

(``z_pi1 >= z_pi2 >= z_pi3`` the sorted logits) is unchanged by ``z -> c * z + b`` (``c > 0``), so its gradient
direction does not depend on the logits' scale. It is positive exactly when the point is misclassified.

Iterates are those of ``torchattacks.PGD`` with the cross entropy replaced by the DLR loss: random start uniform
in the eps-ball (clipped to [0,1]), sign steps of ``alpha``, projection onto the eps-ball and [0,1]. Success is
judged as :class:`~robustbench_labelaug.attacks.EarlyStopPGD` judges it: the first iterate (the random start,
every step, the last one) that the model misclassifies is returned, else the last iterate; so the two attacks
compare on equal terms. Costs ``steps`` forward/backward passes and one forward pass. Needs at least 3 classes."""

from __future__ import annotations

import torch
from torchattacks.attack import Attack

from ..checks import check_eps, check_steps
from ..results.rules import DEFAULT_EPS, default_alpha
from .pgd import linf_bounds


def dlr_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample DLR loss (see the module docstring) of ``logits`` (N x C, C >= 3) for the true ``labels``."""
    if logits.shape[1] < 3:
        raise ValueError(f"the DLR loss needs at least 3 logits, got {logits.shape[1]}")
    top3 = logits.topk(3, dim=1).values
    true = logits.gather(1, labels[:, None]).squeeze(1)
    best_other = torch.where(logits.argmax(1) == labels, top3[:, 1], top3[:, 0])
    return -(true - best_other) / (top3[:, 0] - top3[:, 2] + 1e-12)


class MarginPGD(Attack):
    r"""L-inf PGD (untargeted) on the DLR margin loss; see the module docstring.

    Distance Measure : Linf

    Arguments:
        model (nn.Module): model to attack (inputs in [0,1]), at least 3 logits.
        eps (float): maximum perturbation, in pixel units. (Default: 0.03, ``results.rules.DEFAULT_EPS``)
        alpha (float): step size; None gives 2.5 * eps / steps. (Default: None)
        steps (int): number of steps. (Default: 10)
        random_start (bool): start from a uniformly random point of the eps-ball. (Default: True)

    Shape:
        - images: :math:`(N, C, H, W)` in [0, 1].
        - labels: :math:`(N)` true labels.
        - output: :math:`(N, C, H, W)`, the first misclassified iterate, else the last one.

    Examples::
        >>> attack = MarginPGD(model, eps=8/255, steps=40)
        >>> adv_images = attack(images, labels)
    """

    def __init__(self, model, eps: float = DEFAULT_EPS, alpha: float | None = None, steps: int = 10,
                 random_start: bool = True) -> None:
        super().__init__("MarginPGD", model)
        eps, steps = check_eps("MarginPGD", eps), check_steps("MarginPGD", steps)
        alpha = None if alpha is None else check_eps("MarginPGD", alpha, "alpha")
        self.eps = eps
        self.steps = steps
        self.alpha = default_alpha(eps, steps) if alpha is None else alpha
        self.random_start = random_start
        self.supported_mode = ["default"]

    def forward(self, images: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None, start: torch.Tensor | None = None) -> torch.Tensor:
        """The first misclassified iterate, else the last; ``generator`` draws the random start for the batch
        (default: torch's global RNG), or ``start`` is the start perturbation itself, shaped like ``images``
        (e.g. :func:`~robustbench_labelaug.attacks.early_stop_pgd.example_starts`: drawn per example, so a point's
        result does not depend on its batch)."""
        images = images.detach().to(self.device)
        labels = labels.detach().to(self.device)
        lower, upper = linf_bounds(images, self.eps)
        adv = images.clone()
        if self.random_start:
            noise = (start.to(adv) if start is not None
                     else torch.empty_like(adv).uniform_(-self.eps, self.eps, generator=generator))
            adv.add_(noise).clamp_(0.0, 1.0)
        best = adv.clone()
        fooled = torch.zeros(len(labels), dtype=torch.bool, device=adv.device)
        for _ in range(self.steps):
            adv.requires_grad_(True)
            logits = self.get_logits(adv)
            fooled = self._keep_fooling(best, adv, logits, labels, fooled)
            (grad,) = torch.autograd.grad(dlr_loss(logits, labels).sum(), adv)
            adv = adv.detach_().add_(grad.sign_(), alpha=self.alpha)
            adv = torch.minimum(adv, upper, out=adv)
            adv = torch.maximum(adv, lower, out=adv)
        with torch.no_grad():
            self._keep_fooling(best, adv, self.get_logits(adv), labels, fooled)
        return torch.where(fooled.view(-1, *[1] * (adv.dim() - 1)), best, adv).detach()

    @staticmethod
    def _keep_fooling(best: torch.Tensor, adv: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
                      fooled: torch.Tensor) -> torch.Tensor:
        """Copy the iterates that fool the model for the first time into ``best``; the updated ``fooled``."""
        new = (logits.detach().argmax(1) != labels) & ~fooled
        best[new] = adv.detach()[new]
        return fooled | new
