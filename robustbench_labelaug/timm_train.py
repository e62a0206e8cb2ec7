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
- ``timm.data.create_dataset`` is wrapped too: the training set's classes are recorded and, with
  ``--fair-val-split``, a validation split is held out of it; the loss counts per-class training robust accuracy and
  ``--fair cfa|frl`` runs around each ``train_one_epoch`` (:mod:`robustbench_labelaug.timm_fair`).
- Random erasing (``--reprob``) is kept: the hook attacks the image clipped to [0,1] and adds the perturbation to
  the erased batch (``AdvLabelAug(clip_input=True)``).

- The head follows the rule ``rbla train`` follows (:func:`~robustbench_labelaug.models.pretrained.
  create_with_head_rule`, one line printed at start): where the pretrained head (timm's weights, a
  ``--pretrained-path`` file or a ``pretrained_cfg_overlay`` file) has K rows, every mode keeps it and Adv+ adds
  M zero rows; where it has another width, every mode starts a fresh K+M head. So both doors start from the same
  weights on the same seed and flags. The weights' origin (a file with its sha256, or timm's tag) is recorded in
  the checkpoint's ``args`` (``rbla_pretrained_*``).
- Once at start (right after the script parses its flags) the launcher prints where the run departs from the
  paper's recipe (``rbla train``'s defaults), with the flag that aligns each point, and refuses, with one line,
  what cannot work (a pure float16 model). timm's flags keep timm's meaning.

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
from .fileio import check_component
from .models.classifier import KWayClassifier
from .results.vocab import ADV_PLUS, BF16, FP16, plain, precision_of_amp_dtype, timm_amp_dtype, torch_dtype
from .timm_fair import CountingSoftTargetCrossEntropy, FairSettings, TimmClassWise
from .timm_fair import say as _say
from .timm_train_cli import HELP, add_arguments, hook_settings, main, parse  # noqa: F401  (re-exported)

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


