"""The embedded default dataset: scikit-learn's ``load_digits`` (1 797 real 8x8 handwritten digits, shipped
inside scikit-learn), fixed stratified 80/20 train/test split, upsampled to 32x32 RGB in [0,1], 10 classes."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from .registry import DIGITS_CLASSES

DIGITS_NUM_CLASSES = len(DIGITS_CLASSES)
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2


@lru_cache(maxsize=4)
def _digits_arrays(image_size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]  # (N,1,8,8) in [0,1]
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = images.clamp_(0.0, 1.0).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(idx, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED,
                                           stratify=bunch.target)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return {"train": (images[train_idx], labels[train_idx]), "test": (images[test_idx], labels[test_idx])}


class DigitsDataset(TensorDataset):
    """(image in [0,1] of shape 3x32x32, label) pairs; ``split`` is ``train`` (1 437) or ``test`` (360)."""

    num_classes = DIGITS_NUM_CLASSES

    def __init__(self, split: str = "train", image_size: int = 32) -> None:
        split = {"val": "test", "validation": "test"}.get(split, split)
        images, labels = _digits_arrays(image_size)[split]
        super().__init__(images, labels)
        self.split = split
        self.targets = labels

    def filename(self, index: int) -> str:
        return f"digits_{self.split}_{index:04d}.png"


def create_digits(split: str, data_dir=None, **options) -> DigitsDataset:
    """The embedded digits (``data_dir`` and the image options are ignored: the images are 32x32)."""
    return DigitsDataset(split)
