"""What each stored evaluator result declares about itself, asked of the evaluator class that wrote it: the
:class:`~robustbench_labelaug.results.measured.Declared` records ``results.model_info.build_model_info`` assembles
a model_info from (the evaluators write through the results layer; the leaderboard only reads what was stored)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..results.measured import Declared
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


__all__ = ["declare_result", "declare_results"]
