"""The class-wise-fair training methods Adv+ is compared with, as policies that set the class-wise epsilon, loss
weights and TRADES beta of the training objective between epochs (``rbla train --fair {none,cfa,frl}``), plus
TRADES itself (``--adv-mode trades``). See docs/methods.md for what each does and how it differs from its
authors' code."""

from __future__ import annotations

from ..errors import UserError
from ..results.vocab import Fair
from .cfa import CFA_PARTS, CFAPolicy, cfa_class_beta, cfa_class_eps
from .fawa import FAWA
from .frl import FRL_MODES, FRLPolicy
from .policy import EpochStats, FairPolicy
from .stats import ClassCounts
from .trades import TradesLoss, trades_attack

POLICIES: dict[str, type[FairPolicy]] = {Fair.NONE: FairPolicy, Fair.CFA: CFAPolicy, Fair.FRL: FRLPolicy}


def create_policy(name: str, num_classes: int, eps: float, beta: float = 6.0, **options) -> FairPolicy:
    """A policy by name (``none``, ``cfa``, ``frl``) with its options (see each class)."""
    if name not in POLICIES:
        raise UserError(f"unknown fairness policy '{name}': use one of {', '.join(POLICIES)}")
    return POLICIES[name](num_classes, eps, beta, **options)


__all__ = ["CFA_PARTS", "CFAPolicy", "ClassCounts", "EpochStats", "FAWA", "FRL_MODES", "FRLPolicy", "FairPolicy",
           "POLICIES", "TradesLoss", "cfa_class_beta", "cfa_class_eps", "create_policy", "trades_attack"]
