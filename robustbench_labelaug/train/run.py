"""``train(args)``: a timm-style training run (timm's create_model, optimizer and scheduler factories, loss and
checkpoint saver) with the AdvLabelAug hook; single process or ``torchrun`` (DDP; gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import update_summary
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from .. import distributed as dist_utils
from ..checks import check_declared_classes
from ..data import create_dataset, dataset_num_classes
from ..data.registry import class_names as registry_class_names
from ..errors import UserError
from ..evaluation import EvalContext, create_evaluator
from ..fair import ClassCounts, TradesLoss, create_policy
from ..fair.epoch import (
    AVERAGED_NAME,
    averaged_model_line,
    begin_training,
    epoch_summary,
    fair_epoch_stats,
    holdout_summary,
    policy_line,
    policy_options,
)
from ..fileio import RunLock, atomic_write_text, check_component, check_writable_dir
from ..hook.adv_label_aug import AdvLabelAug
from ..models import create_classifier
from ..results import keys
from ..results.vocab import ADV_PLUS, BF16, STD, TRADES, is_fair, plain, precision_of_amp_dtype, torch_dtype
from . import process_setup
from .args import SCHEDULE_FLAGS, apply_resume_recipe, hook_kwargs, schedule_kwargs, validate_args
from .checkpoint import (
    RunCheckpointSaver,
    check_head,
    check_training_checkpoint,
    load_weights,
    read_checkpoint,
    remove_stale_temp_checkpoints,
)
from .engine import NonFiniteLoss, train_one_epoch
from .validation import ValidationEvaluator


@dataclass
class TrainResult:
    output_dir: Path
    checkpoint: Path
    epochs_run: int
    metrics: dict[str, Any]


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def resolve_output_dir(args: argparse.Namespace) -> Path:
    """``<output>/<experiment>``, or the folder of ``--resume``. A folder that already holds a run is never
    overwritten by a fresh run."""
    if args.resume:
        return Path(args.resume).resolve().parent
    name = args.experiment or "-".join([time.strftime("%Y%m%d-%H%M%S"), args.model, args.adv_mode])
    out = Path(args.output) / name
    base = Path(args.output).resolve()
    inside = Path(os.path.normpath(base / name))
    if inside == base or base not in inside.parents:
        raise UserError(f"--experiment {name!r} would put the run outside --output {args.output}: use a plain name "
                        "(no '..', no absolute path)")
    if args.experiment:
        for part in name.split("/"):  # group/run: each folder one safe, short name
            check_component(part, "--experiment")
    if (out / "last.pth.tar").exists():
        raise UserError(f"{out} already holds a training run: pass --resume {out / 'last.pth.tar'} to continue "
                        "it, or another --experiment name")
    return out


def class_names_of(dataset, name: str | None = None, data_dir=None) -> list[str] | None:
    """The dataset's class names in index order (recorded in checkpoints and compared at evaluation), or None.
    Where the registry declares them for ``name`` they are the registry's, the very list ``rbla evaluate``
    compares with (ImageNet's WordNet names, not its wnid folders); else the dataset's own."""
    declared = registry_class_names(name, data_dir, num_classes=len(getattr(dataset, "classes", []) or []) or None)
    if declared:
        return [str(n) for n in declared]
    # deferred: torch (kept out of the CLI's start)
    from ..data.holdout import dataset_class_folders

    return dataset_class_folders(dataset)


def build_datasets(args: argparse.Namespace):
    size = args.input_size or 224
    bad = "skip" if getattr(args, "skip_bad_images", False) else "error"
    train_ds = create_dataset(args.dataset, args.data_dir, "train", is_training=True, input_size=size,
                              bad_images=bad, color_jitter=getattr(args, "color_jitter", 0.0))
    class_names = getattr(train_ds, "class_to_idx", None) and list(train_ds.class_to_idx)
    val_ds = create_dataset(args.dataset, args.data_dir, "val", input_size=size, bad_images=bad,
                            class_names=class_names)
    return train_ds, val_ds


def carve_holdout(args: argparse.Namespace, train_ds):
    """With ``--val-split F``: (training subset, held-out validation subset of the training split, loaded without
    augmentation) and the split's record in ``args.val_split_record``; else (train_ds, None)."""
    if not getattr(args, "val_split", 0):
        return train_ds, None
    # deferred: torch (kept out of the CLI's start)
    from ..data.holdout import carve_validation

    size = args.input_size or 224
    bad = "skip" if getattr(args, "skip_bad_images", False) else "error"
    eval_view = create_dataset(args.dataset, args.data_dir, "train", is_training=False, input_size=size,
                               bad_images=bad, class_names=getattr(train_ds, "class_to_idx", None)
                               and list(train_ds.class_to_idx))
    train_sub, holdout, record = carve_validation(train_ds, eval_view, args.val_split, args.seed)
    args.val_split_record = record
    return train_sub, holdout


def restore_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any],
                      overrides: dict[str, tuple[Any, Any]], log) -> None:
    """Load the checkpoint's optimizer state; flags overridden on resume (``--lr``, ``--momentum``, ...) keep
    their new values (the checkpoint's param groups would bring the old ones back). A new ``--opt`` starts
    the optimizer afresh (another optimizer's state does not fit)."""
    if "opt" in overrides:
        log(f"optimizer state not restored: --opt changed to {overrides['opt'][1]} (--override-recipe)")
        return
    fresh = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    if overrides:
        for group, new in zip(optimizer.param_groups, fresh):
            group.update(new)


