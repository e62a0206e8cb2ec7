"""Running one evaluator's parts: the inner half of the evaluate loop (the outer half, over a model's results, is
:mod:`robustbench_labelaug.runner.loop`).

An evaluator's work is cut into *parts* (``"all"``, or e.g. ``"gaussian_noise/3"``). :func:`run_parts` takes each
part from the store's part cache (:class:`~robustbench_labelaug.store.PartCache` in ``ctx.out_dir``), else from
another evaluator of the same model that computed the same per-sample results (``ctx.predictions``, below), else
predicts it: sharded over torchrun ranks, gathered on rank 0 and written there at once, so a re-run skips
finished parts. Then every part is scored.

Prediction sharing: the clean pass's top-1 predictions serve clean, ReaL and ImageNet-X (one forward pass); an
AutoAttack run serves the masking checks. An evaluator declares what its parts are (``shared_keys``,
``offered_key``, ``part_indices``); ``ctx.predictions`` maps ``(key, id(dataset))`` to ``(dataset, arrays)``, and
arrays are taken only for the very same dataset object and only where they cover the wanted examples.

This module knows evaluators only by the members :class:`PartsEvaluator` names (``evaluation/base.py`` imports it,
not the other way round).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .. import distributed as dist_utils
from ..data.device_decode import device_batches
from ..data.prefetch import move_batch, prefetch
from ..fileio import jsonable
from ..results.vocab import torch_dtype
from ..store import PartCache, settings_fingerprint
from .selection import warn_uncovered_classes

PartArrays = dict[str, np.ndarray]


class PartsEvaluator(Protocol):
    """What :func:`run_parts` asks of an evaluator (``evaluation.base.Evaluator`` has all of it)."""

    name: str
    settings: dict[str, Any]

    @property
    def precision_name(self) -> str: ...
    def classifier(self, model: nn.Module, ctx: Any) -> nn.Module: ...
    def check_model(self, model: nn.Module, dataset: Dataset, ctx: Any) -> None: ...
    def example_indices(self, dataset: Dataset) -> list[int]: ...
    def parts(self, dataset: Dataset) -> list[str]: ...
    def part_dataset(self, dataset: Dataset, part: str) -> Dataset: ...
    def predict(self, model: nn.Module, batches: Iterator, part: str, ctx: Any) -> PartArrays: ...
    def score(self, arrays: dict[str, PartArrays], dataset: Dataset, ctx: Any) -> Any: ...
    def shared_keys(self, part: str) -> list[tuple]: ...
    def part_indices(self, part: str, indices: list[int]) -> list[int]: ...
    def offered_key(self, part: str, arrays: PartArrays) -> tuple | None: ...


class IndexedSubset(Dataset):
    """``dataset[indices[i]]`` as ``(x, y, index)``."""

    def __init__(self, dataset: Dataset, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        x, y = self.dataset[self.indices[i]][:2]
        return x, y, self.indices[i]


def autocast(device, precision: str):
    """``torch.autocast`` on ``device`` for ``bf16``/``fp16`` (forward passes only); a no-op for ``fp32``."""
    dtype = torch_dtype(precision)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


def part_cache(evaluator: PartsEvaluator, ctx: Any) -> PartCache:
    """The evaluator's part files in ``ctx.out_dir`` (none kept without one), under its settings' digest."""
    return PartCache(ctx.out_dir, evaluator.name, settings_fingerprint(evaluator.name, evaluator.settings))


def run_parts(evaluator: PartsEvaluator, model: nn.Module, dataset: Dataset, ctx: Any) -> Any:
    """The evaluator's result (its ``score``) on ``dataset``: every part cached, shared or predicted (see the
    module docstring); the evaluator has been prepared (``Evaluator.run`` calls this)."""
    info = dist_utils.current()
    model_k = evaluator.classifier(model, ctx)
    evaluator.check_model(model_k, dataset, ctx)
    indices = evaluator.example_indices(dataset)
    if info.is_main:
        warn_uncovered_classes(evaluator, dataset, indices, ctx.num_classes)
    parts = evaluator.parts(dataset)
    cache = part_cache(evaluator, ctx)
    arrays: dict[str, PartArrays] = {}
    todo, reused = [], set()
    for part in parts:
        cached = dist_utils.main_decides(cache.load, part)  # rank 0 decides: no shared filesystem needed
        if cached is None:
            cached = shared_predictions(evaluator, ctx, dataset, part, indices)
            if cached is not None:
                reused.add(part)
                if info.is_main:
                    cache.save(part, cached)
        if cached is None:
            todo.append(part)
        else:
            arrays[part] = cached
    shard = [indices[i] for i in dist_utils.shard_indices(len(indices), info)]
    upcoming = open_part(evaluator, dataset, todo[0], shard, ctx) if todo else None
    for k, part in enumerate(todo):
        batches, upcoming = upcoming, None
        if k + 1 < len(todo) and ctx.num_workers > 0:
            # look ahead: the next part's loader workers start (and prefetch) while this part is predicted
            upcoming = open_part(evaluator, dataset, todo[k + 1], shard, ctx)
        with autocast(ctx.device, evaluator.precision_name):
            local = evaluator.predict(model_k, batches, part, ctx)
        merged = merge_ranks(dist_utils.gather_objects(local))
        if info.is_main:
            cache.save(part, merged)
        dist_utils.barrier()
        arrays[part] = merged
        if upcoming is None and k + 1 < len(todo):
            upcoming = open_part(evaluator, dataset, todo[k + 1], shard, ctx)
    arrays = {part: arrays[part] for part in parts}
    for part, a in arrays.items():
        if part not in reused:
            share_predictions(evaluator, ctx, dataset, part, a)
    result = evaluator.score(arrays, dataset, ctx)
    result.settings = jsonable({**evaluator.settings, **result.settings})
    return result


def open_part(evaluator: PartsEvaluator, dataset: Dataset, part: str, shard: list[int], ctx: Any) -> Iterator:
    """This rank's ``(x, y, index)`` batches of ``part`` on ``ctx.device``. The loader's iterator is created
    here, so with ``ctx.num_workers`` its worker processes start loading at once; on CUDA batches come from
    pinned memory, copied without blocking one batch ahead on a side stream (data/prefetch.py); with
    ``ctx.decode == "gpu"`` folder images are decoded on the device (data/device_decode.py)."""
    data = evaluator.part_dataset(dataset, part)
    found = None
    if ctx.decode == "gpu":  # workers read bytes; decoding + resize + crop in batches on the device
        found = device_batches(data, shard, batch_size=ctx.batch_size, num_workers=ctx.num_workers,
                               device=ctx.device)
    loader, to_device = found or (DataLoader(IndexedSubset(data, shard), batch_size=ctx.batch_size,
                                             shuffle=False, num_workers=ctx.num_workers,
                                             pin_memory=ctx.device.type == "cuda"), move_batch(ctx.device))
    batches = prefetch(iter(loader), to_device, ctx.device)  # on CUDA: batch k+1's copy overlaps batch k
    show = ctx.progress and dist_utils.current().is_main

    def stream():
        with tqdm(total=len(loader), desc=f"{evaluator.name} {part}", leave=False, disable=not show) as bar:
            for batch in batches:
                yield batch
                bar.update()

    return stream()


def merge_ranks(parts: list[PartArrays]) -> PartArrays:
    """Concatenate ranks' arrays and sort them by ``index``."""
    merged = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    order = np.argsort(merged["index"], kind="stable")
    return {k: v[order] for k, v in merged.items()}


