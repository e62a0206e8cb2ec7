"""Model sources for evaluation configs: any RobustBench model (``robustbench: <name>``) or any timm model
(``timm: <name>``), resolved without loading (metadata, weights files, fingerprint) and then loaded.

- :func:`robustbench_source` checks, before RobustBench is asked for anything, that ``name`` is in RobustBench's
  zoo for ``dataset``/``threat_model`` (else the closest names: RobustBench itself raises a bare ``KeyError``) and
  that its checkpoint is at ``<model_dir>/<dataset>/<threat_model>/<name>.pt`` (RobustBench's layout; ensembles:
  ``<name>.pt_m<i>.pt``). A missing file is one line naming that path and where to get it: RobustBench would start
  a Google-Drive download, which fails offline with its own network error. ``Standard_R50`` (ImageNet) has no
  checkpoint: its weights are torchvision's, looked for in torch's hub cache.
  :func:`load_source` then calls ``robustbench.utils.load_model(name, model_dir, dataset, threat_model)``.
- :func:`timm_source`: ``timm.create_model(name, num_classes=K)`` plus an optional local ``pretrained_file``
  (compute nodes are often offline, so nothing is downloaded).

K comes from RobustBench's dataset (10 / 100 / 1000), the preprocessing (input size, crop) from the entry's
``preprocessing`` (RobustBench's ``PREPROCESSINGS``: none for CIFAR = 32x32 ToTensor, ``Res256Crop224``, ...).
RobustBench models take [0,1] inputs and normalise inside, if at all (the ImageNet ones through an
``ImageNormalizer``, some CIFAR ones with ``mu``/``sigma`` buffers, most CIFAR ones not at all): the loaded model
reports what it found as ``normalization``. The fingerprint is the sha256 of the weights file(s), so a result
cache never mixes two checkpoints. RobustBench's reported clean / AutoAttack accuracies are not in the installed
package (its ``model_info/`` folder is not in the wheel): configs carry them in ``reported``;
:func:`robustbench_reported` turns RobustBench's accuracies into the errors the leaderboard shows.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..data.registry import ROBUSTBENCH_DEFAULT_DATASET, get_dataset_spec
from ..errors import UserError
from ..fileio import file_sha256
from ..registry import Registry
from ..results import keys
from ..results.vocab import DEFAULT_THREAT_MODEL, model_folder
from ..safeload import check_inflated_size, load_torch, state_bytes

RB_LEADERBOARD_URL = "https://robustbench.github.io/#div_{dataset}_{threat_model}_heading"
GDRIVE_URL = "https://drive.google.com/uc?id={}"
# RobustBench's preprocessing names -> (input size, crop_pct, interpolation) in create_dataset's terms.
RB_PREPROCESSING = {
    None: {"input_size": 32, "crop_pct": 1.0, "interpolation": "bilinear"},
    "Res256Crop224": {"input_size": 224, "crop_pct": 0.875, "interpolation": "bilinear"},
    "BicubicRes256Crop224": {"input_size": 224, "crop_pct": 0.875, "interpolation": "bicubic"},
    "Res224": {"input_size": 224, "crop_pct": 1.0, "interpolation": "bilinear"},  # RobustBench resizes to 224x224
    "Crop288": {"input_size": 288, "crop_pct": None, "interpolation": None},  # centre crop 288, no resize
}


@dataclass
class ModelSource:
    """A resolved model: what to load, what it is, and what identifies its weights."""

    kind: str                              # "robustbench" | "timm"
    name: str
    dataset: str
    threat_model: str
    num_classes: int
    weights: list[Path]                    # the weights file(s); empty: random init (timm without a file)
    preprocessing: str | None = None       # RobustBench's name (None: ToTensor only)
    transform: Any = None                  # RobustBench's eval transform for this model (torchvision), if known
    input: dict[str, Any] = field(default_factory=dict)   # input_size, crop_pct, interpolation
    reported: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> dict[str, Any]:
        """The sha256 of every weights file (what a result cache is keyed by); for ``python:`` also the code's."""
        sums = [file_sha256(p) for p in self.weights]
        out = {self.kind: self.name, "dataset": self.dataset, "threat_model": self.threat_model,
               "sha256": sums[0] if len(sums) == 1 else sums or None}
        if self.kind == "python":
            out["code_sha256"] = self.extra.get("code_sha256")
        return out

    def meta(self) -> dict[str, Any]:
        """Metadata for model_info (architecture, K, M = 0, ...)."""
        return {"dataset": self.dataset, "architecture": self.extra.get("architecture", self.name),
                "training": None, "num_classes": self.num_classes, "num_ops": int(self.extra.get("num_ops") or 0),
                "delta": None, "eps": None,
                "threat_model": self.threat_model, "preprocessing": self.preprocessing,
                "source": f"{self.kind}: {self.name}", "checkpoint": str(self.weights[0]) if self.weights else None}


