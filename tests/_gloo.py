"""The frame of a gloo worker script (tests/_*_worker.py, started by ``conftest.run_gloo_workers``): join the
process group, run ``work(rank)``, save what it returns as ``<out_dir>/rank<r>.pt``, meet at a barrier (no rank
tears its connections down while another still uses them: that aborted a rank at exit now and then with
"terminate called without an active exception"), and end the group."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist


def run_worker(work: Callable[[int], dict[str, Any]]) -> None:
    """``python worker.py RANK WORLD INIT_FILE OUT_DIR``: ``work(rank)`` on one rank of a gloo group."""
    rank, world, init_file, out_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        torch.save(work(rank), f"{out_dir}/rank{rank}.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()
