"""CFA: Class-wise calibrated Fair Adversarial training (Wei, Wang, Guo, Wang; CVPR 2023), as a policy.

Parts (each can be turned off):
- **CCM** (class-wise calibrated margin): from epoch ``begin`` on (the reference's 10 of 200 epochs, scaled to
  the run's length: :func:`scaled_begin`), class c is attacked at ``eps_c = (lambda_1 + A_c) * eps`` with
  ``A_c`` the training robust accuracy of class c in the previous epoch (measured on the adversarial examples
  training made, in the training forward pass) and ``lambda_1 = 0.5``.
- **CCR** (class-wise calibrated regularisation, TRADES only): ``beta_c = (lambda_2 + A_c) * beta``,
  ``lambda_2 = 0.5``, entering the reference's normalised TRADES loss ``(1 - b_c) CE + b_c KL`` with
  ``b_c = beta_c / (1 + beta_c)`` (``trades_form="normalised"``, the default; before ``begin`` and without CCR
  ``b = beta / (1 + beta)`` for every class, as the reference); ``trades_form="zhang"`` keeps Zhang's
  ``CE + beta_c KL``.
- **FAWA** (fairness-aware weight averaging, :mod:`.fawa`): EMA of the weights (decay 0.88) over the epochs whose
  worst-class robust accuracy on the held-out validation split is at least 0.24.

Written from the paper and PKU-ML/CFA's ``train.py`` / ``attack.py`` (read, not copied). Deviations:
- ``A_c`` is class c's share correct among its own adversarial training examples; the reference computes
  ``K * correct_c / N`` (the same on a class-balanced training set, which CIFAR-10 is);
- with ``adv``/``adv_plus`` (the hook) CCM sets the hook's class-wise epsilon (Adv+'s transformation j of M at
  ``eps_c * (j+1)/M``): CFA with label augmentation is this project's combination, not the paper's;
- the validation split's robust accuracy uses the plugin's PGD (``--fair-val-steps``, default 10 steps, step
  2.5 eps / steps, random start) at the training eps; the reference: PGD-10 at 8/255 with step 2/255;
- the reference also keeps a plain EMA model and saves checkpoints by a robust + worst-class index; we save the
  FAWA model of the last epoch (``fawa.pth.tar``) beside ``last.pth.tar`` and nothing else;
- a class that had no adversarial example in an epoch (only possible on tiny data) counts as ``A_c = 0``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..results.vocab import TRADES_FORMS, Fair, TradesForm
from .fawa import FAWA
from .policy import EpochStats, FairPolicy

CFA_PARTS = ("ccm", "ccr", "fawa")
REFERENCE_BEGIN, REFERENCE_EPOCHS = 10, 200  # PKU-ML/CFA train.py: --begin 10 of --epochs 200


def scaled_begin(epochs: int) -> int:
    """The reference's first calibrated epoch, 10 of 200, scaled to a run of ``epochs`` (at least 1: calibration
    reads the previous epoch's class accuracies)."""
    return max(1, int(round(int(epochs) * REFERENCE_BEGIN / REFERENCE_EPOCHS)))


def begin_problem(begin: int, epochs: int | None, parts: tuple[str, ...] | list[str]) -> str | None:
    """A CFA run whose CCM/CCR would never start (``begin >= epochs``): named, since it is CFA in name only."""
    calibrating = [p for p in ("ccm", "ccr") if p in parts]
    if begin is not None and int(begin) < 1:
        return (f"--cfa-begin {begin} must be >= 1 (calibration reads the previous epoch's class accuracies): "
                "leave it out for the reference's 10 of 200 scaled to the epochs")
    if begin is None or epochs is None or not calibrating or int(begin) < int(epochs):
        return None
    return (f"--cfa-begin {begin} is not below the {epochs} training epochs, so CFA's {'/'.join(calibrating)} would "
            f"never calibrate (a run labelled CFA that is not): pass --cfa-begin < {epochs} or leave it out (the "
            f"reference's {REFERENCE_BEGIN} of {REFERENCE_EPOCHS} scaled: {scaled_begin(epochs)})")


