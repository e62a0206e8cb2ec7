"""``benchmark(model, dataset=...)``: any ``nn.Module`` evaluated class by class in one call, RobustBench-style.

    from robustbench_labelaug import benchmark
    report = benchmark(my_model, dataset="digits", n_examples=120, evaluators=("clean", "pgd"))
    report.headline                  # {"clean_error": 3.3, "pgd_error": 48.3, ...}
    report.to_frame()                # one row per class: class name, n, error and 95 % CI per evaluator
    report.per_example               # predictions and wrong/broken flags, indexed by dataset index
    report.to_model_info("my_model.json")

The model takes images in [0,1] (normalisation inside the model, as RobustBench's models). A model with K+M outputs
(label augmentation) is evaluated on its first K logits when ``num_classes=K`` is given (or read from the dataset).
Parameters keep RobustBench's ``benchmark()`` names where they overlap; ``device`` may be a string.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data.registry import DEFAULT_DATASET
from .data.registry import default_eps as registry_eps
from .errors import UserError
from .results.vocab import DEFAULT_THREAT_MODEL, EVALUATED_THREAT_MODELS
from .scoring.intervals import wilson_interval
from .store import ALL_PART, EvaluationStore

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
    evaluate``), ``arrays`` (id -> the per-example arrays), ``class_names``, and the model's metadata."""

    model_name: str
    results: dict[str, dict[str, Any]]
    arrays: dict[str, dict[str, np.ndarray]]
    class_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None  # the evaluation folder with to_disk=True

    @property
    def headline(self) -> dict[str, Any]:
        """The evaluators' headline numbers (``Evaluator.headline``), key -> value, errors in percent."""
        from .results.model_info import declare, headline_values

        return {k: m.value for k, m in headline_values(declare(self.results)).items()}

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
        from .results.model_info import build_model_info

        return build_model_info({**self.meta, "key": self.model_name, "class_names": self.class_names},
                                self.results, extra={"class_names": self.class_names, "source": "benchmark()"})

    def to_model_info(self, path: str | Path) -> Path:
        """Write :meth:`model_info` to ``path`` (atomically); ``rbla leaderboard`` reads it."""
        from .fileio import atomic_write_json

        path = Path(path)
        atomic_write_json(path, self.model_info())
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
    from .evaluation import EVALUATORS

    out = []
    for item in evaluators:
        name, settings = (item, {}) if isinstance(item, str) else (item[0], dict(item[1]))
        if name not in EVALUATORS:
            raise UserError(f"unknown evaluator '{name}': use some of {', '.join(EVALUATORS)}")
        if name in ATTACKS:
            settings.setdefault("eps", eps)
        if name in ("clean", "pgd", "autoattack", "robustness_curve") and n_examples is not None:
            settings.setdefault("n_examples", n_examples)
        if name in ("autoattack", "robustness_curve"):  # the same examples: the curve takes AutoAttack's results
            settings.setdefault("selection", selection)
        rid = settings.pop("id", None) or name
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


def _k_way_model(model, dataset, k: int, device):
    """``model`` itself when it outputs K logits, its first K logits when it outputs more (a K+M head)."""
    import torch

    from .models.classifier import KWayClassifier, unwrap_model

    inner = unwrap_model(model).to(device)
    was_training = inner.training
    inner.eval()
    with torch.no_grad():
        width = inner(dataset[0][0].unsqueeze(0).to(device)).shape[-1]
    inner.train(was_training)
    if width < k:
        raise UserError(f"the model outputs {width} logits but the dataset has K={k} classes: pass the model of "
                        "this dataset, or num_classes=K")
    return inner if width == k else KWayClassifier(inner, k)


