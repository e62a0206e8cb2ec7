"""Gradient-masking sanity checks (Carlini et al., 2019, "On Evaluating Adversarial Robustness"; Athalye et al.,
2018): cheap signs that a PGD number overstates robustness.

Every attack here is the sound one (:class:`~robustbench_labelaug.attacks.EarlyStopPGD`, pixel space, true
labels, cross entropy, ``alpha = 2.5 * eps / steps``) unless named otherwise; robust accuracies are in percent and
each attack configuration is one cached part. The checks, each reported with its numbers in ``details["checks"]``:

``gradient_reaches_input``
    the K-way logits have a gradient w.r.t. the input at all (probed on the first example). A model with
    detached or non-differentiable logits fails it, the most extreme masking there is, and every other check is
    skipped (no gradient attack can run; the ``pgd`` and ``autoattack`` evaluators refuse such a model with one
    line).
``input_gradient_nonzero``
    at most ``tolerance`` percent of the examples have an exactly zero cross-entropy gradient w.r.t. the input
    (shattered gradients, e.g. input quantisation, or a softmax saturated by scaled-up logits).
``eps_sweep_monotone``
    PGD-``steps`` robust accuracy over ``eps_sweep`` never rises by more than ``tolerance`` percentage points
    from a smaller eps to a larger one (a larger ball contains the smaller one).
``large_eps_near_zero``
    at the largest eps of the sweep (by default the largest of 0.5, 2 eps and 4 eps that is at most 1: 0.5 for
    eps 0.03, 0.8 for eps 0.2; from eps 0.5 on any image can be pushed to mid-grey) the robust accuracy is at most
    ``zero_threshold`` percent. Skipped when the sweep stops below 0.25.
``steps_sweep_monotone``
    PGD robust accuracy at ``eps`` over ``steps_sweep`` never rises by more than ``tolerance`` points with more
    steps.
``ce_attack_not_weaker_than_margin_attack`` (K >= 3)
    the cross-entropy PGD is not notably weaker than the same PGD on the scale-invariant DLR margin loss
    (:class:`~robustbench_labelaug.attacks.MarginPGD`, the loss of AutoAttack's APGD-DLR) on the same examples:
    fails when the CI of (CE accuracy - margin accuracy) lies above ``tolerance``. Logits multiplied by a large
    factor saturate the softmax, so the CE gradient vanishes while the margin attack is unaffected.
``autoattack_not_weaker_than_pgd``
    AutoAttack (standard) accuracy <= PGD accuracy + ``tolerance`` on the same ``autoattack_n`` examples:
    AutoAttack contains stronger gradient attacks than PGD, so otherwise something is broken.
``pgd_close_to_autoattack``
    PGD accuracy - AutoAttack accuracy is not above ``gap_tolerance`` points (default 10): a large gap means
    gradients mislead PGD while AutoAttack's targeted and black-box (Square) attacks get through, i.e. the PGD
    number is masked. Unmasked models typically show a gap of a few points (PGD-40 uses a fixed step and the
    untargeted loss only); masked ones tens of points. Fails when the CI of the gap lies above ``gap_tolerance``.
``k_way_attack_not_weaker_than_full_head`` (models with M > 0 transformation logits only)
    the default attack on the K-way classifier is at least as strong (within ``tolerance``) as the same attack
    through the loss over all K+M logits (success still judged on the first K): otherwise the default attack is
    not the strongest one and the K+M head hides gradient signal.

The two CI-based checks compare two attacks on the same examples, so they use the paired outcomes: the
``confidence`` (default 0.95) two-sided interval of the accuracy difference by Newcombe's (1998) hybrid score
method (method 10: Wilson intervals of both accuracies combined with their correlation). A check fails when the
whole interval lies above its tolerance, i.e. with one-sided confidence (1 + confidence) / 2 (97.5 %) the gap is
larger than the tolerance; an unmasked model then fails it with at most that small a chance. It passes when the
whole interval lies at or below the tolerance (the data exclude the failure), and is **inconclusive** when the
interval spans the tolerance (the sample is too small to tell; ``outcome: inconclusive``, ``conclusive: false``);
it then gives ``n_to_decide``, the n at which the interval would leave the tolerance if the shares of the paired
2x2 table stayed as observed (:func:`deciding_n`). E.g. a gap of 12.5 points against a tolerance of 10 at n = 32
(CI about [-0.3, 24.4]) is inconclusive, not passed. Outcomes: :mod:`robustbench_labelaug.results.outcomes`;
the other checks compare a point value with their tolerance and pass or fail. Sample size: with n
examples of which a fraction f change outcome between the two attacks, the interval's half-width is about
196 * sqrt(f / n) points, so the check flags a gap of ``gap_tolerance`` + D points once n >~ 38 400 f / D^2: for
f = 0.3 and D = 10, n >~ 120 (at ``autoattack_n`` = 32 only gaps ~20 points above the tolerance are flagged).
``autoattack_n`` (default: all ``n_examples``) should be sized accordingly.

``tolerance`` (default 2 points) absorbs the randomness of the random start: with n examples one example is
100/n points (1.6 at n = 64), so small n needs a larger tolerance. AutoAttack is optional (``autoattack``) and can
run on fewer examples (``autoattack_n``: the first ``autoattack_n`` of the examples chosen, in the order they are
chosen, i.e. round-robin over the classes). Skipped checks are listed in ``details["skipped"]`` with the reason."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..attacks import MarginPGD, example_starts
from ..attacks.gradient_probe import gradient_problem
from ..checks import check_eps, check_nonneg, check_seed, check_steps
from ..compare.stats import newcombe_paired
from ..errors import UserError
from ..models.classifier import k_way
from ..results import keys
from ..results.outcomes import Outcome, interval_outcome, outcome_of, outcome_summary, stored_checks
from ..results.rules import DEFAULT_EPS
from ..results.vocab import Protocol
from ..scoring import top1_error
from .autoattack import autoattack_key, predict_autoattack
from .base import EvalContext, EvalResult, Evaluator, Measured, PartArrays, select_examples, to_numpy
from .pgd import check_full_model, full_model, predict_sound

LARGE_EPS_MIN = 0.25
GRADIENT_PART = "input_gradient"


def masking_checks(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A stored masking result's checks as ``[{"name", "passed", ...}]`` whichever shape it stores them in
    (:func:`~robustbench_labelaug.results.outcomes.stored_checks`)."""
    return stored_checks(result)


