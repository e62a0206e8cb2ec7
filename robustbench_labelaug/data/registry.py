"""The dataset registry: everything the package knows about a dataset, in one place, readable without torch.

Every dataset is one :class:`DatasetSpec` in :data:`DATASETS` (the package's one
:class:`~robustbench_labelaug.registry.Registry` mechanism): K, its class names, the normalisation a model trained
on it uses, the default input size, its splits (with accepted synonyms), whether it needs ``data_dir``, how its
corruptions are found, its named subsets, which config keys its data depends on, its threat models' default eps
(as timm keeps a model's ``pretrained_cfg`` beside it), its models' preprocessing, and how RobustBench treats it.
``rbla train --dataset``, the evaluation configs' ``datasets`` block, the model zoo's ``dataset`` field, the
corruptions evaluator and the leaderboard (class names) all ask this registry; no other module compares a dataset
name with a string.

This module imports no torch: the factories (and anything else that needs torch) are referenced lazily as
``"package.module:function"`` and imported only when a dataset is created, so the leaderboard reads K and the
class names without torch. Adding a dataset is one :func:`register_dataset` call, either here with a lazy
factory (the built-in ones below) or as a decorator on the factory in its own module (then list the module in
:data:`DATASET_MODULES`); see CONTRIBUTING.md. ``factory(split, data_dir, **options)`` gets the canonical split
name, the folder (or None) and the options ``is_training``, ``input_size``, ``crop_pct``, ``interpolation``,
``class_names``, ``download``, ``bad_images``, ``color_jitter``; it returns a ``Dataset`` of ``(image in [0,1]
CxHxW, label)``, ideally with ``targets`` (labels without loading images) and ``filename(i)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..registry import Registry, resolve
from ..results.vocab import ThreatModel
from .imagenet_labels import IMAGENET_NUM_CLASSES

if TYPE_CHECKING:  # pragma: no cover
    from torch.utils.data import Dataset

# Modules whose import registers further datasets with the decorator (the built-in ones are declared below).
DATASET_MODULES: tuple[str, ...] = ()
DATA_KEYS = ("data_dir", "split", "input_size", "crop_pct", "interpolation", "subset")
GENERATED = "generated"  # corruptions made with imagecorruptions from the clean images (cached)

DIGITS_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
CIFAR10_CLASSES: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                    "truck")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FOLDER_SPLITS = {"train": ("training",), "val": ("validation", "valid", "eval", "evaluation", "test")}
NO_PREPROCESSING = "none"  # RobustBench's preprocessing name for images used as stored (ToTensor only)
# The name of a dataset given as in-memory tensors, benchmark(model, dataset=(x, y)) (data/tensors.py): never a
# registered name, so a model_info's "dataset" says which of the two its numbers came from.
TENSORS_DATASET = "tensors"


@dataclass(frozen=True)
class CorruptionFolder:
    """A layout of pre-computed corrupted copies of a dataset's test images (ImageNet-C, CIFAR-10-C), given to
    the corruptions evaluator as its ``data_dir``. Each function may be a lazy ``"module:function"``.

    ``check(root, corruptions, severities, clean, indices) -> root``: refuse a bad folder before any work, return
    the resolved root. ``split(root, corruption, severity, clean, indices, transform) -> Dataset`` indexed like the
    clean one. ``transform(clean, crop_pct)``: the image transform (None: images as stored). ``normalized_k``: K
    of the models for which the AlexNet-normalised mCE (Hendrycks & Dietterich) is reported (None: never)."""

    name: str
    check: Callable[..., Any] | str
    split: Callable[..., Any] | str
    transform: Callable[..., Any] | str | None = None
    normalized_k: int | None = None

    def function(self, which: str) -> Callable[..., Any] | None:
        ref = getattr(self, which)
        return None if ref is None else resolve(ref)


CORRUPTION_FOLDERS: Registry[CorruptionFolder] = Registry("corruption folder layout")
CORRUPTION_FOLDERS.register("imagenet_c", CorruptionFolder(
    "imagenet_c", check="robustbench_labelaug.data.corruptions:check_imagenet_c",
    split="robustbench_labelaug.data.corruptions:imagenet_c_split",
    transform="robustbench_labelaug.data.corruptions:imagenet_c_transform", normalized_k=IMAGENET_NUM_CLASSES))
CORRUPTION_FOLDERS.register("cifar_c", CorruptionFolder(  # RobustBench's <data_dir>/CIFAR-10-C/*.npy
    "cifar_c", check="robustbench_labelaug.data.cifar:check_cifar_c",
    split="robustbench_labelaug.data.cifar:cifar_c_split"))


@dataclass(frozen=True)
class RobustBenchFacts:
    """How RobustBench treats a dataset of the same name: ``prefixed``: its checkpoints' keys start with
    ``model.`` (RobustBench wraps ImageNet models only); ``standard_from_torchvision``: its ``Standard*`` models
    load torchvision's pretrained weights."""

    prefixed: bool = False
    standard_from_torchvision: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    """What the package knows about one dataset (see the module docstring).

    ``factory``: the function creating a split (or its lazy ``"module:function"``). ``num_classes``: K, or a
    function of ``data_dir`` counting the classes of a folder. ``splits``: canonical split name -> accepted
    synonyms; ``eval_split`` is evaluated by default. ``class_names``: the classes in index order as people name
    them (a tuple, a function of ``data_dir``, or None: unknown). ``corruptions``: ``"generated"``
    (imagecorruptions, deterministic and cached), a :data:`CORRUPTION_FOLDERS` layout name (``"imagenet_c"``,
    ``"cifar_c"``: read from the corruptions evaluator's ``data_dir``, generated without one) or a function
    ``(dataset, indices, corruption, severity) -> Dataset``. ``subsets``: subset name -> function
    ``(dataset, dataset id) -> Dataset``. ``data_keys``: the evaluation-config keys its data depends on (part of
    every result's fingerprint). ``in_memory``: the data are held in memory (no loader workers by default).
    ``robustbench``: how RobustBench treats it (None: not a RobustBench dataset). ``default_eps``: threat model ->
    its eps in [0,1] pixel units (RobustBench's leaderboards: CIFAR-10/100 L-inf 8/255, ImageNet L-inf 4/255; the
    package's own for digits), what ``benchmark()`` attacks with when no eps is given. ``preprocessing``:
    RobustBench's name for how its models' inputs are prepared (``none``: as stored; ``Res256Crop224``), a zoo
    entry's ``preprocessing``."""

    name: str
    factory: Callable[..., Dataset] | str
    num_classes: int | Callable[[str | Path | None], int] | str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int
    splits: Mapping[str, tuple[str, ...]]
    eval_split: str
    needs_data_dir: bool = False
    class_names: tuple[str, ...] | Callable[[str | Path | None], Sequence[str]] | str | None = None
    class_folders: Callable[[], Sequence[str]] | str | None = None  # the class folders' names where they differ
    corruptions: str | Callable[..., Dataset] = GENERATED
    subsets: Mapping[str, Callable[..., Any] | str] = field(default_factory=dict)
    data_keys: tuple[str, ...] = DATA_KEYS
    in_memory: bool = False
    robustbench: RobustBenchFacts | None = None
    description: str = ""
    default_eps: Mapping[str, float] = field(default_factory=dict)
    preprocessing: str = NO_PREPROCESSING

    def eps_of(self, threat_model: str) -> float | None:
        """The eps of ``threat_model`` on this dataset (None: the registry knows none)."""
        return self.default_eps.get(threat_model)

    def resolve_split(self, split: str | None) -> str:
        """The canonical split name for ``split`` (a synonym, or None: :attr:`eval_split`)."""
        if split is None:
            return self.eval_split
        for canonical, aliases in self.splits.items():
            if split == canonical or split in aliases:
                return canonical
        raise UserError(f"dataset '{self.name}' has no split '{split}': use one of {', '.join(self.splits)}")

    def check_data_dir(self, data_dir: str | Path | None, flag: str = "--data-dir") -> None:
        if self.needs_data_dir and not data_dir:
            raise UserError(f"dataset '{self.name}' needs {flag} ({self.description or 'the folder of its files'})")

    @property
    def fixed_num_classes(self) -> int | None:
        """K when it does not depend on the folder, else None."""
        return self.num_classes if isinstance(self.num_classes, int) else None

    def count_classes(self, data_dir: str | Path | None = None) -> int:
        """K of this dataset (counted in ``data_dir`` for a generic folder)."""
        if self.fixed_num_classes is not None:
            return self.fixed_num_classes
        self.check_data_dir(data_dir)
        return int(resolve(self.num_classes)(data_dir))

    def names_of_classes(self, data_dir: str | Path | None = None) -> list[str] | None:
        """The class names in index order (None where unknown, or where they come from a folder not given)."""
        names = self.class_names
        if names is None or isinstance(names, tuple):
            return None if names is None else list(names)
        found = resolve(names)(data_dir)  # a function of the folder (None where it needs one not given)
        return None if found is None else [str(n) for n in found]

    def folders_of_classes(self) -> list[str] | None:
        """The names of the class folders in index order where they differ from the class names (ImageNet's
        WordNet ids), else None."""
        return None if self.class_folders is None else [str(n) for n in resolve(self.class_folders)()]

    def corruption_folder(self) -> CorruptionFolder | None:
        """The pre-computed corruption layout of this dataset (None: generated or its own function)."""
        if isinstance(self.corruptions, str) and self.corruptions in CORRUPTION_FOLDERS:
            return CORRUPTION_FOLDERS.get(self.corruptions)
        return None

    def corruption_function(self) -> Callable[..., Dataset] | None:
        """The dataset's own corruptions ``(dataset, indices, corruption, severity) -> Dataset`` (None: none)."""
        if callable(self.corruptions) or (isinstance(self.corruptions, str) and ":" in self.corruptions):
            return resolve(self.corruptions)
        return None

    def make_subset(self, subset: str, dataset: Dataset, ds_id: str) -> Dataset:
        """The named subset of ``dataset`` (one of :attr:`subsets`)."""
        if subset not in self.subsets:
            raise UserError(f"dataset '{ds_id}' ({self.name}) has no subset '{subset}': "
                            + (f"use one of {', '.join(self.subsets)}" if self.subsets else "drop 'subset'"))
        return resolve(self.subsets[subset])(dataset, ds_id)

    def create(self, split: str | None = None, data_dir: str | Path | None = None, **options: Any) -> Dataset:
        """The dataset's ``split`` (see :func:`~robustbench_labelaug.data.create_dataset` for ``options``)."""
        self.check_data_dir(data_dir)
        options.setdefault("input_size", self.input_size)
        if options["input_size"] is None:
            options["input_size"] = self.input_size
        return resolve(self.factory)(self.resolve_split(split), data_dir, **options)


