"""The evaluation store: the one module that knows where evaluation results live and when a stored one is reused.

An output root (``rbla evaluate``'s ``--output``, ``benchmark(..., output=...)``) is an :class:`EvaluationStore`;
each model's folder in it is an :class:`EvaluationFolder`::

    <root>/rbla.lock                            the one writer's lock (fileio.RunLock)
    <root>/model_info/<model>.json              RobustBench's model_info + the "labelaug" block
    <root>/<model>/model.json                   {"model", "fingerprint", "meta"}: whose weights the results are
    <root>/<model>/results/<id>.json            {"fingerprint", "id", "dataset", "data_fingerprint", "result"}
    <root>/<model>/cache/<id>/fingerprint.json  {"fingerprint", "evaluator", "settings", "dataset", "data_fingerprint"}
    <root>/<model>/cache/<id>/<evaluator>/<part>.npz   one finished part's per-example arrays (sorted by "index")
                                                       and "__fingerprint__" (the evaluator's settings digest)

A model_info written anywhere else (``Report.to_model_info("mine.json")``) keeps its model's evaluation beside it,
in the store ``mine.evaluation/`` (:func:`evaluation_beside`), so ``rbla compare mine.json ...`` finds its
per-example results; a :class:`StoredEvaluation` is one model's evaluation held in memory (what ``benchmark()``'s
Report carries and ``rbla compare`` reads, from disk or from memory alike).

What a result depends on is a :class:`ResultSpec` (evaluator, settings, dataset spec, K, seed: its fingerprint;
and the data's fingerprint, kept beside it). A stored result or cache is **reused** when both match;
**recomputed**, with one line saying so, when its file is damaged or the data changed; **refused** with one
:class:`UserError` when it was computed with other settings, or the folder holds another model's weights (mixing
them would give numbers of neither). Model keys and result ids go through :func:`fileio.check_component`; JSON is
read with :func:`fileio.read_json` / :func:`fileio.read_json_or_none` and every file is written atomically; a
writer holds the root's :meth:`EvaluationStore.lock`. Torch-free (json, numpy).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError
from .fileio import (
    RunLock,
    atomic_write_bytes,
    atomic_write_json,
    check_component,
    jsonable,
    read_json,
    read_json_or_none,
)

MODEL_MARKER = "model.json"
RESULTS = "results"
CACHE = "cache"
CACHE_MARKER = "fingerprint.json"
MODEL_INFO = "model_info"
LOCK = "rbla.lock"
PART_FINGERPRINT = "__fingerprint__"  # the array in every part file holding the evaluator's settings digest
ALL_PART = "all"  # the one part of an evaluator whose work is not divided (clean, pgd, autoattack: the test images)

Arrays = dict[str, np.ndarray]
Log = Callable[[str], None]


def _print(msg: str) -> None:
    print(msg, flush=True)


def digest(obj: Any) -> str:
    """The fingerprint of a JSON-able value: the first 16 hex digits of the sha256 of its sorted JSON."""
    return hashlib.sha256(json.dumps(jsonable(obj), sort_keys=True).encode()).hexdigest()[:16]


def settings_fingerprint(evaluator: str, settings: Mapping[str, Any]) -> str:
    """What an evaluator's part files are computed with: its name and its (fingerprinted) settings."""
    return digest({"evaluator": evaluator, **settings})


def part_name(part: str) -> str:
    """A part (``"all"``, ``"gaussian_noise/3"``) as a file name (``gaussian_noise__3``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "__", part)


def part_path(cache_dir: str | Path, evaluator: str, part: str, suffix: str = ".npz") -> Path:
    """``<cache_dir>/<evaluator>/<part><suffix>``: a part's file (another ``suffix`` names a file beside it, e.g.
    an attack's unfinished state)."""
    return Path(cache_dir) / check_component(evaluator, "evaluator name") / f"{part_name(part)}{suffix}"


def data_changed(stored: Mapping[str, Any], data_fingerprint: str | None) -> bool:
    """Whether a stored result or cache marker was computed from other data than ``data_fingerprint`` (one
    written before data fingerprints existed counts as changed where the data has a fingerprint)."""
    return stored.get("data_fingerprint") != data_fingerprint


