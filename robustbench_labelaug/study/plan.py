"""A study config expanded into what it trains and evaluates (torch-free).

- a **point** is one arm at one value of its knob sweep (an arm without a sweep has one point): one marker of the
  trade-off figure, one "arm" of the statistics (:mod:`robustbench_labelaug.stats`), named ``trades[trades_beta=3]``;
- a **training** is one ``rbla train`` run: a method (zoo entry) with knob values, trained at one eps with one seed
  index; its name is its folder under ``train/`` and its model's key under ``eval/``
  (``digits_trades.trades_beta-3.eps-0.1.seed-2``). Arms that train the same thing share the run, and a method
  that fine-tunes a hot start (``starts_from``, FRL) names the training of that entry at the same eps and seed
  index as its hot start, trained first (and shared with an arm that trains it too);
- a **cell** is one point at one eps with one seed index: the training it reads and evaluates.

Each arm runs its ``seeds`` seeds at the study eps and its ``scan_seeds`` (default ``seeds``) at each eps of its
``eps_scan``. Seed index ``i`` trains with the recipe's ``--seed`` + ``i`` (``demo.run_train_args``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..zoo import get_entry
from .config import Study, knob_text


@dataclass(frozen=True)
class Point:
    """One arm at one knob value. ``knobs``: every knob of the point ((name, value), config order); ``swept``:
    the arm's swept knob (None without a sweep); ``order``: the value's place in the sweep."""

    arm: str
    knobs: tuple[tuple[str, Any], ...]
    swept: str | None = None
    order: int = 0

    @property
    def value(self) -> Any:
        return dict(self.knobs)[self.swept] if self.swept else None

    @property
    def name(self) -> str:
        return f"{self.arm}[{self.swept}={self.value}]" if self.swept else self.arm


@dataclass(frozen=True)
class Training:
    name: str
    method: str
    knobs: tuple[tuple[str, Any], ...]
    eps: float
    seed_index: int
    hot_start: str | None = None  # the training this one fine-tunes (its last.pth.tar is the initial checkpoint)


@dataclass(frozen=True)
class Cell:
    point: Point
    eps: float
    seed_index: int
    training: str


@dataclass
class Plan:
    """Everything a study trains and evaluates, in a stable order (hot starts before their fine-tunings)."""

    points: list[Point] = field(default_factory=list)
    trainings: dict[str, Training] = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)

    def evaluated(self) -> list[str]:
        """The trainings that are cells (a hot start no arm names is trained, not evaluated), in order."""
        return list(dict.fromkeys(c.training for c in self.cells))

    def cells_of(self, point: Point, eps: float) -> list[Cell]:
        return [c for c in self.cells if c.point == point and c.eps == eps]

    def points_of(self, arm: str) -> list[Point]:
        return [p for p in self.points if p.arm == arm]


def training_name(method: str, knobs: tuple[tuple[str, Any], ...], eps: float, seed_index: int) -> str:
    """``<method>[.<knob>-<value>...].eps-<eps>.seed-<i>``: a training's folder (and model key)."""
    parts = [method, *(f"{k}-{knob_text(v)}" for k, v in knobs), f"eps-{eps:g}", f"seed-{seed_index}"]
    return ".".join(parts)


def arm_points(arm) -> list[Point]:
    """The arm's points: one per value of its swept knob (in the order given), else one."""
    fixed = [(k, v[0] if isinstance(v, list) else v) for k, v in arm.knobs.items()]
    swept = next((k for k, v in arm.knobs.items() if isinstance(v, list) and len(v) > 1), None)
    if swept is None:
        return [Point(arm.name, tuple(fixed))]
    out = []
    for order, value in enumerate(arm.knobs[swept]):
        knobs = tuple((k, value if k == swept else v) for k, v in fixed)
        out.append(Point(arm.name, knobs, swept, order))
    return out


def make_plan(study: Study, fast: bool = False) -> Plan:
    """The study's points, trainings (hot starts included) and cells (``fast``: at most ``fast.seeds`` seeds per
    arm and eps)."""
    plan = Plan()

    def add_training(method: str, knobs: tuple, eps: float, seed_index: int) -> str:
        name = training_name(method, knobs, eps, seed_index)
        if name not in plan.trainings:
            start = _starts_from(method)
            hot = add_training(start, (), eps, seed_index) if start is not None else None
            plan.trainings[name] = Training(name, method, knobs, eps, seed_index, hot)
        return name

    for arm in study.cfg.arms:
        points = arm_points(arm)
        plan.points.extend(points)
        for eps in [study.cfg.eps, *arm.eps_scan]:
            seeds = arm.seeds if eps == study.cfg.eps else (arm.scan_seeds or arm.seeds)
            if fast:
                seeds = min(seeds, study.cfg.fast.seeds)
            for point in points:
                for seed_index in range(seeds):
                    name = add_training(arm.method, point.knobs, eps, seed_index)
                    plan.cells.append(Cell(point, eps, seed_index, name))
    return plan


def _starts_from(method: str) -> str | None:
    return get_entry(method).starts_from


__all__ = ["Cell", "Plan", "Point", "Training", "arm_points", "make_plan", "training_name"]
