"""Every zoo entry is a timm model of its own name: after ``import robustbench_labelaug`` (once timm is imported),
``timm.create_model("my_advplus")`` builds the entry, and ``timm.create_model("my_advplus", pretrained=True,
model_dir="./models")`` loads its checkpoint.

The model is the entry's K-way classifier (its architecture with the K+M head behind the entry's normalisation,
the first K logits, taking [0,1] images): random weights by default; ``pretrained=True`` is
:func:`~robustbench_labelaug.zoo.load_model` (the checkpoint at ``<model_dir>/<dataset>/<threat_model>/<name>.pt``,
strict, weights-only, sha256-checked). Its ``pretrained_cfg`` (what ``timm.data.resolve_data_config`` reads) says
so: mean 0, std 1 (the normalisation is inside the model), the dataset's input size, K classes.

Registered for the packaged entries and the user zoo's (``./model_zoo``, ``RBLA_ZOO``) when timm is imported, and
again after ``rbla zoo export`` writes a user entry. A name timm already has for a model of its own is left alone
(one warning). RobustBench's ``<name>_<dataset>_<threat>`` timm names are not used (RobustBench would take that path
and ignore its ``model_dir``; see :mod:`.robustbench_registry`)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.registry import class_names, get_dataset_spec
from ..errors import UserError
from .entries import load_entries, packaged_entries

if TYPE_CHECKING:  # pragma: no cover
    from .entries import ZooEntry

default_cfgs: dict[str, dict[str, Any]] = {}  # timm's register_model reads each entry's pretrained_cfg here
_ours: set[str] = set()  # the names this module registered (re-registering them is an update, not a clash)
TIMM_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")  # what timm.create_model passes along


def pretrained_cfg(entry: ZooEntry) -> dict[str, Any]:
    """The entry's timm ``pretrained_cfg``: [0,1] inputs (mean 0, std 1: the normalisation is inside), the
    dataset's input size and crop, K classes; no weights of timm's (they come from the zoo's checkpoint)."""
    size = get_dataset_spec(entry.dataset).input_size
    names = class_names(entry.dataset, num_classes=entry.num_classes)
    return {"url": "", "num_classes": entry.num_classes, "input_size": (3, size, size), "mean": (0.0, 0.0, 0.0),
            **({"label_names": tuple(names)} if names else {}),
            "std": (1.0, 1.0, 1.0), "crop_pct": 0.875 if size >= 224 else 1.0, "interpolation": "bilinear",
            "architecture": entry.name, "classifier": "", "license": "see the zoo entry",
            "notes": (f"robustbench_labelaug zoo entry '{entry.name}' ({entry.training}, {entry.architecture}): "
                      "the K-way classifier, normalisation inside; pretrained=True loads the zoo checkpoint",)}


def _entrypoint(entry: ZooEntry):
    def create(pretrained: bool = False, model_dir: str | Path = "./models", **kwargs: Any):
        for key in TIMM_KWARGS:
            kwargs.pop(key, None)
        k = kwargs.pop("num_classes", None)
        if k is not None and int(k) != entry.num_classes:
            raise UserError(f"zoo model '{entry.name}' has K={entry.num_classes} classes, not num_classes={k}: leave "
                            f"num_classes out, or create its architecture: timm.create_model('{entry.architecture}', "
                            f"num_classes={k})")
        if kwargs:
            raise UserError(f"zoo model '{entry.name}' takes pretrained and model_dir only, got "
                            f"{', '.join(sorted(kwargs))}: create its architecture '{entry.architecture}' for those")
        # deferred: torch (kept out of the CLI's start)
        from .loading import build_model, load_model  # torch: loaded when a model is created

        if pretrained:
            return load_model(entry.name, model_dir=model_dir)
        return build_model(entry)

    create.__name__ = create.__qualname__ = entry.name
    create.__module__ = __name__
    create.__doc__ = f"zoo model '{entry.name}' ({entry.training}, {entry.architecture}, K={entry.num_classes})"
    return create


def register_timm_names(entries: dict[str, ZooEntry] | None = None) -> list[str]:
    """Register every zoo entry (default: :func:`~.entries.load_entries`) with timm under its name; returns the
    names registered. Idempotent (an entry changed by a new export is registered again)."""
    # timm imported here, not at the top: this module is what timm's own import hook runs (a top-level import
    # would re-enter that hook while this module is half initialised)
    import timm
    from timm.models import register_model

    entries = load_entries() if entries is None else entries
    names = []
    clashes = []
    for name, entry in entries.items():
        if name not in _ours and timm.is_model(name):
            clashes.append(name)
            continue
        default_cfgs[name] = pretrained_cfg(entry)
        create = _entrypoint(entry)
        setattr(sys.modules[__name__], name, create)  # timm's register_model lists it in this module's __all__
        with warnings.catch_warnings():  # re-registering our own name: timm warns about "overwriting"
            warnings.simplefilter("ignore", UserWarning)
            register_model(create)
        _ours.add(name)
        names.append(name)
    module = sys.modules[__name__]
    module.__all__ = list(dict.fromkeys(module.__all__))
    if clashes:
        warnings.warn(f"zoo entries {', '.join(clashes)} share a name with timm's own models: not registered with "
                      "timm under it (load them with robustbench_labelaug.load_model)", stacklevel=2)
    return names


def register_after_timm_import(module=None) -> None:
    """The import hook's action once timm is imported: register the zoo's names, never breaking timm's import."""
    try:
        register_timm_names()
    except Exception as exc:  # noqa: BLE001 - a broken user zoo must not break `import timm`; say it once
        warnings.warn(f"robustbench_labelaug: user zoo entries not registered with timm ({exc})", stacklevel=2)
        try:
            register_timm_names(packaged_entries())  # the packaged ones at least
        except Exception:  # noqa: BLE001
            pass


def refresh_if_timm_imported() -> None:
    """After a user entry was written: register it too where timm is already imported."""
    if "timm" in sys.modules:
        register_after_timm_import()


__all__ = ["default_cfgs", "pretrained_cfg", "refresh_if_timm_imported", "register_after_timm_import",
           "register_timm_names"]