# ----------------------------------------------------------------------------------------------------------------
# RobustBench
# ----------------------------------------------------------------------------------------------------------------


def _rb():
    from ..compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    return model_dicts, BenchmarkDataset, ThreatModel


def robustbench_models(dataset: str, threat_model: str) -> list[str]:
    """The names RobustBench's zoo has for ``dataset`` / ``threat_model``."""
    model_dicts, datasets, threats = _rb()
    return list(model_dicts[datasets(dataset)].get(threats(threat_model), {}))


def _check_names(name: str, dataset: str, threat_model: str) -> dict[str, Any]:
    model_dicts, datasets, threats = _rb()
    if dataset not in {d.value for d in datasets}:
        raise UserError(f"RobustBench has no dataset '{dataset}': use one of {', '.join(d.value for d in datasets)}")
    if threat_model not in {t.value for t in threats}:
        raise UserError(f"RobustBench has no threat model '{threat_model}': use one of "
                        f"{', '.join(t.value for t in threats)}")
    tm = model_folder(threat_model)  # RobustBench keeps the 3DCC models under 'corruptions'
    models = model_dicts[datasets(dataset)].get(threats(tm), {})
    if name not in models:
        close = difflib.get_close_matches(name, list(models), n=5, cutoff=0.5)
        hint = f"closest: {', '.join(close)}" if close else f"{len(models)} names, e.g. {', '.join(list(models)[:3])}"
        raise UserError(f"RobustBench has no {dataset}/{threat_model} model '{name}' ({hint}); note that RobustBench "
                        "itself does no such check (a bare KeyError): fix the name")
    return models[name]


def _robustbench_facts(dataset: str):
    """How RobustBench treats ``dataset`` (the dataset registry's :class:`RobustBenchFacts`)."""
    from ..data.registry import DATASETS, RobustBenchFacts

    spec = DATASETS.get(dataset) if dataset in DATASETS else None
    return spec.robustbench if spec is not None and spec.robustbench is not None else RobustBenchFacts()


