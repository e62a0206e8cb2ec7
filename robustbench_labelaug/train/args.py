"""``rbla train`` flags: timm ``train.py``'s names and meanings where they overlap, grouped by concern, plus the
plugin's adversarial / label-augmentation flags. ``-c/--config`` YAML files set defaults (timm's two-stage parse)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ..checks import check_input_size
from ..data.registry import DEFAULT_DATASET
from ..errors import UserError
from ..results.rules import (
    DEFAULT_DELTA,
    DEFAULT_EPS,
    TRAINING_FLAGS,
    check_mode,
    check_training,
    training_mode,
)

# rbla train's --adv-mode (the hook's modes plus TRADES), --fair, and the training labels: results/vocab.py
from ..results.vocab import (  # noqa: E402,F401
    ADV,
    ADV_PLUS,
    AMP_DTYPES,
    ATTACK_MODES,
    DEFAULT_AMP_DTYPE,
    DEFAULT_LA_P,
    FAIR_POLICIES,
    LA_PROTOCOLS,
    MODES,
    NO_POLICY,
    STD,
    TRADES,
    TRADES_FORMS,
    TRAIN_MODES,
    TRAINING_LABELS,
    AttackMode,
    Fair,
    TradesForm,
    default_protocol,
    is_fair,
    recorded_protocol,
    training_label,
)
from ..yamlio import load_yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", default="", metavar="FILE",
                        help="YAML file whose keys (flag names with underscores) set the defaults")

    group = parser.add_argument_group("Dataset parameters")
    group.add_argument("--dataset", default=DEFAULT_DATASET, metavar="NAME",
                       help="a registered dataset (robustbench_labelaug.data.list_datasets()): digits, folder, "
                            "imagenet, ...")
    group.add_argument("--data-dir", default=None, metavar="DIR", help="root of an ImageNet-layout folder")
    group.add_argument("--input-size", "--img-size", type=int, nargs="+", default=None, metavar="N",
                       help="image size for folder datasets: N or timm's C H W (e.g. 3 224 224); None: the "
                            "dataset's (data/registry.py)")
    group.add_argument("--workers", "-j", type=int, default=None, metavar="N",
                       help="data loader processes per training process (default: on CUDA the CPU count / local "
                            "GPUs, at most 16; on CPU and for digits 0)")
    group.add_argument("--skip-bad-images", action="store_true",
                       help="leave damaged image files out (they are counted and reported) instead of stopping")

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
    group.add_argument("-b", "--batch-size", type=int, default=64, metavar="N",
                       help="GLOBAL batch size (the paper's 64): under torchrun/srun each of the N processes loads "
                            "b/N images per step (b must be divisible by N), so lr and the recipe stay the same")

    group = parser.add_argument_group("Learning rate schedule parameters")
    group.add_argument("--sched", default="cosine", metavar="SCHEDULER", help="timm scheduler name")
    group.add_argument("--lr", type=float, default=0.01, metavar="LR", help="learning rate")
    group.add_argument("--min-lr", type=float, default=None, metavar="LR",
                       help="lower lr bound of the schedule (None: lr * 1e-4, the paper's decay factor)")
    group.add_argument("--warmup-epochs", type=int, default=0, metavar="N", help="epochs of linear lr warm-up")
    group.add_argument("--warmup-lr", type=float, default=1e-5, metavar="LR", help="lr at the start of warm-up")
    group.add_argument("--epochs", type=int, default=10, metavar="N", help="epochs to train")
    group.add_argument("--decay-milestones", type=int, nargs="+", default=[90, 180, 270], metavar="E",
                       help="--sched multistep: the lr is multiplied by --decay-rate from the E-th epoch on, counted "
                            "from 1 as timm does (timm's flag; CFA's and the usual CIFAR-10 recipe, lr/10 from "
                            "0-based epochs 100 and 150 of 200: 101 151)")
    group.add_argument("--decay-rate", "--dr", type=float, default=0.1, metavar="RATE",
                       help="--sched multistep/step: the lr factor at each milestone (timm's flag)")

    group = add_adv_arguments(parser.add_argument_group("Adversarial training / label augmentation"))
    group.add_argument("--val-pgd-steps", type=int, default=0, metavar="N",
                       help="also report PGD-N robust accuracy on the validation split each epoch (0: off)")
    add_fair_arguments(parser)

    add_recipe_arguments(parser)

    group = parser.add_argument_group("Misc")
    group.add_argument("--seed", type=int, default=42, metavar="S", help="random seed (rank r uses seed + r)")
    group.add_argument("--amp", action="store_true", help="mixed precision (autocast) for training and attack")
    group.add_argument("--amp-dtype", default=DEFAULT_AMP_DTYPE, choices=AMP_DTYPES,
                       help="autocast dtype (CPU always uses bfloat16); with float16 the attack loss is scaled "
                            "and training uses a GradScaler")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (None: cuda if available)")
    group.add_argument("--output", default="./output/train", metavar="DIR", help="where runs are written")
    group.add_argument("--experiment", default="", metavar="NAME", help="run folder name under --output")
    group.add_argument("--resume", default="", metavar="PATH",
                       help="checkpoint to continue from; the run's recipe comes from the checkpoint")
    group.add_argument("--override-recipe", action="store_true",
                       help="with --resume: let flags given now (e.g. a lower --lr) replace the checkpoint's recipe; "
                            "the change is recorded in args.yaml and the checkpoints")
    group.add_argument("--checkpoint-hist", type=int, default=3, metavar="N", help="epoch checkpoints kept")
    group.add_argument("--log-interval", type=int, default=20, metavar="N", help="batches between log lines")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_fair_arguments(parser: argparse.ArgumentParser, trades: bool = True,
                       val_split_flag: str = "--val-split") -> None:
    """TRADES and the class-wise-fair policies (issue 20; docs/methods.md). ``rbla timm-train`` passes
    ``trades=False`` (TRADES is a loss: rbla train only) and ``val_split_flag="--fair-val-split"`` (timm's
    ``--val-split`` names its validation split); the value lands in ``args.val_split`` either way."""
    group = parser.add_argument_group("TRADES and class-wise fairness (CFA, FRL)" if trades
                                      else "Class-wise fairness (CFA, FRL)")
    if trades:
        group.add_argument("--trades-beta", type=float, default=6.0, metavar="B",
                           help="TRADES trade-off beta (--adv-mode trades; the KL attack uses --adv-eps/-steps/-alpha)")
    group.add_argument("--fair", default=NO_POLICY.value, choices=FAIR_POLICIES,
                       help="class-wise policy: none; cfa (CCM class-wise eps, "
                            + ("CCR class-wise beta with trades, " if trades else "")
                            + "FAWA weight averaging); frl (FRL reweight/remargin from the validation split)")
    group.add_argument(val_split_flag, dest="val_split", type=float, default=None, metavar="F",
                       help="hold out this share of every class of the training set as a validation split (seeded "
                            "by --seed; recorded in "
                            + ("args.yaml" if trades else "the checkpoints' args") + "). None: 0.1 with --fair "
                            "cfa/frl, else none" + ("" if trades else " (rbla train's --val-split: timm's "
                                                                     "--val-split names its validation split)"))
    group.add_argument("--fair-val-steps", type=int, default=10, metavar="N",
                       help="PGD steps of the validation split's class-wise robust accuracy (at --adv-eps)")
    group.add_argument("--cfa-begin", type=int, default=None, metavar="E",
                       help="CFA: first epoch of class-wise eps/beta (None: the reference's 10 of 200 scaled to the "
                            "run's epochs, at least 1; it must be below the epochs)")
    group.add_argument("--cfa-lambda1", type=float, default=0.5, help="CFA CCM: eps_c = (lambda1 + A_c) * eps")
    group.add_argument("--cfa-lambda2", type=float, default=0.5, help="CFA CCR: beta_c = (lambda2 + A_c) * beta")
    group.add_argument("--cfa-parts", default="ccm,ccr,fawa", metavar="LIST",
                       help="CFA parts to use, comma separated: ccm, ccr (trades only), fawa")
    if trades:
        group.add_argument("--cfa-trades-form", default=TradesForm.NORMALISED.value, choices=TRADES_FORMS,
                           help="CFA with trades: the loss per sample, normalised (the reference's (1-b_c) CE + b_c "
                                "KL, b_c = beta_c/(1+beta_c)) or zhang (CE + beta_c KL)")
    group.add_argument("--fawa-decay", type=float, default=0.88, help="CFA FAWA: EMA decay")
    group.add_argument("--fawa-threshold", type=float, default=0.24,
                       help="CFA FAWA: worst-class validation robust accuracy an epoch needs to enter the average")
    group.add_argument("--frl-mode", default="rwrm", choices=("rw", "rm", "rwrm"),
                       help="FRL: reweight, remargin or both")
    group.add_argument("--frl-bound", type=float, default=0.07, help="FRL fairness bounds tau0 = tau1")
    group.add_argument("--frl-rate1", type=float, default=0.05, help="FRL reweight multiplier rate")
    group.add_argument("--frl-rate2", type=float, default=0.2, help="FRL remargin multiplier rate")
    group.add_argument("--frl-lim", type=float, default=0.5, help="FRL: bound on the sum of the multipliers")


def add_adv_arguments(group, modes: tuple[str, ...] = TRAIN_MODES):
    """The plugin's flags (shared by ``rbla train`` and ``rbla timm-train``; the launcher passes the hook's
    modes, without ``trades``)."""
    group.add_argument("--adv-mode", default=ADV_PLUS.value, choices=modes,  # defaults: plain strings (args.yaml)
                       help="std: clean; adv: PGD AT (Madry); adv_plus: PGD AT + label augmentation"
                            + ("; trades: TRADES (rbla train only)" if TRADES in modes else ""))
    group.add_argument("--label-aug", action="store_true", help="turn --adv-mode adv into adv_plus")
    group.add_argument("--adv-eps", type=float, default=DEFAULT_EPS, help="L-inf epsilon in [0,1] pixel units")
    group.add_argument("--adv-steps", type=int, default=10, help="PGD steps")
    group.add_argument("--adv-alpha", type=float, default=None, help="PGD step size (None: 2.5*eps/steps)")
    group.add_argument("--adv-prob", type=float, default=1.0,
                       help="(--la-protocol adversarial) share of batches attacked; others clean")
    group.add_argument("--adv-train-clean", action="store_true",
                       help="(--la-protocol adversarial) also train each clean batch, target [y, 0] (doubles the "
                            "batch)")
    group.add_argument("--adv-attack-mode", default=AttackMode.EVAL.value, choices=ATTACK_MODES,
                       help="BatchNorm/dropout mode while generating the attack")
    group.add_argument("--la-delta", type=float, default=DEFAULT_DELTA, help="label-augmentation weight delta")
    group.add_argument("--la-ops", type=int, default=1, metavar="M",
                       help="number M of transformation labels (op j = PGD at eps*(j+1)/M)")
    group.add_argument("--la-protocol", default=None, choices=LA_PROTOCOLS,
                       help="which rows a batch trains (adv, adv_plus; None: authors for adv_plus, adversarial for "
                            "adv). authors (the authors' label-augmentation code): the clean images [y, 0] and the "
                            "adversarial ones [(1-delta) y, delta z], each with probability --la-p; adversarial "
                            "(Madry): every row adversarial. The controls: --adv-mode adv --la-protocol authors "
                            "(Adv on the same mix), --adv-mode adv_plus --la-protocol adversarial (dummy smoothing)")
    group.add_argument("--la-p", type=float, default=DEFAULT_LA_P, metavar="P",
                       help="--la-protocol authors: the probability of each part (clean, adversarial) per batch "
                            "(the authors' 0.7)")
    return group


class TrainArgs(argparse.Namespace):
    """The parsed flags, plus (outside ``vars()``, so never written to args.yaml) the names the user set on the
    command line or in the ``-c`` file: on ``--resume`` those are checked against the checkpoint's recipe."""

    __slots__ = ("given",)


