"""``rbla timm-train PATH/TO/train.py [timm's flags] [--adv-* --la-* flags]``: run timm's own ``train.py``,
unmodified, with the :class:`~robustbench_labelaug.AdvLabelAug` hook installed.

How (no line of the script is edited; everything is undone when it returns):

- ``timm.models.create_model`` (and ``timm.create_model``) is wrapped before the script is executed, so the
  script's own ``from timm.models import create_model`` binds the wrapper: the first model it creates gets
  K+M outputs, where K is ``--num-classes`` (the number of real classes, as in ``rbla train``).
  ``timm.data.resolve_data_config`` is wrapped to learn the loader's mean/std.
- The script runs in a fresh module (not as ``__main__``, so its ``if __name__ == "__main__": main()`` does not
  fire); the launcher then replaces its module-level ``train_one_epoch`` and ``validate`` with wrappers and calls
  its ``main()``:
  - ``train_one_epoch(..., loss_fn, ..., mixup_fn=...)`` gets ``mixup_fn=hook`` and
    ``loss_fn=SoftTargetCrossEntropy()``: the hook sits on the ``input, target = mixup_fn(input, target)`` line,
    which timm runs with ``--no-prefetcher``. With timm's prefetcher (the default) that line is skipped and the
    batch is normalised on the device by the prefetch loader; the launcher then wraps the training loader so each
    batch it yields goes through the hook, on the device, after normalisation and random erasing — the same
    batch the mixup_fn line would see. Both paths are supported and tested.
  - ``validate(model, ...)`` gets a view of the model that returns its first K logits (timm's top-1/top-5 and
    validation loss are those of the K-way classifier); with ``--model-ema`` the EMA model is scored the same way.
- timm's mixup/cutmix (``Mixup``/``FastCollateMixup``), ``--jsd-loss``/``--bce-loss`` and AugMix splits produce
  soft targets or split batches the hook cannot take: they are refused, before any output is written. Label
  smoothing (``--smoothing``, 0.1 by default in timm) is not applied: the hook's targets replace the loss's.
- Random erasing (``--reprob``) is kept: the hook attacks the image clipped to [0,1] and adds the perturbation to
  the erased batch (``AdvLabelAug(clip_input=True)``).

Tested with timm 1.0.9 (robustbench 1.1.1's pin) and its ``train.py`` at tag v1.0.9, on CPU (``--device cpu``),
with and without ``--no-prefetcher``. A script whose structure differs is refused with one line naming what is
missing.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import inspect
import logging
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UserError
from .models.classifier import KWayClassifier
from .train.args import add_adv_arguments

HELP = ("run timm's own train.py, unmodified, with the AdvLabelAug hook at its mixup_fn point, a K+M head, "
        "soft-target cross entropy and K-way validation")
TESTED_TIMM_VERSIONS = ("1.0.9",)
MODULE_NAME = "__rbla_timm_train__"
REQUIRED_FUNCTIONS = {"main": (), "train_one_epoch": ("model", "loader", "loss_fn", "args", "mixup_fn"),
                      "validate": ("model",)}
REFUSED = {  # timm name -> why the hook cannot work with it
    ("timm.data", "Mixup"): "mixup/cutmix (--mixup/--cutmix/--cutmix-minmax) mix the labels the hook needs: "
                            "drop those flags",
    ("timm.data", "FastCollateMixup"): "mixup/cutmix (--mixup/--cutmix/--cutmix-minmax) mix the labels the hook "
                                       "needs: drop those flags",
    ("timm.data", "AugMixDataset"): "AugMix splits (--aug-splits) split each batch: drop --aug-splits",
    ("timm.loss", "JsdCrossEntropy"): "--jsd-loss needs AugMix splits: drop it (the loss is soft-target CE)",
    ("timm.loss", "BinaryCrossEntropy"): "--bce-loss replaces the soft-target cross entropy the hook needs: drop it",
}
_logger = logging.getLogger("rbla.timm_train")

__all__ = ["HELP", "TESTED_TIMM_VERSIONS", "add_arguments", "check_script_structure", "main", "parse",
           "run_timm_train"]


# -- command line -------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.allow_abbrev = False  # an abbreviated timm flag must never be taken for one of ours
    parser.usage = "rbla timm-train TRAIN_PY [timm's train.py flags] [--adv-* --la-* flags]"
    parser.epilog = ("Every flag not listed here goes to TRAIN_PY (see `python TRAIN_PY --help`). --num-classes "
                     "is K, the number of real classes; the head gets K+M outputs. Example: rbla timm-train "
                     "train.py --data-dir DIR --model resnet50 --num-classes 1000 --adv-mode adv_plus --adv-eps "
                     "0.03")
    parser.add_argument("script", metavar="TRAIN_PY", help="path to timm's train.py (unmodified)")
    add_adv_arguments(parser.add_argument_group("Adversarial training / label augmentation (the hook)"))


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Our flags; everything else is kept, in order, for the script."""
    args, rest = parser.parse_known_args(argv)
    args.script_args = rest
    return args


