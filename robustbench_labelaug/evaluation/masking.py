"""Gradient-masking sanity checks (Carlini et al., 2019, "On Evaluating Adversarial Robustness"; Athalye et al.,
2018): cheap signs that a PGD number overstates robustness.

Every attack here is the sound one (:class:`~robustbench_labelaug.attacks.EarlyStopPGD`, pixel space, true
labels, ``alpha = 2.5 * eps / steps``) unless named otherwise; robust accuracies are in percent and each attack
configuration is one cached split. The checks, each reported with its numbers in ``details["checks"]``:

``eps_sweep_monotone``
    PGD-``steps`` robust accuracy over ``eps_sweep`` never rises by more than ``tolerance`` percentage points
    from a smaller eps to a larger one (a larger ball contains the smaller one).
``large_eps_near_zero``
    at the largest eps of the sweep (0.5 by default, where any image can be pushed to mid-grey) the robust
    accuracy is at most ``zero_threshold`` percent. Skipped when the sweep stops below 0.25.
``steps_sweep_monotone``
    PGD robust accuracy at ``eps`` over ``steps_sweep`` never rises by more than ``tolerance`` points with more
    steps.
``autoattack_not_weaker_than_pgd``
    AutoAttack (standard) accuracy <= PGD accuracy + ``tolerance`` on the same first ``autoattack_n`` examples:
    AutoAttack contains stronger gradient attacks than PGD, so otherwise something is broken.
``pgd_close_to_autoattack``
    PGD accuracy - AutoAttack accuracy <= ``gap_tolerance`` points (default 10): a large gap means gradients
    mislead PGD while AutoAttack's targeted and black-box (Square) attacks get through, i.e. the PGD number is
    masked. Unmasked models typically show a gap of a few points (PGD-40 uses a fixed step and the untargeted
    loss only); masked ones tens of points.
``k_way_attack_not_weaker_than_full_head`` (models with M > 0 transformation logits only)
    the default attack on the K-way classifier is at least as strong (within ``tolerance``) as the same attack
    through the loss over all K+M logits (success still judged on the first K): otherwise the default attack is
    not the strongest one and the K+M head hides gradient signal.

``tolerance`` (default 2 points) absorbs the randomness of the random start: with n examples one example is
100/n points (1.6 at n = 64), so small n needs a larger tolerance. AutoAttack is optional (``autoattack``) and can
run on fewer examples (``autoattack_n``). Skipped checks are listed in ``details["skipped"]`` with the reason."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from ..checks import check_eps, check_nonneg, check_seed, check_steps
from ..errors import UserError
from ..scoring import top1_error
from .autoattack import predict_autoattack
from .base import EvalContext, EvalResult, Evaluator, Measured, SplitArrays
from .pgd import check_full_model, full_model, k_way_view, predict_sound

LARGE_EPS_MIN = 0.25


def masking_checks(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A stored masking result's checks as ``[{"name", "passed", ...}]`` whichever shape it stores them in
    (``details["checks"]`` as a list or a name -> check mapping)."""
    checks = result.get("details", {}).get("checks", [])
    if isinstance(checks, Mapping):
        checks = [{"name": name, **(c if isinstance(c, Mapping) else {"passed": bool(c)})}
                  for name, c in checks.items()]
    return [dict(c) for c in checks if isinstance(c, Mapping) and "passed" in c]


def _split(kind: str, eps: float, steps: int | None = None) -> str:
    return f"{kind}/eps={eps!r}" + ("" if steps is None else f"/steps={steps}")


def max_rise(values: Sequence[float]) -> float:
    """The largest increase from an earlier value to a later one (0 when the sequence never rises)."""
    rise, low = 0.0, float("inf")
    for v in values:
        rise, low = max(rise, v - low), min(low, v)
    return rise


