"""``EarlyStopPGD``: L-inf PGD for evaluation that attacks only what it can still break, and keeps what it broke.

Same iterates as ``torchattacks.PGD`` (random start in the eps-ball, sign steps on the cross entropy, projection
onto the eps-ball and [0,1]; the random start is drawn for the whole batch, so with the same RNG state the
iterates agree up to float rounding), evaluated differently:

- points the model already misclassifies are not attacked;
- a point counts as broken as soon as ANY iterate (the random start, every step, the last one) fools the
  classifier, and that fooling iterate is returned, where ``torchattacks.PGD`` returns the last iterate only;
- broken points leave the batch at once, so the work shrinks as the attack succeeds.

Hence it is at least as strong as ``torchattacks.PGD`` with the same settings and seed, and much cheaper on models
that break easily. Per batch it costs at most ``steps`` forward/backward passes plus two forward passes (clean
and last iterate), all on the remaining points only."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torchattacks.attack import Attack

from .pgd import linf_bounds


class PGDOutcome(NamedTuple):
    """Per-sample result of :meth:`EarlyStopPGD.perturb`.

    adv: the fooling iterate where ``broken``, the last iterate where the attack failed, the clean image where
    the point was misclassified to begin with. pred: the predicted label at ``adv``. broken: a correctly
    classified point was fooled. clean_pred: the prediction on the clean image. iterate: which iterate fooled it
    (0 = the random start, s = after s steps), -1 where not broken."""

    adv: torch.Tensor
    pred: torch.Tensor
    broken: torch.Tensor
    clean_pred: torch.Tensor
    iterate: torch.Tensor


class EarlyStopPGD(Attack):
    r"""PGD (L-inf, untargeted) with early stopping and any-iterate success; see the module docstring.

    Arguments:
        model (nn.Module): model to attack (inputs in [0,1]).
        eps (float): maximum perturbation, in pixel units. (Default: 0.03)
        alpha (float): step size; None gives 2.5 * eps / steps. (Default: None)
        steps (int): number of steps. (Default: 40)
        random_start (bool): start from a uniformly random point of the eps-ball. (Default: True)
        pred_classes (int): judge success on the first ``pred_classes`` logits only while the loss uses all of
            them (a K+M head attacked through its full loss); None: all logits. (Default: None)

    Examples::
        >>> attack = EarlyStopPGD(model, eps=0.03, steps=40)
        >>> adv_images = attack(images, labels)
        >>> outcome = attack.perturb(images, labels)  # adv, pred, broken, clean_pred, iterate
    """

    def __init__(self, model, eps: float = 0.03, alpha: float | None = None, steps: int = 40,
                 random_start: bool = True, pred_classes: int | None = None) -> None:
        super().__init__("EarlyStopPGD", model)
        self.eps = eps
        self.steps = steps
        self.alpha = 2.5 * eps / steps if alpha is None else alpha
        self.random_start = random_start
        self.pred_classes = pred_classes
        self.supported_mode = ["default"]

    def forward(self, images: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self._perturb(images, labels, generator).adv

    def perturb(self, images: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None) -> PGDOutcome:
        """Attack and return the per-sample :class:`PGDOutcome` (model mode and torchattacks normalisation are
        handled as in ``__call__``). ``generator`` draws the random start (default: torch's global RNG)."""
        given_training = self.model.training
        self._change_model_mode(given_training)
        try:
            if self._normalization_applied is True:
                self._set_normalization_applied(False)
                try:
                    out = self._perturb(self.inverse_normalize(images), labels, generator)
                finally:
                    self._set_normalization_applied(True)
                return out._replace(adv=self.normalize(out.adv))
            return self._perturb(images, labels, generator)
        finally:
            self._recover_model_mode(given_training)

    def _predict(self, logits: torch.Tensor) -> torch.Tensor:
        return (logits if self.pred_classes is None else logits[:, : self.pred_classes]).argmax(1)

    def _perturb(self, images: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator | None) -> PGDOutcome:
        images = images.detach().to(self.device)
        labels = labels.detach().to(self.device)
        with torch.no_grad():
            clean_pred = self._predict(self.get_logits(images))
        adv, pred = images.clone(), clean_pred.clone()
        broken = torch.zeros_like(labels, dtype=torch.bool)
        iterate = torch.full_like(labels, -1)
        # drawn for the whole batch (as torchattacks does), so equal RNG states give equal starts
        noise = (torch.empty_like(images).uniform_(-self.eps, self.eps, generator=generator)
                 if self.random_start else None)

        active = (clean_pred == labels).nonzero().squeeze(1)  # batch positions still being attacked
        x, y = images[active], labels[active]
        lower, upper = linf_bounds(x, self.eps)
        if noise is not None:
            x = x.add_(noise[active]).clamp_(0.0, 1.0)
        step = 0
        while active.numel():
            last = step == self.steps
            with torch.set_grad_enabled(not last):
                logits = self.get_logits(x.requires_grad_(not last))
            fooled = self._predict(logits.detach()) != y
            any_fooled = bool(fooled.any())
            if any_fooled:
                hit = active[fooled]
                adv[hit] = x.detach()[fooled]
                pred[hit] = self._predict(logits.detach()[fooled])
                broken[hit] = True
                iterate[hit] = step
            if last:
                keep = ~fooled
                adv[active[keep]] = x.detach()[keep]  # survived every iterate: the last one
                break
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
            x = x.detach_().add_(grad.sign_(), alpha=self.alpha)
            x = torch.minimum(x, upper, out=x)
            x = torch.maximum(x, lower, out=x)
            if any_fooled:
                keep = ~fooled
                active, x, y, lower, upper = active[keep], x[keep], y[keep], lower[keep], upper[keep]
            step += 1
        return PGDOutcome(adv, pred, broken, clean_pred, iterate)