# -- per-sample results shared between the evaluators of one model (ctx.predictions) -----------------------------


def shared_predictions(evaluator: PartsEvaluator, ctx: Any, dataset: Dataset, part: str,
                       indices: list[int]) -> PartArrays | None:
    """Another evaluator's arrays for ``part`` (same model, same images, a key of ``evaluator.shared_keys``),
    restricted to this part's examples; None where none cover them."""
    if ctx.predictions is None:
        return None
    return lookup_shared(ctx, dataset, evaluator.shared_keys(part), evaluator.part_indices(part, indices))


def lookup_shared(ctx: Any, dataset: Dataset, keys: Sequence[tuple], indices: Sequence[int]) -> PartArrays | None:
    """The first arrays offered under one of ``keys`` (in ``ctx.predictions``, for this very ``dataset``) that
    cover every one of ``indices``, restricted to them in index order; None where none do."""
    if ctx.predictions is None:
        return None
    wanted = np.asarray(sorted(int(i) for i in indices), dtype=np.int64)
    for key in keys:
        held = ctx.predictions.get((key, id(dataset)))
        if held is None or held[0] is not dataset:
            continue
        stored = held[1]
        pos = np.searchsorted(stored["index"], wanted)
        if len(wanted) and (pos[-1] >= len(stored["index"]) or not np.array_equal(stored["index"][pos], wanted)):
            continue
        return {k: v[pos] for k, v in stored.items()}
    return None


def share_predictions(evaluator: PartsEvaluator, ctx: Any, dataset: Dataset, part: str,
                      arrays: PartArrays) -> None:
    """Offer ``part``'s arrays to the other evaluators of the model (under ``evaluator.offered_key``; a larger
    set of examples replaces a smaller one)."""
    key = evaluator.offered_key(part, arrays) if ctx.predictions is not None else None
    if key is None:
        return
    slot = (key, id(dataset))
    held = ctx.predictions.get(slot)
    if held is None or len(held[1]["index"]) < len(arrays["index"]):
        ctx.predictions[slot] = (dataset, arrays)


__all__ = ["IndexedSubset", "PartArrays", "PartsEvaluator", "autocast", "lookup_shared", "merge_ranks", "open_part", "part_cache",
           "run_parts", "share_predictions", "shared_predictions"]
