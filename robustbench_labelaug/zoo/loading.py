"""``load_model``: a zoo entry's K-way classifier from ``<model_dir>/<dataset>/<threat_model>/<name>.pt``
(RobustBench's layout), loaded strictly and weights-only, its sha256 checked when known.

The expected sha256 is the entry's ``sha256`` (published files) or, for locally exported checkpoints, the sidecar
``<name>.pt.sha256`` that ``rbla zoo export`` writes beside the file (``sha256sum`` format, so
``sha256sum -c <name>.pt.sha256`` works too). A checkpoint with neither is loaded unverified.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..fileio import file_sha256
from ..models.classifier import KWayClassifier, create_classifier
from ..models.pretrained import pretrained_unavailable, same_architecture
from ..results.vocab import DEFAULT_THREAT_MODEL
from ..safeload import meta_state_bytes
from .entries import ZooEntry, get_entry
from .folders import using_zoo

SIDECAR_SUFFIX = ".sha256"


def plain_value(x: Any) -> str:
    """Plain string of a str or a RobustBench enum (``BenchmarkDataset.imagenet`` -> ``imagenet``)."""
    return str(getattr(x, "value", x))


def checkpoint_path(entry: ZooEntry, model_dir: str | Path = "./models", dataset: Any = None,
                    threat_model: Any = None) -> Path:
    """``<model_dir>/<dataset>/<threat_model>/<name>.pt``."""
    dataset = plain_value(dataset) if dataset is not None else entry.dataset
    threat_model = plain_value(threat_model) if threat_model is not None else entry.threat_model
    return Path(model_dir) / dataset / threat_model / entry.checkpoint


def sidecar_path(path: str | Path) -> Path:
    """``<checkpoint>.sha256`` beside the checkpoint."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: str | Path) -> str | None:
    """The sha256 recorded beside ``path`` (first word of the sidecar), or None when there is no sidecar."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    words = side.read_text().split()
    if not words or len(words[0]) != 64:
        raise UserError(f"sha256 file {side} is malformed: delete it, or re-export the checkpoint with rbla zoo export")
    return words[0].lower()


def verify_sha256(path: str | Path, expected: str | None, origin: str) -> str:
    """sha256 of ``path``; a :class:`UserError` when it differs from ``expected`` (skipped when None)."""
    actual = file_sha256(path)
    if expected is not None and actual != expected:
        raise UserError(f"checkpoint {path} has sha256 {actual[:16]}... but {origin} says {expected[:16]}...: the "
                        "file is damaged or not this model: delete it and download or export it again")
    return actual


def build_model(entry: ZooEntry, mean=None, std=None, pretrained: bool = False) -> KWayClassifier:
    """The entry's architecture with its K+M head behind normalisation, as its K-way view (random weights unless
    ``pretrained``). State-dict keys: ``model.normalize.*``, ``model.net.*``."""
    net = create_classifier(entry.architecture, entry.num_classes, entry.num_ops, pretrained=pretrained,
                            mean=entry.mean if mean is None else mean, std=entry.std if std is None else std)
    model = KWayClassifier(net, entry.num_classes)
    model.zoo_entry = entry  # what it is (zoo_entry_of): benchmark() reads its architecture, training, M from it
    return model


def _missing_message(entry: ZooEntry, path: Path, model_dir: str | Path) -> str:
    if entry.url:
        return f"no checkpoint for '{entry.name}' at {path}: download {entry.url} to that path"
    return (f"no checkpoint for '{entry.name}' at {path}: train it with `{entry.recipe}` then run "
            f"`{entry.export_command(model_dir)}`")


def check_checkpoint(entry: ZooEntry, state: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose architecture, K, M or normalisation differ from the entry's."""
    for key, want in (("arch", entry.architecture), ("num_classes", entry.num_classes),
                      ("num_ops", entry.num_ops)):
        got = state.get(key)
        if key == "arch" and isinstance(got, str) and same_architecture(got, want):
            got = want  # a tagged architecture (resnet50.tv_in1k) is the same network as its untagged name
        if got != want:
            raise UserError(f"checkpoint {path} has {key}={got!r} but zoo entry '{entry.name}' has {want!r}: it is "
                            f"not this model: export the right run with `{entry.export_command(path.parents[2])}`")
    sd = state["state_dict"]
    for key, want in (("normalize.mean", entry.mean), ("normalize.std", entry.std)):
        got = sd.get(key)
        if isinstance(got, torch.Tensor) and not torch.allclose(got.flatten().float(), torch.tensor(want), atol=1e-6):
            raise UserError(f"checkpoint {path} normalises with {key.split('.')[1]} {got.flatten().tolist()} but zoo "
                            f"entry '{entry.name}' says {list(want)}: fix the entry or export the right run")


