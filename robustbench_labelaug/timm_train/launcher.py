"""The launcher of ``rbla timm-train PATH/TO/train.py [timm's flags] [--adv-* --la-* flags]``: run timm's own
``train.py``, unmodified, with the :class:`~robustbench_labelaug.AdvLabelAug` hook installed (:func:`run_timm_train`).

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
  ``--fair cfa|frl`` runs around each ``train_one_epoch`` (:mod:`robustbench_labelaug.timm_train.fair`).
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
import contextlib
import importlib
import inspect
import logging
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import timm.data
import timm.loss
import timm.models
import torch
from torch import nn

from ..checks import check_declared_classes  # rbla train's own check of K against the data
from ..errors import UserError
from ..fileio import check_component
from ..hook.adv_label_aug import AdvLabelAug
from ..models.classifier import KWayClassifier
from ..models.pretrained import create_with_head_rule
from ..results.vocab import ADV_PLUS, plain, precision_of_amp_dtype, torch_dtype
from .fair import CountingSoftTargetCrossEntropy, FairSettings, TimmClassWise, say
from .recipe import PURE_FP16, report_recipe
from .script import (
    TESTED_TIMM_VERSIONS,
    check_script_args,
    check_script_structure,
    check_torchvision_files,
    creates_persistent_loaders,
    read_script,
)
from .weights import describe_weights, starting_weights_record

MODULE_NAME = "__rbla_timm_train__"
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
        if self.hook is not None:
            return self.hook
        if self.model is None or self.num_classes is None:
            raise UserError("the script trains a model it did not create with timm's create_model: rbla timm-train "
                            f"needs timm {', '.join(TESTED_TIMM_VERSIONS)}'s train.py")
        if self.data_config is None:
            raise UserError("the script never called timm's resolve_data_config, so the loader's mean/std are "
                            f"unknown: rbla timm-train needs timm {', '.join(TESTED_TIMM_VERSIONS)}'s train.py")
        self.report_recipe(args)
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

    def report_recipe(self, args: argparse.Namespace) -> None:
        """Once per run: refuse what cannot work, then print the departures from the paper's recipe."""
        if not self.reported:
            self.reported = True
            report_recipe(args)


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
    real_create_model = timm.models.create_model
    real_resolve = timm.data.resolve_data_config
    real_create_dataset = timm.data.create_dataset

    def create_model(*args: Any, **kwargs: Any) -> nn.Module:
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
        say(f"{state.head_rule}; weights: {describe_weights(state.pretrained)}")
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
            bound.arguments["device"] = model_device(state.model)
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


def model_device(model: nn.Module) -> torch.device:
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


def _wrap_parse_args(real: Callable, state: _State) -> Callable:
    def _parse_args(*args: Any, **kwargs: Any):
        result = real(*args, **kwargs)
        parsed = result[0] if isinstance(result, tuple) else result
        if isinstance(parsed, argparse.Namespace):
            experiment = str(getattr(parsed, "experiment", "") or "")
            for part in experiment.split("/") if experiment else ():  # timm writes <output>/<experiment>: each
                check_component(part, "--experiment")                   # folder one safe name, as rbla train's
            check_torchvision_files(parsed)
            state.script_args = parsed
            check_script_args(parsed, state.persistent_loader)
            state.classwise.check_script_args(parsed)  # a refusal comes before the recipe's report
            state.report_recipe(parsed)
            state.classwise.check_resume(parsed)
        return result

    return _parse_args


def run_timm_train(script: str | Path, argv: list[str], settings: dict[str, Any],
                   fair: FairSettings | None = None, command: list[str] | None = None) -> dict[str, int]:
    """Run ``script`` (timm's train.py) with command-line ``argv``, the hook built from ``settings``
    (:class:`AdvLabelAug` keyword arguments) and the class-wise ``fair`` settings (policy, validation split; see
    :mod:`robustbench_labelaug.timm_train.fair`). ``command``: the whole ``rbla timm-train ...`` command line, recorded
    in the checkpoints' args (``rbla_command``; default: ``rbla timm-train SCRIPT ARGV``, without our flags).
    Returns how often the hooked functions ran."""
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