def _part(kind: str, eps: float, steps: int | None = None) -> str:
    return f"{kind}/eps={eps!r}" + ("" if steps is None else f"/steps={steps}")


def max_rise(values: Sequence[float]) -> float:
    """The largest increase from an earlier value to a later one (0 when the sequence never rises)."""
    rise, low = 0.0, float("inf")
    for v in values:
        rise, low = max(rise, v - low), min(low, v)
    return rise


def paired_difference_ci(a_correct: np.ndarray, b_correct: np.ndarray, confidence: float = 0.95
                         ) -> tuple[float, float, float]:
    """``(difference, low, high)`` in percentage points: accuracy of A minus accuracy of B on the same examples
    (per-example booleans), with its two-sided ``confidence`` interval by Newcombe's (1998) hybrid score method
    for paired proportions (method 10, the correlation term with his continuity correction). NaNs when empty."""
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    if a.size == 0:
        return math.nan, math.nan, math.nan
    d, low, high = newcombe_paired(int(np.sum(a & b)), int(np.sum(a & ~b)), int(np.sum(~a & b)), int(np.sum(~a & ~b)),
                                   confidence)
    return 100.0 * d, 100.0 * low, 100.0 * high


MAX_DECIDING_N = 10_000_000


def deciding_n(a_correct: np.ndarray, b_correct: np.ndarray, tolerance: float, confidence: float = 0.95
               ) -> int | None:
    """The smallest n at which the paired interval of (accuracy A - accuracy B) would leave ``tolerance`` (pass or
    fail) if the four outcome shares of the 2x2 table stayed as observed; None when the observed gap equals the
    tolerance (no n decides) or it takes more than :data:`MAX_DECIDING_N`. Found by doubling, then bisection."""
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    n = int(a.size)
    if n == 0:
        return None
    shares = np.array([np.sum(a & b), np.sum(a & ~b), np.sum(~a & b), np.sum(~a & ~b)], dtype=float) / n
    if math.isclose(100.0 * (shares[1] - shares[2]), tolerance, abs_tol=1e-9):
        return None

    def decided(m: int) -> bool:
        counts = [int(c) for c in np.round(shares[:3] * m)]
        _, low, high = newcombe_paired(*counts, m - sum(counts), confidence)  # fractions
        low, high = 100.0 * low, 100.0 * high
        return interval_outcome(low, high, tolerance) is not Outcome.INCONCLUSIVE

    if decided(n):
        return n
    lo, hi = n, 2 * n
    while not decided(hi):
        if hi > MAX_DECIDING_N:
            return None
        lo, hi = hi, 2 * hi
    while hi - lo > max(1, lo // 100):  # to within 1 %
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if decided(mid) else (mid, hi)
    return hi


def gap_check(name: str, a_correct: np.ndarray, b_correct: np.ndarray, tolerance: float, confidence: float,
               **numbers: Any) -> dict[str, Any]:
    """A check of "(accuracy A - accuracy B) <= ``tolerance``" on paired outcomes: failed when its CI lies above
    the tolerance, passed when it lies at or below it, inconclusive when it spans it (with ``n_to_decide``: the n
    that would decide it at the observed shares)."""
    gap, low, high = paired_difference_ci(a_correct, b_correct, confidence)
    outcome = interval_outcome(low, high, tolerance)
    return {"name": name, "passed": outcome is Outcome.PASSED, "outcome": outcome.value, **numbers,
            "n": int(len(a_correct)), "gap": gap, "gap_ci": [low, high], "confidence": confidence,
            "conclusive": outcome is not Outcome.INCONCLUSIVE,
            "n_to_decide": deciding_n(a_correct, b_correct, tolerance, confidence)
            if outcome is Outcome.INCONCLUSIVE else None,
            "changed_outcome": int(np.sum(np.asarray(a_correct) != np.asarray(b_correct))), "tolerance": tolerance}


def _only(batches: Iterator, keep: torch.Tensor | None) -> Iterator:
    """The examples of ``batches`` whose index is in ``keep`` (all when None)."""
    for x, y, idx in batches:
        if keep is not None:
            mask = torch.isin(idx, keep.to(idx.device))
            x, y, idx = x[mask], y[mask], idx[mask]
        yield x, y, idx


def predict_input_gradient(model: nn.Module, batches: Iterator) -> PartArrays:
    """Per-sample ``index``, ``y_true``, ``y_clean`` and ``grad_l1``: the L1 norm of the gradient of the cross
    entropy w.r.t. the input (0 where no gradient reaches it)."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("index", "y_true", "y_clean", "grad_l1")}
    for x, y, idx in batches:
        x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = model(x)
            grad = None
            if logits.requires_grad:
                (grad,) = torch.autograd.grad(F.cross_entropy(logits.float(), y, reduction="sum"), x,
                                              allow_unused=True)
        l1 = torch.zeros(len(y), device=x.device) if grad is None else grad.detach().abs().flatten(1).sum(1)
        for key, t in zip(out, to_numpy(idx, y, logits.detach().argmax(1), l1.double())):
            out[key].append(t)
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}


def predict_margin(model: nn.Module, batches: Iterator, *, eps: float, steps: int, seed: int) -> PartArrays:
    """Per-sample ``index``, ``y_true``, ``y_clean`` and ``y_pred`` of :class:`MarginPGD` (true labels; each
    point's random start is the CE attack's, :func:`~robustbench_labelaug.attacks.early_stop_pgd.example_starts`
    of (seed, its index): per example, so neither the batch size nor the number of ranks changes a point's
    result)."""
    attack = MarginPGD(model, eps=eps, alpha=None, steps=steps, random_start=True)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("index", "y_true", "y_clean", "y_pred")}
    for x, y, idx in batches:
        with torch.no_grad():
            clean = model(x).argmax(1)
        adv = attack(x, y, start=example_starts(x, eps, seed, idx))
        with torch.no_grad():
            pred = model(adv).argmax(1)
        for key, t in zip(out, to_numpy(idx, y, clean, pred)):
            out[key].append(t)
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}


@dataclass
class MaskingChecks(Evaluator):
    """Gradient-masking checks (see the module docstring); ``metrics["failed_checks"]`` counts the failures.

    Settings: ``eps``, ``steps`` (the attack checked, default PGD-40 at 0.03); ``eps_sweep`` (default
    eps/2, eps, 2 eps, 4 eps, 0.5, those <= 1); ``steps_sweep`` (default steps/4, steps, 2.5 steps);
    ``n_examples`` (default 500, taken round-robin over the classes); ``margin_attack`` (the DLR-PGD comparison,
    default on); ``autoattack`` / ``autoattack_n`` (the first ``autoattack_n`` of the chosen examples);
    ``tolerance``, ``zero_threshold``, ``gap_tolerance`` (in percentage points); ``confidence`` (of the gap CIs,
    default 0.95); ``seed`` (None: the run's seed). Where the ``autoattack`` evaluator of the same model ran first
    (same eps, seed, standard version) on a superset of the AutoAttack points, its per-point results are taken
    instead of a second AutoAttack run (see :meth:`shared_keys`)."""

    name = "masking"
    reuses = ("autoattack",)
    long_running = True  # the eps / steps sweeps

    n_examples: int | None = 500
    eps: float = DEFAULT_EPS
    steps: int = 40
    eps_sweep: list[float] | None = None
    steps_sweep: list[int] | None = None
    autoattack: bool = True
    autoattack_n: int | None = None
    tolerance: float = 2.0
    zero_threshold: float = 2.0
    gap_tolerance: float = 10.0
    seed: int | None = None
    margin_attack: bool = True
    confidence: float = 0.95

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
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float)) \
                or not 0.5 <= self.confidence < 1:
            raise UserError(f"masking: confidence must be a number in [0.5, 1), e.g. 0.95, got {self.confidence!r}")
        self.margin_attack, self.confidence = bool(self.margin_attack), float(self.confidence)
        self._num_ops = 0
        self._num_classes = 0
        self._gradient_problem: str | None = None
        self._autoattack_index: torch.Tensor | None = None

    @classmethod
    def headline(cls, result: Mapping[str, Any]) -> list[Measured]:
        checks = masking_checks(result)
        passed = sum(outcome_of(c) is Outcome.PASSED for c in checks)
        failed = [str(c.get("name")) for c in checks if outcome_of(c) is Outcome.FAILED]
        text = outcome_summary(checks)  # "6/8 passed (failed: ...; inconclusive: ..., n ≈ 240 decides)"
        return [Measured(keys.MASKING, "masking checks", text, unit="", stored=False),
                Measured(keys.MASKING_PASSED, "masking passed", passed, unit="", show=False, accumulate=True),
                Measured(keys.MASKING_FAILED, "masking failed", len(failed), unit="", show=False, accumulate=True),
                Measured(keys.MASKING_FAILED_CHECKS, "masking failed checks", failed, unit="", show=False,
                         accumulate=True)]

    # -- which attacks --------------------------------------------------------------------------------------------
    def _specs(self) -> dict[str, tuple[str, float, int | None]]:
        if self._gradient_problem is not None:  # no attack can run: only the failed probe is reported
            return {}
        specs: dict[str, tuple[str, float, int | None]] = {GRADIENT_PART: ("input_gradient", 0.0, None)}
        pairs = {(e, self.steps) for e in self.eps_sweep} | {(self.eps, s) for s in self.steps_sweep}
        specs.update({_part("pgd", e, s): ("pgd", e, s) for e, s in sorted(pairs | {(self.eps, self.steps)})})
        if self.margin_attack and self._num_classes >= 3:
            specs[_part("margin_pgd", self.eps, self.steps)] = ("margin_pgd", self.eps, self.steps)
        if self._num_ops > 0:
            specs[_part("full_head", self.eps, self.steps)] = ("full_head", self.eps, self.steps)
        if self.autoattack:
            specs[_part("autoattack", self.eps)] = ("autoattack", self.eps, None)
        return specs

    def parts(self, dataset: Dataset) -> list[str]:
        return list(self._specs())

    def shared_keys(self, part: str) -> list[tuple]:
        """Its standalone AutoAttack run is offered to the ``autoattack`` evaluator of the same model; it takes
        that evaluator's per-point results on its points instead of attacking again: a standalone run, or the
        union "PGD-``steps`` + AutoAttack" (``pgd_first``), which :meth:`score` then compares with PGD only where
        that is meaningful."""
        if self._specs().get(part, ("",))[0] != "autoattack":
            return []
        seed = int(self.settings["seed"])
        return [autoattack_key(self.eps, "standard", seed, 0), autoattack_key(self.eps, "standard", seed, self.steps)]

    def offered_key(self, part: str, arrays: PartArrays) -> tuple | None:
        keys = self.shared_keys(part)  # its part may hold a union taken over (cached) from an earlier run
        return None if not keys else keys[1] if np.any(arrays.get("broken_by", np.zeros(0)) == 0) else keys[0]

    def part_indices(self, part: str, indices: list[int]) -> list[int]:
        if self._specs().get(part, ("",))[0] == "autoattack" and self._autoattack_index is not None:
            return sorted(set(indices) & set(self._autoattack_index.tolist()))
        return indices

    def classifier(self, model: nn.Module, ctx: EvalContext) -> nn.Module:
        return full_model(model, ctx, self.name)

    def check_model(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        check_full_model(model, dataset, ctx, self.name)

    def prepare(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        super().prepare(model, dataset, ctx)
        # M decides whether the full-head attack runs, i.e. which parts there are
        full = full_model(model, ctx, self.name)
        self._num_ops, self._num_classes = check_full_model(full, dataset, ctx, self.name), ctx.num_classes
        self._gradient_problem = gradient_problem(k_way(full, ctx.num_classes, self._num_ops).eval(),
                                                  dataset[0][0].unsqueeze(0).to(ctx.device))
        self._autoattack_index = None if self.autoattack_n is None else torch.as_tensor(select_examples(
            dataset, min(self.autoattack_n, self.n_examples or self.autoattack_n), "class_balanced"))

    def predict(self, model: nn.Module, batches: Iterator, part: str, ctx: EvalContext) -> PartArrays:
        kind, eps, steps = self._specs()[part]
        seed = int(self.settings["seed"])
        k = ctx.num_classes
        k_model = k_way(model, k, self._num_ops).eval()
        if kind == "input_gradient":
            return predict_input_gradient(k_model, batches)
        if kind == "autoattack":  # the first autoattack_n of the chosen examples
            return predict_autoattack(k_model, _only(batches, self._autoattack_index), eps=eps,
                                      version="standard", seed=seed, batch_size=ctx.batch_size, device=ctx.device)
        if kind == "margin_pgd":
            return predict_margin(k_model, batches, eps=eps, steps=int(steps), seed=seed)
        if kind == "full_head":
            return predict_sound(model, batches, eps=eps, alpha=None, steps=steps, random_start=True, seed=seed,
                                 num_classes=k)
        return predict_sound(k_model, batches, eps=eps, alpha=None, steps=steps, random_start=True, seed=seed)

    # -- the checks ---------------------------------------------------------------------------------------------
    def score(self, arrays: dict[str, PartArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        if self._gradient_problem is not None:
            return self._no_gradient_result()

        def correct(part: str, index: np.ndarray | None = None) -> np.ndarray:
            a = arrays[part]
            keep = slice(None) if index is None else np.isin(a["index"], index)
            return np.asarray(a["y_true"][keep] == a["y_pred"][keep])

        def accuracy(part: str, index: np.ndarray | None = None) -> float:
            a = arrays[part]
            keep = slice(None) if index is None else np.isin(a["index"], index)
            return 100.0 - top1_error(a["y_true"][keep], a["y_pred"][keep])

        tol, conf = self.tolerance, self.confidence
        checks: list[dict[str, Any]] = [{"name": "gradient_reaches_input", "passed": True, "problem": None}]
        skipped: dict[str, str] = {}
        grad = arrays[GRADIENT_PART]
        zero = 100.0 * float(np.mean(grad["grad_l1"] == 0)) if len(grad["index"]) else 0.0
        checks.append({"name": "input_gradient_nonzero", "passed": zero <= tol, "zero_gradient_percent": zero,
                       "median_gradient_l1": float(np.median(grad["grad_l1"])) if len(grad["index"]) else None,
                       "tolerance": tol})
        eps_acc = [accuracy(_part("pgd", e, self.steps)) for e in self.eps_sweep]
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
        steps_acc = [accuracy(_part("pgd", self.eps, s)) for s in self.steps_sweep]
        rise = max_rise(steps_acc)
        checks.append({"name": "steps_sweep_monotone", "passed": rise <= tol, "eps": self.eps,
                       "steps": self.steps_sweep, "robust_accuracy": steps_acc, "max_rise": rise,
                       "tolerance": tol})
        pgd_part = _part("pgd", self.eps, self.steps)
        margin_part = _part("margin_pgd", self.eps, self.steps)
        if margin_part in arrays:
            checks.append(gap_check("ce_attack_not_weaker_than_margin_attack", correct(pgd_part),
                                     correct(margin_part), tol, conf, eps=self.eps, steps=self.steps,
                                     ce_robust_accuracy=accuracy(pgd_part),
                                     margin_robust_accuracy=accuracy(margin_part)))
        else:
            skipped["ce_attack_not_weaker_than_margin_attack"] = (
                "margin_attack is off (margin_attack: false)" if not self.margin_attack
                else f"the margin (DLR) loss needs K >= 3 classes, the data has {ctx.num_classes}")
        aa_part = _part("autoattack", self.eps)
        if aa_part in arrays:
            aa_index = arrays[aa_part]["index"]
            aa_acc, pgd_acc = accuracy(aa_part), accuracy(pgd_part, aa_index)
            numbers = {"eps": self.eps, "pgd_robust_accuracy": pgd_acc, "autoattack_robust_accuracy": aa_acc}
            # taken from an autoattack evaluator with pgd_first: AutoAttack only attacked what PGD left, so it is
            # never weaker than PGD by construction; the gap check then measures what AutoAttack adds to PGD
            union = bool(np.any(arrays[aa_part].get("broken_by", np.zeros(0)) == 0))
            if union:
                numbers["autoattack"] = f"PGD-{self.steps} + AutoAttack (the autoattack evaluator's pgd_first run)"
                skipped["autoattack_not_weaker_than_pgd"] = (
                    "the AutoAttack results are the autoattack evaluator's PGD-then-AutoAttack union (pgd_first), "
                    "not weaker than PGD by construction: run it without pgd_first for this check")
            else:
                checks.append({"name": "autoattack_not_weaker_than_pgd", "passed": aa_acc <= pgd_acc + tol,
                               "n": int(len(aa_index)), **numbers, "tolerance": tol})
            checks.append(gap_check("pgd_close_to_autoattack", correct(pgd_part, aa_index), correct(aa_part),
                                     self.gap_tolerance, conf, **numbers))
        else:
            skipped["autoattack_not_weaker_than_pgd"] = skipped["pgd_close_to_autoattack"] = \
                "autoattack is off (autoattack: false)"
        full_part = _part("full_head", self.eps, self.steps)
        if full_part in arrays:
            k_way_acc, full_acc = accuracy(pgd_part), accuracy(full_part)
            checks.append({"name": "k_way_attack_not_weaker_than_full_head", "passed": k_way_acc <= full_acc + tol,
                           "eps": self.eps, "steps": self.steps, "k_way_robust_accuracy": k_way_acc,
                           "full_head_robust_accuracy": full_acc, "num_ops": self._num_ops, "tolerance": tol})
        else:
            skipped["k_way_attack_not_weaker_than_full_head"] = "the model has no transformation logits (M = 0)"
        n = int(len(arrays[pgd_part]["index"]))
        return self._result(checks, skipped, 100.0 - accuracy(pgd_part),
                            {"split_accuracy": {s: accuracy(s) for s in arrays if s != GRADIENT_PART}}, n)

    def _no_gradient_result(self) -> EvalResult:
        checks = [{"name": "gradient_reaches_input", "passed": False,
                   "problem": f"no gradient reaches the input: {self._gradient_problem}"}]
        others = ["input_gradient_nonzero", "eps_sweep_monotone", "large_eps_near_zero", "steps_sweep_monotone",
                  "ce_attack_not_weaker_than_margin_attack", "autoattack_not_weaker_than_pgd",
                  "pgd_close_to_autoattack", "k_way_attack_not_weaker_than_full_head"]
        reason = "no gradient reaches the input, so no gradient attack can run"
        return self._result(checks, dict.fromkeys(others, reason), math.nan, {}, 0)

    def _result(self, checks: list[dict[str, Any]], skipped: dict[str, str], pgd_error: float,
                details: dict[str, Any], n: int) -> EvalResult:
        for c in checks:
            c["passed"] = bool(c["passed"])
            c.setdefault("outcome", (Outcome.PASSED if c["passed"] else Outcome.FAILED).value)
        failed = [c["name"] for c in checks if outcome_of(c) is Outcome.FAILED]
        inconclusive = [c["name"] for c in checks if outcome_of(c) is Outcome.INCONCLUSIVE]
        return EvalResult(
            evaluator=self.name,
            metrics={keys.FAILED_CHECKS: len(failed), keys.INCONCLUSIVE_CHECKS: len(inconclusive),
                     keys.PASSED_CHECKS: len(checks) - len(failed) - len(inconclusive),
                     keys.PGD_ROBUST_ERROR: pgd_error},
            settings={"attack": f"EarlyStopPGD-{self.steps} (sound: K-way, true labels, pixel space)",
                      "eps_pixel": self.eps},
            protocol=Protocol.SOUND,
            details={"checks": checks, "failed": failed, "inconclusive": inconclusive, "skipped": skipped,
                     **details},
            num_examples=n,
        )
