"""What a study costs (``rbla study``), estimated from the per-cell CPU seconds of smaller study runs.

Reads the ``timings.json`` (each work's wall and CPU seconds) and ``cells/*.json`` (each training's method and
epochs) of one or more finished study folders, the *measuring* runs, and derives:

- per method, the CPU seconds of one training epoch (the median over that method's measured trainings of CPU
  seconds / epochs, start-up included);
- per evaluator group (``clean``, ``pgd40_sound``, ``autoattack+curve``, ...), the CPU seconds of one cell: the
  median over the measured cells whose training ran the target study's full epochs (a fully trained model keeps
  more points robust, so AutoAttack works longer on it), else over all of them.

It then prices every training (its epochs from the target config's recipes and knobs) and evaluation of the target
config's plan (``rbla study -c CONFIG --dry-run`` prints it) and prints the total CPU time and the wall time on
``--cores`` cores at ``--jobs cores`` (one torch thread per task, so CPU seconds add up; the ideal, with no idle
core). A benchmark, not a test: CPU seconds measured on a shared machine run high (contention for caches).

    python bench/study_estimate.py --config digits --measured /tmp/sttime/train /tmp/sttime/eval [--cores 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def measured(folders: list[Path]) -> tuple[dict[str, list[float]], dict[str, list[tuple[float, str, int]]]]:
    """(method -> CPU s per epoch of each measured training, group -> (CPU s, method, epochs) of each cell)."""
    per_epoch: dict[str, list[float]] = {}
    per_cell: dict[str, list[tuple[float, str, int]]] = {}
    for folder in folders:
        timings = json.loads((folder / "timings.json").read_text())
        records = {p.stem: json.loads(p.read_text()) for p in (folder / "cells").glob("*.json")}
        for name, t in timings.items():
            kind, _, rest = name.partition(" ")
            if kind == "train":
                record = records[rest]["training"]
                per_epoch.setdefault(record["method"], []).append(t["cpu_seconds"] / record["args"]["epochs"])
            else:  # evaluate eval/<training>/<group>
                _, training, group = rest.split("/", 2)
                record = records[training]["training"]
                per_cell.setdefault(group, []).append((t["cpu_seconds"], record["method"], record["args"]["epochs"]))
    return per_epoch, per_cell


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="digits", help="the study to price (a file or a packaged name)")
    parser.add_argument("--measured", nargs="+", type=Path, required=True, metavar="DIR",
                        help="finished study folders whose timings.json and cells/ are the measurements")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the estimate here")
    args = parser.parse_args()

    from robustbench_labelaug.runner.tasks import evaluator_groups
    from robustbench_labelaug.study import load_study_config
    from robustbench_labelaug.study.run import eval_config, plan_study

    per_epoch, per_cell = measured(args.measured)
    study = load_study_config(args.config)
    plan, train_args, _, _ = plan_study(study, Path("/nonexistent-study-folder"), fast=False)
    fallback = statistics.median(v for values in per_epoch.values() for v in values)
    rows, train_total = {}, 0.0
    for name, training in plan.trainings.items():
        epochs = train_args[name].epochs
        cost = statistics.median(per_epoch.get(training.method, [fallback])) * epochs
        row = rows.setdefault(training.method, {"trainings": 0, "epochs": epochs, "cpu_s_per_epoch":
                                                statistics.median(per_epoch.get(training.method, [fallback])),
                                                "measured": training.method in per_epoch, "cpu_s": 0.0})
        row["trainings"] += 1
        row["cpu_s"] += cost
        train_total += cost
    full_epochs = {t.method: train_args[n].epochs for n, t in plan.trainings.items()}
    groups = ["+".join(e.id for e in g) for g in evaluator_groups(eval_config(study, study.cfg.eps, [], Path(".")))]
    evals, eval_total = {}, 0.0
    cells = len(plan.evaluated())
    for group in groups:
        found = per_cell.get(group, [])
        full = [c for c, method, epochs in found if full_epochs.get(method) == epochs]
        values = full or [c for c, _, _ in found]
        cost = statistics.median(values) if values else float("nan")
        evals[group] = {"cpu_s_per_cell": cost, "measured_cells": len(values), "fully_trained": bool(full),
                        "cells": cells, "cpu_s": cost * cells}
        eval_total += cost * cells
    total = train_total + eval_total
    print(f"{study.title}: {len(plan.trainings)} trainings, {cells} evaluated cells")
    print(f"{'method':24s} {'trainings':>9s} {'epochs':>6s} {'CPU s/epoch':>11s} {'CPU h':>7s}")
    for method, r in rows.items():
        print(f"{method:24s} {r['trainings']:9d} {r['epochs']:6d} {r['cpu_s_per_epoch']:11.1f}"
              f"{'' if r['measured'] else '*':1s}{r['cpu_s'] / 3600:6.2f}")
    print(f"{'evaluator group':24s} {'cells':>9s} {'CPU s/cell':>18s} {'CPU h':>7s}")
    for group, r in evals.items():
        print(f"{group:24s} {r['cells']:9d} {r['cpu_s_per_cell']:18.1f} {r['cpu_s'] / 3600:7.2f}"
              + ("" if r["fully_trained"] else "  (measured on under-trained models only)"))
    print(f"total CPU {total / 3600:.1f} h: trainings {train_total / 3600:.1f} h, evaluations {eval_total / 3600:.1f} h;"
          f" on {args.cores} cores (--jobs {args.cores}, ideal) {total / args.cores / 3600:.1f} h wall")
    if args.json:
        args.json.write_text(json.dumps({"config": str(study.path), "trainings": rows, "evaluations": evals,
                                         "cpu_hours": total / 3600, "cores": args.cores,
                                         "wall_hours": total / args.cores / 3600}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
