"""Pure scoring functions on arrays, one module per family: predictions in, metrics out. Errors are percentages.

- :mod:`.classwise`: top-1 error, per-class error, its summary and bootstrap confidence intervals;
- :mod:`.corruptions`: ImageNet-C corruption errors, mCE and the AlexNet-normalised mCE;
- :mod:`.real`: ImageNet-ReaL error and the official validation labels;
- :mod:`.imagenet_x`: ImageNet-X error and error ratio per factor;
- :mod:`.curves`: class-wise robust accuracy over eps from per-example robust radii (Wilson CIs, median radius,
  the area under each class's curve).

Everything is deterministic numpy (bootstrap CIs take a seed). The reference tables (ReaL label sets, official
validation labels, ImageNet-X annotations) ship with installed packages and are read, once, by
:mod:`robustbench_labelaug.data.imagenet_labels`, never downloaded. The names below are re-exported so
``from robustbench_labelaug.scoring import X`` works for every public function.
"""

from __future__ import annotations

from ..data.imagenet_labels import IMAGENET_X_FACTORS, NUM_VAL_IMAGES, VAL_NAME_PATTERN, val_image_ids
from .classwise import (
    CI_METHODS,
    CI_STATISTICS,
    MAX_RESAMPLED_EXAMPLES,
    classwise_bootstrap,
    classwise_error,
    classwise_error_from_mistakes,
    classwise_summary,
    classwise_summary_from_mistakes,
    top1_error,
)
from .corruptions import ALEXNET_IMAGENET_C_ERRORS, IMAGENET_C_CORRUPTIONS, corruption_errors
from .curves import curve_accuracy, curve_area, median_radius, robustness_curves, tighten_radii
from .imagenet_x import imagenet_x_errors, imagenet_x_scores
from .real import (
    check_official_labels,
    official_val_labels,
    real_classwise_error,
    real_classwise_summary,
    real_correct,
    real_error,
    real_label_sets,
)

__all__ = ["ALEXNET_IMAGENET_C_ERRORS", "CI_METHODS", "CI_STATISTICS", "IMAGENET_C_CORRUPTIONS", "IMAGENET_X_FACTORS",
           "MAX_RESAMPLED_EXAMPLES", "NUM_VAL_IMAGES", "VAL_NAME_PATTERN", "check_official_labels",
           "classwise_bootstrap", "classwise_error", "classwise_error_from_mistakes", "classwise_summary",
           "classwise_summary_from_mistakes", "corruption_errors", "curve_accuracy", "curve_area", "imagenet_x_errors", "imagenet_x_scores",
           "median_radius", "official_val_labels", "real_classwise_error", "real_classwise_summary", "real_correct", "real_error",
           "real_label_sets", "robustness_curves", "tighten_radii", "top1_error", "val_image_ids"]
