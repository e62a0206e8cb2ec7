"""Which minimal-norm L-inf attack finds the smaller radii on our digits models: pyautoattack's FAB (untargeted,
and with FAB-T's targets) or adv-lib's FMN, on the same examples. Prints, per model and attack, the median and
mean verified radius (each candidate checked misclassified, then bisected to the boundary:
``attacks/min_norm.py``), how many examples each attack breaks at a smaller radius than the others, and the time.
The ``robustness_curve`` evaluator's default attack is the one that wins here.

Models: ``--model-dir DIR`` loads the zoo's digits checkpoints found there (digits_std, digits_adv, digits_adv_plus,
...: ``rbla demo`` writes them); otherwise a clean tiny model (2 epochs) and a quickly PGD-trained one are
trained here (a few epochs, CPU).

    python bench/min_norm_attacks.py [--n-examples 100] [--steps 100] [--targets 3] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from robustbench_labelaug import k_way
from robustbench_labelaug.attacks import PGD
from robustbench_labelaug.attacks.min_norm import minimal_radii
from robustbench_labelaug.data import create_dataset
from robustbench_labelaug.evaluation.selection import select_examples
from robustbench_labelaug.models.tiny_resnet import train_tiny_digits


def adversarially_trained(epochs: int, eps: float) -> torch.nn.Module:
    """resnet8_tiny after clean warm-up and ``epochs`` of PGD-5 adversarial training at ``eps`` (digits)."""
    model = train_tiny_digits(2, shuffle=True)
    x, y = create_dataset("digits", split="train").tensors
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    torch.manual_seed(1)
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for i in range(0, len(y) - 63, 64):
            b = order[i:i + 64]
            model.eval()
            adv = PGD(k_way(model, 10), eps=eps, alpha=eps / 2, steps=5)(x[b], y[b])
            model.train()
            loss = F.cross_entropy(model(adv)[:, :10], y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def models(args) -> dict[str, torch.nn.Module]:
    if args.model_dir:
        from robustbench_labelaug import load_model

        found = {}
        for name in ("digits_std", "digits_adv", "digits_adv_plus", "digits_trades", "digits_frl"):
            if (Path(args.model_dir) / "digits" / "Linf" / f"{name}.pt").exists():
                found[name] = k_way(load_model(name, model_dir=args.model_dir), 10).eval()
        if found:
            return found
        print(f"no digits checkpoints in {args.model_dir}: training small models here")
    return {"clean (2 epochs)": k_way(train_tiny_digits(2, shuffle=True), 10).eval(),
            f"PGD-trained ({args.adv_epochs} epochs, eps {args.train_eps})":
                k_way(adversarially_trained(args.adv_epochs, args.train_eps), 10).eval()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-examples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--targets", type=int, default=3, help="FAB-T: how many target classes")
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--adv-epochs", type=int, default=4)
    parser.add_argument("--train-eps", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    test = create_dataset("digits", split="test")
    idx = select_examples(test, args.n_examples, "class_balanced")
    x, y = test.tensors[0][idx], test.tensors[1][idx]
    attacks = {"FAB": {"attack": "fab"}, f"FAB + FAB-T({args.targets})": {"attack": "fab", "targets": args.targets},
               "FMN": {"attack": "fmn"}}
    for name, model in models(args).items():
        print(f"\n{name}: {len(y)} digits test examples (class-balanced), {args.steps} steps")
        radii = {}
        for label, kw in attacks.items():
            start = time.perf_counter()
            r, _ = minimal_radii(model, x, y, steps=args.steps, **kw)
            radii[label] = r
            finite = r[torch.isfinite(r)].tolist()
            print(f"  {label:<18} median {statistics.median(r.tolist()):.4f}  mean(finite) "
                  f"{statistics.fmean(finite) if finite else float('nan'):.4f}  not broken {int((~torch.isfinite(r)).sum())}"
                  f"  time {time.perf_counter() - start:.1f} s")
        labels = list(radii)
        best = torch.stack([radii[k] for k in labels]).min(0).values
        for label in labels:
            wins = int(((radii[label] <= best * (1 + 1e-4)) & (radii[label] > 0)).sum())
            strictly = int(sum(bool(radii[label][i] < min(radii[o][i] for o in labels if o != label) * (1 - 1e-3))
                               for i in range(len(y))))
            print(f"  {label:<18} within 0.01 % of the best on {wins}, smallest by > 0.1 % on {strictly}")
        ratio = statistics.median((radii["FMN"] / radii["FAB"])[(radii["FAB"] > 0) & torch.isfinite(radii["FAB"])
                                                                  & torch.isfinite(radii["FMN"])].tolist())
        print(f"  median per-example FMN / FAB radius ratio: {ratio:.4f}")


if __name__ == "__main__":
    main()
