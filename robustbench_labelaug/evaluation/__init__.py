"""Evaluators, one per file behind :class:`~robustbench_labelaug.evaluation.base.Evaluator`.

``create_evaluator(name, **settings)`` builds one by name; modules are imported on first use."""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from ..registry import Registry
from .base import EvalContext, EvalResult, Evaluator

# name -> Evaluator class, registered lazily ("module:Class", imported on first use) so the names are known without
# importing every evaluator; a new one is one line here (or @EVALUATORS.register(name) in a module listed in modules)
EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator")
for _name, _ref in (("clean", "clean:CleanEvaluator"), ("pgd", "pgd:PGDEvaluator"),
                    ("autoattack", "autoattack:AutoAttackEvaluator"), ("corruptions", "corruptions:CorruptionEvaluator"),
                    ("real", "real:RealEvaluator"), ("imagenet_x", "imagenet_x:ImageNetXEvaluator"),
                    ("masking", "masking:MaskingChecks"),
                    ("robustness_curve", "robustness_curve:RobustnessCurveEvaluator")):
    EVALUATORS.register(_name, f"{__name__}.{_ref}")


def evaluator_class(name: str) -> type[Evaluator]:
    """The evaluator class registered as ``name`` (:class:`UserError` naming the known ones if unknown)."""
    return EVALUATORS.get(name)


def create_evaluator(name: str, **settings: Any) -> Evaluator:
    """An evaluator by registry name with its settings (e.g. ``create_evaluator("pgd", steps=40)``)."""
    cls = evaluator_class(name)
    try:
        return cls(**settings)
    except TypeError as exc:
        raise UserError(f"evaluator '{name}': {exc}: check its settings in the config") from None


def settings_for_model(name: str, settings: dict[str, Any], stochastic: bool) -> dict[str, Any]:
    """The settings evaluator ``name`` runs with on a model: ``settings``, with the evaluator's
    ``stochastic_settings`` on top for a model declared stochastic (AutoAttack: ``version: rand``)."""
    extra = evaluator_class(name).stochastic_settings if stochastic else {}
    return {**settings, **extra}


__all__ = ["EVALUATORS", "EvalContext", "EvalResult", "Evaluator", "create_evaluator", "evaluator_class",
           "settings_for_model"]