def validate(model: torch.nn.Module, val_ds, num_classes: int, args: argparse.Namespace,
             device: torch.device, progress: bool) -> dict[str, float]:
    """Clean loss, top-1 and top-5 accuracy of the K-way classifier, like timm's ``validate()`` (and PGD robust
    accuracy with ``--val-pgd-steps``)."""
    batch = process_setup.per_process_batch(args.batch_size, dist_utils.current().world_size)
    ctx = EvalContext(num_classes=num_classes, device=device, batch_size=batch, progress=progress,
                      num_workers=args.workers)
    clean = ValidationEvaluator().run(model, val_ds, ctx).metrics
    metrics = {"loss": clean["loss"], "top1": 100.0 - clean[keys.ERROR], "top5": clean["top5"]}
    if args.val_pgd_steps:
        pgd = create_evaluator("pgd", eps=args.adv_eps, steps=args.val_pgd_steps).run(model, val_ds, ctx)
        metrics["pgd_top1"] = 100.0 - pgd.metrics[keys.ROBUST_ERROR]
    return metrics


def read_resume(args: argparse.Namespace) -> tuple[dict[str, Any] | None, dict[str, tuple[Any, Any]]]:
    """With ``--resume``: the checkpoint, its recipe taken into ``args`` (see ``apply_resume_recipe``), and the
    overridden flags. A finished run is refused: there is nothing to train."""
    if not args.resume:
        return None, {}
    state = read_checkpoint(args.resume)
    check_training_checkpoint(state, args.resume)
    start_epoch = int(state.get("epoch", -1)) + 1
    overrides = apply_resume_recipe(args, state.get("args") or {}, args.resume, start_epoch)
    validate_args(args)
    if start_epoch >= args.epochs:
        raise UserError(f"{args.resume} is a finished run: all {args.epochs} epochs are done, nothing was trained; "
                        f"to train longer pass --epochs N (N > {args.epochs}) with --override-recipe")
    return state, overrides


def claim_output_dir(out_dir: Path, is_main: bool, log) -> RunLock | None:
    """Before any work: prove ``out_dir`` writable, take its lock (a second writer is refused) and remove temp
    files a killed writer left."""
    if not is_main:
        return None
    check_writable_dir(out_dir)
    lock = RunLock(out_dir, what="training run").acquire(on_stale=log)
    for tmp in remove_stale_temp_checkpoints(out_dir):
        log(f"removed {tmp.name}, left by a write that was killed")
    return lock


