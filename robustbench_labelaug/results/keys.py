"""Metric keys: the names of measured numbers in a model_info's ``labelaug.measured`` block, in the evaluators'
headlines and in a zoo entry's ``reported`` (the paper's numbers use the same keys). One constant per key; errors
are in percent and end in ``_error`` (the leaderboard shows ``100 - error`` for them with ``--metric acc``)."""

from __future__ import annotations

CLEAN_ERROR = "clean_error"
CLEAN_N = "clean_n"
CLEAN_ERROR_SOURCE = "clean_error_source"  # the result an attack's clean error came from (no clean evaluator)

PGD = "pgd"  # a sound PGD run; other protocols are f"pgd_{protocol}" (pgd_key)
AUTOATTACK_ERROR = "autoattack_error"
AUTOATTACK_ATTACK = "autoattack_attack"
AUTOATTACK_N = "autoattack_n"
AUTOATTACK_VERSION = "autoattack_version"

MCE = "mce"
MCE_NORMALIZED = "mce_normalized"
CORRUPTIONS_ERROR = "corruptions_error"
REAL_ERROR = "real_error"
IMAGENET_X_ERROR = "imagenet_x_error"

# robustness curves (evaluation/robustness_curve.py): areas under the per-class robust-accuracy curves on
# [0, eps_max] / eps_max (%, accuracy-like: higher is more robust), median radii in [0,1] pixel units
CURVE_WORST_AREA = "curve_worst_area"
CURVE_MEAN_AREA = "curve_mean_area"
CURVE_WORST_MEDIAN_RADIUS = "curve_worst_median_radius"
CURVE_MEDIAN_RADIUS = "curve_median_radius"  # one per class (null: more than half never broken)
CURVE_EPS_MAX = "curve_eps_max"
CURVE_SOURCE = "curve_source"  # the result whose details hold the curve

MASKING = "masking"
MASKING_PASSED = "masking_passed"
MASKING_FAILED = "masking_failed"
MASKING_FAILED_CHECKS = "masking_failed_checks"

# Class-wise blocks (``measured.classwise.<role>``, ``reported.classwise.<role>``)
CLASSWISE_CLEAN = "clean"
CLASSWISE_REAL = "real"
CLASSWISE_AUTOATTACK = "autoattack"
CLASSWISE_CURVE = "curve"  # 100 - each class's curve area: its robust error averaged over eps in [0, eps_max]


def pgd_key(protocol: str | None = "sound") -> str:
    """The key prefix of a PGD run: ``pgd`` (sound), ``pgd_paper``, ..."""
    return PGD if protocol in (None, "sound") else f"{PGD}_{protocol}"


PGD_ERROR = f"{PGD}_error"
PGD_PAPER_ERROR = f"{pgd_key('paper')}_error"


def error(prefix: str) -> str:
    return f"{prefix}_error"


def steps(prefix: str) -> str:
    return f"{prefix}_steps"


def count(prefix: str) -> str:
    return f"{prefix}_n"


def eps_pixel(prefix: str) -> str:
    return f"{prefix}_eps_pixel"


def class_sd(role: str) -> str:
    return f"class_sd_{role}"


def worst_class(role: str) -> str:
    return f"worst_class_{role}"


# The paper's numbers a zoo entry may report (errors, %), and its class-wise blocks.
REPORTED_ERRORS = (CLEAN_ERROR, MCE, PGD_ERROR, REAL_ERROR, AUTOATTACK_ERROR)
REPORTED_CLASSWISE = (CLASSWISE_CLEAN, CLASSWISE_REAL, PGD, CLASSWISE_AUTOATTACK)

# Types of ``labelaug.measured`` values the table and plots compute with (other keys are not checked).
NUMBER_SUFFIXES = ("_error", "_n", "_steps", "_eps_pixel")
NUMBERS = frozenset({MCE, MCE_NORMALIZED, MASKING_PASSED, MASKING_FAILED, CURVE_WORST_AREA, CURVE_MEAN_AREA,
                     CURVE_WORST_MEDIAN_RADIUS, CURVE_EPS_MAX})
NON_NUMBERS = {"classwise": "object", "protocols": "object", MASKING_FAILED_CHECKS: "list", "headlines": "list",
               CURVE_MEDIAN_RADIUS: "list"}
