"""Render the numbers in README.md and docs/*.md from the JSON the demo and bench/ write, so no figure is typed twice.

A generated block in a markdown file is everything between

    <!-- generated:NAME -->
    <!-- /generated:NAME -->

and is replaced by the render of NAME (one of :data:`BLOCKS`) from the committed JSON:

- ``demo-leaderboard``: the demo's leaderboard table, rendered by the leaderboard itself from the model_info JSONs
  ``rbla demo`` wrote (``docs/data/demo/model_info/*.json``: copy ``rbla_demo/eval/model_info/*.json`` there);
- ``methods-leaderboard``: the same from ``rbla demo --methods std,adv,adv_plus,trades,cfa,adv_plus_cfa,frl``
  (``docs/data/methods/model_info/*.json``);
- ``demo-seeds``: the demo's mean ± 95 % CI over seeds (``docs/data/demo_seeds.json``: a copy of the
  ``rbla_demo/seeds.json`` that ``rbla demo --seeds N`` writes);
- ``methods-seeds``: the same over all seven methods (``docs/data/methods_seeds.json``, the ``seeds.json`` of
  ``rbla demo --methods ... --seeds 3``);
- ``bench``: ``bench/hook_overhead.py --json`` and ``bench/pgd_eval.py --json`` (``docs/data/bench/*.json``);
- ``gpu``: ``bench/gpu_check.py --out`` on an H200 and an H100 (``docs/gpu_check_h200.json``,
  ``docs/gpu_check_h100.json``).

``python tools/docs_render.py`` rewrites the blocks in place; ``--check`` only compares and exits 1
naming the stale files (the test suite runs the check). Edit the JSON, never a generated block.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robustbench_labelaug.fileio import atomic_write_text
from robustbench_labelaug.leaderboard.table import build_tables
from robustbench_labelaug.results.model_info import load_model_infos
from robustbench_labelaug.results.vocab import BF16, FP32
from robustbench_labelaug.study.report import markdown as study_markdown
from robustbench_labelaug.study.report import verdict_table

BLOCK = re.compile(r"(<!-- generated:(?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)",
                   re.DOTALL)


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def demo_leaderboard(root: Path) -> str:
    """The demo's leaderboard table (the leaderboard's own markdown rows, errors in %, units in the headers)."""
    return _leaderboard(root / "docs" / "data" / "demo")


def methods_leaderboard(root: Path) -> str:
    """``rbla demo --methods ...``'s leaderboard (all seven methods, one seed), rendered the same way."""
    return _leaderboard(root / "docs" / "data" / "methods")


