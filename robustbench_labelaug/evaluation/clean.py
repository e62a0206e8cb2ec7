"""Clean top-1 error, with its class-wise breakdown."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..results import keys
from ..results.vocab import FP32
from ..scoring import top1_error
from .base import (
    PRECISIONS,
    EvalContext,
    EvalResult,
    Evaluator,
    Measured,
    PartArrays,
    classwise_block,
    classwise_sd,
    to_numpy,
)


@torch.no_grad()
def predict_labels(model: nn.Module, batches: Iterator) -> PartArrays:
    """``index``, ``y_true``, ``y_pred`` (top-1 of the K-way classifier) for every batch."""
    out: dict[str, list[np.ndarray]] = {"index": [], "y_true": [], "y_pred": []}
    for x, y, idx in batches:
        pred = model(x).argmax(1)
        for key, t in zip(("index", "y_true", "y_pred"), to_numpy(idx, y, pred)):
            out[key].append(t)
    return {k: np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for k, v in out.items()}


@dataclass
class LabelEvaluator(Evaluator):
    """An evaluator that only predicts top-1 labels (no gradients): clean, corruptions, ReaL, ImageNet-X.

    ``precision``: ``"fp32"`` (default), or ``"bf16"`` / ``"fp16"`` for an autocast forward pass (opt-in, for
    speed on GPUs; part of the cache fingerprint, named in the result's settings and next to every headline
    number). Attacks stay fp32."""

    precision: str = field(default=FP32, metadata={"choices": tuple(PRECISIONS)})

    def predict(self, model: nn.Module, batches: Iterator, part: str, ctx: EvalContext) -> PartArrays:
        return predict_labels(model, batches)


@dataclass
class CleanEvaluator(LabelEvaluator):
    """Top-1 error on clean inputs. Settings: ``n_examples`` (None: all), ``precision``."""

    name = "clean"
    shares_predictions = True

    @classmethod
    def headline(cls, result: Mapping[str, Any]) -> list[Measured]:
        clean = keys.CLASSWISE_CLEAN
        return [Measured(keys.CLEAN_ERROR, "clean err", result["metrics"].get(keys.ERROR)),
                Measured(keys.CLEAN_N, "clean n", result.get("num_examples"), unit="", show=False),
                Measured(keys.class_sd(clean), "class SD clean", classwise_sd(result, clean), stored=False),
                Measured(keys.worst_class(clean), "worst class clean", classwise_sd(result, clean, keys.WORST_ERROR),
                         show=False, stored=False)]

    @classmethod
    def classwise_refs(cls, result: Mapping[str, Any]) -> dict[str, str]:
        return {keys.CLASSWISE_CLEAN: keys.CLASSWISE_CLEAN}

    def score(self, arrays: dict[str, PartArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        a = arrays["all"]
        return EvalResult(
            evaluator=self.name,
            metrics={keys.ERROR: top1_error(a["y_true"], a["y_pred"])},
            classwise={"clean": classwise_block(a["y_true"], a["y_pred"], ctx.num_classes, ctx.seed)},
            num_examples=int(len(a["index"])),
        )