def benchmark(model, *, dataset: str = DEFAULT_DATASET, threat_model: str = DEFAULT_THREAT_MODEL, eps: float | None = None,
              n_examples: int | None = None, data_dir: str | Path | None = None, batch_size: int = 64,
              device: Any = None, evaluators: Sequence[Any] = ("clean", "pgd", "autoattack"),
              num_classes: int | None = None, model_name: str | None = None, to_disk: bool = False,
              output: str | Path = "./output/benchmark", split: str | None = None,
              selection: str = "class_balanced", seed: int = 0, progress: bool = False,
              stochastic: bool = False) -> Report:
    """Evaluate ``model`` (inputs in [0,1], normalisation inside) class by class; returns a :class:`Report`.

    ``dataset``: a registered dataset (``digits``, ``cifar10``, ``cifar100``, ``imagenet``, ...), its
    ``split`` (default: the one evaluated) read from ``data_dir`` (default ``./data`` where the dataset needs a
    folder); K and the class names come from the dataset registry. ``eps`` (pixel units) defaults to the
    threat model's on the dataset (:func:`default_eps`). ``n_examples`` (None: all) are chosen by ``selection``
    (``class_balanced``: round-robin over the classes; ``robustbench``: the first n). ``evaluators``: names
    (``clean``, ``pgd``, ``autoattack``, ``corruptions``, ``masking``, ...) or ``(name, settings)`` pairs, e.g.
    ``("pgd", {"steps": 10})``; a setting ``id`` renames a result. ``num_classes=K`` with a K+M model evaluates its
    first K logits. ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device`` or None (CUDA if there
    is one). ``to_disk``: keep the evaluation folder ``<output>/<model_name>/`` (resumable; what ``rbla
    compare`` reads) and write ``<output>/model_info/<model_name>.json``, holding the output folder's lock as
    ``rbla evaluate`` does; the files are those ``rbla evaluate`` writes for the same model and settings (both run
    :func:`~robustbench_labelaug.runner.loop.evaluate_folder`). A model whose logits vary between calls (dropout left
    on, noise in forward, BatchNorm on batch statistics) is refused, unless ``stochastic=True`` declares it so: the
    report then says so and AutoAttack runs its randomised version (``rand``)."""
    from .data import create_dataset, get_dataset_spec
    from .evaluation import create_evaluator, settings_for_model
    from .fileio import check_writable_dir
    from .runner.config import DatasetConfig
    from .runner.loop import data_fingerprint, evaluate_folder, plan_result
    from .typed import build

    spec = get_dataset_spec(dataset)
    if data_dir is None and spec.needs_data_dir:
        data_dir = "./data"  # RobustBench's default
    k = spec.count_classes(data_dir)
    if num_classes is not None and num_classes != k:
        raise UserError(f"num_classes={num_classes} but dataset '{dataset}' has K={k} classes: pass num_classes="
                        f"{k} (the model's first {k} logits are evaluated) or leave it out")
    eps = default_eps(dataset, threat_model) if eps is None else float(eps)
    if threat_model not in EVALUATED_THREAT_MODELS:
        default_eps(dataset, threat_model)  # refuses L2
    dev = _device(device)
    ds_config = build(DatasetConfig, {"id": dataset, "name": dataset, "split": split,
                                      "data_dir": None if data_dir is None else str(data_dir)}, "benchmark()", "dataset")
    ds = create_dataset(dataset, data_dir, ds_config.resolved_split)
    names = spec.names_of_classes(data_dir) or [str(c) for c in getattr(ds, "classes", [])] or \
        [str(c) for c in range(k)]
    model_name = model_name or type(model).__name__
    specs = [(rid, name, settings_for_model(name, settings, stochastic))  # stochastic: AutoAttack's rand
             for rid, name, settings in _evaluator_specs(evaluators, eps, n_examples, selection)]
    for _, name, settings in specs:  # every evaluator's settings checked before any work
        create_evaluator(name, **settings)
    meta = {"dataset": dataset, "architecture": type(model).__name__, "training": None, "num_classes": k,
            "num_ops": 0, "delta": None, "eps": None, "threat_model": threat_model, "source": "benchmark()",
            "class_names": names, **({"stochastic": True} if stochastic else {})}
    data_fp = data_fingerprint(ds_config)
    meta["data_fingerprint"] = data_fp  # which files (an in-memory Report too): what rbla compare checks
    if to_disk:
        check_writable_dir(output)
    weights = {"benchmark": model_name, "state_dict_sha256": state_dict_digest(model)}
    out_root = Path(output) if to_disk else Path(tempfile.mkdtemp(prefix="rbla-benchmark-"))
    store = EvaluationStore(out_root)
    lock = None
    try:
        folder = store.folder(model_name)  # the name checked: it becomes a folder
        folder.check_model(weights)  # other weights under this name: refused before anything runs
        lock = store.lock().acquire(on_stale=print) if to_disk else None  # one writer per output folder
        k_model = _k_way_model(model, ds, k, dev)
        planned = [plan_result(rid, name, settings, ds_config, k, seed, data_fp) for rid, name, settings in specs]
        results = evaluate_folder(folder, planned, fingerprint=weights, meta=meta, load=lambda: k_model,
                                  dataset=lambda ds_id: ds, device=dev, batch_size=batch_size, progress=progress)
        arrays = {p.id: a for p in planned if (a := folder.read_part(p.id, p.evaluator, ALL_PART)) is not None}
        report = Report(model_name, results, arrays, names, meta, folder.path if to_disk else None)
        if to_disk:
            store.write_model_info(model_name, report.model_info())
        return report
    finally:
        if lock is not None:
            lock.release()
        if not to_disk:
            shutil.rmtree(out_root, ignore_errors=True)


__all__ = ["Report", "benchmark", "default_eps"]