def _leaderboard(folder: Path) -> str:
    infos = load_model_infos(folder)
    (table,) = build_tables(infos)
    lines = ["| " + " | ".join(table.titles()) + " |", "|" + "|".join(table.alignment()) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def demo_seeds(root: Path) -> str:
    return _seeds(root / "docs" / "data" / "demo_seeds.json")


def methods_seeds(root: Path) -> str:
    """``rbla demo --methods ... --seeds 3``: every method's mean ± 95 % CI over three seeds."""
    return _seeds(root / "docs" / "data" / "methods_seeds.json")


def _seeds(path: Path) -> str:
    data = _load(path)
    lines = [f"{data['statistic']}:", "", "| model | " + " | ".join(data["columns"]) + " |",
             "|---|" + "---:|" * len(data["columns"])]
    for model, cells in data["rows"].items():
        lines.append(f"| {model} | " + " | ".join("–" if c is None else f"{c[0]:.2f} ± {c[1]:.2f}" for c in cells)
                     + " |")
    return "\n".join(lines) + "\n"


def bench(root: Path) -> str:
    folder = root / "docs" / "data" / "bench"
    lines = ["| benchmark | setting | measured | target | met | date |", "|---|---|---:|---|---|---|"]
    hook = folder / "hook_overhead.json"
    if hook.exists():
        d = _load(hook)
        s = d["settings"]
        setting = f"{s['model']}, batch {s['batch_size']}, PGD-{s['steps']}, {s['repeats']} alternating repeats"
        for label, r in d["results"].items():
            target = f"≤ {d['target']['train_step_ratio_at_most']}" if label == "train step" else ""
            met = ("yes" if d["target"]["met"] else "no") if label == "train step" else ""
            lines.append(f"| `bench/hook_overhead.py`: {label} (hook / hand-written PGD step, median ratio) | "
                         f"{setting} | {r['median_ratio']:.3f} | {target} | {met} | {d['date_utc']} |")
    for path in sorted(folder.glob("pgd_eval*.json"), key=lambda p: -_load(p)["settings"]["eps"]):
        d = _load(path)
        s, acc = d["settings"], d["robust_accuracy"]
        lines.append(
            f"| `bench/pgd_eval.py --eps {s['eps']:g}`: PGD-{s['steps']} evaluator vs torchattacks.PGD (speed-up) | "
            f"{s['n']} digits test images, robust acc {acc['evaluator']:.2f} % / {acc['torchattacks']:.2f} % | "
            f"{d['speed_ratio']:.2f}× (work bound {d['work_bound']:.2f}×: "
            f"{d['speed_ratio'] / d['work_bound']:.2f} × the bound) | ≥ {d['target']['speed_ratio_at_least']:g}× "
            f"| {'yes' if d['target']['met'] else 'no'} | {d['date_utc']} |")
    return "\n".join(lines) + "\n"


def gpu(root: Path) -> str:  # noqa: C901 - one table, row by row
    """The GPU throughput table from bench/gpu_check.py's JSON (H200 and H100)."""
    runs = []
    for name in ("gpu_check_h200.json", "gpu_check_h100.json"):
        path = root / "docs" / name
        if path.exists():
            d = _load(path)
            runs.append((d["sections"]["env"]["result"].get("gpu", name), d))
    if not runs:
        return "(no GPU check JSON committed)\n"

    def get(d: dict, *keys: str) -> Any:
        for k in keys:
            if not isinstance(d, dict) or k not in d:
                return None
            d = d[k]
        return d

    def ips(v: Any) -> str:
        return "" if v is None else f"{v:.0f} img/s"

    heads = []
    for gpu_name, _d in runs:
        heads += [f"{gpu_name} bf16 + channels_last", f"{gpu_name} fp32"]
    lines = ["| step | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(heads)]
    rows: list[tuple[str, Callable[[dict, str], str]]] = [
        ("plain training step", lambda t, mode: ips(get(t, mode, "plain", "images_per_s"))),
        ("Adv+ step (PGD-10 through the hook)", lambda t, mode: (
            f"{ips(get(t, mode, 'adv_plus_pgd10', 'images_per_s'))} ({get(t, mode, 'cost_ratio'):.2f}× a plain "
            f"step; {get(t, mode, 'ratio_vs_frozen_limit'):.2f} × the frozen-weight limit)"
            if get(t, mode, "cost_ratio") is not None else "")),
    ]
    for label, fn in rows:
        cells = []
        for _, d in runs:
            t = get(d, "sections", "throughput", "result") or {}
            cells += [fn(t, "amp_bfloat16_channels_last"), fn(t, FP32)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for _, d in runs:
        p4 = get(d, "sections", "throughput", "result", "p4") or {}
        cells += [f"target {p4['target_images_per_s']:.0f} img/s: {'met' if p4.get('met') else 'NOT met'}"
                  if p4 else "", ""]
    lines.append("| P4 target: Adv+ ≥ 0.9 × plain / 7.67 | " + " | ".join(cells) + " |")
    cells = []
    for _, d in runs:
        p = get(d, "sections", "pgd_eval", "result") or {}
        cells += [f"{p['images_per_s']:.0f} / {p['full_40_steps_images_per_s']:.0f} img/s" if p else "", ""]
    lines.append("| PGD-40 evaluation (fp32): every point breaks early / 40 full steps | " + " | ".join(cells) + " |")
    cells = []
    for _, d in runs:
        e = get(d, "sections", "eval_amp", "result") or {}
        cells += [f"{e[BF16]['images_per_s']:.0f} img/s ({100 * e['agreement']:.1f} % of top-1 agree)" if e else "",
                  ips(get(e, FP32, "images_per_s"))]
    lines.append("| clean evaluation, batch 256 | " + " | ".join(cells) + " |")
    dates = ", ".join(f"{g}: {d['date_utc']}" for g, d in runs)
    lines += ["", f"(ResNet-50, 224², batch 128, synthetic data on the GPU; measured {dates}.)", "",
              f"Expected training time from these rates, one GPU with data loading keeping up, the paper's "
              f"{IMAGENET_TRAIN_IMAGES / 1e6:.1f} M training images per model (10 ImageNet epochs):", ""]
    for gpu_name, d in runs:
        t = get(d, "sections", "throughput", "result", "amp_bfloat16_channels_last") or {}
        plain, adv = get(t, "plain", "images_per_s"), get(t, "adv_plus_pgd10", "images_per_s")
        if plain and adv:
            std_h, adv_h = IMAGENET_TRAIN_IMAGES / plain / 3600, IMAGENET_TRAIN_IMAGES / adv / 3600
            lines.append(f"- {gpu_name} (bf16 + channels_last): Std ≈ {std_h:.1f} h, Adv and Adv+ ≈ {adv_h:.1f} h "
                         f"each, the three models ≈ {std_h + 2 * adv_h:.0f} h")
        p = get(d, "sections", "pgd_eval", "result") or {}
        if p:
            lines.append(f"  - PGD-40 on the 50 000 validation images, per protocol: "
                         f"{50_000 / p['images_per_s'] / 60:.0f} min (points that break early) to "
                         f"{50_000 / p['full_40_steps_images_per_s'] / 60:.0f} min (every point robust)")
    return "\n".join(lines) + "\n"


STUDY_CORE = ("docs", "data", "study_digits_core.json")  # study.json of rbla study -c digits_core (docs/study.md)


def study_core_primary(root: Path) -> str:
    """The digits core study's primary verdicts (study.report's own table, from the committed study.json)."""
    data = _load(root.joinpath(*STUDY_CORE))
    st = data["statistics"]
    return "\n".join(verdict_table(data["endpoints"]["primary"], st["alpha"], st["level"])) + "\n"


def study_core(root: Path) -> str:
    """The digits core study's verdicts.md, as rbla study wrote it, its title left to the page."""
    text = study_markdown(_load(root.joinpath(*STUDY_CORE)))
    return text.split("\n", 2)[2].replace("\n## ", "\n### ").lstrip("\n")


IMAGENET_TRAIN_IMAGES = 10 * 1_281_167
BLOCKS: dict[str, Callable[[Path], str]] = {"demo-leaderboard": demo_leaderboard,
                                            "methods-leaderboard": methods_leaderboard, "demo-seeds": demo_seeds,
                                            "methods-seeds": methods_seeds,
                                            "bench": bench, "gpu": gpu, "study-core-primary": study_core_primary,
                                            "study-core": study_core}


def markdown_files(root: Path) -> list[Path]:
    return [p for p in [root / "README.md", *sorted((root / "docs").rglob("*.md"))] if p.is_file()]


def render_text(text: str, root: Path, cache: dict[str, str] | None = None) -> str:
    """``text`` with every generated block replaced by a fresh render."""
    cache = {} if cache is None else cache

    def replace(m: re.Match) -> str:
        name = m.group("name")
        if name not in BLOCKS:
            raise SystemExit(f"unknown generated block '{name}': use one of {', '.join(BLOCKS)}")
        if name not in cache:
            cache[name] = BLOCKS[name](root)
        return m.group(1) + cache[name] + m.group(4)

    return BLOCK.sub(replace, text)


def render_all(root: Path, check: bool = False) -> list[Path]:
    """Render every file's blocks; returns the files whose blocks were (``check``: would be) changed."""
    cache: dict[str, str] = {}
    changed = []
    for path in markdown_files(root):
        text = path.read_text()
        new = render_text(text, root, cache)
        if new != text:
            changed.append(path)
            if not check:
                atomic_write_text(path, new)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/docs_render.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None, help="the repository (default: the one this file lives in)")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 naming stale files")
    args = parser.parse_args(argv)
    root = Path(args.root) if args.root else Path(__file__).resolve().parents[1]
    changed = render_all(root, check=args.check)
    if args.check and changed:
        print("stale generated blocks in " + ", ".join(str(p.relative_to(root)) for p in changed)
              + ": run python tools/docs_render.py", file=sys.stderr)
        return 1
    print(("would rewrite " if args.check else "rewrote ") + (", ".join(str(p.relative_to(root)) for p in changed)
                                                             or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
