"""Register the zoo's ImageNet entries in RobustBench's own zoo, so that
``robustbench.utils.load_model("resnet50_adv_plus", dataset="imagenet", threat_model="Linf", model_dir=...)``
returns the same K-way classifier as :func:`robustbench_labelaug.load_model` and ``robustbench.eval.benchmark``
finds the entry's preprocessing.

Each entry becomes ``model_dicts[BenchmarkDataset.imagenet][ThreatModel.Linf][name] = {'model', 'gdrive_id',
'preprocessing'}``. ``'model'`` builds ``KWayClassifier(ImageClassifier(...))``: RobustBench strips ``model.``
from our checkpoint's keys (there is none) and prefixes ``model.`` again for ImageNet, which is exactly that
module's layout. Nothing is registered under ``<name>_imagenet_linf`` in timm (RobustBench would take its timm path
and ignore ``model_dir``).

Limits, by RobustBench's design: the checkpoint must already be at ``<model_dir>/<dataset>/<threat_model>/<name>.pt``
(RobustBench's documented layout) and RobustBench does not check sha256 (use our ``load_model`` for that). Digits
entries cannot be registered: RobustBench's ``BenchmarkDataset`` has no digits; ``robustbench_labelaug.load_model``
loads them.

A missing checkpoint is caught before RobustBench's loader runs: ``robustbench.utils.load_model`` (its public
function, also bound as ``robustbench.load_model`` and in ``robustbench.eval``) is wrapped by
:func:`checked_load_model`, which binds the call's arguments by name (``model_name``, ``model_dir``, ``dataset``,
``threat_model``, ``norm``: RobustBench's documented signature) and, for a zoo entry of this package whose file is
missing, raises a :class:`UserError` naming the file and how to make it, before any download could start. Nothing
private of RobustBench is read: no caller frame, no print format. ``gdrive_id`` holds a placeholder
(:class:`ZooCheckpointId`) only because RobustBench's loader refuses ``None``. ``tests/test_robustbench_interop.py``
fails with a message naming what changed the day ``load_model``'s parameters change.

Registration happens when ``robustbench.model_zoo.models`` is imported, the wrapper when ``robustbench.utils`` is
(the import hook of :mod:`robustbench_labelaug.compat`, installed by ``import robustbench_labelaug``; at once if
robustbench is already imported), so importing this package stays cheap and works without robustbench.
"""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..compat import RB_MODELS_MODULE, RB_UTILS_MODULE, import_robustbench, install_import_hooks
from ..data.registry import get_dataset_spec, robustbench_preprocessing
from ..errors import UserError
from .entries import load_entries

if TYPE_CHECKING:
    from .entries import ZooEntry

_registered: set[str] = set()
_warned = False


class ZooCheckpointId(str):
    """RobustBench's ``gdrive_id`` for a zoo entry of this package: a placeholder (its loader needs one that is not
    None; there is no Google-Drive copy). :meth:`message` is the error for a missing checkpoint."""

    entry: ZooEntry

    def __new__(cls, entry: ZooEntry) -> ZooCheckpointId:
        obj = super().__new__(cls, f"robustbench_labelaug:{entry.name}")
        obj.entry = entry
        return obj

    def message(self, checkpoint: str | Path | None = None) -> str:
        """The error for a missing ``checkpoint`` (the path RobustBench looks at; None: not known)."""
        entry = self.entry
        if checkpoint is None:
            where, model_dir = f"<model_dir>/{entry.dataset}/{entry.threat_model}/{entry.checkpoint}", "<model_dir>"
        else:
            where, model_dir = str(checkpoint), str(Path(checkpoint).parents[2])
        how = f"download {entry.url} there" if entry.url else (
            f"train it with `{entry.recipe}` then run `{entry.export_command(model_dir)}`")
        return f"zoo model '{entry.name}' has no Google-Drive copy and no checkpoint at {where}: {how}"



# -- the missing-checkpoint check, in front of RobustBench's public load_model -------------------------------------
LOAD_MODEL_PARAMETERS = ("model_name", "model_dir", "dataset", "threat_model", "norm")

RB_LOAD_MODEL_HOMES = ("robustbench", RB_UTILS_MODULE, "robustbench.eval")  # modules that bind load_model


def load_model_shape_problem(load_model: Any) -> str | None:
    """Why ``load_model`` (RobustBench's) cannot be wrapped by :func:`checked_load_model`, or None."""
    try:
        params = inspect.signature(load_model).parameters
    except (TypeError, ValueError):
        return "robustbench.utils.load_model has no inspectable signature"
    missing = [p for p in LOAD_MODEL_PARAMETERS if p not in params]
    if missing:
        return (f"robustbench.utils.load_model has no parameter {', '.join(missing)} (RobustBench changed it): "
                "the zoo's missing-checkpoint check needs updating in robustbench_labelaug/zoo/robustbench_registry.py")
    return None


def zoo_checkpoint_path(model_dir: str | Path, dataset: Any, threat_model: Any, norm: Any, name: str) -> Path:
    """Where RobustBench's ``load_model`` looks for ``name`` (``<model_dir>/<dataset>/<threat>/<name>.pt``; the
    ``_3d`` corruptions share the ``corruptions`` folder, ``norm`` overrides ``threat_model``)."""
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    threat = ThreatModel(norm) if norm is not None else ThreatModel(ThreatModel(threat_model).value.replace("_3d", ""))
    return Path(model_dir) / BenchmarkDataset(dataset).value / threat.value / f"{name}.pt"