def _torchvision_weights(name: str) -> tuple[Path, str]:
    """Where torchvision keeps the weights RobustBench's ImageNet ``Standard`` models download, and their URL."""
    import torch
    from torchvision.models import ResNet50_Weights

    if name != "Standard_R50":
        raise UserError(f"RobustBench model '{name}' builds torchvision's pretrained weights in a way this plugin "
                        "does not know: use Standard_R50 or a model with a checkpoint")
    url = ResNet50_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def robustbench_source(name: str, dataset: str = ROBUSTBENCH_DEFAULT_DATASET, threat_model: str = DEFAULT_THREAT_MODEL,
                       model_dir: str | Path = "./models", reported: dict[str, Any] | None = None) -> ModelSource:
    """Resolve a RobustBench model without loading it: :class:`UserError` for an unknown name or a missing
    checkpoint (naming the exact path and where to get the file), before RobustBench could start a download."""
    entry = _check_names(name, dataset, threat_model)
    tm = model_folder(threat_model)
    import timm

    timm_name = f"{name.lower().replace('-', '_')}_{dataset}_{tm.lower()}"
    if timm.is_model(timm_name):  # RobustBench takes timm's path: weights from timm's pretrained config
        raise UserError(f"RobustBench model '{name}' loads through timm ('{timm_name}', pretrained from the Hugging "
                        f"Face hub): use `timm: {timm_name}` with a local pretrained_file instead")
    folder = Path(model_dir).expanduser() / dataset / tm
    page = RB_LEADERBOARD_URL.format(dataset=dataset, threat_model=threat_model)
    gdrive = entry.get("gdrive_id")
    facts = _robustbench_facts(dataset)
    if facts.standard_from_torchvision and "Standard" in name:
        path, url = _torchvision_weights(name)
        if not path.is_file():
            raise UserError(f"RobustBench model '{name}' uses torchvision's pretrained weights, not found at {path}: "
                            f"download {url} to that path (torch hub cache, $TORCH_HOME) on a machine with internet")
        weights = [path]
    elif isinstance(gdrive, list):  # an ensemble: one file per member
        weights = [folder / f"{name}.pt_m{i}.pt" for i in range(len(gdrive))]
    else:
        weights = [folder / f"{name}.pt"]
    missing = [p for p in weights if not p.is_file()]
    if missing:
        if hasattr(gdrive, "message"):  # a zoo entry of this package registered in RobustBench
            raise UserError(gdrive.message(missing[0]))
        gid = gdrive[0] if isinstance(gdrive, list) else gdrive
        where = f"Google Drive {GDRIVE_URL.format(gid)}" if gid else "the model's authors"
        raise UserError(f"no checkpoint for RobustBench model '{name}' at {missing[0].resolve()}: copy the file "
                        f"there (from {where}; model page: {page}), or set runtime.model_dir")
    prep = entry.get("preprocessing")
    if prep is not None and not isinstance(prep, str):
        prep = getattr(prep, "__name__", "custom")
    from robustbench.data import PREPROCESSINGS

    return ModelSource(
        kind="robustbench", name=name, dataset=dataset, threat_model=threat_model,
        num_classes=get_dataset_spec(dataset).count_classes(), weights=weights, preprocessing=prep,
        transform=PREPROCESSINGS.get(prep) if isinstance(prep, str) or prep is None else entry.get("preprocessing"),
        input=dict(RB_PREPROCESSING.get(prep, {})), reported=robustbench_reported(reported),
        extra={"page": page, "model_dir": str(Path(model_dir).expanduser())})


def normalization_of(model: nn.Module) -> dict[str, Any] | None:
    """The input normalisation found inside a RobustBench model (an ``ImageNormalizer`` or ``mu``/``sigma``
    buffers), as ``{mean, std}``; None when the model takes [0,1] inputs as they are."""
    for module in model.modules():
        buffers = dict(module.named_buffers(recurse=False))
        for m_key, s_key in (("mean", "std"), ("mu", "sigma")):
            if m_key in buffers and s_key in buffers:
                return {"mean": [round(float(v), 6) for v in buffers[m_key].flatten()],
                        "std": [round(float(v), 6) for v in buffers[s_key].flatten()]}
    return None


def _load_robustbench(source: ModelSource) -> nn.Module:
    from robustbench.utils import load_model as rb_load_model

    for path in source.weights:  # RobustBench's torch.load: bound what its files may inflate to first
        if Path(path).is_file():
            check_inflated_size(path)
    try:
        model = rb_load_model(source.name, model_dir=source.extra["model_dir"], dataset=source.dataset,
                              threat_model=source.threat_model)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.load / load_state_dict fail in many ways
        text = str(exc)
        if isinstance(exc, RuntimeError) and "state_dict" in text:  # size mismatch, missing/unexpected keys
            first = next((line.strip() for line in text.splitlines()[1:] if line.strip()), text[:200])
            raise UserError(f"checkpoint {source.weights[0]} does not fit RobustBench's architecture for "
                            f"'{source.name}' ({first}): it holds another model's weights; replace it") from None
        raise UserError(f"checkpoint {source.weights[0]} cannot be read by RobustBench ({type(exc).__name__}: "
                        f"{text.splitlines()[0][:150] if text else ''}): it is damaged or not a weights file; "
                        "download it again") from None
    if len(source.weights) == 1 and source.weights[0].parent.name == model_folder(source.threat_model):
        _check_complete(model, source.weights[0])
    return model


NORMALIZATION_BUFFERS = ("mu", "sigma", "mean", "std")


