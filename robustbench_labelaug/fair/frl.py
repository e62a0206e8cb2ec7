"""FRL: Fair Robust Learning (Xu, Liu, Li, Jain, Tang; ICML 2021, "To be Robust or to be Fair"), as a policy.

After each epoch, on the held-out validation split: class c's clean error ``e_c``, boundary error
``b_c = acc_c - robust_acc_c`` and the totals ``e``, ``b`` give the fairness-constraint violations
``g0_c = e_c - e - tau0`` and ``g1_c = b_c - b - tau1`` (bounds tau0 = tau1 = 0.07). The Lagrange multipliers move
by the paper's rates and are projected back (clipped at 0, total at most ``lim`` = 0.5):

- reweight (RW): ``l0 <- P(l0 + rate1 * g0)``, ``l1 <- P(l1 + 2 * rate1 * g1)`` (rate1 = 0.05, halved every 40
  epochs); a class's weight is ``1/K + l_c - (1/K) * sum(l)``;
- remargin (RM): ``l2 <- l2 + rate2 * g1`` (rate2 = 0.2, not projected); class c's radius is
  ``eps * clip(exp(2 * l2_c), 0.98, 3)``, and the attack's step is a quarter of the batch's largest radius
  (``utils_frl2.trades_adv``: ``max(eps_c) / 4``), so the largest margin is reachable.

The reference (``frlrmrw.py``) fine-tunes a hot-start robust model and updates the multipliers *before* each
epoch from the current model's validation errors, the first time from the hot start itself: here the update
before epoch ``e + 1`` is made from the statistics after epoch ``e`` (the same model), and
:meth:`FRLPolicy.begin_training` makes the first one from the starting model (``rbla train
--initial-checkpoint``, timm's ``--initial-checkpoint``), so epoch 0 already trains with updated weights.

With TRADES (FRL's base, ``--adv-mode trades``) the natural term of class c is weighted ``K * w0_c`` and its KL
term ``beta * K * w1_c``. Written from the paper and hannxu123/fair_robust (``frlrmrw.py``, ``utils_frl2.py``;
read, not copied). Deviations:

- weights are multiplied by K so they average 1 over classes and scale a batch-mean loss; the reference divides
  by the batch's sum of weights (the same on a class-balanced batch, up to sampling noise);
- with ``adv``/``adv_plus`` (one loss term, the adversarial cross entropy, which bounds clean + boundary error)
  a class's weight is the mean of its two weights, ``K * (w0_c + w1_c) / 2``: FRL with Madry AT or Adv+ is this
  project's combination, not the paper's;
- the validation PGD is the plugin's (``--fair-val-steps``, default 10; the reference: 20 steps at 8/255, step
  2/255: the plugin's step is 2.5 eps / steps);
- the rate halving follows the reference's 1-based ``now_epoch % 40 == 0``: the update for (0-based) epoch
  ``e`` halves rate1 first when ``e + 1`` is divisible by 40.
"""

from __future__ import annotations

from typing import Any

import torch

from ..results.vocab import Fair
from .policy import EpochStats, FairPolicy

FRL_MODES = ("rw", "rm", "rwrm")
REMARGIN_STEP_SCALE = 0.25  # utils_frl2.trades_adv: step_size = max(new_eps) / 4


def project_multipliers(lmb: torch.Tensor, lim: float) -> torch.Tensor:
    """Clip at 0, and scale down to a total of ``lim`` if the total exceeds it."""
    lmb = lmb.clamp(min=0.0)
    total = float(lmb.sum())
    return lmb * (lim / total) if total > lim else lmb


def class_weights_from_multipliers(lmb: torch.Tensor) -> torch.Tensor:
    """``1/K + l_c - (1/K) * sum_j l_j`` (the reference's cost-sensitive weights; they sum to 1)."""
    k = lmb.numel()
    return 1.0 / k + lmb - lmb.sum() / k


def remargin_factor(lmb2: torch.Tensor, low: float = 0.98, high: float = 3.0) -> torch.Tensor:
    """``clip(exp(2 * l2_c), 0.98, 3)``: the factor of class c's radius."""
    return torch.exp(2.0 * lmb2).clamp(low, high)


