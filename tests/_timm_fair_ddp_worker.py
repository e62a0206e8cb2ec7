"""Worker of tests/test_timm_fair.py's 2-process gloo test: the class-wise side of rbla timm-train
(``TimmClassWise``) on two ranks with different training counts and different BatchNorm statistics."""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.data import Dataset

K = 5
DATA_CONFIG = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


class Pixels(Dataset):
    """40 fixed [0,1] images, 8 per class (the same on every rank)."""

    transform = None

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.y = torch.arange(40) % K
        shade = (self.y.float() / K)[:, None, None, None] * torch.tensor([1.0, 0.5, 0.0])[None, :, None, None]
        self.x = (0.2 * torch.rand(40, 3, 32, 32, generator=g) + 0.8 * shade).clamp(0, 1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def small_bn_net() -> nn.Module:
    """Conv, BatchNorm, pooling, linear: its predictions move with the BatchNorm statistics."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, K))
    with torch.no_grad():  # a head that follows the features (not its biases)
        net[-1].weight.normal_(0.0, 3.0)
        net[-1].bias.zero_()
    return net


def set_statistics(model: nn.Module, rank: int) -> None:
    """Rank r's BatchNorm statistics: mean r, variance 1 + 4r (rank 0: 0 and 1)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.fill_(float(rank))
                m.running_var.fill_(1.0 + 4.0 * rank)


def work(rank: int) -> dict:
    """This rank's part; what it returns is saved as rank<r>.pt."""
    from robustbench_labelaug import AdvLabelAug
    from robustbench_labelaug.timm_train.fair import FairSettings, IndexedView, TimmClassWise

    model = small_bn_net()
    set_statistics(model, rank)  # each rank's own statistics, as after an epoch of DDP training
    own = {k: v.clone() for k, v in model.state_dict().items()}
    hook = AdvLabelAug(model, K, mode="adv", eps=0.1, steps=1)
    tracker = TimmClassWise(FairSettings("frl", {}, 0.2, 0))
    tracker.holdout = IndexedView(Pixels(), range(40))
    args = argparse.Namespace()
    tracker.begin_epoch(0, hook, args, DATA_CONFIG)
    if rank == 0:  # rank 0 sees classes 0, 1; rank 1 sees 1, 2 (all-reduced: class 0 1/1, 1 2/3, 2 1/2)
        tracker.counts.update(torch.tensor([0, 2, 1]), torch.tensor([0, 1, 1]))
    else:
        tracker.counts.update(torch.tensor([1, 0, 2]), torch.tensor([1, 2, 2]))
    metrics: dict = {}
    tracker.end_epoch(0, model, args, metrics, DATA_CONFIG, None)
    return {"lmb": tracker.policy.lmb, "metrics": metrics, "eval": tracker.eval_columns,
            "own_kept": all(torch.equal(v, own[k]) for k, v in model.state_dict().items())}


if __name__ == "__main__":
    from _gloo import run_worker  # the tests folder is this script's folder

    run_worker(work)
