"""Training checkpoints: timm ``CheckpointSaver`` layout (``last.pth.tar``, ``checkpoint-<epoch>.pth.tar``,
``model_best.pth.tar``), written atomically, holding everything a bit-identical resume needs (model, optimizer,
scheduler, scaler, epoch, args, K, M and the RNG states), and readable with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import argparse
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.utils import CheckpointSaver
from torch import nn

from ..errors import UserError
from ..fileio import (
    atomic_replace,
    atomic_torch_save,
    fsync_file,
    jsonable,
    remove_stale_temp_files,
    set_default_mode,
)
from ..models.classifier import ImageClassifier, unwrap_model
from ..results.vocab import NO_POLICY
from ..safeload import load_torch, torch_file_kind  # noqa: F401  (torch_file_kind re-exported)

CHECKPOINT_VERSION = 1
EXTENSION = ".pth.tar"


def rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and python RNG states as tensors, lists and ints."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def read_checkpoint(path: str | Path, expected_bytes: int | None = None) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (:func:`~robustbench_labelaug.safeload.load_torch`): a file
    that would run code when unpickled is refused, a file that is no torch checkpoint at all (text, random bytes,
    empty) is named as such, and one whose entries would inflate beyond the bound (``expected_bytes``: the
    model's state-dict size, where known) is refused before it is read."""
    path = Path(path)
    if not path.exists() and (why := missing_averaged_reason(path)):  # a run's fawa.pth.tar that was never written
        raise UserError(f"checkpoint {path} does not exist: {why}")
    state = load_torch(path, "checkpoint", expected_bytes=expected_bytes,
                       allowed_globals=[argparse.Namespace])  # timm's train.py pickles its args
    if not isinstance(state, dict) or "state_dict" not in state:
        raise UserError(f"checkpoint {path} has no 'state_dict': expected a file written by rbla train / rbla zoo")
    if isinstance(state.get("args"), argparse.Namespace):  # timm's train.py (rbla timm-train)
        return from_timm_train(state, path)
    return state


def missing_averaged_reason(path: Path) -> str | None:
    """Why a run's averaged model (``<run>/fawa.pth.tar``) is missing, read from the ``last.pth.tar`` beside it
    (its ``--fair`` policy, CFA parts, validation split and FAWA's state): None where ``path`` is not an averaged
    model's name or there is no ``last.pth.tar`` to ask."""
    # deferred: torch (kept out of the CLI's start)
    from ..fair.epoch import (  # fair/ imports torch models: deferred to this case
        AVERAGED_FILE,
        no_average_reason,
    )

    last = path.with_name("last.pth.tar")
    if path.name != AVERAGED_FILE or not last.is_file():
        return None
    try:
        state = read_checkpoint(last)
    except UserError:
        return None
    args = state.get("args") or {}
    fawa = (state.get("fair") or {}).get("fawa") if isinstance(state.get("fair"), dict) else None
    reason = no_average_reason(str(args.get("fair") or "none"), args.get("cfa_parts"), fawa, args.get("val_split"))
    return None if reason is None else f"that run wrote no {path.name}: {reason}; export {last} instead"


# the rbla train flag each AdvLabelAug setting of an rbla timm-train run corresponds to
_HOOK_FLAGS = {"mode": "adv_mode", "eps": "adv_eps", "steps": "adv_steps", "alpha": "adv_alpha", "delta": "la_delta",
               "num_ops": "la_ops", "adv_prob": "adv_prob", "attack_mode": "adv_attack_mode",
               "train_clean": "adv_train_clean", "protocol": "la_protocol", "la_p": "la_p"}
_TIMM_FLAGS = ("model", "epochs", "lr", "batch_size", "seed", "weight_decay", "momentum", "opt", "sched",
               "min_lr", "warmup_epochs", "color_jitter", "amp", "amp_dtype", "dataset")