def remove_failed_fresh_run(out_dir: Path, lock: RunLock) -> None:
    """A fresh run that failed before its first checkpoint leaves no folder behind (only files it wrote itself
    are removed, and the folder only when that empties it)."""
    if (out_dir / "last.pth.tar").exists():
        return
    for name in ("args.yaml", "summary.csv"):
        (out_dir / name).unlink(missing_ok=True)
    lock.release()
    try:
        out_dir.rmdir()
    except OSError:
        pass


def trim_summary(path: Path, start_epoch: int) -> None:
    """Keep only ``summary.csv`` rows of epochs before ``start_epoch`` (a kill between the append and the
    checkpoint leaves a row the resumed run writes again); rewritten atomically."""
    if not path.exists():
        return
    rows = list(csv.reader(io.StringIO(path.read_text())))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    try:
        col = header.index("epoch")
    except ValueError:
        return
    kept = [r for r in body if len(r) == len(header) and r[col].isdigit() and int(r[col]) < start_epoch]
    if len(kept) != len(body):
        out = io.StringIO()
        csv.writer(out).writerows([header, *kept])  # csv's \r\n, as timm's update_summary writes
        atomic_write_text(path, out.getvalue())


def train(args: argparse.Namespace) -> TrainResult:
    """Run (or resume) a training run as configured by ``rbla train`` flags; return where it wrote what."""
    validate_args(args)
    resume_state, overrides = read_resume(args)
    info, device = dist_utils.init_distributed(args.device)
    log = tqdm.write if info.is_main else (lambda *_: None)
    out_dir = resolve_output_dir(args)
    created = not out_dir.exists()
    lock = claim_output_dir(out_dir, info.is_main, log)
    try:
        return _train(args, info, device, out_dir, resume_state, overrides)
    except BaseException:
        if created and lock is not None:
            remove_failed_fresh_run(out_dir, lock)
        raise
    finally:
        if lock is not None:
            lock.release()
        dist_utils.close_distributed()


