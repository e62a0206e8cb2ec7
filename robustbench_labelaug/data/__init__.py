"""Datasets yielding (image in [0,1], label): the embedded ``digits`` default and ImageNet-layout folders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import Dataset

from ..errors import UserError
from .cifar import CIFAR_SPECS, create_cifar_dataset
from .digits import DIGITS_NUM_CLASSES, DigitsDataset
from .folder import ImageFolderDataset, class_folders, folder_transform, imagenet_wnids, split_folder

DATASETS = ("digits", "folder", "imagenet", *CIFAR_SPECS)


def create_dataset(name: str = "digits", data_dir: str | Path | None = None, split: str = "train", *,
                   is_training: bool = False, input_size: int = 224, crop_pct: float = 0.875,
                   interpolation: str = "bilinear", class_names: Sequence[str] | str | None = None,
                   download: bool = False, bad_images: str = "error", color_jitter: float = 0.0) -> Dataset:
    """``digits`` (embedded), ``folder`` (``<data_dir>/{train,val}/<class>/<image>``, classes sorted) or
    ``imagenet`` (the same layout, classes indexed in ImageNet-1k order so subsets keep their indices).
    timm's empty dataset name ``""`` means ``folder``. ``bad_images="skip"`` leaves damaged image files out and
    lists them in the dataset's ``skipped_files`` (default ``"error"``: one line naming the file)."""
    name = name or "folder"
    if name == "digits":
        return DigitsDataset(split)
    if name in CIFAR_SPECS:  # torchvision's files under data_dir (data/cifar.py)
        return create_cifar_dataset(name, data_dir, split, is_training=is_training, download=download)
    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}': use one of {', '.join(DATASETS)}")
    if data_dir is None:
        raise UserError(f"dataset '{name}' needs --data-dir (a folder with train/ and val/ class folders)")
    root = split_folder(data_dir, split)
    if class_names is None:
        class_names = "imagenet" if name == "imagenet" else class_folders(split_folder(data_dir, "train")
                                                                        if (Path(data_dir) / "train").is_dir()
                                                                        else root)
    transform = folder_transform(input_size, is_training, crop_pct=crop_pct, interpolation=interpolation,
                                 color_jitter=color_jitter)
    return ImageFolderDataset(root, transform=transform, class_names=class_names, bad_images=bad_images)


def dataset_num_classes(name: str, data_dir: str | Path | None = None) -> int:
    """K for a dataset name (and folder)."""
    name = name or "folder"
    if name == "digits":
        return DIGITS_NUM_CLASSES
    if name in CIFAR_SPECS:
        return CIFAR_SPECS[name].num_classes
    if name == "imagenet":
        return len(imagenet_wnids())
    if data_dir is None:
        raise UserError("dataset 'folder' needs --data-dir to count its classes")
    return len(class_folders(split_folder(data_dir, "train")))


__all__ = ["DATASETS", "DigitsDataset", "ImageFolderDataset", "create_dataset", "dataset_num_classes",
           "folder_transform", "imagenet_wnids"]
