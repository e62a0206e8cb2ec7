"""Checks ``rbla evaluate`` makes before its work (issue 22), kept out of run.py's flow: a model is evaluated only
on data with the classes it was trained on (names recorded in its checkpoint) and at the input size its
checkpoint records, unless the config sets one. (Whether a stored result or cache is reused, recomputed or
refused is the store's: :mod:`robustbench_labelaug.store`.)
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..fileio import names_difference
from ..safeload import load_torch
from .loop import data_fingerprint


def data_fingerprints(cfg) -> dict[str, str | None]:
    """Each config dataset's data fingerprint (:func:`.loop.data_fingerprint`), computed once per run."""
    mode = getattr(cfg.runtime, "data_fingerprint", "stat")
    return {ds_id: data_fingerprint(d, mode) for ds_id, d in cfg.datasets.items()}


def recorded_class_names(path: Path) -> list[str] | None:
    """The class names an exported zoo checkpoint records (None: none recorded, or no file). The file is mapped,
    not read: only its small metadata is touched."""
    if not Path(path).is_file():
        return None
    try:
        state = load_torch(path, mmap=True)
    except UserError:  # loading the model later names a damaged file properly
        return None
    names = state.get("class_names") if isinstance(state, dict) else None
    return [str(n) for n in names] if isinstance(names, list) and names else None


def _short(names: list[str]) -> str:
    return "[" + ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "") + "]"


def check_classes_and_size(cfg, models) -> None:
    """Before anything is evaluated: each checkpoint that records its class names sees datasets with the same names
    in the same order, and each that records its input size is not evaluated at a dataset's default of another
    size (the config may set ``input_size`` to evaluate at another size on purpose)."""
    for model in models:
        recorded = model.meta.get("class_names")
        size = model.meta.get("input_size")
        for ds_id in dict.fromkeys(e.dataset or model.dataset_id for e in cfg.evaluators):
            d = cfg.datasets[ds_id]
            spec = d.dataset_spec
            if recorded:
                names = spec.names_of_classes(d.data_dir)
                differ = None if names is None else names_difference(recorded, names)
                if differ:
                    raise UserError(f"model '{model.key}' was trained on the classes {_short(list(recorded))} but "
                                    f"dataset '{ds_id}' has {_short([str(n) for n in names])} ({differ}): evaluate it "
                                    "on data with its classes (same names, same order)")
            if isinstance(size, int) and d.input_size is None and spec.input_size != size:
                raise UserError(f"model '{model.key}' was trained at input size {size} (its checkpoint records it) "
                                f"but dataset '{ds_id}' would evaluate at its default {spec.input_size}: set "
                                f"input_size: {size} under datasets.{ds_id} (or input_size: {spec.input_size} to "
                                "evaluate at that size on purpose)")


__all__ = ["check_classes_and_size", "data_fingerprints", "recorded_class_names"]
