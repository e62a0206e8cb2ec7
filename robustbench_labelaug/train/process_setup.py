"""Per-process set-up of a training run (GPU / DDP; issue 11): starting weights (pretrained tag, local file,
sha256), global batch size split over processes, data-loader workers, SyncBatchNorm, ``torch.compile`` and
per-rank RNG states."""

from __future__ import annotations

import argparse
import os
from typing import Any

import torch
from torch import nn

from .. import distributed as dist_utils
from ..data.registry import get_dataset_spec
from ..distributed import DistInfo
from ..errors import UserError
from ..fileio import file_sha256

MAX_DEFAULT_WORKERS = 16


def starting_weights(args: argparse.Namespace) -> dict[str, Any]:
    """Resolve ``--pretrained``/``--pretrained-tag``/``--pretrained-file`` in place, so the checkpoint records the
    starting point: from the hub, ``args.model`` becomes the tagged timm name whose weights are loaded
    (``resnet50`` -> ``resnet50.a1_in1k``, timm's default) and ``args.pretrained_tag`` its tag; from a local
    ``--pretrained-file``, the weights are the file's (recorded with its sha256 by :func:`record_starting_sha256`),
    so no tag is made up: ``args.model`` and ``args.pretrained_tag`` stay as given (a tag only if the user named
    one). Returns the extra ``create_classifier`` keyword arguments."""
    # deferred: torch (kept out of the CLI's start)
    from ..models.pretrained import resolve_pretrained_name, split_tag

    if getattr(args, "pretrained_tag", None) or getattr(args, "pretrained_file", None):
        args.pretrained = True
    if not args.pretrained:
        return {}
    if args.pretrained_file:
        if args.pretrained_tag or split_tag(args.model)[1]:
            args.model = resolve_pretrained_name(args.model, args.pretrained_tag)  # checks the named tag
            args.pretrained_tag = split_tag(args.model)[1]
        path = os.path.abspath(os.path.expanduser(args.pretrained_file))
        if not os.path.isfile(path):
            raise UserError(f"--pretrained-file {args.pretrained_file} does not exist: pass a local weights file "
                            "(.pth/.bin/.safetensors) of the --model architecture")
        args.pretrained_file = path
        return {"pretrained_cfg_overlay": {"file": path}}
    args.model = resolve_pretrained_name(args.model, args.pretrained_tag)
    args.pretrained_tag = split_tag(args.model)[1]
    return {}


def record_starting_sha256(args: argparse.Namespace, model: nn.Module) -> None:
    """``args.pretrained_sha256``: sha256 of the weights file the run started from (None without --pretrained or
    when timm's file cannot be located)."""
    # deferred: torch (kept out of the CLI's start)
    from ..models.pretrained import pretrained_file

    path = pretrained_file(getattr(model, "net", model)) if args.pretrained else None
    args.pretrained_sha256 = file_sha256(path) if path and os.path.isfile(path) else None


def read_initial_checkpoint(args: argparse.Namespace, num_classes: int, num_ops: int
                            ) -> dict[str, torch.Tensor] | None:
    """``--initial-checkpoint``: the weights to start from (weights-only loading), checked against the run's
    architecture, K and M; records ``args.initial_checkpoint`` (absolute) and ``args.initial_checkpoint_sha256``.
    None without the flag."""
    path = getattr(args, "initial_checkpoint", None)
    if not path:
        return None
    # deferred: torch (kept out of the CLI's start)
    from ..models.pretrained import same_architecture

    # deferred: torch (kept out of the CLI's start)
    from .checkpoint import check_head, read_checkpoint

    path = os.path.abspath(os.path.expanduser(path))
    state = read_checkpoint(path)
    check_head(state, num_classes, num_ops, path, "start from a model of this run's --dataset, --adv-mode and "
               "--la-ops (FRL's hot start: an adv or trades run, K outputs)")
    arch = state.get("arch") or (state.get("args") or {}).get("model")
    if arch is not None and not same_architecture(arch, args.model):
        raise UserError(f"--initial-checkpoint {path} is a '{arch}' but --model is '{args.model}': pass --model "
                        f"{arch} or another checkpoint")
    args.initial_checkpoint = path
    args.initial_checkpoint_sha256 = file_sha256(path)
    return state["state_dict"]


