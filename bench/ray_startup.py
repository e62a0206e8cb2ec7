"""What a local Ray costs a run (``rbla evaluate --jobs N`` / ``rbla demo``): each repeat, in a fresh interpreter,
imports ray, starts a local Ray of ``--cpus`` CPUs the way the engine does (``engine.ray_session``: loopback
only, no dashboard, Ray's logs kept out of the terminal), runs one task per CPU that does nothing, then ones that
import torch (a worker's first task of a real run), and stops Ray. Prints the median seconds of each step and the
CPU seconds of the whole (this process and every Ray process it started and reaped), beside the load average:
this machine is shared, so read the wall times with it.

    python bench/ray_startup.py [--repeats 3] [--cpus 2] [--json FILE]

``--jobs 1`` (no Ray at all) costs none of this."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PROBE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from robustbench_labelaug.engine import ray_session
cpus = int(sys.argv[1])
timings = {}
with ray_session(cpus, None, timings):
    import ray

    t1 = time.perf_counter()
    nothing = ray.remote(num_cpus=1)(lambda: None)
    ray.get([nothing.remote() for _ in range(cpus)])
    t2 = time.perf_counter()

    def with_torch():
        import torch  # what every task of a real run imports first
        return torch.get_num_threads()

    ray.get([ray.remote(num_cpus=1)(with_torch).remote() for _ in range(cpus)])
    t3 = time.perf_counter()
t4 = time.perf_counter()
me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"ray_start": timings["ray_start"], "first_tasks": t2 - t1, "torch_tasks": t3 - t2,
                  "ray_stop": timings["ray_stop"], "total": t4 - t0,
                  "cpu": me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime}))
"""

STEPS = ("ray_start", "first_tasks", "torch_tasks", "ray_stop", "total", "cpu")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the numbers here")
    args = parser.parse_args()
    runs, loads = [], []
    for _ in range(args.repeats):
        loads.append(os.getloadavg()[0])
        proc = subprocess.run([sys.executable, "-c", PROBE, str(args.cpus)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    medians = {k: statistics.median(r[k] for r in runs) for k in STEPS}
    import ray

    summary = {"ray": ray.__version__, "cpus": args.cpus, "repeats": args.repeats, "cores": os.cpu_count(),
               "load_average": [round(x, 1) for x in loads], "median_s": {k: round(v, 2) for k, v in medians.items()},
               "runs": runs, "date": time.strftime("%Y-%m-%d")}
    print(f"local Ray {ray.__version__}, {args.cpus} CPUs, {args.repeats} repeats (load average at each start: "
          f"{', '.join(f'{x:.1f}' for x in loads)} on {os.cpu_count()} cores); median seconds:")
    labels = {"ray_start": "import ray + ray.init", "first_tasks": f"{args.cpus} empty tasks (workers start)",
              "torch_tasks": f"{args.cpus} tasks importing torch", "ray_stop": "ray.shutdown",
              "total": "whole (wall)", "cpu": "whole (CPU, every process)"}
    for key in STEPS:
        print(f"  {labels[key]:38s} {medians[key]:7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
