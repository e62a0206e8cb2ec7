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

AVERAGED_NAME = "fawa"  # CFA's FAWA model: <run>/fawa.pth.tar beside last.pth.tar (both doors)
AVERAGED_FILE = f"{AVERAGED_NAME}.pth.tar"
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


def _span(values: torch.Tensor | None, scale: float = 1.0) -> str:
    """``"0.812–1.214"`` (min–max of ``values / scale``), ``"1 (uniform)"`` for None."""
    if values is None:
        return "1 (uniform)"
    v = torch.as_tensor(values, dtype=torch.float64) / scale
    return f"{float(v.min()):.3f}–{float(v.max()):.3f}"


def policy_line(policy: FairPolicy, params: dict[str, torch.Tensor | None], epoch: int) -> str | None:
    """One line of what the policy did in ``epoch`` (None for ``--fair none``): the class-wise eps factors and
    loss weights it trained with (``params``: its ``class_params(epoch, ...)``; min–max over the classes; TRADES:
    beta), its own numbers (``summary()``) and, for CFA's FAWA, the gate's value this epoch (worst-class
    validation robust accuracy) against its threshold, whether it opened, and how many epochs are averaged."""
    if policy.name == Fair.NONE:
        return None
    parts = [f"eps factors {_span(params.get('class_eps'), policy.eps)}",
             f"weights {_span(params.get('class_weight'))}"]
    if "class_beta" in params:
        parts.append(f"beta {_span(params.get('class_beta'))}")
    parts += [f"{k} {v:g}" for k, v in policy.summary().items()]
    fawa = getattr(policy, "fawa", None)
    if fawa is not None:
        if fawa.last_value is None:
            parts.append("FAWA gate: no validation robust accuracy yet")
        else:
            sign = ">=" if fawa.last_opened else "<"
            parts.append(f"FAWA gate {fawa.last_value:.3f} {sign} {fawa.threshold:g}: "
                         f"{'opened' if fawa.last_opened else 'closed'} ({fawa.updates} epoch(s) averaged)")
    return f"--fair {policy.name}, epoch {epoch}: " + "; ".join(parts)


def no_average_reason(policy: str, parts: Any = None, fawa_state: dict[str, Any] | None = None,
                      val_split: float | None = None) -> str | None:
    """Why a run wrote no averaged model (``fawa.pth.tar``), from its policy (``--fair``), its CFA parts, FAWA's
    saved state (:meth:`FAWA.state_dict`) and its validation split; None where one should exist (FAWA averaged
    at least one epoch)."""
    if policy != Fair.CFA:
        return f"--fair {policy} keeps no weight average (only CFA's FAWA writes fawa.pth.tar)"
    if parts is not None and "fawa" not in (parts.split(",") if isinstance(parts, str) else parts):
        return "FAWA was off (--cfa-parts without fawa)"
    if not val_split:
        return "FAWA needs a validation split and the run had none"
    if not fawa_state or not fawa_state.get("updates"):
        threshold = (fawa_state or {}).get("threshold")
        best = (fawa_state or {}).get("best_value")
        return ("FAWA's gate never opened: the worst-class validation PGD accuracy "
                + (f"peaked at {best:.3f}, below " if best is not None else "never reached ")
                + (f"--fawa-threshold {threshold:g}" if threshold is not None else "--fawa-threshold")
                + " (lower it, train longer, or export last.pth.tar)")
    return None


def averaged_model_line(policy: FairPolicy, written: str | None, val_split: float | None) -> str | None:
    """The end-of-run line about the averaged model: where it was written, or why there is none (None for
    ``--fair none``)."""
    if policy.name == Fair.NONE:
        return None
    if written is not None and policy.averaged_state() is not None:
        fawa = getattr(policy, "fawa", None)
        return (f"--fair {policy.name}: averaged model (FAWA, {fawa.updates if fawa else '?'} epoch(s)) written to "
                f"{written}")
    fawa = getattr(policy, "fawa", None)
    reason = no_average_reason(policy.name, getattr(policy, "parts", None),
                               fawa.state_dict() if fawa is not None else None, val_split)
    return f"--fair {policy.name}: no averaged model written: {reason or 'no output folder'}"


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