def frl_violations(val_clean: torch.Tensor, val_robust: torch.Tensor, counts: torch.Tensor, bound0: float,
                   bound1: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(g0, g1): class clean/boundary error minus the total's minus the bound (all from accuracies in [0,1])."""
    counts = counts.to(torch.float64)
    acc, rob = val_clean.to(torch.float64), val_robust.to(torch.float64)
    total_acc = float((acc * counts).sum() / counts.sum())
    total_rob = float((rob * counts).sum() / counts.sum())
    g0 = (1.0 - acc) - (1.0 - total_acc) - bound0
    g1 = (acc - rob) - (total_acc - total_rob) - bound1
    return g0, g1


class FRLPolicy(FairPolicy):
    """FRL's reweight / remargin; see the module docstring."""

    name = Fair.FRL
    needs_validation = True
    updates_before_training = True  # the reference's first update is made from the hot start, before epoch 1

    def __init__(self, num_classes: int, eps: float, beta: float = 6.0, mode: str = "rwrm", bound0: float = 0.07,
                 bound1: float = 0.07, rate1: float = 0.05, rate2: float = 0.2, lim: float = 0.5,
                 halve_every: int = 40) -> None:
        super().__init__(num_classes, eps, beta)
        if mode not in FRL_MODES:
            raise ValueError(f"unknown FRL mode {mode!r}: use {', '.join(FRL_MODES)}")
        self.mode = mode
        self.bound0, self.bound1 = float(bound0), float(bound1)
        self.rate1, self.rate2, self.lim = float(rate1), float(rate2), float(lim)
        self.halve_every = int(halve_every)
        k = self.num_classes
        self.lmb = torch.zeros(3, k, dtype=torch.float64)  # l0 (clean), l1 (boundary), l2 (margin)
        self.start_violations: torch.Tensor | None = None  # (g0, g1) of the starting model: the first update's

    def step(self, for_epoch: int, val_clean: torch.Tensor, val_robust: torch.Tensor, counts: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One multiplier update from the validation statistics of the current model, for (0-based) epoch
        ``for_epoch`` (the reference's ``now_epoch = for_epoch + 1``, whose rate1 is halved first when
        ``now_epoch`` is divisible by ``halve_every``)."""
        if self.halve_every and (for_epoch + 1) % self.halve_every == 0:
            self.rate1 /= 2
        g0, g1 = frl_violations(val_clean, val_robust, counts, self.bound0, self.bound1)
        if self.mode in ("rw", "rwrm"):
            self.lmb[0] = project_multipliers(self.lmb[0] + self.rate1 * g0, self.lim)
            self.lmb[1] = project_multipliers(self.lmb[1] + 2 * self.rate1 * g1, self.lim)
        if self.mode in ("rm", "rwrm"):
            self.lmb[2] = self.lmb[2] + self.rate2 * g1
        return g0, g1

    def class_params(self, epoch: int, trades: bool) -> dict[str, torch.Tensor | None]:
        out = super().class_params(epoch, trades)
        if self.mode in ("rm", "rwrm"):
            out["step_scale"] = REMARGIN_STEP_SCALE
        if not bool(self.lmb.any()):
            return out
        k = self.num_classes
        w0 = k * class_weights_from_multipliers(self.lmb[0])
        w1 = k * class_weights_from_multipliers(self.lmb[1])
        if self.mode in ("rw", "rwrm"):
            if trades:
                out["class_weight"], out["class_beta"] = w0, self.beta * w1
            else:
                out["class_weight"] = (w0 + w1) / 2
        if self.mode in ("rm", "rwrm"):
            out["class_eps"] = self.eps * remargin_factor(self.lmb[2])
        return out

    def begin_training(self, stats: EpochStats) -> None:
        """The update before epoch 0, from the starting model's validation statistics (the hot start's)."""
        if stats.val_clean is not None and stats.val_robust is not None:
            self.start_violations = torch.stack(self.step(0, stats.val_clean, stats.val_robust, stats.val_counts))

    def end_epoch(self, epoch: int, stats: EpochStats, model_state=None) -> None:
        if stats.val_clean is not None and stats.val_robust is not None:
            self.step(epoch + 1, stats.val_clean, stats.val_robust, stats.val_counts)

    def summary(self) -> dict[str, float]:
        return {"frl_lambda_sum": float(self.lmb[:2].sum())}

    def state_dict(self) -> dict[str, Any]:
        return {"lmb": self.lmb.clone(), "rate1": self.rate1, "start_violations": self.start_violations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lmb = state["lmb"].clone().to(torch.float64)
        self.rate1 = float(state["rate1"])
        self.start_violations = state.get("start_violations")
