"""The Ray engine (robustbench_labelaug.engine): a digits evaluation on a two-node Ray cluster on this machine
gives per example what one process gives, a worker killed mid-task is retried from its cache, and a task's
UserError ends `rbla evaluate --address` with one line and exit 2, keeping what had finished."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robustbench_labelaug.engine import RAY_LOOPBACK_ENV, RAY_QUIET_ENV, Folders, Work, run_works
from robustbench_labelaug.errors import UserError
from robustbench_labelaug.results.vocab import default_protocol
from robustbench_labelaug.runner import evaluate_config, load_config
from robustbench_labelaug.runner.tasks import evaluate_group, evaluation_works
from robustbench_labelaug.zoo import get_entry

from .conftest import REPO, run_cli

EPS = get_entry("digits_adv_plus").eps


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, trained_digits_model) -> Path:
    """The tiny trained digits model saved as rbla train saves it, exported as the zoo's digits_adv_plus."""
    from robustbench_labelaug.zoo import export_checkpoint

    model = trained_digits_model
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth.tar"
    torch.save({"version": 1, "epoch": 1, "arch": "resnet8_tiny", "num_classes": 10, "num_ops": 1,
                "mean": model.normalize.mean.flatten().tolist(), "std": model.normalize.std.flatten().tolist(),
                "state_dict": model.state_dict(),
                "args": {"adv_mode": "adv_plus", "la_delta": 0.03, "adv_eps": EPS, "dataset": "digits",
                         "model": "resnet8_tiny", "la_protocol": str(default_protocol("adv_plus"))}}, path)
    models = tmp_path_factory.mktemp("models")
    export_checkpoint(path, "digits_adv_plus", models)
    return models


def _config(folder: Path, model_dir: Path) -> Path:
    """Two models (the same weights under two names) x clean and a 3-step PGD on 24 examples."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"runtime": {"batch_size": 12, "device": "cpu", "output": str(folder / "out"), "progress": False,
                       "plots": False, "model_dir": str(model_dir)},
           "datasets": {"digits": {"name": "digits", "split": "test"}},
           "models": [{"zoo": "digits_adv_plus", "name": "a"}, {"zoo": "digits_adv_plus", "name": "b"}],
           "evaluators": [{"name": "clean", "settings": {"n_examples": 24}},
                          {"id": "pgd3", "name": "pgd",
                           "settings": {"protocol": "sound", "eps": EPS, "steps": 3, "n_examples": 24}}]}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes of one CPU each on this machine, on the loopback address (this process is their driver)."""
    for key, value in {**RAY_LOOPBACK_ENV, **RAY_QUIET_ENV}.items():
        os.environ.setdefault(key, value)  # before ray is imported: every node stays on 127.0.0.1
    paths = os.environ.get("PYTHONPATH")  # the nodes' workers import this test module's task functions
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), paths) if p)
    import ray
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, connect=True,
                    head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    yield nodes
    ray.shutdown()
    nodes.shutdown()
    if paths is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = paths


@pytest.fixture(scope="module")
def in_process(tmp_path_factory, model_dir) -> Path:
    """The reference: `rbla evaluate` with --jobs 1 (in this process, no Ray)."""
    folder = tmp_path_factory.mktemp("one")
    evaluate_config(load_config(_config(folder, model_dir)), plots=False, leaderboard=False)
    return folder / "out"


def _per_example(out: Path, key: str) -> dict[str, np.ndarray]:
    arrays = {}
    for path in sorted((out / key).rglob("*.npz")):
        with np.load(path, allow_pickle=False) as data:
            arrays.update({f"{path.relative_to(out / key)}:{k}": data[k] for k in data.files})
    return arrays


def _results(out: Path, key: str) -> dict:
    info = json.loads((out / "model_info" / f"{key}.json").read_text())
    return {rid: {"metrics": r["metrics"], "classwise": r["classwise"]}
            for rid, r in info["labelaug"]["results"].items()}


def _same_as_in_process(out: Path, reference: Path, key: str) -> None:
    assert _results(out, key) == _results(reference, key)
    mine, theirs = _per_example(out, key), _per_example(reference, key)
    assert mine.keys() == theirs.keys() and mine  # the per-example arrays of every evaluator
    for name in mine:
        np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name)