# -- command line: HELP, add_arguments and parse live in timm_train_cli (no torch at import) ---------------
# -- structure check ----------------------------------------------------------------------------------------------
def check_script_structure(source: str, path: str = "train.py") -> None:
    """Raise one line if ``source`` lacks what the launcher hooks into: module-level ``main()``,
    ``train_one_epoch(model, loader, ..., loss_fn, args, ..., mixup_fn)``, ``validate(model, ...)`` and an
    ``if __name__ == "__main__":`` block that only calls ``main()``."""
    hint = (f"rbla timm-train is tested with timm {', '.join(TESTED_TIMM_VERSIONS)}'s train.py (use that one, or "
            "put the hook in by hand: docs/timm-launcher.md, 'To edit train.py by hand')")
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
    head_rule: str | None = None
    pretrained: dict[str, Any] = field(default_factory=dict)  # where the starting weights came from
    reported: bool = False  # the recipe's departures were printed
    classwise: TimmClassWise = field(default_factory=lambda: TimmClassWise(FairSettings()))
    script_args: argparse.Namespace | None = None  # the script's parsed flags (from its _parse_args)
    persistent_loader: bool = False  # the script creates timm loaders with persistent workers (need -j >= 1)
    calls: dict[str, int] = field(default_factory=lambda: {"train_one_epoch": 0, "validate": 0})
    command: list[str] | None = None  # the rbla timm-train command line (recorded in the checkpoints)

    @property
    def num_ops(self) -> int:
        return self.settings["num_ops"] if self.settings["mode"] == ADV_PLUS else 0

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
        report_recipe(args, self)
        dtypes = {p.dtype for p in self.model.parameters()}
        if torch.float16 in dtypes:
            raise UserError(PURE_FP16)
        autocast = None
        if getattr(args, "amp", False):
            autocast = torch_dtype(precision_of_amp_dtype(getattr(args, "amp_dtype", None)))
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
    real_create_dataset = timm.data.create_dataset

    def create_model(*args: Any, **kwargs: Any) -> nn.Module:
        from .models.pretrained import create_with_head_rule

        if state.model is not None:  # only the trained model gets the wide head
            return real_create_model(*args, **kwargs)
        k = kwargs.pop("num_classes", None)
        if k is None:
            raise UserError("pass --num-classes K, the number of real classes (the launcher gives the head K+M "
                            "outputs)")
        if int(k) < 1:
            raise UserError(f"--num-classes must be >= 1, got {k}")
        name = args[0] if args else kwargs.pop("model_name")
        pretrained = bool(kwargs.pop("pretrained", False))
        file = (kwargs.get("pretrained_cfg_overlay") or {}).get("file")
        if file and not pretrained:
            raise UserError(f"the weights file {file} (--pretrained-path, or a pretrained_cfg_overlay file) is loaded "
                            "only with --pretrained: add --pretrained, or drop the file")
        if file and not Path(file).is_file():
            raise UserError(f"--pretrained-path {file} does not exist: pass a local weights file "
                            "(.pth/.bin/.safetensors) of the --model architecture")
        num_outputs = int(k) + state.num_ops
        model, state.head_rule = create_with_head_rule(real_create_model, name, int(k), state.num_ops,
                                                       pretrained=pretrained, **kwargs)
        width = getattr(model, "num_classes", num_outputs)
        if width != num_outputs:
            raise UserError(f"timm built '{name}' with {width} outputs, not K+M = {num_outputs}: use a model whose "
                            "head follows num_classes")
        state.model, state.num_classes = model, int(k)
        state.pretrained = starting_weights_record(model, pretrained, file)
        _say(f"{state.head_rule}; weights: {describe_weights(state.pretrained)}")
        return model

    def resolve_data_config(*args: Any, **kwargs: Any) -> dict[str, Any]:
        config = real_resolve(*args, **kwargs)
        if state.data_config is None:
            state.data_config = config
        return config

    def create_dataset(*args: Any, **kwargs: Any):
        dataset = state.classwise.create_dataset(real_create_dataset, state.script_args, *args, **kwargs)
        folders = state.classwise.class_folders
        if kwargs.get("is_training") and folders and state.num_classes is not None:
            from .checks import check_declared_classes  # rbla train's own check of K against the data

            root = kwargs.get("root") or getattr(state.script_args, "data_dir", None)
            check_declared_classes(state.num_classes, len(folders), f"the training set of {root}")
        return dataset

    stack = contextlib.ExitStack()
    stack.enter_context(_patched(timm.data, "create_dataset", create_dataset))
    stack.enter_context(_patched(timm.models, "create_model", create_model))
    stack.enter_context(_patched(timm, "create_model", create_model))
    stack.enter_context(_patched(timm.data, "resolve_data_config", resolve_data_config))
    for (module_name, name), reason in REFUSED.items():
        stack.enter_context(_patched(importlib.import_module(module_name), name, _refusing(reason)))
    return stack


def _wrap_train_one_epoch(real: Callable, state: _State) -> Callable:
    signature = inspect.signature(real)

    def train_one_epoch(*args: Any, **kwargs: Any):
        bound = signature.bind(*args, **kwargs)
        script_args = bound.arguments["args"]
        hook = state.make_hook(script_args)
        for key, value in state.pretrained.items():  # saved with timm's checkpoints (CheckpointSaver keeps args)
            setattr(script_args, f"rbla_pretrained_{key}", value)
        script_args.rbla_hook = hook_record(hook, state.data_config)  # what rbla zoo export rebuilds the model from
        if state.command:  # the command that ran: rbla zoo export's recipe of a timm-train model
            script_args.rbla_command = list(state.command)
        if bound.arguments.get("mixup_fn") is not None:
            raise UserError(REFUSED[("timm.data", "Mixup")])
        classwise = state.classwise
        epoch = int(bound.arguments["epoch"]) if "epoch" in bound.arguments else state.calls["train_one_epoch"]
        classwise.begin_epoch(epoch, hook, script_args, state.data_config)

        def counted(input: torch.Tensor, target: torch.Tensor):  # the hook, remembering what to score
            out, soft = hook(input, target)
            classwise.after_hook(hook, target, out)
            return out, soft

        if getattr(script_args, "prefetcher", False):
            bound.arguments["loader"] = HookedLoader(bound.arguments["loader"], counted)
        else:
            bound.arguments["mixup_fn"] = counted
        bound.arguments["loss_fn"] = CountingSoftTargetCrossEntropy(classwise)
        if "device" in signature.parameters and "device" not in bound.arguments and state.model is not None:
            # timm 1.0.9's main() calls train_one_epoch without device=, so its default 'cuda' breaks
            # --no-prefetcher on other devices: pass the model's own device
            bound.arguments["device"] = _device_of(state.model)
        state.calls["train_one_epoch"] += 1
        metrics = real(*bound.args, **bound.kwargs)
        classwise.end_epoch(epoch, bound.arguments["model"], script_args, metrics, state.data_config,
                            bound.arguments.get("output_dir"))
        return metrics

    return train_one_epoch