def checked_load_model(real: Any) -> Any:
    """``real`` (RobustBench's ``load_model``) preceded by the check that a zoo entry's checkpoint exists."""
    if getattr(real, "__rbla_checked__", False):
        return real
    signature = inspect.signature(real)

    @functools.wraps(real)
    def load_model(*args: Any, **kwargs: Any):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        name = a["model_name"]
        if name in _registered:
            gdrive_id = _entry_gdrive_id(name, a["dataset"], a["threat_model"], a["norm"])
            if isinstance(gdrive_id, ZooCheckpointId):
                path = zoo_checkpoint_path(a["model_dir"], a["dataset"], a["threat_model"], a["norm"], name)
                if not path.is_file():
                    raise UserError(gdrive_id.message(path))
        return real(*args, **kwargs)

    load_model.__rbla_checked__ = True
    return load_model


def _entry_gdrive_id(name: str, dataset: Any, threat_model: Any, norm: Any) -> Any:
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    try:
        threat = ThreatModel(norm) if norm is not None else ThreatModel(
            ThreatModel(threat_model).value.replace("_3d", ""))
        models = sys.modules[RB_MODELS_MODULE].model_dicts[BenchmarkDataset(dataset)][threat]
    except (KeyError, ValueError):
        return None  # RobustBench itself says what is wrong
    return (models.get(name) or {}).get("gdrive_id")


def wrap_load_model() -> None:
    """Put :func:`checked_load_model` in place of ``load_model`` wherever robustbench has bound it so far."""
    utils = sys.modules[RB_UTILS_MODULE]
    problem = load_model_shape_problem(utils.load_model)
    if problem:
        raise RuntimeError(problem)
    wrapped = checked_load_model(utils.load_model)
    for home in RB_LOAD_MODEL_HOMES:
        module = sys.modules.get(home)
        if module is not None and getattr(module, "load_model", None) in (utils.load_model, getattr(wrapped,
                                                                                                    "__wrapped__", None)):
            module.load_model = wrapped


def build_for_robustbench(entry: ZooEntry):
    """The module RobustBench loads the checkpoint into (random weights until then). RobustBench prefixes
    ``model.`` on ImageNet checkpoints only, so other datasets (CIFAR) get the K-way view with the checkpoint's own
    ``normalize.*``/``net.*`` keys at the top level."""
    # deferred: torch (kept out of the CLI's start)
    from ..models.classifier import FlatKWayClassifier

    # deferred: torch (kept out of the CLI's start)
    from .loading import build_model

    model = build_model(entry)
    facts = get_dataset_spec(entry.dataset).robustbench
    return model if facts is not None and facts.prefixed else FlatKWayClassifier(model.model, entry.num_classes)


def robustbench_entry(entry: ZooEntry) -> dict[str, Any]:
    return {"model": functools.partial(build_for_robustbench, entry), "gdrive_id": ZooCheckpointId(entry),
            "preprocessing": robustbench_preprocessing(entry.preprocessing)}


def register_robustbench(model_dicts: MutableMapping | None = None) -> list[str]:
    """Add the entries RobustBench can hold (its datasets and threat models) to ``model_dicts`` (RobustBench's own
    by default); returns their names. Idempotent; an existing RobustBench model of the same name is left alone."""
    if model_dicts is None:
        if RB_MODELS_MODULE not in sys.modules:
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
        if existing is not None and not isinstance(existing.get("gdrive_id"), ZooCheckpointId):
            warnings.warn(f"RobustBench already has a model '{entry.name}': the zoo entry is not registered there",
                          stacklevel=2)
            continue
        models[entry.name] = robustbench_entry(entry)
        names.append(entry.name)
    _registered.update(names)
    return names


def _safely(action, what: str) -> None:
    global _warned
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - never break robustbench's import; say it once
        if not _warned:
            _warned = True
            warnings.warn(f"robustbench_labelaug: {what} ({exc})", stacklevel=2)


def _register_safely() -> None:
    _safely(register_robustbench, "zoo entries not registered in RobustBench")


def _wrap_safely() -> None:
    _safely(wrap_load_model, "RobustBench's load_model is not checked for missing zoo checkpoints")


def register_after_import(module=None) -> None:
    """What the package's import hook (:func:`robustbench_labelaug.compat.install_import_hooks`) runs right after
    ``robustbench.model_zoo.models`` executes: the registration, never breaking RobustBench's import."""
    _register_safely()


def wrap_after_import(module=None) -> None:
    """What the package's import hook runs right after ``robustbench.utils`` executes (before
    ``robustbench/__init__`` and ``robustbench.eval`` bind its ``load_model``): the missing-checkpoint check."""
    _wrap_safely()


def install_robustbench_hook() -> None:
    """Register now if RobustBench's zoo is already imported, else as soon as it is, and likewise check
    ``load_model`` (the one import hook of :mod:`robustbench_labelaug.compat`)."""
    install_import_hooks()


def __getattr__(name: str):  # FlatKWayClassifier moved to models.classifier (torch is imported only when used)
    if name == "FlatKWayClassifier":
        # deferred: torch (kept out of the CLI's start)
        from ..models.classifier import FlatKWayClassifier

        return FlatKWayClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
