"""Label-augmentation protocols (issue 28): the authors' clean/adversarial mix (``authors``, adv_plus's default), every
row adversarial (``adversarial``), and the two controls (Adv on the same mix; dummy smoothing). Targets are checked
row by row against values written out by hand (K = 10, M = 1, delta = 0.2)."""

from __future__ import annotations

import argparse

import pytest
import torch

from robustbench_labelaug import AdvLabelAug, UserError, create_classifier
from robustbench_labelaug.results.vocab import (
    ADV_MIX,
    ADV_PLUS_DUMMY,
    TRAINING_LABELS,
    parse_training_label,
    recorded_protocol,
    training_label,
)

K, DELTA = 10, 0.2


@pytest.fixture()
def batch(digits_train):
    x, y = digits_train.tensors
    return x[:8].clone(), y[:8].clone()


def _hook(mode, protocol=None, **kwargs):
    torch.manual_seed(0)
    model = create_classifier("resnet8_tiny", K, 1 if mode == "adv_plus" else 0)
    return AdvLabelAug(model, K, mode=mode, eps=0.1, steps=2, delta=DELTA, protocol=protocol, **kwargs)


def _by_hand(y: torch.Tensor, width: int, class_mass: float, extra_mass: float) -> torch.Tensor:
    """One row per label: ``class_mass`` on the true class, ``extra_mass`` on output K (when there is one)."""
    rows = torch.zeros(len(y), width)
    for i, c in enumerate(y.tolist()):
        rows[i, c] = class_mass
        if width > K:
            rows[i, K] = extra_mass
    return rows


@pytest.mark.parametrize("parts", [(True, True), (True, False), (False, True)])
def test_authors_protocol_targets_row_by_row(batch, parts, monkeypatch):
    """adv_plus, authors: clean rows are the untouched images with [y, 0]; adversarial rows [(1-d) y, d]; the parts
    that fired come back clean first; ``adv_rows`` names the adversarial ones."""
    x, y = batch
    hook = _hook("adv_plus")
    assert hook.protocol == "authors" and hook.la_p == 0.7  # the default, as the authors' code
    monkeypatch.setattr(hook, "draw_parts", lambda: parts)
    out, target = hook(x, y)
    clean, adversarial = parts
    expected = []
    if clean:
        expected.append(_by_hand(y, K + 1, 1.0, 0.0))
    if adversarial:
        expected.append(_by_hand(y, K + 1, 1.0 - DELTA, DELTA))
    torch.testing.assert_close(target, torch.cat(expected))
    n = len(y)
    assert out.shape[0] == n * (clean + adversarial)
    if clean:
        assert torch.equal(out[:n], x)
    if adversarial:
        rows = hook.adv_rows
        assert (rows.start, rows.stop) == ((n, 2 * n) if clean else (0, n))
        moved = (out[rows] - x).abs().amax(dim=(1, 2, 3))
        assert bool((moved > 0).all()) and float(moved.max()) <= 0.1 + 1e-6
    else:
        assert hook.adv_rows is None


def test_authors_protocol_gives_clean_and_adversarial_rows_different_extra_label_mass(batch, monkeypatch):
    """The point of the default: within one batch the extra output's target is 0 on clean rows and delta on
    adversarial rows, so the extra label tells the two apart (under ``adversarial`` it is delta on every row)."""
    x, y = batch
    hook = _hook("adv_plus")
    monkeypatch.setattr(hook, "draw_parts", lambda: (True, True))
    _, target = hook(x, y)
    extra = target[:, K]
    clean_mass, adv_mass = extra[: len(y)], extra[hook.adv_rows]
    assert torch.equal(clean_mass, torch.zeros(len(y))) and torch.allclose(adv_mass, torch.full((len(y),), DELTA))
    _, dummy = _hook("adv_plus", "adversarial")(x, y)
    assert torch.allclose(dummy[:, K], torch.full((len(y),), DELTA))  # a constant: it carries no information


