"""``benchmark(model, dataset=...)``: any ``nn.Module`` evaluated class by class in one call, RobustBench-style.

    from robustbench_labelaug import benchmark
    report = benchmark(my_model, dataset="digits", n_examples=120, evaluators=("clean", "pgd"))
    report.headline                  # {"clean_error": 3.3, "pgd_error": 48.3, ...}
    report.to_frame()                # one row per class: class name, n, error and 95 % CI per evaluator
    report.per_example               # predictions and wrong/broken flags, indexed by dataset index
    report.to_model_info("my_model.json")   # + my_model.evaluation/: rbla compare / rbla leaderboard read both
    compare(report, other_report)    # the paired per-class comparison rbla compare prints

Provenance goes into model_info (the leaderboard's training and M): ``training=`` (a training label of
``results.vocab``), ``description=``, ``model_name=``; architecture, K and M are read from the model (a zoo model
from ``load_model`` knows its entry; an ``ImageClassifier`` / ``KWayClassifier`` its K, M and architecture; any
other module gives M as its outputs beyond K and its class name as the architecture).

The model takes images in [0,1] (normalisation inside the model, as RobustBench's models). A model with K+M outputs
(label augmentation) is evaluated on its first K logits when ``num_classes=K`` is given (or read from the dataset).
Parameters keep RobustBench's ``benchmark()`` names where they overlap; ``device`` may be a string.

``dataset`` may also be tensors, as RobustBench's ``clean_accuracy(model, x, y)`` takes them::

    x, y = load_clean_dataset("digits", n_examples=100)      # or any float N x C x H x W in [0,1], int64 labels
    report = benchmark(my_model, dataset=(x, y), eps=0.2, evaluators=("clean", "pgd"))
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from .checks import check_choice
from .data import create_dataset, get_dataset_spec
from .data.registry import DEFAULT_DATASET, TENSORS_DATASET
from .data.registry import default_eps as registry_eps
from .errors import UserError
from .fileio import atomic_write_json, check_component, check_writable_dir
from .results.model_info import headline_values
from .results.rules import adv_plus_problem
from .results.vocab import (
    ADV_PLUS,
    DEFAULT_THREAT_MODEL,
    EVALUATED_THREAT_MODELS,
    LABEL_AUG_MODES,
    TRAINING_LABELS,
)
from .runner.config import DatasetConfig
from .runner.loop import data_fingerprint, evaluate_folder, plan_result
from .scoring.intervals import wilson_interval
from .store import PART_FINGERPRINT, EvaluationStore, ResultSpec, StoredEvaluation, evaluation_beside
from .typed import build
from .zoo.user import entry_model_meta

ATTACKS = ("pgd", "autoattack", "masking", "robustness_curve")  # evaluators that take eps


def default_eps(dataset: str, threat_model: str) -> float:
    """The threat model's eps for ``dataset``, from its registry entry (``DatasetSpec.default_eps``: RobustBench's
    leaderboards for CIFAR-10/100 L-inf 8/255 and ImageNet L-inf 4/255, the package's own 0.2 for the embedded
    digits); :class:`UserError` where none is known."""
    if threat_model not in EVALUATED_THREAT_MODELS:
        raise UserError(f"threat_model '{threat_model}': the evaluators attack in L-inf only: use "
                        f"threat_model='{DEFAULT_THREAT_MODEL}'")
    eps = registry_eps(dataset, threat_model)
    if eps is None:
        raise UserError(f"no default eps for dataset '{dataset}' ({threat_model}): pass eps=... (in [0,1] pixel "
                        "units, e.g. 8/255)")
    return eps


@dataclass
class Report:
    """What :func:`benchmark` measured: ``results`` (evaluator id -> EvalResult dict, as stored by ``rbla
    evaluate``), ``arrays`` (id -> the per-example arrays), ``class_names``, the model's metadata and
    ``evaluation``, the evaluation as the store keeps it (what :meth:`to_model_info` writes beside the file and
    :func:`~robustbench_labelaug.compare.compare` reads, as ``rbla compare`` reads it from disk)."""

    model_name: str
    results: dict[str, dict[str, Any]]
    arrays: dict[str, dict[str, np.ndarray]]
    class_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None  # the evaluation folder with to_disk=True
    evaluation: StoredEvaluation | None = field(default=None, repr=False)

    @property
    def headline(self) -> dict[str, Any]:
        """The evaluators' headline numbers (``Evaluator.headline``), key -> value, errors in percent."""
        from .evaluation.declare import declare_results  # deferred: torch

        return {k: m.value for k, m in headline_values(declare_results(self.results)).items()}

    def to_frame(self, level: float = 0.95):
        """A pandas DataFrame, one row per class: ``class`` (index), ``name``, ``n`` (examples of the class in
        the largest evaluation) and per evaluator id ``<id>_n``, ``<id>_error`` (%), ``<id>_ci_low``,
        ``<id>_ci_high`` (:func:`~.scoring.intervals.wilson_interval` at ``level``; NaN where a class has no
        examples, as its error)."""
        import pandas as pd

        k = len(self.class_names)
        frame = pd.DataFrame({"name": self.class_names}, index=pd.RangeIndex(k, name="class"))
        counts = []
        for rid, a in self.arrays.items():
            y, wrong = a["y_true"].astype(np.int64), a["y_pred"] != a["y_true"]
            n = np.bincount(y, minlength=k)[:k]
            w = np.bincount(y, weights=wrong, minlength=k)[:k]
            cis = [wilson_interval(float(w[c]), int(n[c]), level) or (np.nan, np.nan) for c in range(k)]
            frame[f"{rid}_n"] = n
            frame[f"{rid}_error"] = np.where(n > 0, 100.0 * w / np.maximum(n, 1), np.nan)
            frame[f"{rid}_ci_low"] = [c[0] for c in cis]
            frame[f"{rid}_ci_high"] = [c[1] for c in cis]
            counts.append(n)
        frame.insert(1, "n", np.max(counts, axis=0) if counts else 0)
        return frame

    @property
    def per_example(self):
        """A pandas DataFrame indexed by dataset index: ``y_true`` and per evaluator id ``<id>_pred`` (the
        scored prediction), ``<id>_wrong`` and, for attacks, ``<id>_broken`` (the attack fooled a point the model
        classified correctly); rows an evaluator did not run on hold NaN / <NA>."""
        import pandas as pd

        cols = []
        for rid, a in self.arrays.items():
            idx = pd.Index(a["index"].astype(np.int64), name="index")
            part = {"y_true": a["y_true"], f"{rid}_pred": a["y_pred"], f"{rid}_wrong": a["y_pred"] != a["y_true"]}
            if "broken" in a:
                part[f"{rid}_broken"] = a["broken"].astype(bool)
            elif "broken_by" in a:
                part[f"{rid}_broken"] = a["broken_by"] >= 0
            cols.append(pd.DataFrame(part, index=idx))
        if not cols:
            return pd.DataFrame()
        out = cols[0]
        for c in cols[1:]:
            out = out.combine_first(c) if "y_true" in out else out.join(c, how="outer")
        ordered = ["y_true"] + [c for f in cols for c in f.columns if c != "y_true"]
        return out[list(dict.fromkeys(ordered))].convert_dtypes()

    def curve(self, result_id: str | None = None):
        """The class-wise robustness curve of a ``robustness_curve`` result (``result_id``, or the only one): a
        pandas DataFrame, one row per class and eps of its grid, with columns ``class`` (0..K-1), ``eps``
        ([0,1] pixel units), ``accuracy`` (robust accuracy in %: the share of the class no attack of the run broke
        within eps) and ``ci_low`` / ``ci_high`` (its 95 % Wilson interval); ``frame.attrs`` holds the per-class
        ``median_radius`` and ``area`` and the ``worst_area``."""
        import pandas as pd

        ids = [rid for rid, r in self.results.items() if r.get("evaluator") == "robustness_curve"]
        if result_id is not None:
            ids = [rid for rid in ids if rid == result_id]
        if len(ids) != 1:
            known = [rid for rid, r in self.results.items() if r.get("evaluator") == "robustness_curve"]
            raise UserError(f"no single robustness_curve result{f' named {result_id!r}' if result_id else ''} in "
                            f"this report (it has {known or 'none'}): pass evaluators=(..., 'robustness_curve') "
                            "or curve(result_id)")
        curve = self.results[ids[0]]["details"]["curve"]
        eps = np.asarray(curve["eps"], dtype=float)
        k = len(curve["accuracy"])

        def grid(name: str) -> np.ndarray:
            return np.asarray([[np.nan if v is None else v for v in row] for row in curve[name]], dtype=float)

        frame = pd.DataFrame({"class": np.repeat(np.arange(k), eps.size), "eps": np.tile(eps, k),
                              "accuracy": grid("accuracy").ravel(), "ci_low": grid("ci_low").ravel(),
                              "ci_high": grid("ci_high").ravel()})
        frame.attrs.update({"median_radius": curve.get("median_radius"), "area": curve.get("area"),
                            "worst_area": curve.get("worst_area"), "result_id": ids[0]})
        return frame

    def model_info(self) -> dict[str, Any]:
        """The model_info dict (RobustBench's schema + the ``labelaug`` block), as ``rbla evaluate`` writes it."""
        from .evaluation.declare import model_info_from_results  # deferred: torch

        data = {"data": self.meta["data"]} if "data" in self.meta else {}  # tensors: name, fingerprint, N, K
        return model_info_from_results({**self.meta, "key": self.model_name, "class_names": self.class_names},
                                       self.results, extra={"class_names": self.class_names, "source": "benchmark()", **data})

    def to_model_info(self, path: str | Path) -> Path:
        """Write :meth:`model_info` to ``path`` and this evaluation beside it, so ``rbla compare path other.json``
        and ``rbla leaderboard`` read it: ``<dir>/<stem>.evaluation/`` (a store holding this model's folder), or,
        where ``path`` is a store's own ``<root>/model_info/<model_name>.json``, the model's folder ``<root>/
        <model_name>/`` (``rbla evaluate``'s layout: ``rbla leaderboard <root>`` shows it with the models
        evaluated there). Both are written atomically under that store's lock; a folder holding another model's
        weights under this name, or a result of the same id with other settings, is refused before anything is
        written."""
        path = Path(path)
        if path.suffix != ".json":
            raise UserError(f"to_model_info({str(path)!r}): a model_info file is a .json file: pass e.g. "
                            f"'{path.with_suffix('.json')}'")
        info = self.model_info()
        folder = evaluation_beside(path, self.model_name)
        check_writable_dir(path.parent)
        check_writable_dir(folder.path.parent)
        lock = EvaluationStore(folder.path.parent).lock().acquire(on_stale=print)
        try:
            own = self.folder is not None and folder.path.resolve() == Path(self.folder).resolve()
            if self.evaluation is not None and not own:
                rename = f"another name: benchmark(..., model_name='{self.model_name}_2')"
                folder.restore(self.evaluation, rename=rename)
            atomic_write_json(path, info)
        finally:
            lock.release()
        return path

    def __repr__(self) -> str:
        shown = ", ".join(f"{k} {v:.2f}" for k, v in self.headline.items() if isinstance(v, float))
        return f"Report({self.model_name}: {shown})"


