"""The evaluator interface: settings, predict per part, score with pure functions, declare the headlines.

An evaluator runs a K-way classifier (inputs in [0,1], normalisation inside the model) over a dataset. Its work is
cut into *parts* (``"all"``, or e.g. ``"gaussian_noise/3"``); each part yields per-sample arrays (``index``,
``y_true``, ``y_pred``, ...); ``score`` then turns all parts' arrays into an :class:`EvalResult` with
:mod:`robustbench_labelaug.scoring`. Where the parts are kept (the store's part cache in ``ctx.out_dir``, so a
re-run skips finished parts), which are shared between evaluators and how they are sharded over torchrun ranks is
:mod:`.parts`'s (:meth:`Evaluator.run` hands over to it).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .. import distributed as dist_utils
from ..checks import check_choice, check_fields, check_positive_int
from ..data import get_dataset_spec
from ..errors import UserError
from ..fileio import atomic_write_json, jsonable  # noqa: F401  (re-exported)
from ..models.classifier import ImageClassifier, KWayClassifier, k_way, unwrap_model
from ..results import keys
from ..results.measured import Measured  # noqa: F401  (re-exported: evaluators declare their headlines with it)
from ..results.vocab import FP32, PRECISIONS, torch_dtype  # noqa: F401  (re-exported)
from ..scoring import classwise_error, classwise_summary
from .parts import IndexedSubset, PartArrays, autocast, run_parts  # noqa: F401  (re-exported)
from .selection import (  # noqa: F401  (re-exported)
    SELECTIONS,
    class_interleaved,
    select_examples,
    uncovered_classes,
    warn_uncovered_classes,
)


@dataclass
class EvalContext:
    """Where and how an evaluator runs. ``num_classes`` (K) may be left out where the data tells it: the
    registered ``dataset`` (data/registry.py), else the dataset's ``classes`` (see :meth:`resolve_num_classes`)."""

    num_classes: int | None = None
    out_dir: Path | None = None  # the part cache (the store's cache/<id>/; store.PartCache); None: nothing written
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 64
    num_workers: int = 0
    progress: bool = True
    seed: int = 0
    dataset: str | None = None  # the registered dataset's name (data/registry.py), where known
    # Shared between evaluators (the runner passes the same dicts to all of them; None: nothing shared).
    # ``predictions``: one model's per-sample results that other evaluators can take (see Evaluator.shared_keys:
    # top-1 predictions per precision, so ReaL and ImageNet-X reuse the clean pass; an AutoAttack run, which the
    # masking checks reuse), one dict per model. ``checked``: data checks already passed in this run (e.g. an
    # ImageNet-C folder), so each is done once per run, not per model (one dict per run).
    predictions: dict | None = field(default=None, repr=False)
    checked: dict | None = field(default=None, repr=False)
    decode: str = "cpu"  # "gpu": folder images decoded on ``device`` (data/device_decode.py, runtime.decode)

    def __post_init__(self) -> None:
        if self.out_dir is not None:
            self.out_dir = Path(self.out_dir)
        self.device = torch.device(self.device)

    def resolve_num_classes(self, dataset: Dataset) -> int:
        """K: as given, else the registered dataset's (``self.dataset``), else ``len(dataset.classes)``;
        :class:`UserError` when nothing tells it. Sets ``num_classes``."""
        if self.num_classes is None:
            k = None
            if self.dataset is not None:
                spec = get_dataset_spec(self.dataset)
                if not callable(spec.num_classes):
                    k = int(spec.num_classes)
            base = getattr(dataset, "dataset", dataset)  # a subset's dataset
            if k is None and getattr(base, "classes", None):
                k = len(base.classes)
            if k is None:
                raise UserError("EvalContext: the number of classes K is not known for this dataset: pass "
                                "EvalContext(num_classes=K) or dataset=<registered name>")
            self.num_classes = k
        return int(self.num_classes)


