"""Per-epoch validation of ``rbla train``: the clean evaluator's top-1 plus timm's ``validate()`` metrics (cross
entropy ``loss`` and ``top5`` accuracy of the K-way classifier), so ``summary.csv`` has timm's columns."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..evaluation.base import EvalContext, EvalResult, PartArrays, to_numpy
from ..evaluation.clean import CleanEvaluator


class ValidationEvaluator(CleanEvaluator):
    """Clean top-1 error (with its class-wise block) plus the mean cross entropy and top-5 accuracy (%)."""

    name = "train_validation"

    @torch.no_grad()
    def predict(self, model: nn.Module, batches: Iterator, part: str, ctx: EvalContext) -> PartArrays:
        out: dict[str, list[np.ndarray]] = {"index": [], "y_true": [], "y_pred": [], "loss": [], "top5": []}
        for x, y, idx in batches:
            logits = model(x).float()
            k = min(5, logits.shape[1])
            top5 = (logits.topk(k, dim=1).indices == y[:, None]).any(1)
            loss = F.cross_entropy(logits, y, reduction="none")
            for key, t in zip(out, to_numpy(idx, y, logits.argmax(1), loss, top5)):
                out[key].append(t)
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}

    def score(self, arrays: dict[str, PartArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        result = super().score(arrays, dataset, ctx)
        a = arrays["all"]
        result.metrics["loss"] = float(np.mean(a["loss"]))
        result.metrics["top5"] = 100.0 * float(np.mean(a["top5"]))
        return result
