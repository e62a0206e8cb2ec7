"""Common corruptions (Hendrycks & Dietterich, ICLR 2019): 15 corruptions x 5 severities.

Two sources, both giving per corruption and severity a dataset indexed like the clean one (``split[i]`` is the
corrupted copy of ``clean[i]``, with its label), so per-sample and class-wise results line up across splits:

- **ImageNet-C folders** (``<root>/<corruption>/<severity>/<wnid>/<image>``, the layout RobustBench reads): each
  clean image ``<clean root>/<wnid>/<file>`` is looked up as ``<root>/<corruption>/<severity>/<wnid>/<file>``; the
  class index of a wnid is the clean dataset's (so a subset of the 1 000 classes keeps its indices).
  :func:`check_imagenet_c` refuses a folder that does not match, before any work.
- **Generated** for any other dataset with ``imagecorruptions.corrupt`` (ImageNet-C's own parameters), seeded
  per image from ``(seed, corruption, severity, index)`` so results depend neither on order nor on sharding, and
  cached as uint8 ``.npz`` shard files per corruption x severity (one per rank that generated it, atomic writes;
  no images travel between ranks) under a key that hashes the clean images, labels and generation settings, so
  every model evaluated on the same data, with any number of ranks, reuses them.

``imagecorruptions`` refuses images smaller than 32x32 (:data:`MIN_CORRUPTION_SIZE`). Images whose shorter side is
below ``min_size`` are upsampled (bilinear) to it, corrupted, and downsampled back (box filter). The default
``min_size`` 32 corrupts 32x32 images (the digits) at their own resolution with ImageNet-C's parameters, which
are tuned for 224x224: blurs, zoom and motion at severity 4-5 cover much of a 32x32 image, and frost crops a
32x32 patch from its large frost photographs. ``min_size=224`` applies the corruptions at ImageNet scale instead
(noise is then averaged down by the downsampling). Glass blur compiles a numba kernel on first use (~2 s).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import zlib
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from .. import distributed as dist_utils
from ..checks import MIN_CORRUPTION_SIZE, check_min_size
from ..errors import UserError
from ..fileio import atomic_write_bytes, atomic_write_json
from ..packages import package_version
from .folder import ImageFolderDataset, folder_transform
from .imagenet_labels import IMAGENET_C_CORRUPTIONS

CORRUPTIONS: tuple[str, ...] = IMAGENET_C_CORRUPTIONS  # == imagecorruptions.get_corruption_names()
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
IMAGENET_C_LAYOUT = "<root>/<corruption>/<severity 1-5>/<wnid>/<image>"
CACHE_FORMAT = 2  # bump when the generation or the cache layout changes


# ----------------------------------------------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------------------------------------------


def _imagecorruptions():
    try:
        import imagecorruptions
    except ImportError:
        raise UserError("generating corruptions needs the imagecorruptions package: pip install "
                        "imagecorruptions-imaug (or pass data_dir pointing to ImageNet-C)") from None
    return imagecorruptions


def corruption_names() -> list[str]:
    """The 15 ImageNet-C corruptions as ``imagecorruptions.get_corruption_names()`` lists them."""
    return list(_imagecorruptions().get_corruption_names())


def select_corruptions(corruptions: Sequence[str] | str | None = None,
                       severities: Sequence[int] | int | str | None = None) -> tuple[list[str], list[int]]:
    """Validated (corruptions, severities); ``None`` means all 15 / all 5. Strings may be comma-separated."""
    if corruptions is None:
        names = list(CORRUPTIONS)
    else:
        names = [c.strip() for c in corruptions.split(",")] if isinstance(corruptions, str) else list(corruptions)
        unknown = [c for c in names if c not in CORRUPTIONS]
        if unknown or not names or len(set(names)) != len(names):
            raise UserError(f"corruptions {names} are not distinct ImageNet-C corruptions (unknown: {unknown}): "
                            f"use some of {', '.join(CORRUPTIONS)}")
        names = [c for c in CORRUPTIONS if c in names]  # canonical order
    if severities is None:
        sevs = list(SEVERITIES)
    else:
        raw = severities.split(",") if isinstance(severities, str) else (
            [severities] if isinstance(severities, int) else list(severities))
        try:
            sevs = sorted({int(s) for s in raw})
        except (TypeError, ValueError):
            sevs = []
        if not sevs or any(s not in SEVERITIES for s in sevs) or len(sevs) != len(raw):
            raise UserError(f"severities {list(raw)} are not distinct integers in 1-5: use e.g. [1, 2, 3, 4, 5]")
    return names, sevs


def part_name(corruption: str, severity: int) -> str:
    return f"{corruption}/{severity}"


def parse_part(part: str) -> tuple[str, int]:
    corruption, severity = part.rsplit("/", 1)
    return corruption, int(severity)


# ----------------------------------------------------------------------------------------------------------------
# ImageNet-C folders
# ----------------------------------------------------------------------------------------------------------------


def _layout_error(path: Path, problem: str) -> UserError:
    return UserError(f"{path} {problem}: ImageNet-C must be laid out as {IMAGENET_C_LAYOUT} (the file names of "
                     "the clean images); check data_dir or the corruptions/severities selected")


def resolve_imagenet_c_root(root: str | Path) -> Path:
    """``root``, or ``root/ImageNet-C`` when that is where the corruption folders are (RobustBench's layout)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise _layout_error(root, "does not exist")
    nested = root / "ImageNet-C"
    if nested.is_dir() and not any((root / c).is_dir() for c in CORRUPTIONS):
        return nested
    return root


def clean_relative_paths(clean: Dataset, indices: Sequence[int]) -> list[str]:
    """``<class>/<file>`` of ``clean[indices]`` (an :class:`ImageFolderDataset`)."""
    if not isinstance(clean, ImageFolderDataset):
        raise UserError("an ImageNet-C data_dir needs the clean data as an ImageNet-layout folder (dataset "
                        "'imagenet' or 'folder'): to corrupt other data, leave data_dir unset (generated)")
    return [clean.filename(int(i), basename=False) for i in indices]


def check_imagenet_c(root: str | Path, corruptions: Iterable[str], severities: Iterable[int], clean: Dataset,
                     indices: Sequence[int]) -> Path:
    """The ImageNet-C root after checking that every selected ``<corruption>/<severity>`` folder exists, holds
    only class folders of the clean data and a copy of every clean image evaluated; :class:`UserError` naming
    the first problem otherwise. Reads directory listings only."""
    root = resolve_imagenet_c_root(root)
    rel_paths = clean_relative_paths(clean, indices)
    wanted: dict[str, set[str]] = {}
    for rel in rel_paths:
        folder, _, name = rel.rpartition(os.sep)
        wanted.setdefault(folder, set()).add(name)
    known = set(clean.class_to_idx)
    for corruption in corruptions:
        for severity in severities:
            folder = root / corruption / str(severity)
            if not folder.is_dir():
                raise _layout_error(folder, "does not exist")
            present = [p.name for p in os.scandir(folder) if p.is_dir()]
            if not present:
                raise _layout_error(folder, "has no <wnid> class folders")
            unknown = sorted(set(present) - known)
            if unknown:
                raise _layout_error(folder, f"has folders {unknown[:3]} that are not classes of the clean data")
            for sub, names in wanted.items():
                listed = set(os.listdir(folder / sub)) if (folder / sub).is_dir() else set()
                missing = sorted(names - listed)
                if missing:
                    raise _layout_error(folder / sub / missing[0],
                                        f"is missing ({len(missing)} of the {len(names)} evaluated images of "
                                        f"class {sub} have no copy there)")
    return root


def imagenet_c_transform(clean: Dataset, crop_pct: float | None = 1.0):
    """The transform for ImageNet-C images: the clean eval transform's input size and interpolation with
    ``crop_pct`` (1.0: resize the shorter side to the input size and centre-crop, an identity on ImageNet-C's
    224x224 images, as Hendrycks & Dietterich and RobustBench evaluate); ``None``: the clean transform as is."""
    transform = getattr(clean, "transform", None)
    if crop_pct is None or transform is None:
        return transform
    from torchvision import transforms as T

    steps = getattr(transform, "transforms", [])
    crop = next((t for t in steps if isinstance(t, T.CenterCrop)), None)
    resize = next((t for t in steps if isinstance(t, T.Resize)), None)
    if crop is None:
        return transform
    interpolation = resize.interpolation.value if resize is not None else "bilinear"
    return folder_transform(tuple(crop.size), False, crop_pct=crop_pct, interpolation=interpolation)


class AlignedDataset(Dataset):
    """``dataset`` re-indexed: item ``i`` is ``dataset[positions[i]]``, for the clean indices in ``positions``."""

    def __init__(self, dataset: Dataset, positions: dict[int, int]) -> None:
        self.dataset, self.positions = dataset, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int):
        return self.dataset[self.positions[int(index)]]


