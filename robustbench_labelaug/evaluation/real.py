"""ImageNet-ReaL: top-1 error against the reassessed multi-label annotations (Beyer et al., 2020), overall and
per original class, on an ImageNet validation folder with the official file names."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch import nn
from torch.utils.data import Dataset

from ..errors import UserError
from ..scoring import (
    check_official_labels,
    real_classwise_error,
    real_classwise_summary,
    real_error,
    top1_error,
    val_image_ids,
)
from .base import EvalContext, EvalResult, Evaluator, SplitArrays
from .clean import predict_labels

IMAGENET_NUM_CLASSES = 1000


def dataset_filenames(dataset: Dataset, indices: Sequence[int], evaluator: str) -> list[str]:
    """Base file names of ``dataset[indices]``, or :class:`UserError` if the dataset has none."""
    if not hasattr(dataset, "filename"):
        raise UserError(f"{evaluator} needs an ImageNet validation folder (dataset 'imagenet' with "
                        "<root>/val/<wnid>/ILSVRC2012_val_XXXXXXXX.JPEG), not a dataset without file names")
    return [str(dataset.filename(int(i))) for i in indices]


def dataset_targets(dataset: Dataset, indices: Sequence[int]) -> np.ndarray | None:
    """Labels of ``dataset[indices]`` without loading images, where the dataset lists them."""
    targets = getattr(dataset, "targets", None)
    return None if targets is None else np.asarray(targets, dtype=np.int64)[list(indices)]


def check_imagenet_classes(ctx: EvalContext, evaluator: str) -> None:
    if ctx.num_classes != IMAGENET_NUM_CLASSES:
        raise UserError(f"{evaluator} scores ImageNet-1k class indices but K={ctx.num_classes}: evaluate a "
                        f"{IMAGENET_NUM_CLASSES}-class model on dataset 'imagenet'")


class RealEvaluator(Evaluator):
    """ReaL top-1 error (an image counts as correct when the prediction is in its ReaL label set; images with
    an empty set are skipped) and the class-wise ReaL error per original class, with its summary."""

    name = "real"

    def run(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> EvalResult:
        # Refuse bad folders before predicting anything (nothing is written).
        check_imagenet_classes(ctx, self.name)
        indices = self.example_indices(dataset)
        filenames = dataset_filenames(dataset, indices, self.name)
        val_image_ids(filenames)
        targets = dataset_targets(dataset, indices)
        if targets is not None:
            check_official_labels(filenames, targets)
        return super().run(model, dataset, ctx)

    def predict(self, model: nn.Module, batches: Iterator, split: str, ctx: EvalContext) -> SplitArrays:
        return predict_labels(model, batches)

    def score(self, arrays: dict[str, SplitArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
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
            metrics={"real_error": error, "num_scored": scored},
            classwise={"real": classwise},
            details={"num_empty_label_sets": len(filenames) - scored,
                     "top1_error_original_labels": top1_error(a["y_true"], a["y_pred"]),
                     "labels": "ReaL (timm/data/_info/imagenet_real_labels.json)"},
            num_examples=int(len(a["index"])),
        )
