"""ImageNet-layout folders (``<root>/<class>/<file>``) read with timm's ``ImageDataset`` and timm transforms
that keep pixels in [0,1] (normalisation lives inside the model)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from timm.data import ImageDataset, create_transform
from timm.data.readers.img_extensions import get_img_extensions

from ..errors import UserError
from .fingerprint import check_no_symlink_loops
from .imagemode import to_rgb
from .imagenet_labels import imagenet_wnids
from .registry import FOLDER_SPLITS

IMAGE_EXTENSIONS = tuple(get_img_extensions())
BAD_IMAGE_POLICIES = ("error", "skip")
# the advice names each command's own spelling (rbla evaluate has no --data-dir / --skip-bad-images flags)
SKIP_ADVICE = "rbla train --skip-bad-images, or bad_images: skip under the dataset in an rbla evaluate config"
DATA_DIR_ADVICE = "point rbla train's --data-dir (or data_dir under the dataset in an rbla evaluate config)"


class BadImageError(UserError):
    """An image file that cannot be decoded. Raised inside a DataLoader worker, torch re-raises it with the
    worker's traceback in the message; this keeps the one line that names the file."""

    def __init__(self, message: str) -> None:
        if message.startswith("Caught "):
            lines = [line for line in message.splitlines() if line.strip()]
            last = lines[-1] if lines else message
            message = last.split(f"{type(self).__name__}: ", 1)[-1]
        super().__init__(message)


def bad_image_message(path: str | Path, reason: str) -> str:
    return (f"image {path} cannot be read ({reason}): replace or delete the file (or leave such files out: "
            f"{SKIP_ADVICE}; their number is then reported)")


def read_image_checked(path: str | Path, mode: str = "RGB") -> Image.Image:
    """The decoded image at ``path``, or a :class:`BadImageError` naming the file (zero bytes, truncated, not an
    image)."""
    try:
        if os.path.getsize(path) == 0:
            raise BadImageError(bad_image_message(path, "empty file"))
        with Image.open(path) as img:
            img.load()
            if mode == "RGB":
                return to_rgb(img, path).copy()
            return img.convert(mode) if mode else img.copy()
    except UserError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, ... for damaged files
        reason = " ".join(str(exc).split())[:80] or type(exc).__name__
        raise BadImageError(bad_image_message(path, reason)) from None


def find_bad_images(paths: Sequence[str | Path]) -> list[str]:
    """The files among ``paths`` that do not decode (a full decode of each, JPEGs at reduced size)."""
    bad = []
    for path in paths:
        try:
            if os.path.getsize(path) == 0:
                raise OSError("empty")
            with Image.open(path) as img:
                img.draft("RGB", (64, 64))  # JPEG: decode at 1/2..1/8 scale, still reads every byte
                img.load()
        except Exception:  # noqa: BLE001 - any decode failure marks the file bad
            bad.append(str(path))
    return bad


def class_folders(root: str | Path) -> list[str]:
    """Sorted names of the sub-folders of ``root`` (the classes), or a clear error."""
    root = Path(root)
    if not root.is_dir():
        kind = "is a file, not a folder" if root.exists() else "does not exist"
        raise UserError(f"data folder {root} {kind}: {DATA_DIR_ADVICE} to an ImageNet-layout "
                        "folder (<root>/train/<class>/<image>, <root>/val/<class>/<image>)")
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not names:
        raise UserError(f"data folder {root} has no class sub-folders: expected <class>/<image> files inside")
    return names


def split_folder(data_dir: str | Path, split: str) -> Path:
    """``<data_dir>/train`` or ``<data_dir>/val`` (timm's synonyms accepted), or a clear error."""
    data_dir = Path(data_dir)
    synonyms = {key: (key, *aliases) for key, aliases in FOLDER_SPLITS.items()}
    key = "train" if split in synonyms["train"] else "val"
    for name in synonyms[key]:
        if (data_dir / name).is_dir():
            return data_dir / name
    if not data_dir.is_dir():
        kind = "is a file, not a folder" if data_dir.exists() else "does not exist"
        raise UserError(f"data dir {data_dir} {kind}: {DATA_DIR_ADVICE} to a folder with "
                        "train/ and val/ class folders")
    raise UserError(f"data dir {data_dir} has no {key}/ folder: expected {data_dir}/{key}/<class>/<image>")