def _check_complete(model: nn.Module, path: Path) -> None:
    """RobustBench falls back to ``strict=False`` for some models (all ImageNet ones) when the error message names
    missing normalisation buffers, which also lets a checkpoint lacking most weights load silently. Refuse one that
    does not cover every weight of the model (normalisation buffers aside), with RobustBench's own key renaming."""
    from robustbench.utils import add_substr_to_state_dict, rm_substr_from_state_dict

    state = load_torch(path, mmap=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    elif isinstance(state, dict) and isinstance(state.get("last"), dict):
        state = state["last"]
    keys = rm_substr_from_state_dict(rm_substr_from_state_dict(state, "module."), "model.")
    wanted = {k for k in model.state_dict() if k.rsplit(".", 1)[-1] not in NORMALIZATION_BUFFERS}
    missing = min((wanted - set(variant) for variant in (keys, add_substr_to_state_dict(keys, "model."))), key=len)
    if missing:
        raise UserError(f"checkpoint {path} lacks {len(missing)} of the {len(wanted)} weights of RobustBench's "
                        f"architecture (e.g. {sorted(missing)[0]}), which RobustBench would load non-strictly: it is "
                        "not this model's checkpoint; replace it")


# ----------------------------------------------------------------------------------------------------------------
# timm
# ----------------------------------------------------------------------------------------------------------------


def timm_source(name: str, num_classes: int, dataset: str, pretrained_file: str | Path | None = None,
                threat_model: str = DEFAULT_THREAT_MODEL, reported: dict[str, Any] | None = None) -> ModelSource:
    """Resolve a timm model with K = ``num_classes`` outputs and an optional local checkpoint."""
    import timm

    from ..models import cifar  # noqa: F401  (registers the CIFAR architectures)

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5)
        raise UserError(f"timm has no model '{name}'" + (f" (closest: {', '.join(close)})" if close else "")
                        + ": use a name from timm.list_models()")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise UserError(f"timm model '{name}' needs num_classes (K, a positive integer), got {num_classes!r}")
    weights = []
    if pretrained_file is not None:
        path = Path(pretrained_file).expanduser()
        if not path.is_file():
            raise UserError(f"pretrained_file {path} of timm model '{name}' does not exist: copy the checkpoint "
                            "there (nothing is downloaded)")
        weights = [path]
    cfg = timm.models.get_pretrained_cfg(name)
    size = getattr(cfg, "input_size", None) or (3, 224, 224)
    return ModelSource(kind="timm", name=name, dataset=dataset, threat_model=threat_model, num_classes=num_classes,
                       weights=weights, input={"input_size": size[-1], "crop_pct": getattr(cfg, "crop_pct", 0.875),
                                               "interpolation": getattr(cfg, "interpolation", "bilinear")},
                       reported=robustbench_reported(reported),
                       extra={"mean": getattr(cfg, "mean", None), "std": getattr(cfg, "std", None)})


def _load_timm(source: ModelSource) -> nn.Module:
    import timm

    from ..models import ImageClassifier

    net = timm.create_model(source.name, pretrained=False, num_classes=source.num_classes)
    if source.weights:
        check_inflated_size(source.weights[0], "pretrained_file", state_bytes(net))
        try:
            timm.models.load_checkpoint(net, str(source.weights[0]), strict=True, weights_only=True)
        except RuntimeError as exc:
            first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc)[:200])
            raise UserError(f"pretrained_file {source.weights[0]} does not fit timm's '{source.name}' with "
                            f"num_classes={source.num_classes} ({first}): check the file and num_classes") from None
        except Exception as exc:  # noqa: BLE001 - unreadable / pickled payload
            raise UserError(f"pretrained_file {source.weights[0]} cannot be read as weights ({type(exc).__name__}): "
                            "use a state_dict checkpoint") from None
    mean = source.extra.get("mean") or (0.0, 0.0, 0.0)
    std = source.extra.get("std") or (1.0, 1.0, 1.0)
    return ImageClassifier(net, source.num_classes, 0, mean, std)


# ----------------------------------------------------------------------------------------------------------------
# A user's own code: python: path/to/file.py:factory or module:callable (+ checkpoint: its state dict)
# ----------------------------------------------------------------------------------------------------------------


