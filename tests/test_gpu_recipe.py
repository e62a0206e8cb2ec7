"""Issue 11: the ImageNet recipe made faithful (Adv+ head from the pretrained classifier, recorded starting
weights, no silent ColorJitter, global batch) and fit for GPUs and clusters (bf16 default, fp16 attack-loss
scaling, channels_last before the hook, workers, SyncBN, torch.compile, NaN stop on every rank, rank-0 cache
decisions, per-rank RNG on resume, srun). Multi-process parts run with gloo on CPU."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from torch import nn

from robustbench_labelaug import AdvLabelAug, UserError, create_classifier
from robustbench_labelaug.distributed import DistInfo, init_distributed, launch_env
from robustbench_labelaug.models.pretrained import resolve_pretrained_name, same_architecture
from robustbench_labelaug.train import parse_args, process_setup, read_checkpoint, train
from robustbench_labelaug.train.engine import train_one_epoch

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("_gpu_recipe_worker.py")
FAST = ["--no-progress", "--log-interval", "0", "--seed", "0", "--lr", "0.05"]
TINY_PRETRAINED = "test_efficientnet"  # a timm architecture with a pretrained tag (r160_in1k, 1000 classes), ~0.1M


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pretrained_file(tmp_path_factory) -> Path:
    """A local 'pretrained' 1000-class file for TINY_PRETRAINED (random weights, non-zero head bias): no download."""
    torch.manual_seed(1)
    net = timm.create_model(TINY_PRETRAINED, num_classes=1000)
    with torch.no_grad():
        net.get_classifier().bias.normal_()
    path = tmp_path_factory.mktemp("weights") / "pretrained.pth"
    torch.save(net.state_dict(), path)
    return path


# -- 1. Adv+ head from the pretrained classifier ------------------------------------------------------------------
def test_adv_plus_starts_from_the_pretrained_k_way_head(pretrained_file):
    overlay = {"pretrained_cfg_overlay": {"file": str(pretrained_file)}}
    reference = timm.create_model(TINY_PRETRAINED, num_classes=1000)
    reference.load_state_dict(torch.load(pretrained_file, weights_only=True))
    plus = create_classifier(TINY_PRETRAINED, 1000, 1, pretrained=True, **overlay).eval()
    std = create_classifier(TINY_PRETRAINED, 1000, 0, pretrained=True, **overlay).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        want = reference.eval()(plus.normalize(x))
        got_plus, got_std = plus(x), std(x)
    assert got_plus.shape == (3, 1001) and got_std.shape == (3, 1000)
    torch.testing.assert_close(got_plus[:, :1000], want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_std, want, rtol=1e-5, atol=1e-5)
    head = plus.net.get_classifier()
    assert torch.count_nonzero(head.weight[1000:]) == 0 and torch.count_nonzero(head.bias[1000:]) == 0  # zeros
    assert torch.all(got_plus[:, 1000] == 0)
    mean = create_classifier(TINY_PRETRAINED, 1000, 2, pretrained=True, extra_head_init="mean", **overlay)
    w = mean.net.get_classifier().weight.detach()
    torch.testing.assert_close(w[1000], w[:1000].mean(0))
    torch.testing.assert_close(w[1001], w[:1000].mean(0))


# -- 2. the starting weights are recorded --------------------------------------------------------------------------
def test_pretrained_tag_resolution_and_tagged_architectures():
    assert resolve_pretrained_name("resnet50", "tv_in1k") == "resnet50.tv_in1k"
    assert resolve_pretrained_name("resnet50", "resnet50.tv_in1k") == "resnet50.tv_in1k"
    assert resolve_pretrained_name("resnet50.tv_in1k") == "resnet50.tv_in1k"
    assert resolve_pretrained_name("resnet50") == "resnet50.a1_in1k"  # timm's default, now explicit
    with pytest.raises(UserError, match="name different weights"):
        resolve_pretrained_name("resnet50.a1_in1k", "tv_in1k")
    with pytest.raises(UserError, match="no pretrained tag 'nope'"):
        resolve_pretrained_name("resnet50", "nope")
    assert same_architecture("resnet50", "resnet50.tv_in1k") and same_architecture("resnet50.tv_in1k", "resnet50.tv_in1k")
    assert not same_architecture("resnet50.a1_in1k", "resnet50.tv_in1k") and not same_architecture("resnet18", "resnet50")


def test_weights_from_a_file_record_no_made_up_tag(tmp_path, pretrained_file):
    """--pretrained-file without a tag: the weights are the file's (recorded with its sha256), so args.model stays
    untagged and no tag is recorded (timm's default tag, resnet50 -> a1_in1k, would be a guess)."""
    args = parse_args(["--model", "resnet50", "--pretrained-file", str(pretrained_file)])
    assert process_setup.starting_weights(args) == {"pretrained_cfg_overlay": {"file": str(pretrained_file)}}
    assert args.pretrained and args.model == "resnet50" and args.pretrained_tag is None
    args.pretrained_sha256 = "abc"
    assert process_setup.starting_point(args) == f"file {pretrained_file} (sha256 abc)"
    hub = parse_args(["--model", "resnet50", "--pretrained-tag", "tv_in1k"])
    process_setup.starting_weights(hub)
    assert hub.model == "resnet50.tv_in1k" and hub.pretrained_tag == "tv_in1k"


@pytest.mark.slow
def test_train_records_tag_and_sha256_and_export_loads_the_tagged_architecture(tmp_path, pretrained_file):
    from robustbench_labelaug.zoo import export_checkpoint

    args = parse_args(["--model", TINY_PRETRAINED, "--pretrained-tag", "r160_in1k", "--pretrained-file",
                       str(pretrained_file), "--adv-mode", "std", "--epochs", "1", "--output", str(tmp_path),
                       "--experiment", "tagged", *FAST])
    result = train(args)
    state = read_checkpoint(result.checkpoint)
    assert state["arch"] == f"{TINY_PRETRAINED}.r160_in1k"
    assert state["args"]["pretrained"] and state["args"]["pretrained_tag"] == "r160_in1k"
    assert state["args"]["pretrained_sha256"] == hashlib.sha256(pretrained_file.read_bytes()).hexdigest()
    exported = export_checkpoint(result.checkpoint, "tagged_tiny", tmp_path / "models", dataset="digits")
    zoo_state = torch.load(exported.path, weights_only=True)
    assert zoo_state["arch"] == f"{TINY_PRETRAINED}.r160_in1k"
    model = create_classifier(zoo_state["arch"], 10, 0)
    model.load_state_dict(zoo_state["state_dict"])  # the tagged name builds the same network


# -- 3. no silent ColorJitter ---------------------------------------------------------------------------------------
def test_training_transform_has_no_color_jitter_unless_asked():
    from torchvision import transforms

    from robustbench_labelaug.data.folder import folder_transform

    def jitters(t):
        return [m for m in t.transforms if isinstance(m, transforms.ColorJitter)]

    assert parse_args([]).color_jitter == 0.0
    assert jitters(folder_transform(32, True)) == []
    assert len(jitters(folder_transform(32, True, color_jitter=0.4))) == 1
    assert {type(m).__name__ for m in folder_transform(32, True).transforms} >= {
        "RandomResizedCropAndInterpolation", "RandomHorizontalFlip"}


# -- 4. global batch, SyncBN ----------------------------------------------------------------------------------------
def test_batch_size_is_global_and_must_split_over_processes():
    assert process_setup.per_process_batch(64, 1) == 64 and process_setup.per_process_batch(64, 8) == 8
    with pytest.raises(UserError, match="global batch but does not split over 3 processes"):
        process_setup.per_process_batch(64, 3)
    assert "GLOBAL batch size" in _help()


def test_sync_bn_converts_under_several_cuda_processes_and_refuses_cpu():
    args = argparse.Namespace(sync_bn=True)
    model = create_classifier("resnet8_tiny", 10, 0)
    converted = process_setup.apply_sync_bn(model, args, DistInfo(0, 2, 0), torch.device("cuda", 0))
    assert any(isinstance(m, nn.SyncBatchNorm) for m in converted.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) and not isinstance(m, nn.SyncBatchNorm)
                   for m in converted.modules())
    assert process_setup.apply_sync_bn(model, args, DistInfo(), torch.device("cpu")) is model  # one process: nothing
    with pytest.raises(UserError, match="--sync-bn needs CUDA"):
        process_setup.apply_sync_bn(model, args, DistInfo(0, 2, 0), torch.device("cpu"))