def main(args: argparse.Namespace) -> int:
    run_timm_train(args.script, args.script_args, hook_settings(args))
    return 0


def hook_settings(args: argparse.Namespace) -> dict[str, Any]:
    """``AdvLabelAug`` keyword arguments from the ``--adv-*``/``--la-*`` flags (checked)."""
    from .hook import check_attack_args
    from .labels import check_delta

    mode = args.adv_mode
    if mode == "trades":
        raise UserError("--adv-mode trades needs the clean logits as well, which timm's train.py does not give its "
                        "mixup_fn: use rbla train --adv-mode trades")
    if args.label_aug:
        if mode == "std":
            raise UserError("--label-aug needs adversarial training: use --adv-mode adv (or adv_plus)")
        mode = "adv_plus"
    check_attack_args(args.adv_eps, args.adv_steps, args.adv_alpha)
    check_delta(args.la_delta)
    if mode == "adv_plus" and args.la_ops < 1:
        raise UserError(f"--la-ops must be >= 1 with adv_plus, got {args.la_ops}")
    if not 0.0 <= args.adv_prob <= 1.0:
        raise UserError(f"--adv-prob must lie in [0, 1], got {args.adv_prob}")
    return {"mode": mode, "eps": args.adv_eps, "steps": args.adv_steps, "alpha": args.adv_alpha,
            "delta": args.la_delta, "num_ops": max(args.la_ops, 1), "train_clean": args.adv_train_clean,
            "adv_prob": args.adv_prob, "attack_mode": args.adv_attack_mode}


# -- structure check ----------------------------------------------------------------------------------------------
def check_script_structure(source: str, path: str = "train.py") -> None:
    """Raise one line if ``source`` lacks what the launcher hooks into: module-level ``main()``,
    ``train_one_epoch(model, loader, ..., loss_fn, args, ..., mixup_fn)``, ``validate(model, ...)`` and an
    ``if __name__ == "__main__":`` block that only calls ``main()``."""
    hint = (f"rbla timm-train is tested with timm {', '.join(TESTED_TIMM_VERSIONS)}'s train.py (use that one, or "
            "put the hook in by hand: README, 'Inside timm's own train.py')")
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise UserError(f"{path} is not valid Python (line {exc.lineno}): {hint}") from None
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for name, params in REQUIRED_FUNCTIONS.items():
        node = functions.get(name)
        if node is None:
            raise UserError(f"{path} has no module-level function {name}(): {hint}")
        names = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
        missing = [p for p in params if p not in names]
        if missing:
            raise UserError(f"{path}: {name}() has no parameter {', '.join(missing)}: {hint}")
    guards = [node for node in tree.body if isinstance(node, ast.If) and _is_main_guard(node.test)]
    if not guards:
        raise UserError(f"{path} has no `if __name__ == '__main__':` block: {hint}")
    for guard in guards:
        if guard.orelse or len(guard.body) != 1 or not _is_main_call(guard.body[0]):
            raise UserError(f"{path}: its `if __name__ == '__main__':` block does more than call main(), which "
                            f"the launcher calls itself: {hint}")


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _is_main_call(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name)
            and stmt.value.func.id == "main" and not stmt.value.args and not stmt.value.keywords)


