"""``rbla study -c study.yaml``: the command line of :mod:`robustbench_labelaug.study`."""

from __future__ import annotations

import argparse

from ..engine import add_engine_arguments, default_jobs
from ..errors import UserError
from ..runner.config import check_device
from ..zoo.folders import using_zoo_for_tasks
from .config import load_study_config, packaged_study_configs
from .report import markdown
from .run import run_study

HELP = ("a study from one config: train every arm x knob x eps x seed, evaluate each cell, and write the "
        "aggregates, the trade-off figure, matched robustness, the verdict table and the power report")
__all__ = ["HELP", "add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE",
                        help="study config (YAML; docs/study.md), or a packaged one by name: "
                             + (", ".join(sorted(packaged_study_configs())) or "none installed"))
    parser.add_argument("--output", default=None, metavar="DIR",
                        help="the study folder (default: the config's output, '-fast' appended with --fast); "
                             "re-running resumes it")
    parser.add_argument("--fast", action="store_true",
                        help="smoke run: the config's fast.epochs per training, each measure's fast settings and "
                             "the fast.n_examples cap (its numbers mean nothing)")
    add_engine_arguments(parser, "train and evaluate the cells")
    parser.add_argument("--device", default=None, help="cpu, cuda or auto (default: the config's runtime.device)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the trainings and cells the config makes, and check it; run nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--zoo", default=None, metavar="DIR",
                        help="user zoo folder for the arms' methods (default: $RBLA_ZOO, else ./model_zoo where it "
                             "exists)")


def main(args: argparse.Namespace) -> int:
    if args.device is not None:
        check_device(args.device, "--device")
    with using_zoo_for_tasks(args.zoo):
        study = load_study_config(args.config)
        jobs = default_jobs(args.device or study.runtime.device) if args.jobs is None else args.jobs
        if jobs < 1:
            raise UserError(f"--jobs must be >= 1, got {jobs}")
        done = run_study(study, args.output, fast=args.fast, jobs=jobs, address=args.address,
                         device=args.device, progress=not args.no_progress, dry_run=args.dry_run)
    if args.dry_run:
        return 0

    text = markdown(done["data"])  # the verdicts, matched robustness and power; the aggregates are in the file
    print(text.split("\n## Aggregates")[0].rstrip() + "\n")
    print(f"trained {len(done['trained'])} and evaluated {len(done['evaluated'])} cell task(s) in this run; wrote "
          + ", ".join(str(p) for p in done["outputs"]))
    return 0