def from_timm_train(state: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """A checkpoint of timm's ``train.py`` run through ``rbla timm-train`` (``last.pth.tar``, ``fawa.pth.tar``, ...) in
    ``rbla train``'s layout: the bare timm network under ``net.*`` behind the loader's normalisation
    (``normalize.*``), K and M from the hook's record, and ``args`` in ``rbla train``'s names (plus
    ``trainer: rbla timm-train`` and timm's other flags under ``timm_args``), so ``rbla zoo export`` and
    ``rbla evaluate`` take it like an ``rbla train`` checkpoint."""
    timm_args = dict(vars(state["args"]))
    hook = timm_args.get("rbla_hook")
    if not isinstance(hook, dict):
        raise UserError(f"checkpoint {path} was written by timm's train.py without rbla timm-train (its args carry no "
                        "rbla_hook record), so K, M and the normalisation are unknown: train with rbla timm-train, or "
                        "load it as a timm: source in an evaluation config")
    net = strip_module_prefix(state["state_dict"])
    channels = len(hook["mean"])
    weights = {"normalize.mean": torch.tensor(hook["mean"], dtype=torch.float32).view(1, channels, 1, 1),
               "normalize.std": torch.tensor(hook["std"], dtype=torch.float32).view(1, channels, 1, 1),
               **{f"net.{k}": v for k, v in net.items()}}
    args: dict[str, Any] = {dest: timm_args.get(dest) for dest in _TIMM_FLAGS if dest in timm_args}
    args["dataset"] = args.get("dataset") or None  # timm's '' (a folder) records no dataset: export asks for it
    args.update({flag: hook[key] for key, flag in _HOOK_FLAGS.items() if key in hook})
    fair = timm_args.get("rbla_fair") or {}
    if not args.get("amp"):
        args.pop("amp_dtype", None)  # timm's float16 default means nothing without --amp
    if fair:
        # deferred: torch (kept out of the CLI's start)
        from ..fair.epoch import policy_flags

        args["fair"] = fair.get("policy", NO_POLICY)
        args.update(policy_flags(args["fair"], fair.get("options") or {}))
        args["val_split"] = fair.get("val_split")
        args["fair_val_steps"] = fair.get("val_steps")
    if timm_args.get("rbla_val_split_record") is not None:
        args["val_split_record"] = timm_args["rbla_val_split_record"]
    if timm_args.get("rbla_command"):  # the rbla timm-train command line: what reproduces the run
        args["command"] = [str(w) for w in timm_args["rbla_command"]]
    data_dir = timm_args.get("data_dir") or timm_args.get("data")
    if data_dir:
        args["data_dir"] = str(data_dir)
    for key, value in timm_args.items():
        if key.startswith("rbla_pretrained_"):
            args[key.replace("rbla_", "", 1)] = value
    args["trainer"] = "rbla timm-train"
    args["timm_args"] = {k: v for k, v in timm_args.items()
                         if not k.startswith("rbla_") and k not in args and isinstance(v, (str, int, float, bool,
                                                                                           type(None)))}
    out = {"arch": timm_args.get("model") or state.get("arch"), "num_classes": int(hook["num_classes"]),
           "num_ops": int(hook["num_ops"]), "mean": list(hook["mean"]), "std": list(hook["std"]),
           "state_dict": weights, "epoch": state.get("epoch"), "args": args,
           "metrics": {"eval_top1": state["metric"]} if state.get("metric") is not None else {}}
    if timm_args.get("rbla_class_folders"):  # names resolved against the dataset at export (names_for_folders)
        out["class_folders"] = list(timm_args["rbla_class_folders"])
    if state.get("rbla_averaged"):
        out["averaged"] = state["rbla_averaged"]
    fair_state = timm_args.get("rbla_fair_state")
    if isinstance(fair_state, dict) and fair_state.get("state") is not None:
        out["fair"] = fair_state["state"]  # the policy's state (FAWA's): why no averaged model, if none
    return out


def check_head(state: dict[str, Any], num_classes: int, num_ops: int, path: str | Path, fix: str) -> None:
    """Refuse a checkpoint whose K+M head differs from what the run builds."""
    k, m = state.get("num_classes"), state.get("num_ops")
    if (k, m) != (num_classes, num_ops):
        raise UserError(f"checkpoint {path} has K={k}, M={m} (K+M={None if k is None else k + (m or 0)}) but this "
                        f"run builds K={num_classes}, M={num_ops}: {fix}")


def strip_module_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict saved from ``nn.DataParallel``/DDP (every key ``module.``-prefixed) without the prefix, as
    RobustBench's loader does; any other state dict as it is."""
    if state_dict and all(str(k).startswith("module.") for k in state_dict):
        return {str(k)[len("module."):]: v for k, v in state_dict.items()}
    return state_dict


def check_training_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """``--resume`` needs a training checkpoint (weights + optimizer + epoch): an export is named as such."""
    if "optimizer" in state and "epoch" in state:
        return
    name = str(path)
    what = ("a timm export (rbla zoo export --timm writes <name>.timm.pth)" if name.endswith(".timm.pth") else
            "an exported model (rbla zoo export)" if "name" in state or "dataset" in state else
            "not a training checkpoint")
    raise UserError(f"--resume {path} is {what}: it holds weights only (no optimizer state or epoch) - resume "
                    "from the run folder's last.pth.tar that rbla train wrote")


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str | Path) -> None:
    """Strict ``load_state_dict`` with a one-line error naming the missing/unexpected keys (a DataParallel
    ``module.`` prefix is stripped first)."""
    state_dict = strip_module_prefix(state_dict)
    try:
        unwrap_model(model).load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        msg = " ".join(str(exc).split())
        raise UserError(f"checkpoint {path} does not fit the model ({msg[:200]}): use the architecture, K and M "
                        "it was trained with") from None


