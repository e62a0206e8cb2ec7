"""The paper's figures from model_info dicts (matplotlib, Agg canvas, PNG, written atomically).

- ``classwise_errors.png`` (Figure 1): one panel per metric (clean, ReaL when measured, PGD), one line per model
  over the classes. Classes are sorted by the *reference* model's error on that panel's metric, ascending (the
  reference is the model trained ``std`` when there is one, else the first model), so the reference is a
  rising curve and the other models' lines show where they gain or lose per class (its three worst classes are
  named); with K <= 20 classes, grouped bars per class are drawn instead. Titles name the attack, its ε and the
  dataset ("PGD-40 (sound), ε = 0.2, digits"); each model's mean over classes is a dashed line and its legend
  entry gives mean and SD. Classes are named (``labelaug.class_names``, else the dataset's: digits, CIFAR-10,
  ImageNet), else numbered. Bars carry 95 % Wilson intervals (``scoring/intervals.py``) where the per-class n is
  stored, and the tick labels give each class's n; a fast run and a small n (under ``SMALL_N`` examples in some class) are
  said in the title.
- ``corruption_errors.png`` (Figure 2): one panel per corruption, error over severity, one line per model, and a
  bottom panel with each model's corruption error (CE, mean over severities) per corruption and its mCE.
- ``imagenet_x_error.png`` / ``imagenet_x_error_ratio.png`` (Figures 3-4): error and error ratio per ImageNet-X
  factor, grouped bars per model (ratio 1 = as hard as the average image).
- ``robustness_curves.png``: per model with a ``robustness_curve`` result, each class's robust accuracy over eps
  on [0, eps_max] with its 95 % Wilson band, the study eps marked, the worst class's curve area in the title.

Every figure can also be written as SVG or PDF (``formats``; ``rbla leaderboard --plots --plot-format svg,pdf``),
and :func:`figure_bytes` gives one as bytes (the HTML page embeds SVGs as data URIs).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.registry import class_names
from ..errors import UserError
from ..fileio import atomic_write_bytes
from ..results import keys
from ..results.model_info import format_eps
from ..results.vocab import STD, TRAINING_LABELS, Protocol
from ..scoring.intervals import classwise_intervals

ModelInfos = Sequence[tuple[str, Mapping[str, Any]]]

PGD_ROLES = (keys.PGD, keys.PGD_PAPER)
CLASSWISE_PANELS: tuple[tuple[str, str], ...] = ((keys.CLASSWISE_CLEAN, "clean"), (keys.CLASSWISE_REAL, "ReaL"),
                                                 (PGD_ROLES[0], "PGD (sound)"), (PGD_ROLES[1], "PGD (paper protocol)"),
                                                 (keys.CLASSWISE_AUTOATTACK, "AutoAttack"))
BARS_UP_TO_CLASSES = 20
SMALL_N = 30  # fewer examples than this in some class: the title says "small n"
FORMATS = ("png", "svg", "pdf")
TRAINING_ORDER = {mode: i for i, mode in enumerate(TRAINING_LABELS)}  # std, adv, adv_plus, trades, *_cfa, *_frl


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def figure_bytes(fig, fmt: str = "png") -> bytes:
    """A figure as PNG, SVG or PDF bytes (SVG with text as text: smaller, searchable; no date, so the same figure
    gives the same bytes)."""
    import matplotlib

    buf = io.BytesIO()
    metadata = {"Date": None} if fmt in ("svg", "pdf") else None
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "rbla"}):
        fig.savefig(buf, format=fmt, metadata=metadata)
    return buf.getvalue()


def _save(fig, path: Path, formats: Sequence[str] = ("png",)) -> Path:
    """Write ``path`` (a .png name) in each format; returns the first path written."""
    written = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        atomic_write_bytes(target, figure_bytes(fig, fmt))
        written.append(target)
    return written[0]


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
    errors = (result.get("classwise") or {}).get(ref.get("key"), {}).get(keys.ERROR)
    return None if errors is None else np.asarray([np.nan if e is None else e for e in errors], dtype=float)


def classwise_counts(info: Mapping[str, Any], metric: str) -> np.ndarray | None:
    """The number of examples of each class behind :func:`classwise_array` (``n`` in the stored class-wise block),
    or None where the result predates it."""
    block = _block(info)
    ref = (block.get("measured") or {}).get("classwise", {}).get(metric)
    if not ref:
        return None
    result = (block.get("results") or {}).get(ref.get("source"), {})
    counts = (result.get("classwise") or {}).get(ref.get("key"), {}).get("n")
    return None if counts is None else np.asarray(counts, dtype=int)


def is_fast(info: Mapping[str, Any]) -> bool:
    """Whether the model was evaluated in fast mode (``rbla evaluate --fast``, ``rbla demo --fast``)."""
    return bool(_block(info).get("fast"))


def caveats(infos: ModelInfos, counts: Sequence[np.ndarray | None] = ()) -> str:
    """What a figure's title must say about its numbers: ``"fast mode"``, ``"small n: 12 per class"``."""
    notes = []
    if any(is_fast(info) for _, info in infos):
        notes.append("fast mode")
    known = [c for c in counts if c is not None and c.size]
    if known:
        smallest = int(min(c.min() for c in known))
        if smallest < SMALL_N:
            notes.append(f"small n: {smallest} per class")
    return "; ".join(notes)


