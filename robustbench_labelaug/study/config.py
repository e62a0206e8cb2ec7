"""Study configs (``rbla study -c study.yaml``): the YAML schema as pydantic models, loading and validation.

A study config declares, once and before any data are seen (docs/study.md)::

    title: "digits: Adv+ vs Adv and the fairness methods"
    output: ./output/study/digits          # the study folder (--output overrides; '-fast' appended with --fast)
    dataset: digits                        # a registered dataset (or {name: ..., split: ..., data_dir: ...})
    eps: 0.1                               # the study eps: every arm is trained and attacked at it
    eps_max: 0.3                           # the robustness curves' range (>= every eps of the study)
    reference: adv                         # the arm every other arm is compared with
    runtime: {batch_size: 128, device: auto, seed: 0, channels_last: true}
    measures:                              # evaluator entries as in an eval config; each cell's eps (and the
      - name: clean                        #   curve's eps_max) is set by the study, never here
      - {id: autoattack, name: autoattack, settings: {version: standard, selection: class_balanced}}
      - {id: curve, name: robustness_curve, settings: {points: 41}}
    arms:
      - {name: adv, method: digits_adv, seeds: 10, eps_scan: [0.05, 0.15], scan_seeds: 3}
      - {name: trades, method: digits_trades, seeds: 5, knobs: {trades_beta: [1, 3, 6]}}   # a knob sweep
    endpoints:                             # pre-specified: the verdict table's family
      alpha: 0.05
      correction: holm
      primary:
        - {measure: autoattack, statistic: worst}
        - {measure: autoattack, statistic: sd, direction: decrease}
      secondary:
        - {measure: clean, statistic: sd}
    tradeoff: {measure: autoattack, curve: curve, matched: [worst, sd]}
    power:
      - {arm: adv_plus, measure: autoattack, statistic: sd, relative_effect: -0.0279, source: "..."}
    fast: {epochs: 2, n_examples: 32, seeds: 2}   # --fast: a smoke run

Every name that becomes a path (arm names, measure ids, knob values in a training's folder name) goes through
:func:`~robustbench_labelaug.fileio.check_component`; every block is a strict pydantic model (unknown keys and
wrongly typed values refused with one line). The cross-field rules (a zoo entry per method that trains on the
study's dataset, knobs that are ``rbla train`` flags, the reference arm, endpoints naming measures and arms) are
checked here too, so a bad config fails before anything is trained. Torch is imported only where the evaluators'
settings are checked (:func:`load_study_config`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt

from ..data import list_datasets
from ..errors import UserError
from ..fileio import check_component
from ..packages import package_folder
from ..results.rules import eps_problem, is_number
from ..runner.config import DatasetConfig, EvaluatorConfig, RuntimeConfig, check_device, expand_env
from ..runner.config import keys_of as eval_keys
from ..runner.feeding import check_batch_size, check_decode
from ..typed import build, rule
from ..yamlio import load_yaml
from ..zoo import get_entry

STATISTICS = ("mean", "sd", "worst")  # stats.bootstrap.STATISTICS (torch-free, but scipy: kept apart here)
DIRECTIONS = ("two-sided", "decrease", "increase")  # stats.equivalence.DIRECTIONS
INTERVALS = ("percentile", "basic", "bc")  # stats.bootstrap.METHODS
ESTIMANDS = ("per_model", "pooled")  # stats.bootstrap.ESTIMANDS
CORRECTIONS = ("holm",)  # the family-wise correction over the endpoints (stats.endpoints: Holm's step-down)
NAME = re.compile(r"[A-Za-z0-9_.+-]+")
# rbla train flags a knob may not set: the study sets them per cell (eps, seed, where the run is written, the hot
# start), or they control the run rather than what is trained
RESERVED_KNOBS = ("adv_eps", "seed", "output", "experiment", "resume", "override_recipe", "initial_checkpoint",
                  "config", "device", "no_progress", "log_interval", "checkpoint_hist", "dataset", "data_dir")
RUNTIME_KEYS = ("batch_size", "device", "num_workers", "seed", "channels_last", "decode", "data_fingerprint")
CONFIG_PACKAGE = "robustbench_labelaug.study_configs"


def _component(what: str) -> AfterValidator:
    """A name that becomes a path component: the one check, then the configs' alphabet."""
    def check(value: str) -> str:
        check_component(value, what)
        if not NAME.fullmatch(value):
            raise ValueError(f"{what} '{value}' may only use letters, digits and _ . + -")
        return value
    return AfterValidator(check)