def starting_point(args: argparse.Namespace) -> str:
    """Where the weights came from, in words (a file with its sha256, or timm's tagged weights)."""
    if getattr(args, "initial_checkpoint", None):
        sha = getattr(args, "initial_checkpoint_sha256", None)
        return f"--initial-checkpoint {args.initial_checkpoint}" + (f" (sha256 {sha})" if sha else "")
    if not getattr(args, "pretrained", False):
        return "random"
    sha = getattr(args, "pretrained_sha256", None)
    digest = f" (sha256 {sha})" if sha else ""
    if getattr(args, "pretrained_file", None):
        return f"file {args.pretrained_file}{digest}"
    return f"timm's {args.model}{digest}"


def per_process_batch(batch_size: int, world_size: int) -> int:
    """The batch each process loads for a GLOBAL ``--batch-size``."""
    if batch_size % world_size:
        raise UserError(f"--batch-size {batch_size} is the global batch but does not split over {world_size} "
                        f"processes: use a multiple of {world_size} (e.g. {batch_size - batch_size % world_size or world_size})")
    return batch_size // world_size


def default_workers(args: argparse.Namespace, device: torch.device) -> int:
    """``--workers`` when given; else on CUDA the CPU count over the local GPUs (at most 16), else 0 (the digits
    data are in memory, and on CPU the workers would compete with the training threads)."""
    if args.workers is not None:
        return args.workers
    if device.type != "cuda" or get_dataset_spec(args.dataset).in_memory:
        return 0
    local = int(os.environ.get("LOCAL_WORLD_SIZE") or torch.cuda.device_count() or 1)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_DEFAULT_WORKERS, cpus // max(local, 1)))


def apply_sync_bn(model: nn.Module, args: argparse.Namespace, info: DistInfo, device: torch.device) -> nn.Module:
    """``--sync-bn``: BatchNorm layers become SyncBatchNorm when there are several processes (before DDP)."""
    if not getattr(args, "sync_bn", False) or not info.distributed:
        return model
    if device.type != "cuda":
        raise UserError("--sync-bn needs CUDA devices (torch's SyncBatchNorm runs on GPUs only): drop it on CPU")
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def maybe_compile(module: nn.Module, backend: str | None) -> nn.Module:
    """``torch.compile(module, backend=...)`` for ``--compile``; the module itself otherwise."""
    if not backend:
        return module
    return torch.compile(module, backend=backend)


def gather_rng_states() -> list[dict[str, Any]]:
    """Every rank's RNG states in rank order (a collective: all ranks call it)."""
    # deferred: torch (kept out of the CLI's start)
    from .checkpoint import rng_state

    return dist_utils.gather_objects(rng_state())


def restore_rng(state: dict[str, Any], info: DistInfo, log) -> None:
    """Set this rank's RNG states from a checkpoint: its own when the checkpoint holds one per rank of the same
    world size, else (an older checkpoint, or another world size) rank 0's for rank 0 and a fresh seed for the
    others, which is then not bit-identical and is said so."""
    # deferred: torch (kept out of the CLI's start)
    from .checkpoint import set_rng_state

    ranks = state.get("rng_ranks")
    if ranks and len(ranks) == info.world_size:
        set_rng_state(ranks[info.rank])
        return
    if info.rank == 0:
        set_rng_state(state["rng"])
    else:
        torch.manual_seed(int(state.get("epoch", 0)) * 1000 + info.rank)
    if info.distributed:
        log(f"the checkpoint holds RNG states for {len(ranks) if ranks else 1} process(es), this run has "
            f"{info.world_size}: ranks > 0 reseed, so the resumed run is not bit-identical")


def sync_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank. DDP broadcasts them at the start of each
    forward only, so after an epoch each rank holds the statistics of its own last batch: without this, ranks
    would validate with different statistics, and the next epoch's first attack on ranks > 0 would differ from a
    resumed run's (which loads rank 0's)."""
    if not dist_utils.current().distributed:
        return
    import torch.distributed as dist

    for buf in model.buffers():
        dist.broadcast(buf.data, src=0)
