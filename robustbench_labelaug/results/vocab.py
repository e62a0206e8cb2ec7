"""The package's words, one vocabulary each, as ``enum.StrEnum`` members (RobustBench's ``ThreatModel`` is an enum
of the same kind), mapped to other tools' words only at the edge.

- :class:`ThreatModel` (RobustBench's folder names; a model is attacked under :data:`ATTACK_THREAT_MODELS`);
- :class:`TrainingMode` (``std``, ``adv``, ``adv_plus``, ``trades``) and :class:`AttackMode` (the model's mode
  while the training attack runs);
- :class:`Fair` (``none``, ``cfa``, ``frl``: ``rbla train --fair``);
- :class:`LAProtocol` (``authors``, ``adversarial``: which rows a label-augmentation batch trains) and
  :class:`Control` (the training labels of Adv+'s two controls, ``adv_mix`` and ``adv_plus_dummy``);
- :class:`Protocol` (an attack's protocol: ``sound`` or ``paper``);
- :class:`Precision` (``fp32``, ``bf16``, ``fp16``): :func:`torch_dtype` gives the autocast dtype (torch imported
  on call), :func:`timm_amp_dtype` / :func:`precision_of_amp_dtype` translate timm's ``--amp-dtype`` words.

A member *is* its string (``ThreatModel.LINF == "Linf"``, same hash, ``f"{m}"`` and ``json.dumps`` give
``Linf``), so members are the keys and comparands everywhere while YAML, JSON and command lines keep plain
strings (files that cannot hold a member, YAML and checkpoints, get ``fileio.plain`` values at the edge, also
importable from here). Test membership with the tuples below (``value in THREAT_MODELS``), not with the class (``value in ThreatModel``
raises TypeError for a plain string on Python 3.11). No other module of the package types these words
(``tests/test_vocabulary.py`` checks it)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from ..errors import UserError
from ..fileio import plain  # noqa: F401  (the edge of files that cannot hold a member: YAML, checkpoints)


class Word(StrEnum):
    """A vocabulary word: a ``str`` whose ``repr`` is the plain string's (argparse's "choose from 'std', ...",
    ``{x!r}`` in messages read as they did before the enums)."""

    def __repr__(self) -> str:
        return repr(self.value)


# -- training -------------------------------------------------------------------------------------------------
class TrainingMode(Word):
    """How a model was trained (``rbla train --adv-mode``; the hook takes the first three)."""

    STD = "std"
    ADV = "adv"
    ADV_PLUS = "adv_plus"  # label augmentation: K + M outputs and soft targets
    TRADES = "trades"  # a loss, not a batch transform: rbla train only (the hook and rbla timm-train refuse it)


class AttackMode(Word):
    """The model's mode (``model.train()`` / ``model.eval()``) while the training attack runs."""

    EVAL = "eval"
    TRAIN = "train"


class Fair(Word):
    """``rbla train --fair``: the class-wise policy between epochs (robustbench_labelaug.fair)."""

    NONE = "none"
    CFA = "cfa"
    FRL = "frl"


STD, ADV, ADV_PLUS, TRADES = TrainingMode.STD, TrainingMode.ADV, TrainingMode.ADV_PLUS, TrainingMode.TRADES
MODES = (STD, ADV, ADV_PLUS)  # the hook's modes
ADVERSARIAL_MODES = (ADV, ADV_PLUS)
LABEL_AUG_MODES = (ADV_PLUS,)  # modes whose model has K + M outputs and soft targets
ATTACK_MODES = tuple(AttackMode)
TRAIN_MODES = tuple(TrainingMode)  # rbla train's --adv-mode
FAIR_POLICIES = tuple(Fair)  # rbla train's --fair
NO_POLICY = Fair.NONE



class LAProtocol(Word):
    """Label augmentation's protocol (``--la-protocol``, the hook's ``protocol``): which rows a batch trains."""

    AUTHORS = "authors"  # the authors' LA code: clean rows [y, 0] and adversarial rows [(1-d)y, d z], each with p
    ADVERSARIAL = "adversarial"  # every row adversarial (Madry); with adv_plus the extra label is then a constant


class Control(Word):
    """The training labels of Adv+'s two controls: a mode trained under the other protocol."""

    ADV_MIX = "adv_mix"  # Adv on the authors' clean/adversarial mix (targets y, K outputs)
    ADV_PLUS_DUMMY = "adv_plus_dummy"  # dummy smoothing: every row adversarial, a constant d onto one extra output


class TradesForm(Word):
    """How a TRADES loss weighs its two terms: Zhang et al.'s ``CE + beta KL`` (TRADES' own code) or CFA's
    normalised ``(1 - b) CE + b KL`` with ``b = beta / (1 + beta)`` (CFA's code, per class under CCR)."""

    ZHANG = "zhang"
    NORMALISED = "normalised"


TRADES_FORMS = tuple(TradesForm)
LA_AUTHORS, LA_ADVERSARIAL = LAProtocol.AUTHORS, LAProtocol.ADVERSARIAL
LA_PROTOCOLS = tuple(LAProtocol)
DEFAULT_LA_P = 0.7  # the authors' distortion_p: the probability of each part per batch under ``authors``
LEGACY_LA_PROTOCOL = LA_ADVERSARIAL  # what a run recorded before --la-protocol existed trained
ADV_MIX, ADV_PLUS_DUMMY = Control.ADV_MIX, Control.ADV_PLUS_DUMMY
CONTROL_LABELS = {(ADV, LA_AUTHORS): ADV_MIX, (ADV_PLUS, LA_ADVERSARIAL): ADV_PLUS_DUMMY}