def _eps_value(v: Any) -> str | None:
    return eps_problem(v)


def _fraction(v: Any) -> str | None:
    return None if is_number(v) and 0 < v < 1 else f"must be a number in (0, 1), got {v!r}"


def _level(v: Any) -> str | None:
    return None if is_number(v) and 0.5 <= v < 1 else f"must be a number in [0.5, 1), e.g. 0.95, got {v!r}"


def _choice(choices: tuple[str, ...]):
    return rule(lambda v: None if v in choices else f"'{v}' is not known: use one of {', '.join(choices)}")


class _Schema(BaseModel):
    """A config block: the YAML's keys are its fields (unknown keys refused), values type-checked strictly."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ArmConfig(_Schema):
    """One arm: a method (a zoo entry, whose recipe is the ``rbla train`` command line) and its knobs (``rbla
    train`` flags with underscores; a list of values is a sweep, at most one per arm), trained with ``seeds``
    seeds at the study eps and ``scan_seeds`` seeds at each eps of ``eps_scan``."""

    name: Annotated[str, _component("arm name")]
    method: str
    knobs: dict[str, Any] = Field(default_factory=dict)
    seeds: PositiveInt = 5
    eps_scan: list[Annotated[float, rule(_eps_value)]] = Field(default_factory=list)
    scan_seeds: PositiveInt | None = None
    label: str | None = None  # shown in the figure and tables (default: the name)


class EndpointConfig(_Schema):
    """One pre-specified endpoint: a statistic of a measure at the study eps, each arm (``arms``: all but the
    reference when left out) against the reference arm."""

    measure: str
    statistic: Annotated[str, _choice(STATISTICS)]
    direction: Annotated[str, _choice(DIRECTIONS)] = "two-sided"
    interval: Annotated[str, _choice(INTERVALS)] | None = None  # None: bc for sd / worst, percentile for mean
    arms: list[str] | None = None


class EndpointsConfig(_Schema):
    alpha: Annotated[float, rule(_fraction)] = 0.05
    correction: Annotated[str, _choice(CORRECTIONS)] = "holm"
    level: Annotated[float, rule(_level)] = 0.95
    n_boot: Annotated[int, Field(ge=100)] = 2000
    seed: Annotated[int, Field(ge=0)] = 0
    estimand: Annotated[str, _choice(ESTIMANDS)] = "per_model"
    primary: list[EndpointConfig]
    secondary: list[EndpointConfig] = Field(default_factory=list)


class TradeoffConfig(_Schema):
    """The trade-off figure and the matched-robustness comparison: ``measure``'s mean robust error on x, its
    worst-class error and class SD on y, ``curve``'s worst-class curve area; ``matched``: the statistics read
    at the reference's mean robust error along each knob sweep."""

    measure: str
    curve: str | None = None
    matched: list[Annotated[str, _choice(STATISTICS)]] = Field(default_factory=lambda: ["worst", "sd"])


class PowerConfig(_Schema):
    """A power report: ``arm`` against the reference on ``statistic`` of ``measure``, for an effect of interest
    (``effect`` in percentage points, or ``relative_effect``: a fraction of the reference's value, e.g. the
    paper's claimed -2.79 % of the class SD), with ``source`` saying where the effect comes from."""

    arm: str
    value: Any = None  # the point of the arm's knob sweep (a swept arm only)
    measure: str
    statistic: Annotated[str, _choice(STATISTICS)] = "sd"
    effect: float | None = None
    relative_effect: float | None = None
    target: Annotated[float, rule(_fraction)] = 0.8
    source: str = ""


class FastConfig(_Schema):
    """``--fast``: a smoke run of the whole pipeline (its numbers mean nothing): at most ``epochs`` per training,
    ``n_examples`` per measure, ``seeds`` per arm and eps (2: the seed variance needs two)."""

    epochs: PositiveInt = 2  # as rbla demo --fast (CFA's recipes calibrate from epoch 1: 1 epoch would refuse them)
    n_examples: PositiveInt = 32
    seeds: Annotated[int, Field(ge=2)] = 2


