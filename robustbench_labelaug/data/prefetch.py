"""Keep the GPU fed: batches are moved to the device one batch ahead, on a side CUDA stream, so the host-to-device
copy (from the loader's pinned memory, or the device decoding of ``runtime.decode: gpu``) of batch k+1 overlaps
with the compute on batch k. On a CPU device it is a plain map (nothing to overlap)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch


def move_batch(device: torch.device | str) -> Callable[[Any], tuple]:
    """The default ``to_device``: every tensor of a loader batch copied to ``device`` (non-blocking: from pinned
    memory on CUDA it is asynchronous)."""
    device = torch.device(device)
    return lambda batch: tuple(t.to(device, non_blocking=True) if torch.is_tensor(t) else t for t in batch)


class CudaStreams:
    """The stream operations the prefetcher needs, on one CUDA device (a fake with the same methods tests the
    ordering on a CPU)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.side = torch.cuda.Stream(device)

    def on_side(self):
        """Context: work queued inside runs on the side stream."""
        return torch.cuda.stream(self.side)

    def wait_side(self) -> None:
        """The compute stream waits for what was queued on the side stream so far."""
        torch.cuda.current_stream(self.device).wait_stream(self.side)

    def hand_over(self, tensor: torch.Tensor) -> None:
        """``tensor`` (made on the side stream) is used on the compute stream: its memory is not reused before
        that use is done."""
        tensor.record_stream(torch.cuda.current_stream(self.device))


def _tensors(batch) -> Iterator[torch.Tensor]:
    for t in batch if isinstance(batch, (tuple, list)) else (batch,):
        if torch.is_tensor(t):
            yield t


def prefetch(batches: Iterable, to_device: Callable[[Any], Any], device: torch.device | str,
             streams: Any = None) -> Iterator:
    """``to_device(batch)`` for every batch of ``batches``. On CUDA (or with ``streams`` given) batch k+1 is
    queued on the side stream before batch k is handed out, and each handed-out batch is ready on the compute
    stream; elsewhere the batches are converted one by one when asked for."""
    device = torch.device(device)
    if streams is None:
        if device.type != "cuda":
            for batch in batches:
                yield to_device(batch)
            return
        streams = CudaStreams(device)
    source = iter(batches)

    def load():
        try:
            batch = next(source)
        except StopIteration:
            return None
        with streams.on_side():
            return to_device(batch)

    upcoming = load()
    while upcoming is not None:
        streams.wait_side()
        current = upcoming
        for t in _tensors(current):
            streams.hand_over(t)
        upcoming = load()  # queued now: runs on the side stream while the caller computes on ``current``
        yield current
