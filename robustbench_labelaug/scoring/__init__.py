"""Pure scoring functions on arrays, one module per family: predictions in, metrics out. Errors are percentages.

- :mod:`.classwise`: top-1 error, per-class error, its summary and bootstrap confidence intervals;
- :mod:`.corruptions`: ImageNet-C corruption errors, mCE and the AlexNet-normalised mCE;
- :mod:`.real`: ImageNet-ReaL error and the official validation labels;
- :mod:`.imagenet_x`: ImageNet-X error and error ratio per factor;
- :mod:`.intervals`: the Wilson score interval of an error rate (pure Python);
- :mod:`.curves`: class-wise robust accuracy over eps from per-example robust radii (Wilson CIs, median radius,
  the area under each class's curve).

Everything is deterministic numpy (bootstrap CIs take a seed). The reference tables (ReaL label sets, official
validation labels, ImageNet-X annotations) ship with installed packages and are read, once, by
:mod:`robustbench_labelaug.data.imagenet_labels`, never downloaded. The names below are re-exported (imported on
first use) so ``from robustbench_labelaug.scoring import X`` works for every public function.
"""

from __future__ import annotations

from .._lazy import lazy_exports

# name -> module, imported on first use (PEP 562): ``from robustbench_labelaug.scoring.intervals import ...`` (the
# leaderboard) then costs no numpy
_EXPORTS = {
    **dict.fromkeys(("IMAGENET_X_FACTORS", "NUM_VAL_IMAGES", "VAL_NAME_PATTERN", "val_image_ids"),
                    "..data.imagenet_labels"),
    **dict.fromkeys(("CI_METHODS", "CI_STATISTICS", "MAX_RESAMPLED_EXAMPLES", "classwise_bootstrap", "classwise_error",
                     "classwise_error_from_mistakes", "classwise_summary", "classwise_summary_from_mistakes",
                     "top1_error"), ".classwise"),
    **dict.fromkeys(("ALEXNET_IMAGENET_C_ERRORS", "IMAGENET_C_CORRUPTIONS", "corruption_errors"), ".corruptions"),
    **dict.fromkeys(("curve_accuracy", "curve_area", "median_radius", "robustness_curves", "tighten_radii"), ".curves"),
    **dict.fromkeys(("imagenet_x_errors", "imagenet_x_scores"), ".imagenet_x"),
    **dict.fromkeys(("classwise_intervals", "wilson_interval"), ".intervals"),
    **dict.fromkeys(("check_official_labels", "official_val_labels", "real_classwise_error", "real_classwise_summary",
                     "real_correct", "real_error", "real_label_sets"), ".real"),
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