DATASETS: Registry[DatasetSpec] = Registry("dataset", modules=DATASET_MODULES)


def register_dataset(name: str, *, num_classes: int | Callable[[Any], int] | str, mean: Sequence[float],
                     std: Sequence[float], input_size: int, splits: Mapping[str, Sequence[str]],
                     eval_split: str | None = None, needs_data_dir: bool = False,
                     class_names: Sequence[str] | Callable[[Any], Sequence[str]] | str | None = None,
                     class_folders: Callable[[], Sequence[str]] | str | None = None,
                     corruptions: str | Callable[..., Dataset] = GENERATED,
                     subsets: Mapping[str, Callable[..., Any] | str] | None = None,
                     data_keys: Sequence[str] = DATA_KEYS, in_memory: bool = False,
                     robustbench: RobustBenchFacts | None = None, description: str = "",
                     default_eps: Mapping[str, float] | None = None, preprocessing: str = NO_PREPROCESSING,
                     factory: Callable[..., Dataset] | str | None = None):
    """Register dataset ``name``: with ``factory`` (a function or a lazy ``"module:function"``) at once, else as
    a decorator on ``factory(split, data_dir, **options) -> Dataset``."""
    if name == TENSORS_DATASET:
        raise ValueError(f"dataset '{name}' names in-memory tensors (benchmark(dataset=(x, y))): register it under "
                         "another name")
    if isinstance(corruptions, str) and corruptions != GENERATED and ":" not in corruptions \
            and corruptions not in CORRUPTION_FOLDERS:
        raise ValueError(f"dataset '{name}': corruptions must be '{GENERATED}', one of "
                         f"{CORRUPTION_FOLDERS.names()}, a function or a 'module:function'")
    if not isinstance(corruptions, str) and not callable(corruptions):
        raise TypeError(f"dataset '{name}': corruptions must be '{GENERATED}', a layout name or a function")
    unknown = sorted(set(data_keys) - set(DATA_KEYS))
    if unknown:
        raise ValueError(f"dataset '{name}': unknown data_keys {unknown}: use some of {DATA_KEYS}")
    split_map = {str(k): tuple(v) for k, v in splits.items()}
    eval_split = eval_split or list(split_map)[-1]
    if eval_split not in split_map:
        raise ValueError(f"dataset '{name}': eval_split '{eval_split}' is not among its splits {list(split_map)}")
    eps_map = {ThreatModel(k): float(v) for k, v in (default_eps or {}).items()}  # a bad threat model: ValueError
    if any(not 0.0 < v <= 1.0 for v in eps_map.values()):
        raise ValueError(f"dataset '{name}': default_eps must be in (0, 1] ([0,1] pixel units), got {eps_map}")

    def decorate(fn: Callable[..., Dataset] | str) -> Callable[..., Dataset] | str:
        spec = DatasetSpec(
            name=name, factory=fn, num_classes=num_classes, mean=tuple(mean), std=tuple(std),
            input_size=int(input_size), splits=split_map, eval_split=eval_split, needs_data_dir=needs_data_dir,
            class_names=tuple(class_names) if isinstance(class_names, (list, tuple)) else class_names,
            class_folders=class_folders, corruptions=corruptions, subsets=dict(subsets or {}), data_keys=tuple(data_keys), in_memory=in_memory,
            robustbench=robustbench, description=description, default_eps=eps_map, preprocessing=preprocessing)
        held = DATASETS._entries.get(name)
        if held is not None and held.factory is not fn:
            raise ValueError(f"dataset '{name}' is registered twice")
        DATASETS.register(name, spec)
        return fn

    return decorate if factory is None else decorate(factory)


