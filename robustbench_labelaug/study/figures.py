"""A study's figures (matplotlib, written atomically through ``fileio.atomic_savefig``), drawn from study.json's
content alone (:func:`robustbench_labelaug.study.analysis.analyse`).

- :func:`tradeoff_figure`: worst-class error, class SD and the worst class's curve area against the mean robust
  error, at the study eps: one point per arm (a knob sweep's points joined by one line, in knob order), with the
  intervals of both axes; the reference's mean robust error as a dashed line (where the matched-robustness
  comparison reads every sweep);
- :func:`eps_scan_figure`: each arm's worst-class and mean robust error against eps, where arms ran at several eps
  (placing the regime)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..fileio import atomic_savefig

TITLES = {"worst": "worst-class error (%)", "sd": "class SD of the error (pp)"}


def _err(block: dict[str, Any]) -> tuple[float, list[float]]:
    """(estimate, [below, above]) of one statistic's block for an error bar (zero bars without an interval)."""
    value, ci = block["estimate"], block.get("ci")
    if not ci:
        return value, [0.0, 0.0]
    return value, [max(0.0, value - ci[0]), max(0.0, ci[1] - value)]


def _points(data: dict[str, Any], eps: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, arm) for name, arm in data["arms"].items() if eps in arm["eps"]]


def tradeoff_figure(data: dict[str, Any], measure: str, curve: str | None, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps = f"{data['study_eps']:g}"
    panels = [("worst", measure), ("sd", measure)] + ([("area", curve)] if curve else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False)
    colours = {}
    points = _points(data, eps)
    for ax, (stat, mid) in zip(axes[0], panels):
        lines: dict[str, list[tuple[float, float]]] = {}
        for _name, arm in points:
            agg = arm["eps"][eps]["aggregates"]
            x, xerr = _err(agg[measure]["mean"])
            if stat == "area":  # the worst class's area under its curve = 100 - its curve error
                y, yerr = _err(agg[mid]["worst"])
                y, yerr = 100.0 - y, yerr[::-1]
            else:
                y, yerr = _err(agg[mid][stat])
            colour = colours.setdefault(arm["arm"], f"C{len(colours) % 10}")
            ax.errorbar([x], [y], xerr=[[xerr[0]], [xerr[1]]], yerr=[[yerr[0]], [yerr[1]]], fmt="o", color=colour,
                        capsize=3, ms=5)
            ax.annotate(arm["label"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
            if arm["swept"]:
                lines.setdefault(arm["arm"], []).append((x, y))
        for arm, xy in lines.items():
            ax.plot([p[0] for p in xy], [p[1] for p in xy], "-", color=colours[arm], lw=1, alpha=0.7)
        ref = data["arms"][data["reference"]]["eps"][eps]["aggregates"][measure]["mean"]["estimate"]
        ax.axvline(ref, color="grey", ls="--", lw=0.8)
        ax.set_xlabel(f"mean robust error, {mid if stat != 'area' else measure} (%)")
        ax.set_ylabel(f"{mid}: worst class's curve area (%)" if stat == "area" else f"{mid}: {TITLES[stat]}")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{data['title']}: eps = {eps}, {data['statistics']['level']:.0%} intervals (two-level bootstrap); "
                 f"dashed: the reference's mean robust error", fontsize=9)
    fig.tight_layout()
    try:
        return atomic_savefig(fig, path, dpi=120)
    finally:
        plt.close(fig)


def eps_scan_figure(data: dict[str, Any], measure: str, path: str | Path) -> Path | None:
    """None where no arm ran at more than one eps."""
    scanned = {name: arm for name, arm in data["arms"].items() if len(arm["eps"]) > 1}
    if not scanned:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), squeeze=False)
    for i, arm in enumerate(scanned.values()):
        eps_values = sorted(arm["eps"], key=float)
        for ax, stat in zip(axes[0], ("worst", "mean")):
            xs, ys, below, above = [], [], [], []
            for e in eps_values:
                y, err = _err(arm["eps"][e]["aggregates"][measure][stat])
                xs.append(float(e))
                ys.append(y)
                below.append(err[0])
                above.append(err[1])
            ax.errorbar(xs, ys, yerr=[below, above], fmt="o-", color=f"C{i % 10}", capsize=3, label=arm["label"])
    for ax, stat in zip(axes[0], ("worst", "mean")):
        ax.set_xlabel("eps (training and attack)")
        ax.set_ylabel(f"{measure}: {'worst-class' if stat == 'worst' else 'class mean'} error (%)")
        ax.axvline(data["study_eps"], color="grey", ls="--", lw=0.8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{data['title']}: the eps scan (dashed: the study eps)", fontsize=9)
    fig.tight_layout()
    try:
        return atomic_savefig(fig, path, dpi=120)
    finally:
        plt.close(fig)


__all__ = ["eps_scan_figure", "tradeoff_figure"]
