"""Shared base of the evaluators that score an ImageNet validation folder by its official file names (ReaL,
ImageNet-X): they need a 1000-class model and a dataset that knows each image's file name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn
from torch.utils.data import Dataset

from ..data.imagenet_labels import IMAGENET_NUM_CLASSES
from ..errors import UserError
from .base import EvalContext
from .clean import LabelEvaluator


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


@dataclass
class ImageNetValEvaluator(LabelEvaluator):
    """Predicts top-1 labels, or takes them from the clean evaluator of the same model and images where it ran
    first (``shares_predictions``: one forward pass serves clean, ReaL and ImageNet-X); before predicting
    anything it refuses non-ImageNet models and folders whose file names the subclass cannot score
    (:meth:`check_files`), so a bad folder fails fast and writes nothing."""

    shares_predictions = True

    def check_files(self, filenames: list[str], targets: np.ndarray | None) -> None:
        """Raise :class:`UserError` if these images cannot be scored (subclasses override)."""

    def prepare(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        super().prepare(model, dataset, ctx)
        if ctx.num_classes != IMAGENET_NUM_CLASSES:
            raise UserError(f"{self.name} scores ImageNet-1k class indices but K={ctx.num_classes}: evaluate a "
                            f"{IMAGENET_NUM_CLASSES}-class model on dataset 'imagenet'")
        indices = self.example_indices(dataset)
        self.check_files(dataset_filenames(dataset, indices, self.name), dataset_targets(dataset, indices))
