"""Class-wise robustness curves, free of a single eps (key ``robustness_curve``).

Each example's robust radius is found with a maintained minimal-norm L-inf attack
(:mod:`robustbench_labelaug.attacks.min_norm`: pyautoattack's FAB by default, adv-lib's FMN, or both, the
per-example minimum), every candidate verified misclassified and bisected to the boundary; 0 for a misclassified
clean image, infinity where nothing was found. An example counts as robust at eps only if no attack of the run
broke it within eps: with ``autoattack`` (default on) AutoAttack at the study ``eps`` tightens the radii (an
example it broke gets at most AutoAttack's L-inf distance). Where the ``autoattack`` evaluator of the same model
ran first with the same eps, version and seed (also as "PGD-40 + AutoAttack"), its per-example results are taken
instead of a second AutoAttack run.

From the radii, :func:`~robustbench_labelaug.scoring.curves.robustness_curves` gives per class the robust accuracy
at every eps of a grid on [0, ``eps_max``] with Wilson intervals, the median radius and the area under the curve
(normalised by eps_max); the worst class's area is the eps-free worst-class number. The result stores them in
``details["curve"]``; the per-example arrays (part ``all``: ``index``, ``y_true``, ``y_clean``, ``y_pred``,
``radius``, ``attack_radius``, ``autoattack_linf``) are cached like every evaluator's, so curves can be pooled
over seeds later. ``y_pred`` is the prediction at the closest adversarial example found where it lies within
eps_max (else the clean prediction): its error is the curve's error at eps_max.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..attacks.gradient_probe import require_input_gradient
from ..attacks.min_norm import MIN_NORM_ATTACKS, minimal_radii
from ..checks import check_eps, check_seed, check_steps
from ..errors import UserError
from ..results import keys
from ..results.vocab import Protocol, ThreatModel
from ..scoring import top1_error
from ..scoring.curves import robustness_curves, tighten_radii
from .autoattack import UNION_PGD_STEPS, VERSIONS, autoattack_key, predict_autoattack
from .base import SELECTIONS, EvalContext, EvalResult, Evaluator, Measured, PartArrays, to_numpy
from .parts import lookup_shared

CURVE_PART = "all"
MAX_POINTS = 1001


def _autoattack_part(eps: float) -> str:
    return f"autoattack/eps={eps!r}"


@dataclass
class RobustnessCurveEvaluator(Evaluator):
    """Per-class robust accuracy over eps from each example's minimal L-inf adversarial radius.

    Settings: ``eps`` (the study's threat-model eps, default 0.03: where AutoAttack tightens the curve);
    ``eps_max`` (the curve's range, default 2 x eps, at most 1); ``points`` (grid points on [0, eps_max], default
    41); ``attack`` (``fab``, default: pyautoattack's FAB; ``fmn``: adv-lib's FMN, ``pip install adv-lib``;
    ``both``: the per-example minimum); ``steps`` (the attack's iterations, default 100); ``targets`` (FAB-T:
    also FAB targeted at the ``targets`` highest-scoring other classes, default 0); ``refine_steps`` (bisection
    halvings toward the boundary, default 12); ``autoattack`` (default True) / ``autoattack_version``;
    ``n_examples`` / ``selection``; ``seed`` (AutoAttack's, None: the run's)."""

    name = "robustness_curve"
    source_key = keys.CURVE_SOURCE  # measured[curve_source]: the result whose details hold the curve
    reuses = ("autoattack",)
    long_running = True  # a minimal-norm attack of every example, and AutoAttack

    eps: float = 0.03
    eps_max: float | None = None
    points: int = 41
    attack: str = field(default="fab", metadata={"choices": MIN_NORM_ATTACKS})
    steps: int = 100
    targets: int = 0
    refine_steps: int = 12
    autoattack: bool = True
    autoattack_version: str = field(default="standard", metadata={"choices": VERSIONS})
    selection: str = field(default="class_balanced", metadata={"choices": SELECTIONS})
    seed: int | None = None

    def validate(self) -> None:
        self.eps = check_eps(self.name, self.eps)
        if self.eps_max is None:
            self.eps_max = min(1.0, 2.0 * self.eps)
        self.eps_max = check_eps(self.name, self.eps_max, "eps_max")
        if self.eps_max < self.eps:
            raise UserError(f"{self.name}: eps_max ({self.eps_max}) is below eps ({self.eps}): the curve must "
                            "reach the study's eps; raise eps_max or leave it out (2 x eps)")
        if isinstance(self.points, bool) or not isinstance(self.points, int) or not 2 <= self.points <= MAX_POINTS:
            raise UserError(f"{self.name}: points must be an integer in [2, {MAX_POINTS}], got {self.points!r}")
        self.steps = check_steps(self.name, self.steps)
        for name in ("targets", "refine_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UserError(f"{self.name}: {name} must be an integer >= 0, got {value!r}")
        self.seed = check_seed(self.name, self.seed)

    # -- what it declares ----------------------------------------------------------------------------------------
    @classmethod
    def headline(cls, result: Mapping[str, Any]) -> list[Measured]:
        curve = (result.get("details") or {}).get("curve") or {}
        attack = (result.get("settings") or {}).get("attack_label") or "minimal-norm L-inf attack"
        eps_max = curve.get("eps_max")
        span = f"ε ≤ {eps_max:g}" if isinstance(eps_max, (int, float)) else "ε range"
        return [Measured(keys.CURVE_WORST_AREA, f"worst-class curve area ({span})", curve.get("worst_area"),
                         protocol=attack),
                Measured(keys.CURVE_MEAN_AREA, f"mean curve area ({span})", curve.get("mean_area"),
                         protocol=attack, show=False),
                Measured(keys.CURVE_WORST_MEDIAN_RADIUS, "worst-class median radius",
                         curve.get("worst_median_radius"), unit="", protocol=attack),
                Measured(keys.CURVE_MEDIAN_RADIUS, "median radius per class", curve.get("median_radius"), unit="",
                         show=False),
                Measured(keys.CURVE_EPS_MAX, "curve eps_max", eps_max, unit="", show=False)]

    @classmethod
    def classwise_refs(cls, result: Mapping[str, Any]) -> dict[str, str]:
        return {keys.CLASSWISE_CURVE: keys.CLASSWISE_CURVE} if (result.get("classwise") or {}).get(
            keys.CLASSWISE_CURVE) else {}

    # -- parts ---------------------------------------------------------------------------------------------------
    def prepare(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        super().prepare(model, dataset, ctx)
        self._dataset = dataset
        self._ctx = ctx

    def finish(self) -> None:
        self._dataset = self._ctx = None

    def check_model(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        super().check_model(model, dataset, ctx)
        require_input_gradient(model, dataset[0][0].unsqueeze(0).to(ctx.device), self.name)

    @property
    def attack_label(self) -> str:
        label = {"fab": "FAB (pyautoattack)", "fmn": "FMN (adv-lib)", "both": "FAB (pyautoattack) + FMN (adv-lib)"}
        text = label[self.attack] + (f" + FAB-T({self.targets})" if self.targets and self.attack != "fmn" else "")
        return text + (f" + AutoAttack ({self.autoattack_version}) at ε = {self.eps:g}" if self.autoattack else "")

    def _shared_autoattack(self, index: torch.Tensor) -> PartArrays | None:
        """The ``autoattack`` evaluator's per-example results on these examples (same model, data, eps, version and
        seed; standalone or after PGD-40), where it ran first and covered them."""
        ctx, dataset = getattr(self, "_ctx", None), getattr(self, "_dataset", None)
        if ctx is None or ctx.predictions is None or dataset is None:
            return None
        seed = int(self.settings["seed"])
        keys = [autoattack_key(self.eps, self.autoattack_version, seed, steps) for steps in (0, UNION_PGD_STEPS)]
        return lookup_shared(ctx, dataset, keys, index.cpu().numpy().astype(np.int64).tolist())

    def predict(self, model: nn.Module, batches: Iterator, part: str, ctx: EvalContext) -> PartArrays:
        out: dict[str, list[np.ndarray]] = {k: [] for k in ("index", "y_true", "y_clean", "y_adv", "radius")}
        images: list[torch.Tensor] = []  # kept for AutoAttack where no earlier run can be taken
        for x, y, idx in batches:  # the stream's bar shows the attack's progress
            with torch.no_grad():
                y_clean = model(x).argmax(1)
            with torch.enable_grad():
                r, adv = minimal_radii(model, x, y, attack=self.attack, steps=self.steps, targets=self.targets,
                                       refine_steps=self.refine_steps)
            with torch.no_grad():
                y_adv = model(adv).argmax(1)
            for key, t in zip(out, to_numpy(idx, y, y_clean, y_adv, r.double())):
                out[key].append(t)
            if self.autoattack:
                images.append(x.cpu())
        if not out["index"]:
            return {k: np.zeros(0, dtype=np.int64) for k in ("index", "y_true", "y_clean", "y_pred")} | {
                k: np.zeros(0) for k in ("radius", "attack_radius", "autoattack_linf")}
        index_np, y_np, y_clean_np, y_adv_np, attack_radius = (np.concatenate(v) for v in out.values())
        index_np, y_np = index_np.astype(np.int64), y_np.astype(np.int64)
        radius_np, aa_linf = attack_radius.copy(), np.full(len(y_np), math.inf)
        if self.autoattack:
            aa = self._shared_autoattack(torch.from_numpy(index_np))
            if aa is None:
                x_all, y_all, i_all = torch.cat(images), torch.from_numpy(y_np), torch.from_numpy(index_np)
                stream = ((x_all[s:s + ctx.batch_size].to(ctx.device), y_all[s:s + ctx.batch_size].to(ctx.device),
                           i_all[s:s + ctx.batch_size]) for s in range(0, len(y_np), ctx.batch_size))
                aa = predict_autoattack(model, stream, eps=self.eps, version=self.autoattack_version,
                                        seed=int(self.settings["seed"]), batch_size=ctx.batch_size,
                                        device=ctx.device)
            aa_index = np.asarray(aa["index"], dtype=np.int64)
            order = np.argsort(aa_index, kind="stable")
            rows = order[np.searchsorted(aa_index[order], index_np)]
            broken = np.asarray(aa["broken_by"])[rows] >= 0
            # AutoAttack's examples lie in the eps-ball; their float32 distance can exceed eps by a rounding step
            # (0.10000002 at eps 0.1), which the strict "radius > eps" of the curve would count as robust at eps
            aa_linf = np.where(broken, np.minimum(np.asarray(aa["linf"], dtype=np.float64)[rows], self.eps),
                               math.inf)
            radius_np, tightened = tighten_radii(index_np, radius_np, index_np, broken, aa_linf)
            y_adv_np = np.where(tightened, np.asarray(aa["y_pred"])[rows], y_adv_np)
        y_pred = np.where(radius_np <= self.eps_max, y_adv_np, y_clean_np)
        return {"index": index_np, "y_true": y_np, "y_clean": y_clean_np, "y_pred": y_pred, "radius": radius_np,
                "attack_radius": attack_radius, "autoattack_linf": aa_linf}

    def score(self, arrays: dict[str, PartArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        a = arrays[CURVE_PART]
        n = int(len(a["index"]))
        y_true, radius = a["y_true"], a["radius"]
        curve = robustness_curves(y_true, radius, ctx.num_classes, self.eps_max, self.points)
        aa_broken = np.isfinite(a["autoattack_linf"])
        tightened = int(np.sum(aa_broken & (a["autoattack_linf"] < a["attack_radius"])))
        error = 100.0 - curve["area"]  # the class's error averaged over eps in [0, eps_max]
        scored = np.flatnonzero(curve["n"] > 0)
        summary = {"mean": float(np.mean(error[scored])), "sd": float(np.std(error[scored])),
                   "worst_class": int(curve["worst_area_class"]), "worst_error": float(100.0 - curve["worst_area"]),
                   "best_class": int(scored[np.argmin(error[scored])]),
                   "best_error": float(np.min(error[scored])), "num_classes_scored": int(scored.size)}
        settings = {"attack_label": self.attack_label, "norm": ThreatModel.LINF, "labels": "true labels",
                    "classifier": "K-way (first K logits)", "input_space": "[0,1] pixels (normalisation inside the model)"}
        return EvalResult(
            evaluator=self.name,
            metrics={"worst_area": curve["worst_area"], "mean_area": curve["mean_area"],
                     "robust_error_at_eps": top1_error(y_true, np.where(radius > self.eps, y_true, -1)),
                     "robust_error_at_eps_max": top1_error(y_true, a["y_pred"]),
                     "clean_error": top1_error(y_true, a["y_clean"])},
            settings=settings,
            classwise={keys.CLASSWISE_CURVE: {"error": error.tolist(), "n": curve["n"].tolist(), "summary": summary,
                                              "meaning": "100 - area under the class's robust-accuracy curve on "
                                                         "[0, eps_max] / eps_max: the class's robust error averaged "
                                                         "over eps"}},
            protocol=Protocol.SOUND,
            details={"curve": {**{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in curve.items()},
                               "study_eps": self.eps},
                     "not_broken": int(np.sum(~np.isfinite(radius))),
                     "tightened_by_autoattack": tightened if self.autoattack else None,
                     "median_radius_note": "null: more than half of the class was never broken within the search"},
            num_examples=n,
        )


__all__ = ["CURVE_PART", "RobustnessCurveEvaluator"]
