"""``rbla evaluate -c CONFIG``: evaluate models with the configured evaluators into RobustBench model_info JSONs.

A config (YAML, see ``eval_configs/``) has these top-level keys; unknown keys are errors::

    title: "digits: Std / Adv / Adv+"           # leaderboard title (optional)
    runtime: {batch_size: 64, device: auto, num_workers: 0, model_dir: ./models, output: ./output/eval,
              seed: 0, progress: true, plots: true}
    datasets:                                   # id -> create_dataset() arguments
      digits: {name: digits, split: test}
      imagenet: {name: imagenet, data_dir: "${IMAGENET_DIR}", split: val, input_size: 224, crop_pct: 0.875}
    models:                                     # zoo entries, or one's own checkpoints
      - zoo: digits_adv_plus                    # optional: name (output key), dataset (id)
      - {name: mine, checkpoint: output/train/x/last.pth.tar, dataset: digits}   # arch, K, M, training,
                                                # delta, eps default to what the checkpoint records
    evaluators:                                 # run in order, for every model
      - {name: clean}
      - {id: pgd40_paper, name: pgd, settings: {eps: 0.03, steps: 40, protocol: paper}, fast: {steps: 5}}
    fast: {n_examples: 64}                      # --fast: cap on every evaluator's n_examples

``${VAR}`` / ``$VAR`` in any string are expanded from the environment (an unset variable is an error naming it);
relative paths are relative to the working directory. Each evaluator entry gets a unique ``id`` (default: its
name) that keys its results; ``settings`` go to ``create_evaluator(name, **settings)``; with ``--fast`` the
entry's ``fast`` settings are laid over them and ``n_examples`` is capped by the top-level ``fast`` block, and the
default output folder gets a ``-fast`` suffix, so quick and full results never mix.

Output (``runtime.output`` or ``--output``)::

    model_info/<model>.json               RobustBench ModelInfo + "labelaug" block (written atomically, rank 0)
    <model>/model.json                    which checkpoint the folder's results belong to
    <model>/cache/<id>/<evaluator>/*.npz  finished splits (an interrupted run resumes from here)
    <model>/results/<id>.json             finished evaluator results (a re-run reuses them; nothing is loaded)
    leaderboard.md, plots/*.png

Results computed with other settings, data or checkpoint are refused (use another output folder or delete the
stale one) rather than mixed in. Under torchrun the evaluators shard the examples; only rank 0 writes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from torch.utils.data import Subset

from ..errors import UserError
from ..fileio import atomic_write_json, jsonable

HELP = "evaluate models (zoo names or checkpoints) from a YAML config into RobustBench model_info JSONs"
__all__ = ["HELP", "EvalConfig", "add_arguments", "evaluate_config", "load_config", "main"]

TOP_KEYS = ("title", "runtime", "datasets", "models", "evaluators", "fast")
RUNTIME_KEYS = ("batch_size", "device", "num_workers", "model_dir", "output", "seed", "progress", "plots")
DATASET_KEYS = ("name", "data_dir", "split", "input_size", "crop_pct", "interpolation", "subset")
SUBSETS = ("robustbench",)
MODEL_KEYS = ("zoo", "name", "checkpoint", "arch", "num_classes", "num_ops", "training", "delta", "eps",
              "threat_model", "dataset", "description", "paper", "reported")
EVALUATOR_KEYS = ("name", "id", "dataset", "settings", "fast")
FAST_KEYS = ("n_examples",)
_UNEXPANDED = re.compile(r"\$(\{)?([A-Za-z_][A-Za-z0-9_]*)")


# ----------------------------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class RuntimeConfig:
    batch_size: int = 64
    device: str = "auto"
    num_workers: int = 0
    model_dir: str = "./models"
    output: str = "./output/eval"
    seed: int = 0
    progress: bool = True
    plots: bool = True


@dataclass
class DatasetConfig:
    id: str
    name: str
    data_dir: str | None = None
    split: str | None = None
    input_size: int = 224
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    subset: str | None = None  # "robustbench": RobustBench's 5 000 ImageNet test images, in its order

    def spec(self) -> dict[str, Any]:
        """What the data depends on (part of every result's fingerprint)."""
        d = asdict(self)
        d.pop("id")
        d["split"] = self.resolved_split
        if self.name == "digits":
            d = {"name": "digits", "split": d["split"]}
        return d

    @property
    def resolved_split(self) -> str:
        return self.split or ("test" if self.name == "digits" else "val")


@dataclass
class ModelConfig:
    key: str
    zoo: str | None = None
    checkpoint: str | None = None
    arch: str | None = None
    num_classes: int | None = None
    num_ops: int | None = None
    training: str | None = None
    delta: float | None = None
    eps: float | None = None
    threat_model: str = "Linf"
    dataset: str | None = None
    description: str | None = None
    paper: Any = None
    reported: dict[str, Any] | None = None


@dataclass
class EvaluatorConfig:
    id: str
    name: str
    dataset: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    fast: dict[str, Any] = field(default_factory=dict)

    def effective_settings(self, fast: bool, fast_caps: Mapping[str, Any]) -> dict[str, Any]:
        settings = dict(self.settings)
        if fast:
            settings.update(self.fast)
            cap = fast_caps.get("n_examples")
            if cap is not None:
                n = settings.get("n_examples")
                settings["n_examples"] = cap if n is None else min(int(n), int(cap))
        return settings


@dataclass
class EvalConfig:
    path: Path
    title: str
    runtime: RuntimeConfig
    datasets: dict[str, DatasetConfig]
    models: list[ModelConfig]
    evaluators: list[EvaluatorConfig]
    fast: dict[str, Any] = field(default_factory=dict)


def expand_env(value: Any, where: str) -> Any:
    """``${VAR}`` / ``$VAR`` in every string of ``value`` replaced from the environment (os.path.expandvars);
    :class:`UserError` naming the first variable that is not set."""
    if isinstance(value, dict):
        return {k: expand_env(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        expanded = os.path.expandvars(value)
        missing = _UNEXPANDED.search(expanded)
        if missing:
            var = missing.group(2)
            raise UserError(f"{where} uses the environment variable {var}, which is not set: export {var}=... "
                            "(e.g. the dataset folder) or edit the config")
        return expanded
    return value


def _mapping(value: Any, where: str, file: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"config {file}: '{where}' must be a mapping, got {type(value).__name__}")
    return value


def _check_keys(values: Mapping[str, Any], allowed: tuple[str, ...], where: str, file: Path) -> None:
    unknown = sorted(set(map(str, values)) - set(allowed))
    if unknown:
        raise UserError(f"config {file}: unknown key(s) {unknown} in {where}: use {', '.join(allowed)}")


def _entries(raw: dict[str, Any], key: str, short: str, allowed: tuple[str, ...], file: Path,
             example: str) -> list[tuple[int, dict[str, Any]]]:
    """The non-empty list ``raw[key]`` as ``(i, mapping)``; a bare string ``s`` stands for ``{short: s}``."""
    items = raw.get(key)
    if not isinstance(items, list) or not items:
        raise UserError(f"config {file}: '{key}' must be a non-empty list ({example})")
    out = []
    for i, item in enumerate(items):
        item = {short: item} if isinstance(item, str) else _mapping(item, f"{key}[{i}]", file)
        _check_keys(item, allowed, f"{key}[{i}]", file)
        out.append((i, item))
    return out


def _check_id(value: str, what: str, where: str, file: Path) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", value):
        raise UserError(f"config {file}: {where}: {what} '{value}' may only use letters, digits and _ . + -")


def _check_dataset_ref(dataset: str | None, datasets: Mapping[str, Any], where: str, file: Path) -> None:
    if dataset is not None and dataset not in datasets:
        raise UserError(f"config {file}: {where} uses dataset '{dataset}', which 'datasets' does not define: "
                        f"use one of {', '.join(datasets) or '(none defined)'}")


def _repeated(values: list[str]) -> list[str]:
    return sorted({v for v in values if values.count(v) > 1})


def _typed(cls, values: dict[str, Any], where: str, file: Path):
    try:
        obj = cls(**values)
    except TypeError as exc:
        raise UserError(f"config {file}: {where}: {exc}") from None
    for name, kind in (("batch_size", int), ("num_workers", int), ("seed", int), ("num_classes", int),
                       ("num_ops", int), ("input_size", int)):
        v = getattr(obj, name, None)
        if v is not None and (not isinstance(v, kind) or isinstance(v, bool) or v < 0):
            raise UserError(f"config {file}: {where}: '{name}' must be a non-negative integer, got {v!r}")
    return obj


CONFIG_PACKAGE = "robustbench_labelaug.eval_configs"


def packaged_configs() -> dict[str, Path]:
    """The configs installed with the package (``eval_configs/*.yaml``), by stem: ``digits``, ``paper_imagenet``."""
    import importlib.util

    spec = importlib.util.find_spec(CONFIG_PACKAGE)
    folders = list(spec.submodule_search_locations) if spec and spec.submodule_search_locations else []
    folders.append(Path(__file__).resolve().parents[2] / "eval_configs")  # a source checkout
    for folder in map(Path, folders):
        if folder.is_dir():
            return {p.stem: p for p in sorted(folder.glob("*.yaml"))}
    return {}


def resolve_config_path(path: str | Path) -> Path:
    """``path`` itself, or the packaged config of that name (``-c digits``)."""
    file = Path(path)
    if file.is_file():
        return file
    packaged = packaged_configs()
    if str(path) in packaged:
        return packaged[str(path)]
    raise UserError(f"config file {file} does not exist: pass -c with a YAML file or one of the packaged configs "
                    f"({', '.join(packaged) or 'none installed'})")


def load_config(path: str | Path) -> EvalConfig:
    """Read and validate an evaluation config (see the module docstring); nothing is built or written."""
    from ..data import DATASETS
    from ..evaluation import EVALUATORS

    file = resolve_config_path(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"config file {file} is not valid YAML ({type(exc).__name__}): fix its syntax") from None
    raw = _mapping(raw, "the file", file)
    _check_keys(raw, TOP_KEYS, "the top level", file)
    raw = expand_env(raw, file.name)

    runtime_raw = _mapping(raw.get("runtime"), "runtime", file)
    _check_keys(runtime_raw, RUNTIME_KEYS, "runtime", file)
    runtime = _typed(RuntimeConfig, runtime_raw, "runtime", file)
    if runtime.batch_size < 1:
        raise UserError(f"config {file}: runtime.batch_size must be >= 1, got {runtime.batch_size}")

    datasets: dict[str, DatasetConfig] = {}
    for ds_id, ds_raw in _mapping(raw.get("datasets"), "datasets", file).items():
        ds_raw = _mapping(ds_raw, f"datasets.{ds_id}", file)
        _check_keys(ds_raw, DATASET_KEYS, f"datasets.{ds_id}", file)
        ds = _typed(DatasetConfig, {"id": str(ds_id), **ds_raw}, f"datasets.{ds_id}", file)
        if ds.name not in DATASETS:
            raise UserError(f"config {file}: datasets.{ds_id}: unknown dataset '{ds.name}': use one of "
                            f"{', '.join(DATASETS)}")
        if ds.subset is not None and (ds.subset not in SUBSETS or ds.name != "imagenet"):
            raise UserError(f"config {file}: datasets.{ds_id}: subset '{ds.subset}' is not known for '{ds.name}': "
                            "use subset: robustbench with name: imagenet (RobustBench's 5000 test images), or drop it")
        if ds.name != "digits" and not ds.data_dir:
            raise UserError(f"config {file}: datasets.{ds_id} ('{ds.name}') needs data_dir (a folder with val/ "
                            "class folders)")
        datasets[ds.id] = ds

    fast = _mapping(raw.get("fast"), "fast", file)
    _check_keys(fast, FAST_KEYS, "fast", file)

    models: list[ModelConfig] = []
    for i, m in _entries(raw, "models", "zoo", MODEL_KEYS, file, "zoo names or checkpoints"):
        if bool(m.get("zoo")) == bool(m.get("checkpoint")):
            raise UserError(f"config {file}: models[{i}] needs exactly one of 'zoo' (a zoo name) or 'checkpoint' "
                            "(a path)")
        key = str(m.pop("name", None) or m.get("zoo") or Path(str(m["checkpoint"])).stem.split(".")[0])
        _check_id(key, "name", f"models[{i}]", file)
        model = _typed(ModelConfig, {"key": key, **m}, f"models[{i}]", file)
        _check_dataset_ref(model.dataset, datasets, f"models[{i}] ('{key}')", file)
        models.append(model)
    dup = _repeated([m.key for m in models])
    if dup:
        raise UserError(f"config {file}: model name(s) {dup} appear twice: give each model a distinct 'name'")

    evaluators: list[EvaluatorConfig] = []
    for i, e in _entries(raw, "evaluators", "name", EVALUATOR_KEYS, file, "e.g. - name: clean"):
        name = e.get("name")
        if name not in EVALUATORS:
            raise UserError(f"config {file}: evaluators[{i}]: unknown evaluator '{name}': use one of "
                            f"{', '.join(EVALUATORS)}")
        ev = _typed(EvaluatorConfig, {"id": str(e.get("id") or name), **{k: v for k, v in e.items() if k != "id"}},
                    f"evaluators[{i}]", file)
        ev.settings = _mapping(ev.settings, f"evaluators[{i}].settings", file)
        ev.fast = _mapping(ev.fast, f"evaluators[{i}].fast", file)
        _check_id(ev.id, "id", f"evaluators[{i}]", file)
        _check_dataset_ref(ev.dataset, datasets, f"evaluators[{i}] ('{ev.id}')", file)
        evaluators.append(ev)
    dup = _repeated([e.id for e in evaluators])
    if dup:
        raise UserError(f"config {file}: evaluator id(s) {dup} appear twice: give repeated evaluators a distinct "
                        "'id' (e.g. pgd40_sound, pgd40_paper)")
    title = str(raw.get("title") or file.stem)
    return EvalConfig(file, title, runtime, datasets, models, evaluators, fast)


# ----------------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class ResolvedModel:
    """A model's metadata (for model_info and fingerprints) and how to load it."""

    config: ModelConfig
    meta: dict[str, Any]            # key, dataset, architecture, training, num_classes, num_ops, delta, ...
    fingerprint: dict[str, Any]     # what identifies the weights
    dataset_id: str
    reported: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return self.config.key


def zoo_entry(name: str) -> dict[str, Any]:
    """A model-zoo entry as a dict (fields as in ``model_zoo/*.yaml``)."""
    from ..zoo import get_entry

    return get_entry(name).to_dict()


def zoo_fingerprint(name: str, entry: Mapping[str, Any], model_dir: str) -> dict[str, Any]:
    """What identifies a zoo model's weights: the published sha256, else the export's sidecar, else the file's
    own sha256; timm's pretrained weights for an entry that falls back to them."""
    from ..zoo import checkpoint_path, file_sha256, get_entry, read_sidecar

    path = checkpoint_path(get_entry(name), model_dir)
    if not path.is_file():
        if entry.get("pretrained_fallback"):
            return {"zoo": name, "weights": f"timm pretrained {entry.get('architecture')}"}
        raise UserError(f"no checkpoint for zoo model '{name}' at {path}: `rbla zoo show {name}` prints the "
                        "commands that train and export it (or set runtime.model_dir)")
    sha = entry.get("sha256") or read_sidecar(path) or file_sha256(path)
    return {"zoo": name, "sha256": sha}


def _pick_dataset(cfg: EvalConfig, model: ModelConfig, dataset_name: str | None) -> str:
    if model.dataset is not None:
        return model.dataset
    if len(cfg.datasets) == 1:
        return next(iter(cfg.datasets))
    matches = [d.id for d in cfg.datasets.values() if dataset_name and d.name == dataset_name]
    if len(matches) == 1:
        return matches[0]
    raise UserError(f"model '{model.key}': cannot tell which of the datasets {', '.join(cfg.datasets) or '(none)'} "
                    "it is evaluated on: set its 'dataset' in the config")


def resolve_model(cfg: EvalConfig, model: ModelConfig) -> ResolvedModel:
    """Metadata of a zoo entry or checkpoint, config values overriding (a checkpoint's K and M must agree)."""
    overrides = {k: getattr(model, k) for k in ("training", "delta", "eps", "description", "paper")
                 if getattr(model, k) is not None}
    if model.zoo:
        entry = zoo_entry(model.zoo)
        meta = {"dataset": entry.get("dataset"), "architecture": entry.get("architecture"),
                "training": entry.get("training"), "num_classes": entry.get("num_classes"),
                "num_ops": entry.get("num_ops"), "delta": entry.get("delta"), "eps": entry.get("eps"),
                "threat_model": entry.get("threat_model", "Linf"), "paper": entry.get("paper"),
                "description": entry.get("description") or None,
                "preprocessing": entry.get("preprocessing"), "zoo": model.zoo}
        fingerprint = zoo_fingerprint(model.zoo, entry, cfg.runtime.model_dir)
        reported = model.reported if model.reported is not None else entry.get("reported")
    else:
        from ..train.checkpoint import read_checkpoint

        path = Path(model.checkpoint).expanduser()
        state = read_checkpoint(path)
        args = state.get("args") or {}
        k, m = state.get("num_classes"), state.get("num_ops", 0)
        for name, given, found in (("num_classes", model.num_classes, k), ("num_ops", model.num_ops, m)):
            if given is not None and found is not None and given != found:
                raise UserError(f"model '{model.key}': the config says {name}={given} but checkpoint {path} has "
                                f"{found}: drop it from the config or fix it")
        training = args.get("adv_mode")
        meta = {"dataset": args.get("dataset"), "architecture": model.arch or state.get("arch"),
                "training": training, "num_classes": k if k is not None else model.num_classes,
                "num_ops": m if m is not None else model.num_ops,
                "delta": args.get("la_delta") if training == "adv_plus" else None,
                "eps": args.get("adv_eps") if training in ("adv", "adv_plus") else None,
                "threat_model": model.threat_model, "checkpoint": str(path)}
        if meta["architecture"] is None or meta["num_classes"] is None:
            raise UserError(f"model '{model.key}': checkpoint {path} does not record its architecture/K: set "
                            "'arch' and 'num_classes' in the config")
        from ..zoo import file_sha256

        fingerprint = {"sha256": file_sha256(path)}  # the weights, wherever the file lies
        reported = model.reported
    meta.update(overrides)
    meta["key"] = model.key
    meta["threat_model"] = model.threat_model if model.threat_model != "Linf" else meta.get("threat_model", "Linf")
    dataset_id = _pick_dataset(cfg, model, meta.get("dataset"))
    return ResolvedModel(model, meta, jsonable(fingerprint), dataset_id, reported)


def load_resolved_model(model: ResolvedModel, model_dir: str):
    """The model in eval mode: through the zoo, or built from its checkpoint (strict load)."""
    if model.config.zoo:
        from ..zoo import load_model

        return load_model(model.config.zoo, model_dir=model_dir, dataset=model.meta.get("dataset"),
                          threat_model=model.meta.get("threat_model", "Linf"))
    from ..models import create_classifier
    from ..train.checkpoint import load_weights, read_checkpoint

    path = Path(model.config.checkpoint).expanduser()
    state = read_checkpoint(path)
    net = create_classifier(model.meta["architecture"], int(model.meta["num_classes"]),
                            int(model.meta["num_ops"] or 0), mean=state.get("mean"), std=state.get("std"))
    load_weights(net, state["state_dict"], path)
    return net.eval()


# ----------------------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------------------


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(jsonable(obj), sort_keys=True).encode()).hexdigest()[:16]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise UserError(f"{path} is damaged (not valid JSON): delete it to recompute") from None


class _Datasets:
    """Datasets built once per run, on first use."""

    def __init__(self, cfg: EvalConfig) -> None:
        self.cfg, self.built = cfg, {}

    def __call__(self, ds_id: str):
        if ds_id not in self.built:
            from ..data import create_dataset

            d = self.cfg.datasets[ds_id]
            ds = create_dataset(d.name, d.data_dir, d.resolved_split, input_size=d.input_size,
                                crop_pct=d.crop_pct, interpolation=d.interpolation)
            self.built[ds_id] = robustbench_subset(ds, ds_id) if d.subset == "robustbench" else ds
        return self.built[ds_id]


class NamedSubset(Subset):
    """``Subset`` that keeps the file names and labels evaluators read (ReaL, ImageNet-X)."""

    def filename(self, index: int) -> str:
        return self.dataset.filename(self.indices[index])

    @property
    def targets(self) -> list[int]:
        targets = self.dataset.targets
        return [int(targets[i]) for i in self.indices]


def robustbench_image_ids() -> list[str]:
    """RobustBench's 5 000 ImageNet test images as ``<wnid>/<file>``, in its order (classes mixed)."""
    import importlib.util

    spec = importlib.util.find_spec("robustbench")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("datasets subset 'robustbench' needs the robustbench package: pip install robustbench")
    ids_file = Path(next(iter(spec.submodule_search_locations))) / "helper_files" / "imagenet_test_image_ids.txt"
    return [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]


def robustbench_subset(dataset, ds_id: str, image_ids: list[str] | None = None) -> NamedSubset:
    """RobustBench's ImageNet test images (:func:`robustbench_image_ids`, in its order, which mixes the classes,
    so the first n cover many classes; ``image_ids`` replaces the list) out of a validation folder."""
    wanted = robustbench_image_ids() if image_ids is None else image_ids
    position = {dataset.filename(i): i for i in range(len(dataset))}
    missing = [w for w in wanted if w.split("/")[-1] not in position]
    if missing:
        raise UserError(f"dataset '{ds_id}' lacks {len(missing)} of RobustBench's {len(wanted)} test images (e.g. "
                        f"{missing[0]}): point data_dir at the full ImageNet validation set, or drop 'subset'")
    return NamedSubset(dataset, [position[w.split("/")[-1]] for w in wanted])


def _check_model_folder(folder: Path, model: ResolvedModel, is_main: bool) -> None:
    marker = folder / "model.json"
    if marker.exists():
        found = _read_json(marker).get("fingerprint")
        if found != model.fingerprint:
            raise UserError(f"{folder} holds results of another checkpoint for model '{model.key}': use another "
                            f"--output, or delete {folder} to recompute")
    elif is_main:
        atomic_write_json(marker, {"model": model.key, "fingerprint": model.fingerprint, "meta": model.meta})


def evaluate_model(cfg: EvalConfig, model: ResolvedModel, output: Path, datasets: _Datasets, *, fast: bool,
                   device, progress: bool) -> dict[str, dict[str, Any]]:
    """Every evaluator's EvalResult dict for one model (reused from ``results/`` where finished)."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from .. import distributed as dist_utils
    from ..evaluation import EvalContext, create_evaluator

    info = dist_utils.current()
    folder = output / model.key
    _check_model_folder(folder, model, info.is_main)
    dist_utils.barrier()
    loaded = None
    results: dict[str, dict[str, Any]] = {}
    bar = tqdm(cfg.evaluators, desc=model.key, leave=False, disable=not (progress and info.is_main))
    for entry in bar:
        bar.set_postfix_str(entry.id)
        ds_id = entry.dataset or model.dataset_id
        settings = entry.effective_settings(fast, cfg.fast)
        fingerprint = _digest({"evaluator": entry.name, "settings": settings,
                               "dataset": cfg.datasets[ds_id].spec(), "num_classes": model.meta["num_classes"],
                               "seed": cfg.runtime.seed})
        result_path = folder / "results" / f"{entry.id}.json"
        if result_path.exists():
            stored = _read_json(result_path)
            if stored.get("fingerprint") != fingerprint:
                raise UserError(f"{result_path} was computed with other settings or data than '{entry.id}' has "
                                f"now: use another --output, or delete it (and {folder / 'cache' / entry.id}) to "
                                "recompute")
            results[entry.id] = stored["result"]
            continue
        cache_dir = folder / "cache" / entry.id
        marker = cache_dir / "fingerprint.json"
        if marker.exists() and _read_json(marker).get("fingerprint") != fingerprint:
            raise UserError(f"{cache_dir} holds splits computed with other settings or data than '{entry.id}' has "
                            f"now: use another --output, or delete {cache_dir} to recompute")
        if info.is_main and not marker.exists():
            atomic_write_json(marker, {"fingerprint": fingerprint, "evaluator": entry.name, "settings": settings,
                                       "dataset": cfg.datasets[ds_id].spec()})
        evaluator = create_evaluator(entry.name, **settings)
        if loaded is None:
            loaded = load_resolved_model(model, cfg.runtime.model_dir)
        torch.manual_seed(cfg.runtime.seed)
        np.random.seed(cfg.runtime.seed)
        ctx = EvalContext(num_classes=int(model.meta["num_classes"]), out_dir=cache_dir, device=device,
                          batch_size=cfg.runtime.batch_size, num_workers=cfg.runtime.num_workers,
                          progress=progress, seed=cfg.runtime.seed)
        started = time.perf_counter()
        result = evaluator.run(loaded, datasets(ds_id), ctx).to_dict()
        result.setdefault("details", {})["wall_seconds"] = round(time.perf_counter() - started, 3)
        if info.is_main:
            atomic_write_json(result_path, {"fingerprint": fingerprint, "id": entry.id, "dataset": ds_id,
                                            "result": result})
        dist_utils.barrier()
        results[entry.id] = result
    return results


def summary_line(key: str, info: Mapping[str, Any]) -> str:
    """One line of headline errors for a model."""
    m = info["labelaug"]["measured"]
    parts = []

    def add(label: str, value: Any, suffix: str = "") -> None:
        if value is not None:
            parts.append(f"{label} {value:.2f}{suffix}")

    add("clean err", m.get("clean_error"))
    add(f"{'PGD-40 + ' if ' + ' in str(m.get('autoattack_attack')) else ''}AA err", m.get("autoattack_error"),
        f" (n={m.get('autoattack_n')})")
    add(f"PGD-{m.get('pgd_steps')} err", m.get("pgd_error"), " (sound)")
    add(f"PGD-{m.get('pgd_paper_steps')} err", m.get("pgd_paper_error"), " (paper protocol)")
    add("mCE", m.get("mce"))
    add("ReaL err", m.get("real_error"))
    cw = m.get("classwise", {})
    add("class SD clean", (cw.get("clean") or {}).get("summary", {}).get("sd"))
    add("class SD PGD", (cw.get("pgd") or {}).get("summary", {}).get("sd"))
    if "masking_passed" in m:
        parts.append(f"masking {m['masking_passed']}/{m['masking_passed'] + m.get('masking_failed', 0)} passed")
    return f"{key}: " + " | ".join(parts)


def evaluate_config(cfg: EvalConfig, output: str | Path | None = None, models: list[str] | None = None,
                    fast: bool = False, device: str | None = None, progress: bool | None = None,
                    plots: bool | None = None, leaderboard: bool = True) -> list[Path]:
    """Evaluate the config's models (or the named subset); returns the model_info paths written. With
    ``leaderboard`` the output folder's leaderboard (and, with ``plots``, the figures) is rendered and printed."""
    from .. import distributed as dist_utils
    from .cli import render
    from .model_info import build_model_info

    chosen = cfg.models
    if models:
        known = {m.key: m for m in cfg.models}
        missing = [k for k in models if k not in known]
        if missing:
            raise UserError(f"--models names {missing}, which {cfg.path} does not list: use some of "
                            f"{', '.join(known)}")
        chosen = [known[k] for k in models]
    out = Path(output) if output else Path(cfg.runtime.output + ("-fast" if fast else ""))
    progress = cfg.runtime.progress if progress is None else progress
    resolved = [resolve_model(cfg, m) for m in chosen]

    requested = device or cfg.runtime.device
    dist, dev = dist_utils.init_distributed(None if requested in ("auto", "cuda") else requested)
    if requested.startswith("cuda") and dev.type != "cuda":
        raise UserError(f"device '{requested}' was asked for but CUDA is not available: use device cpu or auto")
    datasets = _Datasets(cfg)
    written = []
    for model in resolved:
        results = evaluate_model(cfg, model, out, datasets, fast=fast, device=dev, progress=progress)
        extra = {"config": str(cfg.path), "fast": fast, "fingerprint": model.fingerprint,
                 "checkpoint": model.meta.get("checkpoint"),
                 "evaluators": [{"id": e.id, "evaluator": e.name, "dataset": e.dataset or model.dataset_id,
                                 "settings": e.effective_settings(fast, cfg.fast)} for e in cfg.evaluators],
                 "datasets": {k: d.spec() for k, d in cfg.datasets.items()},
                 "preprocessing": model.meta.get("preprocessing"), "zoo": model.meta.get("zoo")}
        info = build_model_info(model.meta, results, reported=model.reported, extra=extra)
        path = out / "model_info" / f"{model.key}.json"
        if dist.is_main:
            atomic_write_json(path, info)
            print(summary_line(model.key, info), flush=True)
        written.append(path)
        dist_utils.barrier()
    if dist.is_main and leaderboard:
        render(out, plots=cfg.runtime.plots if plots is None else plots, title=cfg.title)
    return written


# ----------------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE",
                        help="evaluation config (YAML), or a packaged one by name: digits, paper_imagenet")
    parser.add_argument("--output", default=None, metavar="DIR",
                        help="output folder (default: the config's runtime.output, '-fast' appended with --fast)")
    parser.add_argument("--models", default=None, metavar="A,B", help="evaluate only these models (config names)")
    parser.add_argument("--fast", action="store_true",
                        help="quick run: each evaluator's 'fast' settings and the config's fast.n_examples cap")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or auto (default: the config's)")
    parser.add_argument("--no-plots", action="store_true", help="do not draw the figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    evaluate_config(cfg, output=args.output, models=models, fast=args.fast, device=args.device,
                    progress=False if args.no_progress else None, plots=False if args.no_plots else None)
    return 0
