"""The dataset registry, like timm's ``register_model``: every dataset name of the package comes from here.

A dataset is one factory function decorated with :func:`register_dataset`, which records what the rest of the
package needs to know about it (:class:`DatasetSpec`): K, the normalisation a model trained on it uses, the
default input size, its splits (with accepted synonyms), whether it needs ``data_dir``, its class names, how its
corruptions are found, named subsets, and which config keys the data depends on. ``rbla train --dataset``,
the evaluation configs' ``datasets`` block and the model zoo's ``dataset`` field all ask this registry.

Adding a dataset: write ``data/<name>.py`` with a decorated factory and add its module to
:data:`DATASET_MODULES` (one line); see CONTRIBUTING.md. ``factory(split, data_dir, **options)`` gets the
canonical split name, the folder (or None) and the options ``is_training``, ``input_size``, ``crop_pct``,
``interpolation``, ``class_names``; it returns a ``Dataset`` of ``(image in [0,1] CxHxW, label)``, ideally with
``targets`` (labels without loading images) and ``filename(i)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import UserError

# Modules whose import registers the built-in datasets (imported on the first registry lookup).
DATASET_MODULES: tuple[str, ...] = (
    "robustbench_labelaug.data.digits",
    "robustbench_labelaug.data.folder",
    "robustbench_labelaug.data.cifar",
)
CORRUPTION_SOURCES = ("generated", "folder", "cifar_c")  # cifar_c: RobustBench's <data_dir>/CIFAR-10-C/*.npy
DATA_KEYS = ("data_dir", "split", "input_size", "crop_pct", "interpolation", "subset")

_REGISTRY: dict[str, DatasetSpec] = {}
_loaded = False


@dataclass(frozen=True)
class DatasetSpec:
    """What the package knows about one dataset (see the module docstring).

    ``num_classes``: K, or a function of ``data_dir`` counting the classes of a folder. ``splits``: canonical
    split name -> accepted synonyms; ``eval_split`` is evaluated by default. ``class_names``: the classes in index
    order (a tuple, a function of ``data_dir``, or None: the sorted class folders). ``corruptions``: ``"generated"``
    (imagecorruptions, deterministic and cached), ``"folder"`` (an ImageNet-C folder given to the corruptions
    evaluator as ``data_dir``; generated without one), ``"cifar_c"`` (RobustBench's CIFAR-10-C/100-C npy layout
    under the corruptions evaluator's ``data_dir``; generated without one) or a function ``(dataset, indices, corruption, severity) ->
    Dataset``. ``subsets``: named subsets of :mod:`~robustbench_labelaug.data.subsets` it supports.
    ``data_keys``: the evaluation-config keys its data depends on (part of every result's fingerprint)."""

    name: str
    factory: Callable[..., Dataset]
    num_classes: int | Callable[[str | Path | None], int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int
    splits: Mapping[str, tuple[str, ...]]
    eval_split: str
    needs_data_dir: bool = False
    class_names: tuple[str, ...] | Callable[[str | Path | None], Sequence[str]] | None = None
    corruptions: str | Callable[..., Dataset] = "generated"
    subsets: tuple[str, ...] = ()
    data_keys: tuple[str, ...] = DATA_KEYS
    description: str = ""

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

    def count_classes(self, data_dir: str | Path | None = None) -> int:
        """K of this dataset (counted in ``data_dir`` for a generic folder)."""
        if callable(self.num_classes):
            self.check_data_dir(data_dir)
            return int(self.num_classes(data_dir))
        return int(self.num_classes)

    def names_of_classes(self, data_dir: str | Path | None = None) -> list[str] | None:
        names = self.class_names(data_dir) if callable(self.class_names) else self.class_names
        return None if names is None else list(names)

    def create(self, split: str | None = None, data_dir: str | Path | None = None, **options: Any) -> Dataset:
        """The dataset's ``split`` (see :func:`~robustbench_labelaug.data.create_dataset` for ``options``)."""
        self.check_data_dir(data_dir)
        options.setdefault("input_size", self.input_size)
        if options["input_size"] is None:
            options["input_size"] = self.input_size
        return self.factory(self.resolve_split(split), data_dir, **options)


def register_dataset(name: str, *, num_classes: int | Callable[[Any], int], mean: Sequence[float],
                     std: Sequence[float], input_size: int, splits: Mapping[str, Sequence[str]],
                     eval_split: str | None = None, needs_data_dir: bool = False,
                     class_names: Sequence[str] | Callable[[Any], Sequence[str]] | None = None,
                     corruptions: str | Callable[..., Dataset] = "generated", subsets: Sequence[str] = (),
                     data_keys: Sequence[str] = DATA_KEYS, description: str = ""):
    """Decorator registering ``factory(split, data_dir, **options) -> Dataset`` under ``name``."""
    if not isinstance(corruptions, str) and not callable(corruptions):
        raise TypeError(f"dataset '{name}': corruptions must be one of {CORRUPTION_SOURCES} or a callable")
    if isinstance(corruptions, str) and corruptions not in CORRUPTION_SOURCES:
        raise ValueError(f"dataset '{name}': corruptions must be one of {CORRUPTION_SOURCES} or a callable")
    unknown = sorted(set(data_keys) - set(DATA_KEYS))
    if unknown:
        raise ValueError(f"dataset '{name}': unknown data_keys {unknown}: use some of {DATA_KEYS}")
    split_map = {str(k): tuple(v) for k, v in splits.items()}
    eval_split = eval_split or list(split_map)[-1]
    if eval_split not in split_map:
        raise ValueError(f"dataset '{name}': eval_split '{eval_split}' is not among its splits {list(split_map)}")

    def decorate(factory: Callable[..., Dataset]) -> Callable[..., Dataset]:
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ValueError(f"dataset '{name}' is registered twice")
        _REGISTRY[name] = DatasetSpec(
            name=name, factory=factory, num_classes=num_classes, mean=tuple(mean), std=tuple(std),
            input_size=int(input_size), splits=split_map, eval_split=eval_split, needs_data_dir=needs_data_dir,
            class_names=tuple(class_names) if isinstance(class_names, (list, tuple)) else class_names,
            corruptions=corruptions, subsets=tuple(subsets), data_keys=tuple(data_keys), description=description)
        return factory

    return decorate


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in DATASET_MODULES:
            importlib.import_module(module)


def list_datasets() -> list[str]:
    """The registered dataset names, in registration order."""
    _load_builtin()
    return list(_REGISTRY)


def get_dataset_spec(name: str | None) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name`` (timm's empty name means ``folder``); :class:`UserError` if unknown."""
    _load_builtin()
    name = name or "folder"
    if name not in _REGISTRY:
        raise UserError(f"unknown dataset '{name}': use one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


__all__ = ["DATASET_MODULES", "DatasetSpec", "get_dataset_spec", "list_datasets", "register_dataset"]
