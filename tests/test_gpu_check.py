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
    assert list(summary["sections"]) == ["env", "throughput", "pgd_eval", "eval_amp", "ddp", "e2e"]
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
