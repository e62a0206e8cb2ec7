"""CIFAR-10 / CIFAR-100 from torchvision's on-disk format, and CIFAR-10-C / CIFAR-100-C in RobustBench's layout.

- **Clean data**: ``<data_dir>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` and
  ``<data_dir>/cifar-100-python/{train,test,meta}`` (what ``torchvision.datasets.CIFAR10/100(download=True)`` and
  RobustBench's ``load_cifar10`` write), in torchvision's file lists and order. The batches are pickles by format:
  they are read by :func:`~robustbench_labelaug.safeload.load_data_pickle`, a restricted unpickler that builds
  only the dicts, lists, strings, numbers and numpy arrays the format holds and refuses anything else in one line
  (torchvision's own classes call ``pickle.load``, which would run whatever a replaced batch holds; they are not
  used to read). torchvision refuses files whose md5 differs from the official ones; here a missing file is a
  :class:`UserError` naming it and a differing md5 is a warning (the numbers are then not comparable with
  RobustBench's). ``download=True`` runs torchvision's download only (offline: one line naming the expected files
  and the URL).
- **RobustBench's evaluation subset**: ``load_cifar10(n_examples)`` takes the first n test images in file order,
  so :func:`robustbench_cifar_subset` is the first n of the test split.
- **CIFAR-10-C / CIFAR-100-C** (Hendrycks & Dietterich): ``<data_dir>/CIFAR-10-C/<corruption>.npy`` (uint8,
  50 000 x 32 x 32 x 3: severities 1-5, 10 000 test images each, in test-set order) and ``labels.npy``, read with
  RobustBench's ``load_cifar10c``/``load_cifar100c`` after :func:`check_cifar_c` has refused a missing, truncated
  or mislaid file (RobustBench would start a Zenodo download, or fail deep inside numpy). :func:`check_cifar_c` and
  :func:`cifar_c_split` have the signatures of ``check_imagenet_c``/``imagenet_c_split`` in
  :mod:`robustbench_labelaug.data.corruptions`, so the corruptions evaluator uses them the same way (per corruption
  x severity, split ``i`` is the corrupted copy of clean test image ``i``: class-wise errors and mCE line up).

Images are ``3x32x32`` tensors in [0,1]; normalisation lives inside the model (RobustBench's CIFAR models take
[0,1] inputs, most without any normalisation, so their mean/std is 0/1). Training augmentation: random crop 32
with padding 4 and horizontal flip.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets
from torchvision import transforms as T

from ..compat import import_robustbench
from ..errors import UserError
from ..fileio import file_digest
from ..safeload import load_data_pickle
from .registry import get_dataset_spec
from .subsets import NamedSubset

CIFAR_C_IMAGES_PER_SEVERITY = 10_000  # RobustBench's n_total_cifar
CIFAR_C_LAYOUT = "<data_dir>/{folder}/<corruption>.npy (uint8 N x 32 x 32 x 3, 10 000 images per severity 1-5) + labels.npy"


@dataclass(frozen=True)
class CifarSpec:
    """Where torchvision and RobustBench keep one CIFAR variant's files (K, class names, normalisation and the
    rest are the dataset registry's: :func:`~robustbench_labelaug.data.registry.get_dataset_spec`)."""

    name: str
    torchvision_class: str            # attribute of torchvision.datasets
    base_folder: str                  # torchvision's folder under data_dir
    c_folder: str                     # RobustBench's corruption folder under data_dir
    c_loader: str                     # RobustBench's loader of that folder (robustbench.data.<c_loader>)

    @property
    def num_classes(self) -> int:
        return get_dataset_spec(self.name).count_classes()

    @property
    def class_names(self) -> tuple[str, ...] | None:
        names = get_dataset_spec(self.name).class_names
        return names if isinstance(names, tuple) else None  # CIFAR-100: read from its meta file


CIFAR_SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec("cifar10", "CIFAR10", "cifar-10-batches-py", "CIFAR-10-C", "load_cifar10c"),
    "cifar100": CifarSpec("cifar100", "CIFAR100", "cifar-100-python", "CIFAR-100-C", "load_cifar100c"),
}


