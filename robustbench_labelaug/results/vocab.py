"""The package's words, one vocabulary each, mapped to other tools' words only at the edge.

- training modes (``std``, ``adv``, ``adv_plus``), the hook's attack modes, the label-augmentation protocols
  (``authors``, ``adversarial``) and the training labels of the two controls (``adv_mix``, ``adv_plus_dummy``);
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

# label-augmentation protocols (--la-protocol, the hook's ``protocol``): which rows a batch trains, with which targets
LA_AUTHORS = "authors"  # the authors' LA code: clean rows [y, 0] and adversarial rows [(1-d)y, d z], each with p
LA_ADVERSARIAL = "adversarial"  # every row adversarial (Madry); with adv_plus the extra label is then a constant
LA_PROTOCOLS = (LA_AUTHORS, LA_ADVERSARIAL)
DEFAULT_LA_P = 0.7  # the authors' distortion_p: the probability of each part per batch under ``authors``
LEGACY_LA_PROTOCOL = LA_ADVERSARIAL  # what a run recorded before --la-protocol existed trained
# the controls of Adv+ (adv_plus, authors), named as training labels: the mode under the other protocol
ADV_MIX = "adv_mix"  # control: Adv on the authors' clean/adversarial mix (targets y, K outputs)
ADV_PLUS_DUMMY = "adv_plus_dummy"  # control: dummy smoothing, every row adversarial, a constant d onto one output
CONTROL_LABELS = {(ADV, LA_AUTHORS): ADV_MIX, (ADV_PLUS, LA_ADVERSARIAL): ADV_PLUS_DUMMY}


def default_protocol(mode: str | None) -> str | None:
    """The protocol a mode trains with when none is named: ``authors`` for adv_plus (the only reading in which the
    extra label carries information), ``adversarial`` for adv (Madry); None for std and trades (not a hook's)."""
    return {ADV_PLUS: LA_AUTHORS, ADV: LA_ADVERSARIAL}.get(mode)


def recorded_protocol(args: Any) -> str | None:
    """The protocol of a run from its recorded args (a mapping with ``adv_mode`` / ``la_protocol``): a run recorded
    before ``--la-protocol`` existed trained every row adversarial (:data:`LEGACY_LA_PROTOCOL`)."""
    mode = args.get("adv_mode")
    if default_protocol(mode) is None:
        return None
    return args.get("la_protocol") or (default_protocol(mode) if "la_protocol" in args else LEGACY_LA_PROTOCOL)


def training_label(mode: str | None, fair: str | None = "none", protocol: str | None = None) -> str | None:
    """The method a run trained, as zoo entries and model_info name it: the mode (a control's name under the other
    protocol: ``adv_mix``, ``adv_plus_dummy``), with ``_<policy>`` appended under a fairness policy (``adv_cfa``,
    ``adv_plus_cfa``, ``trades_frl``)."""
    if mode is None:
        return None
    base = CONTROL_LABELS.get((mode, protocol), mode)
    return base if fair in (None, "none") else f"{base}_{fair}"


def parse_training_label(label: str) -> tuple[str, str, str | None]:
    """``(mode, fair, protocol)`` of a training label (the inverse of :func:`training_label`)."""
    fair = next((f for f in FAIR_POLICIES[1:] if label.endswith(f"_{f}")), "none")
    base = label.removesuffix(f"_{fair}") if fair != "none" else label
    for (mode, protocol), control in CONTROL_LABELS.items():
        if base == control:
            return mode, fair, protocol
    return base, fair, default_protocol(base)


# every training label: a zoo entry's / eval config's / model_info's ``training``
_BASES = (*TRAIN_MODES, *CONTROL_LABELS.values())
TRAINING_LABELS = (*_BASES, *(f"{b}_{f}" for f in FAIR_POLICIES[1:] for b in _BASES if b != STD))

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


__all__ = ["ADV", "ADVERSARIAL_MODES", "ADV_MIX", "ADV_PLUS", "ADV_PLUS_DUMMY", "CONTROL_LABELS", "DEFAULT_LA_P",
           "LA_ADVERSARIAL", "LA_AUTHORS", "LA_PROTOCOLS", "LEGACY_LA_PROTOCOL", "default_protocol",
           "parse_training_label", "recorded_protocol", "training_label", "AMP_DTYPES", "AMP_PRECISIONS",
           "ATTACK_MODES",
           "ATTACK_THREAT_MODELS", "BF16", "DEFAULT_AMP_DTYPE", "DEFAULT_AMP_PRECISION", "DEFAULT_THREAT_MODEL",
           "FP16", "FP32", "LABEL_AUG_MODES", "MODES", "PRECISIONS", "STD", "THREAT_MODELS",
           "precision_of_amp_dtype", "timm_amp_dtype", "torch_dtype"]
