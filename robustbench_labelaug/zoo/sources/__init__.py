"""Model sources for evaluation configs: any RobustBench model (``robustbench: <name>``), any timm model
(``timm: <name>``) or a user's own code (``python: file.py:factory``), resolved without loading (metadata,
weights files, fingerprint) and then loaded. One file per source (:mod:`.robustbench`, :mod:`.timm`,
:mod:`.python`, each a ``resolve``, a ``load`` and its ``SOURCE``), what they share in :mod:`.base`, and here the
registry (:data:`MODEL_SOURCES`, names readable without torch) with :func:`resolve_source` / :func:`load_source`
dispatching through it.

- :func:`robustbench_source` checks, before RobustBench is asked for anything, that ``name`` is in RobustBench's
  zoo for ``dataset``/``threat_model`` (else the closest names: RobustBench itself raises a bare ``KeyError``) and
  that its checkpoint is at ``<model_dir>/<dataset>/<threat_model>/<name>.pt`` (RobustBench's layout; ensembles:
  ``<name>.pt_m<i>.pt``). A missing file is one line naming that path and where to get it: RobustBench would start
  a Google-Drive download, which fails offline with its own network error. ``Standard_R50`` (ImageNet) has no
  checkpoint: its weights are torchvision's, looked for in torch's hub cache.
  :func:`load_source` then calls ``robustbench.utils.load_model(name, model_dir, dataset, threat_model)``.
- :func:`timm_source`: ``timm.create_model(name, num_classes=K)`` plus an optional local ``pretrained_file``
  (compute nodes are often offline, so nothing is downloaded).

K comes from RobustBench's dataset (10 / 100 / 1000), the preprocessing (input size, crop) from the entry's
``preprocessing`` (RobustBench's ``PREPROCESSINGS``: none for CIFAR = 32x32 ToTensor, ``Res256Crop224``, ...).
RobustBench models take [0,1] inputs and normalise inside, if at all (the ImageNet ones through an
``ImageNormalizer``, some CIFAR ones with ``mu``/``sigma`` buffers, most CIFAR ones not at all): the loaded model
reports what it found as ``normalization``. The fingerprint is the sha256 of the weights file(s), so a result
cache never mixes two checkpoints. RobustBench's reported clean / AutoAttack accuracies are not in the installed
package (its ``model_info/`` folder is not in the wheel): configs carry them in ``reported``;
:func:`robustbench_reported` turns RobustBench's accuracies into the errors the leaderboard shows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._lazy import lazy_exports
from ...errors import UserError
from ...registry import Registry
from .base import ModelSource, SourceKind, normalization_of, robustbench_reported

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

MODEL_SOURCES: Registry[SourceKind] = Registry("model source")
for _key in ("robustbench", "timm", "python"):  # each module's SOURCE, imported on first use
    MODEL_SOURCES.register(_key, f"{__name__}.{_key}:SOURCE")

# the sources' own functions, importable from here as before the split (docs/robustbench.md)
__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("RB_PREPROCESSING", "robustbench_models", "robustbench_source"), ".robustbench"),
    "timm_source": ".timm",
    **dict.fromkeys(("fit_state_dict", "python_source", "split_python_ref", "unwrap_state_dict"), ".python"),
})


def register_source(key: str, *, load: Callable[[ModelSource], nn.Module]):
    """Decorator registering ``resolve(spec, model_dir) -> ModelSource`` for config entries ``<key>: <name>``."""
    def decorate(resolve: Callable[[dict[str, Any], str | Path], ModelSource]):
        MODEL_SOURCES.register(key, SourceKind(key, resolve, load))
        return resolve

    return decorate


def load_source(source: ModelSource) -> nn.Module:
    """The K-way classifier in eval mode, on [0,1] inputs; ``num_classes``/``num_ops``/``normalization`` set."""
    model = MODEL_SOURCES.get(source.kind).load(source)
    model.eval()
    if source.kind == "python":
        model.normalization = None  # inside the user's module, as it is
        return model
    model.num_classes, model.num_ops = source.num_classes, 0
    model.normalization = normalization_of(model)
    return model


def resolve_source(spec: dict[str, Any], model_dir: str | Path = "./models") -> ModelSource:
    """A config's model entry (``robustbench: <name>`` + dataset/threat_model, ``timm: <name>`` + num_classes,
    dataset, optional pretrained_file, or ``python: file.py:factory`` + num_classes, optional checkpoint; one key of :data:`MODEL_SOURCES`) as a :class:`ModelSource`."""
    kinds = [k for k in MODEL_SOURCES.names() if spec.get(k)]
    if len(kinds) != 1:
        raise UserError("a model source needs exactly one of " + " or ".join(f"'{k}: <name>'" for k in MODEL_SOURCES))
    return MODEL_SOURCES.get(kinds[0]).resolve(spec, model_dir)


__all__ = ["MODEL_SOURCES", "ModelSource", "RB_PREPROCESSING", "SourceKind", "fit_state_dict", "load_source",
           "normalization_of", "python_source", "register_source", "resolve_source", "robustbench_models",
           "robustbench_reported", "robustbench_source", "split_python_ref", "timm_source", "unwrap_state_dict"]
