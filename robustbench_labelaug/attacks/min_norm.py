"""Minimal-norm L-inf attacks: each example's robust radius, the smallest L-inf perturbation found that changes
its prediction (an upper bound on the true minimal radius: an attack can miss a closer adversarial example).

Two maintained attacks, run as their libraries ship them:

- FAB (Croce & Hein, ICML 2020), from pyautoattack (the code AutoAttack and RobustBench run):
  ``FABAttack_PT.attack_single_run``, its minimal-norm search, untargeted (one gradient per class and step) and,
  with ``targets`` > 0, targeted at each of the ``targets`` highest-scoring other classes (FAB-T, one gradient
  per step), no random restart (deterministic: an example's radius does not depend on its batch);
- FMN (Pintor et al., NeurIPS 2021), from adv-lib (``adv_lib.attacks.fmn``, ``norm=inf``; an optional
  dependency: ``pip install adv-lib``).

Whatever an attack returns is *verified* here: the candidate is clipped to [0, 1], the model is run on it, and it
counts only if it is misclassified; its radius is its L-inf distance, else infinity (not broken within the
search). :func:`shrink_to_boundary` then bisects along the segment from the clean image to each verified
candidate (keeping only misclassified points), which can only lower a radius. A misclassified clean image has
radius 0. These are plain functions, not ``torchattacks.Attack`` classes (they return radii, not images).
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from ..errors import UserError
from ..results.vocab import ThreatModel

MIN_NORM_ATTACKS = ("fab", "fmn", "both")


def linf_distance(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    return (x_adv - x).flatten(1).abs().amax(1)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


@torch.no_grad()
def verified_radii(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(radius, x_adv)``: each candidate clipped to [0, 1]; its L-inf distance where the model misclassifies
    it, infinity where it does not (then ``x_adv`` is the clean image)."""
    x_adv = x_adv.clamp(0.0, 1.0)
    fooled = predict(model, x_adv) != y
    radius = torch.where(fooled, linf_distance(x, x_adv), torch.full_like(y, float("inf"), dtype=x.dtype))
    return radius, torch.where(fooled.view(-1, *[1] * (x.dim() - 1)), x_adv, x)


@torch.no_grad()
def shrink_to_boundary(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
                       radius: torch.Tensor, steps: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Bisection on ``t`` in [0, 1] along ``x + t (x_adv - x)`` for each example with a finite ``radius``: the
    smallest ``t`` found at which the model still misclassifies (``steps`` halvings). Returns the new
    ``(radius, x_adv)``, never larger than the given ones."""
    found = torch.isfinite(radius)
    if steps <= 0 or not found.any():
        return radius, x_adv
    shape = (-1, *[1] * (x.dim() - 1))
    lo, hi = torch.zeros_like(radius), torch.ones_like(radius)
    delta = x_adv - x
    for _ in range(steps):
        mid = (lo + hi) / 2
        fooled = predict(model, x + mid.view(shape) * delta) != y
        hi = torch.where(fooled & found, mid, hi)
        lo = torch.where(fooled | ~found, lo, mid)
    closer = x + hi.view(shape) * delta
    new_radius, new_adv = verified_radii(model, x, y, closer)
    better = found & (new_radius < radius)
    return torch.where(better, new_radius, radius), torch.where(better.view(shape), new_adv, x_adv)


def _fab(model: nn.Module, steps: int, device: torch.device, targeted: bool, targets: int):
    import pyautoattack

    return pyautoattack.fab_pt.FABAttack_PT(model, norm=ThreatModel.LINF.value, n_restarts=1, n_iter=steps, eps=1.0,
                                            targeted=targeted, n_target_classes=max(1, targets), device=device)


def fab_candidates(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int = 100, targets: int = 0
                   ) -> list[torch.Tensor]:
    """FAB's minimal-norm candidates: untargeted, then targeted at each of the ``targets`` highest-scoring other
    classes (each as returned: the clean image where FAB found nothing)."""
    out = []
    with contextlib.redirect_stdout(io.StringIO()):  # FAB prints nothing unless verbose; keep it that way
        attack = _fab(model, steps, x.device, False, targets)
        out.append(attack.attack_single_run(x, y, use_rand_start=False, is_targeted=False).detach())
        if targets > 0:
            attack = _fab(model, steps, x.device, True, targets)
            for target in range(2, targets + 2):
                attack.target_class = target
                out.append(attack.attack_single_run(x, y, use_rand_start=False, is_targeted=True).detach())
    return out


def fmn_candidates(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int = 100) -> list[torch.Tensor]:
    """adv-lib's FMN (L-inf) candidate (the clean image where it found nothing)."""
    try:
        from adv_lib.attacks import fmn
    except ImportError:
        raise UserError("the fmn attack needs adv-lib: pip install adv-lib (or use attack: fab)") from None
    with torch.enable_grad():
        return [fmn(model, x, y, norm=float("inf"), steps=steps).detach()]


def minimal_radii(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, attack: str = "fab", steps: int = 100,
                  targets: int = 0, refine_steps: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """``(radius, x_adv)`` per example: 0 where the clean image is misclassified; otherwise the smallest verified
    L-inf radius over the chosen attack's candidates (``fab``, ``fmn`` or ``both``: the per-example minimum),
    after :func:`shrink_to_boundary`; infinity where no candidate is misclassified."""
    if attack not in MIN_NORM_ATTACKS:
        raise UserError(f"unknown minimal-norm attack {attack!r}: use one of {', '.join(MIN_NORM_ATTACKS)}")
    shape = (-1, *[1] * (x.dim() - 1))
    clean_ok = predict(model, x) == y
    radius = torch.where(clean_ok, torch.full_like(y, float("inf"), dtype=x.dtype), torch.zeros_like(y, dtype=x.dtype))
    best = x.clone()
    rows = clean_ok.nonzero().squeeze(1)
    if rows.numel() == 0:
        return radius, best
    xs, ys = x[rows], y[rows]
    candidates = []
    if attack in ("fab", "both"):
        candidates += fab_candidates(model, xs, ys, steps=steps, targets=targets)
    if attack in ("fmn", "both"):
        candidates += fmn_candidates(model, xs, ys, steps=steps)
    r_best = torch.full((rows.numel(),), float("inf"), dtype=x.dtype, device=x.device)
    a_best = xs.clone()
    for cand in candidates:
        r, a = verified_radii(model, xs, ys, cand)
        r, a = shrink_to_boundary(model, xs, ys, a, r, refine_steps)
        better = r < r_best
        r_best = torch.where(better, r, r_best)
        a_best = torch.where(better.view(shape), a, a_best)
    radius[rows] = r_best
    best[rows] = a_best
    return radius, best


__all__ = ["MIN_NORM_ATTACKS", "fab_candidates", "fmn_candidates", "linf_distance", "minimal_radii",
           "shrink_to_boundary", "verified_radii"]