# -- the run -------------------------------------------------------------------------------------------------------
class HookedLoader:
    """A training loader whose batches go through the hook (timm's prefetch loader: normalised, on the device)."""

    def __init__(self, loader: Any, hook: Callable) -> None:
        self.loader = loader
        self.hook = hook

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for input, target in self.loader:
            yield self.hook(input, target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


@dataclass
class _State:
    """What the wrappers learn while the script runs."""

    settings: dict[str, Any]
    model: nn.Module | None = None
    num_classes: int | None = None
    data_config: dict[str, Any] | None = None
    hook: Any = None
    calls: dict[str, int] = field(default_factory=lambda: {"train_one_epoch": 0, "validate": 0})

    @property
    def num_ops(self) -> int:
        return self.settings["num_ops"] if self.settings["mode"] == "adv_plus" else 0

    def make_hook(self, args: argparse.Namespace):
        from .hook import AdvLabelAug

        if self.hook is not None:
            return self.hook
        if self.model is None or self.num_classes is None:
            raise UserError("the script trains a model it did not create with timm's create_model: rbla timm-train "
                            f"needs timm {', '.join(TESTED_TIMM_VERSIONS)}'s train.py")
        if self.data_config is None:
            raise UserError("the script never called timm's resolve_data_config, so the loader's mean/std are "
                            f"unknown: rbla timm-train needs timm {', '.join(TESTED_TIMM_VERSIONS)}'s train.py")
        autocast = None
        if getattr(args, "amp", False):
            autocast = torch.bfloat16 if getattr(args, "amp_dtype", "float16") == "bfloat16" else torch.float16
        self.hook = AdvLabelAug(self.model, self.num_classes, mean=self.data_config["mean"],
                                std=self.data_config["std"], autocast_dtype=autocast,
                                clip_input=float(getattr(args, "reprob", 0.0) or 0.0) > 0, **self.settings)
        smoothing = getattr(args, "smoothing", 0.0)
        _logger.info(f"rbla timm-train: {self.hook}; loss SoftTargetCrossEntropy"
                     + (f" (--smoothing {smoothing} not applied: the hook's targets replace it)" if smoothing else ""))
        return self.hook


def _refusing(reason: str) -> Callable:
    def refuse(*_args, **_kwargs):
        raise UserError(reason)

    return refuse


@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any):
    had = hasattr(obj, name)
    old = getattr(obj, name, None)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


@contextlib.contextmanager
def _script_environment(script: Path, argv: list[str]):
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.parent))
    try:
        yield
    finally:
        sys.argv = old_argv
        sys.path[:] = old_path
        sys.modules.pop(MODULE_NAME, None)


def _timm_patches(state: _State) -> contextlib.ExitStack:
    import importlib

    import timm
    import timm.data
    import timm.loss
    import timm.models

    real_create_model = timm.models.create_model
    real_resolve = timm.data.resolve_data_config

    def create_model(*args: Any, **kwargs: Any) -> nn.Module:
        if state.model is not None:  # only the trained model gets the wide head
            return real_create_model(*args, **kwargs)
        k = kwargs.get("num_classes")
        if k is None:
            raise UserError("pass --num-classes K, the number of real classes (the launcher gives the head K+M "
                            "outputs)")
        if int(k) < 1:
            raise UserError(f"--num-classes must be >= 1, got {k}")
        kwargs["num_classes"] = int(k) + state.num_ops
        model = real_create_model(*args, **kwargs)
        width = getattr(model, "num_classes", kwargs["num_classes"])
        if width != kwargs["num_classes"]:
            raise UserError(f"timm built '{args[0] if args else kwargs.get('model_name')}' with {width} outputs, "
                            f"not K+M = {kwargs['num_classes']}: use a model whose head follows num_classes")
        state.model, state.num_classes = model, int(k)
        return model

    def resolve_data_config(*args: Any, **kwargs: Any) -> dict[str, Any]:
        config = real_resolve(*args, **kwargs)
        if state.data_config is None:
            state.data_config = config
        return config

    stack = contextlib.ExitStack()
    stack.enter_context(_patched(timm.models, "create_model", create_model))
    stack.enter_context(_patched(timm, "create_model", create_model))
    stack.enter_context(_patched(timm.data, "resolve_data_config", resolve_data_config))
    for (module_name, name), reason in REFUSED.items():
        stack.enter_context(_patched(importlib.import_module(module_name), name, _refusing(reason)))
    return stack