def split_python_ref(ref: str) -> tuple[str, str, bool]:
    """``(file or module, callable name, is_file)`` of ``path/to/file.py:factory`` or ``package.module:callable``;
    :class:`UserError` for anything else."""
    text = str(ref).strip()
    target, sep, attr = text.rpartition(":")
    if not sep or not target or not attr.isidentifier():
        raise UserError(f"python: {text!r} is not a reference: use path/to/file.py:factory or module:callable (the "
                        "callable returns the nn.Module)")
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    if not is_file and not all(part.isidentifier() for part in target.split(".")):
        raise UserError(f"python: {target!r} is neither a .py file nor a module name: use path/to/file.py:factory "
                        "or module:callable")
    return target, attr, is_file


def python_file(target: str, base_dir: str | Path | None = None) -> Path:
    """The ``.py`` file of a ``python:`` reference: a relative path is relative to ``base_dir`` (the config's
    folder, so a config and its code move together), else to the working directory."""
    code = Path(target).expanduser()
    return code if code.is_absolute() or base_dir is None else Path(base_dir) / code


def python_source(ref: str, num_classes: int, dataset: str, checkpoint: str | Path | None = None,
                  threat_model: str = DEFAULT_THREAT_MODEL, num_ops: int | None = None,
                  reported: dict[str, Any] | None = None, base_dir: str | Path | None = None) -> ModelSource:
    """Resolve a user's model factory without calling it: the file (or module) and the checkpoint must exist.
    A relative ``.py`` path is found from ``base_dir`` (an evaluation config's folder), else the working
    directory. The file is code: calling the factory runs it, as running a Python script would."""
    import importlib.util

    target, attr, is_file = split_python_ref(ref)
    code: Path | None = None
    if is_file:
        code = python_file(target, base_dir)
        if not code.is_file():
            where = "the config's folder" if base_dir is not None else "the working directory"
            raise UserError(f"python: file {code} does not exist: give the path of the .py file that defines "
                            f"{attr}() (relative to {where})")
    else:
        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError) as exc:
            spec = None
            why = f" ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})"
        else:
            why = ""
        if spec is None:
            raise UserError(f"python: module '{target}' cannot be found{why}: install it, or add its folder to "
                            "PYTHONPATH, or use path/to/file.py:factory")
        code = Path(spec.origin) if spec.origin and Path(spec.origin).is_file() else None
    weights = []
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise UserError(f"checkpoint {path} of python model '{ref}' does not exist: give the path of its state "
                            "dict (.pt/.pth)")
        weights = [path]
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise UserError(f"python model '{ref}' needs num_classes (K) or a dataset with a known K, got "
                        f"{num_classes!r}")
    return ModelSource(kind="python", name=str(ref), dataset=dataset, threat_model=threat_model,
                       num_classes=num_classes, weights=weights, reported=robustbench_reported(reported),
                       extra={"code": None if code is None else str(code), "num_ops": int(num_ops or 0),
                              "code_sha256": None if code is None else file_sha256(code)})


class FactoryExit(BaseException):
    """``os._exit`` called by a user's code while it is imported or builds the model (see :func:`no_hard_exit`)."""


@contextlib.contextmanager
def no_hard_exit():
    """While a user's ``python:`` code runs: ``os._exit`` raises :class:`FactoryExit` instead of ending the process
    on the spot, so a factory that aborts (``sys.exit``, ``os._exit`` or an exception) becomes one line and the
    run's lock and temp files are cleaned up as for any error."""
    real = os._exit

    def refuse(code: int = 0) -> None:
        raise FactoryExit(f"os._exit({code})")

    os._exit = refuse
    try:
        yield
    finally:
        os._exit = real