def _reference_index(infos: ModelInfos) -> int:
    for i, (_, info) in enumerate(infos):
        if _block(info).get("training") == STD:
            return i
    return 0


def _measured(info: Mapping[str, Any]) -> Mapping[str, Any]:
    return _block(info).get("measured") or {}


def _one(values: Sequence[Any]) -> str:
    """The distinct values, joined ("40" or "10/40")."""
    return "/".join(dict.fromkeys(str(v) for v in values if v is not None))


def classwise_title(metric: str, infos: ModelInfos) -> str:
    """A panel's title: the metric with its attack, steps and ε (pixel units), and the dataset, e.g.
    ``"PGD-40 (sound), ε = 0.2, digits"``."""
    dataset = _one([info.get("dataset") for _, info in infos])
    if metric in PGD_ROLES:
        m = [_measured(info) for _, info in infos]
        steps = _one([x.get(keys.steps(metric)) for x in m]) or "?"
        eps = _one([format_eps(float(e)) for x in m if (e := x.get(keys.eps_pixel(metric))) is not None])
        protocol = str(Protocol.SOUND) if metric == keys.PGD else f"{Protocol.PAPER} protocol"
        text = f"PGD-{steps} ({protocol})" + (f", ε = {eps}" if eps else "")
    else:
        text = dict(CLASSWISE_PANELS).get(metric, metric)
    return f"{text}, {dataset}" if dataset else text


def names_of_classes(info: Mapping[str, Any], num_classes: int) -> list[str] | None:
    """The K (``num_classes``) class names of a model: ``labelaug.class_names``, else known from its dataset;
    None if unknown."""
    names = _block(info).get("class_names")
    if not names or len(names) != num_classes:
        names = class_names(str(info.get("dataset") or "").lower() or None, num_classes=num_classes)
    return list(names) if names and len(names) == num_classes else None


def plot_classwise(infos: ModelInfos, path: Path, formats: Sequence[str] = ("png",)) -> Path | None:
    fig = classwise_figure(infos)
    return None if fig is None else _save(fig, path, formats)


