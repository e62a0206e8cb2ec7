"""Evaluation configs: the YAML schema (see :mod:`robustbench_labelaug.runner`), loading and validation."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, NonNegativeInt

from ..checks import (
    check_choice,
    check_delta,
    check_eps,
    check_input_size,
    check_positive_int,
    is_int,
)
from ..data import get_dataset_spec, list_datasets
from ..errors import UserError
from ..fileio import check_component
from ..packages import package_folder
from ..results.vocab import ATTACK_THREAT_MODELS, DEFAULT_THREAT_MODEL, TRAINING_LABELS
from ..typed import build
from ..yamlio import load_yaml
from .feeding import check_batch_size, check_decode

TOP_KEYS = ("title", "runtime", "datasets", "models", "evaluators", "fast")
# a model's source: a zoo name, a checkpoint path, or one of the registered model sources (zoo/sources.py; a test
# checks that these are the registry's keys)
MODEL_SOURCES = ("zoo", "checkpoint", "robustbench", "timm", "python")
FAST_KEYS = ("n_examples",)
_UNEXPANDED = re.compile(r"\$(\{)?([A-Za-z_][A-Za-z0-9_]*)")


# ----------------------------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------------------------


def _component(what: str) -> AfterValidator:
    """A name that becomes a path component (a model's folder, an evaluator's results file): the one check,
    :func:`~robustbench_labelaug.fileio.check_component`, wherever the block is built (a config, the demo, code)."""
    return AfterValidator(lambda value: check_component(value, what))


class _Schema(BaseModel):
    """A config block: the YAML's keys are its fields (unknown keys refused), values type-checked strictly
    (no "yes" for true, no "8" for 8; an int is a valid float)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class RuntimeConfig(_Schema):
    batch_size: int | str = 64  # or "auto": found once per model by a short probe on the GPU (runner/feeding.py)
    device: str = "auto"
    num_workers: NonNegativeInt = 0
    model_dir: str = "./models"
    output: str = "./output/eval"
    seed: NonNegativeInt = 0
    progress: bool = True
    plots: bool = True
    channels_last: bool = False  # evaluate models in channels_last memory format (same numbers, faster convs)
    decode: str = "cpu"  # "gpu": folder JPEGs decoded and resized on the evaluation device (data/device_decode.py)
    data_fingerprint: str = "stat"  # what results' data fingerprint reads: file sizes+mtimes, or "content" hashes


class DatasetConfig(_Schema):
    id: Annotated[str, _component("dataset id")]
    name: str
    data_dir: str | None = None
    split: str | None = None
    input_size: NonNegativeInt | None = None  # None: the dataset's default (data/registry.py)
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    subset: str | None = None  # e.g. "robustbench" (data/subsets.py), where the dataset supports it
    download: bool = False  # CIFAR: torchvision's download where files are missing (needs internet)
    bad_images: str = "error"  # folders: "skip" leaves damaged files out (counted in model_info), else one error

    @property
    def dataset_spec(self):
        return get_dataset_spec(self.name)

    def spec(self) -> dict[str, Any]:
        """What the data depends on (part of every result's fingerprint): the keys the registry names."""
        d = self.model_dump()
        d["split"] = self.resolved_split
        d["input_size"] = self.input_size or self.dataset_spec.input_size
        return {"name": self.name, **{k: d[k] for k in self.dataset_spec.data_keys}}

    @property
    def resolved_split(self) -> str:
        return self.dataset_spec.resolve_split(self.split)


class ModelConfig(_Schema):
    key: Annotated[str, _component("model name")]  # the model's name in results and its folder under the output
    zoo: str | None = None
    checkpoint: str | None = None
    robustbench: str | None = None      # a RobustBench model name (loaded by robustbench.utils.load_model)
    python: str | None = None           # a user's factory: path/to/file.py:factory or module:callable
    timm: str | None = None             # any timm model (optional local pretrained_file)
    pretrained_file: str | None = None
    arch: str | None = None
    num_classes: NonNegativeInt | None = None
    num_ops: NonNegativeInt | None = None
    training: str | None = None
    delta: float | None = None
    eps: float | None = None
    threat_model: str = DEFAULT_THREAT_MODEL.value  # plain: model_dump() (python) holds no member
    dataset: str | None = None
    description: str | None = None
    paper: Any = None
    reported: dict[str, Any] | None = None
    stochastic: bool = False  # its logits vary between calls on purpose: evaluated as such (modelcheck.py)
    base_dir: str | None = None  # the config's folder: a relative python: file is found from it (set by load_config)