def make_class_map(class_names: Sequence[str] | None, root: str | Path) -> dict[str, int]:
    """Class-name -> index: a list fixes the order (ImageNet's 1 000 wnids keep a folder holding a subset of its
    classes at the right indices); ``None`` sorts the folder's classes."""
    names = list(class_names) if class_names is not None else class_folders(root)
    return {name: i for i, name in enumerate(names)}


class ImageFolderDataset(ImageDataset):
    """timm ``ImageDataset`` over one ImageNet-layout folder with an explicit class map and a size check."""

    def __init__(self, root: str | Path, transform=None, class_names: Sequence[str] | str | None = None,
                 bad_images: str = "error") -> None:
        """``bad_images``: ``"error"`` (default) stops with one line naming a file that does not decode (at
        start-up for empty files, else when it is read); ``"skip"`` decodes every file at start-up and leaves the
        bad ones out, listed in ``skipped_files`` (relative paths; :attr:`num_skipped` is their number)."""
        if bad_images not in BAD_IMAGE_POLICIES:
            raise UserError(f"bad_images must be one of {', '.join(BAD_IMAGE_POLICIES)}, got {bad_images!r}")
        root = Path(root)
        present = class_folders(root)
        class_map = make_class_map(class_names, root)
        unknown = sorted(set(present) - set(class_map))
        if unknown:
            raise UserError(f"{root} has class folders {unknown[:3]} that are not among the model's classes: "
                            "check the data folder / the class list")
        check_no_symlink_loops(root)
        super().__init__(str(root), class_map=class_map, transform=transform)
        self.reader.samples = _each_real_file_once(self.reader.samples)
        if len(self) == 0:
            raise UserError(f"{root} holds no images (extensions {', '.join(IMAGE_EXTENSIONS)}): "
                            "expected <class>/<image> files")
        self.root = root
        self.class_to_idx = class_map
        self.num_classes = len(class_map)
        self.bad_images = bad_images
        self.skipped_files: list[str] = []
        self._check_class_folders(present)
        self._check_files()

    def _check_class_folders(self, present: Sequence[str], skipped: Sequence[str] = ()) -> None:
        """Every class folder must hold an image: an empty one would silently shrink K or a class's share. A class
        whose images were all ``skipped`` (damaged, under ``bad_images: skip``) is named as such."""
        counts = dict.fromkeys(present, 0)
        idx_to_name = {i: n for n, i in self.class_to_idx.items()}
        for _, target in self.reader.samples:
            name = idx_to_name.get(int(target))
            if name in counts:
                counts[name] += 1
        empty = [name for name, n in counts.items() if n == 0]
        damaged = {name: [f for f in skipped if Path(f).parts[0] == name] for name in empty}
        if empty and damaged[empty[0]]:
            files = damaged[empty[0]]
            raise UserError(f"every image of class folder {self.root / empty[0]} is damaged ({len(files)} left out "
                            f"by bad_images: skip, e.g. {files[0]}): replace them with readable images (a class "
                            "without images would change K)")
        if empty:
            raise UserError(f"class folder {self.root / empty[0]} holds no images"
                            f"{f' (nor do {len(empty) - 1} more)' if len(empty) > 1 else ''}: add its images or "
                            "remove the folder (an empty class changes K)")

    def _check_files(self) -> None:
        samples = self.reader.samples
        if self.bad_images == "skip":
            bad = set(find_bad_images([path for path, _ in samples]))
            if bad:
                self.reader.samples = [(p, t) for p, t in samples if str(p) not in bad]
                self.skipped_files = sorted(os.path.relpath(p, self.root) for p in bad)
                if len(self) == 0:
                    raise UserError(f"{self.root}: all {len(bad)} images are damaged: replace them")
                self._check_class_folders(class_folders(self.root), self.skipped_files)
            return
        for path, _ in samples:  # cheap: only the size; damaged content is caught when the file is read
            if os.path.getsize(path) == 0:
                raise BadImageError(bad_image_message(path, "empty file"))

    @property
    def num_skipped(self) -> int:
        """How many damaged files ``bad_images="skip"`` left out (0 otherwise): report it with any result."""
        return len(self.skipped_files)

    def __getitem__(self, index: int):
        path, target = self.reader.samples[index]
        img = read_image_checked(path, self.input_img_mode or "RGB")
        if self.transform is not None:
            img = self.transform(img)
        if target is None:
            target = -1
        elif self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def filename(self, index: int, basename: bool = True, absolute: bool = False) -> str:  # noqa: D102
        return super().filename(index, basename=basename, absolute=absolute)

    @property
    def targets(self) -> list[int]:
        return [int(t) for _, t in self.reader.samples]


