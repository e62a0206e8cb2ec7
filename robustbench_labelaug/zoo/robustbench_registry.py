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
import sys
import warnings
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import torch

from ..compat import RB_MODELS_MODULE
from ..data.registry import get_dataset_spec
from ..errors import UserError
from .entries import ZooEntry, load_entries

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
    from .loading import build_model

    model = build_model(entry)
    facts = get_dataset_spec(entry.dataset).robustbench
    return model if facts is not None and facts.prefixed else FlatKWayClassifier(model.model, entry.num_classes)


class FlatKWayClassifier(torch.nn.Module):
    """The first K logits of an ImageClassifier, its ``normalize``/``net`` held directly (state-dict keys as in the
    exported checkpoint)."""

    def __init__(self, classifier: torch.nn.Module, num_classes: int) -> None:
        super().__init__()
        self.normalize, self.net = classifier.normalize, classifier.net
        self.num_classes, self.num_ops = num_classes, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))[:, : self.num_classes]


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


def register_after_import(module=None) -> None:
    """What the package's import hook (:func:`robustbench_labelaug.compat.install_import_hooks`) runs right after
    ``robustbench.model_zoo.models`` executes: the registration, never breaking RobustBench's import."""
    _register_safely()


def install_robustbench_hook() -> None:
    """Register now if RobustBench's zoo is already imported, else as soon as it is (the one import hook of
    :mod:`robustbench_labelaug.compat`)."""
    from ..compat import install_import_hooks

    install_import_hooks()
