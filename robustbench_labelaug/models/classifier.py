"""Classifiers that take [0,1] images (normalisation inside) and the K-way view of a K+M head."""

from __future__ import annotations

from collections.abc import Sequence

import timm
import torch
from torch import nn

from ..data.registry import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (re-exported)
from ..errors import UserError


class InputNormalize(nn.Module):
    """(x - mean) / std per channel; mean and std are saved with the weights, so a checkpoint carries them.

    The same module as RobustBench's ``ImageNormalizer`` (``robustbench.model_zoo.architectures.
    utils_architectures``): same arithmetic, same buffers ``mean``/``std`` of shape (1, C, 1, 1), so the
    ``normalize.mean``/``normalize.std`` keys of our checkpoints load into theirs and back (tested in
    tests/test_robustbench_interop.py). It is not imported from there because (1) importing ``robustbench``
    costs seconds, needs the ``autoattack`` alias and ``pkg_resources``, and is optional for this package (every
    model would otherwise import it); (2) ``ImageNormalizer`` fixes 3 channels; and (3) RobustBench's
    ``normalize_model`` wraps the network as ``model.*`` in an ``nn.Sequential``, a prefix RobustBench's loader
    strips and re-adds, and without the ``num_classes``/``num_ops`` our K+M models carry: ``ImageClassifier``
    keeps ``normalize.*`` + ``net.*`` so existing checkpoints keep loading."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ImageClassifier(nn.Module):
    """A timm network behind input normalisation, with K class logits followed by M transformation logits.

    State-dict keys are ``normalize.*`` and ``net.*`` (no ``model.``/``module.`` inside, which RobustBench's
    loader would strip)."""

    def __init__(self, net: nn.Module, num_classes: int, num_ops: int = 0,
                 mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                 architecture: str | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_ops = num_ops
        self.architecture = architecture  # the timm name it was created from (None: not known)
        self.normalize = InputNormalize(mean, std)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


class KWayClassifier(nn.Module):
    """The K-way classifier of a K+M model: its first K logits. This is what attacks and evaluators see (and what
    timm's ``validate`` scores in ``rbla timm-train``; a model returning a tuple gives its first output's)."""

    def __init__(self, model: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.model = model
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out[:, : self.num_classes]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper (attacking through DDP re-broadcasts
    buffers at every step)."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def k_way(model: nn.Module, num_classes: int | None = None, num_ops: int | None = None) -> nn.Module:
    """The K-way view of ``model``; K defaults to ``model.num_classes``. A model that already outputs K logits
    (``num_ops == 0``, given or the model's own) is returned as is."""
    model = unwrap_model(model)
    if num_ops == 0:
        return model
    if isinstance(model, KWayClassifier):
        return model
    k = num_classes if num_classes is not None else getattr(model, "num_classes", None)
    if k is None:
        raise UserError("cannot tell K for this model: pass num_classes (the number of real classes)")
    if getattr(model, "num_ops", None) == 0 and getattr(model, "num_classes", None) == k:
        return model
    return KWayClassifier(model, k)


def create_classifier(model_name: str, num_classes: int, num_ops: int = 0, *, pretrained: bool = False,
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                      extra_head_init: str = "zeros", **kwargs) -> ImageClassifier:
    """``timm.create_model(model_name, num_classes=K+M)`` behind normalisation, taking [0,1] inputs.

    ``model_name`` may carry a pretrained tag (``resnet50.tv_in1k``: torchvision's weights). The head follows one
    rule for every mode (:func:`~robustbench_labelaug.models.pretrained.create_with_head_rule`, shared with
    ``rbla timm-train``): where the pretrained head (of timm's weights, or of a ``pretrained_cfg_overlay`` file) has
    K rows, it is kept, and with M > 0 grown to K+M rows: the first K rows are the pretrained classifier's, the M
    extra rows start at zero (``extra_head_init="zeros"``; ``"mean"``: the mean of the K class rows), so the first
    K logits equal the pretrained model's, as for the K-way Std/Adv models (timm itself would drop the pretrained
    head); where it has another width, every mode starts a fresh K+M head.
    mean/std default to the network's own pretrained config (ImageNet statistics for ImageNet models)."""
    if not timm.is_model(model_name):
        raise UserError(f"unknown model '{model_name}': use a timm model name (timm.list_models()) "
                        "or 'resnet8_tiny' for the digits data")
    if num_classes < 1 or num_ops < 0:
        raise UserError(f"need num_classes >= 1 and num_ops >= 0, got {num_classes} and {num_ops}")
    if extra_head_init not in ("zeros", "mean"):
        raise UserError(f"extra_head_init must be 'zeros' or 'mean', got {extra_head_init!r}")
    local_file = (kwargs.get("pretrained_cfg_overlay") or {}).get("file")
    if pretrained and not local_file:
        # deferred: torch (kept out of the CLI's start)
        from .pretrained import pretrained_unavailable

        reason = pretrained_unavailable(model_name)
        if reason is not None:
            raise UserError(f"timm's pretrained weights for '{model_name}' cannot be fetched ({reason}): run where "
                            "the Hugging Face hub is reachable or its cache holds them, or drop --pretrained")
    # deferred: torch (kept out of the CLI's start)
    from .pretrained import create_with_head_rule

    try:
        net, rule = create_with_head_rule(timm.create_model, model_name, num_classes, num_ops, pretrained=pretrained,
                                          extra_head_init=extra_head_init, **kwargs)
    except (OSError, RuntimeError, ConnectionError) as exc:  # no internet / no cached weights
        if not pretrained:
            raise
        raise UserError(f"could not fetch pretrained weights for '{model_name}' ({type(exc).__name__}): "
                        "this machine needs internet or a filled HF/torch cache; drop --pretrained to start "
                        "from random weights") from None
    cfg = getattr(net, "pretrained_cfg", None) or {}
    mean = tuple(mean if mean is not None else cfg.get("mean", IMAGENET_MEAN))
    std = tuple(std if std is not None else cfg.get("std", IMAGENET_STD))
    model = ImageClassifier(net, num_classes, num_ops, mean, std, architecture=model_name)
    model.head_rule = rule  # how the head started (one line; rbla train logs it)
    return model


class FlatKWayClassifier(nn.Module):
    """The first K logits of an ImageClassifier, its ``normalize``/``net`` held directly (state-dict keys as in the
    exported checkpoint)."""

    def __init__(self, classifier: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.normalize, self.net = classifier.normalize, classifier.net
        self.num_classes, self.num_ops = num_classes, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))[:, : self.num_classes]
