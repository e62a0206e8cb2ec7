"""robustbench-labelaug: label-augmented adversarial training (Adv+) and class-wise robustness evaluation.

Data flow: ``data`` -> ``labels`` & ``hook`` -> ``train`` -> ``zoo`` -> ``evaluation`` -> ``leaderboard``.
"""

from __future__ import annotations

__version__ = "0.1.0"

import warnings

with warnings.catch_warnings():  # timm 1.0.9 (pinned by robustbench) calls torch.jit.interface, deprecated
    warnings.filterwarnings("ignore", message=".*torch.jit.interface.*", category=FutureWarning)
    import timm  # noqa: F401

from .errors import UserError
from .hook import AdvLabelAug
from .labels import label_aug_targets
from .models import KWayClassifier, create_classifier, k_way
from .zoo import load_model


def __getattr__(name: str):
    """``benchmark`` and ``Report`` are imported on first use (they pull in pandas/scipy). ``compare`` is the
    subpackage :mod:`.compare`, itself callable as ``compare(a, b)``."""
    if name in ("benchmark", "Report"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _make_robustbench_importable() -> None:
    """``from robustbench.utils import load_model`` works after ``import robustbench_labelaug`` (lazy import hooks,
    see :mod:`robustbench_labelaug.compat`)."""
    from .compat import install_import_hooks

    install_import_hooks()


def _register_zoo_in_robustbench() -> None:
    """Our ImageNet zoo entries appear in RobustBench's zoo once it is imported (lazily: robustbench is optional
    here, and a failure only warns)."""
    try:
        from .zoo.robustbench_registry import install_robustbench_hook

        install_robustbench_hook()
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"robustbench_labelaug: zoo entries not registered in RobustBench ({exc})", stacklevel=2)


_make_robustbench_importable()
_register_zoo_in_robustbench()

__all__ = ["AdvLabelAug", "KWayClassifier", "Report", "UserError", "__version__", "benchmark", "compare",
           "create_classifier", "k_way", "label_aug_targets", "load_model"]