def _help() -> str:
    proc = subprocess.run([sys.executable, "-m", "robustbench_labelaug", "train", "--help"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    return " ".join(proc.stdout.split())


# -- 5. workers, channels_last before the hook, torch.compile -----------------------------------------------------------
def test_default_workers(monkeypatch):
    args = argparse.Namespace(workers=None, dataset="imagenet")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert process_setup.default_workers(args, torch.device("cuda", 0)) == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert process_setup.default_workers(args, torch.device("cuda", 0)) == process_setup.MAX_DEFAULT_WORKERS
    assert process_setup.default_workers(args, torch.device("cpu")) == 0
    assert process_setup.default_workers(argparse.Namespace(workers=3, dataset="imagenet"), torch.device("cpu")) == 3
    assert parse_args([]).workers is None


def test_channels_last_reaches_the_hook():
    seen = []

    def hook(x, y):
        seen.append(x.is_contiguous(memory_format=torch.channels_last))
        return x, torch.nn.functional.one_hot(y, 10).float()

    model = create_classifier("resnet8_tiny", 10, 0).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    train_one_epoch(0, model, [(torch.rand(4, 3, 32, 32), torch.arange(4))], opt,
                    lambda out, t: torch.sum(-t * out.log_softmax(-1), -1).mean(), hook, torch.device("cpu"),
                    channels_last=True, progress=False)
    assert seen == [True]


@pytest.mark.slow
def test_compile_flag_trains(tmp_path):
    args = parse_args(["--compile", "eager", "--adv-mode", "adv_plus", "--adv-steps", "1", "--epochs", "1",
                       "--output", str(tmp_path), "--experiment", "compiled", *FAST])
    assert parse_args(["--compile"]).compile == "inductor"
    result = train(args)
    state = read_checkpoint(result.checkpoint)
    assert state["args"]["compile"] == "eager" and not any(k.startswith("_orig_mod") for k in state["state_dict"])
    assert state["metrics"]["eval_top1"] > 30  # it learned (10 classes: chance is 10)


# -- 6. bf16 by default; fp16 attack loss scaled ------------------------------------------------------------------------
def _confident_linear(k: int = 4) -> nn.Module:
    """A linear model so sure of class 0 (logit margin 16) that d loss / d logit ~ 1e-8: zero in float16."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, k))
    with torch.no_grad():
        net[1].weight.uniform_(-0.01, 0.01)
        net[1].bias.zero_()
        net[1].bias[0] = 16.0
    return net


def test_amp_defaults_to_bfloat16():
    assert parse_args([]).amp_dtype == "bfloat16"


def test_fp16_attack_gradient_is_scaled_not_flushed(monkeypatch):
    import robustbench_labelaug.hook.adv_label_aug as hook_module

    net = _confident_linear()
    x, y = torch.rand(8, 3, 4, 4) * 0.6 + 0.2, torch.zeros(8, dtype=torch.long)

    def attack(dtype):
        hook = AdvLabelAug(net, 4, mode="adv", eps=0.03, steps=2, random_start=False, autocast_dtype=dtype)
        return hook(x, y)[0]

    reference = attack(None)  # float32: the attack moves every pixel by eps
    torch.testing.assert_close((reference - x).abs().amax(), torch.tensor(0.03))
    scaled = attack(torch.float16)
    assert torch.equal(torch.sign(scaled - x), torch.sign(reference - x))
    monkeypatch.setattr(hook_module, "scaled_attack_model", lambda model, dtype, **_: model)  # the unscaled attack
    unscaled = attack(torch.float16)
    assert torch.equal(unscaled, x)  # its float16 gradient underflowed to 0: sign(0) = 0, no step


# -- 8, 9, 11. two srun tasks (no torchrun): one world; a NaN on one rank stops both; rank 0 decides the cache ------
@pytest.fixture(scope="module")
def two_srun_tasks(tmp_path_factory) -> list[dict]:
    """Both ranks' reports (tests/_gpu_recipe_worker.py), launched the way srun does: SLURM_* variables only."""
    from robustbench_labelaug.data import create_dataset
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator

    sys.path.insert(0, str(WORKER.parent))
    try:
        from _gpu_recipe_worker import create_classifier_tiny
    finally:
        sys.path.pop(0)
    tmp = tmp_path_factory.mktemp("srun")
    single = create_evaluator("clean", n_examples=16).run(  # rank 0's cache; rank 1's folder stays empty
        create_classifier_tiny(), create_dataset("digits", split="test"),
        EvalContext(num_classes=10, out_dir=tmp / "rank0", batch_size=8, progress=False))
    (tmp / "rank1").mkdir()
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE", "LOCAL_"))}
        env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                   PYTHONWARNINGS="ignore", SLURM_PROCID=str(rank), SLURM_STEP_NUM_TASKS="2", SLURM_NTASKS="2",
                   SLURM_LOCALID=str(rank))
        procs.append(subprocess.Popen([sys.executable, str(WORKER), str(tmp / f"rank{rank}")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    try:
        for p in procs:  # a rank that hangs (the bugs these tests catch) fails the test at the timeout
            stdout, stderr = p.communicate(timeout=240)
            assert p.returncode == 0, stderr[-2000:]
            outs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outs = sorted(outs, key=lambda o: o["rank"])
    for o in outs:
        o["single_error"] = single.metrics["error"]
    return outs


@pytest.mark.slow
def test_srun_tasks_form_one_world(two_srun_tasks):
    assert [(o["rank"], o["world"], o["local_rank"]) for o in two_srun_tasks] == [(0, 2, 0), (1, 2, 1)]
    assert [o["sum"] for o in two_srun_tasks] == [3.0, 3.0]


@pytest.mark.slow
def test_nan_on_one_rank_stops_all_ranks_at_the_same_step(two_srun_tasks):
    rank0, rank1 = two_srun_tasks
    assert "nan at epoch 0, step 1" in rank1["stopped"]
    assert rank0["stopped"] == "loss became non-finite on another rank at epoch 0, step 1"


@pytest.mark.slow
def test_cached_split_on_rank_0_only_is_used_by_every_rank(two_srun_tasks):
    assert [o["predicted"] for o in two_srun_tasks] == [0, 0]  # nobody recomputed: rank 0's cache decided
    assert [o["error"] for o in two_srun_tasks] == [two_srun_tasks[0]["single_error"]] * 2


# -- 10. per-rank RNG states: exact resume on 2 ranks ----------------------------------------------------------------------
@pytest.mark.slow
def test_two_rank_resume_is_bit_identical(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}

    def torchrun(*flags):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(_free_port()), "-m", "robustbench_labelaug", "train", "--adv-mode", "adv_plus", "--adv-steps",
               "1", "--epochs", "2", "--output", str(tmp_path), "-b", "64", "--checkpoint-hist", "2", *FAST, *flags]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]

    torchrun("--experiment", "full")
    first = read_checkpoint(tmp_path / "full" / "checkpoint-0.pth.tar")
    assert len(first["rng_ranks"]) == 2
    assert not torch.equal(first["rng_ranks"][0]["torch"], first["rng_ranks"][1]["torch"])
    (tmp_path / "resumed").mkdir()
    (tmp_path / "resumed" / "last.pth.tar").write_bytes((tmp_path / "full" / "checkpoint-0.pth.tar").read_bytes())
    torchrun("--resume", str(tmp_path / "resumed" / "last.pth.tar"))
    a = read_checkpoint(tmp_path / "full" / "last.pth.tar")
    b = read_checkpoint(tmp_path / "resumed" / "last.pth.tar")
    assert a["epoch"] == b["epoch"] == 1
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    for rank in range(2):
        assert torch.equal(a["rng_ranks"][rank]["torch"], b["rng_ranks"][rank]["torch"])


# -- 11. srun without torchrun: refused without a rendezvous address ----------------------------------------------------------------------------------------
def test_srun_without_master_address_names_torchrun(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    with pytest.raises(UserError, match="MASTER_ADDR/MASTER_PORT are not set.*torchrun"):
        init_distributed("cpu")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")  # one task (or a batch script outside srun): one process
    assert launch_env() == DistInfo()


def test_cuda_without_index_means_the_local_gpu(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda dev: chosen.append(dev))
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    info, dev = init_distributed("cuda")
    assert dev == torch.device("cuda", 3) and chosen == [dev] and not info.distributed
