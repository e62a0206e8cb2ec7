"""``rbla train`` flags: timm ``train.py``'s names and meanings where they overlap, grouped by concern, plus the
plugin's adversarial / label-augmentation flags. ``-c/--config`` YAML files set defaults (timm's two-stage parse)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from ..errors import UserError
from ..hook import ATTACK_MODES, MODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", default="", metavar="FILE",
                        help="YAML file whose keys (flag names with underscores) set the defaults")

    group = parser.add_argument_group("Dataset parameters")
    group.add_argument("--dataset", default="digits", metavar="NAME",
                       help="a registered dataset (robustbench_labelaug.data.list_datasets()): digits, folder, "
                            "imagenet, ...")
    group.add_argument("--data-dir", default=None, metavar="DIR", help="root of an ImageNet-layout folder")
    group.add_argument("--input-size", type=int, default=None, metavar="N",
                       help="image size (default: the dataset's, see data/registry.py)")
    group.add_argument("--workers", "-j", type=int, default=0, metavar="N", help="data loader processes")

    group = parser.add_argument_group("Model parameters")
    group.add_argument("--model", default="resnet8_tiny", metavar="NAME", help="timm model name")
    group.add_argument("--pretrained", action="store_true", help="start from timm's pretrained weights")
    group.add_argument("--num-classes", type=int, default=None, metavar="K",
                       help="number of label classes K (default: the dataset's); the head gets K+M outputs "
                            "(M = --la-ops with adv_plus, else 0)")
    group.add_argument("--channels-last", action="store_true", help="channels_last memory layout")

    group = parser.add_argument_group("Optimizer parameters")
    group.add_argument("--opt", default="sgd", metavar="OPTIMIZER", help="timm optimizer name")
    group.add_argument("--momentum", type=float, default=0.9, metavar="M")
    group.add_argument("--weight-decay", type=float, default=1e-4)
    group.add_argument("-b", "--batch-size", type=int, default=64, metavar="N", help="batch size per process")

    group = parser.add_argument_group("Learning rate schedule parameters")
    group.add_argument("--sched", default="cosine", metavar="SCHEDULER", help="timm scheduler name")
    group.add_argument("--lr", type=float, default=0.01, metavar="LR")
    group.add_argument("--min-lr", type=float, default=None, metavar="LR",
                       help="lower lr bound of the schedule (default: lr * 1e-4, the paper's decay factor)")
    group.add_argument("--warmup-epochs", type=int, default=0, metavar="N")
    group.add_argument("--warmup-lr", type=float, default=1e-5, metavar="LR")
    group.add_argument("--epochs", type=int, default=10, metavar="N")

    group = parser.add_argument_group("Adversarial training / label augmentation")
    group.add_argument("--adv-mode", default="adv_plus", choices=MODES,
                       help="std: clean; adv: PGD AT (Madry); adv_plus: PGD AT + label augmentation")
    group.add_argument("--label-aug", action="store_true", help="turn --adv-mode adv into adv_plus")
    group.add_argument("--adv-eps", type=float, default=0.03, help="L-inf epsilon in [0,1] pixel units")
    group.add_argument("--adv-steps", type=int, default=10, help="PGD steps")
    group.add_argument("--adv-alpha", type=float, default=None, help="PGD step size (default 2.5*eps/steps)")
    group.add_argument("--adv-prob", type=float, default=1.0, help="share of batches attacked; others clean")
    group.add_argument("--adv-train-clean", action="store_true",
                       help="also train each clean batch, target [y, 0] (doubles the batch)")
    group.add_argument("--adv-attack-mode", default="eval", choices=ATTACK_MODES,
                       help="BatchNorm/dropout mode while generating the attack")
    group.add_argument("--la-delta", type=float, default=0.03, help="label-augmentation weight delta")
    group.add_argument("--la-ops", type=int, default=1, metavar="M",
                       help="number M of transformation labels (op j = PGD at eps*(j+1)/M)")
    group.add_argument("--val-pgd-steps", type=int, default=0, metavar="N",
                       help="also report PGD-N robust accuracy on the validation split each epoch (0: off)")

    group = parser.add_argument_group("Misc")
    group.add_argument("--seed", type=int, default=42, metavar="S")
    group.add_argument("--amp", action="store_true", help="mixed precision (autocast) for training and attack")
    group.add_argument("--amp-dtype", default="float16", choices=("float16", "bfloat16"),
                       help="autocast dtype (CPU always uses bfloat16)")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    group.add_argument("--output", default="./output/train", metavar="DIR", help="where runs are written")
    group.add_argument("--experiment", default="", metavar="NAME", help="run folder name under --output")
    group.add_argument("--resume", default="", metavar="PATH", help="checkpoint to continue from")
    group.add_argument("--checkpoint-hist", type=int, default=3, metavar="N", help="epoch checkpoints kept")
    group.add_argument("--log-interval", type=int, default=20, metavar="N", help="batches between log lines")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``rbla train`` flags from ``argv`` (``-c`` YAML sets defaults, the command line overrides)."""
    parser = argparse.ArgumentParser(prog="rbla train")
    add_arguments(parser)
    return resolve_config(parser, argv)


def resolve_config(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse like timm: ``-c`` YAML sets defaults, the command line overrides."""
    pre, _ = parser.parse_known_args(argv)
    if pre.config:
        apply_config_file(parser, pre.config)
    return parser.parse_args(argv)


def apply_config_file(parser: argparse.ArgumentParser, path: str) -> None:
    """Set parser defaults from a YAML file; unknown keys are an error."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"config file {file} does not exist: pass -c with a YAML file of flag defaults")
    try:
        values = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"config file {file} is not valid YAML ({exc.__class__.__name__}): fix its syntax") from None
    if not isinstance(values, dict):
        raise UserError(f"config file {file} must hold a mapping of flag names to values")
    known = {a.dest for a in parser._actions}
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"config file {file} has unknown keys {unknown}: use `rbla train --help` flag names")
    parser.set_defaults(**values)


def validate_args(args: argparse.Namespace) -> None:
    """Catch impossible settings before anything is built or written."""
    from ..checks import check_attack_args, check_delta

    if args.label_aug:
        if args.adv_mode == "std":
            raise UserError("--label-aug needs adversarial training: use --adv-mode adv (or adv_plus)")
        args.adv_mode = "adv_plus"
    check_attack_args(args.adv_eps, args.adv_steps, args.adv_alpha)
    check_delta(args.la_delta)
    if args.adv_mode == "adv_plus" and args.la_ops < 1:
        raise UserError(f"--la-ops must be >= 1 with adv_plus, got {args.la_ops}")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.lr <= 0:
        raise UserError(f"--lr must be > 0, got {args.lr}")
    if not 0.0 <= args.adv_prob <= 1.0:
        raise UserError(f"--adv-prob must lie in [0, 1], got {args.adv_prob}")
    if args.checkpoint_hist < 1:
        raise UserError(f"--checkpoint-hist must be >= 1, got {args.checkpoint_hist}")
