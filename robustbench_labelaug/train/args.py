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
                       help="digits (embedded scikit-learn digits), folder (<data-dir>/{train,val}/<class>/*), "
                            "imagenet (folder layout, ImageNet-1k class order) or cifar10/cifar100 (torchvision's "
                            "files in --data-dir; random crop 32 pad 4 + flip)")
    group.add_argument("--data-dir", default=None, metavar="DIR", help="root of an ImageNet-layout folder")
    group.add_argument("--input-size", "--img-size", type=int, nargs="+", default=None, metavar="N",
                       help="image size for folder datasets: N or timm's C H W (e.g. 3 224 224); None: 224 (digits "
                            "are always 32)")
    group.add_argument("--workers", "-j", type=int, default=0, metavar="N", help="data loader processes")

    group = parser.add_argument_group("Model parameters")
    group.add_argument("--model", default="resnet8_tiny", metavar="NAME", help="timm model name")
    group.add_argument("--pretrained", action="store_true", help="start from timm's pretrained weights")
    group.add_argument("--num-classes", type=int, default=None, metavar="K",
                       help="number of real classes K (None: the dataset's); the head gets K+M outputs "
                            "(M = --la-ops with adv_plus, else 0). Same meaning in `rbla timm-train`; only a "
                            "hand-edited timm train.py needs --num-classes K+M")
    group.add_argument("--channels-last", action="store_true", help="channels_last memory layout")

    group = parser.add_argument_group("Optimizer parameters")
    group.add_argument("--opt", default="sgd", metavar="OPTIMIZER", help="timm optimizer name")
    group.add_argument("--momentum", type=float, default=0.9, metavar="M", help="optimizer momentum")
    group.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay")
    group.add_argument("-b", "--batch-size", type=int, default=64, metavar="N", help="batch size per process")

    group = parser.add_argument_group("Learning rate schedule parameters")
    group.add_argument("--sched", default="cosine", metavar="SCHEDULER", help="timm scheduler name")
    group.add_argument("--lr", type=float, default=0.01, metavar="LR", help="learning rate")
    group.add_argument("--min-lr", type=float, default=None, metavar="LR",
                       help="lower lr bound of the schedule (None: lr * 1e-4, the paper's decay factor)")
    group.add_argument("--warmup-epochs", type=int, default=0, metavar="N", help="epochs of linear lr warm-up")
    group.add_argument("--warmup-lr", type=float, default=1e-5, metavar="LR", help="lr at the start of warm-up")
    group.add_argument("--epochs", type=int, default=10, metavar="N", help="epochs to train")

    group = add_adv_arguments(parser.add_argument_group("Adversarial training / label augmentation"))
    group.add_argument("--val-pgd-steps", type=int, default=0, metavar="N",
                       help="also report PGD-N robust accuracy on the validation split each epoch (0: off)")

    group = parser.add_argument_group("Misc")
    group.add_argument("--seed", type=int, default=42, metavar="S", help="random seed (rank r uses seed + r)")
    group.add_argument("--amp", action="store_true", help="mixed precision (autocast) for training and attack")
    group.add_argument("--amp-dtype", default="float16", choices=("float16", "bfloat16"),
                       help="autocast dtype (CPU always uses bfloat16)")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (None: cuda if available)")
    group.add_argument("--output", default="./output/train", metavar="DIR", help="where runs are written")
    group.add_argument("--experiment", default="", metavar="NAME", help="run folder name under --output")
    group.add_argument("--resume", default="", metavar="PATH", help="checkpoint to continue from")
    group.add_argument("--checkpoint-hist", type=int, default=3, metavar="N", help="epoch checkpoints kept")
    group.add_argument("--log-interval", type=int, default=20, metavar="N", help="batches between log lines")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_adv_arguments(group):
    """The plugin's flags (shared by ``rbla train`` and ``rbla timm-train``)."""
    group.add_argument("--adv-mode", default="adv_plus", choices=MODES,
                       help="std: clean; adv: PGD AT (Madry); adv_plus: PGD AT + label augmentation")
    group.add_argument("--label-aug", action="store_true", help="turn --adv-mode adv into adv_plus")
    group.add_argument("--adv-eps", type=float, default=0.03, help="L-inf epsilon in [0,1] pixel units")
    group.add_argument("--adv-steps", type=int, default=10, help="PGD steps")
    group.add_argument("--adv-alpha", type=float, default=None, help="PGD step size (None: 2.5*eps/steps)")
    group.add_argument("--adv-prob", type=float, default=1.0, help="share of batches attacked; others clean")
    group.add_argument("--adv-train-clean", action="store_true",
                       help="also train each clean batch, target [y, 0] (doubles the batch)")
    group.add_argument("--adv-attack-mode", default="eval", choices=ATTACK_MODES,
                       help="BatchNorm/dropout mode while generating the attack")
    group.add_argument("--la-delta", type=float, default=0.03, help="label-augmentation weight delta")
    group.add_argument("--la-ops", type=int, default=1, metavar="M",
                       help="number M of transformation labels (op j = PGD at eps*(j+1)/M)")
    return group


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
    from ..hook import check_attack_args
    from ..labels import check_delta

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
    args.input_size = input_size(args.input_size)
    check_model_and_optim(args)


def input_size(value) -> int | list[int] | None:
    """``--input-size``: N, or timm's C H W (C must be 3); a square C N N becomes N."""
    if value is None or isinstance(value, int):
        return value
    sizes = [int(v) for v in value]
    if len(sizes) == 1:
        sizes = [3, sizes[0], sizes[0]]
    if len(sizes) != 3 or sizes[0] != 3 or min(sizes) < 1:
        raise UserError(f"--input-size {' '.join(map(str, value))} is not N or timm's 3 H W (RGB): e.g. "
                        "--input-size 224 or --input-size 3 224 224")
    return sizes[1] if sizes[1] == sizes[2] else sizes


def check_model_and_optim(args: argparse.Namespace) -> None:
    """Model, pretrained weights, optimizer and scheduler names are checked before any output is written."""
    import timm
    import torch
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    from ..models import tiny_resnet  # noqa: F401  (registers resnet8_tiny with timm)

    if not timm.is_model(args.model):
        close = timm.list_models(f"{args.model[:4]}*")[:5]
        raise UserError(f"unknown model '{args.model}': use a timm model name (timm.list_models())"
                        + (f", e.g. {', '.join(close)}" if close else ""))
    if args.pretrained:
        from ..models.pretrained import pretrained_unavailable

        reason = pretrained_unavailable(args.model)
        if reason is not None:
            raise UserError(f"timm's pretrained weights for '{args.model}' cannot be fetched ({reason}): run where "
                            "the Hugging Face hub is reachable or its cache holds them, or drop --pretrained")
    dummy = [torch.nn.Parameter(torch.zeros(1))]
    try:
        optimizer = create_optimizer_v2(dummy, opt=args.opt, lr=args.lr, weight_decay=args.weight_decay,
                                        momentum=args.momentum)
    except (AssertionError, ValueError, KeyError, TypeError):
        raise UserError(f"--opt {args.opt!r} is not a timm optimizer: e.g. sgd, momentum, adamw") from None
    try:
        scheduler, _ = create_scheduler_v2(optimizer, sched=args.sched, num_epochs=args.epochs)
    except (AssertionError, ValueError, KeyError, TypeError):
        raise UserError(f"--sched {args.sched!r} is not a timm scheduler: e.g. cosine, step, multistep, "
                        "plateau") from None
    if scheduler is None:
        raise UserError(f"--sched {args.sched!r} is not a timm scheduler: e.g. cosine, step, multistep, plateau")