def load_state_strict(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """``load_state_dict(strict=True)`` with one clear line for partial or foreign state dicts (a DataParallel
    ``module.`` prefix is stripped first, as RobustBench does)."""
    # deferred: torch (kept out of the CLI's start)
    from ..train.checkpoint import strip_module_prefix

    state_dict = strip_module_prefix(state_dict)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing or unexpected:
        parts = [f"{len(missing)} missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"] if missing else []
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}"
                         f"{', ...' if len(unexpected) > 3 else ''})")
        raise UserError(f"checkpoint {path} has a partial or foreign state dict ({'; '.join(parts)} keys): "
                        "re-export it from its training run with rbla zoo export")
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # shape mismatches
        msg = " ".join(str(exc).split())
        raise UserError(f"checkpoint {path} does not fit the model ({msg[:200]}): re-export it from its training "
                        "run with rbla zoo export") from None


def read_zoo_checkpoint(path: str | Path, entry: ZooEntry | None = None) -> dict[str, Any]:
    """``torch.load(weights_only=True)``; a pickle payload (a file that would run code) is refused, never retried
    with ``weights_only=False``; with ``entry``, a file that would inflate beyond the entry's model (built on the
    meta device, :func:`~robustbench_labelaug.safeload.meta_state_bytes`) is refused before it is read."""
    # deferred: torch (kept out of the CLI's start)
    from ..train.checkpoint import read_checkpoint

    expected = meta_state_bytes(lambda: build_model(entry)) if entry is not None else None
    return read_checkpoint(path, expected_bytes=expected)


def load_model(name: str, model_dir: str | Path = "./models", dataset: Any = None,
               threat_model: Any = DEFAULT_THREAT_MODEL, zoo: str | Path | None = None) -> KWayClassifier:
    """The zoo model ``name`` as its K-way classifier (first K logits), in eval mode, taking [0,1] images.

    Like ``robustbench.utils.load_model``: the checkpoint is ``<model_dir>/<dataset>/<threat_model>/<name>.pt``;
    ``dataset`` defaults to the entry's. Loading is strict and weights-only; the sha256 is checked when known.
    ``name`` is a packaged entry or one of the user zoo (``zoo``, else ``RBLA_ZOO``, else ``./model_zoo``)."""
    if zoo is not None:
        with using_zoo(zoo):
            return load_model(name, model_dir, dataset, threat_model)
    entry = get_entry(name)
    for what, given, own in (("dataset", dataset, entry.dataset), ("threat model", threat_model, entry.threat_model)):
        if given is not None and plain_value(given) != own:
            raise UserError(f"zoo model '{name}' is a {own} model, not {plain_value(given)}: pass {what}={own!r} or leave "
                            "it out")
    path = checkpoint_path(entry, model_dir)
    if not path.is_file():
        if entry.pretrained_fallback:
            return _pretrained_model(entry, path, model_dir)
        raise UserError(_missing_message(entry, path, model_dir))
    expected, origin = entry.sha256, f"zoo entry '{name}'"
    if expected is None:
        expected, origin = read_sidecar(path), f"{sidecar_path(path).name}"
    verify_sha256(path, expected, origin)
    state = read_zoo_checkpoint(path, entry)
    check_checkpoint(entry, state, path)
    model = build_model(entry, mean=state.get("mean"), std=state.get("std"))
    load_state_strict(model.model, state["state_dict"], path)
    model.zoo_model_dir = Path(model_dir)  # where its checkpoint lies: what it was trained with (zoo_model_dir_of)
    return model.eval()


def zoo_entry_of(model: Any) -> ZooEntry | None:
    """The zoo entry a model from :func:`load_model` was built from (None for any other model)."""
    entry = getattr(model, "zoo_entry", None)
    return entry if isinstance(entry, ZooEntry) else None


def zoo_model_dir_of(model: Any) -> Path | None:
    """The model dir :func:`load_model` read the model's checkpoint from (None: timm's weights, or not a zoo
    model)."""
    found = getattr(model, "zoo_model_dir", None)
    return found if isinstance(found, Path) and zoo_entry_of(model) is not None else None


# ------------------------------------------------------------------------------------------------------------
# timm's pretrained weights as a fallback (resnet50_std), failing fast when they cannot be fetched
# ------------------------------------------------------------------------------------------------------------


def _pretrained_model(entry: ZooEntry, path: Path, model_dir: str | Path) -> KWayClassifier:
    reason = pretrained_unavailable(entry.architecture)
    if reason is not None:
        raise UserError(f"{_missing_message(entry, path, model_dir)}; timm's pretrained {entry.architecture} "
                        f"weights cannot be fetched either ({reason}): place the checkpoint there, or run where the "
                        "Hugging Face hub is reachable")
    warnings.warn(f"no checkpoint at {path}: '{entry.name}' starts from timm's pretrained {entry.architecture} "
                  "weights (the recipe's starting point, not its result)", stacklevel=3)
    return build_model(entry, pretrained=True).eval()
