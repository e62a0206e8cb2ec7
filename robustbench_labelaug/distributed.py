"""torchrun / srun support shared by training and evaluation: init (gloo on CPU, NCCL on GPU), sharding, gathering."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import UserError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launch_env() -> DistInfo:
    """Rank, world size and local rank of this process: torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, else
    an ``srun`` step's ``SLURM_PROCID``/``SLURM_STEP_NUM_TASKS``/``SLURM_LOCALID`` (which then needs
    ``MASTER_ADDR``/``MASTER_PORT``), else one process."""
    env = os.environ
    if "WORLD_SIZE" in env or "RANK" in env:
        return DistInfo(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))
    tasks = int(env.get("SLURM_STEP_NUM_TASKS") or 1)  # set inside an srun step only, not in the batch script
    if tasks > 1 and "SLURM_PROCID" in env:
        if not env.get("MASTER_ADDR") or not env.get("MASTER_PORT"):
            raise UserError(f"srun started {tasks} tasks but MASTER_ADDR/MASTER_PORT are not set: export them "
                            "(e.g. MASTER_ADDR=$(scontrol show hostnames | head -1) MASTER_PORT=29500) or launch "
                            "one torchrun per node")
        return DistInfo(int(env["SLURM_PROCID"]), tasks, int(env.get("SLURM_LOCALID", "0")))
    return DistInfo()


def init_distributed(device: str | None = None) -> tuple[DistInfo, torch.device]:
    """Initialise the process group when launched by torchrun or srun (world size > 1); pick the device
    (``cuda`` without an index means this process's local GPU)."""
    info = launch_env()
    if info.distributed:  # srun: publish the torchrun variables that env:// init and current() read
        os.environ.update(RANK=str(info.rank), WORLD_SIZE=str(info.world_size), LOCAL_RANK=str(info.local_rank))
    if device is None:
        device = f"cuda:{info.local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", info.local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if info.distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", init_method="env://",
                                rank=info.rank, world_size=info.world_size)
        _STARTED.append(True)
    return info, dev


_STARTED: list[bool] = []  # whether init_distributed started this process's group (then close_distributed ends it)


def close_distributed() -> None:
    """End the process group :func:`init_distributed` started (a no-op otherwise). Leaving it to interpreter exit
    lets gloo's threads be torn down while joinable, which aborts a rank now and then ("terminate called without
    an active exception", exit -6) after all the work is done."""
    if _STARTED and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _STARTED.clear()


def current() -> DistInfo:
    """Rank and world size of the running process group (1 process when none)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def shard_indices(n: int, info: DistInfo | None = None) -> list[int]:
    """This rank's share of ``range(n)``: every world_size-th index, no padding, no duplicates."""
    info = info or current()
    return list(range(info.rank, n, info.world_size))


def gather_objects(obj):
    """All ranks' ``obj`` as a list (rank order); ``[obj]`` without a process group."""
    info = current()
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if current().distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if current().distributed:
        dist.barrier()


@contextlib.contextmanager
def rank0_buffers(model: torch.nn.Module) -> Iterator[None]:
    """Within the block every rank's buffers (BatchNorm running statistics) are rank 0's; after it each rank has
    its own again. Lets ranks score with the statistics a checkpoint saves without changing their training."""
    if not current().distributed:
        yield
        return
    buffers = list(model.buffers())
    saved = [b.detach().clone() for b in buffers]
    for b in buffers:
        dist.broadcast(b.data, src=0)
    try:
        yield
    finally:
        for b, own in zip(buffers, saved):
            b.data.copy_(own)


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank."""
    if not current().distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_finite(t: torch.Tensor) -> bool:
    """Whether ``t`` is finite on every rank: one MIN all-reduce of a flag under torchrun/srun, so that a NaN on
    one rank stops all ranks at the same step (instead of the others hanging in their next collective)."""
    flag = torch.isfinite(t.detach()).all().to(torch.float32).reshape(1)
    if current().distributed:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def main_decides(fn, *args):
    """``fn(*args)`` evaluated on rank 0 only and broadcast to every rank (e.g. whether and what a cached file
    holds: ranks without a shared filesystem then still agree); a UserError on rank 0 is raised on every rank."""
    info = current()
    if not info.distributed:
        return fn(*args)
    result, error = None, None
    if info.is_main:
        try:
            result = fn(*args)
        except UserError as exc:
            error = str(exc)
    result, error = broadcast_object((result, error))
    if error is not None:
        raise UserError(error)
    return result
