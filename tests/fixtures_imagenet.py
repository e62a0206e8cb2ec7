"""Tiny ImageNet-layout folders with official validation file names, for tests (no download).

Ground truth comes from the imagenet-x package's ``filename_label.csv`` (the official ILSVRC2012 validation
labels) through :func:`robustbench_labelaug.scoring.official_val_labels`, so folders built here agree with the
ReaL and ImageNet-X annotations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from robustbench_labelaug.data import imagenet_wnids
from robustbench_labelaug.scoring import NUM_VAL_IMAGES, official_val_labels

RGB = tuple[int, int, int]


def val_name(image_id: int) -> str:
    """Official file name of validation image ``image_id`` (1-based)."""
    return f"ILSVRC2012_val_{image_id:08d}.JPEG"


@lru_cache(maxsize=1)
def _all_labels() -> np.ndarray:
    return official_val_labels([val_name(i) for i in range(1, NUM_VAL_IMAGES + 1)])


def official_label(image_id: int) -> int:
    """Official class index of validation image ``image_id``."""
    return int(_all_labels()[image_id - 1])


def official_val_ids(wnid_or_class: str | int, n: int | None = None) -> list[int]:
    """Validation image numbers of one class (by WordNet id or index), ascending; the first ``n`` if given."""
    cls = imagenet_wnids().index(wnid_or_class) if isinstance(wnid_or_class, str) else int(wnid_or_class)
    ids = (np.flatnonzero(_all_labels() == cls) + 1).tolist()
    return ids if n is None else ids[:n]


@dataclass(frozen=True)
class FixtureImage:
    path: Path
    wnid: str
    label: int  # ImageNet-1k index of the folder it sits in
    image_id: int | None  # official val number, None for train images


def _write(path: Path, size: int, rgb: RGB | None, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if rgb is None:
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    else:
        pixels = np.broadcast_to(np.asarray(rgb, dtype=np.uint8), (size, size, 3))
    Image.fromarray(np.ascontiguousarray(pixels)).save(path, format="JPEG", quality=95)


def make_imagenet_folder(root: str | Path, wnids: Sequence[str] | None = None, per_class: int = 2, size: int = 32,
                         val_file_ids: Mapping[str, Sequence[int]] | Sequence[int] | None = None,
                         colors: Mapping[int, RGB] | Callable[[int], RGB] | None = None, seed: int = 0,
                         train_per_class: int = 0) -> list[FixtureImage]:
    """Write ``<root>/val/<wnid>/ILSVRC2012_val_XXXXXXXX.JPEG`` (and ``<root>/train/<wnid>/<wnid>_<i>.JPEG``
    when ``train_per_class`` > 0) and return the validation images, in folder/file order.

    ``val_file_ids``: None = the first ``per_class`` official images of each of ``wnids``; a mapping
    wnid -> image numbers puts exactly those in that folder (their official class or not, for bad-input
    tests); a flat list puts each image in the folder of its official class (``wnids`` then unused).
    ``colors``: solid RGB per image number (mapping or function), else random noise (seeded)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    wnid_list = imagenet_wnids()
    if val_file_ids is None:
        if not wnids:
            raise ValueError("give wnids or val_file_ids")
        placement = {w: official_val_ids(w, per_class) for w in wnids}
    elif isinstance(val_file_ids, Mapping):
        placement = {w: list(ids) for w, ids in val_file_ids.items()}
    else:
        placement = {}
        for image_id in val_file_ids:
            placement.setdefault(wnid_list[official_label(int(image_id))], []).append(int(image_id))
    images = []
    for wnid in sorted(placement):
        for image_id in sorted(placement[wnid]):
            path = root / "val" / wnid / val_name(image_id)
            rgb = colors(image_id) if callable(colors) else (colors or {}).get(image_id)
            _write(path, size, rgb, rng)
            images.append(FixtureImage(path, wnid, wnid_list.index(wnid), image_id))
    for wnid in sorted(placement) if train_per_class else ():
        for i in range(train_per_class):
            _write(root / "train" / wnid / f"{wnid}_{i}.JPEG", size, None, rng)
    return images


def make_timm_layout(root: Path, num_classes: int) -> Path:
    """timm's default split names (train/, validation/): ``num_classes`` classes, 8 train and 4 validation images."""
    from robustbench_labelaug.data import imagenet_wnids

    make_imagenet_folder(root, imagenet_wnids()[:num_classes], per_class=4, train_per_class=8)
    (root / "val").rename(root / "validation")
    return root


def make_parity_layout(root: Path, num_classes: int) -> Path:
    """The layout both training doors read: train/, val/ and validation/ (a link to val/): 4 train, 2 val each."""
    from robustbench_labelaug.data import imagenet_wnids

    make_imagenet_folder(root, imagenet_wnids()[:num_classes], per_class=2, train_per_class=4)
    (root / "validation").symlink_to(root / "val", target_is_directory=True)
    return root