# what a model fingerprint's key stands for, in words (the keys runner/models.py, zoo/sources.py and benchmark()
# record)
FINGERPRINT_WORDS = {"sha256": "its checkpoint's weights", "code_sha256": "its code", "python": "its factory",
                     "zoo": "its zoo entry", "timm": "its timm model", "robustbench": "its RobustBench model",
                     "state_dict_sha256": "its weights"}


def fingerprint_change(old: Any, new: Any) -> str:
    """What changed between two model fingerprints, in words (e.g. "its code changed")."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return "its weights or source changed"
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    words = [FINGERPRINT_WORDS.get(k, f"its {k}") for k in changed]
    return (" and ".join(dict.fromkeys(words)) or "its source") + " changed"


def read_part(path: str | Path, log: Log | None = _print) -> Arrays | None:
    """A part file's arrays (with :data:`PART_FINGERPRINT`), or None when there is none. A damaged file
    (truncated, arrays of different lengths) is None after one line from ``log``; with ``log=None`` it is a
    :class:`UserError` (a reader that cannot recompute it)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:  # a truncated or inconsistent file is never a traceback
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if len({len(a) for k, a in arrays.items() if k != PART_FINGERPRINT and a.ndim}) > 1:
            raise ValueError("arrays of different lengths")
    except Exception as exc:  # noqa: BLE001 - BadZipFile, EOFError, ValueError, OSError, zlib.error, ...
        if log is None:
            raise UserError(f"{path} is damaged ({type(exc).__name__}): re-run the evaluation that wrote it") from None
        log(f"cache file {path} is damaged ({type(exc).__name__}): recomputing it")
        return None
    return arrays


class PartCache:
    """One evaluator's finished parts in ``folder`` (``None``: nothing is kept): each written atomically with the
    evaluator's settings digest inside, so a part computed with other settings is refused, never mixed in."""

    def __init__(self, folder: str | Path | None, evaluator: str, fingerprint: str, log: Log = _print) -> None:
        self.folder = None if folder is None else Path(folder)
        self.evaluator, self.fingerprint, self.log = evaluator, fingerprint, log

    def path(self, part: str) -> Path | None:
        return None if self.folder is None else part_path(self.folder, self.evaluator, part)

    def load(self, part: str) -> Arrays | None:
        """The part's arrays; None when not computed yet or damaged (one line); :class:`UserError` when another
        run's settings computed it."""
        path = self.path(part)
        arrays = None if path is None else read_part(path, self.log)
        if arrays is None:
            return None
        if str(arrays.pop(PART_FINGERPRINT, "")) != self.fingerprint:
            raise UserError(f"{path} was written by a {self.evaluator} run with other settings: use another output "
                            "folder, or delete that folder to recompute")
        return arrays

    def save(self, part: str, arrays: Mapping[str, np.ndarray]) -> None:
        path = self.path(part)
        if path is None:
            return
        buf = io.BytesIO()
        np.savez(buf, **{PART_FINGERPRINT: np.array(self.fingerprint)}, **arrays)
        atomic_write_bytes(path, buf.getvalue())


@dataclass
class ResultSpec:
    """What one stored result depends on: result ``id`` (the config's evaluator id), ``evaluator`` and its
    ``settings``, the dataset (``dataset_id`` and ``dataset``, its spec: what its data depends on), K, the
    run's ``seed`` (these make :attr:`fingerprint`), and the data's own fingerprint (files changed on disk:
    recomputed, not refused)."""

    id: str
    evaluator: str
    settings: dict[str, Any]
    dataset_id: str
    dataset: dict[str, Any]
    num_classes: int
    seed: int
    data_fingerprint: str | None = None
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        check_component(self.id, "evaluator id", "use letters, digits, '-', '_' or '.' in the evaluator's id")
        self.fingerprint = digest({"evaluator": self.evaluator, "settings": self.settings, "dataset": self.dataset,
                                   "num_classes": self.num_classes, "seed": self.seed})


