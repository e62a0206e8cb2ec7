"""Datasets yielding (image in [0,1], label), one registry for all of them (:mod:`.registry`): the embedded
``digits`` default, ImageNet-layout folders (``folder``, ``imagenet``) and CIFAR-10/100.

The registry and the label files (:mod:`.registry`, :mod:`.imagenet_labels`) import no torch; the dataset
modules are imported on first use (module ``__getattr__``), so ``from robustbench_labelaug.data.registry import
class_names`` stays light."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .registry import (
    DEFAULT_DATASET,
    DatasetSpec,
    class_names,
    get_dataset_spec,
    list_datasets,
    register_dataset,
)

if TYPE_CHECKING:  # pragma: no cover
    from torch.utils.data import Dataset

_LAZY = {"DigitsDataset": "digits", "ImageFolderDataset": "folder", "folder_transform": "folder",
         "imagenet_wnids": "imagenet_labels"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_dataset(name: str = DEFAULT_DATASET, data_dir: str | Path | None = None, split: str | None = "train", *,
                   is_training: bool = False, input_size: int | None = None, crop_pct: float = 0.875,
                   interpolation: str = "bilinear", class_names: Sequence[str] | str | None = None,
                   download: bool = False, bad_images: str = "error", color_jitter: float = 0.0) -> Dataset:
    """The registered dataset ``name`` (see :func:`list_datasets`; timm's empty name ``""`` means ``folder``):
    its ``split`` (None: the one evaluated by default), images in [0,1]. ``input_size`` None: the dataset's
    default; ``class_names`` fixes the class order of a folder (e.g. the training split's). ``download``: CIFAR
    through torchvision's download; ``bad_images="skip"`` leaves damaged image files of a folder out and lists them
    in the dataset's ``skipped_files`` (default ``"error"``: one line naming the file); ``color_jitter``: timm's
    ColorJitter strength for training folders (0: the paper's crop + flip only)."""
    return get_dataset_spec(name).create(split, data_dir, is_training=is_training, input_size=input_size,
                                         crop_pct=crop_pct, interpolation=interpolation, class_names=class_names,
                                         download=download, bad_images=bad_images, color_jitter=color_jitter)


def dataset_num_classes(name: str, data_dir: str | Path | None = None) -> int:
    """K for a dataset name (and folder)."""
    return get_dataset_spec(name).count_classes(data_dir)


__all__ = ["DatasetSpec", "DigitsDataset", "ImageFolderDataset", "class_names", "create_dataset",
           "dataset_num_classes", "folder_transform", "get_dataset_spec", "imagenet_wnids", "list_datasets",
           "register_dataset"]
