"""Make robustbench 1.1.1 importable and its ``benchmark()`` runnable with pyautoattack 0.2.0.

robustbench imports the module ``autoattack`` (the name of the original AutoAttack repository), while its PyPI
dependency ``pyautoattack`` installs ``pyautoattack``; and ``robustbench.eval.benchmark`` calls the older
``AutoAttack(..., log_path=...)`` / ``run_standard_evaluation(x, y, bs=...)`` API. :func:`import_robustbench`
aliases the module names and puts :class:`LegacyAutoAttack` in place of ``robustbench.eval.AutoAttack``.
Nothing else of robustbench is changed.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pyautoattack
import pyautoattack.state
import torch


def _alias_autoattack() -> None:
    if "autoattack" not in sys.modules:
        sys.modules["autoattack"] = pyautoattack
    sys.modules.setdefault("autoattack.state", pyautoattack.state)


class LegacyAutoAttack:
    """The AutoAttack constructor and ``run_standard_evaluation`` signature that robustbench 1.1.1 calls,
    delegating to pyautoattack 0.2.0 (same attacks, same defaults)."""

    def __init__(self, model: torch.nn.Module, norm: str = "Linf", eps: float = 0.3, version: str = "standard",
                 device: str | torch.device = "cpu", log_path: str | None = None, seed: int | None = None,
                 attacks_to_run: list[str] | None = None, verbose: bool = True) -> None:
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
