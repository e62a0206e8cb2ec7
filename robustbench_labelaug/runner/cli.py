"""``rbla evaluate -c CONFIG``: the command line of :mod:`robustbench_labelaug.runner`."""

from __future__ import annotations

import argparse

from ..engine import add_engine_arguments
from ..zoo.folders import using_zoo_for_tasks
from .config import load_config, packaged_configs
from .run import evaluate_config

HELP = "evaluate models (zoo names or checkpoints) from a YAML config into RobustBench model_info JSONs"
__all__ = ["HELP", "add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE",
                        help="evaluation config (YAML), or a packaged one by name: "
                             + (", ".join(sorted(packaged_configs())) or "none installed")
                             + ". A config is code, like a Python file: a 'python:' model source runs the file it "
                             "names (relative to the config's folder)")
    parser.epilog = ("A config is code, like a Python file: a model given as 'python: file.py:factory' runs that "
                     "file (imports and factory) with your rights when it is evaluated, so evaluate only configs you "
                     "would run as scripts. Checkpoints and data files are read as data (weights-only, never "
                     "unpickled freely).")
    parser.add_argument("--output", default=None, metavar="DIR",
                        help="output folder (default: the config's runtime.output, '-fast' appended with --fast)")
    parser.add_argument("--models", default=None, metavar="A,B", help="evaluate only these models (config names)")
    parser.add_argument("--fast", action="store_true",
                        help="quick run: each evaluator's 'fast' settings and the config's fast.n_examples cap")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or auto (default: the config's)")
    add_engine_arguments(parser, "evaluate, one task per model and evaluator,", jobs_default=1,
                         jobs_help="1: everything in this process, no Ray")
    parser.add_argument("--no-plots", action="store_true", help="do not draw the figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--zoo", default=None, metavar="DIR",
                        help="user zoo folder for zoo names (default: $RBLA_ZOO, else ./model_zoo where it exists)")


def main(args: argparse.Namespace) -> int:
    with using_zoo_for_tasks(args.zoo):
        cfg = load_config(args.config)
        models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
        evaluate_config(cfg, output=args.output, models=models, fast=args.fast, device=args.device,
                        progress=False if args.no_progress else None, plots=False if args.no_plots else None,
                        jobs=args.jobs, address=args.address)
    return 0