def cfa_class_eps(train_robust: torch.Tensor, eps: float, lambda_1: float = 0.5) -> torch.Tensor:
    """``(lambda_1 + A_c) * eps`` for every class c (float64)."""
    acc = torch.nan_to_num(torch.as_tensor(train_robust, dtype=torch.float64), nan=0.0)
    return (lambda_1 + acc) * eps


def cfa_class_beta(train_robust: torch.Tensor, beta: float, lambda_2: float = 0.5) -> torch.Tensor:
    """``(lambda_2 + A_c) * beta`` for every class c (float64)."""
    acc = torch.nan_to_num(torch.as_tensor(train_robust, dtype=torch.float64), nan=0.0)
    return (lambda_2 + acc) * beta


class CFAPolicy(FairPolicy):
    """CFA's CCM + CCR + FAWA; see the module docstring."""

    name = Fair.CFA

    def __init__(self, num_classes: int, eps: float, beta: float = 6.0, begin: int | None = REFERENCE_BEGIN,
                 lambda_1: float = 0.5, lambda_2: float = 0.5, parts: tuple[str, ...] = CFA_PARTS,
                 fawa_decay: float = 0.88, fawa_threshold: float = 0.24, trades_form: str = TradesForm.NORMALISED) -> None:
        super().__init__(num_classes, eps, beta)
        unknown = set(parts) - set(CFA_PARTS)
        if unknown:
            raise ValueError(f"unknown CFA parts {sorted(unknown)}: use {', '.join(CFA_PARTS)}")
        if trades_form not in TRADES_FORMS:
            raise ValueError(f"unknown TRADES form {trades_form!r}: use {', '.join(TRADES_FORMS)}")
        if begin is None:  # the flag's default, resolved from the run's epochs before the policy is made
            raise ValueError("CFA's begin epoch must be resolved (fair.cfa.scaled_begin(epochs))")
        self.begin, self.lambda_1, self.lambda_2 = int(begin), float(lambda_1), float(lambda_2)
        self.trades_form = trades_form
        self.parts = tuple(p for p in CFA_PARTS if p in parts)
        self.fawa = FAWA(fawa_decay, fawa_threshold) if "fawa" in self.parts else None
        self.needs_validation = self.fawa is not None
        self.train_robust: torch.Tensor | None = None  # A_c of the last finished epoch

    def class_params(self, epoch: int, trades: bool) -> dict[str, torch.Tensor | None]:
        out = super().class_params(epoch, trades)
        if trades:
            out["loss_form"] = self.trades_form
        if epoch < self.begin or self.train_robust is None:
            return out
        if "ccm" in self.parts:
            out["class_eps"] = cfa_class_eps(self.train_robust, self.eps, self.lambda_1)
        if trades and "ccr" in self.parts:
            out["class_beta"] = cfa_class_beta(self.train_robust, self.beta, self.lambda_2)
        return out

    def end_epoch(self, epoch: int, stats: EpochStats, model_state=None) -> None:
        if stats.train_robust is not None:
            self.train_robust = stats.train_robust.detach().to(torch.float64).clone()
        if self.fawa is not None and stats.val_robust is not None and model_state is not None:
            worst = float(torch.nan_to_num(stats.val_robust, nan=1.0).min())
            self.fawa.update(model_state, worst)

    def averaged_state(self):
        return None if self.fawa is None else self.fawa.state

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.fawa is not None:
            out["fawa_updates"] = float(self.fawa.updates)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"train_robust": self.train_robust,
                "fawa": None if self.fawa is None else self.fawa.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.train_robust = state.get("train_robust")
        if self.fawa is not None and state.get("fawa") is not None:
            self.fawa.load_state_dict(state["fawa"])