class EvaluatorConfig(_Schema):
    id: Annotated[str, _component("evaluator id")]
    name: str
    dataset: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    fast: dict[str, Any] = Field(default_factory=dict)

    def effective_id(self, fast: bool, fast_caps: Mapping[str, Any]) -> str:
        """The id under which the result is stored and shown, saying what ran: a step count in the id
        (``pgd40_sound``) follows the effective ``steps`` (``--fast``: ``pgd10_sound``)."""
        steps = self.effective_settings(fast, fast_caps).get("steps")
        if not fast or not is_int(steps):
            return self.id
        return re.sub(r"(?i)(pgd[-_]?)(\d+)", lambda m: f"{m.group(1)}{steps}", self.id)

    def effective_settings(self, fast: bool, fast_caps: Mapping[str, Any]) -> dict[str, Any]:
        settings = dict(self.settings)
        if fast:
            settings.update(self.fast)
            cap = fast_caps.get("n_examples")
            if cap is not None:
                n = settings.get("n_examples")
                settings["n_examples"] = cap if n is None else min(n, cap) if is_int(n) and is_int(cap) else n
        return settings


def keys_of(model: type[BaseModel], *, without: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The YAML keys of a config block: the schema's fields (its one home), less the internal ones."""
    return tuple(k for k in model.model_fields if k not in without) + extra


@dataclass
class EvalConfig:
    path: Path
    title: str
    runtime: RuntimeConfig
    datasets: dict[str, DatasetConfig]
    models: list[ModelConfig]
    evaluators: list[EvaluatorConfig]
    fast: dict[str, Any] = field(default_factory=dict)

    def evaluator_pairs(self, fast: bool = False) -> list[tuple[str, dict[str, Any]]]:
        """The config's evaluators as ``benchmark(evaluators=...)`` takes them, ``(name, {"id": ..., **settings})``
        with the ids and settings ``rbla evaluate`` (``--fast``) stores, so a model benchmarked with them is
        compared evaluator by evaluator with the config's models (``rbla compare``)."""
        return [(e.name, {"id": e.effective_id(fast, self.fast), **e.effective_settings(fast, self.fast)})
                for e in self.evaluators]


def expand_env(value: Any, where: str, _memo: dict | None = None) -> Any:
    """``${VAR}`` / ``$VAR`` in every string of ``value`` replaced from the environment (os.path.expandvars);
    :class:`UserError` naming the first variable that is not set, or set but empty. A mapping or list reached
    twice (a YAML alias) is expanded once and stays shared."""
    memo = {} if _memo is None else _memo
    if isinstance(value, (dict, list)):
        if id(value) in memo:
            return memo[id(value)]
        if isinstance(value, dict):
            out = memo[id(value)] = {}
            out.update({k: expand_env(v, f"{where}.{k}", memo) for k, v in value.items()})
        else:
            out = memo[id(value)] = []
            out.extend(expand_env(v, f"{where}[{i}]", memo) for i, v in enumerate(value))
        return out
    if isinstance(value, str):
        for match in _UNEXPANDED.finditer(value):
            var = match.group(2)
            if os.environ.get(var) == "":
                raise UserError(f"{where} uses the environment variable {var}, which is set but empty: export "
                                f"{var}=<value> (e.g. the dataset folder) or edit the config")
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
    """A config name that becomes a path component: the one check (no separator, not '.' or '..', NUL, length,
    ...), then the config's own alphabet."""
    check_component(value, f"config {file}: {where}: {what}")
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", value):
        raise UserError(f"config {file}: {where}: {what} '{value}' may only use letters, digits and _ . + -")


def _check_dataset_ref(dataset: str | None, datasets: Mapping[str, Any], where: str, file: Path) -> None:
    if dataset is not None and dataset not in datasets:
        raise UserError(f"config {file}: {where} uses dataset '{dataset}', which 'datasets' does not define: "
                        f"use one of {', '.join(datasets) or '(none defined)'}")


def _repeated(values: list[str]) -> list[str]:
    return sorted({v for v in values if values.count(v) > 1})


DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


def check_device(device: str, where: str) -> str:
    """``device`` if it is auto, cpu, cuda, cuda:N or mps, else one :class:`UserError` (``where``: who gave it)."""
    if not isinstance(device, str) or not DEVICE.fullmatch(device):
        raise UserError(f"{where} '{device}' is not known: use auto, cpu, cuda or cuda:N")
    return device


def _check_model_values(model: ModelConfig, where: str) -> None:
    """The values a config may override for a model (they go into model_info as given)."""
    if model.training is not None:
        check_choice(where, "training", model.training, TRAINING_LABELS,
                     "the training mode the weights were made with")
    if model.delta is not None:
        check_delta(where, model.delta)
    if model.eps is not None:
        check_eps(where, model.eps, "eps (the training eps)")
    check_choice(where, "threat_model", model.threat_model, ATTACK_THREAT_MODELS)
    if model.num_classes is not None and model.num_classes < 2:
        raise UserError(f"{where}: num_classes must be >= 2, got {model.num_classes}")


def _check_evaluator_settings(ev: EvaluatorConfig, fast: Mapping[str, Any], where: str) -> None:
    """Build the evaluator with its settings and with its --fast settings: a bad value fails now, not after the
    evaluators before it have run."""
    # deferred: torch (kept out of the CLI's start)
    from ..evaluation import create_evaluator

    for is_fast in (False, True):
        try:
            create_evaluator(ev.name, **ev.effective_settings(is_fast, fast))
        except UserError as exc:
            raise UserError(f"{where}{' with --fast' if is_fast else ''}: {exc}") from None


CONFIG_PACKAGE = "robustbench_labelaug.eval_configs"


def packaged_configs() -> dict[str, Path]:
    """The configs installed with the package (``eval_configs/*.yaml``), by stem: ``digits``, ``paper_imagenet``."""
    folders = [f for f in (package_folder(CONFIG_PACKAGE),) if f is not None]
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
    if file.is_dir():
        raise UserError(f"config file {file} is a folder: pass -c with a YAML file (or a packaged config's name)")
    packaged = packaged_configs()
    if str(path) in packaged:
        return packaged[str(path)]
    raise UserError(f"config file {file} does not exist: pass -c with a YAML file or one of the packaged configs "
                    f"({', '.join(packaged) or 'none installed'})")


def load_config(path: str | Path) -> EvalConfig:
    """Read and validate an evaluation config (see the module docstring); nothing is built or written."""
    # deferred: torch (kept out of the CLI's start)
    from ..evaluation import EVALUATORS

    file = resolve_config_path(path)
    raw = load_yaml(file, f"config file {file}")
    raw = _mapping(raw, "the file", file)
    _check_keys(raw, TOP_KEYS, "the top level", file)
    raw = expand_env(raw, file.name)

    prefix = f"config {file}"
    runtime = build(RuntimeConfig, _mapping(raw.get("runtime"), "runtime", file), prefix, "runtime")

    runtime.batch_size = check_batch_size(runtime.batch_size, f"config {file}")
    runtime.decode = check_decode(runtime.decode, f"config {file}")
    check_device(runtime.device, f"config {file}: runtime.device")
    check_choice(f"config {file}: runtime", "data_fingerprint", runtime.data_fingerprint, ("stat", "content"),
                 "stat: file sizes and times; content: hash every file")

    datasets: dict[str, DatasetConfig] = {}
    for ds_id, ds_raw in _mapping(raw.get("datasets"), "datasets", file).items():
        ds_raw = _mapping(ds_raw, f"datasets.{ds_id}", file)
        check_component(str(ds_id), f"config {file}: datasets: dataset id")
        ds = build(DatasetConfig, {"id": str(ds_id), **ds_raw}, prefix, f"datasets.{ds_id}",
                   keys_of(DatasetConfig, without=("id",)))
        where = f"config {file}: datasets.{ds_id}"
        check_input_size(where, ds.input_size)
        if ds.name not in list_datasets():
            raise UserError(f"{where}: unknown dataset '{ds.name}': use one of {', '.join(list_datasets())}")
        spec = ds.dataset_spec
        if ds.subset is not None and ds.subset not in spec.subsets:
            with_subset = [n for n in list_datasets() if get_dataset_spec(n).subsets]
            subsets = dict.fromkeys(s for n in with_subset for s in get_dataset_spec(n).subsets)
            raise UserError(f"{where}: subset '{ds.subset}' is not known for '{ds.name}': use subset: "
                            f"{' / '.join(subsets)} with name: {' / '.join(with_subset)}, or drop it")
        if spec.needs_data_dir and not ds.data_dir:
            raise UserError(f"{where} ('{ds.name}') needs data_dir (a folder with val/ class folders)")
        try:
            spec.resolve_split(ds.split)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        datasets[ds.id] = ds

    fast = _mapping(raw.get("fast"), "fast", file)
    _check_keys(fast, FAST_KEYS, "fast", file)

    models: list[ModelConfig] = []
    for i, m in _entries(raw, "models", "zoo", keys_of(ModelConfig, without=("key", "base_dir"), extra=("name",)), file,
                         "zoo names or checkpoints"):
        given = [k for k in MODEL_SOURCES if m.get(k) and not (k == "checkpoint" and m.get("python"))]
        if len(given) != 1:
            raise UserError(f"config {file}: models[{i}] needs exactly one of 'zoo' (a zoo name), 'checkpoint' "
                            "(a path), 'robustbench' (a RobustBench model name), 'timm' (a timm model name) or "
                            "'python' (path/to/file.py:factory, with 'checkpoint' for its state dict)")
        if m.get("pretrained_file") and not m.get("timm"):
            raise UserError(f"config {file}: models[{i}]: 'pretrained_file' goes with 'timm: <name>'")
        key = str(m.pop("name", None) or m.get("zoo") or m.get("robustbench") or m.get("timm")
                  or (re.sub(r"[^A-Za-z0-9_.+-]", "_", str(m["python"]).rpartition(":")[2]) if m.get("python")
                      else None)
                  or Path(str(m["checkpoint"])).stem.split(".")[0])
        _check_id(key, "model name", f"models[{i}]", file)
        model = build(ModelConfig, {"key": key, **m, "base_dir": str(file.resolve().parent)}, prefix, f"models[{i}]")
        _check_model_values(model, f"config {file}: models[{i}] ('{key}')")
        _check_dataset_ref(model.dataset, datasets, f"models[{i}] ('{key}')", file)
        models.append(model)
    dup = _repeated([m.key for m in models])
    if dup:
        raise UserError(f"config {file}: model name(s) {dup} appear twice: give each model a distinct 'name'")

    evaluators: list[EvaluatorConfig] = []
    for i, e in _entries(raw, "evaluators", "name", keys_of(EvaluatorConfig), file, "e.g. - name: clean"):
        name = e.get("name")
        if name not in EVALUATORS:
            raise UserError(f"config {file}: evaluators[{i}]: unknown evaluator '{name}': use one of "
                            f"{', '.join(EVALUATORS)}")
        _check_id(str(e.get("id") or name), "evaluator id", f"evaluators[{i}]", file)
        ev = build(EvaluatorConfig, {"id": str(e.get("id") or name), **{k: v for k, v in e.items() if k != "id"}},
                   prefix, f"evaluators[{i}]")
        ev.settings = _mapping(ev.settings, f"evaluators[{i}].settings", file)
        ev.fast = _mapping(ev.fast, f"evaluators[{i}].fast", file)
        _check_dataset_ref(ev.dataset, datasets, f"evaluators[{i}] ('{ev.id}')", file)
        evaluators.append(ev)
    fast_n = fast.get("n_examples")
    if fast_n is not None:
        check_positive_int(f"config {file}: fast", "n_examples", fast_n)
    for i, ev in enumerate(evaluators):  # every setting, also the --fast ones, before any work starts
        _check_evaluator_settings(ev, fast, f"config {file}: evaluators[{i}] ('{ev.id}')")
    dup = _repeated([e.id for e in evaluators])
    if dup:
        raise UserError(f"config {file}: evaluator id(s) {dup} appear twice: give repeated evaluators a distinct "
                        "'id' (e.g. pgd40_sound, pgd40_paper)")
    title = str(raw.get("title") or file.stem)
    return EvalConfig(file, title, runtime, datasets, models, evaluators, fast)


