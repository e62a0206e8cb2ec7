"""Register the zoo's ImageNet entries in RobustBench's own zoo, so that
``robustbench.utils.load_model("resnet50_adv_plus", dataset="imagenet", threat_model="Linf", model_dir=...)``
returns the same K-way classifier as :func:`robustbench_labelaug.load_model` and ``robustbench.eval.benchmark``
finds the entry's preprocessing.

Each entry becomes ``model_dicts[BenchmarkDataset.imagenet][ThreatModel.Linf][name] = {'model', 'gdrive_id',
'preprocessing'}``. ``'model'`` builds ``KWayClassifier(ImageClassifier(...))``: RobustBench strips ``model.``
from our checkpoint's keys (there is none) and prefixes ``model.`` again for ImageNet, which is exactly that
module's layout. Nothing is registered under ``<name>_imagenet_linf`` in timm (RobustBench would take its timm path
and ignore ``model_dir``).

Limits, by RobustBench's design: the checkpoint must already be at ``<model_dir>/imagenet/Linf/<name>.pt``
(``gdrive_id`` is a placeholder that raises a clear :class:`UserError` naming the fix before any Google-Drive
download starts), and RobustBench does not check sha256 (use our ``load_model`` for that). Digits entries cannot be
registered: RobustBench's ``BenchmarkDataset`` has no digits; ``robustbench_labelaug.load_model`` loads them.

Registration happens when ``robustbench.model_zoo.models`` is imported (an import hook installed by
``import robustbench_labelaug``; at once if robustbench is already imported), so importing this package stays cheap
and works without robustbench.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError

if TYPE_CHECKING:
    from .entries import ZooEntry

RB_MODELS_MODULE = "robustbench.model_zoo.models"
_registered: set[str] = set()
_warned = False


class MissingCheckpoint(str):
    """RobustBench's ``gdrive_id`` for a zoo entry: not None (its loader requires one), and formatting it, which
    RobustBench does first when the checkpoint is missing (``print(f'Downloading {fname_save} (gdrive_id=
    {gdrive_id}).')``, then the gdown call), raises a :class:`UserError` that names the file to create, with the
    ``model_dir`` the caller gave (read from the formatting frame's ``fname_save``/``model_path``)."""

    entry: ZooEntry

    def __new__(cls, entry: ZooEntry) -> MissingCheckpoint:
        obj = super().__new__(cls, f"robustbench_labelaug:{entry.name}")
        obj.entry = entry
        return obj

    def message(self, checkpoint: str | Path | None = None) -> str:
        """The error for a missing ``checkpoint`` (the path RobustBench looked at; None: not known)."""
        entry = self.entry
        if checkpoint is None:
            where, model_dir = f"<model_dir>/{entry.dataset}/{entry.threat_model}/{entry.checkpoint}", "<model_dir>"
        else:
            where, model_dir = str(checkpoint), str(Path(checkpoint).parents[2])
        how = f"download {entry.url} there" if entry.url else (
            f"train it with `{entry.recipe}` then run `{entry.export_command(model_dir)}`")
        return f"zoo model '{entry.name}' has no Google-Drive copy and no checkpoint at {where}: {how}"

    def __format__(self, spec: str) -> str:
        raise UserError(self.message(_checkpoint_path_of_caller()))


def _checkpoint_path_of_caller(depth: int = 4) -> Path | None:
    """The checkpoint path RobustBench is about to download to: ``fname_save`` (``download_gdrive_new``) or
    ``model_path`` (``load_model``) in one of the calling frames."""
    frame = sys._getframe(2)
    for _ in range(depth):
        if frame is None:
            break
        for name in ("fname_save", "model_path"):
            value = frame.f_locals.get(name)
            if isinstance(value, (str, Path)) and str(value).endswith(".pt"):
                return Path(value)
        frame = frame.f_back
    return None


def build_for_robustbench(entry: ZooEntry):
    """The module RobustBench loads the checkpoint into (random weights until then). RobustBench prefixes
    ``model.`` on ImageNet checkpoints only, so other datasets (CIFAR) get the K-way view with the checkpoint's own
    ``normalize.*``/``net.*`` keys at the top level."""
    from ..models.classifier import FlatKWayClassifier
    from .loading import build_model

    model = build_model(entry)
    return model if entry.dataset == "imagenet" else FlatKWayClassifier(model.model, entry.num_classes)


def robustbench_entry(entry: ZooEntry) -> dict[str, Any]:
    return {"model": functools.partial(build_for_robustbench, entry), "gdrive_id": MissingCheckpoint(entry),
            "preprocessing": entry.preprocessing}


def register_robustbench(model_dicts: MutableMapping | None = None) -> list[str]:
    """Add the entries RobustBench can hold (its datasets and threat models) to ``model_dicts`` (RobustBench's own
    by default); returns their names. Idempotent; an existing RobustBench model of the same name is left alone."""
    if model_dicts is None:
        if RB_MODELS_MODULE not in sys.modules:
            from ..compat import import_robustbench

            import_robustbench()
        model_dicts = sys.modules[RB_MODELS_MODULE].model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    datasets = {d.value: d for d in BenchmarkDataset}
    threats = {t.value: t for t in ThreatModel}
    names = []
    from .entries import load_entries

    for entry in load_entries().values():
        if entry.dataset not in datasets or entry.threat_model not in threats:
            continue  # e.g. digits: not a RobustBench dataset
        models = model_dicts.setdefault(datasets[entry.dataset], {}).setdefault(threats[entry.threat_model], {})
        existing = models.get(entry.name)
        if existing is not None and not isinstance(existing.get("gdrive_id"), MissingCheckpoint):
            warnings.warn(f"RobustBench already has a model '{entry.name}': the zoo entry is not registered there",
                          stacklevel=2)
            continue
        models[entry.name] = robustbench_entry(entry)
        names.append(entry.name)
    _registered.update(names)
    return names


def _register_safely() -> None:
    global _warned
    try:
        register_robustbench()
    except Exception as exc:  # noqa: BLE001 - never break robustbench's import; say it once
        if not _warned:
            _warned = True
            warnings.warn(f"robustbench_labelaug: zoo entries not registered in RobustBench ({exc})", stacklevel=2)


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Runs the registration right after ``robustbench.model_zoo.models`` executes."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != RB_MODELS_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module) -> None:
            exec_module(module)  # the module is in sys.modules already
            _register_safely()

        spec.loader.exec_module = exec_then_register
        return spec


def install_robustbench_hook() -> None:
    """Register now if RobustBench's zoo is already imported, else as soon as it is."""
    if RB_MODELS_MODULE in sys.modules:
        _register_safely()
    elif not any(isinstance(f, _RegisterOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())


def __getattr__(name: str):  # FlatKWayClassifier moved to models.classifier (torch is imported only when used)
    if name == "FlatKWayClassifier":
        from ..models.classifier import FlatKWayClassifier

        return FlatKWayClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
