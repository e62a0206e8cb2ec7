"""Adv+ training step through ``AdvLabelAug`` (torchattacks PGD) vs a minimal hand-written PGD-10 step.

Same model, batch and seed, measured alternately in one process; prints per-step medians and the median ratio
(target <= 1.05), the attack-only ratio, and stock ``torchattacks.PGD`` against the same hand-written attack: the
per-call overhead that the hook's ``attacks.PGD`` (torchattacks PGD with a fused in-place projection) removes.

    python bench/hook_overhead.py [--model resnet8_tiny] [--batch-size 64] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
import torchattacks
from timm.loss import SoftTargetCrossEntropy

from robustbench_labelaug import AdvLabelAug, create_classifier, k_way, label_aug_targets
from robustbench_labelaug.results.rules import default_alpha


def hand_pgd(model, x, y, k, eps, alpha, steps):
    """Minimal PGD: eval mode, random start, sign steps on the K-way loss, projection and clipping."""
    model.eval()
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv)[:, :k], y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = (x + (x_adv.detach() + alpha * grad.sign() - x).clamp(-eps, eps)).clamp(0, 1)
    model.train()
    return x_adv.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet8_tiny")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--eps", type=float, default=0.03)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="also write the numbers as JSON (docs/data/bench/hook_overhead.json is what the docs' "
                             "benchmark table is rendered from: python tools/docs_render.py)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    k, m = 10, 1
    torch.manual_seed(0)
    # one model and optimizer for both sides: the cost of a step does not depend on the weights' values, and
    # separate copies would differ in memory placement
    model_a = model_b = create_classifier(args.model, k, m)
    opt_a = opt_b = torch.optim.SGD(model_a.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(args.batch_size, 3, args.input_size, args.input_size)
    y = torch.randint(0, k, (args.batch_size,))
    alpha = default_alpha(args.eps, args.steps)
    # every row adversarial, as the hand-written step's batch (the authors' protocol varies the batch per step)
    hook = AdvLabelAug(model_a, k, mode="adv_plus", eps=args.eps, steps=args.steps, num_ops=m,
                       protocol="adversarial")
    loss_fn = SoftTargetCrossEntropy()

    def step_hook():
        model_a.train()
        xa, t = hook(x, y)
        loss = loss_fn(model_a(xa), t)
        opt_a.zero_grad(set_to_none=True)
        loss.backward()
        opt_a.step()

    def step_hand():
        model_b.train()
        xa = hand_pgd(model_b, x, y, k, args.eps, alpha, args.steps)
        t = label_aug_targets(y, k, 0, m, 0.03)
        loss = torch.sum(-t * F.log_softmax(model_b(xa), dim=-1), dim=-1).mean()
        opt_b.zero_grad(set_to_none=True)
        loss.backward()
        opt_b.step()

    def attack_hook():
        hook(x, y)

    def attack_hand():
        hand_pgd(model_b, x, y, k, args.eps, alpha, args.steps)

    stock = torchattacks.PGD(k_way(model_a), eps=args.eps, alpha=alpha, steps=args.steps)

    def attack_stock():
        model_a.train()
        stock(x, y)

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    results = {}
    pairs = (("train step", step_hook, step_hand), ("attack only", attack_hook, attack_hand),
             ("stock torchattacks.PGD", attack_stock, attack_hand))
    for label, a, b in pairs:
        for _ in range(args.warmup):
            a(), b()
        ta, tb, ratios = [], [], []
        for i in range(args.repeats):
            if i % 2 == 0:
                t1, t2 = timed(a), timed(b)
            else:
                t2, t1 = timed(b), timed(a)
            ta.append(t1)
            tb.append(t2)
            ratios.append(t1 / t2)
        results[label] = (statistics.median(ta), statistics.median(tb), statistics.median(ratios))

    print(f"model {args.model}, batch {args.batch_size}x3x{args.input_size}x{args.input_size}, PGD-{args.steps}, "
          f"{args.repeats} alternating repeats, torch threads {torch.get_num_threads()}")
    for label, (ta, tb, ratio) in results.items():
        print(f"{label:22s} {ta * 1e3:8.1f} ms   hand-written {tb * 1e3:8.1f} ms   median ratio {ratio:.3f}")
    print(f"target: train-step ratio <= 1.05 -> {'met' if results['train step'][2] <= 1.05 else 'NOT met'}")
    if args.json:
        import json
        from datetime import datetime, timezone

        record = {"script": "bench/hook_overhead.py",
                  "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                  "settings": {"model": args.model, "batch_size": args.batch_size, "input_size": args.input_size,
                               "steps": args.steps, "repeats": args.repeats,
                               "torch_threads": torch.get_num_threads()},
                  "results": {label: {"ms": ta * 1e3, "hand_written_ms": tb * 1e3, "median_ratio": ratio}
                              for label, (ta, tb, ratio) in results.items()},
                  "target": {"train_step_ratio_at_most": 1.05, "met": results["train step"][2] <= 1.05}}
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