def hook_record(hook, data_config: dict[str, Any]) -> dict[str, Any]:
    """The hook's settings and the loader's normalisation, saved in the script's ``args`` (so in every checkpoint):
    ``rbla zoo export`` rebuilds the K+M classifier (normalisation inside) from them."""
    return plain({"mode": hook.mode, "num_classes": int(hook.num_classes), "num_ops": int(hook.num_ops),
            "eps": float(hook.eps), "steps": int(hook.steps), "alpha": float(hook.alpha), "delta": float(hook.delta),
            "adv_prob": float(hook.adv_prob), "attack_mode": hook.attack_mode, "train_clean": bool(hook.train_clean),
            "protocol": hook.protocol, "la_p": float(hook.la_p),
            "mean": [float(v) for v in data_config["mean"]], "std": [float(v) for v in data_config["std"]],
            "input_size": [int(v) for v in data_config["input_size"]],
            "interpolation": str(data_config.get("interpolation")), "crop_pct": float(data_config["crop_pct"])})


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
        metrics = real(*bound.args, **bound.kwargs)
        if isinstance(metrics, dict):  # the validation split's class-wise columns (the EMA's metrics get them too)
            metrics.update(state.classwise.eval_columns)
        return metrics

    return validate


def _check_torchvision_files(parsed: argparse.Namespace) -> None:
    """timm's ``--dataset torch/cifar10`` (``cifar100``) reads CIFAR's pickled batches with torchvision's
    ``pickle.load``: read them with the restricted unpickler first, so a file holding code is refused before."""
    from .data.cifar import CIFAR_SPECS, check_cifar_files  # torchvision: imported by timm's script already

    dataset = str(getattr(parsed, "dataset", "") or "")
    name = dataset.split("/", 1)[1] if dataset.startswith("torch/") else ""
    if name in CIFAR_SPECS and getattr(parsed, "data_dir", None):
        check_cifar_files(name, parsed.data_dir)


FOLDER_DATASETS = ("", "folder", "imagefolder", "image_folder")  # timm's names for an image folder


def check_script_args(args: argparse.Namespace, persistent_loader: bool = False) -> None:
    """The script's parsed flags that would fail later with a traceback, checked before it builds anything: the
    data folder (missing or not a folder), a CUDA device on a machine without one, and ``-j 0`` where the script
    creates timm's loaders with persistent workers (timm's default), which need at least one."""
    data_dir = getattr(args, "data_dir", None) or getattr(args, "data", None)
    dataset = str(getattr(args, "dataset", "") or "")
    if hasattr(args, "data_dir") or hasattr(args, "data"):
        if not data_dir and dataset.lower() in FOLDER_DATASETS:
            raise UserError("timm's train.py was given no data folder: pass --data-dir DIR (a folder with train/ and "
                            "validation/ class folders)")
        if data_dir and not Path(data_dir).is_dir() and not getattr(args, "dataset_download", False):
            kind = "is a file, not a folder" if Path(data_dir).exists() else "does not exist"
            raise UserError(f"--data-dir {data_dir} {kind}: pass the dataset's folder")
        classes = _class_folders(data_dir, getattr(args, "train_split", "train")) \
            if data_dir and dataset.lower() in FOLDER_DATASETS else None
        if classes and getattr(args, "num_classes", None) is not None:
            from .checks import check_declared_classes  # rbla train's own check of K against the data

            check_declared_classes(args.num_classes, len(classes), f"the training folder of {data_dir}")
    device = str(getattr(args, "device", "") or "")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"timm's train.py would run on --device {device} (its default is cuda) but this machine has "
                        "no CUDA device: pass --device cpu")
    workers = getattr(args, "workers", None)
    if persistent_loader and isinstance(workers, int) and workers < 1:
        raise UserError(f"-j {workers}: timm's train.py keeps its loader workers alive between epochs (persistent "
                        "workers), which needs at least one: pass -j 1 or more")


