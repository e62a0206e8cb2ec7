"""``python: path/to/file.py:factory`` (or ``module:callable``) + an optional ``checkpoint`` (its state dict): a
user's own model code. :func:`python_source` resolves it without calling it; :func:`load` imports the code, calls
the factory (``os._exit`` and ``sys.exit`` become one line) and loads the checkpoint strictly, with DataParallel's
``module.`` and RobustBench's ``model.`` prefixes matched."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...errors import UserError
from ...fileio import file_sha256
from ...models.classifier import KWayClassifier
from ...results.vocab import DEFAULT_THREAT_MODEL
from ...safeload import load_torch, state_bytes
from .base import ModelSource, SourceKind, robustbench_reported


def split_python_ref(ref: str) -> tuple[str, str, bool]:
    """``(file or module, callable name, is_file)`` of ``path/to/file.py:factory`` or ``package.module:callable``;
    :class:`UserError` for anything else."""
    text = str(ref).strip()
    target, sep, attr = text.rpartition(":")
    if not sep or not target or not attr.isidentifier():
        raise UserError(f"python: {text!r} is not a reference: use path/to/file.py:factory or module:callable (the "
                        "callable returns the nn.Module)")
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    if not is_file and not all(part.isidentifier() for part in target.split(".")):
        raise UserError(f"python: {target!r} is neither a .py file nor a module name: use path/to/file.py:factory "
                        "or module:callable")
    return target, attr, is_file


def python_file(target: str, base_dir: str | Path | None = None) -> Path:
    """The ``.py`` file of a ``python:`` reference: a relative path is relative to ``base_dir`` (the config's
    folder, so a config and its code move together), else to the working directory."""
    code = Path(target).expanduser()
    return code if code.is_absolute() or base_dir is None else Path(base_dir) / code


def python_source(ref: str, num_classes: int, dataset: str, checkpoint: str | Path | None = None,
                  threat_model: str = DEFAULT_THREAT_MODEL, num_ops: int | None = None,
                  reported: dict[str, Any] | None = None, base_dir: str | Path | None = None) -> ModelSource:
    """Resolve a user's model factory without calling it: the file (or module) and the checkpoint must exist.
    A relative ``.py`` path is found from ``base_dir`` (an evaluation config's folder), else the working
    directory. The file is code: calling the factory runs it, as running a Python script would."""
    target, attr, is_file = split_python_ref(ref)
    code: Path | None = None
    if is_file:
        code = python_file(target, base_dir)
        if not code.is_file():
            where = "the config's folder" if base_dir is not None else "the working directory"
            raise UserError(f"python: file {code} does not exist: give the path of the .py file that defines "
                            f"{attr}() (relative to {where})")
    else:
        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError) as exc:
            spec = None
            why = f" ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})"
        else:
            why = ""
        if spec is None:
            raise UserError(f"python: module '{target}' cannot be found{why}: install it, or add its folder to "
                            "PYTHONPATH, or use path/to/file.py:factory")
        code = Path(spec.origin) if spec.origin and Path(spec.origin).is_file() else None
    weights = []
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise UserError(f"checkpoint {path} of python model '{ref}' does not exist: give the path of its state "
                            "dict (.pt/.pth)")
        weights = [path]
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise UserError(f"python model '{ref}' needs num_classes (K) or a dataset with a known K, got "
                        f"{num_classes!r}")
    return ModelSource(kind="python", name=str(ref), dataset=dataset, threat_model=threat_model,
                       num_classes=num_classes, weights=weights, reported=robustbench_reported(reported),
                       extra={"code": None if code is None else str(code), "num_ops": int(num_ops or 0),
                              "code_sha256": None if code is None else file_sha256(code)})


class FactoryExit(BaseException):
    """``os._exit`` called by a user's code while it is imported or builds the model (see :func:`no_hard_exit`)."""


@contextlib.contextmanager
def no_hard_exit():
    """While a user's ``python:`` code runs: ``os._exit`` raises :class:`FactoryExit` instead of ending the process
    on the spot, so a factory that aborts (``sys.exit``, ``os._exit`` or an exception) becomes one line and the
    run's lock and temp files are cleaned up as for any error."""
    real = os._exit

    def refuse(code: int = 0) -> None:
        raise FactoryExit(f"os._exit({code})")

    os._exit = refuse
    try:
        yield
    finally:
        os._exit = real


def _import_callable(ref: str, code: str | Path | None = None):
    target, attr, is_file = split_python_ref(ref)
    if is_file:
        path = Path(code if code is not None else target).expanduser().resolve()
        name = f"rbla_user_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise UserError(f"python: {path} cannot be loaded as a Python file: check the path")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        where = str(path)
    else:
        module, where = None, target
    try:
        with no_hard_exit():
            if module is None:
                module = importlib.import_module(target)
            else:
                spec.loader.exec_module(module)
    except UserError:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's code fails in its own ways
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise UserError(f"python: importing {where} failed ({type(exc).__name__}: "
                        f"{(str(exc).splitlines() or [''])[0][:150]}): fix that file") from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        what = "has no" if fn is None else "has a non-callable"
        raise UserError(f"python: {where} {what} '{attr}' (its functions and classes: {', '.join(found) or 'none'}): "
                        "name the callable that returns the model")
    return fn


def unwrap_state_dict(state: Any, path: Path) -> dict[str, Any]:
    """The weights of a checkpoint: a plain state dict, or RobustBench's / a training script's layout (under
    ``state_dict``, ``model`` or ``last``)."""
    for key in ("state_dict", "model", "last", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"checkpoint {path} holds no state dict (a mapping of tensor names to tensors, possibly "
                        "under 'state_dict'): save it with torch.save(model.state_dict(), path)")
    return state


def fit_state_dict(model: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with a ``module.`` prefix (DataParallel/DDP) removed and RobustBench's ``model.`` prefix added or
    removed where that makes its keys those of ``model``."""
    wanted = set(model.state_dict())

    def strip(d: dict[str, Any], prefix: str) -> dict[str, Any]:
        return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in d.items()}

    candidates = [state, strip(state, "module.")]
    candidates += [strip(c, "model.") for c in candidates] + [{f"model.{k}": v for k, v in c.items()}
                                                             for c in candidates]
    return max(candidates, key=lambda c: len(wanted & set(c)) - len(set(c) - wanted))


def load(source: ModelSource) -> nn.Module:
    fn = _import_callable(source.name, source.extra.get("code"))
    try:
        with no_hard_exit():
            model = fn()
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, FactoryExit):
            raise UserError(f"python: {source.name}() failed ({exc} would have ended the process): it must build "
                            "and return the model with no arguments") from None
        raise UserError(f"python: {source.name}() failed ({type(exc).__name__}: "
                        f"{(str(exc).splitlines() or [''])[0][:150]}): it must build the model with no arguments") \
            from None
    if not isinstance(model, nn.Module):
        raise UserError(f"python: {source.name}() returned a {type(model).__name__}, not a torch.nn.Module: return "
                        "the model")
    if source.weights:
        path = source.weights[0]
        state = load_torch(path, expected_bytes=state_bytes(model),
                           fix="use a file saved with torch.save(model.state_dict(), path)")
        fitted = fit_state_dict(model, unwrap_state_dict(state, path))
        wanted = set(model.state_dict())
        missing, unexpected = sorted(wanted - set(fitted)), sorted(set(fitted) - wanted)
        if missing or unexpected:
            raise UserError(f"checkpoint {path} does not fit {source.name}() ({len(missing)} missing keys, e.g. "
                            f"{(missing or ['-'])[0]}; {len(unexpected)} unexpected, e.g. {(unexpected or ['-'])[0]}, "
                            "after removing 'module.' and matching RobustBench's 'model.'): pass the checkpoint of "
                            "this architecture")
        try:
            model.load_state_dict(fitted, strict=True)
        except RuntimeError as exc:
            msg = " ".join(str(exc).split())
            raise UserError(f"checkpoint {path} does not fit {source.name}() ({msg[:200]}): pass the checkpoint "
                            "of this architecture") from None
    model.eval()
    num_ops = int(source.extra.get("num_ops") or 0)
    return KWayClassifier(model, source.num_classes).eval() if num_ops else model


def resolve(spec: dict[str, Any], model_dir: str | Path) -> ModelSource:
    return python_source(str(spec["python"]), spec.get("num_classes"), str(spec.get("dataset") or ""),
                         spec.get("checkpoint"), str(spec.get("threat_model") or DEFAULT_THREAT_MODEL), spec.get("num_ops"),
                         spec.get("reported"), spec.get("base_dir"))


SOURCE = SourceKind("python", resolve, load)
