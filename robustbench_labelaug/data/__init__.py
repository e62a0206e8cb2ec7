"""Datasets yielding (image in [0,1], label), one registry for all of them (:mod:`.registry`): the embedded
``digits`` default and ImageNet-layout folders (``folder``, ``imagenet``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import Dataset

from .digits import DigitsDataset
from .folder import ImageFolderDataset, folder_transform, imagenet_wnids
from .registry import DatasetSpec, get_dataset_spec, list_datasets, register_dataset


def create_dataset(name: str = "digits", data_dir: str | Path | None = None, split: str | None = "train", *,
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


__all__ = ["DatasetSpec", "DigitsDataset", "ImageFolderDataset", "create_dataset", "dataset_num_classes",
           "folder_transform", "get_dataset_spec", "imagenet_wnids", "list_datasets", "register_dataset"]