def cifar_spec(name: str) -> CifarSpec:
    if name not in CIFAR_SPECS:
        raise UserError(f"unknown CIFAR dataset '{name}': use one of {', '.join(CIFAR_SPECS)}")
    return CIFAR_SPECS[name]


def cifar_transform(is_training: bool):
    """Standard CIFAR augmentation (random crop 32, padding 4, horizontal flip) for training; ToTensor for eval."""
    if is_training:
        return T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor()])
    return T.ToTensor()


def _split_is_train(name: str, split: str) -> bool:
    """Whether ``split`` (a split of dataset ``name`` or a synonym the registry lists) is the training split."""
    return get_dataset_spec(name).resolve_split(split) == "train"


@dataclass
class CifarArrays:
    """One split as torchvision's ``CIFAR10``/``CIFAR100`` would hold it: ``data`` (N x 32 x 32 x 3 uint8, HWC),
    ``targets`` (N ints; CIFAR-100's fine labels), ``classes`` (the meta file's names)."""

    data: np.ndarray
    targets: list[int]
    classes: list[str]


def _batch_entry(entry: Any, path: Path, keys: tuple[str, ...]) -> Any:
    if not isinstance(entry, dict) or not any(k in entry for k in keys):
        raise UserError(f"CIFAR file {path} holds no {' / '.join(repr(k) for k in keys)}: it is not torchvision's "
                        "CIFAR format; replace it with the official file")
    return entry[next(k for k in keys if k in entry)]


def read_cifar_arrays(cls: type, root: Path, train: bool) -> CifarArrays:
    """The split's batches and meta file (``cls``: torchvision's class, for its file lists and keys), read with
    the restricted unpickler: what torchvision's ``CIFAR10.__init__`` builds, without ``pickle.load``."""
    folder = root / cls.base_folder
    fix = f"replace it with the official file (unpack {cls.url})"
    data, targets = [], []
    for name, _ in (cls.train_list if train else cls.test_list):
        path = folder / name
        entry = load_data_pickle(path, "CIFAR file", fix)
        images = _batch_entry(entry, path, ("data",))
        labels = _batch_entry(entry, path, ("labels", "fine_labels"))
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 \
                or images.shape[1] != 3 * 32 * 32:
            shown = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
            raise UserError(f"CIFAR file {path} holds {shown} images: expected uint8 N x 3072 (torchvision's CIFAR "
                            f"format); {fix}")
        if not isinstance(labels, (list, tuple, np.ndarray)) or len(labels) != len(images) \
                or not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in labels):
            raise UserError(f"CIFAR file {path} holds {len(images)} images but not as many integer labels: {fix}")
        data.append(images)
        targets.extend(int(t) for t in labels)
    meta_path = folder / cls.meta["filename"]
    names = _batch_entry(load_data_pickle(meta_path, "CIFAR file", fix), meta_path, (cls.meta["key"],))
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise UserError(f"CIFAR file {meta_path} holds no list of class names under '{cls.meta['key']}': {fix}")
    images = np.vstack(data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1)) if data else np.zeros((0, 32, 32, 3),
                                                                                                   np.uint8)
    return CifarArrays(images, targets, list(names))


def check_cifar_files(name: str, root: str | Path) -> None:
    """Read every batch and meta file of ``name`` present under ``root`` with the restricted unpickler (nothing is
    kept): the check before torchvision's own CIFAR classes unpickle them (timm's ``torch/cifar10`` under
    ``rbla timm-train``). A file holding anything but data is one :class:`UserError`; missing files are left to
    torchvision."""
    cls = getattr(tv_datasets, cifar_spec(name).torchvision_class)
    for path in expected_files(name, root):
        if path.is_file():
            load_data_pickle(path, "CIFAR file", f"replace it with the official file (unpack {cls.url})")


def _download(cls: type, root: Path) -> None:
    """torchvision's download of ``cls`` into ``root`` (md5-checked archive, unpacked), without reading it."""
    loader = cls.__new__(cls)
    loader.root = str(root)
    loader.download()