def _import_callable(ref: str, code: str | Path | None = None):
    import importlib
    import importlib.util
    import sys

    target, attr, is_file = split_python_ref(ref)
    if is_file:
        path = Path(code if code is not None else target).expanduser().resolve()
        name = f"rbla_user_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise UserError(f"python: {path} cannot be loaded as a Python file: check the path")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        where = str(path)
    else:
        module, where = None, target
    try:
        with no_hard_exit():
            if module is None:
                module = importlib.import_module(target)
            else:
                spec.loader.exec_module(module)
    except UserError:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's code fails in its own ways
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise UserError(f"python: importing {where} failed ({type(exc).__name__}: "
                        f"{(str(exc).splitlines() or [''])[0][:150]}): fix that file") from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        what = "has no" if fn is None else "has a non-callable"
        raise UserError(f"python: {where} {what} '{attr}' (its functions and classes: {', '.join(found) or 'none'}): "
                        "name the callable that returns the model")
    return fn


def unwrap_state_dict(state: Any, path: Path) -> dict[str, Any]:
    """The weights of a checkpoint: a plain state dict, or RobustBench's / a training script's layout (under
    ``state_dict``, ``model`` or ``last``)."""
    import torch

    for key in ("state_dict", "model", "last", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"checkpoint {path} holds no state dict (a mapping of tensor names to tensors, possibly "
                        "under 'state_dict'): save it with torch.save(model.state_dict(), path)")
    return state


