"""Reading model_info files: the files of a folder (``rbla evaluate``'s ``model_info/`` or RobustBench's
``model_info/<dataset>/<threat_model>/`` layout, evaluation folders left out), each loaded and validated, its
model key, dataset and threat model, and the headline numbers it stores (never asking an evaluator)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import UserError
from ...store import in_evaluation_folder
from .. import keys
from ..measured import Measured
from ..vocab import THREAT_MODELS, ThreatModel
from .robustbench_format import ROBUSTBENCH_HEADLINES, is_number, number
from .validate import validate_model_info


def stored_headlines(info: Mapping[str, Any]) -> dict[str, Measured]:
    """A model_info's headline numbers, key -> :class:`Measured`: ``labelaug.measured.headlines``; in files
    written before headlines were stored, the numbers of ``labelaug.measured`` (labelled from their key); in
    RobustBench's files its own fields under the same keys (:data:`ROBUSTBENCH_HEADLINES`). Reads only what the
    file declares (no evaluator is imported)."""
    extra = info.get("labelaug")
    if extra:
        measured = extra.get("measured") or {}
        records = measured.get("headlines")
        if records is not None:
            return {r["key"]: Measured.from_record(r) for r in records}
        return {k: Measured(k, _label_of_key(k), v) for k, v in measured.items()
                if (keys.is_error(k) or k == keys.MCE_NORMALIZED) and is_number(v)}
    out = {}
    for field, (key, label, kind) in ROBUSTBENCH_HEADLINES.items():
        value = number(info.get(field))
        if value is not None:
            out[key] = Measured(key, label, 100.0 - value if kind == "acc" else value)
    return out


def _label_of_key(key: str) -> str:
    """A label for a stored number without a declared one (older files): ``clean_error`` -> ``clean err``."""
    return key.removesuffix(keys.ERROR_SUFFIX).replace("_", " ") + (" err" if key.endswith(keys.ERROR_SUFFIX) else "")


def headline_sources(info: Mapping[str, Any]) -> dict[str, str]:
    """Headline key -> the id of the result that gave it, as stored in ``labelaug.measured.headlines``."""
    records = ((info.get("labelaug") or {}).get("measured") or {}).get("headlines") or []
    return {r["key"]: r["source"] for r in records if isinstance(r, Mapping) and r.get("source") is not None}


def model_info_files(folder: str | Path) -> list[Path]:
    """The model_info JSONs under ``folder``: ``folder/model_info/**.json`` when that folder exists (the layout
    ``rbla evaluate`` writes), else ``folder/**.json`` (e.g. RobustBench's ``model_info/<dataset>/<threat>/``),
    less the files of evaluation folders in it (``mine.evaluation/`` beside ``Report.to_model_info("mine.json")``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: pass the output folder of rbla evaluate (or a folder of "
                        "model_info JSONs)")
    root = folder / "model_info" if (folder / "model_info").is_dir() else folder
    # every JSON, a model named ".x" too; not the "._x.json" resource forks macOS leaves on foreign disks, nor the
    # files of evaluation folders in it (mine.evaluation/ beside Report.to_model_info("mine.json"))
    files = sorted(p for p in root.rglob("*.json") if not p.name.startswith("._") and not in_evaluation_folder(p, root))
    if not files:
        computed = sorted(p.parent.parent.name for p in folder.glob("*/results/*.json"))
        if computed:
            raise UserError(f"no model_info JSON files under {root}, though {folder} holds results of "
                            f"{', '.join(dict.fromkeys(computed))}: re-run rbla evaluate with the same config and "
                            "output, which writes them from the stored results without recomputing")
        raise UserError(f"no model_info JSON files under {root}: run rbla evaluate -c CONFIG first")
    return files


def load_model_info(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}): fix or delete it") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a JSON text file (not UTF-8; binary data?): delete it or move it out of "
                        "the folder") from None
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror}): check the file") from None
    validate_model_info(info, str(path))
    return info


# In-memory only (never written): the threat model named by the file's folder in RobustBench's layout.
FOLDER_THREAT_MODEL = "_folder_threat_model"
FOLDER_DATASET = "_folder_dataset"


def dataset_of(info: Mapping[str, Any]) -> str:
    """The ``<dataset>`` folder of RobustBench's layout the file was read from, else its ``dataset`` field; data
    recorded by content (``labelaug.data.fingerprint``: ``benchmark(dataset=(x, y))`` tensors) add the
    fingerprint, so models evaluated on other tensors are never ranked in one table."""
    name = str(info.get(FOLDER_DATASET) or info.get("dataset") or "")
    data = (info.get("labelaug") or {}).get("data") if isinstance(info.get("labelaug"), Mapping) else None
    if isinstance(data, Mapping) and data.get("fingerprint"):
        return f"{name} {data['fingerprint']}"
    return name


def threat_model_of(info: Mapping[str, Any]) -> str | None:
    """``labelaug.threat_model``, else the ``<dataset>/<threat_model>/`` folder the file was read from, else what its
    fields say (a corruption file has ``corruptions_acc`` and no ``autoattack_acc``); None when unknown."""
    extra = info.get("labelaug") or {}
    if extra.get("threat_model"):
        return str(extra["threat_model"])
    if info.get(FOLDER_THREAT_MODEL):
        return str(info[FOLDER_THREAT_MODEL])
    if info.get("corruptions_acc") not in (None, "") and info.get("autoattack_acc") in (None, ""):
        return ThreatModel.CORRUPTIONS
    return None


def load_model_infos(folder: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """``(model key, model_info)`` for every JSON under ``folder`` (see :func:`model_info_files`). The key is
    ``labelaug.model``, else the file name without ``.json``; where RobustBench's layout has the same name in
    several folders (e.g. ``imagenet/Linf/Standard_R50`` and ``imagenet/corruptions/Standard_R50``), the path
    below ``folder`` without ``.json``."""
    out: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, Path] = {}
    files = model_info_files(folder)
    folder = Path(folder)
    root = folder / "model_info" if (folder / "model_info").is_dir() else folder
    stems: dict[str, int] = {}
    for path in files:
        stems[path.stem] = stems.get(path.stem, 0) + 1
    for path in files:
        info = load_model_info(path)
        rel = path.relative_to(root)
        if len(rel.parts) >= 2 and rel.parts[-2] in THREAT_MODELS:
            info[FOLDER_THREAT_MODEL] = rel.parts[-2]
            if len(rel.parts) >= 3:
                info[FOLDER_DATASET] = rel.parts[-3]
        default = path.stem if stems[path.stem] == 1 else rel.with_suffix("").as_posix()
        key = str((info.get("labelaug") or {}).get("model") or default)
        if key in seen:
            raise UserError(f"{path} and {seen[key]} both describe model '{key}': keep one of them")
        seen[key] = path
        out.append((key, info))
    return out
