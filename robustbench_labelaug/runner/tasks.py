"""Work as tasks with dependencies, run side by side in worker processes: ``rbla evaluate --jobs N`` and
``rbla demo`` (which adds its training runs as tasks before the evaluations).

A config's evaluation is cut into one task per model and evaluator (:func:`evaluation_tasks`; an evaluator that
reuses another's per-sample results, e.g. the masking checks the AutoAttack run, joins that one's task). Each
task evaluates into the same cache ``rbla evaluate`` uses (:func:`evaluate_task`), so a final in-process
:func:`~robustbench_labelaug.runner.run.evaluate_config` only reads the results and writes the model_info files.

:func:`run_tasks` starts ``jobs`` spawned worker processes with ``TASK_THREADS`` torch thread(s) each: most
evaluation work is small-batch attack code (AutoAttack's FAB-T and Square, the masking sweeps) that a second
thread barely speeds up, so two processes on two cores do almost twice the work of one; and every task uses one
thread wherever it runs, so the numbers do not depend on ``--jobs`` or the core count. An evaluator's first model
runs before its other models (shared caches, e.g. the generated corruptions, are written once); the evaluators
marked ``long_running`` start first among the ready tasks.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASK_THREADS = 1  # torch threads per task, wherever it runs (the numbers then do not depend on --jobs)


@dataclass
class Task:
    """One unit of work: ``fn(*args)`` (a module-level function, so a worker process can run it), after the tasks
    named in ``after``; ``done(result)`` runs in the main process when it has finished."""

    name: str
    fn: Callable[..., Any]
    args: tuple
    after: set[str] = field(default_factory=set)
    done: Callable[[Any], None] | None = None
    priority: int = 0  # lower starts first among the tasks that are ready


def default_jobs(device: str | None) -> int:
    """Worker processes by default: the CPU count (at most 4) on a CPU, 1 with CUDA."""
    import torch

    if device not in ("cpu",) and torch.cuda.is_available():
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _run_in_worker(threads: int, fn: Callable[..., Any], args: tuple) -> Any:
    """``fn(*args)`` with ``threads`` torch threads (set here, after the task's modules were imported)."""
    import torch

    torch.set_num_threads(threads)
    return fn(*args)


def _init_worker() -> None:
    import warnings

    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", category=UserWarning, module="pkg_resources")


@contextlib.contextmanager
def task_output(log: str | None):
    """A task's stdout and stderr into its log file (in a worker process), else left as they are."""
    if log is None:
        yield
        return
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", buffering=1) as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        yield


def run_tasks(tasks: Sequence[Task], jobs: int, progress: bool = True, desc: str = "tasks") -> None:
    """Run the tasks, ``jobs`` at a time in worker processes (spawned, ``TASK_THREADS`` torch threads each), each
    once the tasks it comes after have finished (names not among ``tasks``: already done); among the ready ones
    the lowest ``priority`` (then the earliest listed) starts first. With ``jobs`` 1 they run here, in dependency
    order. A failed task stops the others and its error is raised here."""
    from tqdm import tqdm

    names = {t.name for t in tasks}
    pending = list(tasks)
    finished: set[str] = set()
    bar = tqdm(total=len(tasks), desc=desc, unit="task", leave=False, disable=not progress)

    def ready() -> list[Task]:
        return sorted((t for t in pending if (t.after & names) <= finished),
                      key=lambda t: (t.priority, tasks.index(t)))

    def complete(task: Task, result: Any) -> None:
        finished.add(task.name)
        bar.update(1)
        if task.done is not None:
            task.done(result)

    pool = None
    if jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        try:
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker)
        except (OSError, NotImplementedError, ImportError) as exc:  # e.g. no semaphores in a sandbox
            print(f"  worker processes are not available here ({exc}): running the tasks in this process")
    if pool is None:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(TASK_THREADS)
        try:
            while pending:
                task = ready()[0]
                pending.remove(task)
                complete(task, task.fn(*task.args))
        finally:
            torch.set_num_threads(threads)
            bar.close()
        return

    from concurrent.futures import FIRST_COMPLETED, wait

    running: dict[Any, Task] = {}
    try:
        while pending or running:
            for task in ready()[:jobs - len(running)]:
                pending.remove(task)
                running[pool.submit(_run_in_worker, TASK_THREADS, task.fn, task.args)] = task
            if not running:
                raise RuntimeError(f"tasks wait for each other: {[t.name for t in pending]}")
            for future in wait(running, return_when=FIRST_COMPLETED)[0]:
                complete(running.pop(future), future.result())
    except BaseException:
        for process in list((getattr(pool, "_processes", None) or {}).values()):  # stop the other tasks now
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown()