def given_flags(args: argparse.Namespace) -> set[str] | None:
    """Names set explicitly (command line or ``-c`` file), or None when unknown (a hand-built Namespace)."""
    try:
        return args.given
    except AttributeError:
        return None


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """Starting weights, augmentation, speed and distribution flags (issue 11)."""
    group = parser.add_argument_group("Starting weights, augmentation, speed and distribution")
    group.add_argument("--pretrained-tag", default=None, metavar="TAG",
                       help="timm pretrained tag to start from (implies --pretrained), e.g. tv_in1k (torchvision's "
                            "weights, the ones the paper starts from) or resnet50.tv_in1k; without it "
                            "--pretrained uses timm's default tag, which is recorded in the checkpoint")
    group.add_argument("--pretrained-file", default=None, metavar="FILE",
                       help="load the pretrained weights from this local file instead of the hub (implies "
                            "--pretrained; timm pretrained_cfg_overlay file); its sha256 is recorded")
    group.add_argument("--initial-checkpoint", default=None, metavar="PATH",
                       help="start from this checkpoint's weights (an rbla train / timm-train run's last.pth.tar or "
                            "an exported zoo .pt, same architecture, K and M; timm's flag of the same name): FRL's "
                            "hot start. Optimizer, schedule and epochs start afresh; its sha256 is recorded")
    group.add_argument("--color-jitter", type=float, default=0.0, metavar="F",
                       help="ColorJitter strength for folder datasets (0: the paper's RandomResizedCrop + flip only; "
                            "timm's create_transform would use 0.4)")
    group.add_argument("--sync-bn", action="store_true",
                       help="SyncBatchNorm across processes (torchrun/srun on CUDA)")
    group.add_argument("--compile", nargs="?", const="inductor", default=None, metavar="BACKEND",
                       help="torch.compile the model for the training step and the attack (default backend "
                            "inductor)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``rbla train`` flags from ``argv`` (``-c`` YAML sets defaults, the command line overrides)."""
    parser = argparse.ArgumentParser(prog="rbla train")
    add_arguments(parser)
    return resolve_config(parser, argv)


_UNSET = object()


def resolve_config(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse like timm: ``-c`` YAML sets defaults, the command line overrides."""
    pre, _ = parser.parse_known_args(argv)
    from_file: set[str] = set()
    if pre.config:
        from_file = apply_config_file(parser, pre.config)
    args = parser.parse_args(argv, namespace=TrainArgs())
    # which flags the command line set: parse once more into a namespace pre-filled with a marker
    marked = argparse.Namespace(**{a.dest: _UNSET for a in parser._actions if a.dest != "help"})
    parser.parse_known_args(argv, namespace=marked)
    args.given = {k for k, v in vars(marked).items() if v is not _UNSET} | from_file
    return args


def apply_config_file(parser: argparse.ArgumentParser, path: str) -> set[str]:
    """Set parser defaults from a YAML file; unknown keys are an error. Returns the names it set."""
    file = Path(path)
    if not file.is_file():
        kind = "is a folder" if file.is_dir() else "does not exist"
        raise UserError(f"config file {file} {kind}: pass -c with a YAML file of flag defaults")

    values = load_yaml(file, f"config file {file}") or {}
    if not isinstance(values, dict):
        raise UserError(f"config file {file} must hold a mapping of flag names to values")
    known = {a.dest for a in parser._actions}
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"config file {file} has unknown keys {unknown}: use `rbla train --help` flag names")
    actions = {a.dest: a for a in parser._actions}
    parser.set_defaults(**{k: config_value(actions[k], k, v, file) for k, v in values.items()})
    return set(values)


def config_value(action: argparse.Action, key: str, value, file) -> object:
    """A config file's value for a flag, checked as the command line would check it (the flag's type, number of
    values and choices), so ``epochs: [1, 2]`` is one line, not a traceback deep in training."""
    flag = action.option_strings[-1] if action.option_strings else key

    def bad(want: str) -> UserError:
        return UserError(f"config file {file}: {key}: {value!r} is not {want} (what {flag} takes): write it as "
                         f"on the command line")

    if action.nargs == 0:  # store_true / store_false / store_const
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    many = action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1)
    if isinstance(value, dict) or (isinstance(value, list) and not many):
        raise bad("one value" if not many else "a list of values")
    out = []
    for v in (value if isinstance(value, list) else [value]):
        if v is not None and action.type is not None:
            if isinstance(v, (list, dict)) or (action.type in (int, float) and isinstance(v, bool)):
                raise bad("a number" if action.type in (int, float) else "a value")
            if action.type is int and isinstance(v, float) and not v.is_integer():
                raise bad("an integer")
            try:
                v = action.type(v if action.type in (int, float, str) else str(v))
            except (TypeError, ValueError, argparse.ArgumentTypeError):
                raise bad(f"a valid {getattr(action.type, '__name__', 'value')}") from None
        if v is not None and action.choices is not None and v not in action.choices:
            raise UserError(f"config file {file}: {key}: {v!r} is not one of {', '.join(map(str, action.choices))}")
        out.append(v)
    return out if many else out[0]


def adv_settings(args: argparse.Namespace, allow_trades: bool = True) -> dict:
    """The ``--adv-*`` / ``--la-*`` flags checked by the one training rule (``results.rules.check_training``), as
    ``AdvLabelAug`` keyword arguments (``rbla train`` and ``rbla timm-train`` alike)."""
    check_mode(None, args.adv_mode, TRAINING_FLAGS["mode"], TRAIN_MODES)  # every choice (trades: refused below)
    mode = training_mode(args.adv_mode, args.label_aug, TRAINING_FLAGS)
    if mode == TRADES and not allow_trades:
        raise UserError("--adv-mode trades needs the clean logits as well, which timm's train.py does not give its "
                        "mixup_fn: use rbla train --adv-mode trades")
    protocol = getattr(args, "la_protocol", None)
    if mode in (STD, TRADES) and protocol is not None:
        raise UserError(f"--la-protocol {protocol} applies to --adv-mode adv and adv_plus only (mode {mode} has no "
                        "clean/adversarial mix of its own): leave it out")
    # TRADES' KL attack takes the same eps/steps/alpha rules as PGD training (checked as adv)
    checked = check_training(mode=ADV if mode == TRADES else mode, eps=args.adv_eps, steps=args.adv_steps,
                             alpha=args.adv_alpha, delta=args.la_delta, num_ops=args.la_ops, adv_prob=args.adv_prob,
                             attack_mode=args.adv_attack_mode, protocol=protocol,
                             la_p=getattr(args, "la_p", DEFAULT_LA_P),
                             train_clean=getattr(args, "adv_train_clean", False), names=TRAINING_FLAGS)
    return {**checked, "mode": mode, "alpha": args.adv_alpha, "protocol": None if mode == TRADES else
            checked["protocol"]}


def hook_kwargs(args: argparse.Namespace) -> dict:
    """``AdvLabelAug`` keyword arguments of a run's flags, the same for both training doors (``rbla train`` and
    ``rbla timm-train``): the checked ``--adv-*`` / ``--la-*`` settings, M at least 1 (the hook's own rule), the
    clean-batch flag."""
    checked = adv_settings(args, allow_trades=False)
    return {**checked, "num_ops": max(checked["num_ops"], 1), "train_clean": bool(args.adv_train_clean)}


def validate_args(args: argparse.Namespace) -> None:
    """Catch impossible settings before anything is built or written."""
    args.adv_mode = training_mode(args.adv_mode, args.label_aug, TRAINING_FLAGS)
    args.la_protocol = adv_settings(args)["protocol"]  # resolved, so args.yaml and checkpoints record it
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.lr <= 0:
        raise UserError(f"--lr must be > 0, got {args.lr}")
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers must be >= 0, got {args.workers}")
    if args.color_jitter < 0:
        raise UserError(f"--color-jitter must be >= 0, got {args.color_jitter}")
    if args.checkpoint_hist < 1:
        raise UserError(f"--checkpoint-hist must be >= 1, got {args.checkpoint_hist}")
    args.input_size = input_size(args.input_size)
    check_fair_args(args)
    check_run_args(args)
    check_model_and_optim(args)


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Flags whose default depends on others, resolved as training records them (``--val-split`` None: 0.1 with
    a policy, else 0), so a recipe parsed from text compares equal to the args a run stored."""
    if getattr(args, "val_split", None) is None:
        args.val_split = 0.1 if is_fair(getattr(args, "fair", NO_POLICY)) else 0.0
    if getattr(args, "la_protocol", LA_PROTOCOLS[0]) is None:
        args.la_protocol = default_protocol(ADV_PLUS if getattr(args, "label_aug", False) else args.adv_mode)
    if getattr(args, "cfa_begin", 0) is None and getattr(args, "epochs", None) is not None:
        # deferred: torch (kept out of the CLI's start)
        from ..fair.cfa import scaled_begin  # imports torch: deferred for the CLI's start time

        args.cfa_begin = scaled_begin(args.epochs)
    return args


def check_fair_args(args: argparse.Namespace) -> None:
    """TRADES / policy flags; resolves ``--val-split`` None to its default (:func:`resolve_defaults`)."""
    fair = getattr(args, "fair", NO_POLICY)
    resolve_defaults(args)
    flag = getattr(args, "val_split_flag", "--val-split")  # rbla timm-train: --fair-val-split
    if not 0.0 <= args.val_split < 1.0:
        raise UserError(f"{flag} must lie in [0, 1), got {args.val_split}")
    if fair == Fair.FRL and args.val_split == 0:
        raise UserError(f"--fair frl needs a validation split: pass {flag} F (e.g. 0.1) or leave it out")
    if is_fair(fair) and args.adv_mode == STD:
        raise UserError(f"--fair {fair} needs adversarial training: use --adv-mode adv, adv_plus or trades")
    if getattr(args, "trades_beta", 6.0) < 0:
        raise UserError(f"--trades-beta must be >= 0, got {args.trades_beta}")
    if args.fair_val_steps < 0:
        raise UserError(f"--fair-val-steps must be >= 0, got {args.fair_val_steps}")
    # deferred: torch (kept out of the CLI's start)
    from ..fair import CFA_PARTS

    parts = [p for p in str(args.cfa_parts).split(",") if p]
    bad = sorted(set(parts) - set(CFA_PARTS))
    if bad:
        raise UserError(f"--cfa-parts {args.cfa_parts}: unknown part(s) {bad}: use a comma list of ccm, ccr, fawa")
    if fair == Fair.CFA:
        # deferred: torch (kept out of the CLI's start)
        from ..fair.cfa import begin_problem  # imports torch: deferred for the CLI's start time

        problem = begin_problem(args.cfa_begin, getattr(args, "epochs", None), parts)
        if problem:
            raise UserError(problem)
    if fair == Fair.CFA and "fawa" in parts and args.val_split == 0:
        raise UserError(f"--fair cfa with FAWA needs a validation split: pass {flag} F (e.g. 0.1), or "
                        "--cfa-parts ccm,ccr")
    if args.adv_mode == TRADES and getattr(args, "amp", False) and args.amp_dtype == "float16":
        raise UserError("--adv-mode trades has no float16 attack-loss scaling: use --amp-dtype bfloat16")


def input_size(value) -> int | list[int] | None:
    """``--input-size``: N, or timm's C H W (C must be 3); a square C N N becomes N."""
    if value is None or isinstance(value, int):
        return check_input_size(None, value, "--input-size")
    sizes = [int(v) for v in value]
    if len(sizes) == 1:
        sizes = [3, sizes[0], sizes[0]]
    if len(sizes) != 3 or sizes[0] != 3:
        raise UserError(f"--input-size {' '.join(map(str, value))} is not N or timm's 3 H W (RGB): e.g. "
                        "--input-size 224 or --input-size 3 224 224")
    for side in sizes[1:]:
        check_input_size(None, side, "--input-size")
    return sizes[1] if sizes[1] == sizes[2] else sizes


def check_model_and_optim(args: argparse.Namespace) -> None:
    """Model and pretrained-weight names are checked before any output is written (optimizer and scheduler: by
    :func:`check_optimizer_and_schedule`)."""
    import timm

    # deferred: torch (kept out of the CLI's start)
    from ..models import tiny_resnet  # noqa: F401  (registers resnet8_tiny with timm)

    if not timm.is_model(args.model):
        close = timm.list_models(f"{args.model[:4]}*")[:5]
        raise UserError(f"unknown model '{args.model}': use a timm model name (timm.list_models())"
                        + (f", e.g. {', '.join(close)}" if close else ""))
    if args.pretrained and not getattr(args, "pretrained_file", None):  # a local file needs no hub
        # deferred: torch (kept out of the CLI's start)
        from ..models.pretrained import pretrained_unavailable

        reason = pretrained_unavailable(args.model)
        if reason is not None:
            raise UserError(f"timm's pretrained weights for '{args.model}' cannot be fetched ({reason}): run where "
                            "the Hugging Face hub is reachable or its cache holds them, or drop --pretrained")


def check_finite_numbers(args: argparse.Namespace) -> None:
    """Every float flag must be a finite number (``--lr nan`` passes any ``<=`` test)."""
    for name, value in vars(args).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"--{name.replace('_', '-')} must be a finite number, got {value}")


