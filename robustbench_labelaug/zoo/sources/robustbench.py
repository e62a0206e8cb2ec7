"""``robustbench: <name>``: any model of RobustBench's zoo, resolved without loading.

:func:`robustbench_source` checks, before RobustBench is asked for anything, that ``name`` is in RobustBench's zoo
for ``dataset``/``threat_model`` (else the closest names: RobustBench itself raises a bare ``KeyError``) and that
its checkpoint is at ``<model_dir>/<dataset>/<threat_model>/<name>.pt`` (RobustBench's layout; ensembles:
``<name>.pt_m<i>.pt``). A missing file is one line naming that path and where to get it: RobustBench would start a
Google-Drive download, which fails offline with its own network error. ``Standard_R50`` (ImageNet) has no
checkpoint: its weights are torchvision's, looked for in torch's hub cache. :func:`load` then calls
``robustbench.utils.load_model(name, model_dir, dataset, threat_model)`` and refuses a checkpoint that does not
cover the architecture's weights (RobustBench would load it non-strictly).

K comes from RobustBench's dataset (10 / 100 / 1000), the preprocessing (input size, crop) from the entry's
``preprocessing`` (RobustBench's ``PREPROCESSINGS``: none for CIFAR = 32x32 ToTensor, ``Res256Crop224``, ...).
RobustBench models take [0,1] inputs and normalise inside, if at all (the ImageNet ones through an
``ImageNormalizer``, some CIFAR ones with ``mu``/``sigma`` buffers, most CIFAR ones not at all)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import timm
import torch
from robustbench.data import PREPROCESSINGS
from robustbench.model_zoo import model_dicts
from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel
from robustbench.utils import add_substr_to_state_dict, rm_substr_from_state_dict
from robustbench.utils import load_model as rb_load_model
from torch import nn
from torchvision.models import ResNet50_Weights

from ...compat import import_robustbench
from ...data.registry import DATASETS, ROBUSTBENCH_DEFAULT_DATASET, RobustBenchFacts, get_dataset_spec
from ...errors import UserError
from ...results.vocab import DEFAULT_THREAT_MODEL, model_folder
from ...safeload import check_inflated_size, load_torch
from .base import ModelSource, SourceKind, robustbench_reported

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


def _rb():
    import_robustbench()  # robustbench.eval's AutoAttack adapter in place
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
    spec = DATASETS.get(dataset) if dataset in DATASETS else None
    return spec.robustbench if spec is not None and spec.robustbench is not None else RobustBenchFacts()


def _torchvision_weights(name: str) -> tuple[Path, str]:
    """Where torchvision keeps the weights RobustBench's ImageNet ``Standard`` models download, and their URL."""
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
    return ModelSource(
        kind="robustbench", name=name, dataset=dataset, threat_model=threat_model,
        num_classes=get_dataset_spec(dataset).count_classes(), weights=weights, preprocessing=prep,
        transform=PREPROCESSINGS.get(prep) if isinstance(prep, str) or prep is None else entry.get("preprocessing"),
        input=dict(RB_PREPROCESSING.get(prep, {})), reported=robustbench_reported(reported),
        extra={"page": page, "model_dir": str(Path(model_dir).expanduser())})


def load(source: ModelSource) -> nn.Module:
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


def resolve(spec: dict[str, Any], model_dir: str | Path) -> ModelSource:
    return robustbench_source(str(spec["robustbench"]), str(spec.get("dataset") or ROBUSTBENCH_DEFAULT_DATASET),
                              str(spec.get("threat_model") or DEFAULT_THREAT_MODEL), model_dir, spec.get("reported"))


SOURCE = SourceKind("robustbench", resolve, load)
