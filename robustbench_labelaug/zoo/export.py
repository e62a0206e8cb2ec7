"""Turn a training checkpoint (``<run>/last.pth.tar``) into a zoo checkpoint
``<model_dir>/<dataset>/<threat_model>/<name>.pt`` (RobustBench's layout) plus its sha256 sidecar.

The zoo checkpoint keeps what inference needs: ``state_dict`` (the ImageClassifier's ``normalize.*``/``net.*``),
``arch``, ``num_classes``, ``num_ops``, ``mean``, ``std``, and as metadata ``name``, ``dataset``,
``threat_model``, ``epoch``, ``metrics`` and the run's ``args`` (same key as in training checkpoints); optimizer,
scheduler and RNG states are dropped. It loads with ``torch.load(weights_only=True)``.

``--timm`` also writes ``<name>.timm.pth`` beside it: the bare timm network's state dict (no ``net.``/``normalize.``
prefixes) with its head cut to the K class rows, under ``state_dict``, so ``timm.models.load_checkpoint(
timm.create_model(arch, num_classes=K), path)`` and timm's ``validate.py --num-classes K --checkpoint path`` load it
(normalisation then comes from timm's data config: pass the file's ``mean``/``std`` with ``--mean``/``--std``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
from pathlib import Path
from typing import Any, NamedTuple

import torch

from ..data.registry import names_for_folders
from ..errors import UserError
from ..fileio import RunLock, atomic_write_bytes, check_component, check_writable_dir, file_sha256
from ..models.pretrained import same_architecture
from ..results.vocab import ADV_PLUS, DEFAULT_THREAT_MODEL, NO_POLICY, STD, plain
from ..results.vocab import ATTACK_THREAT_MODELS as THREAT_MODELS
from ..safeload import load_torch
from ..train.args import recorded_protocol, training_label
from .entries import NAME_RE, load_entries, packaged_entries
from .folders import export_zoo_dir
from .loading import load_state_strict, plain_value, sidecar_path
from .timm_names import refresh_if_timm_imported
from .user import recipe_departures, user_entry, warn_departures, write_user_entry

ZOO_CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("arch", "num_classes", "num_ops", "mean", "std", "state_dict")


class _Written(NamedTuple):
    path: Path
    sha256: str


class Exported(_Written):
    """``(path, sha256)``, plus ``entry`` (the user zoo entry written for a name that is not packaged, else None)
    and ``departures`` (flags where the run departs from the packaged entry's recipe, else None)."""

    entry: Path | None = None
    departures: dict[str, Any] | None = None

    @classmethod
    def of(cls, path: Path, sha256: str, entry: Path | None, departures: dict[str, Any] | None) -> Exported:
        out = cls(path, sha256)
        out.entry, out.departures = entry, departures
        return out


def _check_against_entry(state: dict[str, Any], name: str, dataset: str, threat_model: str, src: Path) -> None:
    """A checkpoint exported under a zoo name must be that entry's model."""
    entry = load_entries()[name]

    args = state.get("args") or {}
    # e.g. adv_cfa under --fair cfa, adv_plus_dummy for adv_plus under --la-protocol adversarial
    training = training_label(args.get("adv_mode"), args.get("fair", NO_POLICY), recorded_protocol(args))
    checks: list[tuple[str, Any, Any]] = [
        ("dataset", dataset, entry.dataset), ("threat model", threat_model, entry.threat_model),
        ("architecture", entry.architecture if same_architecture(state["arch"], entry.architecture) else
         state["arch"], entry.architecture), ("num_classes", state["num_classes"], entry.num_classes),
        ("num_ops", state["num_ops"], entry.num_ops),
    ]
    if training is not None:
        checks.append(("training (--adv-mode/--fair)", training, entry.training))
        if entry.training != STD and args.get("adv_eps") is not None:
            checks.append(("--adv-eps", args["adv_eps"], entry.eps))
        if entry.training.startswith(ADV_PLUS) and args.get("la_delta") is not None:
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
        **({"class_names": list(state["class_names"])} if state.get("class_names") else {}),
    }


TIMM_SUFFIX = ".timm.pth"


def timm_checkpoint_path(zoo_path: str | Path) -> Path:
    """``<name>.timm.pth`` beside ``<name>.pt``."""
    zoo_path = Path(zoo_path)
    return zoo_path.with_name(zoo_path.stem + TIMM_SUFFIX)


