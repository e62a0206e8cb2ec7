"""Checks on a model before its numbers are trusted (called by the evaluators' ``check_model``): finite weights
and outputs (a NaN weight would be evaluated to "90 % error" and ranked), and images with the channels its first
convolution takes (a 1-channel image would be broadcast silently by the normalisation of an RGB model).

:func:`check_consistent_outputs`, called once per model where every evaluation path loads it (``rbla evaluate``
and ``benchmark()``), runs a small fixed batch twice and at two batch sizes: a model whose logits change between
calls (dropout left on, noise in ``forward``) or with the batch (BatchNorm on batch statistics) is refused with
one line naming the cause, unless the user declares it stochastic (then it is reported so)."""

from __future__ import annotations

import torch
from torch import nn

from .errors import UserError


def first_non_finite(model: nn.Module) -> str | None:
    """The name of the first parameter or floating-point buffer of ``model`` holding NaN or inf, else None."""
    for kind, named in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, tensor in named:
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor.detach()).all()):
                return f"{kind} {name}"
    return None


def check_finite_state(state_dict, what: str) -> None:
    """:class:`UserError` naming the first floating-point tensor of a state dict holding NaN or inf (checked before
    anything is built or written)."""
    for name, tensor in state_dict.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{what} has NaN or infinite values in parameter {name}: its numbers would be "
                            "meaningless; use a checkpoint from before training diverged (or retrain with a lower "
                            "learning rate)")


def check_finite_model(model: nn.Module, what: str = "the model") -> None:
    """:class:`UserError` naming the first non-finite parameter or buffer."""
    bad = first_non_finite(model)
    if bad is not None:
        raise UserError(f"{what} has NaN or infinite values in {bad}: its numbers would be meaningless; use a "
                        "checkpoint from before training diverged (or retrain with a lower learning rate)")


def check_finite_logits(logits: torch.Tensor, what: str = "the model") -> None:
    """:class:`UserError` if the model's outputs hold NaN or inf (naming the first such example and logit)."""
    bad = (~torch.isfinite(logits.detach())).nonzero()
    if bad.numel():
        i, j = (int(v) for v in bad[0][:2]) if bad.shape[1] >= 2 else (int(bad[0][0]), 0)
        raise UserError(f"{what} outputs NaN or infinite logits (example {i}, logit {j}: "
                        f"{float(logits[i, j]) if logits.dim() == 2 else 'nan'}): its numbers would be meaningless; "
                        "check its weights and the input images")


def input_channels(model: nn.Module) -> int | None:
    """The channels the model's first convolution takes (None: no convolution)."""
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return int(module.in_channels)
    return None


def check_input_channels(model: nn.Module, x: torch.Tensor, what: str = "the model") -> None:
    """:class:`UserError` if images ``x`` (N, C, H, W) have another number of channels than the model takes."""
    want = input_channels(model)
    if want is not None and x.dim() == 4 and x.shape[1] != want:
        raise UserError(f"the images have {x.shape[1]} channel(s) but {what} takes {want}: convert the images "
                        f"({'grayscale to RGB' if want == 3 and x.shape[1] == 1 else 'to its channels'}) in the "
                        "dataset, do not let broadcasting do it")


def check_model_sees(model: nn.Module, x: torch.Tensor, logits: torch.Tensor, what: str = "the model") -> None:
    """All of the above on one example batch ``x`` and its ``logits``."""
    check_input_channels(model, x, what)
    check_finite_model(model, what)
    check_finite_logits(logits, what)


