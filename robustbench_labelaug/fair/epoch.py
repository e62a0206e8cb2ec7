"""One epoch's class-wise bookkeeping, shared by both training doors (``rbla train`` and ``rbla timm-train``):
the policy's options from the flags, the epoch's per-class statistics (training batches, validation split) and
the ``summary.csv`` columns they become. Both doors import these, so their columns and policy updates agree."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..results.vocab import Fair
from .policy import EpochStats, FairPolicy
from .stats import ClassCounts
from .validation import classwise_validation

PER_CLASS_COLUMNS_MAX_K = 100  # above this many classes summary.csv gets only the worst class and the mean


# a policy's option -> the rbla train / timm-train flag (dest) that sets it; one table read both ways
POLICY_FLAGS: dict[str, tuple[tuple[str, str], ...]] = {
    Fair.CFA: (("begin", "cfa_begin"), ("lambda_1", "cfa_lambda1"), ("lambda_2", "cfa_lambda2"), ("parts", "cfa_parts"),
               ("fawa_decay", "fawa_decay"), ("fawa_threshold", "fawa_threshold"), ("trades_form", "cfa_trades_form")),
    Fair.FRL: (("mode", "frl_mode"), ("bound0", "frl_bound"), ("bound1", "frl_bound"), ("rate1", "frl_rate1"),
            ("rate2", "frl_rate2"), ("lim", "frl_lim")),
}


def policy_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of the ``--fair`` policy from the flags (``--cfa-*``, ``--fawa-*``, ``--frl-*``)."""
    out = {option: getattr(args, dest) for option, dest in POLICY_FLAGS.get(args.fair, ()) if hasattr(args, dest)}
    if "parts" in out:
        out["parts"] = tuple(p for p in str(out["parts"]).split(",") if p)
    return out


def policy_flags(policy: str, options: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`policy_options`: the flags' values (by dest) that give ``options``."""
    out = {dest: options[option] for option, dest in POLICY_FLAGS.get(policy, ()) if option in options}
    if isinstance(out.get("cfa_parts"), (tuple, list)):
        out["cfa_parts"] = ",".join(out["cfa_parts"])
    return out


def classwise_columns(prefix: str, acc: torch.Tensor) -> dict[str, float]:
    """``{prefix}_c<k>`` (K <= 100) plus ``{prefix}_worst`` and ``{prefix}_mean``, in % (NaN: no sample)."""
    pct = (100.0 * acc).tolist()
    out = {f"{prefix}_c{k}": v for k, v in enumerate(pct)} if len(pct) <= PER_CLASS_COLUMNS_MAX_K else {}
    seen = acc[~torch.isnan(acc)]
    out[f"{prefix}_worst"] = 100.0 * float(seen.min()) if seen.numel() else float("nan")
    out[f"{prefix}_mean"] = 100.0 * float(seen.mean()) if seen.numel() else float("nan")
    return out


def fair_epoch_stats(model: nn.Module, class_stats: ClassCounts | None, holdout_ds, num_classes: int, eps: float,
                     val_steps: int, device, batch_size: int) -> EpochStats:
    """The epoch's per-class statistics, identical on every rank: the training batches' robust accuracy
    (all-reduced counts) and, with a validation split (``holdout_ds``, [0,1] images for ``model``), its
    class-wise clean and PGD-``val_steps`` accuracy at ``eps``."""
    stats = EpochStats()
    if class_stats is not None:
        stats.train_robust = class_stats.all_reduce().accuracy()
    if holdout_ds is not None:
        clean, robust = classwise_validation(model, holdout_ds, num_classes, eps, val_steps, device,
                                             batch_size=max(batch_size, 1))
        stats.val_clean, stats.val_counts = clean.accuracy(), clean.total
        stats.val_robust = robust.accuracy() if val_steps > 0 else None
    return stats


def begin_training(policy: FairPolicy, model: nn.Module, holdout_ds, num_classes: int, eps: float, val_steps: int,
                   device, batch_size: int) -> EpochStats | None:
    """Before epoch 0 of a fresh run: a policy that updates from the starting model (FRL, from its hot start) gets
    the validation split's statistics of that model; returns them (None: nothing to do)."""
    if not policy.updates_before_training or holdout_ds is None:
        return None
    stats = fair_epoch_stats(model, None, holdout_ds, num_classes, eps, val_steps, device, batch_size)
    policy.begin_training(stats)
    return stats


def epoch_summary(policy: FairPolicy, stats: EpochStats, epoch: int, trades: bool, eps: float
                  ) -> dict[str, float]:
    """``summary.csv`` columns of the training side: per-class robust accuracy of the training batches' adversarial
    examples (``train_robust_top1_c<k>``, ``_worst``, ``_mean``) and, with a policy, the class-wise epsilon
    factors it trained this epoch with (``train_eps_factor_c<k>``) and its own numbers."""
    out: dict[str, float] = {}
    if stats.train_robust is not None:
        out.update(classwise_columns("robust_top1", stats.train_robust))
    if policy.name != Fair.NONE:
        params = policy.class_params(epoch, trades)
        class_eps = params.get("class_eps")
        factors = (class_eps / eps).tolist() if class_eps is not None else [1.0] * policy.num_classes
        if len(factors) <= PER_CLASS_COLUMNS_MAX_K:
            out.update({f"eps_factor_c{k}": f for k, f in enumerate(factors)})
        out.update(policy.summary())
    return out


def holdout_summary(stats: EpochStats) -> dict[str, float]:
    """``summary.csv`` columns of the validation split (``eval_holdout_top1_c<k>``, ``eval_holdout_pgd_top1_c<k>``,
    worst and mean)."""
    out: dict[str, float] = {}
    if stats.val_clean is not None:
        out.update(classwise_columns("holdout_top1", stats.val_clean))
    if stats.val_robust is not None:
        out.update(classwise_columns("holdout_pgd_top1", stats.val_robust))
    return out


class Normalized(nn.Module):
    """``model`` behind ``(x - mean) / std``: a model that takes normalised input (timm's loaders) seen as one that
    takes [0,1] images, so the validation split's PGD runs in pixel units."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        from ..models.classifier import InputNormalize

        self.normalize = InputNormalize(mean, std)
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize.to(x.device)(x))