def expected_files(name: str, data_dir: str | Path, split: str | None = None) -> list[Path]:
    """The torchvision files a CIFAR split needs (all splits when ``split`` is None)."""
    spec = cifar_spec(name)
    cls = getattr(tv_datasets, spec.torchvision_class)
    lists = cls.train_list + cls.test_list if split is None else (
        cls.train_list if _split_is_train(name, split) else cls.test_list)
    folder = Path(data_dir).expanduser() / spec.base_folder
    return [folder / f for f, _ in lists] + [folder / cls.meta["filename"]]


def _warn_if_unofficial(name: str, data_dir: Path, split: str) -> None:
    cls = getattr(tv_datasets, cifar_spec(name).torchvision_class)
    sums = dict(cls.train_list + cls.test_list)
    sums[cls.meta["filename"]] = cls.meta["md5"]
    for path in expected_files(name, data_dir, split):
        if file_digest(path, "md5") != sums[path.name]:
            warnings.warn(f"{path} is not the official {name} file (md5 differs): results are not comparable with "
                          "RobustBench's", stacklevel=3)
            return


class CifarDataset(Dataset):
    """One CIFAR split as ``(image 3x32x32 in [0,1], label)``, read by torchvision; ``classes`` are the class
    names (airplane ... truck for CIFAR-10), ``targets`` the labels, ``dataset_name`` cifar10/cifar100."""

    def __init__(self, name: str, data_dir: str | Path, split: str = "test", *, is_training: bool = False,
                 download: bool = False, transform=None, check_md5: bool = True) -> None:
        spec = cifar_spec(name)
        train = _split_is_train(name, split)
        root = Path(data_dir).expanduser()
        cls = getattr(tv_datasets, spec.torchvision_class)
        if download:
            try:
                _download(cls, root)
            except (OSError, RuntimeError) as exc:  # URLError is an OSError
                raise UserError(f"could not download {name} into {root} ({type(exc).__name__}): put torchvision's "
                                f"{spec.base_folder}/ there (from {cls.url}, unpacked) and set download: false"
                                ) from None
        missing = [p for p in expected_files(name, root, split) if not p.is_file()]
        if missing:
            listed = ", ".join(p.name for p in missing[:6]) + (" ..." if len(missing) > 6 else "")
            inside = (f" ({root} itself looks like {spec.base_folder}/: pass the folder above it)"
                      if root.name == spec.base_folder else "")
            raise UserError(f"{name} {'train' if train else 'test'} files missing in {root / spec.base_folder}: "
                            f"{listed} (torchvision's integrity check needs {', '.join(p.name for p in expected_files(name, root, split))} "
                            f"for this split){inside}; unpack {cls.url} into {root} (torchvision's format), or set "
                            "download: true")
        self.base = read_cifar_arrays(cls, root, train)  # refused files are refused before the md5 is compared
        if check_md5:
            _warn_if_unofficial(name, root, split)
        if self.base.data.shape[1:] != (32, 32, 3) or len(self.base.data) != len(self.base.targets):
            raise UserError(f"{name} files in {root / spec.base_folder} hold {self.base.data.shape} images and "
                            f"{len(self.base.targets)} labels: not torchvision's CIFAR format")
        bad = sorted({int(t) for t in self.base.targets if not 0 <= int(t) < spec.num_classes})
        if bad:
            raise UserError(f"{name} files in {root / spec.base_folder} have labels {bad[:3]} outside 0..."
                            f"{spec.num_classes - 1}: wrong dataset (CIFAR-10 vs CIFAR-100?)")
        self.name = self.dataset_name = name
        self.split = "train" if train else "test"
        self.root = root
        self.num_classes = spec.num_classes
        self.classes = list(spec.class_names or self.base.classes)
        self.transform = transform if transform is not None else cifar_transform(is_training)

    def __len__(self) -> int:
        return len(self.base.data)

    def __getitem__(self, index: int):
        from PIL import Image

        img = Image.fromarray(self.base.data[int(index)])
        return self.transform(img), int(self.base.targets[int(index)])

    @property
    def targets(self) -> list[int]:
        return [int(t) for t in self.base.targets]

    def filename(self, index: int) -> str:
        return f"{self.name}_{self.split}_{int(index):05d}"