class EvaluationFolder:
    """One model's evaluation folder (``<root>/<model>/``): its model marker, stored results and part caches.

    ``writer``: this process writes (rank 0 under torchrun; the others only read and decide alike); ``log``
    prints the one line said when something is recomputed."""

    def __init__(self, path: str | Path, key: str | None = None, *, writer: bool = True, log: Log = _print) -> None:
        self.path = Path(path)
        self.key = key or self.path.name
        self.writer, self.log = writer, log

    def __repr__(self) -> str:
        return f"EvaluationFolder({str(self.path)!r})"

    # -- layout ------------------------------------------------------------------------------------------------
    @property
    def marker(self) -> Path:
        return self.path / MODEL_MARKER

    def result_path(self, rid: str) -> Path:
        return self.path / RESULTS / f"{check_component(rid, 'evaluator id')}.json"

    def cache_dir(self, rid: str) -> Path:
        return self.path / CACHE / check_component(rid, "evaluator id")

    def part_path(self, rid: str, evaluator: str, part: str) -> Path:
        return part_path(self.cache_dir(rid), evaluator, part)

    # -- writing: what the evaluate loop asks ---------------------------------------------------------------------
    def computed_files(self) -> list[Path]:
        """What the folder holds of computed work: stored results and part files (not the markers)."""
        return sorted([*(self.path / RESULTS).glob("*.json"), *(self.path / CACHE).rglob("*.npz")])

    def _other_model(self, fingerprint: Mapping[str, Any]) -> Any:
        """The marker's fingerprint where it names another model than ``fingerprint``, else None."""
        if not self.marker.exists():
            return None
        found = read_json(self.marker, fix=f"delete {self.path} to recompute its results").get("fingerprint")
        return None if found == jsonable(fingerprint) else (found or {})

    def check_model(self, fingerprint: Mapping[str, Any], rename: str = "another name") -> None:
        """Refuse a folder holding another model's results (other weights or code under the same name), naming
        what changed; a folder whose marker names another model but that holds no results (a run that died before
        its first) is taken by this one (:meth:`mark_model`). Nothing is written. ``rename``: how this door names
        a model apart (``another name: benchmark(..., model_name=...)``)."""
        found = self._other_model(fingerprint)
        if found is not None:
            computed = self.computed_files()
            if computed:
                raise UserError(f"{self.path} holds {len(computed)} result file(s) of model '{self.key}' as it was "
                                f"before {fingerprint_change(found, jsonable(fingerprint))}: give this model "
                                f"{rename}, use another output folder, or delete {self.path} to recompute")

    def mark_model(self, fingerprint: Mapping[str, Any], meta: Mapping[str, Any],
                   rename: str = "another name") -> None:
        """:meth:`check_model`, then write the marker where there is none (or where it named a model that left no
        results: its markers go with it)."""
        self.check_model(fingerprint, rename)
        if self.writer and self._other_model(fingerprint) is not None:
            shutil.rmtree(self.path / CACHE, ignore_errors=True)
            self.marker.unlink()
        if self.writer and not self.marker.exists():
            atomic_write_json(self.marker, {"model": self.key, "fingerprint": fingerprint, "meta": meta})

    def reusable_result(self, spec: ResultSpec) -> dict[str, Any] | None:
        """The stored result of ``spec`` where it can be reused; None where it must be computed (none stored, a
        damaged file, or other data: one line, and the stale parts are removed); :class:`UserError` where it was
        computed with other settings."""
        path = self.result_path(spec.id)
        if not path.exists():
            return None
        stored = read_json_or_none(path)
        if stored is None or not isinstance(stored.get("result"), dict):
            self.log(f"{path} is damaged (not a result object): recomputing it")
            return None
        if stored.get("fingerprint") != spec.fingerprint:
            raise UserError(f"{path} was computed with other settings or data than '{spec.id}' has now: use another "
                            f"output folder, or delete it (and {self.cache_dir(spec.id)}) to recompute")
        if data_changed(stored, spec.data_fingerprint):
            self.log(f"the data of dataset '{spec.dataset_id}' changed since {path} was computed (or it predates "
                     "data fingerprints): recomputing it")
            self._clear(spec.id)
            return None
        return stored["result"]

    def open_parts(self, spec: ResultSpec) -> Path:
        """The folder of ``spec``'s part files (``EvalContext.out_dir``), checked and marked: parts of other data
        or under a damaged marker are removed (one line), parts of other settings refused."""
        cache, marker = self.cache_dir(spec.id), self.cache_dir(spec.id) / CACHE_MARKER
        if marker.exists():
            found = read_json_or_none(marker)
            if found is None:
                self.log(f"{marker} is damaged: recomputing the parts in {cache}")
                self._clear(spec.id)
            elif found.get("fingerprint") != spec.fingerprint:
                raise UserError(f"{cache} holds parts computed with other settings or data than '{spec.id}' has "
                                f"now: use another output folder, or delete {cache} to recompute")
            elif data_changed(found, spec.data_fingerprint):
                self.log(f"{cache} holds parts of other data of dataset '{spec.dataset_id}': recomputing them")
                self._clear(spec.id)
        if self.writer and not marker.exists():
            atomic_write_json(marker, {"fingerprint": spec.fingerprint, "evaluator": spec.evaluator,
                                       "settings": spec.settings, "dataset": spec.dataset,
                                       "data_fingerprint": spec.data_fingerprint})
        return cache

    def write_result(self, spec: ResultSpec, result: Mapping[str, Any]) -> None:
        if self.writer:
            atomic_write_json(self.result_path(spec.id), {
                "fingerprint": spec.fingerprint, "id": spec.id, "dataset": spec.dataset_id,
                "data_fingerprint": spec.data_fingerprint, "result": result})

    def _clear(self, rid: str) -> None:
        if self.writer:
            shutil.rmtree(self.cache_dir(rid), ignore_errors=True)

    # -- reading: what rbla compare and benchmark() read -------------------------------------------------------
    def has_results(self) -> bool:
        return (self.path / RESULTS).is_dir()

    def read_marker(self) -> dict[str, Any]:
        """``model.json`` (``{}`` where there is none)."""
        return read_json(self.marker, fix="re-run the evaluation that wrote it") if self.marker.is_file() else {}

    def read_results(self) -> dict[str, dict[str, Any]]:
        """Result id -> stored record (``{"fingerprint", "id", "dataset", "data_fingerprint", "result"}``), in
        file-name order; a damaged file is a :class:`UserError`."""
        out = {}
        for path in sorted((self.path / RESULTS).glob("*.json")):
            stored = read_json(path, fix="re-run the evaluation that wrote it")
            if not isinstance(stored.get("result"), dict):
                raise UserError(f"{path} is not a stored result (no 'result'): re-run the evaluation that wrote it")
            out[path.stem] = stored
        return out

    def result_dataset(self, rid: str, stored: Mapping[str, Any]) -> Any:
        """The dataset spec result ``rid`` ran on (its cache marker's), else the stored dataset id."""
        marker = self.cache_dir(rid) / CACHE_MARKER
        if marker.is_file():
            return read_json(marker, fix="re-run the evaluation that wrote it").get("dataset")
        return stored.get("dataset")

    def read_part(self, rid: str, evaluator: str, part: str, *, keep_fingerprint: bool = False) -> Arrays | None:
        """A part's per-example arrays (without the fingerprint unless ``keep_fingerprint``), None where not
        stored; damaged: UserError."""
        arrays = read_part(self.part_path(rid, evaluator, part), log=None)
        if arrays is not None and not keep_fingerprint:
            arrays.pop(PART_FINGERPRINT, None)
        return arrays

    # -- one model's evaluation in memory ----------------------------------------------------------------------
    def snapshot(self, rids: Iterable[str] | None = None) -> StoredEvaluation:
        """The results ``rids`` (None: all stored) with their records, cache markers and ``all`` parts, in memory:
        what :meth:`restore` writes back elsewhere and ``rbla compare`` reads."""
        records = self.read_results()
        wanted = None if rids is None else set(rids)
        rids = [r for r in records if wanted is None or r in wanted]  # the store's order, as rbla compare reads it
        markers, parts = {}, {}
        for rid in rids:
            marker = self.cache_dir(rid) / CACHE_MARKER
            if marker.is_file():
                markers[rid] = read_json(marker, fix="re-run the evaluation that wrote it")
            arrays = self.read_part(rid, str(records[rid]["result"].get("evaluator")), ALL_PART, keep_fingerprint=True)
            if arrays is not None:
                parts[rid] = arrays
        return StoredEvaluation(self.key, self.read_marker(), {r: records[r] for r in rids}, markers, parts)

    def restore(self, evaluation: StoredEvaluation, rename: str = "another name") -> None:
        """Write ``evaluation`` (another folder's :meth:`snapshot`) into this folder: refused, before anything is
        written, where the folder holds other weights or a result of the same id computed with other settings; a
        result of other data is replaced. Nothing else in the folder changes."""
        fingerprint = evaluation.marker.get("fingerprint") or {}
        self.check_model(fingerprint, rename)
        replace = []
        for rid, record in evaluation.records.items():
            found = read_json_or_none(self.result_path(rid)) if self.result_path(rid).exists() else None
            if found is not None and found.get("fingerprint") != record.get("fingerprint"):
                raise UserError(f"{self.result_path(rid)} was computed with other settings than the '{rid}' written "
                                f"now: write to another path, or delete {self.path} to replace it")
            if found is None or data_changed(found, record.get("data_fingerprint")):
                replace.append(rid)
        if not self.writer:
            return
        self.mark_model(fingerprint, evaluation.marker.get("meta") or {}, rename)
        for rid in replace:
            self._clear(rid)
            if rid in evaluation.cache_markers:
                atomic_write_json(self.cache_dir(rid) / CACHE_MARKER, evaluation.cache_markers[rid])
            if rid in evaluation.parts:
                evaluator = str(evaluation.records[rid]["result"].get("evaluator"))
                buf = io.BytesIO()
                np.savez(buf, **evaluation.parts[rid])
                atomic_write_bytes(self.part_path(rid, evaluator, ALL_PART), buf.getvalue())
            atomic_write_json(self.result_path(rid), evaluation.records[rid])