def imagenet_c_split(root: str | Path, corruption: str, severity: int, clean: ImageFolderDataset,
                     indices: Sequence[int], transform=None) -> AlignedDataset:
    """The ``corruption``/``severity`` folder of ImageNet-C as a dataset indexed like ``clean``."""
    folder = resolve_imagenet_c_root(root) / corruption / str(severity)
    class_names = sorted(clean.class_to_idx, key=clean.class_to_idx.get)
    split = ImageFolderDataset(folder, transform=transform, class_names=class_names)
    by_path = {split.filename(i, basename=False): i for i in range(len(split))}
    positions = {}
    for index, rel in zip(indices, clean_relative_paths(clean, indices)):
        if rel not in by_path:
            raise _layout_error(folder / rel, "is missing")
        positions[int(index)] = by_path[rel]
    return AlignedDataset(split, positions)


# ----------------------------------------------------------------------------------------------------------------
# Generating corruptions
# ----------------------------------------------------------------------------------------------------------------


def image_seed(seed: int, corruption: str, severity: int, index: int) -> int:
    """A 32-bit seed for one image, from (seed, corruption, severity, dataset index) only."""
    entropy = [int(seed), zlib.crc32(corruption.encode()), int(severity), int(index)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


@cache
def _takes_seed(corruption: str) -> bool:
    func = _imagecorruptions().corruption_dict[corruption]
    return "seed" in inspect.signature(func).parameters


def corrupt_image(image: np.ndarray, corruption: str, severity: int, seed: int,
                  min_size: int = MIN_CORRUPTION_SIZE) -> np.ndarray:
    """``imagecorruptions.corrupt`` of one uint8 HxWxC image (C = 1 or 3), deterministic in ``seed`` (numpy's
    global RNG is seeded and restored; glass blur and impulse noise get the seed directly). Images with a
    shorter side below ``min_size`` are upsampled to it, corrupted and downsampled back."""
    ic = _imagecorruptions()
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"expected a uint8 HxWx1 or HxWx3 image, got {image.dtype} {image.shape}")
    height, width, channels = image.shape
    work = image if channels == 3 else np.repeat(image, 3, axis=2)
    scale = max(min_size, MIN_CORRUPTION_SIZE) / min(height, width)
    if scale > 1:
        size = (max(MIN_CORRUPTION_SIZE, round(width * scale)), max(MIN_CORRUPTION_SIZE, round(height * scale)))
        work = np.asarray(Image.fromarray(work).resize(size, Image.BILINEAR))
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        kwargs = {"seed": seed} if _takes_seed(corruption) else {}
        out = ic.corrupt(np.ascontiguousarray(work), severity=severity, corruption_name=corruption, **kwargs)
    finally:
        np.random.set_state(state)
    out = np.array(out, dtype=np.uint8)  # a writable copy
    if out.shape[:2] != (height, width):
        out = np.array(Image.fromarray(out).resize((width, height), Image.BOX))
    if channels == 1:
        out = np.round(out.astype(np.float32).mean(axis=2, keepdims=True)).astype(np.uint8)
    return out