def test_control_adv_on_the_same_mix_has_one_hot_targets_and_k_outputs(batch, monkeypatch):
    """Control 1 (adv_mix): the authors' draws, targets y on K outputs for clean and adversarial rows alike."""
    x, y = batch
    hook = _hook("adv", "authors")
    monkeypatch.setattr(hook, "draw_parts", lambda: (True, True))
    out, target = hook(x, y)
    torch.testing.assert_close(target, torch.cat([_by_hand(y, K, 1.0, 0.0)] * 2))
    assert torch.equal(out[: len(y)], x) and not torch.equal(out[len(y):], x)
    assert training_label("adv", "none", "authors") == ADV_MIX == "adv_mix"


def test_control_dummy_smoothing_is_every_row_adversarial_with_a_constant_extra_label(batch):
    """Control 2 (adv_plus_dummy): the ``adversarial`` protocol, today's Adv+ before issue 28."""
    x, y = batch
    hook = _hook("adv_plus", "adversarial")
    out, target = hook(x, y)
    torch.testing.assert_close(target, _by_hand(y, K + 1, 1.0 - DELTA, DELTA))
    assert out.shape == x.shape and hook.adv_rows == slice(0, len(y))
    assert training_label("adv_plus", "none", "adversarial") == ADV_PLUS_DUMMY == "adv_plus_dummy"


def test_madry_adv_keeps_every_row_adversarial_by_default(batch):
    x, y = batch
    hook = _hook("adv")
    assert hook.protocol == "adversarial"
    out, target = hook(x, y)
    torch.testing.assert_close(target, _by_hand(y, K, 1.0, 0.0))
    assert out.shape == x.shape and not torch.equal(out, x)


def test_authors_draws_match_their_probabilities():
    """Two independent draws with p = 0.7 (clean first); neither firing trains the clean part: P(clean part) =
    0.7 + 0.3 * 0.3 = 0.79, P(adversarial part) = 0.7, P(both) = 0.49. 4000 batches: 4-sigma bounds."""
    hook = _hook("adv_plus")
    torch.manual_seed(1)
    draws = torch.tensor([hook.draw_parts() for _ in range(4000)], dtype=torch.float64)
    clean, adv = draws[:, 0], draws[:, 1]
    for observed, p in ((clean.mean(), 0.79), (adv.mean(), 0.7), ((clean * adv).mean(), 0.49)):
        assert abs(float(observed) - p) < 4 * (p * (1 - p) / 4000) ** 0.5
    assert bool(((clean + adv) >= 1).all())  # every batch trains something


def test_several_operations_stay_available_under_authors(batch, monkeypatch):
    """M = 3 (PGD at eps*(j+1)/3): the adversarial part's rows carry delta on their own operation's output."""
    x, y = batch
    torch.manual_seed(0)
    model = create_classifier("resnet8_tiny", K, 3)
    hook = AdvLabelAug(model, K, eps=0.09, steps=2, delta=DELTA, num_ops=3, random_start=False)
    monkeypatch.setattr(hook, "draw_parts", lambda: (True, True))
    out, target = hook(x, y)
    n = len(y)
    assert torch.equal(target[:n, K:], torch.zeros(n, 3))
    adv = target[n:]
    assert torch.allclose(adv[:, K:].sum(1), torch.full((n,), DELTA))
    ops = adv[:, K:].argmax(1)
    dist = (out[n:] - x).abs().amax(dim=(1, 2, 3))
    assert bool((dist <= 0.09 * (ops + 1) / 3 + 1e-6).all())


def test_training_labels_round_trip_and_recorded_protocols():
    for label in TRAINING_LABELS:
        assert training_label(*parse_training_label(label)) == label
    assert parse_training_label("adv_plus_dummy_cfa") == ("adv_plus", "cfa", "adversarial")
    assert parse_training_label("adv_plus") == ("adv_plus", "none", "authors")
    # a run recorded before --la-protocol existed trained every row adversarial: its Adv+ is dummy smoothing
    assert recorded_protocol({"adv_mode": "adv_plus"}) == "adversarial"
    assert recorded_protocol({"adv_mode": "adv_plus", "la_protocol": "authors"}) == "authors"
    assert recorded_protocol({"adv_mode": "trades"}) is None


# -- both training doors -------------------------------------------------------------------------------------------


FLAGS = ["--adv-mode", "adv_plus", "--adv-eps", "0.1", "--adv-steps", "2", "--la-delta", "0.2", "--la-p", "0.6"]