@dataclass
class StoredEvaluation:
    """One model's evaluation in memory, as :class:`EvaluationFolder` keeps it on disk: the model marker, the
    stored result records (``results/<id>.json``), their cache markers and their ``all`` parts (with their
    settings digest). It answers the reading half of :class:`EvaluationFolder` (``read_results``,
    ``result_dataset``, ``read_marker``, ``read_part``), so ``rbla compare`` reads a ``benchmark()`` Report
    exactly as it reads a folder."""

    key: str
    marker: dict[str, Any]
    records: dict[str, dict[str, Any]]
    cache_markers: dict[str, dict[str, Any]] = field(default_factory=dict)
    parts: dict[str, Arrays] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(f"<in memory: {self.key}>")

    def has_results(self) -> bool:
        return bool(self.records)

    def read_results(self) -> dict[str, dict[str, Any]]:
        return dict(self.records)

    def read_marker(self) -> dict[str, Any]:
        return dict(self.marker)

    def result_dataset(self, rid: str, stored: Mapping[str, Any]) -> Any:
        marker = self.cache_markers.get(rid)
        return marker.get("dataset") if marker is not None else stored.get("dataset")

    def read_part(self, rid: str, evaluator: str, part: str, *, keep_fingerprint: bool = False) -> Arrays | None:
        arrays = self.parts.get(rid) if part == ALL_PART else None
        if arrays is None or str((self.records.get(rid) or {}).get("result", {}).get("evaluator")) != evaluator:
            return None
        return {k: v for k, v in arrays.items() if keep_fingerprint or k != PART_FINGERPRINT}