def to_uint8_hwc(x: torch.Tensor) -> np.ndarray:
    """A CxHxW image in [0,1] as uint8 HxWxC."""
    return (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def default_cache_dir() -> Path:
    """``$RBLA_CACHE_DIR/corruptions``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)``/robustbench_labelaug/corruptions``."""
    if os.environ.get("RBLA_CACHE_DIR"):
        return Path(os.environ["RBLA_CACHE_DIR"]).expanduser() / "corruptions"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "robustbench_labelaug" / "corruptions"


class GeneratedCorruptions(Dataset):
    """Corrupted uint8 images as ``(CxHxW float in [0,1], label)``, indexed by clean dataset index."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, index: np.ndarray) -> None:
        self.images, self.labels, self.index = images, labels, index
        self.position = {int(i): p for p, i in enumerate(index)}

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int):
        p = self.position[int(index)]
        x = torch.from_numpy(np.ascontiguousarray(self.images[p])).permute(2, 0, 1).float().div_(255.0)
        return x, int(self.labels[p])


class CorruptionGenerator:
    """Corrupted copies of ``dataset[indices]``, one split (corruption x severity) at a time, cached on disk.

    Under torchrun each rank corrupts and caches only its share (every world_size-th image, the share it
    evaluates); the per-image seeds make the result identical to a single process. The cache key hashes the clean images
    (as uint8), their labels, ``seed``, ``min_size`` and the imagecorruptions version; computing it reads this
    rank's share of the clean images once and keeps it in memory for the run."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], *, seed: int = 0,
                 min_size: int = MIN_CORRUPTION_SIZE, cache_dir: str | Path | None = None,
                 progress: bool = True) -> None:
        min_size = check_min_size(None, min_size)
        self.dataset, self.indices = dataset, [int(i) for i in indices]
        self.seed, self.min_size = int(seed), int(min_size)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.progress = progress
        self._shard: tuple[list[int], np.ndarray, np.ndarray] | None = None
        self._key: str | None = None

    def _load_shard(self) -> None:
        info = dist_utils.current()
        shard = self.indices[info.rank::info.world_size]
        images, labels, digests = [], [], []
        for i in tqdm(shard, desc="reading clean images", leave=False, disable=not (self.progress and info.is_main)):
            x, y = self.dataset[i][:2]
            img = to_uint8_hwc(x)
            images.append(img)
            labels.append(int(y))
            digests.append((i, hashlib.sha256(repr((img.shape, int(y))).encode() + img.tobytes()).hexdigest()))
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            raise UserError(f"the images to corrupt have different sizes {sorted(shapes)[:3]}: use a dataset with "
                            "a fixed-size eval transform")
        stacked = np.stack(images) if images else np.zeros((0, 1, 1, 3), dtype=np.uint8)
        self._shard = (shard, stacked, np.asarray(labels, dtype=np.int64))
        all_digests = sorted(d for part in dist_utils.gather_objects(digests) for d in part)
        ic = _imagecorruptions()
        version = getattr(ic, "__version__", None) or package_version("imagecorruptions-imaug")
        blob = json.dumps({"format": CACHE_FORMAT, "seed": self.seed, "min_size": self.min_size,
                           "imagecorruptions": version, "images": all_digests})
        self._key = hashlib.sha256(blob.encode()).hexdigest()[:20]

    @property
    def key(self) -> str:
        if self._key is None:
            self._load_shard()
        return self._key  # type: ignore[return-value]

    def folder(self, corruption: str, severity: int) -> Path:
        """The cache folder of one split: one ``shard-<rank>-of-<world size>.npz`` per rank that generated it."""
        return self.cache_dir / self.key / corruption / str(severity)

    def generate_shard(self, corruption: str, severity: int) -> dict[str, np.ndarray]:
        """This rank's share of the split, corrupted (no cache)."""
        if self._shard is None:
            self._load_shard()
        shard, images, labels = self._shard  # type: ignore[misc]
        out = np.empty_like(images)
        info = dist_utils.current()
        for p in tqdm(range(len(shard)), desc=f"corrupting {part_name(corruption, severity)}", leave=False,
                      disable=not (self.progress and info.is_main)):
            out[p] = corrupt_image(images[p], corruption, severity, image_seed(self.seed, corruption, severity,
                                                                               shard[p]), self.min_size)
        return {"index": np.asarray(shard, dtype=np.int64), "labels": labels, "images": out}

    def split(self, corruption: str, severity: int) -> GeneratedCorruptions:
        """This rank's share of the split (the images it evaluates: every world_size-th), from the cache, else
        generated and written as this rank's shard file. No images pass between ranks: memory stays bounded by
        one shard, and each rank needs only its own file (no shared filesystem needed). A cache written with
        another number of ranks is read shard file by shard file, keeping this rank's rows."""
        info = dist_utils.current()
        folder = self.folder(corruption, severity)
        wanted = self.indices[info.rank::info.world_size]
        own = folder / f"shard-{info.rank}-of-{info.world_size}.npz"
        arrays = self._read(own, wanted) if own.exists() else self._read_other_shards(folder, wanted)
        if arrays is None:
            arrays = self.generate_shard(corruption, severity)
            self._write(own, arrays)
        return GeneratedCorruptions(arrays["images"], arrays["labels"], arrays["index"])

    def _read(self, path: Path, wanted: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("index", "labels", "images")}
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"cached corruptions {path} are unreadable ({exc}): delete that file") from None
        if wanted is not None and sorted(arrays["index"].tolist()) != sorted(int(i) for i in wanted):
            raise UserError(f"cached corruptions {path} hold other images than this run evaluates: delete "
                            f"{path.parent.parent.parent} to regenerate")
        return arrays

    def _read_other_shards(self, folder: Path, wanted: Sequence[int]) -> dict[str, np.ndarray] | None:
        """``wanted``'s rows from a complete set of shard files written by another number of ranks (read one
        file at a time), or None where there is none."""
        sets: dict[int, set[int]] = {}
        for f in folder.glob("shard-*-of-*.npz") if folder.is_dir() else ():
            rank, _, world = f.stem[len("shard-"):].partition("-of-")
            if rank.isdigit() and world.isdigit():
                sets.setdefault(int(world), set()).add(int(rank))
        complete = [w for w, ranks in sorted(sets.items()) if ranks == set(range(w))]
        if not complete:
            return None
        world = complete[0]
        keep = {int(i) for i in wanted}
        parts = []
        for rank in range(world):
            a = self._read(folder / f"shard-{rank}-of-{world}.npz")
            rows = np.isin(a["index"], list(keep))
            parts.append({k: v[rows] for k, v in a.items()})
        arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if sorted(arrays["index"].tolist()) != sorted(keep):
            raise UserError(f"cached corruptions in {folder} hold other images than this run evaluates: delete "
                            f"{folder.parent.parent} to regenerate")
        return arrays

    def _write(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        try:
            atomic_write_bytes(path, buf.getvalue())
            meta = self.cache_dir / self.key / "meta.json"
            if dist_utils.current().is_main and not meta.exists():
                atomic_write_json(meta, {"format": CACHE_FORMAT, "seed": self.seed, "min_size": self.min_size,
                                         "num_images": len(self.indices),
                                         "image_shape": list(arrays["images"].shape[1:])})
        except OSError as exc:
            raise UserError(f"cannot write the corruption cache {path} ({exc.strerror}): set cache_dir (or "
                            "RBLA_CACHE_DIR) to a writable folder") from None


__all__ = ["CORRUPTIONS", "IMAGENET_C_LAYOUT", "MIN_CORRUPTION_SIZE", "SEVERITIES", "AlignedDataset",
           "CorruptionGenerator", "GeneratedCorruptions", "check_imagenet_c", "corrupt_image", "corruption_names",
           "default_cache_dir", "image_seed", "imagenet_c_split", "imagenet_c_transform", "parse_part",
           "resolve_imagenet_c_root", "select_corruptions", "part_name"]
