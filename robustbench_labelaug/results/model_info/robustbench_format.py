"""RobustBench's model_info format: the fields of ``robustbench.utils.ModelInfo`` (1.1.1) and of its files, their
conventions (accuracies as percent strings with two decimals, ``eps`` as ``"4/255"`` or ``"0.03"``, RobustBench's
own values for unknown text and numbers), which of its number fields are this package's headlines
(:data:`ROBUSTBENCH_HEADLINES`) and which AutoAttack fills its ``autoattack_acc``."""

from __future__ import annotations

import math
from typing import Any

from .. import keys

# robustbench.utils.ModelInfo's fields, in its order (checked against the installed package by the tests).
MODEL_INFO_FIELDS: tuple[str, ...] = (
    "link", "name", "authors", "additional_data", "number_forward_passes", "dataset", "venue", "architecture",
    "eps", "clean_acc", "reported", "corruptions_acc", "corruptions_acc_3d", "corruptions_mce",
    "corruptions_mce_3d", "autoattack_acc", "footnote",
)
# Fields of RobustBench's model_info files that its ModelInfo dataclass (1.1.1) lacks.
ROBUSTBENCH_EXTRA_FIELDS: tuple[str, ...] = ("external", "unreliable")
# Fields every file must have (value may be null where noted in the type table); every RobustBench file has them
# (corruption files have no autoattack_acc).
REQUIRED_FIELDS: tuple[str, ...] = ("name", "dataset", "architecture", "eps", "clean_acc", "additional_data",
                                    "number_forward_passes")
# Accuracies (percent strings, 0-100; "" or null: unknown).
PERCENT_FIELDS = ("clean_acc", "reported", "corruptions_acc", "corruptions_acc_3d", "autoattack_acc", "external")
# Mean corruption errors normalised by AlexNet's (AlexNet = 100): a ratio in percent, above 100 for models worse
# than AlexNet.
RATIO_FIELDS = ("corruptions_mce", "corruptions_mce_3d")
STRING_FIELDS = ("link", "name", "authors", "dataset", "venue", "architecture", "eps", "footnote")
# RobustBench's values for unknown text (as in its own model_info files).
UNKNOWN_TEXT = {"link": "", "authors": "", "venue": "N/A", "reported": ""}
# Text RobustBench's files use for an unknown number ("null" as a string in one of them).
UNKNOWN_NUMBER_TEXT = ("", "null", "N/A")

# RobustBench's model_info number fields -> (this package's headline key, label, "acc": an accuracy in % whose error
# is the headline, "ratio": the value as it is). build_model_info writes these fields from the measured headlines;
# the leaderboard reads a RobustBench file's fields as these headlines, so its rows share the columns with ours.
ROBUSTBENCH_HEADLINES: dict[str, tuple[str, str, str]] = {
    "clean_acc": (keys.CLEAN_ERROR, "clean err", "acc"),
    "autoattack_acc": (keys.AUTOATTACK_ERROR, "AA err", "acc"),
    "corruptions_acc": (keys.CORRUPTIONS_ERROR, "corruption err", "acc"),
    "corruptions_mce": (keys.MCE_NORMALIZED, "mCE (AlexNet=100)", "ratio"),
}



def autoattack_protocol(version: str, first_n: bool = True) -> str:
    """The protocol an AutoAttack headline names: ``AutoAttack standard`` on the first n points (RobustBench's
    choice), ``... (class-balanced points)`` on points taken round-robin over the classes."""
    return f"AutoAttack {version}" + ("" if first_n else " (class-balanced points)")


# RobustBench's ``autoattack_acc`` is standalone standard AutoAttack on its first n test points: a model_info's field
# is filled only from a headline of exactly that protocol. Ours under another (the "PGD-40 + AutoAttack" union of
# ``pgd_first``, class-balanced points, version plus / rand) stays in ``labelaug.measured.autoattack_error`` with its
# own label and protocol, and the field is null (said in the footnote), so no RobustBench reader mistakes it.
ROBUSTBENCH_AUTOATTACK_PROTOCOL = autoattack_protocol("standard", first_n=True)


def percent(value: float | None) -> str | None:
    """``12.345`` -> ``"12.35"`` (RobustBench's percent strings); None/NaN -> None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return f"{float(value):.2f}"


def format_eps(eps: float | None) -> str | None:
    """RobustBench's eps string: ``"4/255"`` for multiples of 1/255, else the plain number (``"0.03"``)."""
    if eps is None:
        return None
    k = eps * 255
    if abs(k - round(k)) < 1e-6 and round(k) > 0:
        return f"{round(k)}/255"
    return f"{eps:g}"


def parse_eps(text: str | None) -> float | None:
    """Inverse of :func:`format_eps` (``"4/255"`` or ``"0.03"``)."""
    if text is None:
        return None
    num, _, den = str(text).partition("/")
    return float(num) / float(den) if den else float(num)


def number(value: str | float | None) -> float | None:
    """A model_info number (``"64.02"``, 64.02) as a float; None for RobustBench's unknown values (null, ``""``,
    and the text ``"null"`` one of its files has)."""
    if value is None or (isinstance(value, str) and value.strip() in UNKNOWN_NUMBER_TEXT):
        return None
    return float(value)


def accuracy_to_error(acc: str | float | None) -> float | None:
    acc = number(acc)
    return None if acc is None else 100.0 - acc


def is_number(v: Any) -> bool:
    """A JSON number (int or float, not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)
