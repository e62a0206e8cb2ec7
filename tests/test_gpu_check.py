"""bench/gpu_check.py (issue 11, item 12): the CPU dry run of the prepared GPU check passes every section and
writes its JSON summary; one failing section is reported, the others still run, and the exit status is 1."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("rbla_gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cpu_dry_run_passes_every_section(tmp_path):
    out = tmp_path / "summary.json"
    env = dict(os.environ, RBLA_GPU_CHECK_SMALL="1", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--workdir", str(tmp_path / "w")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["settings"]["small"] and summary["settings"]["device"] == "cpu"
    assert summary["failed"] == []
    assert list(summary["sections"]) == ["env", "throughput", "pgd_eval", "eval_amp", "decode", "autoattack", "ddp",
                                         "e2e"]
    sections = {k: v["result"] for k, v in summary["sections"].items()}
    assert sections["env"]["amp_dtype"] == "bfloat16"
    assert "torchattacks" in sections["env"]["versions"]
    throughput = sections["throughput"]
    for row in ("amp_bfloat16_channels_last", "fp32"):
        ratio = throughput[row]["plain"]["images_per_s"] / throughput[row]["adv_plus_pgd10"]["images_per_s"]
        assert throughput[row]["cost_ratio"] == pytest.approx(ratio, rel=1e-3)
        assert throughput[row]["ratio_vs_frozen_limit"] == pytest.approx(ratio / (23 / 3), rel=1e-2)
    p4 = throughput["p4"]
    assert p4["met"] == (p4["adv_plus_images_per_s"] >= 0.9 * throughput["amp_bfloat16_channels_last"]["plain"]
                         ["images_per_s"] / (23 / 3)) == summary["p4_met"]
    assert sections["pgd_eval"]["details"]["attacked"] == sections["pgd_eval"]["n"]  # every point attacked
    amp = sections["eval_amp"]
    assert amp["fp32"]["images_per_s"] > 0 and amp["bf16"]["images_per_s"] > 0
    assert amp["speedup"] == pytest.approx(amp["bf16"]["images_per_s"] / amp["fp32"]["images_per_s"], rel=1e-2)
    assert 0 <= amp["agreement"] <= 1
    decode = sections["decode"]  # issue 21: CPU decoding vs device decoding (here on the CPU) vs forward only
    assert decode["top1_agreement"] == 1.0 and decode["pixels"]["max_abs_diff_levels"] <= 2
    assert decode["p7"]["ratio"] == pytest.approx(decode["gpu_decode"]["images_per_s"]
                                                  / decode["forward_only_images_per_s"], rel=1e-2)
    assert decode["p7"]["met"] == (decode["p7"]["ratio"] >= 0.8) == summary["p7_met"]
    assert decode["per_model"]["gpu_decode"]["imagenet_c_hours"] == pytest.approx(
        75 * 50_000 / decode["gpu_decode"]["images_per_s"] / 3600, rel=1e-2)
    aa = sections["autoattack"]
    assert aa["wrapper"]["evaluator_robust_error"] == aa["wrapper"]["direct_robust_error"]
    assert aa["wrapper"]["time_ratio"] == pytest.approx(aa["wrapper"]["evaluator_s"] / aa["wrapper"]["direct_s"],
                                                        rel=0.1, abs=0.05)
    survivors = aa["survivors"]  # every held point survives every attack
    assert survivors["robust_error"] == pytest.approx(100 * (1 - survivors["held_points"] / survivors["n"]), abs=1e-6)
    assert "P7:" in proc.stdout and "survivor model" in proc.stdout
    assert sections["ddp"]["backend"] == "gloo" and sections["ddp"]["weights_updated"]
    assert set(sections["e2e"]["evaluators"]) == {"clean", "clean_amp", "pgd_sound", "pgd_paper", "autoattack", "corruptions",
                                                  "real", "imagenet_x", "masking"}
    assert "P4 target" in proc.stdout and json.loads(proc.stdout[proc.stdout.index("{"):proc.stdout.rindex("}") + 1]
                                                     .split("== summary ==")[-1]) == summary


def test_a_failing_section_is_reported_and_the_rest_run(tmp_path, monkeypatch, capsys):
    gc = _module()
    ran = []

    def broken(cfg, work):
        ran.append("env")
        raise RuntimeError("no such package")

    def fine(cfg, work):
        ran.append("ddp")
        return {"ok": 1}

    monkeypatch.setitem(gc.RUNNERS, "env", broken)
    monkeypatch.setitem(gc.RUNNERS, "ddp", fine)
    out = tmp_path / "s.json"
    assert gc.main(["--small", "--sections", "env,ddp", "--out", str(out), "--workdir", str(tmp_path)]) == 1
    summary = json.loads(out.read_text())
    assert ran == ["env", "ddp"]
    assert summary["failed"] == ["env"]
    assert summary["sections"]["env"]["error"] == "RuntimeError: no such package"
    assert summary["sections"]["ddp"] == {"status": "ok", "result": {"ok": 1}, "seconds": pytest.approx(0, abs=1)}
    assert "FAILED: RuntimeError: no such package" in capsys.readouterr().out


def test_the_survivor_model_holds_its_points_with_a_zero_gradient_and_passes_the_rest():
    import torch

    gc = _module()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 5))
    x = torch.rand(4, 3, 16, 16)
    y = torch.tensor([3, 1, 4, 0])
    survivor, held = gc._survivor_model(net, x, y, share=0.5)
    assert held == 2
    moved = (x + 0.03 * torch.sign(torch.randn_like(x))).clamp(0, 1).requires_grad_(True)
    out = survivor(moved)
    assert out[:2].argmax(1).tolist() == [3, 1]  # held: the label, within eps
    torch.testing.assert_close(out[2:], net(moved)[2:])  # the others: the network's own logits
    (grad,) = torch.autograd.grad(out[:2].sum(), moved)
    assert grad.abs().sum() == 0  # a graph, but no gradient to follow
