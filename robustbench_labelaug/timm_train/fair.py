"""Class-wise training inside timm's ``train.py`` (``rbla timm-train``): per-class training curves, the held-out
validation split and the ``--fair {cfa,frl}`` policies, with the same statistics, columns and policy updates as
``rbla train`` (both import :mod:`robustbench_labelaug.fair.epoch`).

How, without editing the script (the launcher, :mod:`.launcher`, calls these):

- **Training robust accuracy per class** comes from the logits timm's loop computes anyway: the hook records each
  batch's labels and adversarial rows (``adv_rows``), and the loss the launcher installs
  (:class:`CountingSoftTargetCrossEntropy`, timm's ``SoftTargetCrossEntropy`` plus a count) scores those rows of
  the training forward pass, as ``rbla train``'s loop does. No extra forward pass.
- **The validation split** is carved when the script creates its training dataset (``timm.data.create_dataset``
  with ``is_training=True``): the same class-balanced, seeded indices as ``rbla train`` (``--fair-val-split F``,
  seed = the script's ``--seed``), the rest goes to timm's loader (its transforms are set by timm as usual), and
  the held-out images are read a second time without augmentation, as [0,1] images in timm's evaluation
  transform (resize, centre crop); the PGD runs in pixel units through the loader's normalisation.
- **The policy** is applied to the hook before each ``train_one_epoch`` and updated right after it (after the
  validation split is scored); its state goes into the script's ``args`` (``rbla_fair_state``), which timm's
  ``CheckpointSaver`` writes into every checkpoint, so ``--resume`` restores it. CFA's FAWA model is written
  beside ``last.pth.tar`` as ``fawa.pth.tar`` (timm's checkpoint layout).
- ``summary.csv`` (timm's ``update_summary``) gets ``train_robust_top1_c<k>``, ``train_eps_factor_c<k>`` and the
  policy's numbers from ``train_one_epoch``'s metrics, and ``eval_holdout_top1_c<k>`` /
  ``eval_holdout_pgd_top1_c<k>`` from ``validate``'s (also when timm's EMA model's metrics replace them).

Under DDP the validation split is scored with rank 0's BatchNorm statistics (what the checkpoint saves, as
``rbla train`` scores it), each rank on its share with the counts all-reduced, so every rank sets the same epsilon
and weights; each rank's own statistics are back before timm's loop goes on (its ``--dist-bn`` comes after).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from timm.loss import SoftTargetCrossEntropy
from torch import nn
from torch.utils.data import Dataset

from ..distributed import rank0_buffers
from ..errors import UserError
from ..fair import ClassCounts, create_policy
from ..fair.epoch import (
    AVERAGED_FILE,
    Normalized,
    averaged_model_line,
    begin_training,
    epoch_summary,
    fair_epoch_stats,
    holdout_summary,
    policy_line,
)
from ..fileio import atomic_torch_save
from ..models.classifier import unwrap_model
from ..results.vocab import NO_POLICY, STD, Fair, is_fair, plain
from ..safeload import load_torch


def say(line: str) -> None:
    """A line on the first process only."""
    if os.environ.get("RANK", "0") in ("", "0") and os.environ.get("SLURM_PROCID", "0") in ("", "0"):
        print(f"rbla timm-train: {line}", file=sys.stderr, flush=True)


STATE_KEY = "rbla_fair_state"  # the attribute of the script's args (pickled into every timm checkpoint)
FAWA_FILE = AVERAGED_FILE


@dataclass
class FairSettings:
    """``rbla timm-train``'s class-wise flags: the policy (``none``, ``cfa``, ``frl``) and its options, the share of
    the training set held out (``--fair-val-split``) and the validation PGD steps (``--fair-val-steps``)."""

    policy: str = NO_POLICY
    options: dict[str, Any] = field(default_factory=dict)
    val_split: float = 0.0
    val_steps: int = 10

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> FairSettings:
        # deferred: torch (kept out of the CLI's start)
        from ..fair.epoch import policy_options

        return cls(args.fair, policy_options(args), float(args.val_split), int(args.fair_val_steps))


class IndexedView(Dataset):
    """``indices`` of ``base``, whose ``transform`` is the base's (timm's ``create_loader`` sets
    ``dataset.transform``: on this view it reaches the dataset that applies it)."""

    def __init__(self, base: Dataset, indices) -> None:
        self.base = base
        self.indices = [int(i) for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.base[self.indices[index]]

    @property
    def transform(self):
        return self.base.transform

    @transform.setter
    def transform(self, value) -> None:
        self.base.transform = value

    def __getattr__(self, name: str) -> Any:
        if name in ("base", "indices"):  # not yet set (unpickling in a loader worker)
            raise AttributeError(name)
        return getattr(self.base, name)


class CountingSoftTargetCrossEntropy(SoftTargetCrossEntropy):
    """timm's ``SoftTargetCrossEntropy`` that also scores the training forward pass's adversarial rows per class
    (the batch the hook returned last), for the per-class training curves and the policies."""

    def __init__(self, tracker: TimmClassWise) -> None:
        super().__init__()
        self.tracker = tracker

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.tracker.observe(x)
        return super().forward(x, target)


class TimmClassWise:
    """The class-wise side of one ``rbla timm-train`` run; see the module docstring."""

    def __init__(self, settings: FairSettings) -> None:
        self.settings = settings
        self.policy = None
        self.counts: ClassCounts | None = None
        self.pending: collections.deque = collections.deque()
        self.holdout: IndexedView | None = None
        self.record: dict[str, Any] | None = None
        self.eval_columns: dict[str, float] = {}
        self.num_classes: int | None = None
        self.resume_state: dict[str, Any] | None = None
        self.class_folders: list[str] | None = None  # the training set's classes in index order
        self.averaged_path: Path | None = None  # CFA's FAWA model, once written

    # -- the validation split, carved when the script creates its training set ------------------------------------
    def create_dataset(self, real, script_args: argparse.Namespace | None, *args: Any, **kwargs: Any):
        """Call timm's ``create_dataset``; the first training set loses its held-out share (``--fair-val-split``)."""
        # deferred: torch (kept out of the CLI's start)
        from ..data.holdout import dataset_class_folders, dataset_labels, holdout_indices, holdout_record

        dataset = real(*args, **kwargs)
        if kwargs.get("is_training") and self.class_folders is None:  # recorded: compared when evaluated
            self.class_folders = dataset_class_folders(dataset)
        if not kwargs.get("is_training") or self.settings.val_split <= 0 or self.record is not None:
            return dataset
        import numpy as np

        if isinstance(dataset, torch.utils.data.IterableDataset):
            raise UserError("--fair-val-split needs a map-style training set (a folder, tar or torch/ dataset): a "
                            "streaming dataset (wds/, hfds/, tfds/) cannot be split; hold out a validation split by "
                            "hand and pass --fair-val-split 0 --cfa-parts ccm")
        seed = kwargs.get("seed")
        if seed is None:
            seed = getattr(script_args, "seed", 0) if script_args is not None else 0
        labels = dataset_labels(dataset)
        train_idx, val_idx = holdout_indices(labels, self.settings.val_split, int(seed))
        unaugmented = real(*args, **{**kwargs, "is_training": False})
        if len(unaugmented) != len(dataset):
            raise UserError("the training split changed between two reads (different sample counts): check the "
                            "folder")
        self.record = holdout_record(np.asarray(labels), train_idx, val_idx, self.settings.val_split, int(seed))
        self.holdout = IndexedView(unaugmented, val_idx)
        return IndexedView(dataset, train_idx)

    def holdout_transform(self, data_config: dict[str, Any]) -> None:
        """The held-out images as [0,1] tensors in timm's evaluation transform (the loader's size, interpolation,
        crop), normalised by the model wrapper instead."""
        from timm.data import create_transform

        channels = int(data_config["input_size"][0])
        self.holdout.transform = create_transform(
            input_size=data_config["input_size"], is_training=False, interpolation=data_config["interpolation"],
            mean=(0.0,) * channels, std=(1.0,) * channels, crop_pct=data_config["crop_pct"],
            crop_mode=data_config.get("crop_mode", "center"))

    # -- per epoch -----------------------------------------------------------------------------------------------
    def begin_epoch(self, epoch: int, hook, script_args: argparse.Namespace, data_config: dict[str, Any]) -> None:
        """Before timm's ``train_one_epoch``: create (or restore on ``--resume``) the policy, set the hook's
        class-wise epsilon and weights for ``epoch``, start the epoch's counts."""
        if self.policy is None:
            self.num_classes = hook.num_classes
            self.check_script_args(script_args)  # (idempotent) CFA's begin epoch from the script's --epochs
            self.policy = create_policy(self.settings.policy, hook.num_classes, hook.eps, **self.settings.options)
            if self.resume_state is not None:  # read by check_resume
                self.policy.load_state_dict(self.resume_state["state"])
                say(f"--fair {self.policy.name}: the policy's state after epoch {self.resume_state['epoch']} "
                    f"restored from {script_args.resume}")
            script_args.rbla_fair = plain({"policy": self.settings.policy, "options": dict(self.settings.options),
                                           "val_split": self.settings.val_split, "val_steps": self.settings.val_steps})
            if self.class_folders:
                script_args.rbla_class_folders = self.class_folders
            if self.record is not None:
                script_args.rbla_val_split_record = self.record
                self.holdout_transform(data_config)
            if self.resume_state is None and self.policy.updates_before_training and self.holdout is not None:
                # FRL: the first update, from the starting (hot-start) model
                inner = unwrap_model(hook.model)
                pixels_model = Normalized(inner, data_config["mean"], data_config["std"])
                pixels_model.train(inner.training)
                begin_training(self.policy, pixels_model, self.holdout, hook.num_classes, self.policy.eps,
                               self.settings.val_steps, next(inner.parameters()).device,
                               int(getattr(script_args, "batch_size", 128)))
        self.policy.apply(hook, epoch)
        self.counts = ClassCounts(hook.num_classes) if hook.mode != STD else None
        self.pending.clear()

    def after_hook(self, hook, labels: torch.Tensor, batch: torch.Tensor) -> None:
        """The hook just returned ``batch`` for ``labels``: remember which rows to score from its logits."""
        if self.counts is not None and hook.adv_rows is not None:
            self.pending.append((labels.detach(), hook.adv_rows, batch.shape[0]))

    def observe(self, logits: torch.Tensor) -> None:
        """The loss saw the training forward pass's logits of the oldest hooked batch: count its adversarial rows."""
        if not self.pending or self.counts is None:
            return
        labels, rows, size = self.pending.popleft()
        if logits.dim() != 2 or logits.shape[0] != size:  # not the hooked batch: nothing to score
            self.pending.clear()
            return
        self.counts.update(logits[rows, : self.num_classes].detach().argmax(1), labels)

    def end_epoch(self, epoch: int, model: nn.Module, script_args: argparse.Namespace, train_metrics,
                  data_config: dict[str, Any], output_dir: str | None) -> None:
        """After timm's ``train_one_epoch``: score the validation split, add the columns, update the policy, put its
        state into ``args`` (saved with the epoch's checkpoints) and write CFA's FAWA model."""
        inner = unwrap_model(model)
        device = next(inner.parameters()).device
        pixels_model = Normalized(inner, data_config["mean"], data_config["std"])
        pixels_model.train(inner.training)
        with rank0_buffers(inner):  # the statistics rank 0 saves, as rbla train scores it; each rank's own after
            stats = fair_epoch_stats(pixels_model, self.counts, self.holdout, self.num_classes, self.policy.eps,
                                     self.settings.val_steps, device, int(getattr(script_args, "batch_size", 128)))
        columns = epoch_summary(self.policy, stats, epoch, False, self.policy.eps)
        if isinstance(train_metrics, dict):
            train_metrics.update(columns)
        self.eval_columns = holdout_summary(stats)
        trained_with = self.policy.class_params(epoch, False)  # before end_epoch sets the next epoch's
        self.policy.end_epoch(epoch, stats, inner.state_dict())
        if (line := policy_line(self.policy, trained_with, epoch)) is not None:
            say(line)
        if is_fair(self.policy.name):  # plain strings: the args are pickled into timm's (weights-only) checkpoints
            setattr(script_args, STATE_KEY, plain({"policy": self.policy.name, "epoch": int(epoch),
                                                   "state": self.policy.state_dict()}))
        averaged = self.policy.averaged_state()
        if averaged is not None and output_dir is not None:
            self.averaged_path = Path(output_dir) / FAWA_FILE
            atomic_torch_save({"epoch": int(epoch), "arch": getattr(script_args, "model", None),
                               "state_dict": averaged, "version": 2, "args": script_args, "rbla_averaged": "fawa"},
                              self.averaged_path)

    def finish(self) -> None:
        """After the script's ``main()``: say whether an averaged model was written and, if not, why."""
        if self.policy is None:
            return
        line = averaged_model_line(self.policy, None if self.averaged_path is None else str(self.averaged_path),
                                   self.settings.val_split)
        if line is not None:
            say(line)

    def check_script_args(self, script_args: argparse.Namespace) -> None:
        """Right after the script parsed its flags: CFA's first calibrated epoch from timm's ``--epochs`` (the
        reference's 10 of 200 scaled, unless ``--cfa-begin`` was given), refused where it is not below them."""
        if self.settings.policy != Fair.CFA:
            return
        # deferred: torch (kept out of the CLI's start)
        from ..fair.cfa import begin_problem, scaled_begin

        epochs = getattr(script_args, "epochs", None)
        if self.settings.options.get("begin") is None and epochs is not None:
            self.settings.options["begin"] = scaled_begin(epochs)
        problem = begin_problem(self.settings.options.get("begin"), epochs, self.settings.options.get("parts", ()))
        if problem:
            raise UserError(problem)

    def check_resume(self, script_args: argparse.Namespace) -> None:
        """Right after the script parsed its flags, before it writes anything: every checkpoint the script will
        read (``--resume``, ``--initial-checkpoint``; timm reads them with ``weights_only=False``) must load
        weights-only (:func:`~robustbench_labelaug.safeload.load_torch`: a file that would run code is refused
        here, before timm unpickles it); with a policy and ``--resume``, read the policy's state from that
        checkpoint (its ``args``), or refuse with one line."""
        saved = None
        for flag in ("initial_checkpoint", "resume"):
            path = getattr(script_args, flag, "")
            if path and Path(path).is_file():  # timm reports a missing file itself
                saved = load_torch(path, f"--{flag.replace('_', '-')}", allowed_globals=[argparse.Namespace],
                                   fix="pass a checkpoint rbla timm-train (timm's train.py) wrote")
        checkpoint = getattr(script_args, "resume", "")
        if not is_fair(self.settings.policy) or not checkpoint or not Path(checkpoint).is_file():
            return
        args = saved.get("args") if isinstance(saved, dict) else None
        state = getattr(args, STATE_KEY, None)
        if not isinstance(state, dict) or state.get("policy") != self.settings.policy:
            had = state.get("policy") if isinstance(state, dict) else NO_POLICY
            raise UserError(f"--resume {checkpoint} was trained with --fair {had}, not --fair {self.settings.policy}, "
                            "so there is no policy state to continue: resume with its own --fair, or start from "
                            "its weights with --initial-checkpoint")
        self.resume_state = state