def _train_args(flags):
    from robustbench_labelaug.train.args import parse_args

    return parse_args(["--epochs", "1", *flags])


def _timm_args(flags):
    from robustbench_labelaug.timm_train import add_arguments, parse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parse(parser, ["train.py", *flags])


@pytest.mark.parametrize("extra", [[], ["--la-protocol", "adversarial"], ["--adv-mode", "adv", "--la-protocol",
                                                                        "authors"]])
def test_both_training_doors_build_the_same_hook_and_targets(batch, extra):
    """rbla train's hook settings and rbla timm-train's, from the same flags: equal settings, and the same batch
    and targets for the same seed."""
    from robustbench_labelaug.timm_train import hook_settings
    from robustbench_labelaug.train.args import hook_kwargs

    x, y = batch
    train_kwargs = hook_kwargs(_train_args(FLAGS + extra))
    timm_kwargs = hook_settings(_timm_args(FLAGS + extra))
    assert train_kwargs == timm_kwargs
    outs = []
    for kwargs in (train_kwargs, timm_kwargs):
        torch.manual_seed(0)
        model = create_classifier("resnet8_tiny", K, 1 if kwargs["mode"] == "adv_plus" else 0)
        torch.manual_seed(5)
        outs.append(AdvLabelAug(model, K, **kwargs)(x, y))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize("flags,pattern", [
    (["--la-protocol", "paper"], "invalid choice"),
    (["--la-p", "1.5"], "--la-p must be a number in"),
    (["--adv-prob", "0.5"], "--adv-prob belongs to the adversarial protocol"),
    (["--adv-train-clean"], "--adv-train-clean belongs to the adversarial protocol"),
    (["--adv-mode", "trades", "--la-protocol", "authors"], "applies to --adv-mode adv and adv_plus only"),
    (["--adv-mode", "std", "--la-protocol", "adversarial"], "applies to --adv-mode adv and adv_plus only"),
])
def test_bad_protocol_flags(tmp_path, flags, pattern):
    from .conftest import run_cli_inprocess

    result = run_cli_inprocess("train", "--epochs", "1", "--output", str(tmp_path), "--experiment", "bad", *flags)
    assert result.returncode == 2 and pattern in result.stderr, result.stderr[-1000:]
    assert not (tmp_path / "bad").exists()


def test_the_protocol_is_recorded_and_resolved():
    from robustbench_labelaug.train.args import validate_args

    args = _train_args(["--adv-mode", "adv_plus"])
    validate_args(args)
    assert args.la_protocol == "authors"
    args = _train_args(["--adv-mode", "adv"])
    validate_args(args)
    assert args.la_protocol == "adversarial"
    args = _train_args(["--adv-mode", "trades"])
    validate_args(args)
    assert args.la_protocol is None


def test_an_old_adv_plus_run_resumes_with_the_protocol_it_trained(tmp_path):
    """A checkpoint recorded before --la-protocol existed trained every row adversarial: --resume keeps that."""
    from robustbench_labelaug.train.args import apply_resume_recipe

    args = _train_args(["--adv-mode", "adv_plus"])
    saved = {k: v for k, v in vars(args).items() if k not in ("la_protocol", "la_p")}
    apply_resume_recipe(args, saved, tmp_path / "last.pth.tar", 1)
    assert args.la_protocol == "adversarial"
    args = _train_args(["--adv-mode", "adv_plus", "--la-protocol", "authors"])
    with pytest.raises(UserError, match="--la-protocol authors \\(checkpoint: adversarial\\)"):
        apply_resume_recipe(args, saved, tmp_path / "last.pth.tar", 1)


def test_an_old_cfa_run_resumes_with_the_trades_loss_it_trained(tmp_path):
    """A TRADES + CFA checkpoint recorded before --cfa-trades-form existed trained Zhang's form: --resume keeps it."""
    from robustbench_labelaug.train.args import apply_resume_recipe

    args = _train_args(["--adv-mode", "trades", "--fair", "cfa"])
    assert args.cfa_trades_form == "normalised"
    saved = {k: v for k, v in vars(args).items() if k != "cfa_trades_form"}
    apply_resume_recipe(args, saved, tmp_path / "last.pth.tar", 1)
    assert args.cfa_trades_form == "zhang"