@pytest.mark.slow
def test_two_node_cluster_gives_per_example_what_one_process_gives(tmp_path, model_dir, cluster, in_process):
    import ray

    assert len(ray.nodes()) == 2 and {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    cfg = load_config(_config(tmp_path, model_dir))
    out = tmp_path / "out"
    works = evaluation_works(cfg, out, ["a", "b"], fast=False, device="cpu", log_dir=out / "logs")
    outcomes = run_works(works, jobs=2, progress=False)  # this process is the cluster's driver: Ray runs them
    assert {o.node for o in outcomes.values()} == {n["NodeID"] for n in ray.nodes()}  # both nodes worked
    assert all(o.value["results"] and o.cpu_seconds > 0 for o in outcomes.values())
    evaluate_config(cfg, plots=False, leaderboard=False)  # only reads the results the driver wrote
    for key in ("a", "b"):
        _same_as_in_process(out, in_process, key)
    assert sorted(p.name for p in (out / "logs").glob("*.log")) == [
        "out_a_clean.log", "out_a_pgd3.log", "out_b_clean.log", "out_b_pgd3.log"]


def _dies_once(folders: Folders, marker: str, cfg, output, key, ids, *rest):
    """The group's first evaluator is computed and cached, then the worker dies (once: ``marker`` remembers)."""
    if not Path(marker).exists():
        first = evaluate_group(folders, cfg, output, key, ids[:1], *rest)
        Path(marker).write_text(json.dumps({"pid": os.getpid(),
                                            "wall": first["results"][ids[0]]["details"]["wall_seconds"]}))
        os._exit(1)
    return evaluate_group(folders, cfg, output, key, ids, *rest) | {"pid": os.getpid()}


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_retried_from_its_cache(tmp_path, model_dir, cluster, in_process):
    cfg = load_config(_config(tmp_path, model_dir))
    out, marker = tmp_path / "out", tmp_path / "died"
    work = Work("evaluate a", evaluate_group, (cfg, str(out), "a", ["clean", "pgd3"], False, "cpu", False),
                folders={"eval": out}, seed=(("eval", "a"),))
    outcome = run_works([replace(work, fn=_dies_once, args=(str(marker), *work.args))], jobs=2,
                        progress=False)["evaluate a"]
    died = json.loads(marker.read_text())
    assert outcome.value["pid"] != died["pid"]  # a second worker finished it
    # the retry took the clean result the lost attempt had cached, not a recomputed one
    assert outcome.value["results"]["clean"]["details"]["wall_seconds"] == died["wall"]
    cfg.models = [m for m in cfg.models if m.key == "a"]
    evaluate_config(cfg, plots=False, leaderboard=False)
    _same_as_in_process(out, in_process, "a")


def _fail(folders: Folders, message: str) -> None:
    raise UserError(message)


@pytest.mark.slow
def test_a_failed_task_stops_the_run_and_keeps_what_finished(tmp_path, model_dir, cluster):
    """`rbla evaluate --address`: model b's stale PGD result stops its task (after model a's, which it waits
    for): one line, exit 2, the driver's path named; model a's results are kept."""
    cfg = _config(tmp_path, model_dir)
    stale = tmp_path / "out" / "b" / "results" / "pgd3.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"fingerprint": "another", "id": "pgd3", "result": {}}))
    result = run_cli("evaluate", "-c", str(cfg), "--address", cluster.address, "--no-progress", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(stale) in lines[0] and "other settings" in lines[0], result.stderr[-3000:]
    assert "out_b_pgd3.log" in lines[0] and (tmp_path / "out" / "logs" / "out_b_pgd3.log").is_file()
    assert json.loads(stale.read_text())["fingerprint"] == "another"  # left as it was
    assert json.loads((tmp_path / "out" / "a" / "results" / "pgd3.json").read_text())["result"]["metrics"]
    # the engine alone: a UserError keeps its type; a work after it never runs
    with pytest.raises(UserError, match=r"^no good: fix it \(task 'x'\)$"):
        run_works([Work("x", _fail, ("no good: fix it",)), Work("y", _fail, ("never",), after=("x",))], jobs=2,
                  progress=False)


def test_jobs_1_runs_in_this_process_without_ray(tmp_path):
    """--jobs 1: the works run here, in dependency order (long ones first), writing their folders directly."""
    seen = []

    def note(folders: Folders, name: str) -> str:
        (folders["out"] / f"{name}.txt").write_text(name)
        return name

    works = [Work("b", note, ("b",), after=("a",), folders={"out": tmp_path}, done=seen.append),
             Work("a", note, ("a",), folders={"out": tmp_path}, done=seen.append),
             Work("c", note, ("c",), folders={"out": tmp_path}, done=seen.append, first=True),
             Work("d", note, ("d",), after=("gone",), folders={"out": tmp_path}, done=seen.append)]
    threads = torch.get_num_threads()
    outcomes = run_works(works, jobs=1, progress=False)
    assert seen == ["c", "a", "b", "d"] and all(o.node is None for o in outcomes.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt", "c.txt", "d.txt"]
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="wait for each other"):
        run_works([Work("p", note, ("p",), after=("q",)), Work("q", note, ("q",), after=("p",))], jobs=1)
