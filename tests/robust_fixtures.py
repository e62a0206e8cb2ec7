"""Models shared by the attack, robust-evaluator, masking and margin-attack tests (trained once per session or
module)."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from robustbench_labelaug.attacks import PGD
from robustbench_labelaug.models.tiny_resnet import train_tiny_digits


@lru_cache(maxsize=1)
def trained_resnet8_digits() -> nn.Module:
    """resnet8_tiny (K=10, M=1, normalisation mean = std = 0.5 inside) after 4 shuffled clean epochs on digits:
    ~95 % clean accuracy and non-trivial PGD numbers at eps 0.03 (~1-2 s on CPU). Do not modify it. Trained
    with 2 torch threads whatever the current count (CPU kernels sum in another order with another thread
    count, which changes the weights), so the model does not depend on which tests ran before."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return train_tiny_digits(4)
    finally:
        torch.set_num_threads(threads)


def train_digits_mlp(data, *, hidden: int, epochs: int, lr: float, shuffle: bool = True, pgd_from: int | None = None,
                     eps: float = 0.1, alpha: float = 0.05, steps: int = 3, batch_size: int = 64) -> nn.Module:
    """A small MLP (flatten, ``hidden`` ReLU units, 10 logits) trained by hand on ``data`` (a TensorDataset of
    3x32x32 digits): SGD with momentum 0.9, seed 0, one torch thread (tiny ops: a second thread only spins on a
    loaded machine); from epoch ``pgd_from`` on, on PGD-``steps`` examples at ``eps`` (adversarial training).
    The masking and margin-attack tests' models."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    x, y = data.tensors
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for epoch in range(epochs):
            order = torch.randperm(len(y)) if shuffle else torch.arange(len(y))
            for i in range(0, len(y), batch_size):
                b = order[i:i + batch_size]
                xb = x[b]
                if pgd_from is not None and epoch >= pgd_from:
                    net.eval()
                    xb = PGD(net, eps=eps, alpha=alpha, steps=steps)(xb, y[b])
                    net.train()
                loss = F.cross_entropy(net(xb), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


class UsersOwnModel(nn.Module):
    """A user's own module around a K+M network, [0,1] inputs: no num_classes / num_ops attributes (benchmark()
    reads K from its caller and M from the outputs; its class name is the architecture)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)
