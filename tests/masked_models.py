"""Deliberately gradient-masked wrappers of a classifier, shared by the masking and margin-attack tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Round(nn.Module):
    """8-bit quantisation without a straight-through estimator: the forward pass is (almost) the identity, the
    gradient is exactly zero (Athalye et al.'s shattered gradients)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 255) / 255


class Scaled(nn.Module):
    """Logits times ``factor``: same predictions, a softmax that saturates (partial masking of the CE loss)."""

    def __init__(self, net: nn.Module, factor: float) -> None:
        super().__init__()
        self.net, self.factor = net, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * self.net(x)


class Detached(nn.Module):
    """Logits cut from the autograd graph: no gradient reaches the input."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).detach()


class OneHot(nn.Module):
    """Non-differentiable logits: the one-hot of the prediction."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.one_hot(self.net(x).argmax(1), 10).float()


class InputIgnored(nn.Module):
    """Logits that require grad through the parameters but not through the input."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.detach())