@dataclass
class MaskingChecks(Evaluator):
    """Gradient-masking checks (see the module docstring); ``metrics["failed_checks"]`` counts the failures.

    Settings: ``eps``, ``steps`` (the attack checked, default PGD-40 at 0.03); ``eps_sweep`` (default
    eps/2, eps, 2 eps, 4 eps, 0.5); ``steps_sweep`` (default steps/4, steps, 2.5 steps); ``n_examples`` (the first
    n, default 500); ``autoattack`` / ``autoattack_n``; ``tolerance``, ``zero_threshold``, ``gap_tolerance`` (in
    percentage points); ``seed`` (None: the run's seed)."""

    name = "masking"

    n_examples: int | None = 500
    eps: float = 0.03
    steps: int = 40
    eps_sweep: list[float] | None = None
    steps_sweep: list[int] | None = None
    autoattack: bool = True
    autoattack_n: int | None = None
    tolerance: float = 2.0
    zero_threshold: float = 2.0
    gap_tolerance: float = 10.0
    seed: int | None = None

    def validate(self) -> None:
        eps, steps = check_eps(self.name, self.eps), check_steps(self.name, self.steps)
        self.eps, self.steps, self.seed = eps, steps, check_seed(self.name, self.seed)
        eps_sweep, steps_sweep = self.eps_sweep, self.steps_sweep
        if eps_sweep is None:
            eps_sweep = [e for e in (eps / 2, eps, 2 * eps, 4 * eps, 0.5) if e <= 1.0]
        if steps_sweep is None:
            steps_sweep = [max(1, steps // 4), steps, steps * 5 // 2]
        if isinstance(eps_sweep, (str, bytes)) or not isinstance(eps_sweep, Sequence) or not eps_sweep:
            raise UserError(f"masking: eps_sweep must be a non-empty list of eps values, got {eps_sweep!r}")
        if isinstance(steps_sweep, (str, bytes)) or not isinstance(steps_sweep, Sequence) or not steps_sweep:
            raise UserError(f"masking: steps_sweep must be a non-empty list of step counts, got {steps_sweep!r}")
        self.eps_sweep = sorted({check_eps(self.name, e, "every eps_sweep value") for e in eps_sweep})
        self.steps_sweep = sorted({check_steps(self.name, s, "every steps_sweep value") for s in steps_sweep})
        if self.autoattack_n is not None and (isinstance(self.autoattack_n, bool)
                                              or not isinstance(self.autoattack_n, int) or self.autoattack_n < 1):
            raise UserError(f"masking: autoattack_n must be an integer >= 1 (or left out: all examples), "
                            f"got {self.autoattack_n!r}")
        self.autoattack = bool(self.autoattack)
        self.tolerance = check_nonneg(self.name, "tolerance", self.tolerance)
        self.zero_threshold = check_nonneg(self.name, "zero_threshold", self.zero_threshold)
        self.gap_tolerance = check_nonneg(self.name, "gap_tolerance", self.gap_tolerance)
        self._num_ops = 0

    @classmethod
    def headline(cls, result: Mapping[str, Any]) -> list[Measured]:
        checks = masking_checks(result)
        passed = sum(bool(c["passed"]) for c in checks)
        failed = [str(c.get("name")) for c in checks if not c["passed"]]
        return [Measured("masking", "masking", f"{passed}/{len(checks)} passed", unit="", stored=False),
                Measured("masking_passed", "masking passed", passed, unit="", show=False, accumulate=True),
                Measured("masking_failed", "masking failed", len(failed), unit="", show=False, accumulate=True),
                Measured("masking_failed_checks", "masking failed checks", failed, unit="", show=False,
                         accumulate=True)]

    # -- which attacks --------------------------------------------------------------------------------------------
    def _specs(self) -> dict[str, tuple[str, float, int | None]]:
        pairs = {(e, self.steps) for e in self.eps_sweep} | {(self.eps, s) for s in self.steps_sweep}
        specs = {_split("pgd", e, s): ("pgd", e, s) for e, s in sorted(pairs | {(self.eps, self.steps)})}
        if self._num_ops > 0:
            specs[_split("full_head", self.eps, self.steps)] = ("full_head", self.eps, self.steps)
        if self.autoattack:
            specs[_split("autoattack", self.eps)] = ("autoattack", self.eps, None)
        return specs

    def splits(self, dataset: Dataset) -> list[str]:
        return list(self._specs())

    def classifier(self, model: nn.Module, ctx: EvalContext) -> nn.Module:
        return full_model(model, ctx, self.name)

    def check_model(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        check_full_model(model, dataset, ctx, self.name)

    def prepare(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        super().prepare(model, dataset, ctx)
        # M decides whether the full-head attack runs, i.e. which splits there are
        self._num_ops = check_full_model(full_model(model, ctx, self.name), dataset, ctx, self.name)

    def predict(self, model: nn.Module, batches: Iterator, split: str, ctx: EvalContext) -> SplitArrays:
        kind, eps, steps = self._specs()[split]
        seed = int(self.settings["seed"])
        k = ctx.num_classes
        if kind == "autoattack":
            return predict_autoattack(k_way_view(model, k, self._num_ops), batches, eps=eps, version="standard",
                                      seed=seed, batch_size=ctx.batch_size, device=ctx.device,
                                      max_index=self.autoattack_n)
        if kind == "full_head":
            return predict_sound(model, batches, eps=eps, alpha=None, steps=steps, random_start=True, seed=seed,
                                 pred_classes=k)
        return predict_sound(k_way_view(model, k, self._num_ops), batches, eps=eps, alpha=None, steps=steps,
                             random_start=True, seed=seed)

    # -- the checks ---------------------------------------------------------------------------------------------
    def score(self, arrays: dict[str, SplitArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        def accuracy(split: str, max_index: int | None = None) -> float:
            a = arrays[split]
            keep = slice(None) if max_index is None else a["index"] < max_index
            return 100.0 - top1_error(a["y_true"][keep], a["y_pred"][keep])

        tol = self.tolerance
        checks: list[dict[str, Any]] = []
        skipped: dict[str, str] = {}
        eps_acc = [accuracy(_split("pgd", e, self.steps)) for e in self.eps_sweep]
        rise = max_rise(eps_acc)
        checks.append({"name": "eps_sweep_monotone", "passed": rise <= tol, "eps": self.eps_sweep,
                       "steps": self.steps, "robust_accuracy": eps_acc, "max_rise": rise, "tolerance": tol})
        if self.eps_sweep[-1] >= LARGE_EPS_MIN:
            checks.append({"name": "large_eps_near_zero", "passed": eps_acc[-1] <= self.zero_threshold,
                           "eps": self.eps_sweep[-1], "robust_accuracy": eps_acc[-1],
                           "threshold": self.zero_threshold})
        else:
            skipped["large_eps_near_zero"] = (f"the eps sweep stops at {self.eps_sweep[-1]} < {LARGE_EPS_MIN}: "
                                              "add 0.5 to eps_sweep")
        steps_acc = [accuracy(_split("pgd", self.eps, s)) for s in self.steps_sweep]
        rise = max_rise(steps_acc)
        checks.append({"name": "steps_sweep_monotone", "passed": rise <= tol, "eps": self.eps,
                       "steps": self.steps_sweep, "robust_accuracy": steps_acc, "max_rise": rise,
                       "tolerance": tol})
        pgd_split = _split("pgd", self.eps, self.steps)
        aa_split = _split("autoattack", self.eps)
        if aa_split in arrays:
            n_aa = int(len(arrays[aa_split]["index"]))
            aa_acc = accuracy(aa_split)
            pgd_acc = accuracy(pgd_split, self.autoattack_n)
            numbers = {"eps": self.eps, "n": n_aa, "pgd_robust_accuracy": pgd_acc,
                       "autoattack_robust_accuracy": aa_acc}
            checks.append({"name": "autoattack_not_weaker_than_pgd", "passed": aa_acc <= pgd_acc + tol,
                           **numbers, "tolerance": tol})
            checks.append({"name": "pgd_close_to_autoattack", "passed": pgd_acc - aa_acc <= self.gap_tolerance,
                           **numbers, "gap": pgd_acc - aa_acc, "tolerance": self.gap_tolerance})
        else:
            skipped["autoattack_not_weaker_than_pgd"] = skipped["pgd_close_to_autoattack"] = \
                "autoattack is off (autoattack: false)"
        full_split = _split("full_head", self.eps, self.steps)
        if full_split in arrays:
            kway_acc, full_acc = accuracy(pgd_split), accuracy(full_split)
            checks.append({"name": "k_way_attack_not_weaker_than_full_head", "passed": kway_acc <= full_acc + tol,
                           "eps": self.eps, "steps": self.steps, "k_way_robust_accuracy": kway_acc,
                           "full_head_robust_accuracy": full_acc, "num_ops": self._num_ops, "tolerance": tol})
        else:
            skipped["k_way_attack_not_weaker_than_full_head"] = "the model has no transformation logits (M = 0)"
        for c in checks:
            c["passed"] = bool(c["passed"])
        failed = [c["name"] for c in checks if not c["passed"]]
        n = int(len(arrays[pgd_split]["index"]))
        return EvalResult(
            evaluator=self.name,
            metrics={"failed_checks": len(failed), "passed_checks": len(checks) - len(failed),
                     "pgd_robust_error": 100.0 - accuracy(pgd_split)},
            settings={"attack": f"EarlyStopPGD-{self.steps} (sound: K-way, true labels, pixel space)",
                      "eps_pixel": self.eps},
            protocol="sound",
            details={"checks": checks, "failed": failed, "skipped": skipped,
                     "split_accuracy": {s: accuracy(s) for s in arrays}},
            num_examples=n,
        )
