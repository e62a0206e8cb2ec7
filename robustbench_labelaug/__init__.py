"""robustbench-labelaug: label-augmented adversarial training (Adv+) and class-wise robustness evaluation.

Data flow: ``data`` -> ``labels`` & ``hook`` -> ``train`` -> ``zoo`` -> ``evaluation`` -> ``results`` ->
``leaderboard``.

Importing the package is cheap (no torch, no timm): the names below are imported on first use. It installs
RobustBench's import hooks (:mod:`.compat`: ``from robustbench.utils import load_model`` works afterwards; the zoo's
entries appear in RobustBench's zoo once that is imported), which themselves import nothing heavy.
"""

from __future__ import annotations

from .compat import after_import, install_import_hooks

__version__ = "0.1.0"

import warnings

from ._lazy import lazy_exports
from .errors import UserError

__getattr__ = lazy_exports(__name__, {
    "AdvLabelAug": ".hook.adv_label_aug", "label_aug_targets": ".hook.labels", "KWayClassifier": ".models",
    "create_classifier": ".models", "k_way": ".models", "load_model": ".zoo",
    "benchmark": ".api", "Report": ".api", "load_clean_dataset": ".data.clean",  # compare: the subpackage .compare, callable as compare(a, b)
})


def _quiet_timm_import() -> None:
    """timm 1.0.9 (pinned by robustbench) calls torch.jit.interface, deprecated: silence that when timm loads."""
    warnings.filterwarnings("ignore", message=".*torch.jit.interface.*", category=FutureWarning)


def _register_architectures(timm_module=None) -> None:
    """resnet8_tiny and the CIFAR architectures (RobustBench's) are timm models once timm is imported."""
    import importlib

    importlib.import_module(f"{__name__}.models")


def _make_robustbench_importable() -> None:
    """``from robustbench.utils import load_model`` works after ``import robustbench_labelaug`` (lazy import hooks,
    see :mod:`robustbench_labelaug.compat`: the zoo's entries appear in RobustBench's zoo and its ``load_model``
    checks our checkpoints once robustbench is imported), and our architectures are timm models once timm is
    imported (the same one import hook)."""
    install_import_hooks()
    after_import("timm", f"{__name__}:_register_architectures")
    # every zoo entry is a timm model of its own name (timm.create_model("my_advplus")), once the architectures
    # it is built from are (after .models, which timm's import brings in, has finished)
    after_import(f"{__name__}.models", f"{__name__}.zoo.timm_names:register_after_timm_import")


_quiet_timm_import()
_make_robustbench_importable()

__all__ = ["AdvLabelAug", "KWayClassifier", "Report", "UserError", "__version__", "benchmark", "compare",
           "create_classifier", "k_way", "label_aug_targets", "load_clean_dataset", "load_model"]
