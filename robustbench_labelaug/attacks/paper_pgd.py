"""``PaperPGD``: the PGD attack exactly as the authors' public Label-Augmentation evaluation code runs it.

Their notebook (github.com/f-amerehi/LA, ``LA.ipynb``) calls cleverhans'
``projected_gradient_descent(net, x, eps, 0.01, 40, np.inf)`` on the *normalised* test batch and the *whole*
K+M-output network, then reads accuracy from the first K logits. With cleverhans' defaults that means:

- the input space is the normalised one: eps and the step are in normalised units (eps 0.03 is about
  0.03 * std in pixels, ~0.007 for ImageNet statistics), and nothing is clipped to the image range;
- the labels attacked are the network's own predictions on the clean input, over all K+M logits;
- the loss is the mean cross entropy over all K+M logits;
- random start uniform in [-eps, eps], sign steps of ``alpha``, projection onto the eps-ball; the last iterate
  is returned (no early stop, no best-iterate bookkeeping).

This attack exists to reproduce the paper's numbers; the sound evaluation is
:class:`~robustbench_labelaug.attacks.EarlyStopPGD` on the K-way classifier in pixel space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchattacks.attack import Attack

from ..checks import check_eps, check_steps
from ..errors import UserError
from ..results.rules import DEFAULT_EPS


class PaperPGD(Attack):
    r"""cleverhans-style L-inf PGD in the model's own input space (no clipping; labels default to the model's
    prediction); see the module docstring.

    Arguments:
        model (nn.Module): the network attacked, taking NORMALISED inputs and returning all K+M logits.
        eps (float): maximum perturbation, in the model's input units. (Default: 0.03)
        alpha (float): step size, at most eps. (Default: 0.01, the authors' value)
        steps (int): number of steps. (Default: 40)
        random_start (bool): start from a uniformly random point of the eps-ball. (Default: True)

    Examples::
        >>> attack = PaperPGD(classifier.net, eps=0.03, alpha=0.01, steps=40)
        >>> adv_normalised = attack(classifier.normalize(images))  # labels: the net's own predictions
    """

    def __init__(self, model, eps: float = DEFAULT_EPS, alpha: float = 0.01, steps: int = 40,
                 random_start: bool = True) -> None:
        super().__init__("PaperPGD", model)
        eps, alpha = check_eps("PaperPGD", eps), check_eps("PaperPGD", alpha, "alpha")
        steps = check_steps("PaperPGD", steps)
        if alpha > eps:
            raise UserError(f"PaperPGD: alpha ({alpha}) must be <= eps ({eps}), as cleverhans asserts: lower alpha")
        self.eps = eps
        self.alpha = alpha
        self.steps = steps
        self.random_start = random_start
        self.supported_mode = ["default"]

    @torch.no_grad()
    def attack_labels(self, inputs: torch.Tensor) -> torch.Tensor:
        """The labels cleverhans attacks when none are given: the argmax over all logits on clean inputs."""
        return self.get_logits(inputs.to(self.device)).argmax(1)

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor | None = None,
                generator: torch.Generator | None = None, start: torch.Tensor | None = None) -> torch.Tensor:
        """``generator`` draws the random start for the batch (None: torch's global RNG); ``start``, when given,
        is the start perturbation itself (e.g. ``example_starts``, per example)."""
        x0 = inputs.detach().to(self.device)
        labels = self.attack_labels(x0) if labels is None else labels.detach().to(self.device)
        x = x0.clone()
        if self.random_start:
            x.add_(start.to(x0) if start is not None else
                   torch.empty_like(x0).uniform_(-self.eps, self.eps, generator=generator))
        for _ in range(self.steps):
            x.requires_grad_(True)
            loss = F.cross_entropy(self.get_logits(x), labels)
            (grad,) = torch.autograd.grad(loss, x)
            x = x.detach_().add_(grad.sign_(), alpha=self.alpha)
            x = x0 + (x - x0).clamp_(-self.eps, self.eps)
        return x.detach()
