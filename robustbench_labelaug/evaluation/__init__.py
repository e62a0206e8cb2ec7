"""Evaluators, one per file behind :class:`~robustbench_labelaug.evaluation.base.Evaluator`.

``create_evaluator(name, **settings)`` builds one by name; modules are imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import UserError
from .base import EvalContext, EvalResult, Evaluator

EVALUATORS: dict[str, str] = {
    "clean": "clean:CleanEvaluator",
    "pgd": "pgd:PGDEvaluator",
    "autoattack": "autoattack:AutoAttackEvaluator",
    "corruptions": "corruptions:CorruptionEvaluator",
    "real": "real:RealEvaluator",
    "imagenet_x": "imagenet_x:ImageNetXEvaluator",
    "masking": "masking:MaskingChecks",
}


def evaluator_class(name: str) -> type[Evaluator]:
    if name not in EVALUATORS:
        raise UserError(f"unknown evaluator '{name}': use one of {', '.join(EVALUATORS)}")
    module, cls = EVALUATORS[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def create_evaluator(name: str, **settings: Any) -> Evaluator:
    """An evaluator by registry name with its settings (e.g. ``create_evaluator("pgd", steps=40)``)."""
    cls = evaluator_class(name)
    try:
        return cls(**settings)
    except TypeError as exc:
        raise UserError(f"evaluator '{name}': {exc}: check its settings in the config") from None


__all__ = ["EVALUATORS", "EvalContext", "EvalResult", "Evaluator", "create_evaluator", "evaluator_class"]