# -- a config's evaluation as tasks ------------------------------------------------------------------------------


def evaluate_task(cfg, output: str, key: str, evaluator_ids: Sequence[str], fast: bool, device: str | None,
                  progress: bool, log: str | None) -> float:
    """The config's evaluators ``evaluator_ids`` on model ``key``, cached in ``output`` as ``rbla evaluate`` caches
    them (a final :func:`~robustbench_labelaug.runner.evaluate_config` then only reads them); returns seconds."""
    from .. import distributed as dist_utils
    from .models import resolve_model
    from .run import DatasetCache, check_num_classes, evaluate_model

    started = time.perf_counter()
    with task_output(log):
        cfg = copy.deepcopy(cfg)
        cfg.models = [m for m in cfg.models if m.key == key]
        cfg.evaluators = [e for e in cfg.evaluators if e.id in evaluator_ids]
        model = resolve_model(cfg, cfg.models[0])
        check_num_classes(cfg, [model])
        requested = device or cfg.runtime.device
        _, dev = dist_utils.init_distributed(None if requested in ("auto", "cuda") else requested)
        evaluate_model(cfg, model, Path(output), DatasetCache(cfg), fast=fast, device=dev, progress=progress)
    return time.perf_counter() - started


def evaluator_groups(cfg) -> list[list]:
    """The config's evaluator entries grouped into tasks: an evaluator that reuses an earlier one's per-sample
    results (``Evaluator.reuses``) joins that one's group."""
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


def evaluation_tasks(cfg, output: str | Path, keys: Sequence[str], *, fast: bool, device: str | None,
                     progress: bool, log_dir: Path | None = None,
                     after: Callable[[str], set[str]] = lambda key: set(),
                     done: Callable[[str, str, float], None] | None = None) -> list[Task]:
    """One task per model (``keys``) and evaluator group (:func:`evaluator_groups`), named
    ``evaluate <output name>/<key>/<ids>``; each after ``after(key)`` (e.g. the model's training) and after the
    group's first model (which fills the shared caches). ``log_dir``: each task's output goes to a log file there
    (worker processes); ``done(key, label, seconds)`` when a task has finished."""
    from ..evaluation import evaluator_class

    output = Path(output)
    tasks: list[Task] = []
    first: dict[str, str] = {}
    for key in keys:
        for group in evaluator_groups(cfg):
            ids = [e.id for e in group]
            label = "+".join(e.effective_id(fast, cfg.fast) for e in group)  # what runs: --fast's pgd10_sound
            name = f"evaluate {output.name}/{key}/{label}"
            needs = set(after(key))
            if label in first:  # the evaluator's first model fills the shared caches
                needs.add(first[label])
            first.setdefault(label, name)
            log = str(log_dir / f"{output.name}_{key}_{label}.log") if log_dir is not None else None
            long = any(evaluator_class(e.name).long_running for e in group)
            tasks.append(Task(name, evaluate_task, (cfg, str(output), key, ids, fast, device, progress, log),
                              after=needs, priority=0 if long else 1,
                              done=None if done is None else (lambda s, key=key, label=label: done(key, label, s))))
    return tasks


__all__ = ["TASK_THREADS", "Task", "default_jobs", "evaluate_task", "evaluation_tasks", "evaluator_groups",
           "run_tasks", "task_output"]
