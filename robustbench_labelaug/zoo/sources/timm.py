"""``timm: <name>``: ``timm.create_model(name, num_classes=K)`` plus an optional local ``pretrained_file``
(compute nodes are often offline, so nothing is downloaded); the model normalises with timm's pretrained config."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import timm
from torch import nn

from ...errors import UserError
from ...models import ImageClassifier  # (the package registers the CIFAR architectures with timm)
from ...results.vocab import DEFAULT_THREAT_MODEL
from ...safeload import check_inflated_size, state_bytes
from .base import ModelSource, SourceKind, robustbench_reported


def timm_source(name: str, num_classes: int, dataset: str, pretrained_file: str | Path | None = None,
                threat_model: str = DEFAULT_THREAT_MODEL, reported: dict[str, Any] | None = None) -> ModelSource:
    """Resolve a timm model with K = ``num_classes`` outputs and an optional local checkpoint."""
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


def load(source: ModelSource) -> nn.Module:
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


def resolve(spec: dict[str, Any], model_dir: str | Path) -> ModelSource:
    return timm_source(str(spec["timm"]), spec.get("num_classes"), str(spec.get("dataset") or ""),
                       spec.get("pretrained_file"), str(spec.get("threat_model") or DEFAULT_THREAT_MODEL), spec.get("reported"))


SOURCE = SourceKind("timm", resolve, load)
