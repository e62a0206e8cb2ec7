"""``rbla train`` flags against timm's: help text (one default each), ``--input-size C H W``, names checked before
anything is written, ``eval_loss``/``eval_top5`` in summary.csv, and ``rbla --version``."""

from __future__ import annotations

import argparse
import csv

import numpy as np
import pytest
import torch

import robustbench_labelaug
from robustbench_labelaug import UserError, create_classifier, k_way
from robustbench_labelaug.cli import command_parser
from robustbench_labelaug.data import create_dataset
from robustbench_labelaug.train import parse_args, read_checkpoint, train
from robustbench_labelaug.train.args import validate_args

from .conftest import run_cli_inprocess


def _expanded_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    formatter = parser._get_formatter()
    return {a.option_strings[-1]: formatter._expand_help(a) for a in parser._actions
            if a.option_strings and a.help != argparse.SUPPRESS and "-h" not in a.option_strings}


@pytest.mark.parametrize("command", ["train", "timm-train"])
def test_every_flag_has_help_and_at_most_one_default(command):
    _, parser = command_parser(command)
    helps = _expanded_help(parser)
    assert helps
    for flag, text in helps.items():
        assert text.strip(), f"{flag} has no help"
        assert text.lower().count("default") <= 1, f"{flag}: {text}"


def test_train_help_shows_the_defaults():
    helps = _expanded_help(command_parser("train")[1])
    assert helps["--lr"].endswith("(default: 0.01)")
    assert helps["--epochs"].endswith("(default: 10)")
    assert helps["--seed"].endswith("(default: 42)")
    assert "(default: None)" not in " ".join(helps.values())
    assert "K" in helps["--num-classes"] and "K+M" in helps["--num-classes"] and "timm-train" in helps["--num-classes"]


@pytest.mark.parametrize("value, expected", [(["3", "32", "32"], 32), (["64"], 64), (["3", "32", "48"], [3, 32, 48])])
def test_input_size_takes_timms_form(value, expected):
    args = parse_args(["--input-size", *value])
    validate_args(args)
    assert args.input_size == expected


@pytest.mark.parametrize("value", [["1", "32", "32"], ["3", "32"], ["3", "0", "0"]])
def test_input_size_refuses_other_forms(value):
    args = parse_args(["--input-size", *value])
    with pytest.raises(UserError, match="--input-size"):
        validate_args(args)


@pytest.mark.parametrize("flags, pattern", [
    (["--model", "resnet5O"], "unknown model 'resnet5O'"),
    (["--opt", "sgdd"], "--opt sgdd with --lr"),
    (["--sched", "cosinus"], "--sched 'cosinus'"),
])
def test_bad_names_leave_no_folder_behind(tmp_path, flags, pattern):
    out = tmp_path / "out"
    result = run_cli_inprocess("train", "--output", str(out), "--experiment", "x", "--no-progress", *flags)
    assert result.returncode == 2 and pattern in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_version():
    result = run_cli_inprocess("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"rbla {robustbench_labelaug.__version__}"


@pytest.mark.slow
def test_summary_csv_has_timms_eval_columns_with_real_values(tmp_path):
    args = parse_args(["--adv-mode", "std", "--epochs", "1", "--output", str(tmp_path), "--experiment", "run",
                       "--no-progress", "--log-interval", "0", "--seed", "0", "--lr", "0.05"])
    result = train(args)
    rows = list(csv.DictReader((result.output_dir / "summary.csv").open()))
    assert len(rows) == 1
    row = rows[0]
    assert {"eval_loss", "eval_top1", "eval_top5"} <= set(row)

    # recompute from the checkpoint, independently of the evaluator
    state = read_checkpoint(result.checkpoint)
    model = create_classifier(state["arch"], state["num_classes"], state["num_ops"])
    model.load_state_dict(state["state_dict"])
    x, y = create_dataset("digits", split="val").tensors
    with torch.no_grad():
        logits = k_way(model.eval())(x)
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    top5 = 100 * (logits.topk(5, 1).indices == y[:, None]).any(1).float().mean().item()
    top1 = 100 * (logits.argmax(1) == y).float().mean().item()
    assert np.isclose(float(row["eval_loss"]), loss, rtol=1e-4)
    assert np.isclose(float(row["eval_top5"]), top5) and np.isclose(float(row["eval_top1"]), top1)
    assert float(row["eval_top5"]) >= float(row["eval_top1"])
