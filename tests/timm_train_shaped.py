#!/usr/bin/env python3
"""A small training script shaped like timm's train.py, for testing ``rbla timm-train`` offline.

Written for this project (not a copy of timm's script); it keeps the structure the launcher relies on: module-level
imports of ``create_model``/``resolve_data_config``/``Mixup``/``SoftTargetCrossEntropy`` from timm, a module-level
``_parse_args()``, ``--pretrained``/``--pretrained-path`` passed to ``create_model`` as train.py passes them (the
file as a ``pretrained_cfg_overlay`` that forces head adaptation), ``--model-dtype`` (timm >= 1.0.15), a ``main()``
that sets up ``mixup_fn``/``collate_fn`` from ``mixup_active``, picks the loss from the same flags, builds timm
loaders (prefetcher unless ``--no-prefetcher``), and calls ``train_one_epoch(..., mixup_fn=...)`` (whose
``mixup_fn(input, target)`` line runs only without the prefetcher) and ``validate(model, ...)`` every epoch.
"""
import argparse
import json
import os
from collections import OrderedDict

import torch
import torch.nn as nn
from timm import utils
from timm.data import (
    AugMixDataset,
    FastCollateMixup,
    Mixup,
    create_dataset,
    create_loader,
    resolve_data_config,
)
from timm.loss import BinaryCrossEntropy, JsdCrossEntropy, LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.models import create_model
from timm.models import resume_checkpoint as resume_checkpoint
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2

parser = argparse.ArgumentParser(description="train.py-shaped test script")
parser.add_argument("--data-dir", required=True)
parser.add_argument("--dataset", default="")
parser.add_argument("--train-split", default="train")
parser.add_argument("--val-split", default="validation")
parser.add_argument("--model", default="resnet8_tiny")
parser.add_argument("--num-classes", type=int, default=None)
parser.add_argument("--pretrained", action="store_true")
parser.add_argument("--pretrained-path", default=None)
parser.add_argument("--model-dtype", default=None)
parser.add_argument("--color-jitter", type=float, default=0.4)
parser.add_argument("--amp", action="store_true")
parser.add_argument("--amp-dtype", default="float16")
parser.add_argument("--input-size", type=int, nargs=3, default=None)
parser.add_argument("-b", "--batch-size", type=int, default=16)
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--lr", type=float, default=0.05)
parser.add_argument("--warmup-epochs", type=int, default=0)
parser.add_argument("--mixup", type=float, default=0.0)
parser.add_argument("--cutmix", type=float, default=0.0)
parser.add_argument("--cutmix-minmax", type=float, nargs="+", default=None)
parser.add_argument("--smoothing", type=float, default=0.1)
parser.add_argument("--jsd-loss", action="store_true")
parser.add_argument("--bce-loss", action="store_true")
parser.add_argument("--aug-splits", type=int, default=0)
parser.add_argument("--reprob", type=float, default=0.0)
parser.add_argument("--remode", default="pixel")
parser.add_argument("--no-prefetcher", action="store_true")
parser.add_argument("--device", default="cpu")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("-j", "--workers", type=int, default=0)
parser.add_argument("--output", default="./output/train")
parser.add_argument("--experiment", default="shaped")
parser.add_argument("--resume", default="")


def _parse_args():
    args = parser.parse_args()
    return args, json.dumps(vars(args))


