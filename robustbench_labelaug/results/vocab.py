"""The package's words, one vocabulary each, mapped to other tools' words only at the edge.

- training modes (``std``, ``adv``, ``adv_plus``) and the hook's attack modes;
- threat models (RobustBench's folder names; a model is attacked under :data:`ATTACK_THREAT_MODELS`);
- precisions (``fp32``, ``bf16``, ``fp16``): :func:`torch_dtype` gives the autocast dtype (torch imported on
  call), :func:`timm_amp_dtype` / :func:`precision_of_amp_dtype` translate timm's ``--amp-dtype`` words."""

from __future__ import annotations

from typing import Any

from ..errors import UserError

# -- training -------------------------------------------------------------------------------------------------
STD, ADV, ADV_PLUS = "std", "adv", "adv_plus"
MODES = (STD, ADV, ADV_PLUS)
ADVERSARIAL_MODES = (ADV, ADV_PLUS)
LABEL_AUG_MODES = (ADV_PLUS,)  # modes whose model has K + M outputs and soft targets
ATTACK_MODES = ("eval", "train")  # the model's mode while the training attack runs
TRADES = "trades"  # a loss, not a batch transform: rbla train only (the hook and rbla timm-train refuse it)
TRAIN_MODES = (*MODES, TRADES)  # rbla train's --adv-mode
FAIR_POLICIES = ("none", "cfa", "frl")  # rbla train's --fair (robustbench_labelaug.fair)


def training_label(mode: str | None, fair: str | None = "none") -> str | None:
    """The method a run trained, as zoo entries and model_info name it: the mode, with ``_<policy>`` appended
    under a fairness policy (``adv_cfa``, ``adv_plus_cfa``, ``trades_frl``)."""
    if mode is None:
        return None
    return mode if fair in (None, "none") else f"{mode}_{fair}"


# every training label: a zoo entry's / eval config's / model_info's ``training``
TRAINING_LABELS = (*TRAIN_MODES, *(training_label(m, f) for f in FAIR_POLICIES[1:] for m in TRAIN_MODES if m != STD))

# -- threat models ----------------------------------------------------------------------------------------------
ATTACK_THREAT_MODELS = ("Linf", "L2")  # what a zoo entry, an export or an eval config's model names
THREAT_MODELS = (*ATTACK_THREAT_MODELS, "corruptions", "corruptions_3d")  # RobustBench's model_info folders
DEFAULT_THREAT_MODEL = "Linf"

# -- precisions -------------------------------------------------------------------------------------------------
FP32, BF16, FP16 = "fp32", "bf16", "fp16"
PRECISIONS = (FP32, BF16, FP16)
AMP_PRECISIONS = (BF16, FP16)
DEFAULT_AMP_PRECISION = BF16  # training's autocast default (rbla train and rbla timm-train alike)
_TIMM_WORDS = {BF16: "bfloat16", FP16: "float16"}
AMP_DTYPES = tuple(_TIMM_WORDS.values())  # timm's --amp-dtype choices


def timm_amp_dtype(precision: str) -> str:
    """``bf16`` -> ``bfloat16``, ``fp16`` -> ``float16`` (timm's ``--amp-dtype`` word)."""
    if precision not in _TIMM_WORDS:
        raise UserError(f"precision '{precision}' has no autocast dtype: use one of {', '.join(AMP_PRECISIONS)}")
    return _TIMM_WORDS[precision]


def precision_of_amp_dtype(word: str | None) -> str:
    """timm's ``--amp-dtype`` word -> this package's precision (None: the default, bf16)."""
    if word is None:
        return DEFAULT_AMP_PRECISION
    for precision, timm_word in _TIMM_WORDS.items():
        if word in (timm_word, precision):
            return precision
    raise UserError(f"--amp-dtype {word!r} is not known: use one of {', '.join(AMP_DTYPES)}")


DEFAULT_AMP_DTYPE = timm_amp_dtype(DEFAULT_AMP_PRECISION)


def torch_dtype(precision: str) -> Any:
    """The autocast dtype of a precision: None for fp32, ``torch.bfloat16`` / ``torch.float16`` (imports torch)."""
    if precision not in PRECISIONS:
        raise UserError(f"precision '{precision}' is not known: use one of {', '.join(PRECISIONS)}")
    if precision == FP32:
        return None
    import torch

    return getattr(torch, _TIMM_WORDS[precision])


__all__ = ["ADV", "ADVERSARIAL_MODES", "ADV_PLUS", "AMP_DTYPES", "AMP_PRECISIONS", "ATTACK_MODES",
           "ATTACK_THREAT_MODELS", "BF16", "DEFAULT_AMP_DTYPE", "DEFAULT_AMP_PRECISION", "DEFAULT_THREAT_MODEL",
           "FP16", "FP32", "LABEL_AUG_MODES", "MODES", "PRECISIONS", "STD", "THREAT_MODELS",
           "precision_of_amp_dtype", "timm_amp_dtype", "torch_dtype"]