def timm_state_dict(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The K-way timm network's state dict from a zoo/training checkpoint's ``ImageClassifier`` state dict: the
    ``net.`` keys without the prefix, ``normalize.*`` dropped, and the classifier's weight and bias cut to their
    first K rows (the K class logits; the M transformation logits are training-only)."""
    # deferred: torch (kept out of the CLI's start)
    from ..models.classifier import create_classifier

    k, m = int(state["num_classes"]), int(state["num_ops"])
    net_state = {key[len("net."):]: v for key, v in state["state_dict"].items() if key.startswith("net.")}
    if m == 0:
        return net_state
    net = create_classifier(state["arch"], k, m, mean=state["mean"], std=state["std"]).net
    head = net.get_classifier() if hasattr(net, "get_classifier") else None
    names = [name for name, module in net.named_modules() if module is head]
    if not names or not isinstance(head, (torch.nn.Linear, torch.nn.Conv2d)):
        raise UserError(f"cannot cut the head of '{state['arch']}' to K={k} rows (its classifier is not one Linear "
                        "or Conv2d layer): use the zoo checkpoint with create_classifier/load_model instead")
    for suffix in ("weight", "bias"):
        key = f"{names[0]}.{suffix}"
        if key in net_state:
            if net_state[key].shape[0] != k + m:
                raise UserError(f"{key} has {net_state[key].shape[0]} rows, not K+M = {k + m}: the checkpoint is "
                                "not the K+M model it says it is")
            net_state[key] = net_state[key][:k].clone()
    return net_state


def write_timm_checkpoint(zoo_path: str | Path) -> Path:
    """Write ``<name>.timm.pth`` (see the module docstring) from the zoo checkpoint at ``zoo_path``, after checking
    that timm's own ``load_checkpoint`` reads it strictly into ``timm.create_model(arch, num_classes=K)``."""
    import tempfile

    import timm
    from timm.models import load_checkpoint

    state = load_torch(zoo_path)
    k = int(state["num_classes"])
    payload = {"state_dict": timm_state_dict(state), "arch": state["arch"], "num_classes": k,
               "mean": list(state["mean"]), "std": list(state["std"]), "name": state.get("name"),
               "dataset": state.get("dataset"), "threat_model": state.get("threat_model"),
               **({"class_names": list(state["class_names"])} if state.get("class_names") else {})}
    buffer = io.BytesIO()
    torch.save(plain(payload), buffer)
    path = timm_checkpoint_path(zoo_path)
    with tempfile.TemporaryDirectory() as tmp:  # timm's loader takes a path: check the bytes we will write
        probe = Path(tmp) / path.name
        probe.write_bytes(buffer.getvalue())
        load_checkpoint(timm.create_model(state["arch"], num_classes=k), str(probe), strict=True, weights_only=True)
    lock = export_lock(path.parent, path.name, str(state.get("name") or path.name))
    try:
        atomic_write_bytes(path, buffer.getvalue())
    finally:
        lock.release()
    return path


def _write_entry(state: dict[str, Any], name: str, dataset: str, threat_model: str, src: Path,
                 folder: Path | None, overwrite: bool) -> Path | None:
    if folder is None:
        return None
    path = write_user_entry(user_entry(state, name, dataset, threat_model, src), folder, overwrite=overwrite)
    load_entries.cache_clear()

    refresh_if_timm_imported()  # timm.create_model(name) finds the new entry in this process too
    return path


def export_lock(folder: Path, file_name: str, name: str) -> RunLock:
    """The lock of one exported file (``.<file>.lock`` in its folder, created): two exports to one name never
    interleave; the second is refused in one line, or finds the first's file and keeps it (without --overwrite)."""
    check_writable_dir(folder)
    return RunLock(folder, f".{file_name}.lock", what=f"zoo export of '{name}'",
                   fix="or choose another --name/--model-dir").acquire(on_stale=print)


def export_checkpoint(train_ckpt: str | Path, name: str, model_dir: str | Path = "./models", dataset: Any = None,
                      threat_model: Any = DEFAULT_THREAT_MODEL, *, overwrite: bool = False, zoo: str | Path | None = None
                      ) -> Exported:
    """Write ``<model_dir>/<dataset>/<threat_model>/<name>.pt`` and ``<name>.pt.sha256`` atomically.

    ``dataset`` defaults to the zoo entry's (when ``name`` is one) or the run's ``--dataset``. An existing
    different file is kept unless ``overwrite``; an identical one is left as is. A ``name`` that is no packaged
    entry also gets a user zoo entry ``<zoo>/<name>.yaml`` (``zoo``: default the user zoo, ``./model_zoo``; see
    :mod:`.user`) so ``load_model(name)`` finds it. Exporting under a packaged name checks the run against the
    entry and warns in one line where its training args depart from the entry's recipe. Returns path, sha256,
    the user entry written and the departures."""
    # deferred: torch (kept out of the CLI's start)
    from ..models.classifier import create_classifier

    # deferred: torch (kept out of the CLI's start)
    from ..train.checkpoint import read_checkpoint

    check_component(name, "--name", "use lowercase letters, digits and underscores")
    if not NAME_RE.match(name):
        raise UserError(f"--name {name!r} is not a valid model id: use lowercase letters, digits and underscores")
    src = Path(train_ckpt)
    state = read_checkpoint(src)
    absent = [k for k in REQUIRED_KEYS if k not in state]
    if absent:
        raise UserError(f"checkpoint {src} lacks {absent}: export a checkpoint written by rbla train")

    entries = load_entries()
    packaged = packaged_entries()
    args = state.get("args") or {}
    if dataset is None:
        dataset = entries[name].dataset if name in entries else args.get("dataset")
    if dataset is None:
        raise UserError(f"checkpoint {src} does not record its dataset: pass --dataset")
    dataset, threat_model = plain_value(dataset), plain_value(threat_model)
    check_component(dataset, "--dataset", "use a registered dataset name (rbla train --help lists them)")
    if isinstance(state.get("args"), dict) and not args.get("dataset"):  # timm's folder runs record none
        state["args"] = args = {**args, "dataset": dataset}
    if state.get("class_folders") and not state.get("class_names"):  # rbla timm-train: folders -> the dataset's names

        state["class_names"] = names_for_folders(dataset, state["class_folders"], int(state["num_classes"]))
    if threat_model not in THREAT_MODELS:
        raise UserError(f"--threat-model {threat_model!r} is not one of {', '.join(THREAT_MODELS)}")
    departures = None
    if name in entries:
        _check_against_entry(state, name, dataset, threat_model, src)
        if name in packaged and args:
            departures = recipe_departures(entries[name].recipe, args, entries[name].source)
            warn_departures(name, departures, "rbla zoo export")

    # the weights must rebuild the model exactly (strict), or the zoo file would be useless
    model = create_classifier(state["arch"], int(state["num_classes"]), int(state["num_ops"]),
                              mean=state["mean"], std=state["std"])
    load_state_strict(model, state["state_dict"], src)
    del model

    buffer = io.BytesIO()
    torch.save(plain(zoo_checkpoint_state(state, name, dataset, threat_model)), buffer)  # weights-only loadable
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = Path(model_dir) / dataset / threat_model / f"{name}.pt"
    side = sidecar_path(path)

    entry_folder = export_zoo_dir(zoo) if name not in packaged else None  # a user's own model gets a zoo entry
    with contextlib.ExitStack() as locks:  # the entry's lock, then the checkpoint's: every check and write below
        if entry_folder is not None:       # happens with both held, so of two exports to one name one wins whole
            locks.callback(export_lock(entry_folder, f"{name}.yaml", name).release)
        locks.callback(export_lock(path.parent, path.name, name).release)
        if path.is_file():
            if file_sha256(path) == digest:
                entry_path = _write_entry(state, name, dataset, threat_model, src, entry_folder, overwrite)
                atomic_write_bytes(side, f"{digest}  {path.name}\n".encode())
                return Exported.of(path, digest, entry_path, departures)
            if not overwrite:
                raise UserError(f"{path} already exists with different weights: pass --overwrite to replace it, or "
                                "choose another --name/--model-dir")
        # the user zoo entry first (refused without --overwrite where another export's entry holds the name)
        entry_path = _write_entry(state, name, dataset, threat_model, src, entry_folder, overwrite)
        # the new sidecar first, then the checkpoint: a kill in between leaves either no checkpoint or the old one
        # under a sidecar it does not match (refused when loaded), never a checkpoint that loads unchecked
        atomic_write_bytes(side, f"{digest}  {path.name}\n".encode())
        atomic_write_bytes(path, data)
    return Exported.of(path, digest, entry_path, departures)
