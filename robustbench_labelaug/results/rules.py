"""Value rules, one definition each: the range of every number a user gives (eps, alpha, delta, steps, num_ops,
probabilities) and the rules across fields (``adv_plus`` needs ``num_ops >= 1``; label augmentation needs an
adversarial mode).

Two forms per rule, both from the same definition:

- ``<x>_problem(value) -> str | None``: what is wrong (``"must be a number in (0, 1], got 3"``), for validators
  that collect or prefix problems themselves (zoo entries, model_info files);
- ``check_<x>(owner, value, name=..., fix=...) -> value``: raises :class:`~robustbench_labelaug.errors.UserError`
  with one line ``"<owner>: <name> must be ..., got <value>: <fix>"`` and returns the checked value. ``owner``
  (an evaluator, ``"config x.yaml: models[0]"``, None) says where the value came from, ``name`` how the user
  spelled it (``eps``, ``--adv-eps``), ``fix`` how to correct it.

``checks.py`` re-exports the ``check_*`` functions under its names; the hook, ``rbla train``, ``rbla timm-train``,
the attacks, the evaluators, eval configs, zoo entries and model_info files all apply these."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from .vocab import (
    ADV_PLUS,
    ADVERSARIAL_MODES,
    ATTACK_MODES,
    DEFAULT_LA_P,
    LA_ADVERSARIAL,
    LA_AUTHORS,
    LA_PROTOCOLS,
    MODES,
    STD,
    AttackMode,
    default_protocol,
)


def is_number(value: Any) -> bool:
    """A finite int or float (``bool`` is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Interval:
    """A range of numbers, ``(0, 1]`` and the like."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool

    def __contains__(self, value: Any) -> bool:
        if not is_number(value):
            return False
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below

    def __str__(self) -> str:
        return f"{'[' if self.low_closed else '('}{self.low:g}, {self.high:g}{']' if self.high_closed else ')'}"


# -- the ranges -------------------------------------------------------------------------------------------------
EPS_RANGE = Interval(0.0, 1.0, low_closed=False, high_closed=True)  # an L-inf radius or step, [0,1] pixel units
DELTA_RANGE = Interval(0.0, 1.0, low_closed=True, high_closed=False)  # label-augmentation weight (0: targets = onehot)
PROBABILITY_RANGE = Interval(0.0, 1.0, low_closed=True, high_closed=True)
MIN_STEPS = 1
MIN_NUM_OPS = 0
MIN_NUM_OPS_ADV_PLUS = 1
EPS_UNITS = "[0,1] pixel units, e.g. 0.03 or 0.0313725 for 8/255"

# -- the defaults -------------------------------------------------------------------------------------------------
# Where a signature needs an eps or a delta and the caller gives none: the paper's training and evaluation eps
# (L-inf, [0,1] pixel units) and its label-augmentation weight. A dataset's threat-model eps (CIFAR-10 8/255, ...)
# is its registry entry's (``data.registry.DatasetSpec.default_eps``), not this.
DEFAULT_EPS = 0.03
DEFAULT_DELTA = 0.03


def default_alpha(eps: float, steps: int) -> float:
    """The PGD step size when none is given: ``2.5 * eps / steps`` (Madry et al.; torchattacks' examples)."""
    return 2.5 * float(eps) / int(steps)


# -- problems (None: fine) --------------------------------------------------------------------------------------
def in_range_problem(value: Any, interval: Interval, units: str = "") -> str | None:
    if value in interval:
        return None
    return f"must be a number in {interval}{f' ({units})' if units else ''}, got {value!r}"


def int_problem(value: Any, minimum: int) -> str | None:
    return None if is_int(value) and value >= minimum else f"must be an integer >= {minimum}, got {value!r}"


def eps_problem(value: Any) -> str | None:
    return in_range_problem(value, EPS_RANGE, EPS_UNITS)


def delta_problem(value: Any) -> str | None:
    return in_range_problem(value, DELTA_RANGE)


def steps_problem(value: Any) -> str | None:
    return int_problem(value, MIN_STEPS)


def num_ops_problem(value: Any) -> str | None:
    return int_problem(value, MIN_NUM_OPS)


def choice_problem(value: Any, choices: tuple[str, ...]) -> str | None:
    return None if value in choices else f"must be one of {', '.join(choices)}, got {value!r}"


def adv_plus_problem(mode: str, num_ops: Any, name: str = "num_ops") -> str | None:
    """THE cross-field rule of the training modes: ``adv_plus`` needs ``num_ops >= 1`` (M extra outputs)."""
    if mode == ADV_PLUS and (not is_int(num_ops) or num_ops < MIN_NUM_OPS_ADV_PLUS):
        return f"adv_plus needs {name} >= {MIN_NUM_OPS_ADV_PLUS} (M extra outputs), got {num_ops!r}"
    return None


def label_aug_problem(mode: str, num_ops: Any, delta: Any = 0.0) -> str | None:
    """A model record's (zoo entry's) training fields: :func:`adv_plus_problem`, and ``adv_plus`` states a delta
    while the other modes state neither extra outputs nor a delta (``num_ops`` 0, no delta)."""
    if mode == ADV_PLUS:
        if delta is None:
            return f"adv_plus needs a delta (label-augmentation weight) in {DELTA_RANGE}"
        return adv_plus_problem(mode, num_ops)
    if num_ops not in (0, None) or delta not in (0, 0.0, None):
        return f"{mode} needs num_ops 0 and no delta (label augmentation is adv_plus only), got {num_ops!r}, {delta!r}"
    return None


# -- checks (UserError) -----------------------------------------------------------------------------------------
def _prefix(owner: str | None) -> str:
    return f"{owner}: " if owner else ""


def fail(owner: str | None, name: str, problem: str, fix: str = "") -> None:
    """Raise the one-line :class:`UserError` of a rule: ``"<owner>: <name> <problem>: <fix>"``."""
    raise UserError(f"{_prefix(owner)}{name} {problem}" + (f": {fix}" if fix else ""))


def _checked(owner: str | None, name: str, problem: str | None, fix: str) -> None:
    if problem is not None:
        fail(owner, name, problem, fix)


def check_eps(owner: str | None, eps: Any, name: str = "eps", fix: str = "") -> float:
    """An L-inf radius (or a step size) in (0, 1], [0,1] pixel units."""
    _checked(owner, name, eps_problem(eps), fix)
    return float(eps)


def check_alpha(owner: str | None, alpha: Any, name: str = "alpha", fix: str = "omit it for 2.5*eps/steps"
                ) -> float | None:
    """A PGD step size in (0, 1], or None (:func:`default_alpha`)."""
    return None if alpha is None else check_eps(owner, alpha, name, fix)


def check_steps(owner: str | None, steps: Any, name: str = "steps", fix: str = "") -> int:
    _checked(owner, name, steps_problem(steps), fix)
    return int(steps)


def check_delta(owner: str | None, delta: Any, name: str = "delta", fix: str = f"e.g. {DEFAULT_DELTA}") -> float:
    """The label-augmentation weight delta, in [0, 1)."""
    _checked(owner, name, delta_problem(delta), fix)
    return float(delta)


def check_num_ops(owner: str | None, num_ops: Any, name: str = "num_ops", fix: str = "") -> int:
    _checked(owner, name, num_ops_problem(num_ops), fix)
    return int(num_ops)


def check_probability(owner: str | None, value: Any, name: str, fix: str = "") -> float:
    _checked(owner, name, in_range_problem(value, PROBABILITY_RANGE), fix)
    return float(value)


def check_mode(owner: str | None, mode: Any, name: str = "mode", choices: tuple[str, ...] = MODES) -> str:
    _checked(owner, name, choice_problem(mode, choices), "")
    return mode


# Python names -> how rbla train / rbla timm-train spell them (the ``names`` of check_training for the CLI).
TRAINING_FLAGS = {"mode": "--adv-mode", "eps": "--adv-eps", "steps": "--adv-steps", "alpha": "--adv-alpha",
                  "delta": "--la-delta", "num_ops": "--la-ops", "adv_prob": "--adv-prob",
                  "attack_mode": "--adv-attack-mode", "label_aug": "--label-aug", "protocol": "--la-protocol",
                  "la_p": "--la-p", "train_clean": "--adv-train-clean"}


def training_mode(mode: str, label_aug: bool = False, names: Mapping[str, str] | None = None) -> str:
    """The training mode, ``adv_plus`` where label augmentation is switched on (which needs an adversarial mode)."""
    if not label_aug:
        return mode
    if mode not in ADVERSARIAL_MODES:
        n = names or {}
        raise UserError(f"{n.get('label_aug', 'label_aug')} needs adversarial training: use "
                        f"{n.get('mode', 'mode')} adv (or adv_plus), not {mode or STD}")
    return ADV_PLUS


def protocol_problem(mode: str, protocol: Any, adv_prob: Any = 1.0, train_clean: Any = False,
                     names: Mapping[str, str] | None = None) -> str | None:
    """The label-augmentation protocol's rules: one of :data:`LA_PROTOCOLS`, only for the hook's adversarial modes
    (adv, adv_plus), and ``authors`` (which draws each part with its own ``la_p``) without the ``adversarial``
    protocol's batch knobs (``adv_prob`` < 1, ``train_clean``)."""
    n = names or {}
    if protocol is not None and protocol not in LA_PROTOCOLS:
        return f"{n.get('protocol', 'protocol')} {choice_problem(protocol, LA_PROTOCOLS)}"
    if protocol is not None and default_protocol(mode) is None:
        return (f"{n.get('protocol', 'protocol')} {protocol} applies to adv and adv_plus only (mode {mode} has no "
                "clean/adversarial mix of its own): leave it out")
    protocol = default_protocol(mode) if protocol is None else protocol
    if protocol == LA_AUTHORS and (train_clean or (is_number(adv_prob) and adv_prob != 1.0)):
        which = n.get("train_clean", "train_clean") if train_clean else n.get("adv_prob", "adv_prob")
        return (f"{which} belongs to the {LA_ADVERSARIAL} protocol; {n.get('protocol', 'protocol')} {LA_AUTHORS} "
                f"(adv_plus's default) draws the clean and the adversarial part each with {n.get('la_p', 'la_p')}: "
                f"pass {n.get('protocol', 'protocol')} {LA_ADVERSARIAL} to keep it, or drop it")
    return None


def check_training(owner: str | None = None, *, mode: Any, eps: Any, steps: Any, alpha: Any = None,
                   delta: Any = 0.0, num_ops: Any = 0, adv_prob: Any = 1.0, attack_mode: Any = AttackMode.EVAL,
                   protocol: Any = None, la_p: Any = DEFAULT_LA_P, train_clean: Any = False,
                   names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every rule of an adversarial-training run's settings, in one place (the hook, ``rbla train`` and
    ``rbla timm-train`` call it; ``names``: how the user spelled each setting, e.g. :data:`TRAINING_FLAGS`).
    Returns the checked values, ``alpha`` resolved with :func:`default_alpha` and ``protocol`` (None: the mode's
    default, :func:`~.vocab.default_protocol`) resolved."""
    n = {**{k: k.replace("attack_mode", "attack mode") for k in TRAINING_FLAGS}, **(names or {})}
    flags = names is not None
    check_mode(owner, mode, n["mode"])
    _checked(owner, n["attack_mode"], choice_problem(attack_mode, ATTACK_MODES), "")
    eps = check_eps(owner, eps, n["eps"], f"e.g. {n['eps']} {DEFAULT_EPS} (8/255 = 0.0314)" if flags else "")
    steps = check_steps(owner, steps, n["steps"], f"e.g. {n['steps']} 10" if flags else "")
    alpha = check_alpha(owner, alpha, n["alpha"])
    delta = check_delta(owner, delta, n["delta"], f"e.g. {n['delta']} {DEFAULT_DELTA}")
    num_ops = check_num_ops(owner, num_ops, n["num_ops"])
    problem = adv_plus_problem(mode, num_ops, n["num_ops"])
    if problem:
        raise UserError(f"{_prefix(owner)}{problem}: e.g. {n['num_ops']} 1")
    adv_prob = check_probability(owner, adv_prob, n["adv_prob"])
    la_p = check_probability(owner, la_p, n["la_p"], "e.g. 0.7 (the authors')")
    problem = protocol_problem(mode, protocol, adv_prob, train_clean, n)
    if problem:
        raise UserError(f"{_prefix(owner)}{problem}")
    protocol = default_protocol(mode) if protocol is None else protocol
    return {"mode": mode, "eps": eps, "steps": steps, "alpha": default_alpha(eps, steps) if alpha is None else alpha,
            "delta": delta, "num_ops": num_ops, "adv_prob": adv_prob, "attack_mode": attack_mode,
            "protocol": protocol, "la_p": la_p}


__all__ = ["DEFAULT_DELTA", "DEFAULT_EPS", "DELTA_RANGE", "EPS_RANGE", "EPS_UNITS", "Interval", "MIN_NUM_OPS", "MIN_NUM_OPS_ADV_PLUS", "MIN_STEPS",
           "PROBABILITY_RANGE", "TRAINING_FLAGS", "adv_plus_problem", "check_alpha", "check_delta", "check_eps", "check_mode",
           "check_num_ops", "check_probability", "check_steps", "check_training", "choice_problem",
           "default_alpha", "delta_problem", "eps_problem", "fail", "in_range_problem", "int_problem", "is_int",
           "is_number", "label_aug_problem", "num_ops_problem", "protocol_problem", "steps_problem", "training_mode"]
