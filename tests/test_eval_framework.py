"""The evaluator framework (evaluation/base.py) in real processes: a run killed with SIGKILL resumes without
recomputing finished parts and ends with the uninterrupted run's result; a 2-process torchrun (gloo, CPU)
gives the single process's per-sample predictions, metrics and generated corruptions; bad input is refused
before anything is written."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robustbench_labelaug import UserError, create_classifier
from robustbench_labelaug.data import create_dataset, imagenet_wnids
from robustbench_labelaug.evaluation import EvalContext, create_evaluator
from robustbench_labelaug.evaluation.base import class_interleaved

from .fixtures_imagenet import make_imagenet_folder

WORKER = Path(__file__).with_name("_eval_worker.py")
CORRUPTIONS, SEVERITIES = "gaussian_noise,pixelate", "1,2"


@pytest.fixture(scope="module")
def state_dict(tmp_path_factory, trained_digits_model) -> Path:
    path = tmp_path_factory.mktemp("model") / "digits.pt"
    torch.save(trained_digits_model.state_dict(), path)
    return path


def worker_args(tmp: Path, state_dict: Path, **kw) -> list[str]:
    args = {"state-dict": state_dict, "out": tmp / "out", "cache": tmp / "cache", "result": tmp / "result.json",
            "part-log": tmp / "log.txt", "corruptions": CORRUPTIONS, "severities": SEVERITIES, **kw}
    return [str(WORKER)] + [f"--{k}={v}" for k, v in args.items()]


def worker_env() -> dict[str, str]:
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


def run_in_process(model: nn.Module, dataset, out: Path, cache: Path, evaluators=("clean", "corruptions"),
                   n: int = 48, severities: str = SEVERITIES) -> dict:
    results = {}
    for name in evaluators:
        settings = {"n_examples": n}
        if name == "corruptions":
            settings.update(corruptions=CORRUPTIONS, severities=severities, cache_dir=str(cache))
        ctx = EvalContext(num_classes=10, out_dir=out, batch_size=16, progress=False)
        results[name] = json.loads(json.dumps(create_evaluator(name, **settings).run(model, dataset, ctx).to_dict(),
                                              sort_keys=True))
    return results


def part_files(out: Path) -> dict[str, os.stat_result]:
    return {str(p.relative_to(out)): p.stat() for p in sorted(out.rglob("*.npz"))}


def logged_parts(log: Path) -> list[str]:
    return log.read_text().split("\n")[:-1] if log.exists() else []


@pytest.mark.slow
def test_killed_run_resumes_without_recomputing(tmp_path, state_dict, trained_digits_model, digits_test):
    """SIGKILL after two of six corruption parts are cached; the re-run computes only the other four."""
    args = worker_args(tmp_path, state_dict, evaluators="corruptions", severities="1,2,3", delay=1.0)
    out = tmp_path / "out" / "corruptions"
    proc = subprocess.Popen([sys.executable, *args], env=worker_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while len(list(out.glob("*.npz"))) < 2:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the worker wrote no part in 90 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "result.json").exists()
    before = part_files(tmp_path / "out")
    done = logged_parts(tmp_path / "log.txt")
    assert 2 <= len(before) < 6 and len(done) >= len(before)

    (tmp_path / "log.txt").unlink()
    args = worker_args(tmp_path, state_dict, evaluators="corruptions", severities="1,2,3", delay=0)
    resumed = subprocess.run([sys.executable, *args], env=worker_env(), capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    recomputed = logged_parts(tmp_path / "log.txt")
    finished = {f"corruptions {name[len('corruptions/'):-4].replace('__', '/')} 0" for name in before}
    assert len(recomputed) == 6 - len(before) and not finished & set(recomputed)
    after = part_files(tmp_path / "out")
    for name, st in before.items():  # finished parts were neither rewritten nor replaced
        assert (after[name].st_ino, after[name].st_mtime_ns) == (st.st_ino, st.st_mtime_ns), name
    assert len(after) == 6

    reference = run_in_process(trained_digits_model, digits_test, tmp_path / "ref", tmp_path / "ref_cache",
                               evaluators=("corruptions",), severities="1,2,3")
    result = json.loads((tmp_path / "result.json").read_text())
    assert result == reference
    assert len(result["corruptions"]["details"]["E"]["gaussian_noise"]) == 3


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path, state_dict, trained_digits_model, digits_test):
    """Clean and (generated) corruption evaluation under torchrun --nproc_per_node 2 (gloo): the same per-sample
    predictions, metrics and corrupted images as one process; each rank computed half of every part."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ddp = tmp_path / "ddp"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(port),
                           *worker_args(ddp, state_dict, **{"n-examples": 47})],
                          env=worker_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = tmp_path / "single"
    reference = run_in_process(trained_digits_model, digits_test, single / "out", single / "cache", n=47)
    assert json.loads((ddp / "result.json").read_text()) == reference

    log = logged_parts(ddp / "log.txt")
    assert sorted(log) == sorted(f"{e} {s} {r}" for e, parts in (("clean", ["all"]), ("corruptions", [
        f"{c}/{v}" for c in CORRUPTIONS.split(",") for v in SEVERITIES.split(",")])) for s in parts for r in (0, 1))
    files = sorted(p.relative_to(single / "out") for p in (single / "out").rglob("*.npz"))
    assert len(files) == 5
    for rel in files:
        with np.load(single / "out" / rel) as a, np.load(ddp / "out" / rel) as b:
            assert a.files == b.files
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{rel}: {key}")
            assert a["index"].tolist() == class_interleaved(digits_test.targets, 47)
    # each rank generated and cached only its own share (no images passed between ranks): two shard files per
    # part whose rows are exactly the rank's evaluated images, together the single process's shard
    single_files = sorted((single / "cache").rglob("shard-0-of-1.npz"))
    assert len(single_files) == 4 and not list((single / "cache").rglob("shard-*-of-2.npz"))
    chosen = class_interleaved(digits_test.targets, 47)
    for whole in single_files:
        folder = ddp / "cache" / whole.parent.relative_to(single / "cache")
        assert sorted(f.name for f in folder.glob("*.npz")) == ["shard-0-of-2.npz", "shard-1-of-2.npz"]
        with np.load(whole) as a:
            for rank in (0, 1):
                with np.load(folder / f"shard-{rank}-of-2.npz") as b:
                    assert b["index"].tolist() == chosen[rank::2]
                    rows = np.searchsorted(a["index"], b["index"])
                    for key in ("labels", "images"):
                        np.testing.assert_array_equal(a[key][rows], b[key], err_msg=f"{folder}: {key}")
    # one process reads the 2-rank cache (shard by shard) without generating anything
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("imagecorruptions.corrupt", lambda *a, **k: (_ for _ in ()).throw(AssertionError("regenerated")))
        again = run_in_process(trained_digits_model, digits_test, tmp_path / "again", ddp / "cache", n=47)
    assert again == reference


