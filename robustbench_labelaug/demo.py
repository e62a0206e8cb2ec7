"""``rbla demo``: the main job on the embedded digits data, offline on a CPU.

Trains ``digits_std``, ``digits_adv`` and ``digits_adv_plus`` with their zoo recipes (the paper's recipe scaled to
digits), exports them into the zoo's checkpoint layout so ``load_model("digits_adv_plus")`` works afterwards,
evaluates them with the packaged ``digits`` config (clean and class-wise error, PGD-40 in the sound and the paper
protocol, PGD-40 + AutoAttack (AutoAttack only on the points PGD-40 leaves), generated-corruption mCE,
gradient-masking checks), and writes the model_info JSONs, the leaderboard and the plots. Every stage resumes: re-running skips finished training epochs and splits.
``--seeds N`` repeats training with N seeds and reports means with 95 % confidence intervals.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from .errors import UserError

HELP = "the embedded demo: train, evaluate and rank Std / Adv / Adv+ on the digits data"
DEMO_MODELS = ("digits_std", "digits_adv", "digits_adv_plus")
FAST_EPOCHS = 2


def seed_metrics(info: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """key -> (label, value) of a model_info's numeric headline errors, as its evaluators declare them
    (``Evaluator.headline``: the ones the summary line shows, in %)."""
    from .leaderboard.model_info import stored_headlines

    values = stored_headlines(info)
    return {k: (h.label, float(h.value)) for k, h in values.items()
            if h.show and h.unit == "%" and isinstance(h.value, (int, float)) and not isinstance(h.value, bool)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="rbla_demo", metavar="DIR",
                        help="runs, evaluation results, leaderboard and plots (default rbla_demo; rbla_demo-fast "
                             "with --fast)")
    parser.add_argument("--model-dir", default=None, metavar="DIR",
                        help="where the checkpoints are exported for load_model (default ./models, load_model's "
                             "default; <output>/models with --fast, so a smoke run never replaces them)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="train every model with N seeds and report means with 95%% CIs")
    parser.add_argument("--fast", action="store_true",
                        help=f"smoke run: {FAST_EPOCHS} epochs per model, the config's fast evaluation settings")
    parser.add_argument("--device", default=None, help="cpu, cuda or auto (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _train_args(name: str, seed_index: int, out: Path, fast: bool, progress: bool, device: str | None):
    """The entry's recipe as ``rbla train`` arguments, redirected into the demo's folder."""
    from .zoo import get_entry
    from .zoo.entries import parse_recipe

    args = parse_recipe(get_entry(name).recipe, name)
    args.seed += seed_index
    args.output = str(out / "train")
    args.experiment = name if seed_index == 0 else f"{name}_seed{seed_index}"
    args.no_progress = not progress
    args.log_interval = 0
    args.device = None if device in (None, "auto") else device
    if fast:
        args.epochs = min(args.epochs, FAST_EPOCHS)
    return args


def train_or_resume(args) -> Path:
    """Train the run, continue it from its last checkpoint, or skip it when it is finished; return its checkpoint."""
    from .train import read_checkpoint, train

    last = Path(args.output) / args.experiment / "last.pth.tar"
    if last.exists():
        state = read_checkpoint(last)
        if state["args"].get("epochs") != args.epochs:
            raise UserError(f"{last} was trained for {state['args'].get('epochs')} epochs, this demo trains "
                            f"{args.epochs}: use another --output (or delete {last.parent})")
        if int(state["epoch"]) + 1 >= args.epochs:
            print(f"  {args.experiment}: finished run found ({last}), skipping")
            return last
        args.resume = str(last)
    return train(args).checkpoint


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its t-distribution confidence interval (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    from scipy.stats import t

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n))


def seeds_table(infos: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: mean ± 95 % CI over seeds of the headline errors, one row per training mode."""
    n = min(len(v) for v in infos.values())
    per_run = {name: [seed_metrics(info) for info in runs] for name, runs in infos.items()}
    columns: dict[str, str] = {}  # key -> label, in the order the evaluators declare them
    for runs in per_run.values():
        for metrics in runs:
            for key, (label, _) in metrics.items():
                columns.setdefault(key, label)
    header = ["model", *columns.values()]
    lines = [f"Mean ± 95 % CI (t-distribution) over {n} seeds; errors in %.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, runs in per_run.items():
        cells = [name]
        for key in columns:
            values = [m[key][1] for m in runs if key in m]
            if not values:
                cells.append("–")
                continue
            mean, half = mean_ci(values)
            cells.append(f"{mean:.2f} ± {half:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def adv_plus_vs_adv(infos: dict[str, dict[str, Any]]) -> list[str]:
    """Plain-language comparison of what was measured (whatever it shows)."""
    adv, plus = seed_metrics(infos["digits_adv"]), seed_metrics(infos["digits_adv_plus"])
    lines = []
    for key, (label, a) in adv.items():
        if key not in plus:
            continue
        b = plus[key][1]
        verdict = "lower (better)" if b < a else "higher (worse)" if b > a else "equal"
        lines.append(f"  {label:32s} Adv {a:6.2f}   Adv+ {b:6.2f}   -> Adv+ {verdict}")
    return lines


def main(args: argparse.Namespace) -> int:
    from .fileio import atomic_write_bytes
    from .leaderboard.cli import render
    from .leaderboard.model_info import load_model_info
    from .runner import ModelConfig, evaluate_config, load_config
    from .zoo import export_checkpoint, get_entry

    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {args.seeds}")
    started = time.perf_counter()
    out = Path(args.output + ("-fast" if args.fast and args.output == "rbla_demo" else ""))
    model_dir = Path(args.model_dir) if args.model_dir else (out / "models" if args.fast else Path("./models"))
    progress = not args.no_progress
    eps = get_entry("digits_adv_plus").eps
    print(f"rbla demo: scikit-learn digits (1437 train / 360 test, 32x32, K=10), resnet8_tiny; threat model L-inf "
          f"eps = {eps} in [0,1] pixel units (chosen so digits is non-trivial: at 0.03 adversarial training keeps "
          f"~94 % under PGD-40, at {eps} about half); {args.seeds} seed(s){', fast smoke run' if args.fast else ''}")

    print("1/3 training (zoo recipes: PGD-10 adversarial training, Adv+ adds label augmentation, delta 0.03, M 1)")
    checkpoints: dict[str, list[Path]] = {name: [] for name in DEMO_MODELS}
    for seed_index in range(args.seeds):
        for name in DEMO_MODELS:
            train_args = _train_args(name, seed_index, out, args.fast, progress, args.device)
            print(f"  {train_args.experiment}: {train_args.epochs} epochs, seed {train_args.seed}")
            checkpoints[name].append(train_or_resume(train_args))
    for name in DEMO_MODELS:
        exported = export_checkpoint(checkpoints[name][0], name, model_dir)
        print(f"  exported {name} -> {exported.path} (sha256 {exported.sha256[:12]}...)")

    print("2/3 evaluation (packaged config 'digits'; sound protocol unless named 'paper protocol')")
    cfg = load_config("digits")
    cfg.runtime.model_dir = str(model_dir)
    eval_dir = out / "eval"
    evaluate_config(cfg, output=eval_dir, fast=args.fast, device=args.device, progress=progress, plots=False,
                    leaderboard=False)
    seed_infos = {name: [load_model_info(eval_dir / "model_info" / f"{name}.json")] for name in DEMO_MODELS}
    if args.seeds > 1:
        cfg.models = [ModelConfig(key=f"{name}_seed{s}", checkpoint=str(checkpoints[name][s]), dataset="digits")
                      for s in range(1, args.seeds) for name in DEMO_MODELS]
        evaluate_config(cfg, output=out / "eval_seeds", fast=args.fast, device=args.device, progress=progress,
                        plots=False, leaderboard=False)
        for s in range(1, args.seeds):
            for name in DEMO_MODELS:
                seed_infos[name].append(load_model_info(out / "eval_seeds" / "model_info" / f"{name}_seed{s}.json"))

    print("3/3 leaderboard and plots")
    board = render(eval_dir, html=eval_dir / "leaderboard.html", plots=True, title=cfg.title, quiet=True)
    print(board["markdown"])
    if args.seeds > 1:
        table = seeds_table(seed_infos)
        atomic_write_bytes(out / "seeds.md", table.encode())
        print(table)
    print("Adv+ vs Adv, as measured here (seed 0; the paper reports Adv+ better on robust error and class-wise SD):")
    print("\n".join(adv_plus_vs_adv({name: runs[0] for name, runs in seed_infos.items()})))
    print(f"\nwrote {eval_dir / 'leaderboard.md'}, {eval_dir / 'leaderboard.html'}, plots in {eval_dir / 'plots'}")
    print(f"load_model('digits_adv_plus', model_dir='{model_dir}') now returns the trained K-way classifier")
    print(f"wall time {time.perf_counter() - started:.0f} s")
    return 0
