"""Metric keys, two vocabularies in one place:

- *headline keys*: the names of measured numbers in a model_info's ``labelaug.measured`` block, in the
  evaluators' headlines and in a zoo entry's ``reported`` (the paper's numbers use the same keys);
- *result metric keys*: the names an evaluator gives the numbers of its ``EvalResult.metrics`` (stored in the
  evaluation folder's ``results/<id>.json``) and the fields of its class-wise blocks, before ``headline()``
  names them with a headline key.

One constant per key. Errors are in percent; :func:`is_error` says which keys name one (the leaderboard shows
``100 - error`` for them with ``--metric acc``, model_info refuses a non-finite one).

``robust_error`` vs ``pgd_error``: ``robust_error`` (:data:`ROBUST_ERROR`) is a result metric, the error under
*the evaluator's* attack (PGD's, AutoAttack's), in the result file; the headline key names the attack and its
protocol (:data:`PGD_ERROR` ``pgd_error``, ``pgd_paper_error``, :data:`AUTOATTACK_ERROR`). Both stay as they are in
stored files."""

from __future__ import annotations

from .vocab import Protocol

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


def pgd_key(protocol: str | None = Protocol.SOUND) -> str:
    """The key prefix of a PGD run: ``pgd`` (sound), ``pgd_paper``, ..."""
    return PGD if protocol in (None, Protocol.SOUND) else f"{PGD}_{protocol}"


PGD_PAPER = pgd_key(Protocol.PAPER)
PGD_ERROR = f"{PGD}_error"
PGD_PAPER_ERROR = f"{PGD_PAPER}_error"


def error(prefix: str) -> str:
    return f"{prefix}{ERROR_SUFFIX}"


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


# -- result metric keys: an EvalResult's ``metrics`` (results/<id>.json), the evaluator's own names -----------
ERROR = "error"  # clean, imagenet_x: top-1 error of the predictions scored; also a class-wise block's per-class errors
ROBUST_ERROR = "robust_error"  # pgd, autoattack: top-1 error under the evaluator's attack (headline: pgd_error, ...)
# (pgd and autoattack also store CLEAN_ERROR, the clean error of the same examples; real stores REAL_ERROR: result
# and headline share those two names)
PGD_ROBUST_ERROR = "pgd_robust_error"  # masking: the robust error of the PGD it checks
FAILED_CHECKS = "failed_checks"  # masking
PASSED_CHECKS = "passed_checks"  # masking
INCONCLUSIVE_CHECKS = "inconclusive_checks"  # masking: a CI spans its tolerance (results/outcomes.py)
MEAN_CORRUPTION_ERROR = "mean_corruption_error"  # corruptions: the plain mean over corruptions x severities
MCE_ALEXNET = "mce_alexnet"  # corruptions: the AlexNet-normalised mCE (same number as mce_normalized)
NUM_SCORED = "num_scored"  # real: examples with a ReaL label
NUM_ANNOTATED = "num_annotated"  # imagenet_x: examples with an ImageNet-X annotation


def factor_error(factor: str) -> str:
    """imagenet_x: the error on the examples annotated with ``factor``."""
    return f"{ERROR}_{factor}"


def factor_error_ratio(factor: str) -> str:
    """imagenet_x: the error ratio of ``factor`` (its error over the overall error)."""
    return f"{ERROR}_ratio_{factor}"


# a class-wise block (``EvalResult.classwise[role]``): per-class ``error`` (ERROR) and ``n``, and its ``summary``
CLASS_COUNTS = "n"
SUMMARY = "summary"
SD = "sd"  # summary: the population SD of the per-class errors
WORST_ERROR = "worst_error"  # summary: the worst class's error
WORST_CLASS = "worst_class"  # summary: which class it is

RESULT_ERRORS = (ERROR, ROBUST_ERROR, CLEAN_ERROR, REAL_ERROR, PGD_ROBUST_ERROR, MEAN_CORRUPTION_ERROR)

# -- which keys are errors ---------------------------------------------------------------------------------------
ERROR_SUFFIX = "_error"
ERROR_PREFIXES = ("worst_class_",)  # worst_class(role): the worst class's error rate
ERROR_KEYS = frozenset({ERROR, MCE})  # error rates whose key does not end in _error (mce: the mean corruption error)


def is_error(key: str) -> bool:
    """Whether ``key`` names an error rate in percent: ``*_error`` (headline and result keys alike), ``error``,
    ``worst_class_*`` (the worst class's error: an error, so it reads as an accuracy under ``--metric acc`` and
    must be finite in a model_info) and ``mce`` (the unnormalised mean corruption error). Not an error: a class SD
    (the same for errors and accuracies), ``mce_normalized`` / ``mce_alexnet`` (a ratio to AlexNet's), counts,
    steps, eps. The one rule every reader applies (leaderboard columns, model_info validation, older files'
    headlines)."""
    return key.endswith(ERROR_SUFFIX) or key.startswith(ERROR_PREFIXES) or key in ERROR_KEYS


# The paper's numbers a zoo entry may report (errors, %), and its class-wise blocks.
REPORTED_ERRORS = (CLEAN_ERROR, MCE, PGD_ERROR, REAL_ERROR, AUTOATTACK_ERROR)
REPORTED_CLASSWISE = (CLASSWISE_CLEAN, CLASSWISE_REAL, PGD, CLASSWISE_AUTOATTACK)

# Types of ``labelaug.measured`` values the table and plots compute with (other keys are not checked).
NUMBER_SUFFIXES = (ERROR_SUFFIX, "_n", "_steps", "_eps_pixel")
NUMBERS = frozenset({MCE, MCE_NORMALIZED, MASKING_PASSED, MASKING_FAILED, CURVE_WORST_AREA, CURVE_MEAN_AREA,
                     CURVE_WORST_MEDIAN_RADIUS, CURVE_EPS_MAX})
NON_NUMBERS = {"classwise": "object", "protocols": "object", MASKING_FAILED_CHECKS: "list", "headlines": "list",
               CURVE_MEDIAN_RADIUS: "list"}
