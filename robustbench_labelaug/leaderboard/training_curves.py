"""Per-class training curves of ``rbla train`` runs (issue 20): from a run's ``summary.csv``, one figure per run,
``<run>/plots/training_curves.png``, with a panel per per-class series it holds:

- training-batch robust accuracy per class (``train_robust_top1_c<k>``, measured on the adversarial examples the
  training step made) with the worst class bold;
- the held-out validation split's class-wise clean and PGD accuracy (``eval_holdout_top1_c<k>``,
  ``eval_holdout_pgd_top1_c<k>``), when the run had ``--val-split``;
- the class-wise epsilon factors a ``--fair`` policy trained with (``train_eps_factor_c<k>``).

``rbla leaderboard --plots DIR`` draws them when DIR is a training run folder or holds run folders."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from ..fileio import atomic_savefig, output_locks

SERIES = (("train_robust_top1", "training batches: robust accuracy per class (%)"),
          ("eval_holdout_top1", "validation split: clean accuracy per class (%)"),
          ("eval_holdout_pgd_top1", "validation split: PGD accuracy per class (%)"),
          ("train_eps_factor", "class-wise eps / eps (policy)"))


def training_runs(folder: str | Path) -> list[Path]:
    """``folder`` itself if it holds a ``summary.csv``, else its sub-folders that do (sorted)."""
    folder = Path(folder)
    if (folder / "summary.csv").is_file():
        return [folder]
    return sorted(p.parent for p in folder.glob("*/summary.csv"))


def read_summary(path: str | Path) -> dict[str, list[float]]:
    """``summary.csv`` as columns of floats (NaN for empty or non-numeric cells)."""
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    out: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            out.setdefault(key, []).append(number)
    return out


def plot_training_curves(run: str | Path) -> Path | None:
    """Draw ``run/plots/training_curves.png``; None when its summary has no per-class columns."""
    from matplotlib.figure import Figure

    run = Path(run)
    cols = read_summary(run / "summary.csv")
    epochs = cols.get("epoch", [])
    panels = []
    for prefix, title in SERIES:
        per_class = sorted((int(m.group(1)), k) for k in cols if (m := re.fullmatch(rf"{prefix}_c(\d+)", k)))
        if per_class:
            panels.append((prefix, title, per_class))
    if not panels or not epochs:
        return None
    fig = Figure(figsize=(7, 2.6 * len(panels)), dpi=100, layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (prefix, title, per_class) in zip(axes, panels):
        for k, key in per_class:
            ax.plot(epochs, cols[key], color=f"C{k % 10}", lw=1, alpha=0.8, label=str(k))
        if f"{prefix}_worst" in cols:
            ax.plot(epochs, cols[f"{prefix}_worst"], color="black", lw=2.2, label="worst")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=min(6, len(panels[0][2]) + 1), title="class", title_fontsize=7)
    fig.suptitle(f"{run.name}: per-class training curves", fontsize=10)
    path = run / "plots" / "training_curves.png"
    with output_locks([path], "training curves"):
        return atomic_savefig(fig, path)


def plot_training_folder(folder: str | Path) -> list[Path]:
    """Training curves of every run in ``folder`` (see :func:`training_runs`)."""
    return [p for run in training_runs(folder) if (p := plot_training_curves(run)) is not None]
