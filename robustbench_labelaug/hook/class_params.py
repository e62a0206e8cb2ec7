"""Class-wise parameters of the training objective, checked once: a (K,) tensor of per-class values
(:func:`class_tensor`) and FRL's attack step as a share of the batch's largest radius (:func:`check_step_scale`).
The hook (:class:`~.adv_label_aug.AdvLabelAug`) and TRADES (:class:`robustbench_labelaug.fair.TradesLoss`) take
their ``set_class_params`` through these."""

from __future__ import annotations

import math

import torch

from ..errors import UserError


def check_step_scale(value) -> float | None:
    """None, or a step scale in (0, 1] (the attack step as a share of the largest radius in the batch)."""
    if value is None:
        return None
    value = float(value)
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise UserError(f"step_scale must lie in (0, 1] (a share of the largest radius), got {value}")
    return value


def class_tensor(values, num_classes: int, name: str, positive: bool) -> torch.Tensor | None:
    """A (K,) float64 CPU tensor of finite values (> 0 when ``positive``, else >= 0), or None."""
    if values is None:
        return None
    t = torch.as_tensor(values).detach().to(device="cpu", dtype=torch.float64).flatten().clone()
    if t.numel() != num_classes:
        raise UserError(f"{name} has {t.numel()} entries but K={num_classes}: give one value per class")
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any() if positive else (t < 0).any()):
        raise UserError(f"{name} must hold finite values {'> 0' if positive else '>= 0'}, got {t.tolist()}")
    return t
