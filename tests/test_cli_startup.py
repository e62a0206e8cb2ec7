"""The results layer, the leaderboard and the CLI's help path import neither torch nor timm (checked in a fresh
interpreter: this test process has them loaded already). Timing is bench/cli_startup.py's job, not a test's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import contextlib, io, json, sys
{body}
print(json.dumps([m for m in ("torch", "timm") if m in sys.modules]))
"""


def heavy_modules(body: str, *args: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(body=body), *args], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_results_and_leaderboard_import_no_torch():
    body = ("import robustbench_labelaug, robustbench_labelaug.results, robustbench_labelaug.results.model_info, "
            "robustbench_labelaug.results.rules, robustbench_labelaug.results.vocab, robustbench_labelaug.results.keys, "
            "robustbench_labelaug.results.measured, robustbench_labelaug.leaderboard, "
            "robustbench_labelaug.leaderboard.table, robustbench_labelaug.leaderboard.cli, "
            "robustbench_labelaug.checks, robustbench_labelaug.store, "
            "robustbench_labelaug.scoring.intervals, robustbench_labelaug.compare.files, "
            "robustbench_labelaug.runner.loop")
    assert heavy_modules(body) == []


CLI = """
from robustbench_labelaug.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
"""


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["demo", "--help"], ["train", "--help"],
                                  ["timm-train", "--help"], ["evaluate", "--help"], ["leaderboard", "--help"],
                                  ["zoo", "--help"], ["study", "--help"]], ids=" ".join)
def test_cli_help_imports_no_torch(argv):
    assert heavy_modules(CLI, *argv) == []


def test_leaderboard_renders_without_torch(tmp_path):
    """``rbla leaderboard DIR`` on a model_info written by build_model_info from declared headlines."""
    from robustbench_labelaug.results.measured import Declared, Measured
    from robustbench_labelaug.results.model_info import build_model_info

    results = {"clean": {"evaluator": "clean", "metrics": {"error": 4.2}, "settings": {}, "classwise": {},
                         "num_examples": 360}}
    info = build_model_info({"key": "m", "dataset": "digits", "architecture": "resnet8_tiny", "training": "adv",
                             "num_classes": 10, "num_ops": 0}, results,
                            declared=[Declared("clean", (Measured("clean_error", "clean err", 4.2),))])
    (tmp_path / "model_info").mkdir()
    (tmp_path / "model_info" / "m.json").write_text(json.dumps(info))
    assert heavy_modules(CLI, "leaderboard", str(tmp_path)) == []
    assert "| m |" in (tmp_path / "leaderboard.md").read_text() or "m" in (tmp_path / "leaderboard.md").read_text()


def test_timm_import_registers_the_architectures():
    """``import robustbench_labelaug`` no longer imports timm, but once timm is imported our architectures are
    timm models."""
    body = "import robustbench_labelaug, timm; assert timm.is_model('resnet8_tiny')"
    assert heavy_modules(body) == ["torch", "timm"]
