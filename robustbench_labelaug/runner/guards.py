"""Checks ``rbla evaluate`` makes before and between its work (issue 22), kept out of run.py's flow:

- results and caches that are damaged (``null``, ``[]``, a truncated file) are recomputed with one line, never a
  traceback; results computed from other data (the data fingerprint, :mod:`..data.fingerprint`) are recomputed
  with one line saying so;
- a model is evaluated only on data with the classes it was trained on (names recorded in its checkpoint) and at
  the input size its checkpoint records, unless the config sets one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import UserError


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when the file is damaged (not JSON, not an object, not UTF-8)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return data if isinstance(data, dict) else None


def stored_result(path: Path, log) -> dict[str, Any] | None:
    """A stored result (``{"fingerprint", "result", ...}``) or None after one line when the file is damaged."""
    stored = read_json_object(path)
    if stored is None or not isinstance(stored.get("result"), dict):
        log(f"{path} is damaged (not a result object): recomputing it")
        return None
    return stored


def data_changed(stored: dict[str, Any], data_fp: str | None) -> bool:
    """Whether a stored result or cache marker was computed from other data than ``data_fp`` (results written
    before data fingerprints existed count as changed where the data has a fingerprint: they are recomputed)."""
    return stored.get("data_fingerprint") != data_fp


def clear_cache(cache_dir: Path) -> None:
    """Remove a cache folder whose splits belong to other data (the result is recomputed from scratch)."""
    shutil.rmtree(cache_dir, ignore_errors=True)


def data_fingerprints(cfg) -> dict[str, str | None]:
    """Each config dataset's data fingerprint (:func:`..data.fingerprint.dataset_fingerprint`), computed once."""
    from ..data.fingerprint import dataset_fingerprint

    mode = getattr(cfg.runtime, "data_fingerprint", "stat")
    return {ds_id: dataset_fingerprint(d.data_dir, d.resolved_split, mode) for ds_id, d in cfg.datasets.items()}


def recorded_class_names(path: Path) -> list[str] | None:
    """The class names an exported zoo checkpoint records (None: none recorded, or no file). The file is mapped,
    not read: only its small metadata is touched."""
    from ..safeload import load_torch

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
                if names is not None and [str(n) for n in names] != [str(n) for n in recorded]:
                    raise UserError(f"model '{model.key}' was trained on the classes {_short(list(recorded))} but "
                                    f"dataset '{ds_id}' has {_short([str(n) for n in names])}: evaluate it on data "
                                    "with its classes (same names, same order)")
            if isinstance(size, int) and d.input_size is None and spec.input_size != size:
                raise UserError(f"model '{model.key}' was trained at input size {size} (its checkpoint records it) "
                                f"but dataset '{ds_id}' would evaluate at its default {spec.input_size}: set "
                                f"input_size: {size} under datasets.{ds_id} (or input_size: {spec.input_size} to "
                                "evaluate at that size on purpose)")


__all__ = ["check_classes_and_size", "clear_cache", "data_changed", "data_fingerprints", "read_json_object",
           "recorded_class_names", "stored_result"]