@dataclass
class EvalResult:
    """One evaluator's result, JSON-serialisable. Errors are in percent.

    ``metrics``: headline numbers (e.g. ``error``, ``robust_error``, ``mce``); ``classwise``: per-class errors and
    their summary, keyed by what was measured (``clean``, ``pgd``, ``autoattack``, ...); ``protocol``: the attack
    protocol (``sound`` or ``paper``) where one applies; ``details``: evaluator-specific tables.

    It reads like its stored form: ``result["metrics"]`` and ``result.get("settings")`` work on the object as on
    :meth:`to_dict`'s dict, so :meth:`Evaluator.headline` takes either."""

    evaluator: str
    metrics: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)
    classwise: dict[str, Any] = field(default_factory=dict)
    protocol: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    num_examples: int = 0

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in {f.name for f in fields(self)} else default

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def classwise_block(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, seed: int = 0) -> dict[str, Any]:
    """Per-class error (%), the number of examples of each class (``n``: what per-class CIs need) and the
    summary (mean, population SD, worst/best class, bootstrap CIs)."""
    counts = np.bincount(np.asarray(y_true, dtype=np.int64).ravel(), minlength=num_classes)[:num_classes]
    return {keys.ERROR: classwise_error(y_true, y_pred, num_classes).tolist(), keys.CLASS_COUNTS: counts.tolist(),
            keys.SUMMARY: classwise_summary(y_true, y_pred, num_classes, seed=seed)}


def once_per_run(ctx: EvalContext, key: Any, fn, *args):
    """``fn(*args)`` run on rank 0 only (its result, or its UserError, broadcast to every rank), and only once per
    ``ctx.checked`` (the runner's per-run dict) for the same ``key``: a data check done once per run, not per
    model and rank."""
    if ctx.checked is not None and key in ctx.checked:
        return ctx.checked[key]
    result = dist_utils.main_decides(fn, *args)
    if ctx.checked is not None:
        ctx.checked[key] = result
    return result


def attack_classwise_key(result: Mapping[str, Any], default: str) -> str:
    """The key of an attack result's class-wise block (its first one other than ``clean``; older results
    used e.g. ``pgd40``), else ``default``."""
    found = [k for k in (result.get("classwise") or {}) if k != keys.CLASSWISE_CLEAN]
    return found[0] if found else default


def classwise_sd(result: Mapping[str, Any], key: str, stat: str = keys.SD) -> float | None:
    """A summary statistic (default: the population SD) of the per-class errors stored under
    ``result["classwise"][key]``."""
    return ((result.get("classwise") or {}).get(key) or {}).get(keys.SUMMARY, {}).get(stat)