class RunCheckpointSaver(CheckpointSaver):
    """timm's ``CheckpointSaver`` with an atomic ``last`` (``os.replace``) and the full resume state. It keeps the
    ``max_history`` most recent epoch checkpoints (timm keeps the best by metric) and ``model_best`` by metric."""

    def __init__(self, model: nn.Module, optimizer, scheduler, args, amp_scaler=None, checkpoint_dir: str = "",
                 max_history: int = 3) -> None:
        super().__init__(model, optimizer, args=args, amp_scaler=amp_scaler, checkpoint_dir=checkpoint_dir,
                         recovery_dir=checkpoint_dir, max_history=max_history, decreasing=False)
        self.scheduler = scheduler
        self.extension = EXTENSION
        self.last_metrics: dict[str, float] = {}
        self.rng_ranks: list[dict[str, Any]] | None = None  # every rank's RNG states, rank order (DDP resume)
        self.class_names: list[str] | None = None  # the training data's classes, in index order (recorded)
        self.extra_state: dict[str, Any] = {}  # more resume state (the fairness policy's: "fair")

    def adopt_existing(self, start_epoch: int) -> None:
        """On resume: take the run's epoch checkpoints from before ``start_epoch`` into the history (newest first),
        so ``--checkpoint-hist`` counts them and the oldest go as new ones are written."""
        found = []
        for path in Path(self.checkpoint_dir).glob(f"{self.save_prefix}-*{self.extension}"):
            number = path.name[len(self.save_prefix) + 1: -len(self.extension)]
            if number.isdigit() and int(number) < start_epoch:
                found.append((str(path), int(number)))
        self.checkpoint_files = sorted(found, key=lambda f: f[1], reverse=True)
        if len(self.checkpoint_files) > self.max_history:
            self._cleanup_checkpoints(0)

    def save_checkpoint(self, epoch: int, metric: float | None = None):
        last = os.path.join(self.checkpoint_dir, "last" + self.extension)
        self._save(last, epoch, metric)
        epoch_file = os.path.join(self.checkpoint_dir, f"{self.save_prefix}-{epoch}{self.extension}")
        self.checkpoint_files = [f for f in self.checkpoint_files if f[0] != epoch_file]  # rewritten, not added
        if len(self.checkpoint_files) >= self.max_history:
            self._cleanup_checkpoints(1)
        _link_or_copy(last, epoch_file)
        self.checkpoint_files.insert(0, (epoch_file, epoch))  # newest first: cleanup drops the oldest
        if metric is not None and (self.best_metric is None or self.cmp(metric, self.best_metric)):
            self.best_epoch, self.best_metric = epoch, metric
            _link_or_copy(last, os.path.join(self.checkpoint_dir, "model_best" + self.extension))
        return self.best_metric, self.best_epoch

    def save_averaged(self, name: str, epoch: int, state_dict: dict[str, torch.Tensor]) -> str:
        """Write ``<name>.pth.tar``: the checkpoint of ``epoch`` with an averaged model's weights (CFA's FAWA), so
        ``rbla zoo export`` / ``rbla evaluate`` take it like ``last.pth.tar``."""
        path = os.path.join(self.checkpoint_dir, name + self.extension)
        self._save(path, epoch, None, state_dict=state_dict, averaged=name)
        return path

    def _save(self, save_path: str, epoch: int, metric: float | None = None,
              state_dict: dict[str, torch.Tensor] | None = None, averaged: str | None = None) -> None:
        model: ImageClassifier = unwrap_model(self.model)
        state = {
            "version": CHECKPOINT_VERSION,
            "epoch": epoch,
            "arch": self.args.model,
            "num_classes": model.num_classes,
            "num_ops": model.num_ops,
            "mean": model.normalize.mean.flatten().tolist(),
            "std": model.normalize.std.flatten().tolist(),
            "state_dict": model.state_dict() if state_dict is None else state_dict,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "args": jsonable(vars(self.args)),
            "rng": rng_state(),
            "metric": metric,
            "metrics": jsonable(self.last_metrics),
        }
        if self.rng_ranks is not None:
            state["rng_ranks"] = self.rng_ranks
        if self.class_names:
            state["class_names"] = list(self.class_names)
        state.update(self.extra_state)
        if averaged is not None:
            state["averaged"] = averaged
        if self.amp_scaler is not None:
            state["scaler"] = self.amp_scaler.state_dict()
        atomic_torch_save(state, save_path)


# files this saver writes; their ``.<name>.*.tmp`` leftovers of a killed write are removed at start-up
WRITTEN_NAMES = ["last" + EXTENSION, "checkpoint-*" + EXTENSION, "model_best" + EXTENSION, "fawa" + EXTENSION,
                 "args.yaml", "summary.csv"]


def remove_stale_temp_checkpoints(folder: str | Path) -> list[Path]:
    """Remove temp files a killed writer left in a run folder (call while holding the run's lock)."""
    return remove_stale_temp_files(folder, WRITTEN_NAMES)


def _link_or_copy(src: str, dst: str) -> None:
    """``dst`` becomes a hard link to (or, where links fail, an fsynced copy of) ``src``, atomically
    (:func:`~robustbench_labelaug.fileio.atomic_replace`)."""

    def fill(tmp: Path) -> None:
        try:
            os.link(src, tmp)  # the same file: its mode stays
        except OSError:
            shutil.copyfile(src, tmp)
            set_default_mode(tmp)
            fsync_file(tmp)

    atomic_replace(dst, fill, set_mode=False)
