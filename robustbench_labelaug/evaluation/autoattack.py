"""AutoAttack robust error, class-wise: pyautoattack 0.2.0 (the code RobustBench runs), L-inf, on the first n
examples (RobustBench's convention), against the K-way classifier with the true labels in [0,1] pixel space.

AutoAttack needs its examples in memory: each rank collects its shard (under torchrun every rank attacks its own
share), runs ``AutoAttack(model, norm="Linf", eps, version, device, seed).run_standard_evaluation`` on it and
keeps the per-sample predictions on the adversarial examples it returns, which give the per-class errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyautoattack
import torch
from torch import nn
from torch.utils.data import Dataset

from ..checks import check_eps, check_seed
from ..errors import UserError
from ..packages import package_version
from ..scoring import top1_error
from .base import (
    EvalContext,
    EvalResult,
    Evaluator,
    Measured,
    SplitArrays,
    attack_classwise_key,
    classwise_block,
    to_numpy,
)

VERSIONS = ("standard", "plus", "rand")


def predict_autoattack(model: nn.Module, batches: Iterator, *, eps: float, version: str, seed: int,
                       batch_size: int, device: torch.device, max_index: int | None = None) -> SplitArrays:
    """Per-sample ``index``, ``y_true``, ``y_clean``, ``y_pred`` (prediction on AutoAttack's adversarial
    example; the clean one where AutoAttack did not attack) and ``linf`` for this rank's examples (only those
    with index < ``max_index`` when given), attacked in one call."""
    xs, ys, idxs, cleans = [], [], [], []
    for x, y, idx in batches:
        if max_index is not None:
            keep = idx < max_index
            x, y, idx = x[keep], y[keep], idx[keep]
        if len(idx) == 0:
            continue
        with torch.no_grad():
            cleans.append(model(x).argmax(1).cpu())
        xs.append(x.cpu())
        ys.append(y.cpu())
        idxs.append(idx.cpu())
    if not xs:
        return {k: np.zeros(0, dtype=np.int64) for k in ("index", "y_true", "y_clean", "y_pred")} | {
            "linf": np.zeros(0, dtype=np.float32)}
    x, y = torch.cat(xs), torch.cat(ys)
    adversary = pyautoattack.AutoAttack(model, norm="Linf", eps=eps, version=version, device=device, seed=seed)
    x_adv, y_adv = adversary.run_standard_evaluation(x, y, batch_size=batch_size)
    linf = (x_adv.cpu() - x).flatten(1).abs().amax(1)
    index, y_true, y_clean, y_pred, linf = to_numpy(torch.cat(idxs), y, torch.cat(cleans), y_adv, linf)
    return {"index": index, "y_true": y_true, "y_clean": y_clean, "y_pred": y_pred, "linf": linf}


@dataclass
class AutoAttackEvaluator(Evaluator):
    """AutoAttack (pyautoattack, L-inf) robust error (%) with its class-wise breakdown (key ``autoattack``).

    Settings: ``eps`` (pixel units, default 0.03); ``version`` (``standard``, RobustBench's, or ``plus`` /
    ``rand``); ``n_examples`` (the first n, as RobustBench; None: all); ``seed`` (AutoAttack's, None: the run's
    seed), so that a run is deterministic."""

    name = "autoattack"

    eps: float = 0.03
    version: str = "standard"
    seed: int | None = None

    def validate(self) -> None:
        if self.version not in VERSIONS:
            raise UserError(f"autoattack: version '{self.version}' is not known: use one of {', '.join(VERSIONS)} "
                            "('standard' is RobustBench's)")
        self.eps, self.seed = check_eps(self.name, self.eps), check_seed(self.name, self.seed)

    @classmethod
    def headline(cls, result: Mapping[str, Any]) -> list[Measured]:
        version = result.get("settings", {}).get("version") or "standard"
        n = result.get("num_examples")
        return [Measured("autoattack_error", f"AA err (n={n})", result["metrics"].get("robust_error"),
                         protocol=f"AutoAttack {version}"),
                Measured("autoattack_n", "AA n", n, unit="", show=False),
                Measured("autoattack_version", "AA version", version, unit="", show=False),
                Measured("clean_error", "clean err", result["metrics"].get("clean_error"), fallback=True),
                Measured("clean_n", "clean n", n, unit="", show=False, fallback=True)]

    @classmethod
    def classwise_refs(cls, result: Mapping[str, Any]) -> dict[str, str]:
        return {"autoattack": attack_classwise_key(result, "autoattack")}

    def predict(self, model: nn.Module, batches: Iterator, split: str, ctx: EvalContext) -> SplitArrays:
        return predict_autoattack(model, batches, eps=self.eps, version=self.version,
                                  seed=int(self.settings["seed"]), batch_size=ctx.batch_size, device=ctx.device)

    def score(self, arrays: dict[str, SplitArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        a = arrays["all"]
        y_true, y_pred = a["y_true"], a["y_pred"]
        n = int(len(a["index"]))
        settings: dict[str, Any] = {"attack": f"AutoAttack ({self.version})", "norm": "Linf",
                                    "eps_pixel": self.eps, "library": f"pyautoattack {package_version('pyautoattack') or 'unknown'}",
                                    "labels": "true labels", "classifier": "K-way (first K logits)",
                                    "input_space": "[0,1] pixels (normalisation inside the model)"}
        return EvalResult(
            evaluator=self.name,
            metrics={"robust_error": top1_error(y_true, y_pred), "clean_error": top1_error(y_true, a["y_clean"])},
            settings=settings,
            classwise={"autoattack": classwise_block(y_true, y_pred, ctx.num_classes, ctx.seed)},
            protocol="sound",
            details={"max_linf_pixel": float(a["linf"].max()) if n else None},
            num_examples=n,
        )

