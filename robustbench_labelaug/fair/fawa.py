"""Fairness-aware weight averaging (FAWA, Wei et al., CVPR 2023): an exponential moving average of the weights
that takes in an epoch's weights only when that epoch's worst-class robust accuracy on a held-out validation
split reaches a threshold.

``avg <- decay * avg + (1 - decay) * w`` (decay 0.88, threshold 0.24 as in PKU-ML/CFA); the first epoch that
passes the gate copies the weights (the reference's ``weight_average(..., init=True)``). Every entry of the state
dict is averaged, BatchNorm running statistics included, as in the reference; integer buffers
(``num_batches_tracked``) take the current model's value (the reference averages them in float and truncates).
"""

from __future__ import annotations

from typing import Any

import torch


class FAWA:
    """``update(model_state, worst_class_acc)`` after each epoch's validation; ``state`` is the averaged state
    dict, or None before the gate first opened."""

    def __init__(self, decay: float = 0.88, threshold: float = 0.24) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"FAWA decay must lie in [0, 1), got {decay}")
        self.decay = float(decay)
        self.threshold = float(threshold)
        self.state: dict[str, torch.Tensor] | None = None
        self.updates = 0
        self.last_value: float | None = None  # the last epoch's gate value (worst-class validation robust accuracy)
        self.last_opened = False
        self.best_value: float | None = None  # the highest gate value seen: why no average was written, if none

    def gate(self, worst_class_acc: float) -> bool:
        """Does this epoch enter the average? (worst-class validation robust accuracy >= threshold)"""
        return float(worst_class_acc) >= self.threshold

    def update(self, model_state: dict[str, torch.Tensor], worst_class_acc: float) -> bool:
        """Fold ``model_state`` into the average if the gate opens; returns whether it did."""
        value = float(worst_class_acc)
        self.last_value, self.last_opened = value, self.gate(value)
        self.best_value = value if self.best_value is None else max(self.best_value, value)
        if not self.last_opened:
            return False
        new = {k: v.detach().clone().cpu() for k, v in model_state.items()}
        if self.state is None:
            self.state = new
        else:
            for key, value in new.items():
                if value.is_floating_point():
                    self.state[key].mul_(self.decay).add_(value, alpha=1.0 - self.decay)
                else:
                    self.state[key] = value
        self.updates += 1
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "threshold": self.threshold, "updates": self.updates, "state": self.state,
                "best_value": self.best_value}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.decay, self.threshold = float(saved["decay"]), float(saved["threshold"])
        self.updates = int(saved["updates"])
        self.best_value = saved.get("best_value")  # absent in checkpoints written before it was kept
        self.state = None if saved["state"] is None else {k: v.clone() for k, v in saved["state"].items()}
