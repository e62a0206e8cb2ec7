"""Real training runs on the embedded digits data (small epochs), resume identity, DDP, bad input."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchattacks

from robustbench_labelaug import UserError, create_classifier, k_way
from robustbench_labelaug.train import parse_args, read_checkpoint, train
from robustbench_labelaug.train.engine import NonFiniteLoss, train_one_epoch

from .conftest import run_cli, run_cli_inprocess

FAST = ["--no-progress", "--log-interval", "0", "--seed", "0", "--lr", "0.05"]


def _load(checkpoint: Path):
    state = read_checkpoint(checkpoint)
    model = create_classifier(state["arch"], state["num_classes"], state["num_ops"])
    model.load_state_dict(state["state_dict"])
    return k_way(model.eval()), state


def _pgd_accuracy(model, x, y, eps: float, steps: int = 10) -> float:
    torch.manual_seed(0)
    x_adv = torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps)(x, y)
    with torch.no_grad():
        return (model(x_adv).argmax(1) == y).float().mean().item()


@pytest.mark.slow
def test_std_is_accurate_and_adv_is_more_robust(tmp_path, digits_test):
    runs = {}
    for mode, epochs in (("std", 4), ("adv", 4)):
        args = parse_args(["--adv-mode", mode, "--adv-eps", "0.1", "--epochs", str(epochs), "--output",
                           str(tmp_path), "--experiment", mode, *FAST])
        runs[mode] = _load(train(args).checkpoint)[0]
    x, y = digits_test.tensors
    with torch.no_grad():
        std_clean = (runs["std"](x).argmax(1) == y).float().mean().item()
    assert std_clean >= 0.90
    std_robust, adv_robust = (_pgd_accuracy(runs[m], x, y, eps=0.1) for m in ("std", "adv"))
    assert adv_robust > std_robust + 0.2, (std_robust, adv_robust)


def test_checkpoint_holds_the_resume_state(tmp_path):
    args = parse_args(["--adv-mode", "adv_plus", "--adv-steps", "1", "--epochs", "2", "--output", str(tmp_path),
                       "--experiment", "ck", "--checkpoint-hist", "1", *FAST])
    result = train(args)
    files = sorted(p.name for p in result.output_dir.iterdir())
    assert files == ["args.yaml", "checkpoint-1.pth.tar", "last.pth.tar", "model_best.pth.tar", "summary.csv"]
    state = read_checkpoint(result.checkpoint)  # weights_only=True inside
    assert state["epoch"] == 1 and state["num_classes"] == 10 and state["num_ops"] == 1
    assert state["arch"] == "resnet8_tiny" and state["args"]["adv_mode"] == "adv_plus"
    assert {"torch", "numpy", "python"} <= set(state["rng"]) and "scheduler" in state and "optimizer" in state
    assert len((result.output_dir / "summary.csv").read_text().strip().splitlines()) == 3


def _train_cmd(out: Path, experiment: str, epochs: int, extra: list[str] = ()) -> list[str]:
    return [sys.executable, "-m", "robustbench_labelaug", "train", "--adv-mode", "adv_plus", "--adv-steps", "3",
            "--epochs", str(epochs), "--output", str(out), "--experiment", experiment, *FAST, *extra]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    full = subprocess.run(_train_cmd(tmp_path, "full", 3), capture_output=True, text=True, env=env, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]

    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(tmp_path, "killed", 3), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run_dir / "checkpoint-0.pth.tar").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(0.5)  # inside epoch 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_checkpoint(run_dir / "last.pth.tar")["epoch"] == 0, "kill came too late: epoch 1 had finished"

    resumed = subprocess.run(_train_cmd(tmp_path, "killed", 3, ["--resume", str(run_dir / "last.pth.tar")]),
                             capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = read_checkpoint(tmp_path / "full" / "last.pth.tar")
    b = read_checkpoint(run_dir / "last.pth.tar")
    assert a["epoch"] == b["epoch"] == 2
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_matches_single_process(tmp_path, digits_test):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    common = ["train", "--adv-mode", "std", "--epochs", "4", "--output", str(tmp_path), *FAST]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", str(_free_port()), "-m", "robustbench_labelaug", *common,
                          "--experiment", "ddp", "-b", "64"], capture_output=True, text=True, env=env, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = run_cli(*common, "--experiment", "single", "-b", "64")
    assert single.returncode == 0, single.stderr[-3000:]
    acc = {}
    for name in ("ddp", "single"):
        model, state = _load(tmp_path / name / "last.pth.tar")
        assert state["epoch"] == 3
        x, y = digits_test.tensors
        with torch.no_grad():
            acc[name] = (model(x).argmax(1) == y).sum().item() / len(y)  # exact: the count over n, not a float32 mean
        assert state["metrics"]["eval_top1"] == pytest.approx(100 * acc[name], abs=1e-6)
    assert acc["ddp"] >= 0.85 and abs(acc["ddp"] - acc["single"]) <= 0.05, acc


def test_non_finite_loss_stops_before_the_update():
    model = create_classifier("resnet8_tiny", 10, 0)
    with torch.no_grad():
        model.net.fc.bias.fill_(float("nan"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = [(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))]
    with pytest.raises(NonFiniteLoss, match="nan at epoch 0, step 0"):
        train_one_epoch(0, model, batch, opt, torch.nn.CrossEntropyLoss(), None, torch.device("cpu"),
                        progress=False)
    after = dict(model.named_parameters())
    for name, param in after.items():  # no optimizer step happened (BN statistics may move in the forward)
        torch.testing.assert_close(param.detach(), before[name], equal_nan=True, rtol=0, atol=0)


def test_non_finite_loss_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from robustbench_labelaug.train import run as run_module

    real = run_module.train_one_epoch

    def diverge_in_second_epoch(epoch, *args, **kwargs):
        if epoch == 1:
            raise NonFiniteLoss("loss became nan at epoch 1, step 3")
        return real(epoch, *args, **kwargs)

    monkeypatch.setattr(run_module, "train_one_epoch", diverge_in_second_epoch)
    args = parse_args(["--adv-mode", "std", "--epochs", "3", "--output", str(tmp_path), "--experiment", "nan", *FAST])
    with pytest.raises(UserError, match="last good checkpoint is .*last.pth.tar"):
        train(args)
    assert read_checkpoint(tmp_path / "nan" / "last.pth.tar")["epoch"] == 0


def _assert_clean_failure(result, pattern: str):
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert pattern in lines[0], lines[0]


@pytest.mark.parametrize("flags,pattern", [
    (["--model", "resnet_does_not_exist"], "unknown model"),
    (["--adv-eps", "0"], "--adv-eps must be a number in (0, 1]"),
    (["--adv-eps", "8"], "--adv-eps must be a number in (0, 1]"),
    (["--adv-steps", "0"], "steps must be an integer >= 1"),
    (["--la-delta", "1.2"], "--la-delta must be a number in [0, 1)"),
    (["--dataset", "folder", "--data-dir", "/nonexistent/imagenet"], "does not exist"),
    (["--adv-mode", "std", "--label-aug"], "--label-aug needs adversarial training"),
])
def test_bad_input_gives_one_clear_line(tmp_path, flags, pattern):
    result = run_cli_inprocess("train", "--epochs", "1", "--output", str(tmp_path), "--experiment", "bad", *FAST, *flags)
    _assert_clean_failure(result, pattern)
    assert not (tmp_path / "bad" / "last.pth.tar").exists()


def test_empty_data_dir(tmp_path):
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "val").mkdir()
    result = run_cli_inprocess("train", "--dataset", "folder", "--data-dir", str(tmp_path / "data"), "--output",
                               str(tmp_path), *FAST)
    _assert_clean_failure(result, "has no class sub-folders")


def test_resume_with_other_head_and_existing_run_are_refused(tmp_path):
    args = parse_args(["--adv-mode", "adv_plus", "--adv-steps", "1", "--epochs", "1", "--output", str(tmp_path),
                       "--experiment", "run", *FAST])
    checkpoint = train(args).checkpoint
    stamp = checkpoint.stat().st_mtime_ns
    other_head = run_cli_inprocess("train", "--adv-mode", "adv", "--epochs", "2", "--resume", str(checkpoint),
                                   *FAST, "--override-recipe")
    _assert_clean_failure(other_head, "K+M=11")
    again = run_cli_inprocess("train", "--adv-mode", "adv_plus", "--epochs", "1", "--output", str(tmp_path),
                              "--experiment", "run", *FAST)
    _assert_clean_failure(again, "already holds a training run")
    assert checkpoint.stat().st_mtime_ns == stamp


def test_config_file_sets_defaults_and_rejects_unknown_keys(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("adv_mode: adv\nadv-eps: 0.05\nepochs: 7\n")
    args = parse_args(["-c", str(good), "--epochs", "2"])
    assert (args.adv_mode, args.adv_eps, args.epochs) == ("adv", 0.05, 2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("adv_epsilon: 0.05\n")
    _assert_clean_failure(run_cli("train", "-c", str(bad)), "unknown keys ['adv_epsilon']")


def test_cli_help_lists_timm_flags():
    out = run_cli_inprocess("train", "--help").stdout
    for flag in ("--model", "--pretrained", "--num-classes", "--data-dir", "--dataset", "--epochs", "--lr", "--sched",
                 "--min-lr", "--warmup-epochs", "--opt", "--momentum", "--weight-decay", "--batch-size", "--amp",
                 "--channels-last", "--seed", "--workers", "--output", "--experiment", "--resume",
                 "--checkpoint-hist", "--log-interval", "--config", "--adv-mode", "--adv-eps", "--adv-steps",
                 "--adv-alpha", "--label-aug", "--la-delta", "--la-ops"):
        assert flag in out, flag



def test_pretrained_offline_fails_fast(tmp_path):
    result = run_cli("train", "--model", "resnet18", "--pretrained", "--epochs", "1", "--output", str(tmp_path), *FAST,
                     env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    _assert_clean_failure(result, "pretrained weights for 'resnet18")
    assert "cannot be fetched (HF_HUB_OFFLINE is set)" in result.stderr