def check_device(device: str | None) -> None:
    """A device torch knows and this machine has (``--device cuda`` without CUDA is refused here, before work)."""
    if device in (None, "", "auto"):
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {device!r} is not a torch device: use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {device} was asked for but CUDA is not available here: use --device cpu "
                            "(or leave --device out)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s): "
                            "use cuda:0 .. cuda:N-1")


def check_optimizer_and_schedule(args: argparse.Namespace) -> None:
    """Let timm and torch judge --opt/--momentum/--weight-decay/--lr and --sched on a one-parameter model, so
    their own checks (and names) apply before any data or model is built."""
    import torch
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    param = torch.nn.Parameter(torch.zeros(1))
    try:
        opt = create_optimizer_v2([param], opt=args.opt, lr=args.lr, weight_decay=args.weight_decay,
                                  momentum=args.momentum)
    except (AssertionError, ValueError, TypeError, KeyError, ImportError) as exc:
        reason = " ".join(str(exc).split())[:120] or "unknown optimizer"
        raise UserError(f"--opt {args.opt} with --lr {args.lr}, --momentum {args.momentum}, --weight-decay "
                        f"{args.weight_decay} is refused by timm/torch ({reason}): use a timm optimizer name "
                        "(sgd, momentum, adamw, ...) and --momentum/--weight-decay >= 0") from None
    min_lr = args.min_lr if args.min_lr is not None else args.lr * 1e-4
    try:
        sched, _ = create_scheduler_v2(opt, **schedule_kwargs(args, min_lr))
    except (AssertionError, ValueError, TypeError, KeyError) as exc:
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise UserError(f"--sched {args.sched} is refused by timm ({reason}): use cosine, tanh, step, multistep, "
                        "plateau or poly") from None
    if sched is None:
        raise UserError(f"unknown --sched {args.sched!r}: use a timm scheduler name (cosine, tanh, step, multistep, "
                        "plateau, poly)")