def classwise_figure(infos: ModelInfos):
    """Figure 1 as a matplotlib Figure (None when no model has class-wise errors)."""
    panels = []
    for metric, _ in CLASSWISE_PANELS:
        series = [(key, classwise_array(info, metric)) for key, info in infos]
        series = [(k, a) for k, a in series if a is not None]
        if series:
            panels.append((metric, series))
    if not panels:
        return None
    ref_key = infos[_reference_index(infos)][0]
    by_key = dict(infos)
    color = _colors(infos)
    fig = _figure(5.5 * len(panels), 4.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (metric, series) in zip(axes, panels):
        k = max(a.size for _, a in series)
        names = next((n for key, a in series if a.size == k and (n := names_of_classes(by_key[key], k))), None)
        counts = {name: classwise_counts(by_key[name], metric) for name, _ in series}
        if k <= BARS_UP_TO_CLASSES:
            width = 0.8 / len(series)
            for j, (name, errors) in enumerate(series):
                x = np.arange(errors.size) + (j - (len(series) - 1) / 2) * width
                n = counts[name]
                yerr = None
                if n is not None and n.size == errors.size:
                    cis = classwise_intervals(errors.tolist(), n.tolist())
                    yerr = np.array([[e - ci[0] if ci else 0.0 for e, ci in zip(errors, cis)],
                                     [ci[1] - e if ci else 0.0 for e, ci in zip(errors, cis)]])
                    yerr = np.nan_to_num(np.clip(yerr, 0, None))
                ax.bar(x, errors, width=width, label=_mean_sd_label(name, errors), color=color[name],
                       yerr=yerr, error_kw={"elinewidth": 0.7, "capsize": 1.5, "ecolor": "0.25"})
            ax.set_xticks(np.arange(k))
            labels = list(names) if names else [str(i) for i in range(k)]
            known = [c for c in counts.values() if c is not None and c.size == k]
            if known and all(np.array_equal(known[0], c) for c in known):
                labels = [f"{label}\nn={int(c)}" for label, c in zip(labels, known[0])]
            long = max(len(n.split("\n")[0]) for n in labels) > 3
            ax.set_xticklabels(labels, rotation=45 if long else 0, ha="right" if long else "center",
                               fontsize="small" if not known else "x-small")
            ax.set_xlabel("class" + (" (n: examples per class; bars: 95 % Wilson CI)" if known else ""))
        else:
            ref_name = ref_key if ref_key in dict(series) else series[0][0]
            ref = dict(series)[ref_name]
            order = np.argsort(np.nan_to_num(ref, nan=np.inf), kind="stable")
            for name, errors in series:
                ax.plot(np.arange(errors.size), errors[order[: errors.size]], lw=0.8,
                        label=_mean_sd_label(name, errors), color=color[name])
            if names:  # name the reference's three worst classes
                finite = np.flatnonzero(~np.isnan(ref[order]))
                for pos in finite[-3:]:
                    ax.annotate(names[order[pos]], (pos, ref[order[pos]]), fontsize="x-small", rotation=90,
                                xytext=(0, 4), textcoords="offset points", ha="center", va="bottom")
            ax.set_xlabel(f"class, sorted by {ref_name}'s error")
        for name, errors in series:  # each model's mean over classes
            if np.isfinite(errors).any():
                ax.axhline(float(np.nanmean(errors)), color=color[name], lw=0.8, ls="--")
        members = [(n, by_key[n]) for n, _ in series]
        note = caveats(members, list(counts.values()))
        ax.set_title(f"class-wise error: {classwise_title(metric, members)}" + (f"\n[{note}]" if note else ""),
                     fontsize="medium")
        ax.set_ylabel("error (%)")
        ax.set_ylim(0, 105)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", title="mean over classes (dashed), SD", title_fontsize="small",
                  loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=1)
    return fig


OVERVIEW_ROLES = (keys.CLASSWISE_AUTOATTACK, PGD_ROLES[0], PGD_ROLES[1])  # the strongest attack first


def overview_figure(infos: ModelInfos):
    """The page's overview: one point per model, its mean robust error over the classes (x) against the class SD
    of that error (y: the class gap, 0 = every class alike), under the strongest attack every model was measured
    with class by class (AutoAttack, else PGD sound, else the paper protocol), each with its worst class in the
    legend. None when not every model has such a block."""
    role = next((r for r in OVERVIEW_ROLES if infos and all(classwise_array(i, r) is not None for _, i in infos)),
                None)
    if role is None:
        return None
    color = _colors(infos)
    fig = _figure(9.0, 4.0 + 0.25 * math.ceil(len(infos) / 2))
    ax = fig.subplots()
    points = []
    for key, info in infos:
        errors = classwise_array(info, role)
        if errors is None or not np.isfinite(errors).any():
            continue
        mean, sd, worst = float(np.nanmean(errors)), float(np.nanstd(errors)), float(np.nanmax(errors))
        ax.scatter([mean], [sd], s=60, color=color[key], zorder=3, edgecolors="white", linewidths=0.6,
                   label=f"{key}: mean {mean:.1f}, SD {sd:.1f}, worst class {worst:.1f}")
        points.append((mean, sd))
    if not points:
        return None
    xs, ys = zip(*points)
    pad_x, pad_y = max(3.0, 0.1 * (max(xs) - min(xs))), max(2.0, 0.1 * (max(ys) - min(ys)))
    ax.set_xlim(min(xs) - pad_x, max(xs) + pad_x)  # a point at 0 or 100 % stays whole
    ax.set_ylim(min(ys) - pad_y, max(ys) + pad_y)
    note = caveats(infos, [classwise_counts(i, role) for _, i in infos])
    ax.set_title(f"class gap vs robustness: {classwise_title(role, infos)}" + (f"\n[{note}]" if note else ""),
                 fontsize="medium")
    ax.set_xlabel("mean robust error over the classes (%; lower: more robust)")
    ax.set_ylabel("class SD of the robust error (%)")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", fontsize="small", ncols=2 if len(points) > 3 else 1)
    return fig


