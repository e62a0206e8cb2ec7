"""Reading the per-example result files of an evaluation: the stable format that ``rbla compare`` and
``benchmark()`` read (documented in docs/your-model.md, "Per-example result files").

An *evaluation folder* of one model (what ``rbla evaluate`` writes as ``<output>/<model>/`` and ``benchmark(...,
to_disk=True)`` writes as ``<output>/<model_name>/``)::

    model.json                                  {"model": key, "fingerprint": {...}, "meta": {...}}
    results/<id>.json                           {"fingerprint", "id", "dataset", "result": EvalResult dict}
    cache/<id>/fingerprint.json                 {"fingerprint", "evaluator", "settings", "dataset"}
    cache/<id>/<evaluator>/<part>.npz           per-example arrays of one part of the work, sorted by ``index``

Every ``.npz`` holds int64 ``index`` (the dataset index), ``y_true`` and ``y_pred`` (the K-way prediction that is
scored: on the clean image, or on the adversarial example for attacks), plus per evaluator: ``pgd`` (sound)
``y_clean``, ``broken`` (bool: an iterate fooled a correctly classified point), ``iterate``, ``linf``,
``in_range``; ``autoattack`` ``y_clean``, ``broken_by`` (-1: never broken; 0: PGD first; a+1: the a-th attack),
``linf``; and ``__fingerprint__`` (the evaluator's settings digest). A point is *wrong* when ``y_pred != y_true``.
This module is torch-free (numpy and json only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError

# the part compared: evaluators whose work is one part, the clean test images
COMPARED_PART = "all"


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

    def arrays(self, result_id: str) -> dict[str, np.ndarray] | None:
        """The ``all`` part's per-example arrays of result ``result_id`` (None where not stored)."""
        result = self.results[result_id]
        path = self.folder / "cache" / result_id / str(result.get("evaluator")) / f"{COMPARED_PART}.npz"
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files if k != "__fingerprint__"}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror}): check the path") from None
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON: re-run the evaluation that wrote it") from None


def model_folder(path: str | Path) -> Path:
    """The evaluation folder of one model from what a user names: the folder itself (holding ``results/``), a
    model_info JSON (``<output>/model_info/<model>.json`` -> ``<output>/<model>``), or an output folder holding
    exactly one model."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".json":
        info = _read_json(p)
        key = ((info.get("labelaug") or {}).get("model") if isinstance(info, dict) else None) or p.stem
        folder = p.parent.parent / str(key)
        if not (folder / "results").is_dir():
            raise UserError(f"{p} is a model_info file but its per-example results are not at {folder}/results: "
                            "compare the evaluation folders (rbla evaluate's <output>/<model>)")
        return folder
    if (p / "results").is_dir():
        return p
    if p.is_dir():
        inner = sorted(d for d in p.iterdir() if (d / "results").is_dir())
        if len(inner) == 1:
            return inner[0]
        if inner:
            raise UserError(f"{p} holds {len(inner)} evaluated models ({', '.join(d.name for d in inner)}): name "
                            f"one, e.g. {inner[0]}")
    raise UserError(f"{p} is not an evaluation: pass a model_info JSON, a model's evaluation folder (holding "
                    "results/) or an output folder of rbla evaluate / benchmark(to_disk=True)")


def load_evaluated(path: str | Path) -> EvaluatedModel:
    """Read one model's evaluation folder (see the module docstring)."""
    folder = model_folder(path)
    results, datasets, fingerprints = {}, {}, {}
    for f in sorted((folder / "results").glob("*.json")):
        stored = _read_json(f)
        if not isinstance(stored, dict) or "result" not in stored:
            raise UserError(f"{f} is not a stored result (no 'result'): re-run the evaluation that wrote it")
        results[f.stem] = stored["result"]
        marker = folder / "cache" / f.stem / "fingerprint.json"
        datasets[f.stem] = _read_json(marker).get("dataset") if marker.is_file() else stored.get("dataset")
        if "data_fingerprint" in stored:
            fingerprints[f.stem] = stored["data_fingerprint"]
    if not results:
        raise UserError(f"{folder}/results holds no results: run the evaluation first")
    meta = _read_json(folder / "model.json") if (folder / "model.json").is_file() else {}
    info_path = folder.parent / "model_info" / f"{folder.name}.json"
    names = None
    if info_path.is_file():
        names = ((_read_json(info_path).get("labelaug") or {}).get("class_names"))
    names = names or (meta.get("meta") or {}).get("class_names")
    return EvaluatedModel(name=str(meta.get("model") or folder.name), folder=folder, results=results,
                          datasets=datasets, data_fingerprints=fingerprints, meta=meta.get("meta") or {},
                          class_names=names)


__all__ = ["COMPARED_PART", "EvaluatedModel", "load_evaluated", "model_folder"]
