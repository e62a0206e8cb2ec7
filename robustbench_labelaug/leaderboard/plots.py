"""The paper's figures from model_info dicts (matplotlib, Agg canvas, PNG, written atomically).

- ``classwise_errors.png`` (Figure 1): one panel per metric (clean, ReaL when measured, PGD), one line per model
  over the classes. Classes are sorted by the *reference* model's error on that panel's metric, ascending (the
  reference is the model trained ``std`` when there is one, else the first model), so the reference is a
  rising curve and the other models' lines show where they gain or lose per class; with K <= 20 classes, grouped
  bars by class index are drawn instead.
- ``corruption_errors.png`` (Figure 2): one panel per corruption, error over severity, one line per model.
- ``imagenet_x_error.png`` / ``imagenet_x_error_ratio.png`` (Figures 3-4): error and error ratio per ImageNet-X
  factor, grouped bars per model (ratio 1 = as hard as the average image).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write_bytes

ModelInfos = Sequence[tuple[str, Mapping[str, Any]]]

CLASSWISE_PANELS: tuple[tuple[str, str], ...] = (("clean", "clean"), ("real", "ReaL"), ("pgd", "PGD (sound)"),
                                                 ("pgd_paper", "PGD (paper protocol)"))
BARS_UP_TO_CLASSES = 20
TRAINING_ORDER = {"std": 0, "adv": 1, "adv_plus": 2}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _colors(infos: ModelInfos) -> dict[str, str]:
    """One colour per model, the same in every figure."""
    return {key: f"C{i % 10}" for i, (key, _) in enumerate(infos)}


def _block(info: Mapping[str, Any]) -> Mapping[str, Any]:
    return info.get("labelaug") or {}


def classwise_array(info: Mapping[str, Any], metric: str) -> np.ndarray | None:
    """Per-class errors (%) of ``metric`` (``clean``, ``real``, ``pgd``, ...), or None if not measured."""
    block = _block(info)
    ref = (block.get("measured") or {}).get("classwise", {}).get(metric)
    if not ref:
        return None
    result = (block.get("results") or {}).get(ref.get("source"), {})
    errors = (result.get("classwise") or {}).get(ref.get("key"), {}).get("error")
    return None if errors is None else np.asarray([np.nan if e is None else e for e in errors], dtype=float)


def _reference_index(infos: ModelInfos) -> int:
    for i, (_, info) in enumerate(infos):
        if _block(info).get("training") == "std":
            return i
    return 0


def class_names_of(infos: ModelInfos) -> list[str] | None:
    """The class names a model_info records (``labelaug.class_names``, e.g. CIFAR-10's airplane ... truck)."""
    for _, info in infos:
        names = _block(info).get("class_names")
        if names:
            return [str(n) for n in names]
    return None


def plot_classwise(infos: ModelInfos, path: Path) -> Path | None:
    panels = []
    for metric, title in CLASSWISE_PANELS:
        series = [(key, classwise_array(info, metric)) for key, info in infos]
        series = [(k, a) for k, a in series if a is not None]
        if series:
            panels.append((metric, title, series))
    if not panels:
        return None
    ref_key = infos[_reference_index(infos)][0]
    color = _colors(infos)
    fig = _figure(5.0 * len(panels), 3.8)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (_, title, series) in zip(axes, panels):
        k = max(a.size for _, a in series)
        if k <= BARS_UP_TO_CLASSES:
            width = 0.8 / len(series)
            for j, (name, errors) in enumerate(series):
                x = np.arange(errors.size) + (j - (len(series) - 1) / 2) * width
                ax.bar(x, errors, width=width, label=name, color=color[name])
            ax.set_xticks(np.arange(k))
            names = class_names_of(infos)
            if names is not None and len(names) == k:
                ax.set_xticklabels(names, rotation=45, ha="right")
            ax.set_xlabel("class")
        else:
            ref = dict(series).get(ref_key, series[0][1])
            order = np.argsort(np.nan_to_num(ref, nan=np.inf), kind="stable")
            for name, errors in series:
                ax.plot(np.arange(errors.size), errors[order[: errors.size]], lw=0.8, label=name, color=color[name])
            ax.set_xlabel(f"class, sorted by {ref_key if ref_key in dict(series) else series[0][0]}'s error")
        ax.set_title(f"class-wise error: {title}")
        ax.set_ylabel("error (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    _legend(fig, axes[0])
    return _save(fig, path)


def _legend(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6), fontsize="small")


def _corruption_table(info: Mapping[str, Any]) -> tuple[list[str], list[int], dict[str, list[float]]] | None:
    block = _block(info)
    source = (block.get("measured") or {}).get("corruptions_source")
    details = ((block.get("results") or {}).get(source) or {}).get("details") or {}
    table = details.get("E")
    if not table:
        return None
    names = list(details.get("corruptions") or table)
    severities = list(details.get("severities") or range(1, len(next(iter(table.values()))) + 1))
    return names, severities, table


def plot_corruptions(infos: ModelInfos, path: Path) -> Path | None:
    tables = [(key, t) for key, info in infos if (t := _corruption_table(info)) is not None]
    if not tables:
        return None
    names = list(dict.fromkeys(n for _, (ns, _, _) in tables for n in ns))
    color = _colors(infos)
    cols = min(5, len(names))
    rows = math.ceil(len(names) / cols)
    fig = _figure(3.0 * cols, 2.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        for key, (_, severities, table) in tables:
            if name in table:
                values = [np.nan if v is None else v for v in table[name]]
                ax.plot(severities, values, marker="o", ms=3, label=key, color=color[key])
        ax.set_title(name.replace("_", " "), fontsize="medium")
        ax.set_xlabel("severity")
        ax.set_ylabel("error (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    _legend(fig, axes[0])
    return _save(fig, path)


def _imagenet_x_factors(info: Mapping[str, Any]) -> dict[str, Mapping[str, Any]] | None:
    block = _block(info)
    source = (block.get("measured") or {}).get("imagenet_x_source")
    details = ((block.get("results") or {}).get(source) or {}).get("details") or {}
    return details.get("factors") or None


def plot_imagenet_x(infos: ModelInfos, out_dir: Path) -> list[Path]:
    tables = [(key, f) for key, info in infos if (f := _imagenet_x_factors(info)) is not None]
    if not tables:
        return []
    factors = list(dict.fromkeys(f for _, t in tables for f in t))
    color = _colors(infos)
    written = []
    for field, ylabel, filename in (("error", "error (%)", "imagenet_x_error.png"),
                                    ("error_ratio", "error ratio", "imagenet_x_error_ratio.png")):
        fig = _figure(max(8.0, 0.6 * len(factors) * max(1, len(tables)) / 2), 4.0)
        ax = fig.subplots()
        width = 0.8 / len(tables)
        for j, (key, table) in enumerate(tables):
            values = [np.nan if (table.get(f) or {}).get(field) is None else table[f][field] for f in factors]
            ax.bar(np.arange(len(factors)) + (j - (len(tables) - 1) / 2) * width, values, width=width, label=key,
                   color=color[key])
        if field == "error_ratio":
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(np.arange(len(factors)))
        ax.set_xticklabels([f.replace("_", " ") for f in factors], rotation=45, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_title(f"ImageNet-X {ylabel} per factor")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small")
        written.append(_save(fig, out_dir / filename))
    return written


def write_plots(infos: ModelInfos, out_dir: str | Path) -> list[Path]:
    """Every figure the measured results allow, as PNGs in ``out_dir``; returns the paths written. Models are
    drawn in training order (std, adv, adv_plus, others), each in the same colour in every figure."""
    out_dir = Path(out_dir)
    infos = sorted(infos, key=lambda ki: TRAINING_ORDER.get(_block(ki[1]).get("training"), len(TRAINING_ORDER)))
    written = [p for p in (plot_classwise(infos, out_dir / "classwise_errors.png"),
                           plot_corruptions(infos, out_dir / "corruption_errors.png")) if p is not None]
    written += plot_imagenet_x(infos, out_dir)
    return written


__all__ = ["classwise_array", "plot_classwise", "plot_corruptions", "plot_imagenet_x", "write_plots"]