def schedule_kwargs(args: argparse.Namespace, min_lr: float) -> dict[str, Any]:
    """timm's ``create_scheduler_v2`` keyword arguments of the schedule flags (one place for both the check and
    the run)."""
    return {"sched": args.sched, "num_epochs": args.epochs, "min_lr": min_lr, "warmup_epochs": args.warmup_epochs,
            "warmup_lr": args.warmup_lr, "decay_milestones": list(getattr(args, "decay_milestones", [90, 180, 270])),
            "decay_rate": getattr(args, "decay_rate", 0.1)}


def check_initial_checkpoint(args: argparse.Namespace) -> None:
    """``--initial-checkpoint``: an existing file (its content is checked when the run reads it)."""
    path = getattr(args, "initial_checkpoint", None)
    if path and not Path(path).expanduser().is_file():
        kind = "is a folder" if Path(path).expanduser().is_dir() else "does not exist"
        raise UserError(f"--initial-checkpoint {path} {kind}: pass the last.pth.tar of the run to start from (e.g. "
                        "the hot-start model's) or an exported zoo .pt")


def check_run_args(args: argparse.Namespace) -> None:
    """The checks of flags ``validate_args`` did not cover: finite numbers, --workers, --device, --opt, --sched."""
    check_finite_numbers(args)
    for name in ("min_lr", "warmup_lr", "weight_decay"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise UserError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    if args.warmup_epochs < 0:
        raise UserError(f"--warmup-epochs must be >= 0, got {args.warmup_epochs}")
    check_device(args.device)
    check_initial_checkpoint(args)
    if getattr(args, "decay_rate", 0.1) <= 0:
        raise UserError(f"--decay-rate must be > 0, got {args.decay_rate}")
    check_optimizer_and_schedule(args)


# ----------------------------------------------------------------------------------------------------------------
# --resume: the recipe comes from the checkpoint
# ----------------------------------------------------------------------------------------------------------------

# flags of this invocation only, never taken from the checkpoint
THIS_CALL = frozenset({"config", "resume", "override_recipe", "output", "experiment", "recipe_overrides"})
# flags that may change on --resume without changing what is trained (the checkpoint's value when not given).
# --workers is not one: each loader worker draws its own augmentation (and with none the main process draws it, in
# the sequence the attack's random starts also come from), so another count trains other weights
RUN_CONTROL = frozenset({"device", "no_progress", "log_interval", "checkpoint_hist", "data_dir", "compile"})
WHY_RECIPE = {"workers": "the data-loader workers draw the random augmentation, so their number changes the weights"}
# recipe flags whose change must rebuild the lr schedule (and set the optimizer's lr) on resume
SCHEDULE_FLAGS = frozenset({"lr", "min_lr", "sched", "epochs", "warmup_epochs", "warmup_lr", "decay_milestones",
                            "decay_rate"})


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return a == b


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def apply_resume_recipe(args: argparse.Namespace, saved: dict[str, Any], path: str | Path,
                        start_epoch: int) -> dict[str, tuple[Any, Any]]:
    """Take the recipe of the checkpoint's run (its saved ``args``) into ``args``.

    A flag set now (command line or ``-c``) that differs from the saved recipe is refused, unless
    ``--override-recipe``: then it wins, and ``args.recipe_overrides`` records ``{epoch, flag: [old, new]}``
    after the checkpoint's earlier overrides. Returns the overridden flags ``{name: (old, new)}``."""
    given = given_flags(args)
    if given is None:  # hand-built Namespace: treat values that differ from the flag defaults as given
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        given = {k for k, v in vars(args).items() if not _same(v, parser.get_default(k))}
    # what runs recorded before a flag existed trained with (not today's default)
    if "la_protocol" not in saved and saved.get("adv_mode") in (ADV, ADV_PLUS):
        saved = {**saved, "la_protocol": recorded_protocol(saved)}
    if "cfa_trades_form" not in saved and saved.get("fair") == Fair.CFA:
        saved = {**saved, "cfa_trades_form": TradesForm.ZHANG.value}
    conflicts: dict[str, tuple[Any, Any]] = {}
    for name, old in saved.items():
        if name in THIS_CALL or not hasattr(args, name):
            continue
        now = getattr(args, name)
        if name in RUN_CONTROL:
            if name not in given:
                setattr(args, name, old)
            continue
        if name == "adv_mode" and getattr(args, "label_aug", False) and now == ADV and old == ADV_PLUS:
            now = ADV_PLUS  # --label-aug turns adv into adv_plus
        if name in given and not _same(now, old):
            conflicts[name] = (old, now)
        else:
            setattr(args, name, old)
    if conflicts and not getattr(args, "override_recipe", False):
        listed = ", ".join(f"{_flag(k)} {new} (checkpoint: {old}{'; ' + WHY_RECIPE[k] if k in WHY_RECIPE else ''})"
                           for k, (old, new) in conflicts.items())
        raise UserError(f"--resume {path}: {listed} would change the run's recipe: drop the flag(s) to continue as "
                        "recorded, or add --override-recipe to change it (the change is recorded)")
    history = list(saved.get("recipe_overrides") or [])
    if conflicts:
        history.append({"epoch": start_epoch, **{k: [old, new] for k, (old, new) in conflicts.items()}})
    args.recipe_overrides = history
    return conflicts
