"""``rbla timm-train``'s command line: its help and flags, importable without torch (``rbla timm-train --help``
starts at once); the run itself is :mod:`robustbench_labelaug.timm_train`."""

from __future__ import annotations

import argparse
from typing import Any

from .train.args import add_adv_arguments, add_fair_arguments

HELP = ("run timm's own train.py, unmodified, with the AdvLabelAug hook at its mixup_fn point, a K+M head, "
        "soft-target cross entropy and K-way validation")
VAL_SPLIT_FLAG = "--fair-val-split"  # rbla train's --val-split: timm's own --val-split names its validation split
__all__ = ["HELP", "VAL_SPLIT_FLAG", "add_arguments", "check_class_wise", "hook_settings", "main", "parse"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.allow_abbrev = False  # an abbreviated timm flag must never be taken for one of ours
    parser.usage = "rbla timm-train TRAIN_PY [timm's train.py flags] [--adv-* --la-* flags]"
    parser.epilog = ("Every flag not listed here goes to TRAIN_PY (see `python TRAIN_PY --help`). --num-classes "
                     "is K, the number of real classes; the head gets K+M outputs. Example: rbla timm-train "
                     "train.py --data-dir DIR --model resnet50 --num-classes 1000 --adv-mode adv_plus --adv-eps "
                     "0.03")
    parser.add_argument("script", metavar="TRAIN_PY", help="path to timm's train.py (unmodified)")
    add_adv_arguments(parser.add_argument_group("Adversarial training / label augmentation (the hook)"))
    add_fair_arguments(parser, trades=False, val_split_flag=VAL_SPLIT_FLAG)


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Our flags; everything else is kept, in order, for the script."""
    args, rest = parser.parse_known_args(argv)
    args.script_args = rest
    args.command = ["rbla", "timm-train", *argv]  # recorded in the checkpoints: the run's own command
    return args


def hook_settings(args: argparse.Namespace) -> dict[str, Any]:
    """``AdvLabelAug`` keyword arguments from the ``--adv-*``/``--la-*`` flags (checked)."""
    from .train.args import hook_kwargs

    return hook_kwargs(args)  # rbla train's own (TRADES is a loss: rbla train only)


def check_class_wise(args: argparse.Namespace) -> None:
    """The ``--fair`` / ``--fair-val-split`` flags, by ``rbla train``'s rule (one line for a bad one)."""
    from .train.args import check_fair_args

    args.val_split_flag = VAL_SPLIT_FLAG
    check_fair_args(args)


def main(args: argparse.Namespace) -> int:
    settings = hook_settings(args)  # bad flags fail before anything is run
    args.adv_mode = settings["mode"]
    check_class_wise(args)
    from .timm_fair import FairSettings
    from .timm_train import run_timm_train

    run_timm_train(args.script, args.script_args, settings, FairSettings.from_args(args),
                   command=getattr(args, "command", None))
    return 0
