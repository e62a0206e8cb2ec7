"""The :class:`Measured` record (one headline number of an evaluator's result) and the one rule that merges the
headlines of a model's results into one value per key (:func:`merge_headlines`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Measured:
    """One headline number of an evaluator's result (RobustBench ``ModelInfo`` style): ``key`` in the
    model_info's ``labelaug.measured`` block (:mod:`~robustbench_labelaug.results.keys`), a human ``label``
    (leaderboard summary, demo), the ``value``, its ``unit`` (``"%"`` for errors, ``""`` for counts and settings)
    and the attack ``protocol`` it was measured under. ``show``: part of the one-line summary; ``stored``: written
    into ``measured`` (display-only values such as class SD, which ``measured["classwise"]`` already references,
    are not); ``accumulate``: several results add up (masking checks); ``fallback``: used only when no result
    gives this key (an attack's clean error when there is no clean evaluator)."""

    key: str
    label: str
    value: Any
    unit: str = "%"
    protocol: str | None = None
    show: bool = True
    stored: bool = True
    accumulate: bool = False
    fallback: bool = False
    precision: str | None = None  # set (by Evaluator.measured) where the forward passes were not fp32

    def text(self) -> str:
        """``label value`` as the summary line prints it (``[bf16]`` after it where not measured in fp32)."""
        value = f"{self.value:.2f}" if isinstance(self.value, float) else f"{self.value}"
        return f"{self.label} {value}" + (f" [{self.precision}]" if self.precision else "")

    def record(self) -> dict[str, Any]:
        """The JSON record stored in ``labelaug.measured.headlines`` (without its ``source``)."""
        out = {"key": self.key, "label": self.label, "value": self.value, "unit": self.unit,
               "protocol": self.protocol, "show": self.show}
        if self.precision:  # a forward pass in bf16/fp16 (opt-in) is named beside its number
            out["precision"] = self.precision
        return out

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> Measured:
        return cls(r["key"], r["label"], r.get("value"), unit=r.get("unit", "%"), protocol=r.get("protocol"),
                   show=bool(r.get("show", True)), precision=r.get("precision"))


@dataclass(frozen=True)
class Declared:
    """What one stored result declares about itself (its evaluator says it; see ``evaluation.declare``): the
    headline numbers, class-wise blocks (role in ``measured.classwise`` -> key in ``result.classwise``), the
    ``measured`` key naming this result as a source, and the threat model's eps where the result defines it
    (``eps_rank``: lower wins, e.g. AutoAttack 0, a sound PGD run 1)."""

    entry_id: str
    headlines: tuple[Measured, ...] = ()
    classwise_refs: Mapping[str, str] = field(default_factory=dict)
    source_key: str | None = None
    eps: float | None = None
    eps_rank: int = 99


@dataclass(frozen=True)
class Merged:
    """A key's headline after :func:`merge_headlines`: the value and the id of the result that gave it."""

    measured: Measured
    source: str

    @property
    def from_fallback(self) -> bool:
        return self.measured.fallback


def merge_headlines(pairs: Iterable[tuple[str, Measured]]) -> dict[str, Merged]:
    """THE headline-merge rule, key -> :class:`Merged`, over ``(result id, Measured)`` in config order: the first
    result giving a key wins; ``accumulate`` values are summed (the source is the first); ``fallback`` values count
    only where no result gives the key firmly. Values None are skipped. Keys in the order first declared."""
    firm: dict[str, Merged] = {}
    fallback: dict[str, Merged] = {}
    order: dict[str, None] = {}
    for source, h in pairs:
        if h.value is None:
            continue
        order.setdefault(h.key)
        if h.fallback:
            fallback.setdefault(h.key, Merged(h, source))
        elif h.accumulate and h.key in firm:
            first = firm[h.key]
            firm[h.key] = Merged(replace(first.measured, value=first.measured.value + h.value), first.source)
        else:
            firm.setdefault(h.key, Merged(h, source))
    return {k: firm.get(k) or fallback[k] for k in order}


__all__ = ["Declared", "Measured", "Merged", "merge_headlines"]