def _mean_sd_label(name: str, errors: np.ndarray) -> str:
    if not np.isfinite(errors).any():
        return name
    return f"{name}: mean {np.nanmean(errors):.1f}, SD {np.nanstd(errors):.1f}"


def _legend(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6), fontsize="small")


def corruption_table(info: Mapping[str, Any]) -> tuple[list[str], list[int], dict[str, list[float]]] | None:
    block = _block(info)
    source = (block.get("measured") or {}).get("corruptions_source")
    details = ((block.get("results") or {}).get(source) or {}).get("details") or {}
    table = details.get("E")
    if not table:
        return None
    names = list(details.get("corruptions") or table)
    severities = list(details.get("severities") or range(1, len(next(iter(table.values()))) + 1))
    return names, severities, table


def plot_corruptions(infos: ModelInfos, path: Path, formats: Sequence[str] = ("png",)) -> Path | None:
    fig = corruptions_figure(infos)
    return None if fig is None else _save(fig, path, formats)


def corruptions_figure(infos: ModelInfos):
    """Figure 2 as a matplotlib Figure (None when no model has a corruption table)."""
    tables = [(key, t) for key, info in infos if (t := corruption_table(info)) is not None]
    if not tables:
        return None
    names = list(dict.fromkeys(n for _, (ns, _, _) in tables for n in ns))
    color = _colors(infos)
    cols = min(5, len(names))
    rows = math.ceil(len(names) / cols)
    fig = _figure(max(3.0 * cols, 0.45 * (len(names) + 1) * max(1, len(tables)) / 2 + 3), 2.6 * rows + 3.2)
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[1.0] * rows + [1.3])
    axes = [fig.add_subplot(grid[i // cols, i % cols]) for i in range(len(names))]
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
    _legend(fig, axes[0])
    _plot_ce(fig.add_subplot(grid[rows, :]), names, tables, color)
    note = caveats([(k, i) for k, i in infos if k in dict(tables)])
    if note:
        fig.suptitle(f"[{note}]", fontsize="small")
    return fig


def corruption_ce(table: Mapping[str, Sequence[float | None]]) -> dict[str, float]:
    """Corruption error per corruption: the mean error over its severities (the paper's unnormalised CE)."""
    out = {}
    for name, row in table.items():
        values = [v for v in row if v is not None]
        out[name] = float(np.mean(values)) if values else float("nan")
    return out


def _plot_ce(ax, names: Sequence[str], tables, color: Mapping[str, str]) -> None:
    """Grouped bars: CE per corruption and, last, mCE (the mean of the CEs), one bar per model."""
    groups = [*names, "mCE (unnormalised)"]
    width = 0.8 / len(tables)
    for j, (key, (_, _, table)) in enumerate(tables):
        ce = corruption_ce(table)
        values = [ce.get(n, np.nan) for n in names]
        mce = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
        ax.bar(np.arange(len(groups)) + (j - (len(tables) - 1) / 2) * width, [*values, mce], width=width,
               label=f"{key}: mCE {mce:.1f}", color=color[key])
    ax.axvline(len(names) - 0.5, color="k", lw=0.6)
    ax.set_xticks(np.arange(len(groups)))
    ax.set_xticklabels([g.replace("_", " ") for g in groups], rotation=45, ha="right")
    ax.set_ylabel("CE (%)")
    ax.set_title("corruption error (CE: mean over severities) per corruption, and mCE (unnormalised)",
                 fontsize="medium")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", ncols=min(len(tables), 4))


def _imagenet_x_factors(info: Mapping[str, Any]) -> dict[str, Mapping[str, Any]] | None:
    block = _block(info)
    source = (block.get("measured") or {}).get("imagenet_x_source")
    details = ((block.get("results") or {}).get(source) or {}).get("details") or {}
    return details.get("factors") or None


def plot_imagenet_x(infos: ModelInfos, out_dir: Path, formats: Sequence[str] = ("png",)) -> list[Path]:
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
        written.append(_save(fig, out_dir / filename, formats))
    return written


def curve_block(info: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The stored robustness curve of a model (``details["curve"]`` of the result ``measured.curve_source``
    names), or None."""
    block = _block(info)
    source = (block.get("measured") or {}).get(keys.CURVE_SOURCE)
    curve = (((block.get("results") or {}).get(source) or {}).get("details") or {}).get("curve")
    return curve if isinstance(curve, Mapping) and curve.get("eps") and curve.get("accuracy") else None


def curves_figure(infos: ModelInfos):
    """Per-class robust accuracy against eps, one panel per model with a curve (None when none has one)."""
    found = [(key, info, c) for key, info in infos if (c := curve_block(info)) is not None]
    if not found:
        return None
    cols = min(3, len(found))
    rows = math.ceil(len(found) / cols)
    fig = _figure(4.2 * cols, 3.4 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (key, info, curve) in zip(axes, found):
        eps = np.asarray(curve["eps"], dtype=float)
        acc = np.asarray([[np.nan if v is None else v for v in row] for row in curve["accuracy"]], dtype=float)
        names = names_of_classes(info, acc.shape[0]) or [str(c) for c in range(acc.shape[0])]
        low, high = (np.asarray([[np.nan if v is None else v for v in row] for row in curve.get(k) or []],
                                dtype=float) for k in ("ci_low", "ci_high"))
        for c in range(acc.shape[0]):
            color = f"C{c % 10}"
            ax.plot(eps, acc[c], color=color, lw=1.2, label=names[c])
            if low.shape == acc.shape and high.shape == acc.shape:
                ax.fill_between(eps, low[c], high[c], color=color, alpha=0.12, lw=0)
        study = curve.get("study_eps")
        if isinstance(study, (int, float)):
            ax.axvline(float(study), color="k", lw=0.8, ls="--", label=f"study ε = {study:g}")
        worst = curve.get("worst_area")
        ax.set_title(f"{key}: worst-class area {worst:.1f} %" if isinstance(worst, (int, float)) else key,
                     fontsize="medium")
        ax.set_xlabel("ε (L∞, [0,1] pixels)")
        ax.set_ylabel("robust accuracy (%)")
        ax.set_xlim(0, float(eps[-1]))
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        if acc.shape[0] <= BARS_UP_TO_CLASSES:
            ax.legend(fontsize="x-small", ncols=2)
    for ax in axes[len(found):]:
        ax.set_visible(False)
    note = caveats([(k, i) for k, i, _ in found], [np.asarray(c.get("n") or [], dtype=int) for _, _, c in found])
    if note:
        fig.suptitle(f"[{note}]", fontsize="small")
    return fig


def plot_curves(infos: ModelInfos, path: Path, formats: Sequence[str] = ("png",)) -> Path | None:
    fig = curves_figure(infos)
    return None if fig is None else _save(fig, path, formats)


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UserError(f"unknown plot format {', '.join(bad) or '(none)'}: use some of {', '.join(FORMATS)}, "
                        "e.g. --plot-format png,svg")
    return tuple(dict.fromkeys(formats))


def write_plots(infos: ModelInfos, out_dir: str | Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Every figure the measured results allow, in ``out_dir``, in each of ``formats`` (png, svg, pdf); returns
    the paths written (every format's file). Models are drawn in training order (std, adv, adv_plus, others),
    each in the same colour in every figure."""
    out_dir = Path(out_dir)
    formats = check_formats(formats)
    infos = sorted(infos, key=lambda ki: TRAINING_ORDER.get(_block(ki[1]).get("training"), len(TRAINING_ORDER)))
    firsts = [p for p in (plot_classwise(infos, out_dir / "classwise_errors.png", formats),
                          plot_corruptions(infos, out_dir / "corruption_errors.png", formats),
                          plot_curves(infos, out_dir / "robustness_curves.png", formats)) if p is not None]
    firsts += plot_imagenet_x(infos, out_dir, formats)
    return [p.with_suffix(f".{fmt}") for p in firsts for fmt in formats]


__all__ = ["FORMATS", "SMALL_N", "caveats", "check_formats", "classwise_array", "classwise_counts",
           "classwise_figure", "classwise_title", "corruption_ce", "corruption_table", "corruptions_figure", "curve_block", "curves_figure",
           "figure_bytes", "is_fast",
           "names_of_classes", "plot_classwise", "plot_corruptions", "plot_curves", "plot_imagenet_x", "write_plots"]
