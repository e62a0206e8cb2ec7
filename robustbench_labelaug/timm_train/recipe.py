"""The paper's recipe in a timm ``train.py`` run: where the run's flags depart from it (``rbla train``'s defaults,
its one home), with the flag that aligns each point (:func:`timm_run_departures`), and what cannot work with the hook
(:func:`recipe_refusal`: a pure float16 model). Printed once at start by the launcher (:func:`report_recipe`)."""

from __future__ import annotations

import argparse

from ..distributed import launch_env
from ..errors import UserError
from ..models.pretrained import split_tag
from ..results.vocab import BF16, FP16, timm_amp_dtype
from ..train.args import add_arguments
from .fair import say

PURE_FP16 = ("a float16 model (--model-dtype float16) trains pure float16 weights: neither the attack nor timm's "
             "step gets loss scaling, so small gradients vanish: keep float32 weights and use --amp --amp-dtype "
             "bfloat16 (the recipe) or --amp --amp-dtype float16 (the hook then scales the attack loss per sample)")
RECIPE_DESTS = ("lr", "min_lr", "warmup_epochs", "weight_decay", "epochs", "momentum", "opt", "sched", "batch_size",
                "color_jitter", "amp_dtype")
TORCHVISION_TAG = "tv_in1k"  # the paper's "default (ImageNet) weights" of a ResNet-50: torchvision's


def _recipe() -> argparse.Namespace:
    """The paper's recipe: ``rbla train``'s defaults (its one home), min-lr = lr x 1e-4."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    recipe = argparse.Namespace(**{dest: parser.get_default(dest) for dest in RECIPE_DESTS})
    recipe.min_lr = recipe.lr * 1e-4 if recipe.min_lr is None else recipe.min_lr
    return recipe


def _world_size() -> int:
    try:
        return max(1, int(launch_env().world_size))
    except Exception:  # noqa: BLE001 - a partial launcher environment: timm itself will say
        return 1


def _timm_lr(args: argparse.Namespace, global_batch: int) -> float:
    """The lr timm's train.py uses: --lr, else --lr-base scaled by the global batch (as its main() does)."""
    if getattr(args, "lr", None):
        return float(args.lr)
    ratio = global_batch / float(getattr(args, "lr_base_size", 256) or 256)
    scale = getattr(args, "lr_base_scale", "") or ("sqrt" if any(o in str(getattr(args, "opt", "sgd")).lower()
                                                                  for o in ("ada", "lamb")) else "linear")
    return float(getattr(args, "lr_base", 0.1)) * (ratio ** 0.5 if scale == "sqrt" else ratio)


def _g(value: float) -> str:
    return f"{value:g}"


def _pretrained_names(args: argparse.Namespace) -> tuple[str, str | None, str | None]:
    """(architecture, the tag timm loads, the torchvision tag when timm has one for this architecture)."""
    import timm  # deferred: timm (imported by the launcher already)

    arch, tag = split_tag(args.model)
    try:
        cfg = timm.models.get_pretrained_cfg(args.model)
        tag = tag or getattr(cfg, "tag", None)
    except RuntimeError:
        pass
    tv = TORCHVISION_TAG if timm.list_pretrained(f"{arch}.{TORCHVISION_TAG}") else None
    return arch, tag, tv


def _has_file(args: argparse.Namespace) -> bool:
    overlay = (getattr(args, "model_kwargs", None) or {}).get("pretrained_cfg_overlay") or {}
    return bool(getattr(args, "pretrained_path", None) or (isinstance(overlay, dict) and overlay.get("file")))