def create_cifar_dataset(name: str, data_dir: str | Path | None, split: str = "test", *, is_training: bool = False,
                         download: bool = False, **_: Any) -> CifarDataset:
    """Factory with ``create_dataset``'s arguments (input_size, crop_pct, ... are ignored: CIFAR is 32x32)."""
    if data_dir is None:
        spec = cifar_spec(name)
        raise UserError(f"dataset '{name}' needs data_dir (--data-dir): the folder holding {spec.base_folder}/ "
                        "(torchvision's format), or add download: true")
    return CifarDataset(name, data_dir, split, is_training=is_training, download=download)


class NamedCifarSubset(NamedSubset):
    """A :class:`~.subsets.NamedSubset` that also keeps ``classes``, ``num_classes`` and ``dataset_name`` of a
    :class:`CifarDataset`."""

    def __getattr__(self, name: str):
        if name in ("classes", "num_classes", "dataset_name", "name", "root", "split", "transform"):
            return getattr(self.dataset, name)
        raise AttributeError(name)


def robustbench_cifar_subset(dataset: CifarDataset, n_examples: int | None = None) -> NamedCifarSubset:
    """RobustBench's CIFAR evaluation points: ``load_cifar10/100(n_examples)`` = the first n test images in file
    order (all 10 000 when None)."""
    if dataset.split != "test":
        raise UserError(f"RobustBench evaluates CIFAR on its test split, not '{dataset.split}': use split: test")
    n = len(dataset) if n_examples is None else int(n_examples)
    if not 0 < n <= len(dataset):
        raise UserError(f"RobustBench's subset needs 1..{len(dataset)} examples, got {n_examples}")
    return NamedCifarSubset(dataset, list(range(n)))


# ----------------------------------------------------------------------------------------------------------------
# CIFAR-10-C / CIFAR-100-C (RobustBench's layout)
# ----------------------------------------------------------------------------------------------------------------


def _c_spec(clean: Dataset) -> CifarSpec:
    name = getattr(clean, "dataset_name", None)
    if name not in CIFAR_SPECS:
        raise UserError("CIFAR-10-C / CIFAR-100-C need the clean data as dataset cifar10 / cifar100 (test split): "
                        "to corrupt other data, leave data_dir unset (generated)")
    if getattr(clean, "split", "test") != "test":
        raise UserError("CIFAR-10-C / CIFAR-100-C are corrupted copies of the test split: use split: test")
    return CIFAR_SPECS[name]


def resolve_cifar_c_root(root: str | Path, spec: CifarSpec) -> Path:
    """``root/CIFAR-10-C`` (RobustBench's layout), or ``root`` itself when it is that folder."""
    root = Path(root).expanduser()
    nested = root / spec.c_folder
    if nested.is_dir():
        return nested
    if root.name == spec.c_folder and root.is_dir():
        return root
    raise UserError(f"{nested} does not exist: {spec.name}'s corruptions must be laid out as "
                    f"{CIFAR_C_LAYOUT.format(folder=spec.c_folder)} (RobustBench's layout); check data_dir")


def _open_npy(path: Path, what: str, layout: str) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{path} is missing: expected {layout}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path} is not a complete .npy file ({str(exc).splitlines()[0]}): the {what} is truncated "
                        "or damaged; download it again") from None


