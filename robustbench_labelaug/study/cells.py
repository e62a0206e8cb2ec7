"""A study's trainings and evaluations as engine works, and the records that make a study folder resumable.

**Training.** A training's ``rbla train`` arguments are its method's zoo recipe as ``rbla demo`` builds a run from
it (:func:`robustbench_labelaug.demo.run_train_args`: the recipe parsed with the real ``rbla train`` flags, the
seed index added to ``--seed``), then the study's overrides parsed with the same flags: the cell's ``--adv-eps``,
the knobs (``trades_beta: 3`` -> ``--trades-beta 3``), the run's folder and, for a fine-tuning method (FRL), its
hot start's ``last.pth.tar`` as ``--initial-checkpoint``; ``--fast`` caps the epochs. :func:`train_cell` is the
engine work: it trains the run, continues it from its last checkpoint, or skips it when it is finished
(``demo.train_or_resume``).

**Records.** ``<study>/cells/<training>.json`` records what a training and its evaluation are (the training's
arguments less those that only steer the run, the measures' evaluator settings at its eps, the dataset and the
runtime seed). A re-run compares the config's cell with it before anything runs: a cell whose training or
evaluation exists and was made otherwise is refused with one line (use another study folder, or delete the cell's
files), as the evaluation store refuses results of other settings."""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..demo import finished_run, run_train_args, train_or_resume
from ..engine import Folders
from ..errors import UserError
from ..fileio import atomic_write_json, atomic_write_text, jsonable, read_json_or_none
from ..train.args import RUN_CONTROL, THIS_CALL, add_arguments, resolve_defaults, validate_args
from .config import Study, cell_settings
from .plan import Plan, Training

TRAIN, EVAL, CELLS, LOGS = "train", "eval", "cells", "logs"  # the study folder's sub-folders
CHECKPOINT = "last.pth.tar"


class _FlagParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print and exit
        raise UserError(message)


def _train_parser() -> argparse.ArgumentParser:
    parser = _FlagParser(prog="rbla train", add_help=False)
    add_arguments(parser)
    return parser


def knob_words(knobs: Mapping[str, Any]) -> list[str]:
    """The knobs as ``rbla train`` flags: ``trades_beta: 3`` -> ``--trades-beta 3``; ``true`` switches a flag on."""
    words: list[str] = []
    for name, value in knobs.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            words.append(flag)
        elif value is not False:
            words += [flag, str(value)]
    return words


def training_args(training: Training, study_dir: Path, *, fast_epochs: int | None, progress: bool = False,
                  device: str | None = None, where: str | None = None) -> argparse.Namespace:
    """The ``rbla train`` arguments of ``training`` (see the module docstring); ``UserError`` naming ``where``
    for a knob that is not an ``rbla train`` flag or a value it refuses."""
    args = run_train_args(training.method, training.seed_index, study_dir, False, progress, device)
    where = where or f"training {training.name}"
    knobs = dict(training.knobs)
    parser = _train_parser()
    known = vars(args)
    for name, value in knobs.items():
        if name not in known:
            raise UserError(f"{where}: knob '{name}' is not an rbla train flag: use a flag's name with underscores "
                            "(e.g. trades_beta for --trades-beta; see rbla train --help)")
        if value is False:
            if known[name] not in (False, None):
                raise UserError(f"{where}: knob '{name}: false' cannot switch off a flag the recipe sets: use "
                                "another method")
    try:
        args = parser.parse_args([*knob_words(knobs), "--adv-eps", repr(float(training.eps))],
                                 namespace=copy.deepcopy(args))
    except UserError as exc:
        raise UserError(f"{where}: its knobs do not parse as rbla train flags ({exc}): fix the knob values") from None
    args.output = str(study_dir / TRAIN)
    args.experiment = training.name
    args.initial_checkpoint = (str(study_dir / TRAIN / training.hot_start / CHECKPOINT) if training.hot_start
                               else None)
    if fast_epochs is not None:
        args.epochs = min(args.epochs, fast_epochs)
    return args


def check_training_args(args: argparse.Namespace, where: str) -> None:
    """``rbla train``'s own checks of the arguments (a copy: the hot start need not exist yet)."""
    probe = copy.deepcopy(args)
    probe.initial_checkpoint = None
    try:
        validate_args(probe)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def training_record(args: argparse.Namespace, training: Training) -> dict[str, Any]:
    """What a training is: its arguments less those that steer the run (folders, device, progress: ``rbla
    train``'s ``THIS_CALL`` / ``RUN_CONTROL``), the hot start by name instead of path."""
    values = vars(resolve_defaults(copy.deepcopy(args)))
    skip = set(THIS_CALL) | set(RUN_CONTROL) | {"initial_checkpoint", "given"}
    return {"method": training.method, "knobs": dict(training.knobs), "eps": training.eps,
            "seed_index": training.seed_index, "hot_start": training.hot_start,
            "args": jsonable({k: v for k, v in sorted(values.items()) if k not in skip})}