class StudyConfig(_Schema):
    title: str = ""
    output: str = "./output/study"
    dataset: Any  # a name or a mapping of the eval config's dataset keys (checked in load_study_config)
    eps: Annotated[float, rule(_eps_value)]
    eps_max: Annotated[float, rule(_eps_value)]
    reference: str
    runtime: dict[str, Any] = Field(default_factory=dict)
    measures: list[Any]
    arms: list[ArmConfig]
    endpoints: EndpointsConfig
    tradeoff: TradeoffConfig | None = None
    power: list[PowerConfig] = Field(default_factory=list)
    fast: FastConfig = Field(default_factory=FastConfig)


def keys_of(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(model.model_fields)


# ----------------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------------


def packaged_study_configs() -> dict[str, Path]:
    """The study configs installed with the package (``study_configs/*.yaml``), by stem: ``digits``."""
    folders = [f for f in (package_folder(CONFIG_PACKAGE),) if f is not None]
    folders.append(Path(__file__).resolve().parents[2] / "study_configs")  # a source checkout
    for folder in map(Path, folders):
        if folder.is_dir() and any(folder.glob("*.yaml")):
            return {p.stem: p for p in sorted(folder.glob("*.yaml"))}
    return {}


def resolve_study_path(path: str | Path) -> Path:
    """``path`` itself, or the packaged study config of that name (``-c digits``)."""
    file = Path(path)
    if file.is_file():
        return file
    if file.is_dir():
        raise UserError(f"study config {file} is a folder: pass -c with a YAML file (or a packaged study's name)")
    packaged = packaged_study_configs()
    if str(path) in packaged:
        return packaged[str(path)]
    raise UserError(f"study config {file} does not exist: pass -c with a YAML file or one of the packaged studies "
                    f"({', '.join(packaged) or 'none installed'})")


class Study:
    """A loaded, validated study config: the schema's blocks plus what was resolved from them (the dataset block,
    the runtime block, the measures as eval-config evaluator entries, the zoo entry of each arm)."""

    def __init__(self, path: Path, cfg: StudyConfig, dataset, runtime, measures, entries) -> None:
        self.path, self.cfg = path, cfg
        self.dataset = dataset      # runner.config.DatasetConfig
        self.runtime = runtime      # runner.config.RuntimeConfig
        self.measures = measures    # [runner.config.EvaluatorConfig], eps / eps_max left to each cell
        self.entries = entries      # arm name -> ZooEntry of its method

    @property
    def title(self) -> str:
        return self.cfg.title or self.path.stem

    def arm(self, name: str) -> ArmConfig:
        return next(a for a in self.cfg.arms if a.name == name)

    def measure(self, measure_id: str):
        return next(m for m in self.measures if m.id == measure_id)

    def eps_values(self) -> list[float]:
        """Every eps the study trains at: the study eps first, then the scans' in increasing order."""
        scans = sorted({e for a in self.cfg.arms for e in a.eps_scan if e != self.cfg.eps})
        return [self.cfg.eps, *scans]

    def output(self, given: str | None, fast: bool) -> Path:
        if given:
            return Path(given)
        return Path(self.cfg.output + ("-fast" if fast else ""))


def _mapping(value: Any, where: str, file: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"study config {file}: '{where}' must be a mapping, got {type(value).__name__}")
    return value


def load_study_config(path: str | Path) -> Study:
    """Read and validate a study config (see the module docstring); nothing is trained or written."""
    file = resolve_study_path(path)
    raw = _mapping(load_yaml(file, f"study config {file}"), "the file", file)

    raw = expand_env(raw, file.name)
    prefix = f"study config {file}"
    cfg: StudyConfig = build(StudyConfig, raw, prefix, "the top level")
    dataset = _dataset(cfg.dataset, prefix)
    runtime = _runtime(cfg.runtime, prefix)
    measures = _measures(cfg, prefix)
    entries = _arms(cfg, dataset, prefix)
    _eps(cfg, prefix)
    _endpoints(cfg, measures, prefix)
    study = Study(file, cfg, dataset, runtime, measures, entries)
    _check_measure_settings(study, prefix)
    return study


def _dataset(value: Any, prefix: str):
    raw = {"name": value} if isinstance(value, str) else value
    if not isinstance(raw, dict):
        raise UserError(f"{prefix}: 'dataset' must be a dataset name (e.g. digits) or a mapping (name, split, "
                        f"data_dir, ...), got {value!r}")
    name = raw.get("name")
    ds = build(DatasetConfig, {"id": str(name) if isinstance(name, str) else "dataset", **raw}, prefix, "dataset",
               eval_keys(DatasetConfig, without=("id",)))
    check_component(ds.name, f"{prefix}: dataset name")
    if ds.name not in list_datasets():
        raise UserError(f"{prefix}: dataset: unknown dataset '{ds.name}': use one of {', '.join(list_datasets())}")
    spec = ds.dataset_spec
    if spec.needs_data_dir and not ds.data_dir:
        raise UserError(f"{prefix}: dataset '{ds.name}' needs data_dir (a folder with its images)")
    try:
        spec.resolve_split(ds.split)
    except UserError as exc:
        raise UserError(f"{prefix}: dataset: {exc}") from None
    return ds


def _runtime(values: Mapping[str, Any], prefix: str):
    runtime = build(RuntimeConfig, dict(values), prefix, "runtime", RUNTIME_KEYS)
    unknown = sorted(set(values) - set(RUNTIME_KEYS))
    if unknown:
        raise UserError(f"{prefix}: unknown key(s) {unknown} in runtime: use {', '.join(RUNTIME_KEYS)} (the study "
                        "folder is 'output' at the top level)")
    runtime.batch_size = check_batch_size(runtime.batch_size, prefix)
    runtime.decode = check_decode(runtime.decode, prefix)
    check_device(runtime.device, f"{prefix}: runtime.device")
    runtime.progress, runtime.plots = False, False  # the study shows one bar; its figures are its own
    return runtime


def _measures(cfg: StudyConfig, prefix: str) -> list:
    # deferred: torch (kept out of the CLI's start)
    from ..evaluation import EVALUATORS

    if not cfg.measures:
        raise UserError(f"{prefix}: 'measures' must be a non-empty list of evaluators (e.g. - name: clean)")
    allowed = eval_keys(EvaluatorConfig, without=("dataset",))
    out = []
    for i, m in enumerate(cfg.measures):
        m = {"name": m} if isinstance(m, str) else m
        if not isinstance(m, dict):
            raise UserError(f"{prefix}: measures[{i}] must be an evaluator name or a mapping, got {m!r}")
        unknown = sorted(set(map(str, m)) - set(allowed))
        if unknown:
            raise UserError(f"{prefix}: unknown key(s) {unknown} in measures[{i}]: use {', '.join(allowed)} (every "
                            "measure runs on the study's dataset)")
        name = m.get("name")
        if name not in EVALUATORS:
            raise UserError(f"{prefix}: measures[{i}]: unknown evaluator '{name}': use one of {', '.join(EVALUATORS)}")
        mid = str(m.get("id") or name)
        check_component(mid, f"{prefix}: measures[{i}]: measure id")
        if not NAME.fullmatch(mid):
            raise UserError(f"{prefix}: measures[{i}]: measure id '{mid}' may only use letters, digits and _ . + -")
        ev = build(EvaluatorConfig, {**m, "id": mid}, prefix, f"measures[{i}]", allowed)
        for block in ("settings", "fast"):
            if not isinstance(getattr(ev, block), dict):
                raise UserError(f"{prefix}: measures[{i}].{block} must be a mapping")
            for key in ("eps", "eps_max"):
                if key in getattr(ev, block):
                    where = "its training eps, the study's 'eps' or an arm's 'eps_scan'" if key == "eps" else \
                        "the top-level 'eps_max'"
                    raise UserError(f"{prefix}: measures[{i}] ('{mid}') sets {key} in '{block}': the study sets "
                                    f"each cell's {key} ({where}): remove it")
        out.append(ev)
    ids = [m.id for m in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise UserError(f"{prefix}: measure id(s) {dup} appear twice: give repeated evaluators a distinct 'id'")
    return out


def _arms(cfg: StudyConfig, dataset, prefix: str) -> dict[str, Any]:
    if not cfg.arms:
        raise UserError(f"{prefix}: 'arms' must be a non-empty list (e.g. - {{name: adv, method: digits_adv}})")
    names = [a.name for a in cfg.arms]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"{prefix}: arm name(s) {dup} appear twice: give each arm a distinct 'name'")
    if cfg.reference not in names:
        raise UserError(f"{prefix}: reference '{cfg.reference}' is not an arm: use one of {', '.join(names)}")
    entries = {}
    for i, arm in enumerate(cfg.arms):
        where = f"{prefix}: arms[{i}] ('{arm.name}')"
        try:
            entry = get_entry(arm.method)
        except UserError as exc:
            raise UserError(f"{where}: method: {exc}") from None
        if entry.dataset != dataset.name:
            raise UserError(f"{where}: method '{arm.method}' trains on {entry.dataset}, the study's dataset is "
                            f"{dataset.name}: use a zoo entry of {dataset.name}")
        if entry.starts_from is not None and get_entry(entry.starts_from).dataset != dataset.name:
            raise UserError(f"{where}: its hot start '{entry.starts_from}' trains on another dataset")
        swept = [k for k, v in arm.knobs.items() if isinstance(v, list) and len(v) > 1]
        if len(swept) > 1:
            raise UserError(f"{where}: knobs {swept} are all swept: one knob sweep per arm (one line of the "
                            "trade-off figure): split them into arms")
        if arm.name == cfg.reference and swept:
            raise UserError(f"{where}: the reference arm sweeps '{swept[0]}': give the reference one value per knob "
                            "(the comparisons need one reference point)")
        for knob, value in arm.knobs.items():
            check_component(knob, f"{where}: knob name")
            if knob in RESERVED_KNOBS:
                raise UserError(f"{where}: knob '{knob}' is set by the study (eps, seed, folders, hot start) or "
                                "controls the run: remove it (eps values go in 'eps_scan')")
            values = value if isinstance(value, list) else [value]
            if not values:
                raise UserError(f"{where}: knob '{knob}' has an empty list: give a value or a list of values")
            for v in values:
                if not (isinstance(v, (str, bool)) or is_number(v)):
                    raise UserError(f"{where}: knob '{knob}' value {v!r} must be a number, a string or true/false")
                knob_text(v, f"{where}: knob '{knob}'")
        if arm.scan_seeds is not None and not arm.eps_scan:
            raise UserError(f"{where}: scan_seeds without eps_scan: add the scan's eps values or drop scan_seeds")
        entries[arm.name] = entry
    return entries


def knob_text(value: Any, where: str = "knob") -> str:
    """A knob value as it appears in a training's folder name (``3``, ``0.05``, ``ccm+ccr``), checked."""
    if isinstance(value, bool):
        text = "on" if value else "off"
    elif isinstance(value, (int, float)):
        text = f"{value:g}"
    else:
        text = str(value).replace(",", "+")
    check_component(text, f"{where} value")
    if not NAME.fullmatch(text):
        raise UserError(f"{where} value {value!r} names a training folder: it may only use letters, digits and "
                        "_ . + - (commas become +)")
    return text


def _eps(cfg: StudyConfig, prefix: str) -> None:
    for arm in cfg.arms:
        dup = sorted({e for e in arm.eps_scan if arm.eps_scan.count(e) > 1})
        if dup:
            raise UserError(f"{prefix}: arm '{arm.name}': eps_scan repeats {dup}: list each eps once")
        if cfg.eps in arm.eps_scan:
            raise UserError(f"{prefix}: arm '{arm.name}': eps_scan lists the study eps {cfg.eps:g}, which every arm "
                            "runs anyway (with 'seeds' seeds): list only the other eps of the scan")
    top = max([cfg.eps, *(e for a in cfg.arms for e in a.eps_scan)])
    if cfg.eps_max < top:
        raise UserError(f"{prefix}: eps_max {cfg.eps_max:g} is below the study's largest eps {top:g}: the "
                        "robustness curves must reach every eps the study attacks at: raise eps_max")


def _endpoints(cfg: StudyConfig, measures: list, prefix: str) -> None:
    ids = [m.id for m in measures]
    arms = [a.name for a in cfg.arms]

    def check_measure(measure: str, where: str) -> None:
        if measure not in ids:
            raise UserError(f"{prefix}: {where}: measure '{measure}' is not one of the measures ({', '.join(ids)})")

    def check_arm(arm: str, where: str) -> None:
        if arm not in arms:
            raise UserError(f"{prefix}: {where}: arm '{arm}' is not an arm of the study ({', '.join(arms)})")
        if arm == cfg.reference:
            raise UserError(f"{prefix}: {where}: arm '{arm}' is the reference: an arm is compared with it, not "
                            "with itself")

    if not cfg.endpoints.primary:
        raise UserError(f"{prefix}: endpoints.primary is empty: pre-specify at least one primary endpoint (e.g. "
                        "- {measure: autoattack, statistic: worst})")
    if len(arms) < 2:
        raise UserError(f"{prefix}: a study needs the reference arm and at least one arm to compare with it")
    for family in ("primary", "secondary"):
        for i, e in enumerate(getattr(cfg.endpoints, family)):
            where = f"endpoints.{family}[{i}]"
            check_measure(e.measure, where)
            for arm in e.arms or ():
                check_arm(arm, where)
    if cfg.tradeoff is not None:
        check_measure(cfg.tradeoff.measure, "tradeoff")
        if cfg.tradeoff.curve is not None:
            check_measure(cfg.tradeoff.curve, "tradeoff.curve")
            name = next(m.name for m in measures if m.id == cfg.tradeoff.curve)
            if not _is_curve(name):
                raise UserError(f"{prefix}: tradeoff.curve: measure '{cfg.tradeoff.curve}' is a {name} evaluator, "
                                "not a robustness curve: name a robustness_curve measure or drop 'curve'")
    for i, p in enumerate(cfg.power):
        where = f"power[{i}]"
        check_measure(p.measure, where)
        check_arm(p.arm, where)
        arm = next(a for a in cfg.arms if a.name == p.arm)
        sweep = next((v for v in arm.knobs.values() if isinstance(v, list) and len(v) > 1), None)
        if sweep is not None and p.value not in sweep:
            raise UserError(f"{prefix}: {where}: arm '{p.arm}' sweeps a knob: name its point with 'value' (one of "
                            f"{', '.join(map(str, sweep))})")
        if sweep is None and p.value is not None:
            raise UserError(f"{prefix}: {where}: arm '{p.arm}' sweeps no knob: drop 'value'")
        if (p.effect is None) == (p.relative_effect is None):
            raise UserError(f"{prefix}: {where}: give either 'effect' (percentage points) or 'relative_effect' (a "
                            "fraction of the reference's value, e.g. -0.0279), not both or neither")
        value = p.effect if p.effect is not None else p.relative_effect
        if not (math.isfinite(value) and value != 0):
            raise UserError(f"{prefix}: {where}: the effect of interest must be a non-zero number, got {value!r}")


def _is_curve(evaluator_name: str) -> bool:
    """Whether an evaluator gives per-example robust radii (a robustness curve): its class says so."""
    # deferred: torch (kept out of the CLI's start)
    from ..evaluation import evaluator_class

    return hasattr(evaluator_class(evaluator_name), "eps_max")


def _check_measure_settings(study: Study, prefix: str) -> None:
    """Build every measure at every eps of the study, with and without --fast: a bad setting fails now."""
    import dataclasses

    # deferred: torch (kept out of the CLI's start)
    from ..evaluation import create_evaluator, evaluator_class

    fast_caps = {"n_examples": study.cfg.fast.n_examples}
    for i, m in enumerate(study.measures):
        fields = {f.name for f in dataclasses.fields(evaluator_class(m.name))}
        for eps in study.eps_values():
            for fast in (False, True):
                try:
                    create_evaluator(m.name, **cell_settings(m, fields, eps, study.cfg.eps_max, fast, fast_caps))
                except UserError as exc:
                    raise UserError(f"{prefix}: measures[{i}] ('{m.id}') at eps {eps:g}"
                                    f"{' with --fast' if fast else ''}: {exc}") from None


def cell_settings(measure, fields: set[str], eps: float, eps_max: float, fast: bool,
                  fast_caps: Mapping[str, Any]) -> dict[str, Any]:
    """A measure's evaluator settings for a cell at ``eps``: its own settings (with --fast: its fast ones and the
    n_examples cap), and the study's eps / eps_max where the evaluator takes them."""
    settings = measure.effective_settings(fast, fast_caps)
    if "eps" in fields:
        settings["eps"] = eps
    if "eps_max" in fields:
        settings["eps_max"] = eps_max
    return settings


__all__ = ["ArmConfig", "EndpointConfig", "EndpointsConfig", "FastConfig", "PowerConfig", "Study", "StudyConfig",
           "TradeoffConfig", "cell_settings", "knob_text", "load_study_config", "packaged_study_configs",
           "resolve_study_path"]
