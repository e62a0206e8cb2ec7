"""``rbla demo``: the main job on the embedded digits data, offline on a CPU.

Trains ``digits_std``, ``digits_adv`` and ``digits_adv_plus`` with their zoo recipes (the paper's recipe scaled to
digits), exports them into the zoo's checkpoint layout so ``load_model("digits_adv_plus")`` works afterwards,
evaluates them with the packaged ``digits`` config (clean and class-wise error, PGD-40 in the sound and the paper
protocol, PGD-40 + AutoAttack (AutoAttack only on the points PGD-40 leaves), generated-corruption mCE,
gradient-masking checks), and writes the model_info JSONs, the leaderboard and the plots. Every stage resumes: re-running skips finished training epochs and evaluation parts.
``--seeds N`` repeats training with N seeds and reports means with 95 % confidence intervals.

The work runs on the engine (:mod:`robustbench_labelaug.engine`): one task per training run (which also exports
its seed-0 checkpoint), then the runner's own evaluation tasks (one per model and evaluator group, each after the
model's training, which hands it the checkpoint), as Ray tasks on a local Ray of ``--jobs`` CPUs (or on the cluster
at ``--address``) with one torch thread each, so the numbers do not depend on ``--jobs`` or the machine's core
count; ``--jobs 1`` runs them here, without Ray. A task's output goes to ``<output>/logs/<task>.log``. The runner's
``evaluate_config`` then reads the cached results and writes the model_info files, as ``rbla evaluate`` does.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path
from typing import Any

from .data.registry import DEFAULT_DATASET
from .engine import TASK_THREADS, Folders, Work, add_engine_arguments, default_jobs, ray_address, run_works
from .errors import UserError
from .fileio import RunLock, atomic_write_bytes, check_writable_dir, not_a_folder, output_locks
from .leaderboard.cli import render
from .mdtext import md_text
from .results.model_info import load_model_info, stored_headlines
from .results.vocab import (
    ADV,
    ADV_MIX,
    ADV_PLUS,
    ADV_PLUS_DUMMY,
    NO_POLICY,
    STD,
    TRADES,
    Fair,
    training_label,
)
from .runner import ModelConfig, evaluate_config, load_config
from .runner.tasks import evaluation_works
from .store import EvaluationStore
from .train import train
from .zoo.entries import get_entry, parse_recipe

__all__ = ["DEMO_MODELS", "add_arguments", "main", "mean_ci", "seeds_summary", "seeds_table", "train_work"]

HELP = "the embedded demo: train, evaluate and rank Std / Adv / Adv+ on the digits data"
DEMO_MODELS = ("digits_std", "digits_adv", "digits_adv_plus")
# --methods: the paper's three (the default) and the methods Adv+ is compared with (issue 20), by zoo entry
METHODS = {STD: "digits_std", ADV: "digits_adv", ADV_PLUS: "digits_adv_plus",
           ADV_MIX: "digits_adv_mix", ADV_PLUS_DUMMY: "digits_adv_plus_dummy",  # the two controls of Adv+
           TRADES: "digits_trades", Fair.CFA: "digits_adv_cfa", training_label(ADV_PLUS, Fair.CFA): "digits_adv_plus_cfa",
           training_label(TRADES, Fair.CFA): "digits_trades_cfa", Fair.FRL: "digits_frl"}
DEFAULT_METHODS = ",".join((STD, ADV, ADV_PLUS))


def demo_models(methods: str | None) -> tuple[str, ...]:
    """Zoo entries of a ``--methods`` list (comma separated, in the order given, duplicates dropped); an entry
    that fine-tunes another (``starts_from``: FRL's hot start) brings that one in before it."""
    names = [m.strip() for m in (methods or DEFAULT_METHODS).split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise UserError(f"--methods {methods!r}: unknown method(s) {bad}: use a comma list of {', '.join(METHODS)}")
    ordered: list[str] = []
    for name in (METHODS[m] for m in names):
        start = get_entry(name).starts_from
        if start is not None and start not in ordered:
            ordered.append(start)
        if name not in ordered:
            ordered.append(name)
    return tuple(ordered)
FAST_EPOCHS = 2


def seed_metrics(info: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """key -> (label, value) of a model_info's numeric headline errors, as its evaluators declare them
    (``Evaluator.headline``: the ones the summary line shows, in %)."""
    values = stored_headlines(info)
    return {k: (h.label, float(h.value)) for k, h in values.items()
            if h.show and h.unit == "%" and isinstance(h.value, (int, float)) and not isinstance(h.value, bool)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="rbla_demo", metavar="DIR",
                        help="runs, evaluation results, leaderboard and plots (default rbla_demo; rbla_demo-fast "
                             "with --fast)")
    parser.add_argument("--model-dir", default=None, metavar="DIR",
                        help="where the checkpoints are exported for load_model (default ./models, load_model's "
                             "default; <output>/models with --fast, so a smoke run never replaces them)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="train every model with N seeds and report means with 95%% CIs")
    parser.add_argument("--methods", default=DEFAULT_METHODS, metavar="LIST",
                        help=f"methods to train and evaluate, comma separated, from {', '.join(METHODS)} (default "
                             f"{DEFAULT_METHODS}: the paper's three; e.g. --methods {','.join(METHODS)})")
    parser.add_argument("--fast", action="store_true",
                        help=f"smoke run: {FAST_EPOCHS} epochs per model, the config's fast evaluation settings")
    add_engine_arguments(parser, "train and evaluate")
    parser.add_argument("--device", default=None, help="cpu, cuda or auto (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_train_args(name: str, seed_index: int, out: Path, fast: bool, progress: bool, device: str | None):
    """The entry's recipe as ``rbla train`` arguments, redirected into the demo's folder."""
    args = parse_recipe(get_entry(name).recipe, name)
    args.seed += seed_index
    args.output = str(out / "train")
    args.experiment = _experiment(name, seed_index)
    start = get_entry(name).starts_from
    if start is not None:  # the hot start: this demo's run of that entry with the same seed
        args.initial_checkpoint = str(out / "train" / _experiment(start, seed_index) / "last.pth.tar")
    args.no_progress = not progress
    args.log_interval = 0
    args.device = None if device in (None, "auto") else device
    if fast:
        args.epochs = min(args.epochs, FAST_EPOCHS)
    return args


def _experiment(name: str, seed_index: int) -> str:
    return name if seed_index == 0 else f"{name}_seed{seed_index}"


def finished_run(args) -> Path | None:
    """The run's checkpoint when it is finished, else None (a run of another length is refused)."""
    # deferred: torch (kept out of the CLI's start)
    from .train import read_checkpoint

    last = Path(args.output) / args.experiment / "last.pth.tar"
    if not last.exists():
        return None
    state = read_checkpoint(last)
    if state["args"].get("epochs") != args.epochs:
        raise UserError(f"{last} was trained for {state['args'].get('epochs')} epochs, this demo trains "
                        f"{args.epochs}: use another --output (or delete {last.parent})")
    return last if int(state["epoch"]) + 1 >= args.epochs else None


def train_or_resume(args) -> Path:
    """Train the run, continue it from its last checkpoint, or skip it when it is finished; return its checkpoint."""
    done = finished_run(args)
    if done is not None:
        print(f"  {args.experiment}: finished run found ({done}), skipping")
        return done
    last = Path(args.output) / args.experiment / "last.pth.tar"
    if last.exists():
        args.resume = str(last)
    return train(args).checkpoint


def train_work(folders: Folders, name: str, seed_index: int, out: str, fast: bool, progress: bool,
               device: str | None) -> dict[str, Any]:
    """Train (or resume) one demo run in ``folders["train"]`` and, for seed 0, export its checkpoint into
    ``folders["models"]`` (``load_model``'s layout). Returns the driver's paths of the checkpoint and the export
    (the files themselves come back with the task), the export's sha256 and the seconds."""
    # deferred: torch (kept out of the CLI's start)
    from .zoo import export_checkpoint

    started = time.perf_counter()
    args = run_train_args(name, seed_index, Path(out), fast, progress, device)
    args.output = str(folders.map(args.output))
    if getattr(args, "initial_checkpoint", None):  # a hot start: its run's files came with the dependency
        args.initial_checkpoint = str(folders.map(args.initial_checkpoint))
    checkpoint = train_or_resume(args)
    value: dict[str, Any] = {"checkpoint": str(folders.unmap(checkpoint)), "exported": None}
    if seed_index == 0:
        exported = export_checkpoint(checkpoint, name, folders["models"])
        value["exported"], value["sha256"] = str(folders.unmap(exported.path)), exported.sha256
    value["seconds"] = time.perf_counter() - started
    return value


def _uses_gpu(device: str | None) -> bool:
    """Whether the demo's tasks run on CUDA (``--device`` cuda, or auto/none with CUDA available)."""
    if device not in (None, "auto") and not str(device).startswith("cuda"):
        return False
    import torch

    return torch.cuda.is_available()


def _exported_files(name: str, model_dir: Path) -> tuple[tuple[str, str], ...]:
    """The zoo checkpoint of ``name`` and its sha256 sidecar, relative to ``model_dir`` (a task's seed)."""
    from .zoo.loading import checkpoint_path, sidecar_path  # deferred: torch (kept out of the CLI's start)

    path = checkpoint_path(get_entry(name), model_dir)
    return tuple(("models", p.relative_to(model_dir).as_posix()) for p in (path, sidecar_path(path)))


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its t-distribution confidence interval (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    from scipy.stats import t

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n))


def seeds_summary(infos: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Mean and 95 % CI half-width over seeds of every headline error, per model: what ``seeds.md`` shows and
    ``seeds.json`` stores (the docs' seeds table is rendered from a copy of it: docs/data/demo_seeds.json)."""
    n = min(len(v) for v in infos.values())
    per_run = {name: [seed_metrics(info) for info in runs] for name, runs in infos.items()}
    columns: dict[str, str] = {}  # key -> label, in the order the evaluators declare them
    for runs in per_run.values():
        for metrics in runs:
            for key, (label, _) in metrics.items():
                columns.setdefault(key, label)
    rows: dict[str, list[list[float] | None]] = {}
    values: dict[str, dict[str, list[float]]] = {}
    for name, runs in per_run.items():
        rows[name], values[name] = [], {}
        for key in columns:
            found = [m[key][1] for m in runs if key in m]
            values[name][key] = found
            rows[name].append(list(mean_ci(found)) if found else None)
    return {"statistic": f"mean ± 95 % CI (t-distribution) over {n} seeds, errors in %", "seeds": n,
            "keys": list(columns), "columns": list(columns.values()), "rows": rows, "values": values}


def seeds_table(infos: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: mean ± 95 % CI over seeds of the headline errors, one row per training mode."""
    summary = seeds_summary(infos)
    header = ["model", *summary["columns"]]
    lines = [f"Mean ± 95 % CI (t-distribution) over {summary['seeds']} seeds; errors in %.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, cells in summary["rows"].items():
        lines.append("| " + " | ".join([md_text(name), *("–" if c is None else f"{c[0]:.2f} ± {c[1]:.2f}" for c in cells)])
                     + " |")
    return "\n".join(lines) + "\n"


def adv_plus_vs_adv(infos: dict[str, dict[str, Any]]) -> list[str]:
    """Plain-language comparison of what was measured (whatever it shows)."""
    adv, plus = seed_metrics(infos["digits_adv"]), seed_metrics(infos["digits_adv_plus"])
    lines = []
    for key, (label, a) in adv.items():
        if key not in plus:
            continue
        b = plus[key][1]
        verdict = "lower (better)" if b < a else "higher (worse)" if b > a else "equal"
        lines.append(f"  {label:32s} Adv {a:6.2f}   Adv+ {b:6.2f}   -> Adv+ {verdict}")
    return lines


def main(args: argparse.Namespace) -> int:
    from .zoo.export import export_checkpoint  # deferred: torch (kept out of the CLI's start)

    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {args.seeds}")
    models = demo_models(getattr(args, "methods", None))
    jobs = default_jobs(args.device) if getattr(args, "jobs", None) is None else args.jobs
    if jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    address = ray_address(getattr(args, "address", None))
    started = time.perf_counter()
    out = Path(args.output + ("-fast" if args.fast and args.output == "rbla_demo" else ""))
    model_dir = Path(args.model_dir) if args.model_dir else (out / "models" if args.fast else Path("./models"))

    for folder in (out, model_dir):  # a file in the way fails now, not after the first task
        if not_a_folder(folder) is not None:
            raise not_a_folder(folder)
    progress = not args.no_progress
    eps = get_entry("digits_adv_plus").eps
    print(f"rbla demo: scikit-learn digits (1437 train / 360 test, 32x32, K=10), resnet8_tiny; threat model L-inf "
          f"eps = {eps} in [0,1] pixel units (chosen so digits is non-trivial: at 0.03 adversarial training keeps "
          f"~94 % under PGD-40, at {eps} about half); {args.seeds} seed(s){', fast smoke run' if args.fast else ''}; "
          + (f"Ray tasks on the cluster at {address}" if address else
             f"{jobs} Ray task(s) side by side" if jobs > 1 else "one task at a time in this process")
          + f", {TASK_THREADS} torch thread each")

    print("1/3 training (zoo recipes: PGD-10 adversarial training, Adv+ adds label augmentation, delta 0.03, M 1) "
          "and 2/3 evaluation (packaged config 'digits'; sound protocol unless named 'paper protocol')")
    logs = out / "logs"
    on_ray = jobs > 1 or address is not None
    task_progress = progress and not on_ray
    gpu = _uses_gpu(args.device)
    eval_dir = out / "eval"
    train_dir = out / "train"
    cfg = load_config("digits")
    cfg.runtime.model_dir = str(model_dir)
    cfg.models = [ModelConfig(key=name, zoo=name) for name in models]
    seed_cfg = copy.deepcopy(cfg)
    seed_cfg.models = []
    works: list[Work] = []

    def trained(name: str, seed_index: int, experiment: str, fawa: bool = False):
        def done(result: dict[str, Any]) -> None:
            if result.get("seconds") is not None:
                print(f"  {experiment}: trained ({result['seconds']:.0f} s)", flush=True)
            if fawa:  # CFA's averaged model: said either way, since its gate may never open
                averaged = Path(result["checkpoint"]).with_name("fawa.pth.tar")
                print(f"  {experiment}: " + (
                    f"FAWA model written ({averaged}; rbla zoo export --checkpoint {averaged} --name "
                    f"{experiment}_fawa)" if averaged.is_file() else
                    "no FAWA model: its gate (worst-class validation PGD accuracy >= --fawa-threshold) never "
                    "opened, so this CFA run is CCM alone"), flush=True)
            if seed_index == 0:
                if result.get("exported") is None:  # a run finished earlier: exported here
                    exported = export_checkpoint(result["checkpoint"], name, model_dir)
                    result = {**result, "exported": str(exported.path), "sha256": exported.sha256}
                print(f"  exported {name} -> {result['exported']} (sha256 {result['sha256'][:12]}...)", flush=True)
        return done

    for seed_index in range(args.seeds):
        for name in models:
            train_args = run_train_args(name, seed_index, out, args.fast, progress, args.device)
            experiment = train_args.experiment
            fawa = getattr(train_args, "fair", NO_POLICY) == Fair.CFA and "fawa" in str(getattr(train_args, "cfa_parts", ""))
            if seed_index > 0:  # evaluated into eval_seeds/ under the run's name
                seed_cfg.models.append(ModelConfig(key=experiment, dataset=DEFAULT_DATASET, checkpoint=str(
                    Path(train_args.output) / experiment / "last.pth.tar")))
            print(f"  {experiment}: {train_args.epochs} epochs, seed {train_args.seed}")
            finished = finished_run(train_args)
            if finished is not None:
                print(f"  {experiment}: finished run found ({finished}), skipping")
                trained(name, seed_index, experiment, fawa)({"checkpoint": str(finished), "exported": None})
                continue
            start = get_entry(name).starts_from  # FRL fine-tunes its hot start: trained first
            after = (f"train {_experiment(start, seed_index)}",) if start is not None else ()
            hot = (("train", f"{_experiment(start, seed_index)}/last.pth.tar"),) if start is not None else ()
            works.append(Work(f"train {experiment}", train_work,
                              (name, seed_index, str(out), args.fast, task_progress, "cuda" if gpu else args.device),
                              after=after, folders={"train": train_dir, "models": model_dir},
                              seed=(("train", experiment), *hot,
                                    *(_exported_files(name, model_dir) if seed_index == 0 else ())),
                              num_gpus=1 if gpu else 0, log=logs / f"train_{experiment}.log",
                              done=trained(name, seed_index, experiment, fawa), first=True))

    def evaluated(key: str, label: str, seconds: float) -> None:
        print(f"  {key}: {label} evaluated ({seconds:.0f} s)", flush=True)

    def checkpoint_files(key: str) -> tuple[tuple[str, str], ...]:
        """What an evaluation starts with besides its cache: the model's checkpoint when it was made earlier (a
        training in this run hands over its own files)."""
        if key in models:
            return _exported_files(key, model_dir)
        return (("train", f"{key}/last.pth.tar"),)

    def evaluations(config, output: Path, keys: list[str]) -> None:
        """The runner's evaluation works, each after the model's training (its run is named like the key)."""
        works.extend(evaluation_works(config, output, keys, fast=args.fast, device=args.device, gpu=gpu,
                                      progress=task_progress, log_dir=logs, after=lambda key: {f"train {key}"},
                                      folders={"models": model_dir, "train": train_dir}, seed=checkpoint_files,
                                      done=evaluated))

    evaluations(cfg, eval_dir, list(models))
    if args.seeds > 1:
        evaluations(seed_cfg, out / "eval_seeds", [m.key for m in seed_cfg.models])
    if on_ray and works:
        print(f"  ({len(works)} tasks; each one's output is in {logs}/)")
    check_writable_dir(out)
    ray_timings: dict[str, float] = {}
    with RunLock(out, what="demo output"):  # the tasks' files are written here, by this process only
        outcomes = run_works(works, jobs, address, progress, desc="demo tasks", timings=ray_timings)

    # every result is cached now: these write the model_info JSONs (and print each model's summary line)
    evaluate_config(cfg, output=eval_dir, fast=args.fast, device=args.device, progress=progress, plots=False,
                    leaderboard=False)
    seed_infos = {name: [load_model_info(EvaluationStore(eval_dir).model_info_path(name))] for name in models}
    if args.seeds > 1:
        evaluate_config(seed_cfg, output=out / "eval_seeds", fast=args.fast, device=args.device, progress=progress,
                        plots=False, leaderboard=False)
        for s in range(1, args.seeds):
            for name in models:
                seed_infos[name].append(load_model_info(EvaluationStore(out / "eval_seeds").model_info_path(
                    f"{name}_seed{s}")))

    print("3/3 leaderboard and plots")
    board = render(eval_dir, html=eval_dir / "leaderboard.html", plots=True, title=cfg.title, quiet=True,
                   overwrite=True)
    print(board["markdown"])
    if args.seeds > 1:
        table = seeds_table(seed_infos)
        with output_locks([out / "seeds.md", out / "seeds.json"], "demo output"):
            atomic_write_bytes(out / "seeds.md", table.encode())
            atomic_write_bytes(out / "seeds.json", json.dumps(seeds_summary(seed_infos), indent=1).encode())
        print(table)
    if {"digits_adv", "digits_adv_plus"} <= set(models):
        print("Adv+ vs Adv, as measured here (seed 0; the paper reports Adv+ better on robust error and class-wise "
              "SD):")
        print("\n".join(adv_plus_vs_adv({name: runs[0] for name, runs in seed_infos.items()})))
    print(f"\nwrote {eval_dir / 'leaderboard.md'}, {eval_dir / 'leaderboard.html'}, plots in {eval_dir / 'plots'}")
    print(f"load_model('digits_adv_plus', model_dir='{model_dir}') now returns the trained K-way classifier")
    ray_share = sum(ray_timings.values())
    print(f"wall time {time.perf_counter() - started:.0f} s"
          + (f" (Ray's start and stop: {ray_share:.0f} s)" if ray_timings else "")
          + f"; the tasks' CPU time {sum(o.cpu_seconds for o in outcomes.values()):.0f} s")
    return 0
