"""The one evaluate loop: a model's planned results into its evaluation folder.

``rbla evaluate`` (:func:`~robustbench_labelaug.runner.per_model.evaluate_model`, for every model of a config, also as
tasks) and ``benchmark()`` (:mod:`robustbench_labelaug.api`) both call :func:`evaluate_folder`, so the two doors
give the same numbers and write the same files by construction: the model marker, each result's cache marker and
part files, the result JSON with its data fingerprint. Whether a stored result is reused, recomputed or refused
is the store's decision (:class:`~robustbench_labelaug.store.EvaluationFolder`); each evaluator's parts are run by
``Evaluator.run`` (:mod:`robustbench_labelaug.evaluation.parts`).

Importing this module imports no torch (``rbla evaluate --help`` starts at once); :func:`evaluate_folder` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from ..data.fingerprint import dataset_fingerprint
from ..data.registry import DATASETS
from ..store import EvaluationFolder, ResultSpec
from .config import DatasetConfig
from .feeding import resolve_batch_size


def data_fingerprint(dataset: DatasetConfig, mode: str = "stat") -> str | None:
    """The fingerprint of the files ``dataset`` reads (:func:`~..data.fingerprint.dataset_fingerprint`; None for
    embedded data)."""
    return dataset_fingerprint(dataset.data_dir, dataset.resolved_split, mode)


def _registered_name(spec: ResultSpec) -> str | None:
    """The registered dataset's name of ``spec`` (``EvalContext.dataset``); None for data the registry does not
    know (``benchmark(dataset=(x, y))`` tensors)."""
    name = spec.dataset.get("name")
    return name if name in DATASETS else None


def plan_result(rid: str, evaluator: str, settings: Mapping[str, Any], dataset: DatasetConfig, num_classes: int,
                seed: int, data_fp: str | None) -> ResultSpec:
    """What result ``rid`` (evaluator ``evaluator`` with ``settings`` on ``dataset``) depends on."""
    return ResultSpec(rid, evaluator, dict(settings), dataset.id, dataset.spec(), int(num_classes), int(seed),
                      data_fp)


def evaluate_folder(folder: EvaluationFolder, planned: Sequence[ResultSpec], *, fingerprint: Mapping[str, Any],
                    meta: Mapping[str, Any], load: Callable[[], Any], dataset: Callable[[str], Any], device: Any,
                    batch_size: int | str = 64, num_workers: int = 0, progress: bool = True, decode: str = "cpu",
                    checked: dict | None = None) -> dict[str, dict[str, Any]]:
    """Every planned result of one model (result id -> EvalResult dict), each reused from ``folder`` where it
    is stored, else computed and stored.

    ``fingerprint`` / ``meta``: what identifies the model's weights and describes it (the folder's model marker;
    a folder of other weights is refused). ``load()``: the model, called once, only when a result must be
    computed (for a new folder: before anything is written in it, as ``dataset`` is for each planned result).
    ``dataset(id)``: a planned result's dataset. ``batch_size``: a number or ``auto``
    (:func:`~.feeding.resolve_batch_size`, once per model). ``checked``: the run's data checks already passed,
    shared between models. The evaluators of the model share its per-sample results (clean, ReaL and ImageNet-X
    run one forward pass; the masking checks take the AutoAttack run). Before each evaluator torch and numpy are
    seeded with the result's seed. Under torchrun every rank calls it; only ``folder.writer`` (rank 0) writes. A
    folder this call created is removed again when it fails before its first result (nothing is left behind)."""
    fresh = not folder.path.exists()
    try:
        return _evaluate(folder, planned, fingerprint, meta, load, dataset, device, batch_size, num_workers,
                         progress, decode, checked)
    except BaseException:  # refused before its first result (a model or data check): leave no folder behind
        if fresh and folder.writer and not folder.computed_files():
            import shutil

            shutil.rmtree(folder.path, ignore_errors=True)
        raise


def _evaluate(folder: EvaluationFolder, planned: Sequence[ResultSpec], fingerprint: Mapping[str, Any],
              meta: Mapping[str, Any], load: Callable[[], Any], dataset: Callable[[str], Any], device: Any,
              batch_size: int | str, num_workers: int, progress: bool, decode: str,
              checked: dict | None) -> dict[str, dict[str, Any]]:
    import torch  # deferred with the evaluators (torch) for the CLI's start time

    # deferred: torch (kept out of the CLI's start)
    from .. import distributed as dist_utils

    # deferred: torch (kept out of the CLI's start)
    from ..evaluation import EvalContext, create_evaluator

    def load_checked(data):
        # deferred: torch (kept out of the CLI's start)
        from ..modelcheck import check_consistent_outputs

        net = load()
        # the same logits on two calls and two batch sizes, unless declared stochastic (meta["stochastic"])
        varies = check_consistent_outputs(net, data, None, f"model '{folder.key}'",
                                          stochastic=bool(meta.get("stochastic")))
        if meta.get("stochastic"):
            folder.log(f"model '{folder.key}' is declared stochastic ({varies or 'its logits did not vary here'}):"
                       " its numbers are one draw; AutoAttack runs its randomised version (rand)")
        return net

    loaded, batch = None, None
    folder.check_model(fingerprint)
    if planned and not folder.marker.exists():  # a new folder: its data and model are built and checked before its
        first = [dataset(spec.dataset_id) for spec in planned][0]  # first file is written (a refused data file, a
        loaded = load_checked(first)                                # factory that aborts: no folder left behind)
    folder.mark_model(fingerprint, meta)
    dist_utils.barrier()
    show = progress and dist_utils.current().is_main
    predictions: dict = {}  # this model's per-sample results, shared between its evaluators
    results: dict[str, dict[str, Any]] = {}
    bar = tqdm(planned, desc=folder.key, leave=False, disable=not show)
    for spec in bar:
        bar.set_postfix_str(spec.id)
        stored = folder.reusable_result(spec)
        if stored is not None:
            results[spec.id] = stored
            continue
        parts = folder.open_parts(spec)
        evaluator = create_evaluator(spec.evaluator, **spec.settings)
        data = dataset(spec.dataset_id)
        if loaded is None:
            loaded = load_checked(data)
        if batch is None:
            batch = resolve_batch_size(batch_size, loaded, data, device, folder.key, show=folder.writer)
        torch.manual_seed(spec.seed)
        np.random.seed(spec.seed)
        ctx = EvalContext(num_classes=spec.num_classes, out_dir=parts, device=device, batch_size=batch,
                          num_workers=num_workers, progress=progress, seed=spec.seed, dataset=_registered_name(spec),
                          predictions=predictions, checked=checked, decode=decode)
        started = time.perf_counter()
        result = evaluator.run(loaded, data, ctx).to_dict()
        result.setdefault("details", {})["wall_seconds"] = round(time.perf_counter() - started, 3)
        folder.write_result(spec, result)
        dist_utils.barrier()
        results[spec.id] = result
    return results


__all__ = ["data_fingerprint", "evaluate_folder", "plan_result"]
