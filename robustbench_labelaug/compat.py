"""Make robustbench 1.1.1 importable and its ``benchmark()`` runnable with pyautoattack 0.2.0.

robustbench imports the module ``autoattack`` (the name of the original AutoAttack repository), while its PyPI
dependency ``pyautoattack`` installs ``pyautoattack``; and ``robustbench.eval.benchmark`` calls the older
``AutoAttack(..., log_path=...)`` / ``run_standard_evaluation(x, y, bs=...)`` API. :func:`import_robustbench`
aliases the module names and puts :class:`LegacyAutoAttack` in place of ``robustbench.eval.AutoAttack``.
Nothing else of robustbench is changed.

``import robustbench_labelaug`` calls :func:`install_import_hooks`, so that a plain
``from robustbench.utils import load_model`` works afterwards: a finder on ``sys.meta_path`` answers
``import autoattack`` / ``autoattack.<sub>`` with the already-installed ``pyautoattack`` modules (imported only
then: lazy), and puts the adapter in place as soon as ``robustbench.eval`` is imported. Installing twice does
nothing (idempotent).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ALIAS, TARGET = "autoattack", "pyautoattack"
RB_EVAL_MODULE = "robustbench.eval"


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
    """``autoattack*`` -> ``pyautoattack*``; the AutoAttack adapter right after ``robustbench.eval`` executes."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname == ALIAS or fullname.startswith(ALIAS + "."):
            real = TARGET + fullname[len(ALIAS):]
            if importlib.util.find_spec(real) is None:
                return None
            return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real),
                                                  is_package=fullname == ALIAS)
        if fullname == RB_EVAL_MODULE:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            exec_module = spec.loader.exec_module

            def exec_then_patch(module) -> None:
                exec_module(module)
                module.AutoAttack = LegacyAutoAttack

            spec.loader.exec_module = exec_then_patch
            return spec
        return None


def install_import_hooks() -> None:
    """Make ``import robustbench`` work from now on (idempotent, imports nothing until robustbench is imported).
    If robustbench.eval is already imported, the adapter is put in place at once."""
    if not any(isinstance(f, _RobustbenchImportHooks) for f in sys.meta_path):
        sys.meta_path.insert(0, _RobustbenchImportHooks())
    if RB_EVAL_MODULE in sys.modules:
        sys.modules[RB_EVAL_MODULE].AutoAttack = LegacyAutoAttack


class LegacyAutoAttack:
    """The AutoAttack constructor and ``run_standard_evaluation`` signature that robustbench 1.1.1 calls,
    delegating to pyautoattack 0.2.0 (same attacks, same defaults)."""

    def __init__(self, model: torch.nn.Module, norm: str = "Linf", eps: float = 0.3, version: str = "standard",
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
