"""ImageNet's label files, read from the installed packages without importing them (no torch, no timm import):

- the 1 000 ImageNet-1k WordNet ids in class-index order and their names (timm's ``data/_info`` files);
- the official validation labels (imagenet-x's ``filename_label.csv``, the ILSVRC2012 ground truth);
- the ReaL label sets (timm's ``imagenet_real_labels.json``, Beyer et al.);
- the ImageNet-X factor annotations (``imagenet_x.load_annotations``).

Each table is read once per process; :mod:`robustbench_labelaug.scoring` scores predictions against them.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ..packages import package_folder

if TYPE_CHECKING:
    import numpy as np

IMAGENET_NUM_CLASSES = 1000
NUM_VAL_IMAGES = 50_000
VAL_NAME_PATTERN = "ILSVRC2012_val_XXXXXXXX.JPEG (8 digits, 00000001-00050000)"
_VAL_NAME = re.compile(r"^ILSVRC2012_val_(\d{8})(\.[A-Za-z]+)?$")
IMAGENET_X_FACTORS: tuple[str, ...] = (
    "pose", "background", "pattern", "color", "smaller", "shape", "partial_view", "subcategory", "texture",
    "larger", "darker", "object_blocking", "person_blocking", "style", "brighter", "multiple_objects")


# -- class ids and names ------------------------------------------------------------------------------------------


def _timm_info(name: str) -> Path:
    folder = package_folder("timm")
    if folder is None:
        raise UserError("the timm package is not installed: pip install timm (it ships ImageNet's label files)")
    return folder / "data" / "_info" / name


@lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1 000 ImageNet-1k WordNet ids in class-index order (timm's copy)."""
    return tuple(line.strip() for line in _timm_info("imagenet_synsets.txt").read_text().splitlines()
                 if line.strip())


@lru_cache(maxsize=1)
def _lemmas() -> dict[str, str]:
    rows = csv.reader(_timm_info("imagenet_synset_to_lemma.txt").read_text().splitlines(), delimiter="\t")
    return {row[0]: row[1] for row in rows if len(row) >= 2}


def imagenet_class_names(data_dir: str | Path | None = None) -> list[str]:
    """The 1 000 ImageNet-1k class names in class-index order (each wnid's first WordNet lemma, as timm's
    ``ImageNetInfo`` describes it); ``data_dir`` is ignored (the names do not depend on the folder)."""
    lemmas = _lemmas()
    return [lemmas[w].split(",")[0] for w in imagenet_wnids()]


# ImageNet-C's 15 corruptions (Hendrycks & Dietterich), in their order (== imagecorruptions.get_corruption_names())
IMAGENET_C_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)

# -- validation file names ----------------------------------------------------------------------------------------


def val_image_numbers(filenames: Sequence[str | os.PathLike]) -> np.ndarray:
    """Official val image numbers (1-based) of ``filenames``; 0 where a name is not an official val name."""
    import numpy as np

    ids = np.zeros(len(filenames), dtype=np.int64)
    for i, name in enumerate(filenames):
        m = _VAL_NAME.match(os.path.basename(os.fspath(name)))
        if m is not None and 1 <= int(m.group(1)) <= NUM_VAL_IMAGES:
            ids[i] = int(m.group(1))
    return ids


def val_image_ids(filenames: Sequence[str | os.PathLike]) -> np.ndarray:
    """The official ImageNet-1k validation image number (1..50000) of each file name (basename or path, any
    image extension), or :class:`UserError` naming the first name that is not an official one."""
    import numpy as np

    ids = val_image_numbers(filenames)
    bad = np.flatnonzero(ids == 0)
    if bad.size:
        raise UserError(f"'{os.fspath(filenames[bad[0]])}' is not an ImageNet validation file name: ReaL and "
                        f"ImageNet-X need the official names {VAL_NAME_PATTERN}, as in <root>/val/<wnid>/")
    return ids


# -- label tables ---------------------------------------------------------------------------------------------------


def imagenet_x_annotation_dir() -> Path:
    """``imagenet_x/annotations`` of the installed imagenet-x package, found without importing it."""
    folder = package_folder("imagenet_x")
    if folder is None:
        raise UserError("the imagenet-x package is not installed: pip install imagenet-x (it ships the "
                        "ImageNet validation labels and ImageNet-X annotations)")
    return folder / "annotations"


@lru_cache(maxsize=1)
def official_label_table() -> np.ndarray:
    """Image number -> official ImageNet-1k class index (index 0 unused: -1)."""
    import numpy as np

    labels = np.full(NUM_VAL_IMAGES + 1, -1, dtype=np.int64)
    with open(imagenet_x_annotation_dir() / "filename_label.csv", newline="") as f:
        for row in csv.DictReader(f):
            labels[int(row["file_name"][15:23])] = int(row["label"])
    labels.setflags(write=False)
    return labels


@lru_cache(maxsize=1)
def real_label_table() -> tuple[np.ndarray, np.ndarray]:
    """timm's ReaL labels as (sorted keys ``image_number * 1000 + label``, set size per image number)."""
    import numpy as np

    path = _timm_info("imagenet_real_labels.json")
    sets = json.loads(path.read_text())
    if len(sets) != NUM_VAL_IMAGES:
        raise UserError(f"{path} holds {len(sets)} label sets, not {NUM_VAL_IMAGES}: reinstall timm")
    sizes = np.zeros(NUM_VAL_IMAGES + 1, dtype=np.int64)
    sizes[1:] = [len(s) for s in sets]
    keys = np.fromiter((1000 * (i + 1) + label for i, s in enumerate(sets) for label in s), dtype=np.int64)
    keys.sort()
    keys.setflags(write=False)
    sizes.setflags(write=False)
    return keys, sizes


@lru_cache(maxsize=4)
def imagenet_x_table(which_factor: str, filter_prototypes: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image number -> row, class per row, factor matrix (rows, 16) bool) from ``imagenet_x.load_annotations``."""
    import numpy as np

    try:
        import imagenet_x
    except ImportError:
        raise UserError("the imagenet-x package is not installed: pip install imagenet-x") from None
    if tuple(imagenet_x.FACTORS) != IMAGENET_X_FACTORS:
        raise UserError(f"imagenet-x {getattr(imagenet_x, '__version__', '')} lists other factors than this "
                        "package knows: install imagenet-x 0.0.7")
    frame = imagenet_x.load_annotations(which_factor=which_factor, partition="val",
                                        filter_prototypes=filter_prototypes)
    ids = val_image_numbers(list(frame["file_name"]))
    row_of = np.full(NUM_VAL_IMAGES + 1, -1, dtype=np.int64)
    row_of[ids] = np.arange(ids.size)
    row_of[0] = -1
    classes = frame["class"].to_numpy(dtype=np.int64)
    factors = frame[list(IMAGENET_X_FACTORS)].to_numpy(dtype=np.int64) > 0
    for a in (row_of, classes, factors):
        a.setflags(write=False)
    return row_of, classes, factors


__all__ = ["IMAGENET_C_CORRUPTIONS", "IMAGENET_NUM_CLASSES", "IMAGENET_X_FACTORS", "NUM_VAL_IMAGES", "VAL_NAME_PATTERN", "imagenet_class_names",
           "imagenet_wnids", "imagenet_x_annotation_dir", "imagenet_x_table", "official_label_table",
           "real_label_table", "val_image_ids", "val_image_numbers"]
