"""Per-sample results shared between the evaluators of one model (``EvalContext.predictions``): the clean pass's
top-1 predictions serve clean, ReaL and ImageNet-X (one forward pass); an AutoAttack run serves the masking checks.

An evaluator declares what its parts are (``Evaluator.shared_keys``, ``offered_key``, ``part_indices``); these
functions look the arrays up and offer them. ``ctx.predictions`` maps ``(key, id(dataset))`` to ``(dataset,
arrays)``; arrays are taken only for the very same dataset object and only where they cover the wanted examples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from torch.utils.data import Dataset

if TYPE_CHECKING:  # pragma: no cover
    from .base import EvalContext, Evaluator, PartArrays


def shared_predictions(evaluator: Evaluator, ctx: EvalContext, dataset: Dataset, part: str,
                       indices: list[int]) -> PartArrays | None:
    """Another evaluator's arrays for ``part`` (same model, same images, a key of ``evaluator.shared_keys``),
    restricted to this part's examples; None where none cover them."""
    if ctx.predictions is None:
        return None
    wanted = np.asarray(sorted(evaluator.part_indices(part, indices)), dtype=np.int64)
    for key in evaluator.shared_keys(part):
        held = ctx.predictions.get((key, id(dataset)))
        if held is None or held[0] is not dataset:
            continue
        stored = held[1]
        pos = np.searchsorted(stored["index"], wanted)
        if len(wanted) and (pos[-1] >= len(stored["index"]) or not np.array_equal(stored["index"][pos], wanted)):
            continue
        return {k: v[pos] for k, v in stored.items()}
    return None


def share_predictions(evaluator: Evaluator, ctx: EvalContext, dataset: Dataset, part: str,
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


__all__ = ["share_predictions", "shared_predictions"]
