"""TRADES (Zhang et al., ICML 2019): ``CE(f(x), y) + beta * KL(p(x) || p(x_adv))``, with ``x_adv`` found by
maximising that KL in the L-inf ball (the reference code's attack), per sample, with class-wise beta (CFA's CCR),
class-wise epsilon (CFA's CCM, FRL's remargin) and class-wise weights of the natural term (FRL's reweight).

TRADES needs the clean logits besides the adversarial ones, so it is not a timm ``mixup_fn``: ``rbla train
--adv-mode trades`` runs it in place of the hook's batch transform; ``rbla timm-train`` refuses it.

Written from the TRADES paper and its reference code (yaodongyu/TRADES, as used by PKU-ML/CFA and
hannxu123/fair_robust). Deviations, all deliberate:

- the natural logits of the loss's KL term are those of the natural term (the reference computes
  ``model(x_natural)`` a second time in train mode, which moves BatchNorm's running statistics once more and
  costs a forward pass; the values are the same);
- the attack runs with BatchNorm as its running-statistics affine map (``attacks/frozen_model.py``) and frozen
  parameters, which is the reference's ``model.eval()`` with fewer buffers; the step size defaults to the
  plugin's ``2.5 * eps / steps`` (the reference: 0.007 at eps 0.031, 10 steps, i.e. 2.26 * eps / steps);

Two forms of the per-sample loss (``loss_form``): ``zhang`` (the default, TRADES' and FRL's reference code)
``w_c CE + beta_c KL``, and ``normalised`` (CFA's reference code, set by the CFA policy) ``(1 - b_c) w_c CE +
b_c KL`` with ``b_c = beta_c / (1 + beta_c)``: Zhang's loss divided by ``1 + beta_c``, the same minimiser at a
constant beta, a class-dependent weight under CCR's class-wise beta (a hard class's loss counts more).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks.frozen_model import batchnorm_as_affine
from ..attacks.pgd import per_sample_eps
from ..errors import UserError
from ..hook.attack_model import preserved_state
from ..hook.class_params import check_step_scale, class_tensor
from ..models.classifier import KWayClassifier, unwrap_model
from ..results.vocab import TRADES_FORMS, TradesForm

TRADES_START_STD = 0.001  # the reference's random start: x + 0.001 * N(0, 1)
LOSS_FORMS = TRADES_FORMS


def trades_weights(beta: torch.Tensor, form: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight of the natural CE, weight of the KL) per sample for the TRADES ``beta`` of its class: ``(1, beta)``
    in Zhang's form, ``(1 - b, b)`` with ``b = beta / (1 + beta)`` in CFA's normalised form."""
    if form == TradesForm.ZHANG:
        return torch.ones_like(beta), beta
    if form == TradesForm.NORMALISED:
        b = beta / (1.0 + beta)
        return 1.0 - b, b
    raise UserError(f"unknown TRADES loss form {form!r}: use one of {', '.join(LOSS_FORMS)}")