@dataclass
class Evaluator(ABC):
    """One evaluation. Subclasses are dataclasses: each field is a setting, declared once with its type and
    default (checked against the annotation on construction, then by :meth:`validate`). They set ``name``,
    implement :meth:`predict`, :meth:`score` and :meth:`headline`, and may override :meth:`prepare` (per-run
    set-up before any part is predicted), :meth:`parts` / :meth:`part_dataset` (e.g. one part per corruption
    and severity). :meth:`run` is the same for every evaluator.

    ``settings`` (the fields' JSON-able values; a field with ``metadata={"fingerprint": False}`` is left out) are
    stored with every cached part (:mod:`.parts`, the store): a cache made with other settings is refused rather
    than mixed in."""

    name: ClassVar[str]
    source_key: ClassVar[str | None] = None  # measured[source_key] = the config id of the result that gave it
    # True: part "all" holds top-1 predictions of the clean images (index, y_true, y_pred), shared through
    # ctx.predictions with the other such evaluators of the same model (clean, ReaL, ImageNet-X); see shared_keys
    shares_predictions: ClassVar[bool] = False
    # evaluators whose per-sample results this one can take instead of computing them (shared_keys): a runner
    # that divides the work per evaluator (rbla demo, rbla evaluate --jobs) keeps these together
    reuses: ClassVar[tuple[str, ...]] = ()
    # a scheduling hint for runners that divide the work (rbla demo, rbla evaluate --jobs): these start first
    long_running: ClassVar[bool] = False
    # settings that replace the configured ones for a model declared stochastic (AutoAttack: its rand version)
    stochastic_settings: ClassVar[dict[str, Any]] = {}
    # Optional settings, declared here with the value an evaluator without that setting has; an evaluator that
    # has one declares it again as a field (e.g. ``selection: str = "robustbench"``), with its own default.
    selection: ClassVar[str] = "class_balanced"  # how n_examples are chosen (evaluation/selection.py)
    precision: ClassVar[str] = FP32             # the forward passes' precision (fp32 / bf16 / fp16)
    seed: ClassVar[int | None] = None           # None: the run's seed (resolved in prepare)
    n_examples: int | None = None

    def __post_init__(self) -> None:
        check_fields(self, self.name)
        self.n_examples = check_positive_int(self.name, "n_examples", self.n_examples, allow_none=True)
        for f in fields(self):  # a field declaring its choices: metadata={"choices": (...)}
            if "choices" in f.metadata:
                check_choice(self.name, f.name, getattr(self, f.name), tuple(f.metadata["choices"]))
        self.validate()
        self.settings: dict[str, Any] = self.fingerprinted(
            {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("fingerprint", True)})
        self.resolve()

    # -- to override -------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check (and normalise) the settings' values; raise :class:`UserError` naming the bad one."""
        return None

    def fingerprinted(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The settings the results depend on (stored with every cached part, in the result); default: every
        field without ``metadata={"fingerprint": False}``. Override where that depends on other settings."""
        return settings

    def resolve(self) -> None:
        """After the settings are recorded: values derived from them that are not settings themselves (e.g. a
        default step size); runs on construction."""
        return None

    def prepare(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        """Per-run set-up before anything is predicted (e.g. refuse a bad folder, read the model's M). The
        default resolves a ``seed`` setting left as None to the run's seed (part of the cache fingerprint)."""
        if "seed" in self.settings and self.seed is None:
            self.settings["seed"] = ctx.seed

    def finish(self) -> None:
        """After every run, also a failed one: free what :meth:`prepare` held."""
        return None

    @classmethod
    def headline(cls, result: Mapping[str, Any] | EvalResult) -> list[Measured]:
        """The headline numbers of one of this evaluator's results: the :class:`EvalResult` itself or its
        :meth:`EvalResult.to_dict` (as stored); both read alike (``result["metrics"]``, ``result.get(...)``)."""
        return []

    @classmethod
    def measured(cls, result: Mapping[str, Any] | EvalResult) -> list[Measured]:
        """:meth:`headline`, each record naming the result's precision where it was not fp32 (what every
        renderer reads)."""
        precision = (result.get("settings") or {}).get("precision")
        found = cls.headline(result)
        if precision in (None, FP32):
            return found
        return [m if m.precision else replace(m, precision=precision) for m in found]

    @classmethod
    def threat_eps(cls, result: Mapping[str, Any]) -> tuple[float | None, int]:
        """``(eps, rank)``: the threat model's eps where this result defines it (a model_info's ``eps`` is the
        lowest-ranked result's), else ``(None, 99)``."""
        return None, 99

    @classmethod
    def classwise_refs(cls, result: Mapping[str, Any]) -> dict[str, str]:
        """Role in ``measured["classwise"]`` -> key in ``result["classwise"]`` (e.g. ``{"pgd": "pgd"}``)."""
        return {}

    def parts(self, dataset: Dataset) -> list[str]:
        return ["all"]

    def part_dataset(self, dataset: Dataset, part: str) -> Dataset:
        return dataset

    @abstractmethod
    def predict(self, model: nn.Module, batches: Iterator, part: str, ctx: EvalContext) -> PartArrays:
        """Per-sample arrays for this rank's share of ``part``. ``batches`` yields ``(x, y, index)`` on
        ``ctx.device``; the result must hold ``index`` plus whatever :meth:`score` needs."""

    @abstractmethod
    def score(self, arrays: dict[str, PartArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        """Metrics from every part's arrays (each sorted by ``index``)."""

    # -- the template --------------------------------------------------------------------------------------------
    def classifier(self, model: nn.Module, ctx: EvalContext) -> nn.Module:
        """The K-way classifier evaluated, in eval mode, on ``ctx.device``: the first K logits of a model of
        this package (which knows its K and M); any other model is taken as it is and must output K logits."""
        inner = unwrap_model(model)
        if isinstance(inner, (ImageClassifier, KWayClassifier)):
            if inner.num_classes != ctx.num_classes:
                raise UserError(f"{self.name}: the model has K={inner.num_classes} classes but the data has "
                                f"{ctx.num_classes}: evaluate it on its own dataset")
            inner = k_way(inner)
        return inner.to(ctx.device).eval()

    def check_model(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        x = dataset[0][0].unsqueeze(0).to(ctx.device)
        # deferred: torch (kept out of the CLI's start)
        from ..modelcheck import check_input_channels, check_model_sees

        check_input_channels(model, x, self.name + ": the model")  # before the forward pass broadcasts it
        with torch.no_grad():
            logits = model(x)
        check_model_sees(model, x, logits, self.name + ": the model")  # finite weights and outputs
        width = logits.shape[-1]
        if width != ctx.num_classes:
            raise UserError(f"{self.name}: the model outputs {width} logits but the data has K={ctx.num_classes} "
                            "classes: evaluate the K-way classifier (robustbench_labelaug.k_way(model, K)) "
                            "or pass the right num_classes")

    def example_indices(self, dataset: Dataset) -> list[int]:
        """The examples evaluated, in dataset order: all of them, or ``n_examples`` chosen by ``selection``
        (see :func:`select_examples`)."""
        return select_examples(dataset, self.n_examples, self.selection)

    def run(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> EvalResult:
        """Evaluate ``model`` on ``dataset``: :meth:`prepare`, then :func:`.parts.run_parts` (every part not
        cached in ``ctx.out_dir`` or shared by another evaluator is computed, sharded over torchrun ranks; then
        all are scored), then :meth:`finish`. Evaluators do not override it."""
        ctx.resolve_num_classes(dataset)
        self.prepare(model, dataset, ctx)
        try:
            return run_parts(self, model, dataset, ctx)
        finally:
            self.finish()

    @property
    def precision_name(self) -> str:
        """The forward passes' precision: the ``precision`` setting where the evaluator has one, else fp32."""
        return self.precision

    # -- per-sample results shared between the evaluators of one model (ctx.predictions) ---------------------------
    def shared_keys(self, part: str) -> list[tuple]:
        """What ``part``'s arrays are, as keys of ``ctx.predictions``: the first is where this evaluator's arrays
        are offered to the others, the rest are what it also accepts from them. Default: with
        ``shares_predictions``, part ``all`` is the top-1 predictions at this precision; otherwise nothing."""
        return [("top1", self.precision_name)] if self.shares_predictions and part == "all" else []

    def part_indices(self, part: str, indices: list[int]) -> list[int]:
        """The examples ``part`` holds (default: all of :meth:`example_indices`)."""
        return indices

    def offered_key(self, part: str, arrays: PartArrays) -> tuple | None:
        """The key under which ``part``'s arrays are offered to the other evaluators (default: the first of
        :meth:`shared_keys`; None: not offered)."""
        keys = self.shared_keys(part)
        return keys[0] if keys else None


def to_numpy(*tensors: torch.Tensor) -> list[np.ndarray]:
    return [t.detach().cpu().numpy() for t in tensors]
