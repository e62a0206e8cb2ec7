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

__all__ = ["AdvLabelAug", "KWayClassifier", "UserError", "__version__", "create_classifier", "k_way",
           "label_aug_targets"]
