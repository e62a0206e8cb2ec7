"""``train(args)``: a timm-style training run (timm's create_model, optimizer and scheduler factories, loss and
checkpoint saver) with the AdvLabelAug hook; single process or ``torchrun`` (DDP; gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import argparse
import random
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
from ..data import create_dataset, dataset_num_classes
from ..errors import UserError
from ..evaluation import EvalContext, create_evaluator
from ..hook import AdvLabelAug
from ..models import create_classifier
from .args import validate_args
from .checkpoint import RunCheckpointSaver, check_head, load_weights, read_checkpoint, set_rng_state
from .engine import NonFiniteLoss, train_one_epoch


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
    if (out / "last.pth.tar").exists():
        raise UserError(f"{out} already holds a training run: pass --resume {out / 'last.pth.tar'} to continue "
                        "it, or another --experiment name")
    return out


def build_datasets(args: argparse.Namespace):
    size = args.input_size or 224
    train_ds = create_dataset(args.dataset, args.data_dir, "train", is_training=True, input_size=size)
    val_ds = create_dataset(args.dataset, args.data_dir, "val", input_size=size,
                            class_names=getattr(train_ds, "class_to_idx", None) and list(train_ds.class_to_idx))
    return train_ds, val_ds


def validate(model: torch.nn.Module, val_ds, num_classes: int, args: argparse.Namespace,
             device: torch.device, progress: bool) -> dict[str, float]:
    """Clean top-1 accuracy of the K-way classifier (and PGD robust accuracy with ``--val-pgd-steps``)."""
    ctx = EvalContext(num_classes=num_classes, device=device, batch_size=args.batch_size, progress=progress,
                      num_workers=args.workers)
    metrics = {"top1": 100.0 - create_evaluator("clean").run(model, val_ds, ctx).metrics["error"]}
    if args.val_pgd_steps:
        pgd = create_evaluator("pgd", eps=args.adv_eps, steps=args.val_pgd_steps).run(model, val_ds, ctx)
        metrics["pgd_top1"] = 100.0 - pgd.metrics["robust_error"]
    return metrics


def train(args: argparse.Namespace) -> TrainResult:
    """Run (or resume) a training run as configured by ``rbla train`` flags; return where it wrote what."""
    validate_args(args)
    info, device = dist_utils.init_distributed(args.device)
    progress = info.is_main and not args.no_progress
    log = tqdm.write if info.is_main else (lambda *_: None)

    train_ds, val_ds = build_datasets(args)
    num_classes = dataset_num_classes(args.dataset, args.data_dir)
    if args.num_classes is not None and args.num_classes != num_classes:
        raise UserError(f"--num-classes {args.num_classes} but dataset '{args.dataset}' has {num_classes} classes: "
                        "drop --num-classes or fix --data-dir (the head gets K+M outputs by itself)")
    num_ops = args.la_ops if args.adv_mode == "adv_plus" else 0

    resume_state = None
    if args.resume:
        resume_state = read_checkpoint(args.resume)
        check_head(resume_state, num_classes, num_ops, args.resume,
                   "pass the --adv-mode/--la-ops/--dataset of the run that wrote it")
        if resume_state.get("arch") != args.model:
            raise UserError(f"checkpoint {args.resume} is a '{resume_state.get('arch')}' but --model is "
                            f"'{args.model}': pass --model {resume_state.get('arch')}")
    out_dir = resolve_output_dir(args)
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "args.yaml").write_text(yaml.safe_dump(vars(args), sort_keys=True))

    seed_everything(args.seed + info.rank)
    model = create_classifier(args.model, num_classes, num_ops, pretrained=args.pretrained)
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)

    optimizer = create_optimizer_v2(model, opt=args.opt, lr=args.lr, weight_decay=args.weight_decay,
                                    momentum=args.momentum)
    min_lr = args.min_lr if args.min_lr is not None else args.lr * 1e-4
    scheduler, num_epochs = create_scheduler_v2(optimizer, sched=args.sched, num_epochs=args.epochs, min_lr=min_lr,
                                                warmup_epochs=args.warmup_epochs, warmup_lr=args.warmup_lr)
    amp_dtype = None
    scaler = None
    if args.amp:
        amp_dtype = torch.bfloat16 if device.type == "cpu" or args.amp_dtype == "bfloat16" else torch.float16
        if amp_dtype == torch.float16:
            scaler = torch.amp.GradScaler(device.type)

    start_epoch = 0
    if resume_state is not None:
        load_weights(model, resume_state["state_dict"], args.resume)
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        if scaler is not None and "scaler" in resume_state:
            scaler.load_state_dict(resume_state["scaler"])
        start_epoch = int(resume_state["epoch"]) + 1
        set_rng_state(resume_state["rng"])
        log(f"resumed from {args.resume} (epoch {start_epoch - 1} done)")
    scheduler.step(start_epoch)

    train_model = model
    if info.distributed:
        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    hook = AdvLabelAug(model, num_classes, mode=args.adv_mode, eps=args.adv_eps, steps=args.adv_steps,
                       alpha=args.adv_alpha, delta=args.la_delta, num_ops=max(args.la_ops, 1),
                       train_clean=args.adv_train_clean, adv_prob=args.adv_prob, attack_mode=args.adv_attack_mode,
                       autocast_dtype=amp_dtype)
    log(f"training {args.model} on {args.dataset} (K={num_classes}, M={num_ops}) on {device} x{info.world_size}: "
        f"{hook}")
    # what a seed's bit-for-bit reproducibility depends on besides the seed (see README: reproducibility)
    log(f"numerics: torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"{torch.backends.cpu.get_cpu_capability()} CPU kernels")

    sampler = DistributedSampler(train_ds, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                 seed=args.seed)
    loader = DataLoader(train_ds, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers,
                        drop_last=len(train_ds) // info.world_size > args.batch_size,
                        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)
    saver = RunCheckpointSaver(model, optimizer, scheduler, args, amp_scaler=scaler, checkpoint_dir=str(out_dir),
                               max_history=args.checkpoint_hist) if info.is_main else None
    loss_fn = SoftTargetCrossEntropy()
    last = out_dir / "last.pth.tar"
    metrics: dict[str, Any] = {}
    for epoch in range(start_epoch, num_epochs):
        sampler.set_epoch(epoch)
        try:
            train_metrics = train_one_epoch(epoch, train_model, loader, optimizer, loss_fn, hook, device,
                                            autocast_dtype=amp_dtype, scaler=scaler,
                                            channels_last=args.channels_last, progress=progress,
                                            log_interval=args.log_interval if info.is_main else 0, log=log)
        except NonFiniteLoss as exc:
            kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
            raise UserError(f"{exc}; training stopped and {kept}: lower --lr (or --adv-eps) and --resume it") from None
        eval_metrics = validate(model, val_ds, num_classes, args, device, progress)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step(epoch + 1)
        metrics = {"epoch": epoch, "lr": lr, **{f"train_{k}": v for k, v in train_metrics.items()},
                   **{f"eval_{k}": v for k, v in eval_metrics.items()}}
        if saver is not None:
            update_summary(epoch, train_metrics, eval_metrics, str(out_dir / "summary.csv"), lr=lr,
                           write_header=not (out_dir / "summary.csv").exists())
            saver.last_metrics = metrics
            saver.save_checkpoint(epoch, metric=eval_metrics["top1"])
        log(f"epoch {epoch + 1}/{num_epochs}  loss {train_metrics['loss']:.4f}  clean top1 {eval_metrics['top1']:.2f}"
            + (f"  PGD-{args.val_pgd_steps} top1 {eval_metrics['pgd_top1']:.2f}" if "pgd_top1" in eval_metrics
               else "") + f"  lr {lr:.3g}  ({train_metrics['time_s']:.1f} s)")
        dist_utils.barrier()
    return TrainResult(out_dir, last, num_epochs - start_epoch, metrics)