def _class_folders(data_dir: str, split: str) -> list[str]:
    """The class folders of an image-folder training split (``<data_dir>/<split>``, else ``data_dir``): what
    timm's folder reader makes classes of, counted before it scans every image."""
    root = Path(data_dir) / str(split)
    root = root if root.is_dir() else Path(data_dir)
    try:
        return sorted(p.name for p in root.iterdir() if p.is_dir())
    except OSError:
        return []


def creates_persistent_loaders(source: str) -> bool:
    """Whether ``source`` calls timm's ``create_loader`` without a ``persistent_workers`` argument (its default,
    True, needs ``num_workers >= 1``)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name == "create_loader" and not any(k.arg in ("persistent_workers", None) for k in node.keywords):
                return True
    return False


def read_script(path: Path) -> str:
    """The script's text in the encoding Python itself would read it with (UTF-8, or its coding cookie); one
    line if it cannot be decoded."""
    import io
    import tokenize

    data = path.read_bytes()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        where = f" (byte {exc.start})" if isinstance(exc, UnicodeDecodeError) else ""
        raise UserError(f"{path} is not readable Python text{where}: Python reads a script as UTF-8 unless a coding "
                        "line (# -*- coding: latin-1 -*-) says otherwise: save it as UTF-8 or add that line") from None


def _wrap_parse_args(real: Callable, state: _State) -> Callable:
    def _parse_args(*args: Any, **kwargs: Any):
        result = real(*args, **kwargs)
        parsed = result[0] if isinstance(result, tuple) else result
        if isinstance(parsed, argparse.Namespace):
            experiment = str(getattr(parsed, "experiment", "") or "")
            for part in experiment.split("/") if experiment else ():  # timm writes <output>/<experiment>: each
                check_component(part, "--experiment")                   # folder one safe name, as rbla train's
            _check_torchvision_files(parsed)
            state.script_args = parsed
            check_script_args(parsed, state.persistent_loader)
            state.classwise.check_script_args(parsed)  # a refusal comes before the recipe's report
            report_recipe(parsed, state)
            state.classwise.check_resume(parsed)
        return result

    return _parse_args


# -- the paper's recipe: where a run departs from it, and what cannot work ---------------------------------------
PURE_FP16 = ("a float16 model (--model-dtype float16) trains pure float16 weights: neither the attack nor timm's "
             "step gets loss scaling, so small gradients vanish: keep float32 weights and use --amp --amp-dtype "
             "bfloat16 (the recipe) or --amp --amp-dtype float16 (the hook then scales the attack loss per sample)")
RECIPE_DESTS = ("lr", "min_lr", "warmup_epochs", "weight_decay", "epochs", "momentum", "opt", "sched", "batch_size",
                "color_jitter", "amp_dtype")
TORCHVISION_TAG = "tv_in1k"  # the paper's "default (ImageNet) weights" of a ResNet-50: torchvision's


def _recipe() -> argparse.Namespace:
    """The paper's recipe: ``rbla train``'s defaults (its one home), min-lr = lr x 1e-4."""
    from .train.args import add_arguments

    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    recipe = argparse.Namespace(**{dest: parser.get_default(dest) for dest in RECIPE_DESTS})
    recipe.min_lr = recipe.lr * 1e-4 if recipe.min_lr is None else recipe.min_lr
    return recipe


def _world_size() -> int:
    from .distributed import launch_env

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
    import timm

    from .models.pretrained import split_tag

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


def recipe_departures(args: argparse.Namespace, world_size: int = 1) -> list[str]:
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


def report_recipe(args: argparse.Namespace, state: _State) -> None:
    """Once per run: refuse what cannot work, then print the departures from the paper's recipe."""
    if state.reported:
        return
    state.reported = True
    refusal = recipe_refusal(args)
    if refusal:
        raise UserError(refusal)
    points = recipe_departures(args, _world_size())
    if not points:
        _say("the run follows the paper's recipe (rbla train's defaults) on every point the launcher checks")
        return
    _say(f"this run departs from the paper's recipe (rbla train's defaults) on {len(points)} point(s); timm's flags "
         "keep timm's meaning, the flag after -> aligns each (docs/timm-launcher-parity.md):")
    for p in points:
        _say(f"  {p}")


