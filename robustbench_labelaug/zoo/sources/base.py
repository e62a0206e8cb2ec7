"""What every model source shares: :class:`ModelSource` (a resolved model: what to load, what it is, what
identifies its weights), :class:`SourceKind` (one kind: its config key, ``resolve`` and ``load``), the input
normalisation found inside a loaded model (:func:`normalization_of`) and RobustBench's reported accuracies as the
errors the leaderboard shows (:func:`robustbench_reported`). Imports no torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import UserError
from ...fileio import file_sha256
from ...results import keys

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


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


@dataclass(frozen=True)
class SourceKind:
    """One kind of model source: the config key naming it, ``resolve(spec, model_dir) -> ModelSource`` (no
    loading) and ``load(ModelSource) -> nn.Module``."""

    key: str
    resolve: Callable[[dict[str, Any], str | Path], ModelSource]
    load: Callable[[ModelSource], nn.Module]


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