def evaluation_record(study: Study, eps: float, fast: bool) -> dict[str, Any]:
    """What a cell's evaluation is: each measure's evaluator and settings at ``eps``, the dataset, the seed."""
    import dataclasses

    # deferred: torch (kept out of the CLI's start)
    from ..evaluation import evaluator_class

    caps = {"n_examples": study.cfg.fast.n_examples}
    measures = {}
    for m in study.measures:
        fields = {f.name for f in dataclasses.fields(evaluator_class(m.name))}
        measures[m.effective_id(fast, caps)] = {"evaluator": m.name, "settings": cell_settings(
            m, fields, eps, study.cfg.eps_max, fast, caps)}
    return jsonable({"measures": measures, "dataset": study.dataset.spec(), "seed": study.runtime.seed})


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if old == new else f"{path}: {old!r} then, {new!r} now"


def check_records(study: Study, plan: Plan, study_dir: Path, records: Mapping[str, dict[str, Any]],
                  evaluated: Mapping[str, dict[str, Any]]) -> None:
    """Refuse (one line) a training or evaluation that exists in the study folder but was made otherwise than the
    config says now; nothing is written."""
    for name in plan.trainings:
        path = study_dir / CELLS / f"{name}.json"
        old = read_json_or_none(path)
        if old is None:
            continue
        trained = (study_dir / TRAIN / name / CHECKPOINT).exists()
        diff = _first_difference(old.get("training"), records[name]) if trained else None
        if diff:
            raise UserError(f"study cell '{name}' was trained otherwise ({diff}): the config changed for a cell that "
                            f"exists: use another study folder (--output), or delete {study_dir / TRAIN / name} "
                            f"and {study_dir / EVAL / name} to redo it")
        if name in evaluated and (study_dir / EVAL / name / "results").is_dir():
            diff = _first_difference(old.get("evaluation"), evaluated[name])
            if diff:
                raise UserError(f"study cell '{name}' was evaluated otherwise ({diff}): the config changed for a "
                                f"cell that exists: use another study folder (--output), or delete "
                                f"{study_dir / EVAL / name} to re-evaluate it")


def write_records(plan: Plan, study_dir: Path, records: Mapping[str, dict[str, Any]],
                  evaluated: Mapping[str, dict[str, Any]]) -> None:
    for name in plan.trainings:
        path = study_dir / CELLS / f"{name}.json"
        record = {"training": records[name], "evaluation": evaluated.get(name)}
        if read_json_or_none(path) != jsonable(record):
            atomic_write_json(path, record)


def finished_training(args: argparse.Namespace) -> Path | None:
    """The training's checkpoint when it is finished, else None (``demo.finished_run``)."""
    return finished_run(args)


def train_cell(folders: Folders, training: Training, study_dir: str, fast_epochs: int | None, device: str | None,
               log: str | None = None) -> dict[str, Any]:
    """Engine work: train (or continue) ``training`` in ``folders["train"]``; the driver's path of its checkpoint
    and the seconds (the files come back with the task). ``log``: a file that takes the run's output (an
    in-process run, whose terminal shows the study's one bar; a Ray task's output is captured by the engine)."""
    started = time.perf_counter()
    args = training_args(training, Path(study_dir), fast_epochs=fast_epochs, device=device)
    args.output = str(folders.map(args.output))
    if args.initial_checkpoint:  # the hot start's files came with the dependency (or the seed)
        args.initial_checkpoint = str(folders.map(args.initial_checkpoint))
    with _output_to(log):
        checkpoint = train_or_resume(args)
    return {"checkpoint": str(folders.unmap(checkpoint)), "seconds": time.perf_counter() - started}


@contextlib.contextmanager
def _output_to(log: str | None) -> Iterator[None]:
    """The block's output captured and written to ``log`` (atomically, also when it fails)."""
    if log is None:
        yield
        return
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield
    finally:
        atomic_write_text(log, buffer.getvalue())


__all__ = ["CELLS", "CHECKPOINT", "EVAL", "LOGS", "TRAIN", "check_records", "check_training_args",
           "evaluation_record", "finished_training", "knob_words", "train_cell", "training_args",
           "training_record", "write_records"]
