"""A config's evaluation cut into works for the engine (:mod:`robustbench_labelaug.engine`): ``rbla evaluate
--jobs N / --address`` and ``rbla demo``.

One work per model and evaluator group (:func:`evaluation_works`; an evaluator that reuses another's per-sample
results, e.g. the masking checks the AutoAttack run, joins that one's group). Each evaluates into the cache
``rbla evaluate`` uses (:func:`evaluate_group`, the one call into the runner's evaluation), in the task's copy of
the output folder; the engine brings the files back and the driver writes them, so a final in-process
:func:`~robustbench_labelaug.runner.run.evaluate_config` only reads the results and writes the model_info files.
Every task uses ``engine.TASK_THREADS`` torch thread(s) wherever it runs, so the numbers do not depend on
``--jobs``, the core count or the node; an evaluator's first model runs before its other models (shared caches,
e.g. the generated corruptions, are written once per node); the ``long_running`` evaluators are submitted first.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..engine import TASK_THREADS, Folders, Work
from .models import resolve_model
from .per_model import DatasetCache, check_num_classes, evaluate_model


def evaluate_group(folders: Folders, cfg, output: str | Path, key: str, evaluator_ids: Sequence[str], fast: bool,
                   device: str | None, progress: bool) -> dict[str, Any]:
    """The config's evaluators ``evaluator_ids`` on model ``key``, cached in ``output`` as ``rbla evaluate`` caches
    them (a final :func:`~robustbench_labelaug.runner.evaluate_config` then only reads them). Paths inside the
    work's folders (the output, a model folder, a checkpoint a dependency wrote) are the task's copies
    (``folders.map``). Returns ``{"results": evaluator id -> EvalResult dict, "seconds": ...}``."""
    # deferred: torch (kept out of the CLI's start)
    from .. import distributed as dist_utils

    started = time.perf_counter()
    cfg = copy.deepcopy(cfg)
    cfg.runtime.model_dir = str(folders.map(cfg.runtime.model_dir))
    cfg.models = [m.model_copy(update={"checkpoint": str(folders.map(m.checkpoint))}) if m.checkpoint else m
                  for m in cfg.models if m.key == key]
    cfg.evaluators = [e for e in cfg.evaluators if e.id in evaluator_ids]
    model = resolve_model(cfg, cfg.models[0])
    if model.meta.get("checkpoint"):  # what the results record: the driver's file, not this task's copy of it
        model.meta["checkpoint"] = str(folders.unmap(model.meta["checkpoint"]))
    check_num_classes(cfg, [model])
    requested = device or cfg.runtime.device
    _, dev = dist_utils.init_distributed(None if requested in ("auto", "cuda") else requested)
    results = evaluate_model(cfg, model, folders.map(output), DatasetCache(cfg), fast=fast, device=dev,
                             progress=progress)
    return {"results": results, "seconds": time.perf_counter() - started}


def evaluator_groups(cfg) -> list[list]:
    """The config's evaluator entries grouped into tasks: an evaluator that reuses an earlier one's per-sample
    results (``Evaluator.reuses``) joins that one's group."""
    # deferred: torch (kept out of the CLI's start)
    from ..evaluation import evaluator_class

    groups: list[list] = []
    for entry in cfg.evaluators:
        reuses = evaluator_class(entry.name).reuses
        host = next((g for g in groups if any(e.name in reuses for e in g)), None)
        if host is None:
            groups.append([entry])
        else:
            host.append(entry)
    return groups


def evaluation_works(cfg, output: str | Path, keys: Sequence[str], *, fast: bool, device: str | None,
                     gpu: bool = False, progress: bool = False, log_dir: Path | None = None,
                     after: Callable[[str], set[str]] = lambda key: set(),
                     folders: dict[str, Path] | None = None,
                     seed: Callable[[str], tuple[tuple[str, str], ...]] = lambda key: (),
                     done: Callable[[str, str, float], None] | None = None) -> list[Work]:
    """One work per model (``keys``) and evaluator group (:func:`evaluator_groups`), named
    ``evaluate <output name>/<key>/<ids>``; each after ``after(key)`` (e.g. the model's training) and after the
    group's first model (which fills the shared caches). Each writes the folder ``eval`` (``output``) and starts
    with what it holds for its model (an interrupted run's parts); ``folders``/``seed(key)``: more folders the
    works see (e.g. the demo's checkpoints) and what of them each starts with. ``gpu``: each work takes one GPU
    (``device`` is then the GPU Ray gives it). ``log_dir``: each task's output goes to a log file there (Ray runs);
    ``done(key, label, seconds)`` when a task has finished."""
    # deferred: torch (kept out of the CLI's start)
    from ..evaluation import evaluator_class

    output = Path(output)
    works: list[Work] = []
    first: dict[str, str] = {}
    where = {"eval": output, **(folders or {})}
    for key in keys:
        for group in evaluator_groups(cfg):
            ids = [e.id for e in group]
            label = "+".join(e.effective_id(fast, cfg.fast) for e in group)  # what runs: --fast's pgd10_sound
            name = f"evaluate {output.name}/{key}/{label}"
            needs = set(after(key))
            if label in first:  # the evaluator's first model fills the shared caches
                needs.add(first[label])
            first.setdefault(label, name)
            log = log_dir / f"{output.name}_{key}_{label}.log" if log_dir is not None else None
            long = any(evaluator_class(e.name).long_running for e in group)
            works.append(Work(name, evaluate_group, (cfg, str(output), key, ids, fast, "cuda" if gpu else device,
                                                     progress),
                              after=tuple(sorted(needs)), folders=where, seed=(("eval", key), *seed(key)),
                              num_cpus=TASK_THREADS, num_gpus=1 if gpu else 0, log=log, first=long,
                              done=None if done is None else (
                                  lambda value, key=key, label=label: done(key, label, value["seconds"]))))
    return works


__all__ = ["evaluate_group", "evaluation_works", "evaluator_groups"]