def kl_per_sample(logits_adv: torch.Tensor, logits_nat: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(logits_nat) || softmax(logits_adv))`` summed over classes, one value per sample (the
    reference's ``KLDivLoss(log_softmax(adv), softmax(nat))``)."""
    log_q = F.log_softmax(logits_adv.float(), dim=1)
    p = F.softmax(logits_nat.float(), dim=1)
    return F.kl_div(log_q, p, reduction="none").sum(1)


def trades_attack(model: nn.Module, x: torch.Tensor, eps: float | torch.Tensor, alpha: float, steps: int,
                  frozen_bn: bool = True) -> torch.Tensor:
    """TRADES' KL attack: start at ``x + 0.001 N(0,1)``, ``steps`` sign-ascent steps of size ``alpha`` on
    ``sum_i KL(p(x_i) || p(x_adv_i))``, each followed by projection onto the L-inf ball of radius ``eps`` (a
    number or one per sample) and [0,1]. ``model`` maps [0,1] images to the logits the KL is taken over."""
    x = x.detach()
    radius = per_sample_eps(eps, x) if not isinstance(eps, (int, float)) else float(eps)
    with _attack_state(model, frozen_bn):
        with torch.no_grad():
            p_nat = F.softmax(model(x).float(), dim=1)
        x_adv = x + TRADES_START_STD * torch.randn_like(x)
        lower, upper = x - radius, x + radius
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.kl_div(F.log_softmax(model(x_adv).float(), dim=1), p_nat, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = x_adv.detach() + alpha * grad.sign()
            x_adv = torch.minimum(torch.maximum(x_adv, lower), upper).clamp_(0.0, 1.0)
    return x_adv.clamp(0.0, 1.0).detach()


@contextlib.contextmanager
def _attack_state(model: nn.Module, frozen_bn: bool):
    inner = unwrap_model(model.model if isinstance(model, KWayClassifier) else model)
    with preserved_state(inner, freeze=True):
        inner.eval()
        with batchnorm_as_affine(inner, all_modules=True) if frozen_bn else contextlib.nullcontext():
            yield


class TradesLoss:
    """``loss, logits_adv = trades(train_model, x, y)``: the TRADES objective of one batch.

    Per sample i of class c: ``w_c * CE(f(x_i), y_i) + beta_c * KL(p(x_i) || p(x_adv_i))`` (``loss_form``
    ``zhang``) or ``(1 - b_c) w_c CE + b_c KL`` with ``b_c = beta_c / (1 + beta_c)`` (``normalised``, CFA's),
    averaged over the batch; ``x_adv_i`` is found by :func:`trades_attack` at radius ``eps_c``.
    ``class_eps``/``class_beta``/``class_weight`` are (K,) tensors or None (uniform ``eps``/``beta``/1), set between
    epochs by a policy (``robustbench_labelaug.fair``) with :meth:`set_class_params`, which also sets the loss
    form and FRL's attack step rule (``step_scale``: the step is that share of the batch's largest radius).

    Args:
        model: the module the attack differentiates (the model itself, not its DDP wrapper); K outputs.
        num_classes: K.
        eps, steps, alpha: the KL attack (pixel units; alpha defaults to 2.5*eps/steps).
        beta: TRADES' trade-off (the paper's 6 on CIFAR-10).
        autocast_dtype: run the attack under autocast with this dtype (bfloat16; float16 is refused: the KL
            attack has no per-step loss scaling).
    """

    def __init__(self, model: nn.Module, num_classes: int, eps: float, steps: int = 10, alpha: float | None = None,
                 beta: float = 6.0, autocast_dtype: torch.dtype | None = None) -> None:
        if beta < 0:
            raise UserError(f"TRADES beta must be >= 0, got {beta}")
        if autocast_dtype == torch.float16:
            raise UserError("TRADES' KL attack has no float16 loss scaling: use --amp-dtype bfloat16")
        self.model = unwrap_model(model)
        self.num_classes = int(num_classes)
        self.eps, self.steps = float(eps), int(steps)
        self.alpha = float(alpha) if alpha is not None else 2.5 * self.eps / self.steps
        self.beta = float(beta)
        self.autocast_dtype = autocast_dtype
        self.kway = KWayClassifier(self.model, self.num_classes)
        self.class_eps: torch.Tensor | None = None
        self.class_weight: torch.Tensor | None = None
        self.class_beta: torch.Tensor | None = None
        self.loss_form = TradesForm.ZHANG
        self.step_scale: float | None = None

    def set_class_params(self, class_eps=None, class_weight=None, class_beta=None, loss_form: str = TradesForm.ZHANG,
                         step_scale: float | None = None) -> None:
        """Per-class radius (> 0), natural-term weight (>= 0) and KL weight beta (>= 0), None: uniform; the loss
        form (``zhang`` or ``normalised``); the attack step as a share of the batch's largest radius (None:
        ``alpha``)."""
        if loss_form not in LOSS_FORMS:
            raise UserError(f"unknown TRADES loss form {loss_form!r}: use one of {', '.join(LOSS_FORMS)}")
        self.class_eps = class_tensor(class_eps, self.num_classes, "class_eps", positive=True)
        self.class_weight = class_tensor(class_weight, self.num_classes, "class_weight", positive=False)
        self.class_beta = class_tensor(class_beta, self.num_classes, "class_beta", positive=False)
        self.loss_form = loss_form
        self.step_scale = check_step_scale(step_scale)

    def attack_step(self, eps: float | torch.Tensor) -> float:
        """The step size of one batch: ``alpha``, or (FRL's remargin) ``step_scale`` times its largest radius."""
        if self.step_scale is None:
            return self.alpha
        return self.step_scale * (float(eps) if isinstance(eps, (int, float)) else float(eps.max()))

    def attack(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        eps = self.eps if self.class_eps is None else self.class_eps[y.cpu()]
        autocast = (torch.autocast(x.device.type, dtype=self.autocast_dtype) if self.autocast_dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            return trades_attack(self.kway, x, eps, self.attack_step(eps), self.steps)

    def loss(self, logits_nat: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The batch loss from the natural and adversarial logits (first K columns are used)."""
        k = self.num_classes
        ce = F.cross_entropy(logits_nat[:, :k].float(), y, reduction="none")
        kl = kl_per_sample(logits_adv[:, :k], logits_nat[:, :k])
        beta = (torch.full_like(kl, self.beta) if self.class_beta is None
                else self.class_beta.to(device=kl.device, dtype=kl.dtype)[y])
        if self.class_weight is not None:
            ce = ce * self.class_weight.to(device=ce.device, dtype=ce.dtype)[y]
        w_nat, w_kl = trades_weights(beta, self.loss_form)
        return (w_nat * ce + w_kl * kl).mean()

    def __call__(self, train_model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 autocast: contextlib.AbstractContextManager | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Attack, then two training-mode forward passes (natural, adversarial) through ``train_model``; returns
        the loss and the adversarial logits (detached)."""
        x_adv = self.attack(x, y)
        with autocast if autocast is not None else contextlib.nullcontext():
            logits_nat = train_model(x)
            logits_adv = train_model(x_adv)
            loss = self.loss(logits_nat, logits_adv, y)
        return loss, logits_adv.detach()

    def __repr__(self) -> str:
        return (f"TradesLoss(K={self.num_classes}, eps={self.eps}, steps={self.steps}, alpha={self.alpha:.5f}, "
                f"beta={self.beta}, loss={self.loss_form}" + (", class_eps" if self.class_eps is not None else "")
                + (f", step={self.step_scale}*max(eps_c)" if self.step_scale is not None else "")
                + (", class_beta" if self.class_beta is not None else "")
                + (", class_weight" if self.class_weight is not None else "") + ")")
