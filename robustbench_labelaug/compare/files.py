"""Reading one model's evaluation folder for ``rbla compare``: its stored results and per-example arrays, read
through the store (:mod:`robustbench_labelaug.store`, which owns the layout; the format is documented in
docs/your-model.md, "Per-example result files").

Every ``.npz`` holds int64 ``index`` (the dataset index), ``y_true`` and ``y_pred`` (the K-way prediction that is
scored: on the clean image, or on the adversarial example for attacks), plus per evaluator: ``pgd`` (sound)
``y_clean``, ``broken`` (bool: an iterate fooled a correctly classified point), ``iterate``, ``linf``,
``in_range``; ``autoattack`` ``y_clean``, ``broken_by`` (-1: never broken; 0: PGD first; a+1: the a-th attack),
``linf``. A point is *wrong* when ``y_pred != y_true``. This module is torch-free (numpy and json only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..store import ALL_PART, EvaluationFolder, StoredEvaluation, locate_evaluation, model_info_of

# the part compared: evaluators whose work is one part, the clean test images
COMPARED_PART = ALL_PART


@dataclass
class EvaluatedModel:
    """One model's evaluation folder: its stored results and, per result id, the per-example arrays."""

    name: str
    folder: Path
    results: dict[str, dict[str, Any]]            # id -> EvalResult dict
    datasets: dict[str, Any] = field(default_factory=dict)   # id -> the dataset spec it ran on
    data_fingerprints: dict[str, Any] = field(default_factory=dict)  # id -> its data fingerprint, where recorded
    meta: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] | None = None
    source: EvaluationFolder | StoredEvaluation | None = field(default=None, repr=False)  # where arrays are read

    def arrays(self, result_id: str) -> dict[str, np.ndarray] | None:
        """The ``all`` part's per-example arrays of result ``result_id`` (None where not stored)."""
        evaluator = str(self.results[result_id].get("evaluator"))
        return (self.source or EvaluationFolder(self.folder)).read_part(result_id, evaluator, COMPARED_PART)


def model_folder(path: str | Path) -> Path:
    """The evaluation folder of one model from what a user names (:func:`~robustbench_labelaug.store.
    locate_evaluation`: the folder itself, a model_info JSON beside it, or an output folder holding one model)."""
    return locate_evaluation(path).path


def load_evaluated(path: str | Path | StoredEvaluation) -> EvaluatedModel:
    """Read one model's evaluation (its results, the data each ran on, its model marker and class names): a
    folder or model_info JSON (:func:`model_folder`), or a :class:`~robustbench_labelaug.store.StoredEvaluation`
    in memory (a ``benchmark()`` Report's), read alike."""
    folder = path if isinstance(path, StoredEvaluation) else locate_evaluation(path)
    stored = folder.read_results()
    if not stored:
        raise UserError(f"{folder.path}/results holds no results: run the evaluation first")
    results = {rid: s["result"] for rid, s in stored.items()}
    datasets = {rid: folder.result_dataset(rid, s) for rid, s in stored.items()}
    fingerprints = {rid: s["data_fingerprint"] for rid, s in stored.items() if "data_fingerprint" in s}
    marker = folder.read_marker()
    info = (model_info_of(folder) if isinstance(folder, EvaluationFolder) else None) or {}
    names = (info.get("labelaug") or {}).get("class_names") or (marker.get("meta") or {}).get("class_names")
    return EvaluatedModel(name=str(marker.get("model") or folder.path.name), folder=folder.path, results=results,
                          datasets=datasets, data_fingerprints=fingerprints, meta=marker.get("meta") or {},
                          class_names=names, source=folder)


__all__ = ["COMPARED_PART", "EvaluatedModel", "load_evaluated", "model_folder"]