def main():
    args, _ = _parse_args()
    args.prefetcher = not args.no_prefetcher
    device = torch.device(args.device)
    utils.random_seed(args.seed, 0)

    factory_kwargs = {}
    if args.pretrained_path:  # as train.py: the file replaces the hub, and the head is adapted
        factory_kwargs["pretrained_cfg_overlay"] = dict(file=args.pretrained_path, num_classes=-1)
    model = create_model(args.model, pretrained=args.pretrained, num_classes=args.num_classes, **factory_kwargs)
    if args.model_dtype:
        model.to(dtype=getattr(torch, args.model_dtype))
    if args.num_classes is None:
        args.num_classes = model.num_classes
    data_config = resolve_data_config(vars(args), model=model)
    model.to(device)
    optimizer = create_optimizer_v2(model, opt="sgd", lr=args.lr, momentum=0.9)
    scheduler, num_epochs = create_scheduler_v2(optimizer, sched="cosine", num_epochs=args.epochs,
                                                  warmup_epochs=args.warmup_epochs)
    start_epoch = 0
    if args.resume:  # as train.py: weights and optimizer from the checkpoint, continue after its epoch
        start_epoch = resume_checkpoint(model, args.resume, optimizer=optimizer) or 0
        scheduler.step(start_epoch)

    dataset_train = create_dataset(args.dataset, root=args.data_dir, split=args.train_split, is_training=True,
                                   seed=args.seed)
    dataset_eval = create_dataset(args.dataset, root=args.data_dir, split=args.val_split)

    collate_fn = None
    mixup_fn = None
    mixup_active = args.mixup > 0 or args.cutmix > 0 or args.cutmix_minmax is not None
    if mixup_active:
        settings = dict(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, cutmix_minmax=args.cutmix_minmax,
                        label_smoothing=args.smoothing, num_classes=args.num_classes)
        if args.prefetcher:
            collate_fn = FastCollateMixup(**settings)
        else:
            mixup_fn = Mixup(**settings)
    if args.aug_splits > 1:
        dataset_train = AugMixDataset(dataset_train, num_splits=args.aug_splits)

    common = dict(input_size=data_config["input_size"], mean=data_config["mean"], std=data_config["std"],
                  num_workers=args.workers, persistent_workers=args.workers > 0, device=device,
                  use_prefetcher=args.prefetcher,
                  interpolation=data_config["interpolation"])
    loader_train = create_loader(dataset_train, batch_size=args.batch_size, is_training=True, re_prob=args.reprob,
                                 re_mode=args.remode, color_jitter=args.color_jitter,
                                 collate_fn=collate_fn, **common)
    loader_eval = create_loader(dataset_eval, batch_size=args.batch_size, is_training=False,
                                crop_pct=data_config["crop_pct"], **common)

    if args.jsd_loss:
        train_loss_fn = JsdCrossEntropy(num_splits=args.aug_splits, smoothing=args.smoothing)
    elif mixup_active:
        train_loss_fn = BinaryCrossEntropy() if args.bce_loss else SoftTargetCrossEntropy()
    elif args.smoothing:
        train_loss_fn = LabelSmoothingCrossEntropy(smoothing=args.smoothing)
    else:
        train_loss_fn = nn.CrossEntropyLoss()
    validate_loss_fn = nn.CrossEntropyLoss()

    output_dir = utils.get_outdir(args.output, args.experiment)
    saver = utils.CheckpointSaver(model=model, optimizer=optimizer, args=args, checkpoint_dir=output_dir,
                                  recovery_dir=output_dir, max_history=1)
    results = []
    for epoch in range(start_epoch, num_epochs):
        train_metrics = train_one_epoch(epoch, model, loader_train, optimizer, train_loss_fn, args, saver=saver,
                                        output_dir=output_dir, mixup_fn=mixup_fn)
        eval_metrics = validate(model, loader_eval, validate_loss_fn, args, device=device)
        utils.update_summary(epoch, train_metrics, eval_metrics, filename=os.path.join(output_dir, "summary.csv"),
                             lr=optimizer.param_groups[0]["lr"], write_header=epoch == start_epoch)
        saver.save_checkpoint(epoch, metric=eval_metrics["top1"])
        scheduler.step(epoch + 1)
        results.append({"epoch": epoch, "train": train_metrics, "validation": eval_metrics})
    print(f"--result\n{json.dumps(results)}")


def train_one_epoch(epoch, model, loader, optimizer, loss_fn, args, device=torch.device("cuda"), saver=None,
                    output_dir=None, mixup_fn=None):
    losses = utils.AverageMeter()
    model.train()
    for input, target in loader:
        if not args.prefetcher:
            input, target = input.to(device), target.to(device)
            if mixup_fn is not None:
                input, target = mixup_fn(input, target)
        loss = loss_fn(model(input), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.update(loss.item(), input.size(0))
    return OrderedDict([("loss", losses.avg)])


def validate(model, loader, loss_fn, args, device=torch.device("cuda")):
    losses, top1, top5 = utils.AverageMeter(), utils.AverageMeter(), utils.AverageMeter()
    model.eval()
    with torch.no_grad():
        for input, target in loader:
            if not args.prefetcher:
                input, target = input.to(device), target.to(device)
            output = model(input)
            loss = loss_fn(output, target)
            acc1, acc5 = utils.accuracy(output, target, topk=(1, 5))
            losses.update(loss.item(), input.size(0))
            top1.update(acc1.item(), output.size(0))
            top5.update(acc5.item(), output.size(0))
    return OrderedDict([("loss", losses.avg), ("top1", top1.avg), ("top5", top5.avg)])


if __name__ == "__main__":
    main()
