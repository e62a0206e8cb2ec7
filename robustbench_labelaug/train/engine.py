"""One training epoch, written the way timm's ``train_one_epoch`` applies ``mixup_fn``, and per-epoch validation."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable

import torch
from timm.utils import AverageMeter
from torch import nn
from tqdm import tqdm

from .. import distributed as dist_utils
from ..errors import UserError

BatchHook = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class NonFiniteLoss(UserError):
    """The training loss became NaN or infinite."""


def train_one_epoch(epoch: int, model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer,
                    loss_fn: nn.Module, hook: BatchHook | None, device: torch.device, *,
                    autocast_dtype: torch.dtype | None = None, scaler: torch.amp.GradScaler | None = None,
                    channels_last: bool = False, progress: bool = True, log_interval: int = 0,
                    log: Callable[[str], None] = print, trades=None, class_stats=None) -> dict[str, float]:
    """Train one epoch; ``hook(input, target)`` sits where timm applies ``mixup_fn``. Stops on a non-finite loss
    before the optimizer step (nothing is updated with it).

    ``trades`` (a :class:`robustbench_labelaug.fair.trades.TradesLoss`) replaces hook and ``loss_fn``: TRADES needs
    the natural logits too. ``class_stats`` (a :class:`robustbench_labelaug.fair.stats.ClassCounts`) counts, per
    class, the adversarial training examples the model classified correctly, from the logits of the training
    forward pass (no extra pass): the hook's ``adv_rows``, or TRADES' adversarial logits."""
    model.train()
    losses = AverageMeter()
    start = time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress)
    for step, (input, target) in enumerate(bar):
        input, target = input.to(device, non_blocking=True), target.to(device, non_blocking=True)
        if channels_last:  # before the hook, so the attack's forward/backward passes use the layout too
            input = input.contiguous(memory_format=torch.channels_last)
        labels = target
        autocast = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
                    else contextlib.nullcontext())
        if trades is not None:
            loss, adv_logits = trades(model, input, target, autocast=autocast)
        else:
            if hook is not None:
                input, target = hook(input, target)
            if channels_last:
                input = input.contiguous(memory_format=torch.channels_last)
            with autocast:
                output = model(input)
                loss = loss_fn(output, target)
            rows = getattr(hook, "adv_rows", None)
            adv_logits = output[rows].detach() if rows is not None else None
        if class_stats is not None and adv_logits is not None:
            class_stats.update(adv_logits[:, :class_stats.num_classes].argmax(1), labels)
        if not dist_utils.all_finite(loss):  # every rank stops at the same step
            where = "" if torch.isfinite(loss) else f"{loss.item()} "
            raise NonFiniteLoss(f"loss became {where or 'non-finite on another rank '}at epoch {epoch}, step {step}")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        losses.update(loss.item(), input.size(0))
        bar.set_postfix(loss=f"{losses.avg:.4f}")
        if log_interval and (step + 1) % log_interval == 0:
            log(f"epoch {epoch} step {step + 1}/{len(loader)} loss {losses.val:.4f} (avg {losses.avg:.4f}) "
                f"lr {optimizer.param_groups[0]['lr']:.3g}")
    return {"loss": losses.avg, "time_s": time.perf_counter() - start}