def state_dict_digest(model) -> str:
    """sha256 of the model's state dict (names, dtypes, shapes and values): what identifies its weights."""
    import hashlib

    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.view(-1).view(torch_uint8()).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def torch_uint8():
    import torch

    return torch.uint8


def _evaluator_specs(evaluators: Iterable[Any], eps: float, n_examples: int | None,
                     selection: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(id, evaluator name, settings)`` from names or ``(name, settings)`` pairs."""
    # deferred: torch (kept out of the CLI's start)
    from .evaluation import EVALUATORS

    out = []
    for item in evaluators:
        name, settings = (item, {}) if isinstance(item, str) else (item[0], dict(item[1]))
        if name not in EVALUATORS:
            raise UserError(f"unknown evaluator '{name}': use some of {', '.join(EVALUATORS)}")
        if name in ATTACKS:
            if eps is None and settings.get("eps") is None:  # only dataset=(x, y) tensors have no default eps
                raise UserError(f"evaluator '{name}' attacks but dataset=(x, y) tensors have no default eps: pass "
                                "eps=... in [0,1] pixel units (e.g. 8/255 for CIFAR-10), as RobustBench's "
                                "benchmark() requires it")
            settings.setdefault("eps", eps)
        if name in ("clean", "pgd", "autoattack", "robustness_curve") and n_examples is not None:
            settings.setdefault("n_examples", n_examples)
        if name in ("autoattack", "robustness_curve"):  # the same examples: the curve takes AutoAttack's results
            settings.setdefault("selection", selection)
        rid = check_component(settings.pop("id", None) or name, "evaluator id", "pass a plain name as 'id'")
        if any(r == rid for r, _, _ in out):
            raise UserError(f"evaluator id '{rid}' appears twice: pass ('{name}', {{'id': 'other', ...}})")
        out.append((rid, name, settings))
    return out


def _device(device: Any):
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"device {device!r} is not a device: use 'cpu', 'cuda', 'cuda:1' or a torch.device") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{device}' was asked for but CUDA is not available: use device='cpu'")
    return dev


def _k_way_model(model, dataset, k: int, device, k_from_labels: bool = False):
    """``(K-way model, M)``: ``model`` itself when it outputs K logits, its first K logits when it outputs more
    (a K+M head); M: the transformation logits behind the K (a K+M wrapper's ``num_ops``, else the outputs
    beyond K of the module a ``KWayClassifier`` wraps, else of the model). ``k_from_labels``: K was read from
    the labels (``max(y) + 1``), so a model whose width is not K + its declared M is refused (a class missing
    from y, or an undeclared M: the K would be wrong)."""
    import torch

    # deferred: torch (kept out of the CLI's start)
    from .models.classifier import KWayClassifier, unwrap_model

    inner = unwrap_model(model).to(device)
    core = unwrap_model(inner.model) if isinstance(inner, KWayClassifier) else inner

    def width(module) -> int:
        was_training = module.training
        module.eval()
        with torch.no_grad():
            out = module(dataset[0][0].unsqueeze(0).to(device))
        module.train(was_training)
        return (out[0] if isinstance(out, (tuple, list)) else out).shape[-1]

    own = width(inner)
    if own < k:
        raise UserError(f"the model outputs {own} logits but the dataset has K={k} classes: pass the model of "
                        "this dataset, or num_classes=K")
    num_ops = getattr(core, "num_ops", None)
    declared = isinstance(num_ops, int) and not isinstance(num_ops, bool)
    if k_from_labels and own != k + (num_ops if declared and core is inner else 0):
        told = f" (M={num_ops} declared)" if declared and core is inner else ""
        raise UserError(f"K={k} was read from y (labels 0..{k - 1}) but the model outputs {own} logits{told}: pass "
                        "num_classes=K (its first K logits classify; a class without examples in y counts too)")
    if not declared:
        num_ops = width(core) - k if core is not inner else own - k
    return (inner if own == k else KWayClassifier(inner, k)), max(int(num_ops), 0)


def _architecture(model) -> str:
    """The model's architecture: an ``ImageClassifier``'s timm name, else timm's ``pretrained_cfg``
    architecture, else the class name (of the network inside our wrappers)."""
    # deferred: torch (kept out of the CLI's start)
    from .models.classifier import ImageClassifier, KWayClassifier, unwrap_model

    net = unwrap_model(model)
    while isinstance(net, KWayClassifier):
        net = unwrap_model(net.model)
    if isinstance(net, ImageClassifier):
        if net.architecture:
            return str(net.architecture)
        net = net.net
    cfg = getattr(net, "pretrained_cfg", None)
    arch = cfg.get("architecture") if isinstance(cfg, dict) else None
    return str(arch or type(net).__name__)


def provenance_arguments(training: Any = None, description: Any = None) -> tuple[str | None, str | None]:
    """``training`` (a training label of :data:`~.results.vocab.TRAINING_LABELS`, a ``TrainingMode`` member too)
    and ``description`` (text) checked, as plain strings; one :class:`UserError` line otherwise."""
    if training is not None:
        check_choice("benchmark()", "training", training, TRAINING_LABELS,
                     "the method the weights were trained with")
        training = str(training)  # a plain string (a TrainingMode member too)
    if description is not None and not isinstance(description, str):
        raise UserError(f"benchmark(): description must be a string, got {type(description).__name__}: "
                        "e.g. description='my CNN, PGD-10 training'")
    return training, description


def default_model_name(model) -> str:
    """A model's name where none is given: a zoo model's entry name, else its architecture (:func:`_architecture`:
    timm's name, else the class name)."""
    # deferred: torch (kept out of the CLI's start)
    from .zoo.loading import zoo_entry_of

    entry = zoo_entry_of(model)
    return entry.name if entry is not None else _architecture(model)


def model_provenance(model, *, num_classes: int, num_ops: int, dataset: str, threat_model: str, training: Any = None,
                     description: str | None = None) -> dict[str, Any]:
    """What model_info says of ``model`` (``meta``): a zoo model's entry and its checkpoint's training args
    (:func:`~.zoo.user.entry_model_meta`, as ``rbla evaluate`` writes them), else architecture and M read from the model; ``training`` /
    ``description`` given (:func:`provenance_arguments`) add to it (a zoo model's recorded training is never
    relabelled). A label-augmentation ``training`` needs M >= 1 (``results/rules.py``: ``adv_plus_problem``)."""
    # deferred: torch (kept out of the CLI's start)
    from .zoo.loading import zoo_entry_of, zoo_model_dir_of

    training, description = provenance_arguments(training, description)
    entry, model_dir = zoo_entry_of(model), zoo_model_dir_of(model)
    if entry is not None:  # as rbla evaluate says it of a zoo: model (its checkpoint's departures from the recipe too)
        meta = entry.model_meta() if model_dir is None else entry_model_meta(entry, model_dir, "benchmark()")
    else:
        meta = {"dataset": dataset, "architecture": _architecture(model), "training": None, "num_classes": num_classes,
                "num_ops": num_ops, "delta": None, "eps": None, "threat_model": threat_model}
    if training is not None:
        if entry is not None and training != entry.training:  # a model is labelled with what it is, as in configs
            raise UserError(f"benchmark(): training='{training}' but zoo model '{entry.name}' records "
                            f"'{entry.training}': leave training out (the results would be labelled as another model)")
        meta["training"] = training
        if any(training == m or training.startswith(f"{m}_") for m in LABEL_AUG_MODES):
            problem = adv_plus_problem(ADV_PLUS, meta["num_ops"], "M")
            if problem:
                raise UserError(f"benchmark(): training='{training}' but the model has M={meta['num_ops']}: "
                                f"{problem}: pass the K+M model itself (its first K logits are evaluated)")
    if description is not None:
        meta["description"] = description
    return {**meta, "dataset": meta.get("dataset") or dataset, "source": "benchmark()"}


@dataclass
class _Data:
    """The evaluated data of one :func:`benchmark` call: a registered dataset's split or checked tensors."""

    name: str  # the registered name, or TENSORS_DATASET
    dataset: Any
    num_classes: int
    class_names: list[str]
    eps: float | None  # None: tensors without eps= (only evaluators without eps may run)
    fingerprint: str | None  # the files' or the tensors' content (the store's data fingerprint)
    plan: Callable[[str, str, dict[str, Any]], ResultSpec]  # (result id, evaluator, settings) -> what it depends on
    k_from_labels: bool = False
    describe: dict[str, Any] | None = None  # tensors: what model_info records of them (labelaug.data)


def _registered_data(dataset: str, data_dir, split, num_classes, class_names, threat_model: str, eps,
                     seed: int) -> _Data:
    """A registered dataset's split: K and class names from the registry, eps from it where not given."""
    spec = get_dataset_spec(dataset)
    if class_names is not None:
        raise UserError(f"class_names names the classes of dataset=(x, y) tensors; dataset '{dataset}' names its "
                        "own: leave class_names out")
    if data_dir is None and spec.needs_data_dir:
        data_dir = "./data"  # RobustBench's default
    k = spec.count_classes(data_dir)
    if num_classes is not None and num_classes != k:
        raise UserError(f"num_classes={num_classes} but dataset '{dataset}' has K={k} classes: pass num_classes="
                        f"{k} (the model's first {k} logits are evaluated) or leave it out")
    eps = default_eps(dataset, threat_model) if eps is None else float(eps)
    ds_config = build(DatasetConfig, {"id": dataset, "name": dataset, "split": split,
                                      "data_dir": None if data_dir is None else str(data_dir)}, "benchmark()", "dataset")
    ds = create_dataset(dataset, data_dir, ds_config.resolved_split)
    names = spec.names_of_classes(data_dir) or [str(c) for c in getattr(ds, "classes", [])] or \
        [str(c) for c in range(k)]
    data_fp = data_fingerprint(ds_config)
    return _Data(dataset, ds, k, names, eps, data_fp,
                 lambda rid, name, settings: plan_result(rid, name, settings, ds_config, k, seed, data_fp))


def _tensors_data(dataset, data_dir, split, num_classes, class_names, eps, seed: int) -> _Data:
    """``dataset=(x, y)`` checked (:func:`~.data.tensors.tensor_data`); no default eps (RobustBench's
    ``benchmark()`` requires one for L-inf / L2): an attack without ``eps`` is refused."""
    # deferred: torch (kept out of the CLI's start)
    from .data.tensors import tensor_data

    for key, value in (("split", split), ("data_dir", data_dir)):
        if value is not None:
            raise UserError(f"{key}={value!r} selects files of a registered dataset; dataset=(x, y) tensors are "
                            f"evaluated as given: leave {key} out")
    data = tensor_data(dataset, num_classes, class_names)
    k, fp = data.num_classes, data.fingerprint
    # what a result depends on: K and the settings (its fingerprint: other ones are refused) and the tensors'
    # content (its data fingerprint: other tensors recompute, the same ones reuse), as a registered dataset's files
    return _Data(TENSORS_DATASET, data.dataset, k, data.class_names, None if eps is None else float(eps), fp,
                 lambda rid, name, settings: ResultSpec(rid, name, dict(settings), TENSORS_DATASET,
                                                        {"name": TENSORS_DATASET}, k, int(seed), fp),
                 k_from_labels=data.k_from_labels, describe=data.describe())


def benchmark(model, *, dataset: str | tuple[Any, Any] = DEFAULT_DATASET, threat_model: str = DEFAULT_THREAT_MODEL,
              eps: float | None = None,
              n_examples: int | None = None, data_dir: str | Path | None = None, batch_size: int = 64,
              device: Any = None, evaluators: Sequence[Any] = ("clean", "pgd", "autoattack"),
              num_classes: int | None = None, model_name: str | None = None, to_disk: bool = False,
              output: str | Path = "./output/benchmark", split: str | None = None,
              selection: str = "class_balanced", seed: int = 0, progress: bool = False,
              stochastic: bool = False, training: str | None = None, description: str | None = None,
              class_names: Sequence[str] | None = None) -> Report:
    """Evaluate ``model`` (inputs in [0,1], normalisation inside) class by class; returns a :class:`Report`.

    ``dataset``: a registered dataset (``digits``, ``cifar10``, ``cifar100``, ``imagenet``, ...), its
    ``split`` (default: the one evaluated) read from ``data_dir`` (default ``./data`` where the dataset needs a
    folder); K and the class names come from the dataset registry. ``eps`` (pixel units) defaults to the
    threat model's on the dataset (:func:`default_eps`).

    ``dataset=(x, y)``: tensors, as RobustBench's ``clean_accuracy(model, x, y)`` takes them: ``x`` a float
    tensor N x C x H x W in [0,1] (evaluated as float32), ``y`` an integer tensor of N labels. K is
    ``num_classes``, else ``max(y) + 1`` (then a class without any example in y, above the largest label, is not
    counted, and a model of another width is refused: pass ``num_classes`` where y may lack the last class, or
    for a K+M model that does not declare its M). The classes are named ``class_names`` (K strings), else
    ``class_0`` .. ``class_{K-1}``. No eps is assumed: an attack needs ``eps=...``, as RobustBench's
    ``benchmark()`` requires it for L-inf; ``clean`` alone runs without. The rest is as for a registered dataset
    (the same evaluators, selection, loop and store); the dataset is named ``tensors`` in the results and
    model_info (``labelaug.data``: its content fingerprint, N, image shape, K), and a stored result is reused for
    the same tensors (sha256 of both tensors' dtype, shape and bytes) and recomputed for changed ones.
    Bad tensors (not tensors, a wrong rank, no images, values outside [0,1] or not finite, labels not integer,
    out of range or not one per image) are one :class:`UserError` line each.

    ``n_examples`` (None: all) are chosen by ``selection`` (``class_balanced``: round-robin over the classes;
    ``robustbench``: the first n). ``evaluators``: names (``clean``, ``pgd``, ``autoattack``, ``corruptions``,
    ``masking``, ...) or ``(name, settings)`` pairs, e.g.
    ``("pgd", {"steps": 10})``; a setting ``id`` renames a result. ``num_classes=K`` with a K+M model evaluates its
    first K logits. ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device`` or None (CUDA if there
    is one). ``training``: how the weights were trained, a training label (``std``, ``adv``, ``adv_plus``,
    ``trades``, ``adv_cfa``, ...; a zoo model's own by default); ``description``: one line naming the model
    (model_info's ``name`` where no paper is known). ``model_name``: the model's name in the output (default: a
    zoo model's entry name, else its architecture, e.g. the class name); a second model of other weights under a
    name already used in ``output`` is refused: name variants of one class apart. ``to_disk``: keep the
    evaluation folder ``<output>/<model_name>/`` (resumable; what ``rbla compare`` reads) and write
    ``<output>/model_info/<model_name>.json``, holding the output folder's lock as ``rbla evaluate`` does; the
    files are those ``rbla evaluate`` writes for the same model and settings (both run
    :func:`~robustbench_labelaug.runner.loop.evaluate_folder`). Without it the Report still carries the
    evaluation: :meth:`Report.to_model_info` writes it beside the file. A model whose logits vary between calls
    (dropout left on, noise in forward, BatchNorm on batch statistics) is refused, unless ``stochastic=True``
    declares it so: the report then says so and AutoAttack runs its randomised version (``rand``)."""
    # deferred: torch (kept out of the CLI's start)
    from .evaluation import create_evaluator, settings_for_model

    if isinstance(dataset, Enum):  # RobustBench's BenchmarkDataset: its value names the dataset
        dataset = str(dataset.value)
    if threat_model not in EVALUATED_THREAT_MODELS:
        default_eps(DEFAULT_DATASET, threat_model)  # refuses L2, whatever the data
    data = (_registered_data(dataset, data_dir, split, num_classes, class_names, threat_model, eps, seed)
            if isinstance(dataset, str) else
            _tensors_data(dataset, data_dir, split, num_classes, class_names, eps, seed))
    k, names, ds, eps = data.num_classes, data.class_names, data.dataset, data.eps
    dev = _device(device)
    specs = [(rid, name, settings_for_model(name, settings, stochastic))  # stochastic: AutoAttack's rand
             for rid, name, settings in _evaluator_specs(evaluators, eps, n_examples, selection)]
    for _, name, settings in specs:  # every evaluator's settings checked before any work
        create_evaluator(name, **settings)
    provenance_arguments(training, description)
    model_name = default_model_name(model) if model_name is None else model_name
    check_component(model_name, "model_name", "pass a plain name (it names the folder <output>/<model_name>)")
    rename = f"another name: benchmark(..., model_name='{model_name}_2')"
    weights = {"benchmark": model_name, "state_dict_sha256": state_dict_digest(model)}
    if to_disk:  # other weights under this name: refused before the model runs or anything is written
        EvaluationStore(output).folder(model_name).check_model(weights, rename)
    k_model, num_ops = _k_way_model(model, ds, k, dev, k_from_labels=data.k_from_labels)
    meta = {**model_provenance(model, num_classes=k, num_ops=num_ops, dataset=data.name, threat_model=threat_model,
                               training=training, description=description), "class_names": names,
            **({"stochastic": True} if stochastic else {})}
    if data.describe is not None:  # tensors: the evaluated data, whatever a zoo model was trained on
        meta.update(dataset=data.name, data=data.describe)
    meta["data_fingerprint"] = data.fingerprint  # which files / tensors (an in-memory Report too): rbla compare checks
    if to_disk:
        check_writable_dir(output)
    out_root = Path(output) if to_disk else Path(tempfile.mkdtemp(prefix="rbla-benchmark-"))
    store = EvaluationStore(out_root)
    lock = None
    try:
        folder = store.folder(model_name)
        lock = store.lock().acquire(on_stale=print) if to_disk else None  # one writer per output folder
        folder.check_model(weights, rename)  # again under the lock
        planned = [data.plan(rid, name, settings) for rid, name, settings in specs]
        results = evaluate_folder(folder, planned, fingerprint=weights, meta=meta, load=lambda: k_model,
                                  dataset=lambda ds_id: ds, device=dev, batch_size=batch_size, progress=progress)
        evaluation = folder.snapshot([p.id for p in planned])
        arrays = {rid: {key: v for key, v in a.items() if key != PART_FINGERPRINT}
                  for rid, a in evaluation.parts.items()}
        report = Report(model_name, results, arrays, names, meta, folder.path if to_disk else None, evaluation)
        if to_disk:
            store.write_model_info(model_name, report.model_info())
        return report
    finally:
        if lock is not None:
            lock.release()
        if not to_disk:
            shutil.rmtree(out_root, ignore_errors=True)


__all__ = ["Report", "benchmark", "default_eps", "default_model_name", "model_provenance", "provenance_arguments"]
