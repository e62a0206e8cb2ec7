"""How a config feeds the device: ``runtime.decode`` (where folder images are decoded, see
:mod:`robustbench_labelaug.data.device_decode`) and ``runtime.batch_size`` (a number, or ``auto``: found once per
model by a short probe on the GPU). Importing this module imports no torch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..checks import is_int
from ..errors import UserError

DECODE_CHOICES = ("cpu", "gpu")
AUTO = "auto"
CPU_AUTO_BATCH = 64  # batch_size auto on a CPU device: no probe (memory is not the limit there)
PROBE_START, PROBE_CAP = 32, 1024


def check_decode(value: Any, where: str) -> str:
    """``runtime.decode``: ``cpu`` (PIL in the loader workers, the default and the reference) or ``gpu`` (bytes
    read by the workers, decoded and resized in batches on the evaluation device)."""
    if value not in DECODE_CHOICES:
        raise UserError(f"{where}: runtime.decode '{value}' is not known: use cpu (PIL in the loader workers, the "
                        "default) or gpu (JPEGs decoded on the evaluation device)")
    return value


def check_batch_size(value: Any, where: str) -> int | str:
    """``runtime.batch_size``: an integer >= 1, or ``auto``."""
    if value == AUTO:
        return value
    if not is_int(value):
        raise UserError(f"{where}: runtime.batch_size must be an integer >= 1 or auto, got {value!r}")
    if value < 1:
        raise UserError(f"{where}: runtime.batch_size must be >= 1, got {value}")
    return value


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA (or other device) out-of-memory error."""
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def probe_batch_size(try_batch: Callable[[int], None], *, start: int = PROBE_START, cap: int = PROBE_CAP,
                     release: Callable[[], None] = lambda: None, where: str = "runtime.batch_size auto") -> int:
    """The largest batch in start, 2*start, 4*start, ... <= ``cap`` for which ``try_batch(b)`` runs without running
    out of memory (halving below ``start`` when even that fails); ``release()`` runs after every out-of-memory
    try. Other errors propagate. :class:`UserError` when even a batch of 1 does not fit."""
    best, b = None, start
    while b <= cap:
        try:
            try_batch(b)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            release()
            break
        best, b = b, b * 2
    b = start // 2
    while best is None and b >= 1:
        try:
            try_batch(b)
            best = b
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            release()
            b //= 2
    if best is None:
        raise UserError(f"{where}: even a batch of 1 runs out of device memory: use a smaller model or input size, "
                        "or a device with more memory")
    return best


def attack_step(model, shape: tuple[int, ...], device) -> Callable[[int], None]:
    """One forward + input-gradient pass of ``model`` on a batch of ``b`` zero images of ``shape`` on ``device``
    (what an attack step holds in memory, more than an evaluation forward pass)."""
    import torch

    channels_last = any(p.is_contiguous(memory_format=torch.channels_last) and p.dim() == 4 and
                        not p.is_contiguous() for p in model.parameters())

    def step(b: int) -> None:
        x = torch.zeros(b, *shape, device=device)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_(True)
        try:
            out = model(x)
            (grad,) = torch.autograd.grad(out.float().sum(), x)
            del out, grad
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize(device)
        finally:
            del x

    return step


def auto_batch_size(model, shape: tuple[int, ...], device, *, cap: int = PROBE_CAP) -> int:
    """``runtime.batch_size: auto`` for one model: on CUDA the largest power-of-two batch (32 .. ``cap``) whose
    attack step (:func:`attack_step`) fits in device memory; on any other device :data:`CPU_AUTO_BATCH`."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return CPU_AUTO_BATCH
    was_training = model.training
    model.eval()

    def release() -> None:
        import gc

        gc.collect()
        torch.cuda.empty_cache()

    try:
        return probe_batch_size(attack_step(model, shape, device), cap=cap, release=release)
    finally:
        release()
        model.train(was_training)


def resolve_batch_size(value: int | str, model, dataset, device, name: str = "", show: bool = True) -> int:
    """``runtime.batch_size`` for ``model``: the number given, or with ``auto`` the probed one (the input shape
    is ``dataset[0]``'s), printed once."""
    if value != AUTO:
        return int(value)
    import torch

    shape = tuple(dataset[0][0].shape)
    found = auto_batch_size(model, shape, device)
    if show:
        how = (f"largest power-of-two batch <= {PROBE_CAP} whose forward + input-gradient pass at {shape} fits"
               if torch.device(device).type == "cuda" else "no probe on a CPU device")
        print(f"runtime.batch_size auto: {found} for model '{name}' ({how})", flush=True)
    return found