class EvaluationStore:
    """An output root: one :class:`EvaluationFolder` per model and the model_info files."""

    def __init__(self, root: str | Path, *, writer: bool = True, log: Log = _print) -> None:
        self.root = Path(root)
        self.writer, self.log = writer, log

    def __repr__(self) -> str:
        return f"EvaluationStore({str(self.root)!r})"

    def folder(self, key: str) -> EvaluationFolder:
        """Model ``key``'s folder (the name checked: it becomes a folder)."""
        check_component(key, "model name", "name the model with letters, digits, '-', '_' or '.'")
        return EvaluationFolder(self.root / key, key, writer=self.writer, log=self.log)

    def lock(self) -> RunLock:
        """The root's lock (not yet taken): one writer per output folder."""
        return RunLock(self.root, LOCK, what="evaluation output")

    def model_info_path(self, key: str) -> Path:
        return self.root / MODEL_INFO / f"{check_component(key, 'model name')}.json"

    def write_model_info(self, key: str, info: Mapping[str, Any]) -> Path:
        path = self.model_info_path(key)
        if self.writer:
            atomic_write_json(path, info)
        return path

    def read_model_info(self, key: str) -> dict[str, Any] | None:
        """Model ``key``'s model_info (None where there is none)."""
        path = self.model_info_path(key)
        return read_json(path, fix="re-run the evaluation that wrote it") if path.is_file() else None


