"""Running a study: its cells trained and evaluated as engine works, then its statistics, figures and verdicts.

The study folder (one writer at a time, its ``rbla.lock``)::

    <study>/cells/<training>.json       what each training and its evaluation are (resuming checks them)
    <study>/train/<training>/           rbla train runs (last.pth.tar, args.yaml, summary.csv)
    <study>/eval/<training>/            the evaluation store: results, per-example parts; eval/model_info/*.json
    <study>/logs/                       each Ray task's output
    <study>/timings.json                each work's wall and CPU seconds (its last run)
    <study>/study.json                  cells, aggregates with intervals, verdicts, matched robustness, power
    <study>/verdicts.md                 the verdict table and its reading aids
    <study>/tradeoff.png, eps_scan.png  the trade-off figure, the eps scan

Trainings run first (a hot start before its fine-tuning), each evaluation after its training (the runner's own
evaluation works, :func:`robustbench_labelaug.runner.tasks.evaluation_works`, into the same store and caches as
``rbla evaluate``), all on the engine (:func:`robustbench_labelaug.engine.run_works`: ``--jobs 1`` here, else a
local Ray or ``--address``). Finished trainings and evaluations are skipped, so a re-run trains nothing that
exists; then ``evaluate_config`` writes each cell's model_info from the stored results (as ``rbla evaluate`` does)
and the analysis reads the per-example results (:mod:`.analysis`)."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import Any

from ..engine import TASK_THREADS, Work, ray_address, run_works
from ..errors import UserError
from ..fileio import (
    RunLock,
    atomic_write_bytes,
    atomic_write_json,
    check_writable_dir,
    jsonable,
    read_json_or_none,
)
from ..runner import evaluate_config
from ..runner.config import EvalConfig, ModelConfig
from ..runner.tasks import evaluation_works
from ..store import EvaluationFolder
from .analysis import analyse, result_ids
from .cells import (
    CHECKPOINT,
    EVAL,
    LOGS,
    TRAIN,
    check_records,
    check_training_args,
    evaluation_record,
    finished_training,
    train_cell,
    training_args,
    training_record,
    write_records,
)
from .config import Study
from .figures import eps_scan_figure, tradeoff_figure
from .plan import Plan, make_plan
from .report import markdown

OUTPUTS = ("study.json", "verdicts.md", "tradeoff.png", "eps_scan.png", "timings.json")


def _uses_gpu(device: str | None) -> bool:
    if device not in (None, "auto") and not str(device).startswith("cuda"):
        return False
    import torch

    return torch.cuda.is_available()


def eval_config(study: Study, eps: float, keys: list[str], study_dir: Path):
    """The runner's config of the cells at ``eps``: the study's dataset, runtime and measures (with the cell's eps,
    and the curves' eps_max, in their settings), one model per training (its checkpoint)."""
    import dataclasses

    # deferred: torch (kept out of the CLI's start)
    from ..evaluation import evaluator_class

    evaluators = []
    for m in study.measures:
        fields = {f.name for f in dataclasses.fields(evaluator_class(m.name))}
        settings = dict(m.settings)
        if "eps" in fields:
            settings["eps"] = eps
        if "eps_max" in fields:
            settings["eps_max"] = study.cfg.eps_max
        evaluators.append(m.model_copy(update={"settings": settings}))
    runtime = study.runtime.model_copy(update={"output": str(study_dir / EVAL), "model_dir": str(study_dir / "models")})
    models = [ModelConfig(key=k, checkpoint=str(study_dir / TRAIN / k / CHECKPOINT), dataset=study.dataset.id)
              for k in keys]
    return EvalConfig(study.path, study.title, runtime, {study.dataset.id: study.dataset}, models, evaluators,
                      {"n_examples": study.cfg.fast.n_examples})


def _evaluated(study_dir: Path, key: str, result_ids: list[str]) -> bool:
    folder = EvaluationFolder(study_dir / EVAL / key, writer=False)
    return all(folder.result_path(rid).is_file() for rid in result_ids)


def plan_study(study: Study, study_dir: Path, fast: bool, device: str | None = None
               ) -> tuple[Plan, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The plan, every training's arguments and record, every cell's evaluation record (checked, not written)."""
    plan = make_plan(study, fast)
    fast_epochs = study.cfg.fast.epochs if fast else None
    args, records = {}, {}
    for name, t in plan.trainings.items():
        where = f"study config {study.path}: training {name}"
        args[name] = training_args(t, study_dir, fast_epochs=fast_epochs, device=device, where=where)
        check_training_args(args[name], where)
        records[name] = training_record(args[name], t)
    evaluated = {name: evaluation_record(study, plan.trainings[name].eps, fast) for name in plan.evaluated()}
    return plan, args, records, evaluated


def describe(study: Study, plan: Plan) -> str:
    """The plan in a few lines (``--dry-run``)."""
    lines = [f"{study.title}: {len(plan.points)} points, {len(plan.trainings)} trainings, {len(plan.cells)} cells "
             f"({len(plan.evaluated())} evaluations), measures {', '.join(m.id for m in study.measures)}"]
    for eps in study.eps_values():
        counts = [(p.name, len(plan.cells_of(p, eps))) for p in plan.points if plan.cells_of(p, eps)]
        lines.append(f"  eps {eps:g}: " + ", ".join(f"{n} x{c}" for n, c in counts))
    extra = [t for t in plan.trainings if t not in set(plan.evaluated())]
    if extra:
        lines.append(f"  hot starts trained for a fine-tuning only: {', '.join(extra)}")
    return "\n".join(lines)


def run_study(study: Study, output: str | Path | None = None, *, fast: bool = False, jobs: int = 1,
              address: str | None = None, device: str | None = None, progress: bool = True,
              dry_run: bool = False) -> dict[str, Any]:
    """Train and evaluate the study's cells (skipping finished ones), then write its outputs (module docstring).
    Returns ``{"folder", "trained", "evaluated", "outputs", "data"}`` (the works this run ran, by name)."""
    study_dir = study.output(str(output) if output else None, fast)
    plan, args, records, evaluated = plan_study(study, study_dir, fast, device)
    if dry_run:
        print(describe(study, plan))
        return {"folder": study_dir, "trained": [], "evaluated": [], "outputs": [], "data": None}
    if jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    gpu = _uses_gpu(device or study.runtime.device)
    fast_epochs = study.cfg.fast.epochs if fast else None
    check_writable_dir(study_dir)
    train_dir, logs = study_dir / TRAIN, study_dir / LOGS
    rids = list(result_ids(study, fast).values())
    with RunLock(study_dir, what="study folder"):  # every file of the study is written by this process
        check_records(study, plan, study_dir, records, evaluated)
        write_records(plan, study_dir, records, evaluated)
        works: list[Work] = []
        on_ray = jobs > 1 or ray_address(address) is not None
        for name, t in plan.trainings.items():
            if finished_training(args[name]) is not None:
                continue
            hot = (("train", f"{t.hot_start}/{CHECKPOINT}"),) if t.hot_start else ()
            log = None if on_ray else str(logs / f"train_{name}.log")  # in-process: the bar alone on the terminal
            works.append(Work(f"train {name}", train_cell,
                              (t, str(study_dir), fast_epochs, "cuda" if gpu else device, log),
                              after=(f"train {t.hot_start}",) if t.hot_start else (), folders={"train": train_dir},
                              seed=(("train", name), *hot), num_cpus=TASK_THREADS, num_gpus=1 if gpu else 0,
                              log=logs / f"train_{name}.log", first=True))
        configs = {}
        for eps in study.eps_values():
            keys = [k for k in plan.evaluated() if plan.trainings[k].eps == eps]
            if not keys:
                continue
            configs[eps] = cfg = eval_config(study, eps, keys, study_dir)
            todo = [k for k in keys if not _evaluated(study_dir, k, rids)]
            works.extend(evaluation_works(cfg, study_dir / EVAL, todo, fast=fast, device=device, gpu=gpu,
                                          progress=False, log_dir=logs, after=lambda key: {f"train {key}"},
                                          folders={"train": train_dir},
                                          seed=lambda key: (("train", f"{key}/{CHECKPOINT}"),)))
        started = time.perf_counter()
        outcomes = run_works(works, jobs, address, progress, desc="study tasks") if works else {}
        _write_timings(study_dir, outcomes)
        for cfg in configs.values():  # every result is stored now: these write the model_info files
            with contextlib.redirect_stdout(io.StringIO()):
                evaluate_config(cfg, output=study_dir / EVAL, fast=fast, device=device, progress=False, plots=False,
                                leaderboard=False)
        data = analyse(study, plan, study_dir, fast)
        data["run"] = {"works": len(works), "seconds": time.perf_counter() - started,
                       "cpu_seconds": sum(o.cpu_seconds for o in outcomes.values()),
                       "where": (f"Ray cluster at {ray_address(address)}" if ray_address(address) else
                                 f"local Ray, {jobs} CPUs" if jobs > 1 else "in-process")}
        written = write_outputs(study, data, study_dir)
    return {"folder": study_dir, "trained": [w.name for w in works if w.name.startswith("train ")],
            "evaluated": [w.name for w in works if w.name.startswith("evaluate ")], "outputs": written,
            "data": data}


def _write_timings(study_dir: Path, outcomes: dict[str, Any]) -> None:
    path = study_dir / "timings.json"
    old = read_json_or_none(path) or {}
    if not outcomes:
        return
    old.update({name: {"seconds": o.seconds, "cpu_seconds": o.cpu_seconds, "node": o.node}
                for name, o in outcomes.items()})
    atomic_write_json(path, old)


def write_outputs(study: Study, data: dict[str, Any], study_dir: Path) -> list[Path]:
    """study.json, verdicts.md and the figures, each written atomically (the caller holds the study's lock)."""
    import json

    written = []
    atomic_write_bytes(study_dir / "study.json", json.dumps(jsonable(data), indent=1, allow_nan=False).encode())
    written.append(study_dir / "study.json")
    atomic_write_bytes(study_dir / "verdicts.md", markdown(data).encode())
    written.append(study_dir / "verdicts.md")
    t = study.cfg.tradeoff
    if t is not None:
        written.append(tradeoff_figure(data, t.measure, t.curve, study_dir / "tradeoff.png"))
        scan = eps_scan_figure(data, t.measure, study_dir / "eps_scan.png")
        if scan is not None:
            written.append(scan)
    return written


__all__ = ["OUTPUTS", "describe", "eval_config", "plan_study", "run_study", "write_outputs"]
