"""Running a config: every model through the evaluate loop (:mod:`.loop`) into the output folder's store
(:mod:`robustbench_labelaug.store`), then its model_info (see :mod:`robustbench_labelaug.runner`)."""

from __future__ import annotations

from pathlib import Path

from ..engine import ray_address, run_works
from ..errors import UserError
from ..fileio import check_writable_dir
from ..leaderboard.cli import render
from ..leaderboard.table import summary_line
from ..store import EvaluationStore
from . import guards
from .config import EvalConfig, check_device
from .models import MissingCheckpoint, ResolvedModel, resolve_model
from .per_model import DatasetCache, check_num_classes, evaluate_model
from .tasks import evaluation_works


def evaluate_config(cfg: EvalConfig, output: str | Path | None = None, models: list[str] | None = None,
                    fast: bool = False, device: str | None = None, progress: bool | None = None,
                    plots: bool | None = None, leaderboard: bool = True, jobs: int = 1,
                    address: str | None = None) -> list[Path]:
    """Evaluate the config's models (or the named subset); returns the model_info paths written. With
    ``leaderboard`` the output folder's leaderboard (and, with ``plots``, the figures) is rendered and printed.
    ``jobs`` > 1 or a Ray cluster ``address`` (else ``RAY_ADDRESS``): the work runs first as Ray tasks (one per
    model and evaluator group, one torch thread each; :mod:`.tasks`, :mod:`robustbench_labelaug.engine`) on a
    local Ray of ``jobs`` CPUs or on the cluster, their files written here; then this process reads the results."""
    # deferred: torch (kept out of the CLI's start)
    from .. import distributed as dist_utils

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
    requested = check_device(device or cfg.runtime.device, "--device" if device else f"{cfg.path}: runtime.device")
    resolved, missing = [], []
    for m in chosen:  # models without a checkpoint are listed at the end; the others are evaluated
        try:
            resolved.append(resolve_model(cfg, m))
        except MissingCheckpoint as exc:
            missing.append((m.key, exc))
    if missing and not resolved:
        raise _missing_error(missing, [], cfg)
    check_num_classes(cfg, resolved)
    guards.check_classes_and_size(cfg, resolved)
    dist, dev = dist_utils.init_distributed(None if requested in ("auto", "cuda") else requested)
    if requested.startswith("cuda") and dev.type != "cuda":
        raise UserError(f"device '{requested}' was asked for but CUDA is not available: use device cpu or auto")
    if jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")

    on_ray = jobs > 1 or ray_address(address) is not None
    if on_ray and dist.distributed:
        raise UserError("--jobs N / --address run Ray tasks: under torchrun/srun leave --jobs at 1 and unset "
                        "RAY_ADDRESS")
    lock = None
    if dist.is_main:  # one writer per output folder, as rbla train (a second run would redo all the work)
        check_writable_dir(out)
        lock = EvaluationStore(out).lock().acquire(on_stale=print)
    try:
        if on_ray:  # the tasks' files come back and are written here, under this process's lock

            run_works(evaluation_works(cfg, out, [m.key for m in resolved], fast=fast, device=device,
                                       gpu=dev.type == "cuda", log_dir=out / "logs"),
                      jobs, address, progress=progress, desc="evaluation tasks")
        datasets = DatasetCache(cfg)
        checked: dict = {}  # data checks passed in this run (see evaluation.base.once_per_run)
        written = _evaluate_all(cfg, resolved, out, datasets, fast, dev, progress, checked, dist)
    finally:
        if lock is not None:
            lock.release()
        dist_utils.close_distributed()
    if dist.is_main and leaderboard:
        plots = cfg.runtime.plots if plots is None else plots
        render(out, plots=plots, title=cfg.title, html=True, overwrite=True, page_figures=plots)
    if missing:
        raise _missing_error(missing, [m.key for m in resolved], cfg)
    return written


def _evaluate_all(cfg: EvalConfig, resolved: list[ResolvedModel], out: Path, datasets: DatasetCache, fast: bool, dev,
                  progress: bool, checked: dict, dist) -> list[Path]:
    # deferred: torch (kept out of the CLI's start)
    from .. import distributed as dist_utils

    # deferred: torch (kept out of the CLI's start)
    from ..evaluation.declare import model_info_from_results

    written = []
    store = EvaluationStore(out, writer=dist.is_main)
    data_fps = guards.data_fingerprints(cfg)
    for model in resolved:
        results = evaluate_model(cfg, model, out, datasets, fast=fast, device=dev, progress=progress,
                                 checked=checked, data_fps=data_fps)
        extra = {"config": str(cfg.path), "title": cfg.title, "fast": fast, "fingerprint": model.fingerprint,
                 "checkpoint": model.meta.get("checkpoint"),
                 "evaluators": [{"id": e.effective_id(fast, cfg.fast), "evaluator": e.name,
                                 "dataset": e.dataset or model.dataset_id,
                                 "settings": e.effective_settings(fast, cfg.fast)} for e in cfg.evaluators],
                 "datasets": {k: d.spec() for k, d in cfg.datasets.items()},
                 "preprocessing": model.meta.get("preprocessing"), "zoo": model.meta.get("zoo")}
        for key in ("trained_with", "recipe_departures"):  # the training args actually used (zoo models)
            if model.meta.get(key) is not None:
                extra[key] = model.meta[key]
        ds = datasets(model.dataset_id)
        base = getattr(ds, "dataset", ds)  # a subset's dataset
        names = getattr(base, "classes", None)
        if names and len(names) == model.meta.get("num_classes"):
            extra["class_names"] = [str(n) for n in names]
        skipped = getattr(base, "skipped_files", None)
        if skipped is not None:  # bad_images: skip — what was left out, so the denominator is on record
            extra["skipped_files"] = {"count": len(skipped), "files": [str(f) for f in skipped][:100]}
        info = model_info_from_results(model.meta, results, reported=model.reported, extra=extra)
        path = store.write_model_info(model.key, info)
        if dist.is_main:
            print(summary_line(model.key, info), flush=True)
        written.append(path)
        dist_utils.barrier()
    return written


def _missing_error(missing: list[tuple[str, Exception]], done: list[str], cfg: EvalConfig) -> UserError:
    """Print what makes each missing model (one line each); the UserError to end with (one line)."""
    import sys

    for key, exc in missing:
        how = getattr(exc, "how", None)
        print(f"missing: {key}: {exc}" + (f"; make it: {how}" if how else ""), file=sys.stderr, flush=True)
    names = ", ".join(k for k, _ in missing)
    present = f"evaluated {', '.join(done)}; " if done else ""
    keep = f" or evaluate only those present with --models {','.join(done)}" if done else ""
    return UserError(f"{present}{len(missing)} of {len(missing) + len(done)} models of {cfg.path.name} have no "
                     f"checkpoint ({names}): make them with the commands listed above{keep}")