def is_fair(policy: str | None) -> bool:
    """Whether ``policy`` is a fairness policy (None and ``none`` are not)."""
    return policy not in (None, NO_POLICY)


def default_protocol(mode: str | None) -> LAProtocol | None:
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


def training_label(mode: str | None, fair: str | None = NO_POLICY, protocol: str | None = None) -> str | None:
    """The method a run trained, as zoo entries and model_info name it: the mode (a control's name under the other
    protocol: ``adv_mix``, ``adv_plus_dummy``), with ``_<policy>`` appended under a fairness policy (``adv_cfa``,
    ``adv_plus_cfa``, ``trades_frl``). A plain string."""
    if mode is None:
        return None
    base = str(CONTROL_LABELS.get((mode, protocol), mode))
    return f"{base}_{fair}" if is_fair(fair) else base


def parse_training_label(label: str) -> tuple[str, str, str | None]:
    """``(mode, fair, protocol)`` of a training label (the inverse of :func:`training_label`)."""
    fair = next((f for f in FAIR_POLICIES if is_fair(f) and label.endswith(f"_{f}")), NO_POLICY)
    base = label.removesuffix(f"_{fair}") if is_fair(fair) else label
    for (mode, protocol), control in CONTROL_LABELS.items():
        if base == control:
            return mode, fair, protocol
    return base, fair, default_protocol(base)


# every training label: a zoo entry's / eval config's / model_info's ``training``
_BASES = (*(str(m) for m in TRAIN_MODES), *(str(c) for c in Control))
TRAINING_LABELS = (*_BASES, *(f"{b}_{f}" for f in FAIR_POLICIES if is_fair(f) for b in _BASES if b != STD))

# -- threat models ----------------------------------------------------------------------------------------------
class ThreatModel(Word):
    """RobustBench's threat models (its ``robustbench.model_zoo.enums.ThreatModel``; its model_info folders)."""

    LINF = "Linf"
    L2 = "L2"
    CORRUPTIONS = "corruptions"
    CORRUPTIONS_3D = "corruptions_3d"


ATTACK_THREAT_MODELS = (ThreatModel.LINF, ThreatModel.L2)  # what a zoo entry, an export or an eval config names
THREAT_MODELS = tuple(ThreatModel)  # RobustBench's model_info folders
CORRUPTION_THREAT_MODELS = (ThreatModel.CORRUPTIONS, ThreatModel.CORRUPTIONS_3D)
DEFAULT_THREAT_MODEL = ThreatModel.LINF
EVALUATED_THREAT_MODELS = (ThreatModel.LINF,)  # the threat models the package's attacks evaluate (L-inf only)


def model_folder(threat_model: str) -> str:
    """The folder RobustBench keeps a threat model's models in (``corruptions_3d`` shares ``corruptions``)."""
    return ThreatModel.CORRUPTIONS if threat_model == ThreatModel.CORRUPTIONS_3D else threat_model


# -- attack protocols -------------------------------------------------------------------------------------------
class Protocol(Word):
    """How a robust evaluator attacks: ``sound`` (K-way classifier, true labels, pixel-space eps, clipping; the
    default) or ``paper`` (the authors' evaluation code, always labelled)."""

    SOUND = "sound"
    PAPER = "paper"


PROTOCOLS = tuple(Protocol)
DEFAULT_PROTOCOL = Protocol.SOUND


# -- precisions -------------------------------------------------------------------------------------------------
class Precision(Word):
    """The arithmetic a model runs in: fp32, or bf16 / fp16 autocast."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


FP32, BF16, FP16 = Precision.FP32, Precision.BF16, Precision.FP16
PRECISIONS = tuple(Precision)
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


__all__ = ["ADV", "ADVERSARIAL_MODES", "ADV_MIX", "ADV_PLUS", "ADV_PLUS_DUMMY", "AMP_DTYPES", "AMP_PRECISIONS",
           "ATTACK_MODES", "ATTACK_THREAT_MODELS", "AttackMode", "BF16", "CONTROL_LABELS", "CORRUPTION_THREAT_MODELS",
           "Control", "DEFAULT_AMP_DTYPE", "DEFAULT_AMP_PRECISION", "DEFAULT_LA_P", "DEFAULT_PROTOCOL",
           "DEFAULT_THREAT_MODEL", "EVALUATED_THREAT_MODELS", "FAIR_POLICIES", "FP16", "FP32", "Fair", "LABEL_AUG_MODES",
           "LAProtocol", "LA_ADVERSARIAL", "LA_AUTHORS", "LA_PROTOCOLS", "LEGACY_LA_PROTOCOL", "MODES", "NO_POLICY",
           "PRECISIONS", "PROTOCOLS", "Precision", "Protocol", "STD", "THREAT_MODELS", "TRADES", "TRAINING_LABELS",
           "TRADES_FORMS", "TRAIN_MODES", "ThreatModel", "TradesForm", "TrainingMode", "Word", "default_protocol", "is_fair", "model_folder",
           "parse_training_label", "plain", "precision_of_amp_dtype", "recorded_protocol", "timm_amp_dtype",
           "torch_dtype", "training_label"]
