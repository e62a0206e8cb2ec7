"""The PGD-40 evaluator (``create_evaluator("pgd")``: EarlyStopPGD, sound protocol) against a plain evaluation
loop with ``torchattacks.PGD(steps=40)``: same model, data, batches and per-example random starts, measured
alternately in one process. Prints both robust accuracies (the evaluator's must be equal or lower: same
per-example random starts and iterates, and a point counts as broken if any iterate fools it) and the median
speed ratio (target >= 3x).

The speed-up comes from not attacking misclassified points and dropping points once fooled, so it grows with
the share of points that break early: the printed "work bound" is torchattacks' forward/backward count over the
evaluator's, the ratio to expect when per-call overheads vanish.

    python bench/pgd_eval.py [--epochs 2] [--eps 0.03] [--n-examples 360] [--batch-size 128] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchattacks
from torch.utils.data import TensorDataset

from robustbench_labelaug import k_way
from robustbench_labelaug.attacks import EarlyStopPGD, example_starts
from robustbench_labelaug.data import create_dataset
from robustbench_labelaug.evaluation import EvalContext, create_evaluator
from robustbench_labelaug.models.tiny_resnet import train_tiny_digits
from robustbench_labelaug.results.rules import default_alpha


class _GivenStart:
    """Stands in for ``torch.empty_like(x)`` in torchattacks.PGD's random start: ``uniform_`` returns the
    evaluator's per-example start instead of a fresh draw, so both sides attack from the same points."""

    def __init__(self, start: torch.Tensor) -> None:
        self.start = start

    def uniform_(self, *_) -> torch.Tensor:
        return self.start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2, help="clean training epochs of the digits model")
    parser.add_argument("--eps", type=float, default=0.03)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--n-examples", type=int, default=360, help="digits test images (at most 360)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="also write the numbers as JSON (docs/data/bench/pgd_eval_eps<eps>.json are what the "
                             "docs' benchmark table is rendered from: python tools/docs_render.py)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = train_tiny_digits(args.epochs, seed=0)
    x, y = (t[: args.n_examples] for t in create_dataset("digits", split="test").tensors)
    dataset = TensorDataset(x, y)
    ctx = EvalContext(num_classes=10, batch_size=args.batch_size, progress=False, seed=args.seed)
    alpha = default_alpha(args.eps, args.steps)
    evaluator = create_evaluator("pgd", eps=args.eps, steps=args.steps)
    classifier = k_way(model).eval()
    stock = torchattacks.PGD(classifier, eps=args.eps, alpha=alpha, steps=args.steps)

    def run_evaluator() -> float:
        return 100.0 - evaluator.run(model, dataset, ctx).metrics["robust_error"]

    starts = example_starts(x, args.eps, args.seed, torch.arange(len(y)))  # the evaluator's random starts
    empty_like = torch.empty_like

    def run_torchattacks() -> float:
        correct = 0
        for start in range(0, len(y), args.batch_size):
            xb, yb = x[start:start + args.batch_size], y[start:start + args.batch_size]
            given = _GivenStart(starts[start:start + args.batch_size])
            torch.empty_like = (lambda t, *a, _g=given, _s=xb.shape, **kw:
                                _g if t.shape == _s else empty_like(t, *a, **kw))
            try:
                adv = stock(xb, yb)
            finally:
                torch.empty_like = empty_like
            with torch.no_grad():
                correct += int((classifier(adv).argmax(1) == yb).sum())
        return 100.0 * correct / len(y)

    def timed(fn) -> tuple[float, float]:
        start = time.perf_counter()
        acc = fn()
        return time.perf_counter() - start, acc

    for _ in range(args.warmup):
        run_evaluator(), run_torchattacks()
    t_ours, t_stock, ratios, accs = [], [], [], []
    for i in range(args.repeats):
        if i % 2 == 0:
            (ta, acc_a), (tb, acc_b) = timed(run_evaluator), timed(run_torchattacks)
        else:
            (tb, acc_b), (ta, acc_a) = timed(run_torchattacks), timed(run_evaluator)
        t_ours.append(ta)
        t_stock.append(tb)
        ratios.append(tb / ta)
        accs.append((acc_a, acc_b))

    # work bound: forward/backward passes per example, torchattacks vs EarlyStopPGD
    out = EarlyStopPGD(classifier, eps=args.eps, steps=args.steps).perturb(x, y, start=starts)
    attacked = out.clean_pred == y
    used = torch.where(out.iterate >= 0, out.iterate + 1, torch.full_like(out.iterate, args.steps + 1))[attacked]
    bound = len(y) * (args.steps + 1) / (len(y) + int(used.sum()))

    acc_ours, acc_stock = accs[0]
    not_higher = round(acc_ours * len(y) / 100) <= round(acc_stock * len(y) / 100)  # compare counts, not floats
    varied = len(set(accs)) > 1  # both sides are seeded: should not happen
    print(f"digits resnet8_tiny ({args.epochs} clean epochs), {len(y)} test images, batch {args.batch_size}, "
          f"PGD-{args.steps} eps {args.eps:g} alpha {alpha:g}, {args.repeats} alternating repeats, "
          f"torch threads {torch.get_num_threads()}")
    print(f"robust accuracy: evaluator {acc_ours:.2f} %   torchattacks.PGD {acc_stock:.2f} %   "
          f"({'equal or lower: OK' if not_higher else 'HIGHER: NOT OK'})"
          + (f"  [varied across repeats: {sorted(set(accs))}]" if varied else ""))
    print(f"median time: evaluator {statistics.median(t_ours):.3f} s   torchattacks.PGD "
          f"{statistics.median(t_stock):.3f} s   median speed ratio {statistics.median(ratios):.2f}x "
          f"(work bound {bound:.2f}x)")
    print(f"target: >= 3x faster at equal or lower robust accuracy -> "
          f"{'met' if statistics.median(ratios) >= 3 and not_higher else 'NOT met'}")
    if args.json:
        import json
        from datetime import datetime, timezone

        record = {"script": "bench/pgd_eval.py", "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                  "settings": {"eps": args.eps, "steps": args.steps, "n": len(y), "batch_size": args.batch_size,
                               "repeats": args.repeats, "torch_threads": torch.get_num_threads()},
                  "robust_accuracy": {"evaluator": acc_ours, "torchattacks": acc_stock},
                  "median_seconds": {"evaluator": statistics.median(t_ours),
                                     "torchattacks": statistics.median(t_stock)},
                  "speed_ratio": statistics.median(ratios), "work_bound": bound,
                  "target": {"speed_ratio_at_least": 3.0, "met": statistics.median(ratios) >= 3 and not_higher}}
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
