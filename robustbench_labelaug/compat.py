"""Make robustbench 1.1.1 importable and its ``benchmark()`` runnable with pyautoattack 0.2.0.

robustbench imports the module ``autoattack`` (the name of the original AutoAttack repository), while its PyPI
dependency ``pyautoattack`` installs ``pyautoattack``; and ``robustbench.eval.benchmark`` calls the older
``AutoAttack(..., log_path=...)`` / ``run_standard_evaluation(x, y, bs=...)`` API. :func:`import_robustbench`
aliases the module names and puts :class:`LegacyAutoAttack` in place of ``robustbench.eval.AutoAttack``.
Nothing else of robustbench is changed.

``import robustbench_labelaug`` calls :func:`install_import_hooks`, so that a plain
``from robustbench.utils import load_model`` works afterwards: the one finder of this package on ``sys.meta_path``
answers ``import autoattack`` / ``autoattack.<sub>`` with the already-installed ``pyautoattack`` modules (imported
only then: lazy), and runs what :func:`after_import` asked for right after a robustbench module executes: the
adapter as soon as ``robustbench.eval`` is imported, the zoo's registration in RobustBench
(:mod:`robustbench_labelaug.zoo.robustbench_registry`) as soon as ``robustbench.model_zoo.models`` is, and its
check of RobustBench's ``load_model`` for missing zoo checkpoints as soon as ``robustbench.utils`` is.
Installing twice does nothing (idempotent). This module imports no torch.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .registry import resolve
from .results.vocab import ThreatModel

if TYPE_CHECKING:  # pragma: no cover
    import torch

ALIAS, TARGET = "autoattack", "pyautoattack"
RB_EVAL_MODULE = "robustbench.eval"
RB_MODELS_MODULE = "robustbench.model_zoo.models"
RB_UTILS_MODULE = "robustbench.utils"
# module -> what runs right after it executes (functions or lazy "module:function" references, given the module)
_AFTER_IMPORT: dict[str, list[Callable[[types.ModuleType], None] | str]] = {}


def _alias_autoattack() -> None:
    """Put ``pyautoattack`` (and ``pyautoattack.state``) into ``sys.modules`` under the name ``autoattack``."""
    pyautoattack = importlib.import_module(TARGET)
    importlib.import_module(f"{TARGET}.state")
    if ALIAS not in sys.modules:
        sys.modules[ALIAS] = pyautoattack
    sys.modules.setdefault(f"{ALIAS}.state", sys.modules[f"{TARGET}.state"])


class _AliasLoader(importlib.abc.Loader):
    """Returns the already-imported ``pyautoattack<.sub>`` module as ``autoattack<.sub>``, leaving its own
    ``__spec__`` (and so ``importlib.resources``/reload on it) untouched."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self._spec  # the import system set it to the alias's spec


class _RobustbenchImportHooks(importlib.abc.MetaPathFinder):
    """``autoattack*`` -> ``pyautoattack*``; the :func:`after_import` callbacks right after a module executes."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname == ALIAS or fullname.startswith(ALIAS + "."):
            real = TARGET + fullname[len(ALIAS):]
            if importlib.util.find_spec(real) is None:
                return None
            return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real),
                                                  is_package=fullname == ALIAS)
        if fullname in _AFTER_IMPORT:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            exec_module = spec.loader.exec_module

            def exec_then_run(module) -> None:
                exec_module(module)  # the module is in sys.modules already
                _run_after(fullname, module)

            spec.loader.exec_module = exec_then_run
            return spec
        return None


def _run_after(name: str, module: types.ModuleType) -> None:
    for fn in _AFTER_IMPORT.get(name, []):
        resolve(fn)(module)


def after_import(module: str, fn: Callable[[types.ModuleType], None] | str) -> None:
    """Run ``fn(module object)`` right after ``module`` is imported (at once when it is imported already);
    ``fn`` may be a lazy ``"package.module:function"``. The same ``fn`` twice is kept once."""
    todo = _AFTER_IMPORT.setdefault(module, [])
    if fn not in todo:
        todo.append(fn)
    if module in sys.modules:
        resolve(fn)(sys.modules[module])


def _put_adapter(rb_eval: types.ModuleType) -> None:
    rb_eval.AutoAttack = LegacyAutoAttack


def install_import_hooks() -> None:
    """Make ``import robustbench`` work from now on (idempotent, imports nothing until robustbench is imported),
    with the AutoAttack adapter and this package's zoo entries in RobustBench's zoo; where robustbench is
    already imported, both happen at once."""
    if not any(isinstance(f, _RobustbenchImportHooks) for f in sys.meta_path):
        sys.meta_path.insert(0, _RobustbenchImportHooks())
    after_import(RB_EVAL_MODULE, _put_adapter)
    after_import(RB_MODELS_MODULE, "robustbench_labelaug.zoo.robustbench_registry:register_after_import")
    after_import(RB_UTILS_MODULE, "robustbench_labelaug.zoo.robustbench_registry:wrap_after_import")


class LegacyAutoAttack:
    """The AutoAttack constructor and ``run_standard_evaluation`` signature that robustbench 1.1.1 calls,
    delegating to pyautoattack 0.2.0 (same attacks, same defaults)."""

    def __init__(self, model: torch.nn.Module, norm: str = ThreatModel.LINF, eps: float = 0.3, version: str = "standard",
                 device: str | torch.device = "cpu", log_path: str | None = None, seed: int | None = None,
                 attacks_to_run: list[str] | None = None, verbose: bool = True) -> None:
        import pyautoattack

        self.log_path = log_path  # pyautoattack logs through `logging`; kept for the old signature only
        self.adversary = pyautoattack.AutoAttack(
            model, norm=norm, eps=eps, version=version, device=device, seed=seed,
            attacks=attacks_to_run if version == "custom" else None)
        self.adversary.verbose = verbose

    def __getattr__(self, name: str):
        return getattr(self.adversary, name)

    def run_standard_evaluation(self, x_orig: torch.Tensor, y_orig: torch.Tensor, bs: int = 250,
                                state_path: Path | None = None, return_labels: bool = False):
        x_adv, y_adv = self.adversary.run_standard_evaluation(x_orig, y_orig, batch_size=bs, state_path=state_path)
        return (x_adv, y_adv) if return_labels else x_adv


def import_robustbench() -> types.ModuleType:
    """Import robustbench (and ``robustbench.eval`` with the AutoAttack adapter in place); return the package."""
    _alias_autoattack()
    robustbench = importlib.import_module("robustbench")
    rb_eval = importlib.import_module("robustbench.eval")
    rb_eval.AutoAttack = LegacyAutoAttack
    return robustbench
