"""Turn a training checkpoint (``<run>/last.pth.tar``) into a zoo checkpoint
``<model_dir>/<dataset>/<threat_model>/<name>.pt`` (RobustBench's layout) plus its sha256 sidecar.

The zoo checkpoint keeps what inference needs: ``state_dict`` (the ImageClassifier's ``normalize.*``/``net.*``),
``arch``, ``num_classes``, ``num_ops``, ``mean``, ``std``, and as metadata ``name``, ``dataset``,
``threat_model``, ``epoch``, ``metrics`` and the run's ``args`` (same key as in training checkpoints); optimizer,
scheduler and RNG states are dropped. It loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path
from typing import Any, NamedTuple

import torch

from ..errors import UserError
from ..fileio import atomic_write_bytes
from ..models.pretrained import same_architecture
from .entries import NAME_RE, THREAT_MODELS, load_entries
from .loading import _value, file_sha256, load_state_strict, sidecar_path

ZOO_CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("arch", "num_classes", "num_ops", "mean", "std", "state_dict")


class Exported(NamedTuple):
    path: Path
    sha256: str


def _check_against_entry(state: dict[str, Any], name: str, dataset: str, threat_model: str, src: Path) -> None:
    """A checkpoint exported under a zoo name must be that entry's model."""
    entry = load_entries()[name]
    args = state.get("args") or {}
    training = args.get("adv_mode")
    checks: list[tuple[str, Any, Any]] = [
        ("dataset", dataset, entry.dataset), ("threat model", threat_model, entry.threat_model),
        ("architecture", entry.architecture if same_architecture(state["arch"], entry.architecture) else
         state["arch"], entry.architecture), ("num_classes", state["num_classes"], entry.num_classes),
        ("num_ops", state["num_ops"], entry.num_ops),
    ]
    if training is not None:
        checks.append(("training (--adv-mode)", training, entry.training))
        if entry.training != "std" and args.get("adv_eps") is not None:
            checks.append(("--adv-eps", args["adv_eps"], entry.eps))
        if entry.training == "adv_plus" and args.get("la_delta") is not None:
            checks.append(("--la-delta", args["la_delta"], entry.delta))
    for what, got, want in checks:
        same = math.isclose(got, want) if isinstance(got, float) or isinstance(want, float) else got == want
        if not same:
            raise UserError(f"checkpoint {src} has {what} {got!r} but zoo entry '{name}' has {want!r}: export the "
                            f"run made with the entry's recipe (rbla zoo show {name}), or use another --name")


def zoo_checkpoint_state(state: dict[str, Any], name: str, dataset: str, threat_model: str) -> dict[str, Any]:
    """The zoo checkpoint dict built from a training checkpoint dict."""
    return {
        "version": ZOO_CHECKPOINT_VERSION,
        "name": name,
        "dataset": dataset,
        "threat_model": threat_model,
        "arch": state["arch"],
        "num_classes": int(state["num_classes"]),
        "num_ops": int(state["num_ops"]),
        "mean": [float(v) for v in state["mean"]],
        "std": [float(v) for v in state["std"]],
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state["state_dict"].items()},
        "epoch": state.get("epoch"),
        "metrics": state.get("metrics") or {},
        "args": state.get("args") or {},
    }


def export_checkpoint(train_ckpt: str | Path, name: str, model_dir: str | Path = "./models", dataset: Any = None,
                      threat_model: Any = "Linf", *, overwrite: bool = False) -> Exported:
    """Write ``<model_dir>/<dataset>/<threat_model>/<name>.pt`` and ``<name>.pt.sha256`` atomically.

    ``dataset`` defaults to the zoo entry's (when ``name`` is one) or the run's ``--dataset``. An existing
    different file is kept unless ``overwrite``; an identical one is left as is. Returns path and sha256."""
    from ..models.classifier import create_classifier
    from ..train.checkpoint import read_checkpoint

    if not NAME_RE.match(name or ""):
        raise UserError(f"--name {name!r} is not a valid model id: use lowercase letters, digits and underscores")
    src = Path(train_ckpt)
    state = read_checkpoint(src)
    absent = [k for k in REQUIRED_KEYS if k not in state]
    if absent:
        raise UserError(f"checkpoint {src} lacks {absent}: export a checkpoint written by rbla train")
    entries = load_entries()
    args = state.get("args") or {}
    if dataset is None:
        dataset = entries[name].dataset if name in entries else args.get("dataset")
    if dataset is None:
        raise UserError(f"checkpoint {src} does not record its dataset: pass --dataset")
    dataset, threat_model = _value(dataset), _value(threat_model)
    if threat_model not in THREAT_MODELS:
        raise UserError(f"--threat-model {threat_model!r} is not one of {', '.join(THREAT_MODELS)}")
    if name in entries:
        _check_against_entry(state, name, dataset, threat_model, src)

    # the weights must rebuild the model exactly (strict), or the zoo file would be useless
    model = create_classifier(state["arch"], int(state["num_classes"]), int(state["num_ops"]),
                              mean=state["mean"], std=state["std"])
    load_state_strict(model, state["state_dict"], src)
    del model

    buffer = io.BytesIO()
    torch.save(zoo_checkpoint_state(state, name, dataset, threat_model), buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = Path(model_dir) / dataset / threat_model / f"{name}.pt"
    side = sidecar_path(path)
    if path.is_file():
        if file_sha256(path) == digest:
            atomic_write_bytes(side, f"{digest}  {path.name}\n".encode())
            return Exported(path, digest)
        if not overwrite:
            raise UserError(f"{path} already exists with different weights: pass --overwrite to replace it, or "
                            "choose another --name/--model-dir")
    if side.exists():
        side.unlink()  # a stale sidecar must never vouch for the new file
    atomic_write_bytes(path, data)
    atomic_write_bytes(side, f"{digest}  {path.name}\n".encode())
    return Exported(path, digest)