def check_cifar_c(root: str | Path, corruptions: Iterable[str], severities: Iterable[int], clean: Dataset,
                  indices: Sequence[int]) -> Path:
    """The CIFAR-C folder after checking (headers only, memory-mapped) that ``labels.npy`` and every selected
    ``<corruption>.npy`` exist, are complete, hold uint8 32x32x3 images, 10 000 per severity for the severities
    asked, and that the labels match the clean test labels of the evaluated images. :class:`UserError` otherwise."""
    spec = _c_spec(clean)
    folder = resolve_cifar_c_root(root, spec)
    layout = CIFAR_C_LAYOUT.format(folder=spec.c_folder)
    indices = [int(i) for i in indices]
    top = max(indices, default=-1)
    if top >= CIFAR_C_IMAGES_PER_SEVERITY:
        raise UserError(f"{spec.c_folder} covers the first {CIFAR_C_IMAGES_PER_SEVERITY} test images, the evaluation "
                        f"asks for index {top}: lower n_examples")
    labels = _open_npy(folder / "labels.npy", "label file", layout)
    if labels.ndim != 1 or len(labels) < CIFAR_C_IMAGES_PER_SEVERITY:
        raise UserError(f"{folder / 'labels.npy'} has shape {labels.shape}: expected at least "
                        f"{CIFAR_C_IMAGES_PER_SEVERITY} labels ({layout})")
    clean_targets = np.asarray(clean.targets)
    if indices and not np.array_equal(np.asarray(labels[indices]), clean_targets[indices]):
        raise UserError(f"{folder / 'labels.npy'} does not match the {spec.name} test labels: the folder is not "
                        f"{spec.c_folder} for this test set")
    for corruption in corruptions:
        images = _open_npy(folder / f"{corruption}.npy", f"{corruption} file", layout)
        need = max(severities) * CIFAR_C_IMAGES_PER_SEVERITY
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3) or len(images) < need:
            raise UserError(f"{folder / (corruption + '.npy')} holds {images.dtype} {images.shape}: expected uint8 "
                            f"({need}+, 32, 32, 3) for severities up to {max(severities)} ({layout})")
    return folder


class CifarCSplit(Dataset):
    """One corruption x severity: item ``i`` (a clean test index) is the corrupted copy of test image ``i``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[int(index)], int(self.labels[int(index)])


def cifar_c_split(root: str | Path, corruption: str, severity: int, clean: Dataset, indices: Sequence[int],
                  transform=None) -> CifarCSplit:
    """``corruption`` at ``severity`` from RobustBench's ``load_cifar10c``/``load_cifar100c`` (first
    ``max(indices) + 1`` images), indexed like the clean test set. Call :func:`check_cifar_c` first (RobustBench
    would try to download a missing folder). ``transform`` is unused (the tensors are already [0,1])."""
    spec = _c_spec(clean)
    folder = resolve_cifar_c_root(root, spec)

    import_robustbench()
    from robustbench import data as rb_data

    loader = getattr(rb_data, spec.c_loader)
    n = max((int(i) for i in indices), default=-1) + 1
    try:
        x, y = loader(n, severity=int(severity), data_dir=str(folder.parent), shuffle=False, corruptions=[corruption])
    except (ValueError, OSError) as exc:
        raise UserError(f"{folder / (corruption + '.npy')} cannot be read by RobustBench ({exc}): download "
                        f"{spec.c_folder} again") from None
    return CifarCSplit(x, y)


def create_cifar10(split: str, data_dir: str | Path | None, **options: Any) -> CifarDataset:
    """The registry's factory of ``cifar10`` (models trained here use its training-set mean/std)."""
    return create_cifar_dataset("cifar10", data_dir, split, **options)


def create_cifar100(split: str, data_dir: str | Path | None, **options: Any) -> CifarDataset:
    """The registry's factory of ``cifar100``."""
    return create_cifar_dataset("cifar100", data_dir, split, **options)


def robustbench_cifar_subset_of(dataset: CifarDataset, ds_id: str) -> NamedCifarSubset:
    """The registry's ``robustbench`` subset of a CIFAR test split (:func:`robustbench_cifar_subset`)."""
    return robustbench_cifar_subset(dataset)


__all__ = ["CIFAR_C_IMAGES_PER_SEVERITY", "CIFAR_SPECS", "CifarCSplit", "CifarDataset", "CifarSpec",
           "NamedCifarSubset", "check_cifar_c", "check_cifar_files", "cifar_c_split", "cifar_spec", "cifar_transform", "create_cifar10",
           "create_cifar100", "create_cifar_dataset", "expected_files", "resolve_cifar_c_root",
           "robustbench_cifar_subset", "robustbench_cifar_subset_of"]
