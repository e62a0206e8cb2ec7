"""ImageNet-X: error and error ratio per factor of variation (Idrissi et al., 2022) on an ImageNet validation
folder with the official file names, using the imagenet-x package's annotations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ..errors import UserError
from ..results import keys
from ..scoring import IMAGENET_X_FACTORS, imagenet_x_scores
from .base import EvalContext, EvalResult, Measured, PartArrays
from .imagenet_val import ImageNetValEvaluator, dataset_filenames


@dataclass
class ImageNetXEvaluator(ImageNetValEvaluator):
    """Top-1 error on the ImageNet-X-annotated validation images, per factor (``error_<factor>`` in %) and as
    error ratio ``error_ratio_<factor>`` = factor error / overall error. ``which_factor``: ``"top"`` (each
    image's main factor, the ImageNet-X default) or ``"multi"``; ``filter_prototypes`` drops the prototypical
    images as imagenet-x does. Images without an annotation are skipped (counted in ``details``)."""

    name = "imagenet_x"
    source_key = "imagenet_x_source"

    which_factor: str = "top"
    filter_prototypes: bool = True

    def validate(self) -> None:
        if self.which_factor not in ("top", "multi"):
            raise UserError(f"imagenet_x: which_factor='{self.which_factor}' is not known: use 'top' or 'multi'")

    @classmethod
    def headline(cls, result: Mapping[str, Any]) -> list[Measured]:
        return [Measured(keys.IMAGENET_X_ERROR, "ImageNet-X err", result.get("metrics", {}).get(keys.ERROR), show=False)]

    def _scores(self, filenames: list[str], preds, labels=None) -> dict[str, Any]:
        return imagenet_x_scores(filenames, preds, labels, which_factor=self.which_factor,
                                 filter_prototypes=self.filter_prototypes)

    def check_files(self, filenames: list[str], targets: np.ndarray | None) -> None:
        self._scores(filenames, [0] * len(filenames), targets)

    def score(self, arrays: dict[str, PartArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        a = arrays["all"]
        filenames = dataset_filenames(dataset, a["index"], self.name)
        scores = self._scores(filenames, a["y_pred"], a["y_true"])
        metrics: dict[str, float] = {keys.ERROR: scores["error"], keys.NUM_ANNOTATED: scores["count"]}
        for factor in IMAGENET_X_FACTORS:
            metrics[keys.factor_error(factor)] = scores["factors"][factor]["error"]
            metrics[keys.factor_error_ratio(factor)] = scores["factors"][factor]["error_ratio"]
        return EvalResult(
            evaluator=self.name,
            metrics=metrics,
            details={"factors": scores["factors"], "worst_factor": scores["worst_factor"],
                     "num_skipped": scores["skipped"], "which_factor": self.which_factor,
                     "filter_prototypes": self.filter_prototypes,
                     "annotations": "imagenet-x package (imagenet_x.load_annotations, partition 'val')"},
            num_examples=int(len(a["index"])),
        )