def _each_real_file_once(samples: list) -> list:
    """``samples`` with every real file kept once (the first path that reaches it, in the reader's sorted order):
    two links to one image must not count it twice."""
    seen: set[str] = set()
    out = []
    for path, target in samples:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            out.append((path, target))
    return out


def folder_transform(input_size: int | tuple[int, int, int], is_training: bool, crop_pct: float = 0.875,
                     interpolation: str = "bilinear", color_jitter: float = 0.0):
    """timm's train/eval transform with mean 0 and std 1, i.e. tensors in [0,1]. The eval transform is
    resize(size / crop_pct) then centre crop, as RobustBench's ``Res256Crop224`` for 224. The train transform is
    the paper's RandomResizedCrop + horizontal flip; ``color_jitter`` > 0 adds timm's ColorJitter (timm's own
    default is 0.4; here it is off unless asked for)."""
    extra = {"color_jitter": float(color_jitter) if color_jitter else None} if is_training else {}
    return create_transform(input_size, is_training=is_training, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                            crop_pct=crop_pct, interpolation=interpolation, **extra)


# -- registered datasets ------------------------------------------------------------------------------------------



def folder_classes(data_dir: str | Path | None) -> list[str] | None:
    """The class folders of ``<data_dir>/train`` (else of the validation folder), sorted (None without a folder)."""
    if not data_dir:
        return None
    root = Path(data_dir) / "train" if (Path(data_dir) / "train").is_dir() else split_folder(data_dir, "val")
    return class_folders(root)


def _create_folder(split: str, data_dir: str | Path, *, class_names: Sequence[str] | str | None,
                   is_training: bool = False, input_size: int = 224, crop_pct: float = 0.875,
                   interpolation: str = "bilinear", bad_images: str = "error", color_jitter: float = 0.0,
                   download: bool = False) -> ImageFolderDataset:
    transform = folder_transform(input_size, is_training, crop_pct=crop_pct, interpolation=interpolation,
                                 color_jitter=color_jitter)
    return ImageFolderDataset(split_folder(data_dir, split), transform=transform, class_names=class_names,
                              bad_images=bad_images)


def count_folder_classes(data_dir: str | Path) -> int:
    """K of a generic folder: its number of class folders."""
    return len(folder_classes(data_dir))


def create_folder(split: str, data_dir: str | Path, class_names: Sequence[str] | str | None = None,
                  **options) -> ImageFolderDataset:
    return _create_folder(split, data_dir, class_names=class_names or folder_classes(data_dir), **options)


def create_imagenet(split: str, data_dir: str | Path, class_names: Sequence[str] | str | None = None,
                    **options) -> ImageFolderDataset:
    return _create_folder(split, data_dir, class_names=class_names or imagenet_wnids(), **options)