def _train(args: argparse.Namespace, info, device, out_dir: Path, resume_state: dict[str, Any] | None,
           overrides: dict[str, tuple[Any, Any]]) -> TrainResult:
    create_kwargs = process_setup.starting_weights(args)
    batch_size = process_setup.per_process_batch(args.batch_size, info.world_size)
    args.workers = process_setup.default_workers(args, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    progress = info.is_main and not args.no_progress
    log = tqdm.write if info.is_main else (lambda *_: None)

    train_ds, val_ds = build_datasets(args)
    train_ds, holdout_ds = carve_holdout(args, train_ds)
    num_classes = dataset_num_classes(args.dataset, args.data_dir)
    check_declared_classes(args.num_classes, num_classes, f"dataset '{args.dataset}'")
    num_ops = args.la_ops if args.adv_mode == ADV_PLUS else 0

    if resume_state is not None:
        check_head(resume_state, num_classes, num_ops, args.resume,
                   "pass the --adv-mode/--la-ops/--dataset of the run that wrote it")
        if resume_state.get("arch") != args.model:
            raise UserError(f"checkpoint {args.resume} is a '{resume_state.get('arch')}' but --model is "
                            f"'{args.model}': pass --model {resume_state.get('arch')}")
    initial = None
    if resume_state is None:
        initial = process_setup.read_initial_checkpoint(args, num_classes, num_ops)
    elif (resume_state.get("args") or {}).get("initial_checkpoint_sha256"):  # what the run started from
        args.initial_checkpoint_sha256 = resume_state["args"]["initial_checkpoint_sha256"]
    if info.is_main:
        atomic_write_text(out_dir / "args.yaml", yaml.safe_dump(plain(vars(args)), sort_keys=True))

    seed_everything(args.seed + info.rank)
    model = create_classifier(args.model, num_classes, num_ops, pretrained=args.pretrained, **create_kwargs)
    process_setup.record_starting_sha256(args, model)
    if initial is not None:  # --initial-checkpoint: its weights, before anything is trained (FRL's hot start)
        load_weights(model, initial, args.initial_checkpoint)
    model = process_setup.apply_sync_bn(model, args, info, device)
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)

    optimizer = create_optimizer_v2(model, opt=args.opt, lr=args.lr, weight_decay=args.weight_decay,
                                    momentum=args.momentum)
    min_lr = args.min_lr if args.min_lr is not None else args.lr * 1e-4
    scheduler, num_epochs = create_scheduler_v2(optimizer, **schedule_kwargs(args, min_lr))
    amp_dtype = None
    scaler = None
    if args.amp:
        precision = BF16 if device.type == "cpu" else precision_of_amp_dtype(args.amp_dtype)  # CPU: bf16 only
        amp_dtype = torch_dtype(precision)
        if amp_dtype == torch.float16:
            scaler = torch.amp.GradScaler(device.type)

    start_epoch = 0
    if resume_state is not None:
        load_weights(model, resume_state["state_dict"], args.resume)
        restore_optimizer(optimizer, resume_state["optimizer"], overrides, log)
        if SCHEDULE_FLAGS & set(overrides):
            log(f"lr schedule rebuilt for {', '.join(sorted(SCHEDULE_FLAGS & set(overrides)))} (--override-recipe)")
        else:
            scheduler.load_state_dict(resume_state["scheduler"])
        if scaler is not None and "scaler" in resume_state:
            scaler.load_state_dict(resume_state["scaler"])
        start_epoch = int(resume_state["epoch"]) + 1
        process_setup.restore_rng(resume_state, info, log)
        log(f"resumed from {args.resume} (epoch {start_epoch - 1} done)")
    scheduler.step(start_epoch)

    train_model = model
    if info.distributed:
        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    train_model = process_setup.maybe_compile(train_model, args.compile)
    attack_model = process_setup.maybe_compile(model, args.compile)  # the hook attacks the module itself, not DDP
    trades = hook = None
    if args.adv_mode == TRADES:
        trades = TradesLoss(attack_model, num_classes, eps=args.adv_eps, steps=args.adv_steps, alpha=args.adv_alpha,
                            beta=args.trades_beta, autocast_dtype=amp_dtype)
    else:
        hook = AdvLabelAug(attack_model, num_classes, autocast_dtype=amp_dtype, **hook_kwargs(args))
    policy = create_policy(args.fair, num_classes, args.adv_eps, args.trades_beta, **policy_options(args))
    if resume_state is not None and resume_state.get("fair") is not None:
        policy.load_state_dict(resume_state["fair"])
    log(f"training {args.model} on {args.dataset} (K={num_classes}, M={num_ops}) on {device} x{info.world_size}: "
        f"{trades or hook}" + (f", --fair {args.fair}" if is_fair(args.fair) else "")
        + (f", validation split {len(holdout_ds)} images held out of the training set" if holdout_ds else ""))
    log(f"{getattr(model, 'head_rule', 'head: as created')}; weights: {process_setup.starting_point(args)}")
    # what a seed's bit-for-bit reproducibility depends on besides the seed (see docs/reproducibility.md)
    log(f"numerics: torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"{torch.backends.cpu.get_cpu_capability()} CPU kernels")

    sampler = DistributedSampler(train_ds, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                 seed=args.seed)
    loader = DataLoader(train_ds, batch_size=batch_size, sampler=sampler, num_workers=args.workers,
                        drop_last=len(train_ds) // info.world_size > batch_size,
                        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)
    saver = RunCheckpointSaver(model, optimizer, scheduler, args, amp_scaler=scaler, checkpoint_dir=str(out_dir),
                               max_history=args.checkpoint_hist) if info.is_main else None
    if saver is not None:
        saver.class_names = class_names_of(train_ds, args.dataset, args.data_dir)
        saver.adopt_existing(start_epoch)  # --checkpoint-hist counts the epochs written before a resume
    loss_fn = SoftTargetCrossEntropy()
    last = out_dir / "last.pth.tar"
    if info.is_main:
        trim_summary(out_dir / "summary.csv", start_epoch)
        for ds in (train_ds, val_ds):
            if getattr(ds, "skipped_files", None):
                log(f"--skip-bad-images: left out {len(ds.skipped_files)} damaged file(s) of {ds.root}, e.g. "
                    f"{ds.skipped_files[0]}")
    metrics: dict[str, Any] = {}
    if resume_state is None and args.adv_mode != STD:  # FRL: the first update, from the starting model
        begin_training(policy, model, holdout_ds, num_classes, args.adv_eps, args.fair_val_steps, device, batch_size)
    averaged_path: str | None = None  # CFA's FAWA model, once written
    for epoch in range(start_epoch, num_epochs):
        sampler.set_epoch(epoch)
        policy.apply(trades or hook, epoch)
        class_stats = ClassCounts(num_classes) if args.adv_mode != STD else None
        try:
            train_metrics = train_one_epoch(epoch, train_model, loader, optimizer, loss_fn, hook, device,
                                            autocast_dtype=amp_dtype, scaler=scaler,
                                            channels_last=args.channels_last, progress=progress,
                                            log_interval=args.log_interval if info.is_main else 0, log=log,
                                            trades=trades, class_stats=class_stats)
        except NonFiniteLoss as exc:
            lower = f"{args.lr / 10:g}"
            if last.exists():
                raise UserError(f"{exc}; training stopped and the last good checkpoint is {last}: continue it with a "
                                f"lower learning rate: rbla train --resume {shlex.quote(str(last))} --lr {lower} --override-recipe"
                                ) from None
            raise UserError(f"{exc}; training stopped and no checkpoint was written yet: start again with a lower "
                            f"--lr (e.g. --lr {lower}) and another --experiment") from None
        process_setup.sync_buffers(model)  # rank 0's BatchNorm statistics everywhere: what the checkpoint holds
        eval_metrics = validate(model, val_ds, num_classes, args, device, progress)
        epoch_stats = fair_epoch_stats(model, class_stats, holdout_ds if args.adv_mode != STD else None,
                                       num_classes, args.adv_eps, args.fair_val_steps, device, batch_size)
        train_metrics.update(epoch_summary(policy, epoch_stats, epoch, trades is not None, args.adv_eps))
        eval_metrics.update(holdout_summary(epoch_stats))
        trained_with = policy.class_params(epoch, trades is not None)  # before end_epoch sets the next epoch's
        policy.end_epoch(epoch, epoch_stats, model.state_dict())
        rng_ranks = process_setup.gather_rng_states()  # every rank's, so a resume restores each rank's own
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step(epoch + 1)
        metrics = {"epoch": epoch, "lr": lr, **{f"train_{k}": v for k, v in train_metrics.items()},
                   **{f"eval_{k}": v for k, v in eval_metrics.items()}}
        if saver is not None:
            update_summary(epoch, train_metrics, eval_metrics, str(out_dir / "summary.csv"), lr=lr,
                           write_header=not (out_dir / "summary.csv").exists())
            saver.last_metrics = metrics
            saver.rng_ranks = rng_ranks
            saver.extra_state = {"fair": policy.state_dict()} if is_fair(args.fair) else {}
            saver.save_checkpoint(epoch, metric=eval_metrics["top1"])
            if policy.averaged_state() is not None:  # CFA's FAWA model, beside the plain one
                averaged_path = saver.save_averaged(AVERAGED_NAME, epoch, policy.averaged_state())
        log(f"epoch {epoch + 1}/{num_epochs}  loss {train_metrics['loss']:.4f}  clean top1 {eval_metrics['top1']:.2f}"
            + (f"  PGD-{args.val_pgd_steps} top1 {eval_metrics['pgd_top1']:.2f}" if "pgd_top1" in eval_metrics
               else "")
            + (f"  worst-class train robust {train_metrics['robust_top1_worst']:.1f}"
               if "robust_top1_worst" in train_metrics else "")
            + (f"  worst-class val PGD {eval_metrics['holdout_pgd_top1_worst']:.1f}"
               if "holdout_pgd_top1_worst" in eval_metrics else "")
            + f"  lr {lr:.3g}  ({train_metrics['time_s']:.1f} s)")
        if (line := policy_line(policy, trained_with, epoch)) is not None:
            log(line)
        dist_utils.barrier()
    if (line := averaged_model_line(policy, averaged_path, args.val_split)):
        log(line)
    return TrainResult(out_dir, last, num_epochs - start_epoch, metrics)