def starting_weights_record(model: nn.Module, pretrained: bool, file: str | None) -> dict[str, Any]:
    """Where the model's starting weights came from: a file (path and sha256, no tag: a tag would be timm's guess),
    timm's tagged weights (tag and, where the cached file is found, its sha256), or nothing."""
    from .fileio import file_sha256
    from .models.pretrained import pretrained_file

    if not pretrained:
        return {"source": "random"}
    if file:
        path = str(Path(file).resolve())
        return {"source": "file", "file": path, "sha256": file_sha256(path), "tag": None}
    cfg = getattr(model, "pretrained_cfg", None) or {}
    path = pretrained_file(model)
    arch = str(cfg.get("architecture") or "")
    tag = cfg.get("tag")
    return {"source": "timm", "tag": f"{arch}.{tag}" if arch and tag else tag, "file": path,
            "sha256": file_sha256(path) if path and Path(path).is_file() else None}


def describe_weights(record: dict[str, Any]) -> str:
    if record.get("source") == "file":
        return f"file {record['file']} (sha256 {record['sha256']})"
    if record.get("source") == "timm":
        digest = f" (sha256 {record['sha256']})" if record.get("sha256") else ""
        return f"timm's {record.get('tag')}{digest}"
    return "random"


def run_timm_train(script: str | Path, argv: list[str], settings: dict[str, Any],
                   fair: FairSettings | None = None, command: list[str] | None = None) -> dict[str, int]:
    """Run ``script`` (timm's train.py) with command-line ``argv``, the hook built from ``settings``
    (:class:`AdvLabelAug` keyword arguments) and the class-wise ``fair`` settings (policy, validation split; see
    :mod:`robustbench_labelaug.timm_fair`). ``command``: the whole ``rbla timm-train ...`` command line, recorded
    in the checkpoints' args (``rbla_command``; default: ``rbla timm-train SCRIPT ARGV``, without our flags).
    Returns how often the hooked functions ran."""
    import timm
    import timm.models

    path = Path(script)
    if not path.is_file():
        raise UserError(f"{path} is not a file: pass the path of timm's train.py (it is in timm's GitHub "
                        "repository, not in the pip package)")
    source = read_script(path)
    check_script_structure(source, str(path))
    if timm.__version__ not in TESTED_TIMM_VERSIONS:
        print(f"rbla timm-train: warning: tested with timm {', '.join(TESTED_TIMM_VERSIONS)}, this is timm "
              f"{timm.__version__}", file=sys.stderr)
    state = _State(settings=dict(settings), classwise=TimmClassWise(fair or FairSettings()),
                   command=list(command) if command else ["rbla", "timm-train", str(script), *argv],
                   persistent_loader=creates_persistent_loaders(source))
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = str(path.resolve())
    with _script_environment(path.resolve(), list(argv)), _timm_patches(state):
        sys.modules[MODULE_NAME] = module
        exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102  (the user's own train.py)
        g = module.__dict__
        if g.get("create_model") is not timm.models.create_model:
            raise UserError(f"{path} does not import create_model from timm at module level, so the head cannot be "
                            f"widened: rbla timm-train needs timm {', '.join(TESTED_TIMM_VERSIONS)}'s train.py")
        if callable(g.get("_parse_args")):  # timm's train.py parses its flags there: report right after
            g["_parse_args"] = _wrap_parse_args(g["_parse_args"], state)
        g["train_one_epoch"] = _wrap_train_one_epoch(g["train_one_epoch"], state)
        g["validate"] = _wrap_validate(g["validate"], state)
        g["main"]()
    state.classwise.finish()
    return dict(state.calls)


if __name__ == "__main__":  # python -m robustbench_labelaug.timm_train TRAIN_PY ...
    from .cli import main as _cli_main

    sys.exit(_cli_main(["timm-train", *sys.argv[1:]]))