def fit_state_dict(model: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with a ``module.`` prefix (DataParallel/DDP) removed and RobustBench's ``model.`` prefix added or
    removed where that makes its keys those of ``model``."""
    wanted = set(model.state_dict())

    def strip(d: dict[str, Any], prefix: str) -> dict[str, Any]:
        return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in d.items()}

    candidates = [state, strip(state, "module.")]
    candidates += [strip(c, "model.") for c in candidates] + [{f"model.{k}": v for k, v in c.items()}
                                                             for c in candidates]
    return max(candidates, key=lambda c: len(wanted & set(c)) - len(set(c) - wanted))


def _load_python(source: ModelSource) -> nn.Module:

    from ..models.classifier import KWayClassifier

    fn = _import_callable(source.name, source.extra.get("code"))
    try:
        with no_hard_exit():
            model = fn()
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, FactoryExit):
            raise UserError(f"python: {source.name}() failed ({exc} would have ended the process): it must build "
                            "and return the model with no arguments") from None
        raise UserError(f"python: {source.name}() failed ({type(exc).__name__}: "
                        f"{(str(exc).splitlines() or [''])[0][:150]}): it must build the model with no arguments") \
            from None
    if not isinstance(model, nn.Module):
        raise UserError(f"python: {source.name}() returned a {type(model).__name__}, not a torch.nn.Module: return "
                        "the model")
    if source.weights:
        path = source.weights[0]
        state = load_torch(path, expected_bytes=state_bytes(model),
                           fix="use a file saved with torch.save(model.state_dict(), path)")
        fitted = fit_state_dict(model, unwrap_state_dict(state, path))
        wanted = set(model.state_dict())
        missing, unexpected = sorted(wanted - set(fitted)), sorted(set(fitted) - wanted)
        if missing or unexpected:
            raise UserError(f"checkpoint {path} does not fit {source.name}() ({len(missing)} missing keys, e.g. "
                            f"{(missing or ['-'])[0]}; {len(unexpected)} unexpected, e.g. {(unexpected or ['-'])[0]}, "
                            "after removing 'module.' and matching RobustBench's 'model.'): pass the checkpoint of "
                            "this architecture")
        try:
            model.load_state_dict(fitted, strict=True)
        except RuntimeError as exc:
            msg = " ".join(str(exc).split())
            raise UserError(f"checkpoint {path} does not fit {source.name}() ({msg[:200]}): pass the checkpoint "
                            "of this architecture") from None
    model.eval()
    num_ops = int(source.extra.get("num_ops") or 0)
    return KWayClassifier(model, source.num_classes).eval() if num_ops else model


# ----------------------------------------------------------------------------------------------------------------
# The registry of source kinds
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceKind:
    """One kind of model source: the config key naming it, ``resolve(spec, model_dir) -> ModelSource`` (no
    loading) and ``load(ModelSource) -> nn.Module``."""

    key: str
    resolve: Callable[[dict[str, Any], str | Path], ModelSource]
    load: Callable[[ModelSource], nn.Module]


MODEL_SOURCES: Registry[SourceKind] = Registry("model source")


def register_source(key: str, *, load: Callable[[ModelSource], nn.Module]):
    """Decorator registering ``resolve(spec, model_dir) -> ModelSource`` for config entries ``<key>: <name>``."""
    def decorate(resolve: Callable[[dict[str, Any], str | Path], ModelSource]):
        MODEL_SOURCES.register(key, SourceKind(key, resolve, load))
        return resolve

    return decorate


@register_source("robustbench", load=_load_robustbench)
def _resolve_robustbench(spec: dict[str, Any], model_dir: str | Path) -> ModelSource:
    return robustbench_source(str(spec["robustbench"]), str(spec.get("dataset") or ROBUSTBENCH_DEFAULT_DATASET),
                              str(spec.get("threat_model") or DEFAULT_THREAT_MODEL), model_dir, spec.get("reported"))


@register_source("timm", load=_load_timm)
def _resolve_timm(spec: dict[str, Any], model_dir: str | Path) -> ModelSource:
    return timm_source(str(spec["timm"]), spec.get("num_classes"), str(spec.get("dataset") or ""),
                       spec.get("pretrained_file"), str(spec.get("threat_model") or DEFAULT_THREAT_MODEL), spec.get("reported"))


@register_source("python", load=_load_python)
def _resolve_python(spec: dict[str, Any], model_dir: str | Path) -> ModelSource:
    return python_source(str(spec["python"]), spec.get("num_classes"), str(spec.get("dataset") or ""),
                         spec.get("checkpoint"), str(spec.get("threat_model") or DEFAULT_THREAT_MODEL), spec.get("num_ops"),
                         spec.get("reported"), spec.get("base_dir"))


def load_source(source: ModelSource) -> nn.Module:
    """The K-way classifier in eval mode, on [0,1] inputs; ``num_classes``/``num_ops``/``normalization`` set."""
    model = MODEL_SOURCES.get(source.kind).load(source)
    model.eval()
    if source.kind == "python":
        model.normalization = None  # inside the user's module, as it is
        return model
    model.num_classes, model.num_ops = source.num_classes, 0
    model.normalization = normalization_of(model)
    return model


def resolve_source(spec: dict[str, Any], model_dir: str | Path = "./models") -> ModelSource:
    """A config's model entry (``robustbench: <name>`` + dataset/threat_model, ``timm: <name>`` + num_classes,
    dataset, optional pretrained_file, or ``python: file.py:factory`` + num_classes, optional checkpoint; one key of :data:`MODEL_SOURCES`) as a :class:`ModelSource`."""
    kinds = [k for k in MODEL_SOURCES.names() if spec.get(k)]
    if len(kinds) != 1:
        raise UserError("a model source needs exactly one of " + " or ".join(f"'{k}: <name>'" for k in MODEL_SOURCES))
    return MODEL_SOURCES.get(kinds[0]).resolve(spec, model_dir)


def robustbench_reported(reported: dict[str, Any] | None) -> dict[str, Any] | None:
    """A ``reported`` block with RobustBench's accuracies (``clean_acc``, ``autoattack_acc``, percent, numbers or
    RobustBench's strings) given as the errors the leaderboard shows (``clean_error``, ``autoattack_error``);
    other keys are kept. Empty strings (RobustBench's "not reported") are dropped."""
    if not reported:
        return None
    out = dict(reported)
    for acc, err in (("clean_acc", keys.CLEAN_ERROR), ("autoattack_acc", keys.AUTOATTACK_ERROR)):
        value = out.pop(acc, None)
        if value in (None, ""):
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise UserError(f"reported {acc} must be a percentage, got {value!r}") from None
        if not 0 <= value <= 100:
            raise UserError(f"reported {acc} must be a percentage in [0, 100], got {value}")
        out.setdefault(err, round(100.0 - value, 2))
    return out


__all__ = ["MODEL_SOURCES", "ModelSource", "RB_PREPROCESSING", "SourceKind", "fit_state_dict", "load_source",
           "normalization_of", "python_source", "register_source", "resolve_source", "robustbench_models",
           "robustbench_reported", "robustbench_source", "split_python_ref", "timm_source", "unwrap_state_dict"]
