"""`rbla demo --fast` end to end (what a new user runs, shortened), and its seed statistics."""

from __future__ import annotations

import json

import pytest
import torch

from robustbench_labelaug import load_model
from robustbench_labelaug.demo import mean_ci, seeds_table

from .conftest import run_cli


def test_mean_ci_matches_hand_computation():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302653 * 1.0 / 3 ** 0.5, rel=1e-5)  # t_{0.975, 2} * s / sqrt(n)
    assert mean_ci([5.0]) == (5.0, 0.0)


def test_seeds_table_rows():
    def info(clean, sd):  # a model_info as the runner stores it: its stored headlines give the columns
        records = [{"key": "clean_error", "label": "clean err", "value": clean, "unit": "%", "source": "clean"},
                   {"key": "class_sd_clean", "label": "class SD clean", "value": sd, "unit": "%",
                    "source": "clean"}]
        return {"labelaug": {"measured": {"headlines": records}}}

    table = seeds_table({"digits_adv": [info(10.0, 4.0), info(12.0, 6.0)],
                         "digits_std": [{"labelaug": {"results": {}}}, {"labelaug": {"results": {}}}]})
    header = next(line for line in table.splitlines() if line.startswith("| model"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["model", "clean err", "class SD clean"]
    row = next(line for line in table.splitlines() if line.startswith("| digits_adv"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # by hand: n = 2, s = sqrt(2), t_{0.975, 1} = 12.7062: half-width 12.7062 * sqrt(2) / sqrt(2)
    assert cells[1] == "11.00 ± 12.71" and cells[2] == "5.00 ± 12.71"
    std = next(line for line in table.splitlines() if line.startswith("| digits_std"))
    assert "–" in std  # not measured
    # seeds.json holds the same numbers, in the shape the docs' seeds table is rendered from
    from robustbench_labelaug.demo import seeds_summary

    summary = seeds_summary({"digits_adv": [info(10.0, 4.0), info(12.0, 6.0)],
                             "digits_std": [{"labelaug": {"results": {}}}, {"labelaug": {"results": {}}}]})
    assert summary["columns"] == ["clean err", "class SD clean"] and summary["seeds"] == 2
    assert summary["rows"]["digits_adv"][0] == pytest.approx([11.0, 12.7062], abs=1e-4)
    assert summary["rows"]["digits_std"] == [None, None] and summary["values"]["digits_adv"]["clean_error"] == [10, 12]


@pytest.mark.slow
def test_fast_demo_end_to_end_with_two_seeds(tmp_path):
    result = run_cli("demo", "--fast", "--seeds", "2", "--no-progress", "--output", str(tmp_path / "demo"),
                     cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "demo"
    board = (out / "eval" / "leaderboard.md").read_text()
    for name in ("digits_std", "digits_adv", "digits_adv_plus"):
        assert f"| {name} |" in board and f"| {name} |" in result.stdout
        info = json.loads((out / "eval" / "model_info" / f"{name}.json").read_text())
        # RobustBench's autoattack_acc is standalone standard AutoAttack only; the demo runs AutoAttack on what
        # PGD-40 leaves, stored as a measured headline instead
        assert info["clean_acc"] is not None and info["autoattack_acc"] is None
        assert any(h["key"] == "autoattack_error" and h["value"] is not None
                   for h in info["labelaug"]["measured"]["headlines"])
        assert info["labelaug"]["measured"]["protocols"]  # every robust number names its protocol
    seeds = (out / "seeds.md").read_text()
    assert "over 2 seeds" in seeds and seeds.count("±") >= 3 * 5
    stored = json.loads((out / "seeds.json").read_text())
    assert stored["seeds"] == 2 and set(stored["rows"]) == {"digits_std", "digits_adv", "digits_adv_plus"}
    plots = sorted((out / "eval" / "plots").glob("*.png"))
    assert len(plots) >= 2 and all(p.stat().st_size > 10_000 for p in plots)
    # the page: one offline file, the run's facts once, per model a detail view with per-class n and CIs, figures
    page = (out / "eval" / "leaderboard.html").read_text()
    assert page.count("fast mode: yes") == 1 and page.count('class="detail"') == 3
    assert "95 % Wilson score interval" in page and page.count("data:image/svg+xml;base64,") >= 3
    info = json.loads((out / "eval" / "model_info" / "digits_adv.json").read_text())
    counts = info["labelaug"]["results"]["clean"]["classwise"]["clean"]["n"]
    assert len(counts) == 10 and sum(counts) == info["labelaug"]["results"]["clean"]["num_examples"]
    # the checkpoints are registered: load_model finds them (the fast demo exports under <output>/models)
    model = load_model("digits_adv_plus", model_dir=out / "models")
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10) and not model.training
    assert "Adv+ vs Adv, as measured here" in result.stdout

    again = run_cli("demo", "--fast", "--seeds", "2", "--no-progress", "--output", str(out), cwd=tmp_path, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished run found") == 6  # resumed: nothing retrained


def test_jobs_must_be_positive(capsys):
    from robustbench_labelaug.cli import main

    assert main(["demo", "--jobs", "0", "--output", "unused"]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err


def test_evaluation_works_one_per_model_and_evaluator_group():
    """The runner cuts a config into works (what rbla demo and rbla evaluate --jobs/--address run): masking joins
    the AutoAttack run it reuses, every model's works wait for `after(key)` and for the evaluator's first model,
    the long-running evaluators are submitted first, and each starts with its model's cached parts."""
    from robustbench_labelaug.engine import submission_order
    from robustbench_labelaug.runner import load_config
    from robustbench_labelaug.runner.tasks import evaluate_group, evaluation_works

    cfg = load_config("digits")
    works = evaluation_works(cfg, "out/eval", ["a", "b"], fast=False, device="cpu", progress=False,
                             after=lambda key: {f"train {key}"})
    names = [w.name for w in works]
    assert names == [f"evaluate eval/{k}/{g}" for k in ("a", "b")
                     for g in ("clean", "pgd40_sound", "pgd40_paper", "autoattack+masking", "corruptions")]
    by_name = {w.name: w for w in works}
    assert by_name["evaluate eval/a/clean"].after == ("train a",)
    assert by_name["evaluate eval/b/corruptions"].after == ("evaluate eval/a/corruptions", "train b")
    assert [w.first for w in works[:5]] == [False, False, False, True, False]
    assert all(w.fn is evaluate_group and w.args[2] in ("a", "b") for w in works)
    assert by_name["evaluate eval/a/autoattack+masking"].args[3] == ["autoattack", "masking"]
    assert by_name["evaluate eval/b/clean"].seed == (("eval", "b"),)
    assert all(w.num_cpus == 1 and w.num_gpus == 0 for w in works)
    order = [w.name for w in submission_order(works)]  # submission order: AutoAttack first, dependencies before
    assert order[:2] == ["evaluate eval/a/autoattack+masking", "evaluate eval/b/autoattack+masking"]
    assert order.index("evaluate eval/a/corruptions") < order.index("evaluate eval/b/corruptions")


@pytest.mark.slow
def test_fast_demo_says_whether_cfa_wrote_a_fawa_model(tmp_path):
    """FAWA's gate can stay shut for a whole run (on digits it does); the demo says which happened, and the file
    agrees with what it says."""
    result = run_cli("demo", "--fast", "--methods", "cfa", "--no-progress", "--output", str(tmp_path / "demo"),
                     cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    fawa = tmp_path / "demo" / "train" / "digits_adv_cfa" / "fawa.pth.tar"
    lines = [line for line in result.stdout.splitlines() if "digits_adv_cfa:" in line and "FAWA" in line]
    assert len(lines) == 1
    assert ("FAWA model written" in lines[0]) == fawa.is_file()
    assert ("gate" in lines[0]) == (not fawa.is_file())
