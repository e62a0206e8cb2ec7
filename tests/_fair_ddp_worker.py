"""Worker of tests/test_fair.py's 2-process gloo test: per-class statistics all-reduced, the CFA policy and the
validation split's class-wise accuracy identical on both ranks, and a DDP TRADES step (two forward passes, one
backward) leaves both ranks with the same weights."""

from __future__ import annotations

import torch


def work(rank: int) -> dict:
    """This rank's part; what it returns is saved as rank<r>.pt."""
    from robustbench_labelaug import create_classifier
    from robustbench_labelaug.data import create_dataset
    from robustbench_labelaug.data.holdout import carve_validation
    from robustbench_labelaug.fair import CFAPolicy, ClassCounts, EpochStats, TradesLoss
    from robustbench_labelaug.fair.validation import classwise_validation
    from robustbench_labelaug.train.engine import train_one_epoch

    counts = ClassCounts(3)  # rank 0 sees classes 0, 1; rank 1 sees 1, 2
    if rank == 0:
        counts.update(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 0, 1, 1]))
    else:
        counts.update(torch.tensor([1, 2, 2, 0]), torch.tensor([1, 2, 2, 2]))
    acc = counts.all_reduce().accuracy()
    policy = CFAPolicy(3, eps=0.1, begin=0, parts=("ccm",))
    policy.end_epoch(0, EpochStats(train_robust=acc))
    eps = policy.class_params(1, trades=False)["class_eps"]

    torch.manual_seed(0)
    model = create_classifier("resnet8_tiny", 10, 0).eval()
    train = create_dataset("digits", split="train")
    _, holdout, _ = carve_validation(train, train, 0.05, seed=0)
    torch.manual_seed(rank)  # different PGD starts per rank: counts still sum over the disjoint shares
    clean, robust = classwise_validation(model, holdout, 10, eps=0.1, steps=0, device=torch.device("cpu"))

    torch.manual_seed(0)
    net = create_classifier("resnet8_tiny", 10, 0)
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    trades = TradesLoss(net, 10, eps=0.1, steps=2, beta=6.0)
    x, y = train.tensors[0][rank * 8:(rank + 1) * 8], train.tensors[1][rank * 8:(rank + 1) * 8]
    stats = ClassCounts(10)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    train_one_epoch(0, ddp, [(x, y)], opt, None, None, torch.device("cpu"), progress=False, trades=trades,
                    class_stats=stats)
    return {"acc": acc, "eps": eps, "clean_correct": clean.correct, "clean_total": clean.total,
                "weights": {k: v.detach().clone() for k, v in net.named_parameters()}, "local_total": stats.total}


if __name__ == "__main__":
    from _gloo import run_worker  # the tests folder is this script's folder

    run_worker(work)