EVALUATION_SUFFIX = ".evaluation"  # mine.json's evaluation: the store mine.evaluation/ beside it


def evaluation_beside(info_path: str | Path, key: str) -> EvaluationFolder:
    """Where the evaluation of model ``key`` whose model_info is ``info_path`` lives: ``<root>/<key>/`` when the
    file is the store's own ``<root>/model_info/<key>.json`` (``rbla evaluate``, ``benchmark(to_disk=True)``),
    else ``<dir>/<stem>.evaluation/<key>/``, a store beside the file (``Report.to_model_info("<dir>/<stem>.json")``)."""
    p = Path(info_path)
    if p.parent.name == MODEL_INFO and p.stem == key:
        return EvaluationStore(p.parent.parent).folder(key)
    return EvaluationStore(p.with_name(p.stem + EVALUATION_SUFFIX)).folder(key)


def in_evaluation_folder(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` (a file below ``root``) lies in a model's evaluation folder (one holding ``model.json``
    and ``results/``): a store's own file, never a model_info (``rbla leaderboard DIR`` skips them)."""
    path, root = Path(path), Path(root)
    for parent in path.parents:
        if parent == root or root not in parent.parents:
            return False
        if (parent / MODEL_MARKER).is_file() and (parent / RESULTS).is_dir():
            return True
    return False


def locate_evaluation(path: str | Path) -> EvaluationFolder:
    """The evaluation folder of one model from what a user names: the folder itself (holding ``results/``), a
    model_info JSON (``<root>/model_info/<model>.json`` -> ``<root>/<model>``; elsewhere ``<stem>.evaluation/
    <model>`` beside it: :func:`evaluation_beside`), or an output root holding exactly one model."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".json":
        info = read_json(p, fix="pass a model_info JSON written by rbla evaluate, benchmark() or Report.to_model_info")
        key = (info.get("labelaug") or {}).get("model") or p.stem
        beside = evaluation_beside(p, str(key))
        found = [f for f in (beside, EvaluationStore(p.parent.parent).folder(str(key))) if f.has_results()]
        if not found:
            raise UserError(f"{p} is a model_info file without its per-example results (none at {beside.path}): "
                            "write it with report.to_model_info(path), which keeps them beside it, or with "
                            "benchmark(..., to_disk=True, model_name=...) / rbla evaluate, and pass that file")
        return found[0]
    if EvaluationFolder(p).has_results():
        return EvaluationFolder(p)
    if p.is_dir():
        inner = sorted(d for d in p.iterdir() if EvaluationFolder(d).has_results())
        if len(inner) == 1:
            return EvaluationFolder(inner[0])
        if inner:
            raise UserError(f"{p} holds {len(inner)} evaluated models ({', '.join(d.name for d in inner)}): name "
                            f"one, e.g. {inner[0]}")
    raise UserError(f"{p} is not an evaluation: pass a model_info JSON, a model's evaluation folder (holding "
                    f"{RESULTS}/) or an output folder of rbla evaluate / benchmark(to_disk=True)")


def model_info_of(folder: EvaluationFolder) -> dict[str, Any] | None:
    """The model_info beside a model's folder (``<root>/model_info/<model>.json``), None where there is none."""
    return EvaluationStore(folder.path.parent, writer=False).read_model_info(folder.path.name)


__all__ = ["ALL_PART", "CACHE", "CACHE_MARKER", "EVALUATION_SUFFIX", "LOCK", "MODEL_INFO", "MODEL_MARKER",
           "PART_FINGERPRINT", "RESULTS", "EvaluationFolder", "EvaluationStore", "PartCache", "ResultSpec",
           "StoredEvaluation", "data_changed", "digest", "evaluation_beside", "in_evaluation_folder", "locate_evaluation", "model_info_of",
           "part_name", "part_path", "read_part", "settings_fingerprint"]