class Constant(nn.Module):
    """A model with ``width`` outputs, counting its calls."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width, self.calls = width, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.zeros(x.shape[0], self.width)


@pytest.mark.parametrize("name", ["clean", "corruptions"])
def test_wrong_output_width_is_refused(tmp_path, digits_test, name):
    settings = {"cache_dir": str(tmp_path / "cache"), "corruptions": "fog"} if name == "corruptions" else {}
    evaluator = create_evaluator(name, n_examples=4, **settings)
    with pytest.raises(UserError, match=r"outputs 7 logits but the data has K=10"):
        evaluator.run(Constant(7), digits_test, EvalContext(num_classes=10, out_dir=tmp_path / "out", progress=False))
    with pytest.raises(UserError, match=r"model has K=3 classes but the data has 10"):
        evaluator.run(create_classifier("resnet8_tiny", 3, 1), digits_test,
                      EvalContext(num_classes=10, out_dir=tmp_path / "out", progress=False))
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_folder_not_matching_layout_is_refused_before_work(tmp_path):
    """An ImageNet-C data_dir that is really the clean folder: UserError naming the path and layout; the model
    is never called and nothing is written."""
    make_imagenet_folder(tmp_path / "imagenet", wnids=imagenet_wnids()[:2], per_class=1)
    dataset = create_dataset("imagenet", tmp_path / "imagenet", "val", input_size=32)
    model = Constant(1000)
    evaluator = create_evaluator("corruptions", data_dir=str(tmp_path / "imagenet" / "val"))
    with pytest.raises(UserError, match=r"val/gaussian_noise/1 does not exist: ImageNet-C must be laid out as "
                                        r"<root>/<corruption>/<severity 1-5>/<wnid>/<image>"):
        evaluator.run(model, dataset, EvalContext(num_classes=1000, out_dir=tmp_path / "out", progress=False))
    assert model.calls == 0 and not (tmp_path / "out").exists()


def test_changed_settings_do_not_mix_with_cached_parts(tmp_path, digits_test):
    model = Constant(10)
    ctx = EvalContext(num_classes=10, out_dir=tmp_path / "out", progress=False)
    create_evaluator("clean", n_examples=8).run(model, digits_test, ctx)
    with pytest.raises(UserError, match=r"written by a clean run with other settings"):
        create_evaluator("clean", n_examples=9).run(model, digits_test, ctx)


def test_n_examples_are_spread_over_classes():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])  # a class-sorted folder
    assert class_interleaved(labels, 3) == [0, 4, 6]
    assert class_interleaved(labels, 6) == [0, 1, 4, 5, 6, 7]
    assert class_interleaved(labels, 8) == [0, 1, 2, 4, 5, 6, 7, 8]