def timm_run_departures(args: argparse.Namespace, world_size: int = 1) -> list[str]:
    """Where a timm train.py run with ``args`` departs from the paper's recipe (``rbla train``'s defaults), one
    ``what: here vs recipe -> aligning flag`` per point. Flags the script does not have are not judged."""
    r, out = _recipe(), []

    def has(name: str) -> bool:
        return hasattr(args, name)

    def point(what: str, here: str, recipe: str, align: str) -> None:
        out.append(f"{what}: {here} here, {recipe} in the recipe -> {align}")

    if has("model") and has("pretrained"):
        if not args.pretrained:
            point("weights", "random initialisation", "pretrained ImageNet weights",
                  f"--pretrained --model {args.model.split('.')[0]}.{TORCHVISION_TAG}")
        elif not _has_file(args):
            arch, tag, tv = _pretrained_names(args)
            if tv and tag != tv:
                untagged = "." not in args.model
                point("weights", f"{arch}.{tag}" + (f" (timm's default for untagged {arch})" if untagged else ""),
                      f"torchvision's ({arch}.{tv})", f"--model {arch}.{tv}")
    dtype = str(getattr(args, "model_dtype", None) or "float32").replace("torch.", "")
    if dtype in (timm_amp_dtype(BF16), BF16):
        point("weights dtype", "bfloat16 (--model-dtype)", "float32 weights under autocast",
              "drop --model-dtype; add --amp --amp-dtype bfloat16")
    if has("color_jitter") and float(args.color_jitter or 0) != r.color_jitter and not getattr(args, "no_aug", False):
        point("ColorJitter", f"--color-jitter {_g(args.color_jitter)} (timm's default 0.4)", "off",
              "--color-jitter 0")
    if has("train_interpolation") and args.train_interpolation != "bilinear":
        point("train interpolation", f"{args.train_interpolation}", "bilinear", "--train-interpolation bilinear")
    if getattr(args, "aa", None):
        point("AutoAugment", f"--aa {args.aa}", "none (RandomResizedCrop + flip)", "drop --aa")
    if float(getattr(args, "reprob", 0) or 0) > 0:
        point("random erasing", f"--reprob {_g(args.reprob)}", "none", "--reprob 0")
    if getattr(args, "amp", False) and str(getattr(args, "amp_dtype", "float16")) != r.amp_dtype:
        point("autocast dtype", f"{args.amp_dtype} (timm's --amp-dtype default)", r.amp_dtype,
              f"--amp-dtype {r.amp_dtype}")
    global_batch = None
    if has("batch_size"):
        accum = max(1, int(getattr(args, "grad_accum_steps", 1) or 1))
        global_batch = int(args.batch_size) * world_size * accum
        if global_batch != r.batch_size:
            per = world_size * accum
            align = (f"-b {r.batch_size // per}" if r.batch_size % per == 0 else
                     f"a -b with -b x {world_size} process(es) x {accum} accumulation = {r.batch_size}")
            point("batch", f"-b {args.batch_size} per process x {world_size} process(es)"
                  + (f" x {accum} accumulation steps" if accum > 1 else "") + f" = {global_batch} per step",
                  f"{r.batch_size} per step (rbla train's -b is this global batch)", align)
    if has("lr") and global_batch is not None:
        lr = _timm_lr(args, global_batch)
        if abs(lr - r.lr) > 1e-12:
            how = "" if getattr(args, "lr", None) else " (timm: --lr-base x global batch / 256)"
            point("lr", f"{_g(lr)}{how}", _g(r.lr), f"--lr {_g(r.lr)}")
    for dest, flag, note in (("min_lr", "--min-lr", " (lr x 1e-4)"), ("warmup_epochs", "--warmup-epochs", ""),
                             ("weight_decay", "--weight-decay", " (rbla train's; the paper does not say)"),
                             ("epochs", "--epochs", ""), ("momentum", "--momentum", "")):
        if has(dest) and getattr(args, dest) is not None and abs(float(getattr(args, dest)) - float(getattr(r, dest))) > 1e-12:
            point(dest.replace("_", " "), f"{flag} {_g(float(getattr(args, dest)))}", _g(float(getattr(r, dest))) + note,
                  f"{flag} {_g(float(getattr(r, dest)))}")
    for dest, flag in (("opt", "--opt"), ("sched", "--sched")):
        if has(dest) and str(getattr(args, dest)).lower() != str(getattr(r, dest)).lower():
            point(dest, f"{flag} {getattr(args, dest)}", str(getattr(r, dest)), f"{flag} {getattr(r, dest)}")
    return out


def recipe_refusal(args: argparse.Namespace) -> str | None:
    """One line for what cannot work with the hook, or None."""
    dtype = str(getattr(args, "model_dtype", None) or "").replace("torch.", "")
    if dtype in (timm_amp_dtype(FP16), FP16, "half"):
        return PURE_FP16
    return None


def report_recipe(args: argparse.Namespace) -> None:
    """Refuse what cannot work, then print the departures from the paper's recipe (the launcher calls it once per
    run)."""
    refusal = recipe_refusal(args)
    if refusal:
        raise UserError(refusal)
    points = timm_run_departures(args, _world_size())
    if not points:
        say("the run follows the paper's recipe (rbla train's defaults) on every point the launcher checks")
        return
    say(f"this run departs from the paper's recipe (rbla train's defaults) on {len(points)} point(s); timm's flags "
        "keep timm's meaning, the flag after -> aligns each (docs/timm-launcher-parity.md):")
    for p in points:
        say(f"  {p}")