def _device_of(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def check_head_width(model: nn.Module, x: torch.Tensor, num_classes: int, num_ops: int,
                     what: str = "the model") -> None:
    """:class:`UserError` unless the whole model (inside any K-way view) outputs K + M logits for images ``x``, so
    a declared M (``num_ops``) is what the head has, not only what is recorded."""
    # deferred: torch (kept out of the CLI's start)
    from .models.classifier import KWayClassifier, unwrap_model

    inner = unwrap_model(model)
    while isinstance(inner, KWayClassifier):
        inner = unwrap_model(inner.model)
    was_training = inner.training
    inner.eval()
    try:
        with torch.no_grad():
            out = inner(x[:1].to(_device_of(inner)))
    finally:
        inner.train(was_training)
    width = int((out[0] if isinstance(out, (tuple, list)) else out).shape[-1])
    if width != num_classes + num_ops:
        fix = (f"set num_ops: {width - num_classes}" if width >= num_classes else
               f"its head has fewer logits than the K={num_classes} classes: use the model of this dataset")
        raise UserError(f"{what} is declared with K={num_classes} classes and M={num_ops} extra logits (K+M = "
                        f"{num_classes + num_ops}) but outputs {width} logits: {fix}")


CONSISTENCY_BATCH = 8          # examples of the fixed batch (the first of the dataset)
CONSISTENCY_SMALL_BATCH = 3    # the second batch size the same examples are run at


def _mode_culprit(model: nn.Module) -> str | None:
    """The first module that makes outputs vary in eval mode: one still in training mode after ``model.eval()``
    (its ``train()`` overridden or its flag set in ``forward``), or a batch norm without running statistics."""
    for name, module in model.named_modules():
        kind = type(module).__name__
        if module.training:
            return f"module '{name or '(the model)'}' ({kind}) is in training mode although the model was put in " \
                   "eval mode"
        if isinstance(module, nn.modules.batchnorm._NormBase) and not module.track_running_stats:
            return f"module '{name}' ({kind}) normalises with each batch's own statistics " \
                   "(track_running_stats=False), so an example's logits depend on its batch"
    return None


def _logits(model: nn.Module, x: torch.Tensor, batch: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch]).float() for i in range(0, len(x), batch)])


def output_inconsistency(model: nn.Module, x: torch.Tensor) -> str | None:
    """Why ``model`` (in eval mode) gives other logits for the same images ``x``, in words, else None: ``x`` is run
    twice as one batch and once in batches of :data:`CONSISTENCY_SMALL_BATCH`. Differences within floating-point
    noise (1e-3 of the logits' scale; 1e-2 on an accelerator or with float16 / bfloat16 weights) are the same
    answer."""
    first = _logits(model, x, len(x))
    again = _logits(model, x, len(x))
    small = _logits(model, x, CONSISTENCY_SMALL_BATCH)
    # kernels differ between batch sizes: within 1e-3 of the logits' scale in float32 on a CPU; TF32 / cuDNN
    # algorithms and half-precision weights earn 1e-2 (dropout, noise and batch statistics move logits far more)
    loose = x.device.type != "cpu" or any(p.dtype in (torch.float16, torch.bfloat16) for p in model.parameters())
    scale = (1e-2 if loose else 1e-3) * max(1.0, float(first.abs().max()))
    repeat = float((first - again).abs().max())
    batch = float((first - small).abs().max())
    if repeat <= scale and batch <= scale:
        return None
    culprit = _mode_culprit(model)
    if repeat > scale:
        observed = f"the same {len(x)} images gave logits differing by up to {repeat:.3g} on two calls"
    else:
        observed = (f"an image's logits changed by up to {batch:.3g} between batches of {len(x)} and "
                    f"{CONSISTENCY_SMALL_BATCH}")
    cause = culprit or ("randomness in its forward (noise, sampling, or dropout called with training=True)"
                        if repeat > scale else "its forward mixes the examples of a batch")
    return f"{observed}: {cause}"


def check_consistent_outputs(model: nn.Module, dataset, device=None, what: str = "the model",
                             stochastic: bool = False) -> str | None:
    """Before scoring: :func:`output_inconsistency` on the dataset's first :data:`CONSISTENCY_BATCH` images, with
    the model in eval mode (as every evaluator runs it; its mode is restored). A model that answers differently is
    a :class:`UserError` naming the cause, unless ``stochastic`` (declared by the user): then the reason is
    returned for the report (None: it answered the same)."""
    n = min(CONSISTENCY_BATCH, len(dataset))
    if n < 2:
        return None
    device = device if device is not None else _device_of(model)
    x = torch.stack([dataset[i][0] for i in range(n)]).to(device)
    was_training = model.training
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}  # a BN in training mode updates them
    model.eval()
    try:
        problem = output_inconsistency(model, x)
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])
    if problem is not None and not stochastic:
        raise UserError(f"{what} answers differently each call ({problem}): its numbers would be one draw of many; "
                        "fix the model (model.eval(), no randomness in forward), or declare it stochastic "
                        "(stochastic: true under the model in the config, benchmark(..., stochastic=True)) to "
                        "evaluate it as such (AutoAttack then runs its randomised version, rand)")
    return problem


__all__ = ["CONSISTENCY_BATCH", "CONSISTENCY_SMALL_BATCH", "check_consistent_outputs", "check_finite_logits",
           "check_finite_model", "check_finite_state", "check_head_width", "check_input_channels", "check_model_sees", "first_non_finite",
           "input_channels", "output_inconsistency"]