def default_eps(dataset: str, threat_model: str) -> float | None:
    """The eps of ``threat_model`` on a registered ``dataset`` (its entry's ``default_eps``); None where the
    dataset is not registered or declares none for that threat model."""
    return get_dataset_spec(dataset).eps_of(threat_model) if dataset in DATASETS else None


def preprocessing_of(dataset: str) -> str:
    """RobustBench's preprocessing name of a dataset's models (``none`` for an unregistered one)."""
    return get_dataset_spec(dataset).preprocessing if dataset in DATASETS else NO_PREPROCESSING


def robustbench_preprocessing(preprocessing: str | None) -> str | None:
    """A preprocessing name as RobustBench's ``PREPROCESSINGS`` keys it (``none``, as stored, is its None)."""
    return None if preprocessing in (None, NO_PREPROCESSING) else preprocessing


def list_datasets() -> list[str]:
    """The registered dataset names, in registration order."""
    return DATASETS.names()


def get_dataset_spec(name: str | None) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name`` (timm's empty name means ``folder``); :class:`UserError` if unknown."""
    return DATASETS.get(name or "folder")


def class_names(dataset: str | None, data_dir: str | Path | None = None,
                num_classes: int | None = None) -> list[str] | None:
    """The class names of a registered dataset in index order, None where unknown (an unregistered name, a folder
    not given, or names whose count differs from ``num_classes``). Imports no torch for a fixed list."""
    if not dataset or dataset not in DATASETS:
        return None
    names = get_dataset_spec(dataset).names_of_classes(data_dir)
    if names is None or (num_classes is not None and len(names) != int(num_classes)):
        return None
    return names


def names_for_folders(dataset: str, folders: Sequence[str], num_classes: int | None = None) -> list[str]:
    """The class names a model trained on the class folders ``folders`` records for ``dataset``: the registry's
    names where it declares them (from the folders' own names, or from the dataset's folder ids, e.g. ImageNet's
    WordNet ids), else the folders' names. A model whose folders are not the dataset's is refused in one line."""
    folders = [str(f) for f in folders]
    declared = class_names(dataset, None, num_classes if num_classes is not None else len(folders))
    if declared is None:
        return folders
    ids = get_dataset_spec(dataset).folders_of_classes()
    if folders == [str(n) for n in declared] or (ids is not None and folders == ids):
        return [str(n) for n in declared]
    shown = ", ".join(folders[:5]) + (f", ... ({len(folders)} in all)" if len(folders) > 5 else "")
    raise UserError(f"the model was trained on the class folders [{shown}], which are not dataset '{dataset}''s "
                    "classes in its order: pass the --dataset it was trained on")


# -- the built-in datasets -----------------------------------------------------------------------------------------

DEFAULT_DATASET = "digits"  # the embedded dataset: every signature's default dataset
ROBUSTBENCH_DEFAULT_DATASET = "cifar10"  # robustbench.utils.load_model's default dataset (a RobustBench source's)
_LINF = ThreatModel.LINF
_DATA = "robustbench_labelaug.data"
_CIFAR_SUBSET = f"{_DATA}.cifar:robustbench_cifar_subset_of"
_CIFAR_KEYS = ("data_dir", "split", "subset")

register_dataset(DEFAULT_DATASET, factory=f"{_DATA}.digits:create_digits", num_classes=len(DIGITS_CLASSES),
                 mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=32,
                 splits={"train": (), "test": ("val", "validation")}, eval_split="test", class_names=DIGITS_CLASSES,
                 data_keys=("split",), in_memory=True,
                 default_eps={_LINF: 0.2},  # the package's digits threat model (its zoo entries' eps)
                 description="embedded scikit-learn digits (1 437 train / 360 test, 32x32)")
register_dataset("folder", factory=f"{_DATA}.folder:create_folder", num_classes=f"{_DATA}.folder:count_folder_classes",
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=224, splits=FOLDER_SPLITS, eval_split="val",
                 needs_data_dir=True, class_names=f"{_DATA}.folder:folder_classes",
                 description="a folder with train/ and val/ class folders: <data_dir>/{train,val}/<class>/<image>")
register_dataset("imagenet", factory=f"{_DATA}.folder:create_imagenet", num_classes=IMAGENET_NUM_CLASSES,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=224, splits=FOLDER_SPLITS, eval_split="val",
                 needs_data_dir=True, class_names=f"{_DATA}.imagenet_labels:imagenet_class_names",
                 class_folders=f"{_DATA}.imagenet_labels:imagenet_wnids",
                 corruptions="imagenet_c",
                 subsets={"robustbench": f"{_DATA}.subsets:robustbench_imagenet_subset"},
                 robustbench=RobustBenchFacts(prefixed=True, standard_from_torchvision=True),
                 default_eps={_LINF: 4 / 255}, preprocessing="Res256Crop224",
                 description="a folder with train/ and val/ class folders, classes in ImageNet-1k order")
register_dataset(ROBUSTBENCH_DEFAULT_DATASET, factory=f"{_DATA}.cifar:create_cifar10", num_classes=10,
                 mean=(0.4914, 0.4822, 0.4465), std=(0.2471, 0.2435, 0.2616), input_size=32,
                 splits={"train": (), "test": ("val", "validation")}, eval_split="test", needs_data_dir=True,
                 class_names=CIFAR10_CLASSES, corruptions="cifar_c", subsets={"robustbench": _CIFAR_SUBSET},
                 data_keys=_CIFAR_KEYS, robustbench=RobustBenchFacts(), default_eps={_LINF: 8 / 255},
                 description="the folder holding cifar-10-batches-py/, torchvision's format")
register_dataset("cifar100", factory=f"{_DATA}.cifar:create_cifar100", num_classes=100,
                 mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762), input_size=32,
                 splits={"train": (), "test": ("val", "validation")}, eval_split="test", needs_data_dir=True,
                 class_names=None,  # read from its meta file by the dataset
                 corruptions="cifar_c", subsets={"robustbench": _CIFAR_SUBSET},
                 data_keys=_CIFAR_KEYS, robustbench=RobustBenchFacts(), default_eps={_LINF: 8 / 255},
                 description="the folder holding cifar-100-python/, torchvision's format")


__all__ = ["CIFAR10_CLASSES", "CORRUPTION_FOLDERS", "DATASETS", "DATASET_MODULES", "DEFAULT_DATASET", "DIGITS_CLASSES",
           "NO_PREPROCESSING", "ROBUSTBENCH_DEFAULT_DATASET", "TENSORS_DATASET", "CorruptionFolder", "DatasetSpec", "RobustBenchFacts",
           "class_names", "default_eps", "get_dataset_spec", "list_datasets", "preprocessing_of", "register_dataset",
           "robustbench_preprocessing"]
