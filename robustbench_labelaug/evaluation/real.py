"""ImageNet-ReaL: top-1 error against the reassessed multi-label annotations (Beyer et al., 2020), overall and
per original class, on an ImageNet validation folder with the official file names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ..errors import UserError
from ..results import keys
from ..scoring import (
    check_official_labels,
    real_classwise_error,
    real_classwise_summary,
    real_error,
    top1_error,
    val_image_ids,
)
from .base import EvalContext, EvalResult, Measured, PartArrays
from .imagenet_val import ImageNetValEvaluator, dataset_filenames


@dataclass
class RealEvaluator(ImageNetValEvaluator):
    """ReaL top-1 error (an image counts as correct when the prediction is in its ReaL label set; images with
    an empty set are skipped) and the class-wise ReaL error per original class, with its summary."""

    name = "real"

    @classmethod
    def headline(cls, result: Mapping[str, Any]) -> list[Measured]:
        return [Measured(keys.REAL_ERROR, "ReaL err", result.get("metrics", {}).get(keys.REAL_ERROR))]

    @classmethod
    def classwise_refs(cls, result: Mapping[str, Any]) -> dict[str, str]:
        return {"real": "real"}

    def check_files(self, filenames: list[str], targets: np.ndarray | None) -> None:
        val_image_ids(filenames)
        if targets is not None:
            check_official_labels(filenames, targets)

    def score(self, arrays: dict[str, PartArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        a = arrays["all"]
        filenames = dataset_filenames(dataset, a["index"], self.name)
        check_official_labels(filenames, a["y_true"])
        error, scored = real_error(filenames, a["y_pred"], return_count=True)
        if scored == 0:
            raise UserError(f"none of the {len(filenames)} images has a ReaL label (all label sets are empty): "
                            "evaluate on more of the ImageNet validation set")
        classwise = {"error": real_classwise_error(filenames, a["y_pred"], a["y_true"], ctx.num_classes).tolist(),
                     "summary": real_classwise_summary(filenames, a["y_pred"], a["y_true"], ctx.num_classes,
                                                       seed=ctx.seed)}
        return EvalResult(
            evaluator=self.name,
            metrics={keys.REAL_ERROR: error, keys.NUM_SCORED: scored},
            classwise={"real": classwise},
            details={"num_empty_label_sets": len(filenames) - scored,
                     "top1_error_original_labels": top1_error(a["y_true"], a["y_pred"]),
                     "labels": "ReaL (timm/data/_info/imagenet_real_labels.json)"},
            num_examples=int(len(a["index"])),
        )
