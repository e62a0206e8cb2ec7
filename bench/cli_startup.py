"""How long ``rbla`` takes to start: ``--help``, ``--version``, every ``<cmd> --help`` and ``leaderboard DIR``,
each run several times in a fresh interpreter (median wall time), side by side, and whether torch or timm was
imported (it must not be: the target is <= 0.5 s each on this project's 2-core machine).

    python bench/cli_startup.py [--runs 5] [--dir rbla_demo/eval] [--target 0.5]

``--dir`` is the folder ``rbla leaderboard`` renders (default: the demo's output, ``rbla_demo/eval``, where it
exists, else a model_info written into a temporary folder). The leaderboard files it writes there are rewritten
with the same content. Exit status 1 when a command imports torch/timm or misses the target."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Runs the CLI in-process, then reports which heavy modules it imported (stdout is the CLI's own; the report goes
# to stderr's last line).
PROBE = """
import contextlib, io, json, sys
from robustbench_labelaug.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        rc = main(sys.argv[1:])
    except SystemExit as exc:  # argparse --help
        rc = exc.code or 0
print(json.dumps({"rc": rc, "heavy": [m for m in ("torch", "timm") if m in sys.modules]}), file=sys.stderr)
"""

COMMANDS = ["demo", "train", "timm-train", "evaluate", "leaderboard", "zoo"]


def sample_dir(tmp: Path) -> Path:
    """A folder with one model_info file (what rbla evaluate writes), built without torch."""
    from robustbench_labelaug.results.measured import Declared, Measured
    from robustbench_labelaug.results.model_info import build_model_info

    results = {"clean": {"evaluator": "clean", "metrics": {"error": 4.2}, "settings": {}, "classwise": {},
                         "num_examples": 360}}
    declared = [Declared("clean", (Measured("clean_error", "clean err", 4.2),))]
    info = build_model_info({"key": "m", "dataset": "digits", "architecture": "resnet8_tiny", "training": "adv",
                             "num_classes": 10, "num_ops": 0}, results, declared=declared)
    (tmp / "model_info").mkdir(parents=True)
    (tmp / "model_info" / "m.json").write_text(json.dumps(info))
    return tmp


def time_command(argv: list[str], runs: int) -> tuple[float, list[str], int]:
    times, heavy, rc = [], [], 0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        report = json.loads(proc.stderr.strip().splitlines()[-1])
        heavy, rc = report["heavy"], report["rc"]
    return statistics.median(times), heavy, rc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default=None, help="folder for `rbla leaderboard DIR` (default: rbla_demo/eval)")
    parser.add_argument("--target", type=float, default=0.5, help="seconds per command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir) if args.dir else Path("rbla_demo/eval")
        if not (folder / "model_info").is_dir():
            folder = sample_dir(Path(tmp) / "eval")
        cases = [["--help"], ["--version"], *[[c, "--help"] for c in COMMANDS], ["leaderboard", str(folder)]]
        base, _, _ = time_command(["--version"], 1)  # warm the file cache
        floor = statistics.median(subprocess_time([sys.executable, "-c", "pass"]) for _ in range(args.runs))
        print(f"python -c pass (interpreter start-up alone): {floor:.3f} s")
        print(f"{'command':<42} {'median s':>9}  torch/timm imported  rc")
        failed = False
        for argv in cases:
            seconds, heavy, rc = time_command(argv, args.runs)
            bad = bool(heavy) or seconds > args.target or rc != 0
            failed |= bad
            name = "rbla " + " ".join(argv if argv[0] != "leaderboard" or len(argv) == 1 or argv[1] == "--help"
                                      else ["leaderboard", "DIR"])
            print(f"{name:<42} {seconds:>9.3f}  {', '.join(heavy) or 'no':<19}  {rc}{'   <-- FAIL' if bad else ''}")
    print(f"target: <= {args.target} s each, torch and timm not imported: {'FAILED' if failed else 'met'}")
    return 1 if failed else 0


def subprocess_time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
