"""What each stored evaluator result declares about itself, asked of the evaluator class that wrote it: the
:class:`~robustbench_labelaug.results.measured.Declared` records ``results.model_info.build_model_info`` assembles
a model_info from (the evaluators write through the results layer; the leaderboard only reads what was stored),
and :func:`model_info_from_results`, a model's model_info from its stored results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..data.registry import class_names
from ..results.measured import Declared
from ..results.model_info import build_model_info
from . import EVALUATORS, evaluator_class


def declare_result(entry_id: str, result: Mapping[str, Any]) -> Declared:
    """One result's declaration; an evaluator this package does not know declares nothing."""
    name = result.get("evaluator")
    if name not in EVALUATORS:
        return Declared(entry_id)
    cls = evaluator_class(name)
    eps, rank = cls.threat_eps(result)
    return Declared(entry_id, tuple(cls.measured(result)), dict(cls.classwise_refs(result)), cls.source_key,
                    eps=eps, eps_rank=rank)


def declare_results(results: Mapping[str, Mapping[str, Any]]) -> list[Declared]:
    """Every result's declaration, in config order."""
    return [declare_result(entry_id, r) for entry_id, r in results.items()]


def model_info_from_results(model: Mapping[str, Any], results: Mapping[str, Mapping[str, Any]], *,
                            reported: Mapping[str, Any] | None = None,
                            extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A model's model_info as ``rbla evaluate`` and ``benchmark()`` build it
    (:func:`~robustbench_labelaug.results.model_info.build_model_info`): every result declares its numbers through
    the evaluator that wrote it; the class names are ``model["class_names"]`` (e.g. a folder dataset's), else its
    registered dataset's (None where the registry has none, or where their number differs from the model's K)."""
    names = model.get("class_names") or class_names(str(model.get("dataset") or "").lower() or None,
                                                    num_classes=model.get("num_classes"))
    return build_model_info({**model, "class_names": names}, results, reported=reported, extra=extra,
                            declared=declare_results(results))


__all__ = ["declare_result", "declare_results", "model_info_from_results"]
