"""The policy interface: a policy sets the class-wise epsilon / weights / beta of the training objective (the
hook or TRADES) between epochs, from per-class statistics; its state is checkpointed for a bit-identical resume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..results.vocab import Fair


@dataclass
class EpochStats:
    """Per-class statistics of one epoch, the same on every rank (all-reduced): accuracies in [0,1], shape (K,).

    train_robust: the training batches' adversarial examples (NaN for a class with none); val_clean /
    val_robust: the held-out validation split, clean and under PGD (None without a validation split)."""

    train_robust: torch.Tensor | None = None
    val_clean: torch.Tensor | None = None
    val_robust: torch.Tensor | None = None
    val_counts: torch.Tensor | None = None  # samples per class of the validation split


class FairPolicy:
    """No policy (``--fair none``): uniform epsilon, weights and beta."""

    name = Fair.NONE
    needs_validation = False
    updates_before_training = False  # True: begin_training(stats of the starting model) before epoch 0

    def __init__(self, num_classes: int, eps: float, beta: float = 6.0) -> None:
        self.num_classes = int(num_classes)
        self.eps = float(eps)
        self.beta = float(beta)

    def class_params(self, epoch: int, trades: bool) -> dict[str, torch.Tensor | None]:
        """The settings to train epoch ``epoch`` with: ``class_eps``, ``class_weight``, (TRADES) ``class_beta`` and,
        where a policy sets them, ``loss_form`` (TRADES: CFA's normalised form) and ``step_scale`` (the attack step
        as a share of the batch's largest radius: FRL's remargin)."""
        out: dict[str, torch.Tensor | None] = {"class_eps": None, "class_weight": None}
        if trades:
            out["class_beta"] = None
        return out

    def apply(self, target, epoch: int) -> None:
        """Set ``target``'s (an AdvLabelAug or TradesLoss) class-wise tensors for epoch ``epoch``."""
        # deferred: torch (kept out of the CLI's start)
        from .trades import TradesLoss

        target.set_class_params(**self.class_params(epoch, isinstance(target, TradesLoss)))

    def begin_training(self, stats: EpochStats) -> None:
        """Update the policy from the starting model's statistics, before epoch 0 of a fresh run (FRL)."""

    def end_epoch(self, epoch: int, stats: EpochStats, model_state: dict[str, torch.Tensor] | None = None) -> None:
        """Update the policy from the epoch's statistics (and the model's weights, for weight averaging)."""

    def averaged_state(self) -> dict[str, torch.Tensor] | None:
        """An averaged model's state dict to save beside the plain one (CFA's FAWA), or None."""
        return None

    def summary(self) -> dict[str, float]:
        """Numbers for ``summary.csv`` (e.g. the class-wise epsilon factors)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