def _wrap_train_one_epoch(real: Callable, state: _State) -> Callable:
    from timm.loss import SoftTargetCrossEntropy

    signature = inspect.signature(real)

    def train_one_epoch(*args: Any, **kwargs: Any):
        bound = signature.bind(*args, **kwargs)
        script_args = bound.arguments["args"]
        hook = state.make_hook(script_args)
        if bound.arguments.get("mixup_fn") is not None:
            raise UserError(REFUSED[("timm.data", "Mixup")])
        if getattr(script_args, "prefetcher", False):
            bound.arguments["loader"] = HookedLoader(bound.arguments["loader"], hook)
        else:
            bound.arguments["mixup_fn"] = hook
        bound.arguments["loss_fn"] = SoftTargetCrossEntropy()
        if "device" in signature.parameters and "device" not in bound.arguments and state.model is not None:
            # timm 1.0.9's main() calls train_one_epoch without device=, so its default 'cuda' breaks
            # --no-prefetcher on other devices: pass the model's own device
            bound.arguments["device"] = _device_of(state.model)
        state.calls["train_one_epoch"] += 1
        return real(*bound.args, **bound.kwargs)

    return train_one_epoch


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def _wrap_validate(real: Callable, state: _State) -> Callable:
    signature = inspect.signature(real)

    def validate(*args: Any, **kwargs: Any):
        bound = signature.bind(*args, **kwargs)
        if state.num_classes is None:
            raise UserError("the script validates a model it did not create with timm's create_model: rbla "
                            f"timm-train needs timm {', '.join(TESTED_TIMM_VERSIONS)}'s train.py")
        bound.arguments["model"] = KWayClassifier(bound.arguments["model"], state.num_classes)
        state.calls["validate"] += 1
        return real(*bound.args, **bound.kwargs)

    return validate


def run_timm_train(script: str | Path, argv: list[str], settings: dict[str, Any]) -> dict[str, int]:
    """Run ``script`` (timm's train.py) with command-line ``argv`` and the hook built from ``settings``
    (:class:`AdvLabelAug` keyword arguments). Returns how often the hooked functions ran."""
    import timm
    import timm.models

    path = Path(script)
    if not path.is_file():
        raise UserError(f"{path} is not a file: pass the path of timm's train.py (it is in timm's GitHub "
                        "repository, not in the pip package)")
    source = path.read_text(encoding="utf-8")
    check_script_structure(source, str(path))
    if timm.__version__ not in TESTED_TIMM_VERSIONS:
        print(f"rbla timm-train: warning: tested with timm {', '.join(TESTED_TIMM_VERSIONS)}, this is timm "
              f"{timm.__version__}", file=sys.stderr)
    state = _State(settings=dict(settings))
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = str(path.resolve())
    with _script_environment(path.resolve(), list(argv)), _timm_patches(state):
        sys.modules[MODULE_NAME] = module
        exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102  (the user's own train.py)
        g = module.__dict__
        if g.get("create_model") is not timm.models.create_model:
            raise UserError(f"{path} does not import create_model from timm at module level, so the head cannot be "
                            f"widened: rbla timm-train needs timm {', '.join(TESTED_TIMM_VERSIONS)}'s train.py")
        g["train_one_epoch"] = _wrap_train_one_epoch(g["train_one_epoch"], state)
        g["validate"] = _wrap_validate(g["validate"], state)
        g["main"]()
    return dict(state.calls)


if __name__ == "__main__":  # python -m robustbench_labelaug.timm_train TRAIN_PY ...
    from .cli import main as _cli_main

    sys.exit(_cli_main(["timm-train", *sys.argv[1:]]))
