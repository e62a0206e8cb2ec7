"""TRADES, CFA, FAWA, FRL and the validation split (issue 20): numbers worked by hand from each paper's formulas."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

from robustbench_labelaug import UserError, create_classifier, k_way
from robustbench_labelaug.data import create_dataset
from robustbench_labelaug.data.holdout import carve_validation, holdout_indices
from robustbench_labelaug.fair import (
    FAWA,
    CFAPolicy,
    ClassCounts,
    EpochStats,
    FRLPolicy,
    TradesLoss,
    cfa_class_eps,
    create_policy,
    trades_attack,
)
from robustbench_labelaug.fair.frl import class_weights_from_multipliers, frl_violations, project_multipliers

from .conftest import run_gloo_workers

# -- TRADES ---------------------------------------------------------------------------------------------------------


def test_trades_loss_on_a_fixed_tiny_batch_matches_the_formula_by_hand():
    """Two samples, three classes: CE(f(x), y) + beta * KL(p(x) || p(x_adv)), batch mean, written out with exp/log."""
    nat = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    adv = torch.tensor([[0.5, 1.0, -1.0], [1.0, 0.5, 0.5]])
    y = torch.tensor([0, 1])

    def softmax(row):
        e = [math.exp(v) for v in row]
        return [v / sum(e) for v in e]

    by_hand = []
    for i in range(2):
        p, q = softmax(nat[i].tolist()), softmax(adv[i].tolist())
        ce = -math.log(p[int(y[i])])
        kl = sum(pk * math.log(pk / qk) for pk, qk in zip(p, q))
        by_hand.append((ce, kl))
    trades = TradesLoss(create_classifier("resnet8_tiny", 3, 0), 3, eps=0.1, beta=6.0)
    expected = sum(ce + 6.0 * kl for ce, kl in by_hand) / 2
    assert float(trades.loss(nat, adv, y)) == pytest.approx(expected, rel=1e-6)
    # class-wise beta (CFA's CCR) and class-wise natural weights (FRL's reweight)
    trades.set_class_params(class_beta=[1.0, 3.0, 5.0], class_weight=[2.0, 0.5, 1.0])
    expected = ((2.0 * by_hand[0][0] + 1.0 * by_hand[0][1]) + (0.5 * by_hand[1][0] + 3.0 * by_hand[1][1])) / 2
    assert float(trades.loss(nat, adv, y)) == pytest.approx(expected, rel=1e-6)


def test_trades_attack_stays_in_each_samples_ball_and_raises_the_kl(digits_train):
    torch.manual_seed(0)
    model = k_way(create_classifier("resnet8_tiny", 10, 0).eval())
    x = digits_train.tensors[0][:6]
    eps = torch.tensor([0.02, 0.05, 0.1, 0.02, 0.05, 0.1], dtype=torch.float64)
    x_adv = trades_attack(model, x, eps, alpha=0.03, steps=5)
    dist = (x_adv - x).abs().flatten(1).amax(1)
    assert torch.all(dist <= eps.float() + 1e-6) and x_adv.min() >= 0 and x_adv.max() <= 1
    from robustbench_labelaug.fair.trades import kl_per_sample

    with torch.no_grad():
        kl_adv = kl_per_sample(model(x_adv), model(x))
        kl_noise = kl_per_sample(model((x + 0.001 * torch.randn_like(x)).clamp(0, 1)), model(x))
    assert torch.all(kl_adv > kl_noise)


# -- CFA ------------------------------------------------------------------------------------------------------------


def test_cfa_class_eps_from_given_class_accuracies():
    # (lambda_1 + A_c) * eps with lambda_1 = 0.5, eps = 8/255: A = 0.2, 0.5, 0.9 -> 0.7, 1.0, 1.4 times eps
    eps = 8 / 255
    got = cfa_class_eps(torch.tensor([0.2, 0.5, 0.9]), eps)
    torch.testing.assert_close(got, torch.tensor([0.7 * eps, 1.0 * eps, 1.4 * eps], dtype=torch.float64))
    policy = CFAPolicy(3, eps=eps, beta=6.0, begin=2, parts=("ccm", "ccr"))
    policy.end_epoch(0, EpochStats(train_robust=torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)))
    assert policy.class_params(1, trades=True) == {"class_eps": None, "class_weight": None, "class_beta": None,
                                                   "loss_form": "normalised"}
    params = policy.class_params(2, trades=True)  # from epoch `begin` on
    torch.testing.assert_close(params["class_eps"], got)
    torch.testing.assert_close(params["class_beta"], torch.tensor([4.2, 6.0, 8.4], dtype=torch.float64))  # (0.5+A)*6
    assert "class_beta" not in policy.class_params(2, trades=False)


def test_ccr_in_the_references_normalised_form_by_hand():
    """CFA's train.py: b_c = beta_c / (1 + beta_c) with beta_c = (lambda_2 + A_c) * beta, and the class's loss
    (1 - b_c) CE + b_c KL (attack.py's cw_trades_loss, batch mean). beta 6, A = (0, 0.5, 1): beta_c = 3, 6, 9,
    b_c = 3/4, 6/7, 9/10, so a hard class's CE counts (1/4) / (1/10) = 2.5 times an easy one's. Before `begin`
    (and without CCR) every class has b = 6/7; Zhang's form stays available (CE + beta_c KL)."""
    nat = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.3, 1.2]])
    adv = torch.tensor([[0.5, 1.0, -1.0], [1.0, 0.5, 0.5], [0.4, 0.2, 0.1]])
    y = torch.tensor([0, 1, 2])

    def softmax(row):
        e = [math.exp(v) for v in row]
        return [v / sum(e) for v in e]

    terms = []
    for i in range(3):
        p, q = softmax(nat[i].tolist()), softmax(adv[i].tolist())
        terms.append((-math.log(p[int(y[i])]), sum(pk * math.log(pk / qk) for pk, qk in zip(p, q))))
    policy = CFAPolicy(3, eps=0.1, beta=6.0, begin=1, parts=("ccm", "ccr"))
    trades = TradesLoss(create_classifier("resnet8_tiny", 3, 0), 3, eps=0.1, beta=6.0)
    policy.apply(trades, 0)  # before `begin`: the reference's constant b = beta / (1 + beta)
    b = 6 / 7
    expected = sum((1 - b) * ce + b * kl for ce, kl in terms) / 3
    assert float(trades.loss(nat, adv, y)) == pytest.approx(expected, rel=1e-6)
    policy.end_epoch(0, EpochStats(train_robust=torch.tensor([0.0, 0.5, 1.0])))
    policy.apply(trades, 1)
    bs = (3 / 4, 6 / 7, 9 / 10)
    expected = sum((1 - bc) * ce + bc * kl for bc, (ce, kl) in zip(bs, terms)) / 3
    assert float(trades.loss(nat, adv, y)) == pytest.approx(expected, rel=1e-6)
    assert (1 - bs[0]) / (1 - bs[2]) == pytest.approx(2.5)
    zhang = CFAPolicy(3, eps=0.1, beta=6.0, begin=1, parts=("ccm", "ccr"), trades_form="zhang")
    zhang.end_epoch(0, EpochStats(train_robust=torch.tensor([0.0, 0.5, 1.0])))
    zhang.apply(trades, 1)
    expected = sum(ce + beta * kl for beta, (ce, kl) in zip((3.0, 6.0, 9.0), terms)) / 3
    assert float(trades.loss(nat, adv, y)) == pytest.approx(expected, rel=1e-6)


def test_cfa_begin_scales_with_the_epochs_and_a_never_calibrating_run_is_refused():
    from robustbench_labelaug.fair.cfa import begin_problem, scaled_begin
    from robustbench_labelaug.train.args import parse_args, validate_args

    assert [scaled_begin(n) for n in (200, 100, 40, 15, 5)] == [10, 5, 2, 1, 1]  # 10 of 200, at least 1
    args = parse_args(["--adv-mode", "trades", "--fair", "cfa", "--epochs", "40"])
    validate_args(args)
    assert args.cfa_begin == 2
    assert "never calibrate" in begin_problem(15, 15, ("ccm", "fawa"))
    assert begin_problem(15, 15, ("fawa",)) is None  # FAWA alone has no begin epoch
    assert "must be >= 1" in begin_problem(0, 15, ("ccm",))


def test_fawa_gate_and_ema_by_hand():
    """decay 0.88, threshold 0.24: the first passing epoch copies, later passing epochs average, failing ones skip."""
    fawa = FAWA(decay=0.88, threshold=0.24)
    w = lambda v: {"w": torch.tensor([v]), "n": torch.tensor(3)}  # noqa: E731
    assert not fawa.update(w(5.0), worst_class_acc=0.10) and fawa.state is None
    assert fawa.update(w(1.0), worst_class_acc=0.30)
    assert float(fawa.state["w"]) == pytest.approx(1.0)
    assert fawa.update(w(3.0), worst_class_acc=0.24)  # the gate is >=
    assert float(fawa.state["w"]) == pytest.approx(0.88 * 1.0 + 0.12 * 3.0)  # 1.24
    assert not fawa.update(w(10.0), worst_class_acc=0.2399)
    assert float(fawa.state["w"]) == pytest.approx(1.24)
    assert fawa.update(w(0.0), worst_class_acc=0.5)
    assert float(fawa.state["w"]) == pytest.approx(0.88 * 1.24)  # 1.0912
    assert fawa.updates == 3 and int(fawa.state["n"]) == 3


def test_cfa_policy_feeds_fawa_the_worst_validation_class():
    policy = CFAPolicy(2, eps=0.1, parts=("fawa",))
    state = {"w": torch.tensor([2.0])}
    policy.end_epoch(0, EpochStats(val_robust=torch.tensor([0.9, 0.2])), state)
    assert policy.averaged_state() is None  # worst class 0.2 < 0.24
    policy.end_epoch(1, EpochStats(val_robust=torch.tensor([0.9, 0.3])), state)
    assert float(policy.averaged_state()["w"]) == 2.0


# -- FRL ------------------------------------------------------------------------------------------------------------


def test_frl_multiplier_step_by_hand():
    """K = 3, validation clean acc (0.9, 0.6, 0.9), PGD acc (0.5, 0.2, 0.8), 10 images each: total acc 0.8,
    total robust 0.5. g0 = (1-acc) - 0.2 - 0.07 = (-0.17, 0.13, -0.17); boundary errors (0.4, 0.4, 0.1), total
    0.3: g1 = (0.03, 0.03, -0.27). l0 = P(0.05 g0) = (0, 0.0065, 0); l1 = P(0.1 g1) = (0.003, 0.003, 0);
    l2 = 0.2 g1 = (0.006, 0.006, -0.054)."""
    acc, rob, n = torch.tensor([0.9, 0.6, 0.9]), torch.tensor([0.5, 0.2, 0.8]), torch.tensor([10, 10, 10])
    g0, g1 = frl_violations(acc, rob, n, 0.07, 0.07)
    torch.testing.assert_close(g0, torch.tensor([-0.17, 0.13, -0.17], dtype=torch.float64))
    torch.testing.assert_close(g1, torch.tensor([0.03, 0.03, -0.27], dtype=torch.float64))
    policy = FRLPolicy(3, eps=0.1, beta=6.0, mode="rwrm")
    policy.begin_training(EpochStats(val_clean=acc, val_robust=rob, val_counts=n))  # from the hot start
    torch.testing.assert_close(policy.lmb[0], torch.tensor([0.0, 0.0065, 0.0], dtype=torch.float64))
    torch.testing.assert_close(policy.lmb[1], torch.tensor([0.003, 0.003, 0.0], dtype=torch.float64))
    torch.testing.assert_close(policy.lmb[2], torch.tensor([0.006, 0.006, -0.054], dtype=torch.float64))
    params = policy.class_params(0, trades=True)  # epoch 0 already trains with the hot start's update
    # K * (1/K + l_c - sum(l)/K) = 1 + K l_c - sum(l)
    torch.testing.assert_close(params["class_weight"], torch.tensor([0.9935, 1.013, 0.9935], dtype=torch.float64))
    torch.testing.assert_close(params["class_beta"], 6.0 * torch.tensor([1.003, 1.003, 0.994], dtype=torch.float64))
    factors = torch.tensor([math.exp(0.012), math.exp(0.012), 0.98], dtype=torch.float64)  # exp(-0.108) < 0.98
    torch.testing.assert_close(params["class_eps"], 0.1 * factors)
    assert params["step_scale"] == 0.25  # utils_frl2: step = max(eps_c) / 4
    adv = policy.class_params(0, trades=False)  # one loss term: the mean of the two weights
    torch.testing.assert_close(adv["class_weight"], torch.tensor([0.99825, 1.008, 0.99375], dtype=torch.float64))


def test_frl_projection_and_weights_sum_to_one():
    torch.testing.assert_close(project_multipliers(torch.tensor([0.4, -0.1, 0.6]), 0.5),
                               torch.tensor([0.2, 0.0, 0.3]))
    w = class_weights_from_multipliers(torch.tensor([0.2, 0.0, 0.3]))
    assert float(w.sum()) == pytest.approx(1.0) and float(w.min()) > 0


def test_frl_rate_halves_every_40_epochs():
    """frlrmrw.py: for now_epoch in 1..40, rate1 halves when now_epoch % 40 == 0, before that epoch's update: the
    update for (0-based) epoch 39, made after epoch 38."""
    policy = FRLPolicy(2, eps=0.1)
    stats = EpochStats(val_clean=torch.tensor([1.0, 1.0]), val_robust=torch.tensor([1.0, 1.0]),
                       val_counts=torch.tensor([1, 1]))
    policy.begin_training(stats)
    for epoch in range(38):
        policy.end_epoch(epoch, stats)
    assert policy.rate1 == 0.05
    policy.end_epoch(38, stats)
    assert policy.rate1 == 0.025


def test_frl_remargin_step_reaches_the_largest_radius(digits_train):
    """The remargin attack's step is max(eps_c) / 4 of the batch (utils_frl2.trades_adv), not alpha: with 10 steps
    a sample of the class at 3 eps reaches its radius (alpha = 2.5 eps / 10 would stop at 2.5 eps)."""
    x, y = digits_train.tensors
    x, y = x[:16], y[:16]
    eps = 0.02
    trades = TradesLoss(create_classifier("resnet8_tiny", 10, 0), 10, eps=eps, steps=10, beta=1.5)
    factors = torch.full((10,), 1.0, dtype=torch.float64)
    factors[int(y[0])] = 3.0
    trades.set_class_params(class_eps=eps * factors, step_scale=0.25)
    assert trades.attack_step(trades.class_eps[y]) == pytest.approx(0.25 * 3 * eps)
    assert trades.attack_step(torch.tensor([eps, eps])) == pytest.approx(eps / 4)  # factor 1: 2/255 at 8/255
    trades.set_class_params(class_eps=eps * factors)
    assert trades.attack_step(trades.class_eps[y]) == pytest.approx(2.5 * eps / 10)  # no rule: alpha as set
    policy = FRLPolicy(10, eps=eps, beta=1.5, mode="rw")
    assert "step_scale" not in policy.class_params(0, trades=True)  # reweight only (frlrw.py): alpha as set


def test_unknown_policy_is_refused():
    with pytest.raises(UserError, match="unknown fairness policy"):
        create_policy("fair_enough", 10, 0.1)


# -- validation split -----------------------------------------------------------------------------------------------


def test_validation_split_is_class_balanced_seeded_and_disjoint():
    train = create_dataset("digits", split="train")
    tr, val, record = carve_validation(train, train, 0.1, seed=3)
    labels = np.asarray(train.targets)
    assert set(tr.indices).isdisjoint(val.indices) and len(tr) + len(val) == len(train)
    per_class = np.bincount(labels[val.indices], minlength=10)
    expected = [round(0.1 * n) for n in np.bincount(labels, minlength=10)]
    assert per_class.tolist() == expected and record["per_class"] == dict(enumerate(expected))
    assert holdout_indices(labels, 0.1, 3)[1].tolist() == list(val.indices)  # fixed by the seed
    assert holdout_indices(labels, 0.1, 4)[1].tolist() != list(val.indices)
    assert record["of_split"] == "train"


def test_class_counts():
    counts = ClassCounts(3)
    counts.update(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]))
    torch.testing.assert_close(counts.accuracy(), torch.tensor([1.0, 1.0, 0.5], dtype=torch.float64))
    assert math.isnan(float(ClassCounts(2).accuracy()[0]))


# -- DDP: statistics all-reduced, every rank sets the same epsilon --------------------------------------------------


@pytest.mark.slow
def test_two_gloo_processes_agree_on_statistics_and_weights(tmp_path):
    a, b = run_gloo_workers("_fair_ddp_worker.py", tmp_path)
    # rank 0: class 0 2/2, class 1 1/2; rank 1: class 1 1/1, class 2 2/3 -> all-reduced 1, 2/3, 2/3
    torch.testing.assert_close(a["acc"], torch.tensor([1.0, 2 / 3, 2 / 3], dtype=torch.float64))
    assert torch.equal(a["acc"], b["acc"]) and torch.equal(a["eps"], b["eps"])
    torch.testing.assert_close(a["eps"], (0.5 + a["acc"]) * 0.1)
    train = create_dataset("digits", split="train")
    _, holdout, _ = carve_validation(train, train, 0.05, seed=0)
    assert float(a["clean_total"].sum()) == len(holdout) and torch.equal(a["clean_correct"], b["clean_correct"])
    for key, value in a["weights"].items():  # DDP averaged the TRADES gradients of both ranks' batches (BN buffers: rank-local until run.py syncs them)
        assert torch.equal(value, b["weights"][key]), key
    assert float(a["local_total"].sum()) == 8  # the training counts of one rank before the all-reduce


# -- rbla train: TRADES + CFA end to end, resume restores the policy bit for bit ------------------------------------

FAST = ["--no-progress", "--log-interval", "0", "--seed", "0", "--lr", "0.05", "--adv-eps", "0.2",
        "--adv-steps", "1", "--fair-val-steps", "1"]


@pytest.mark.slow
def test_cfa_run_resumed_from_an_epoch_checkpoint_is_bit_identical(tmp_path):
    from robustbench_labelaug.train import parse_args, read_checkpoint, train

    flags = ["--adv-mode", "trades", "--fair", "cfa", "--cfa-begin", "1", "--fawa-threshold", "0",
             "--epochs", "2", "--output", str(tmp_path), *FAST]
    full = train(parse_args([*flags, "--experiment", "full"]))
    (tmp_path / "killed").mkdir()
    shutil.copy(full.output_dir / "checkpoint-0.pth.tar", tmp_path / "killed" / "last.pth.tar")
    train(parse_args([*flags, "--experiment", "killed", "--resume", str(tmp_path / "killed" / "last.pth.tar")]))
    a, b = (read_checkpoint(tmp_path / name / "last.pth.tar") for name in ("full", "killed"))
    fa, fb = (read_checkpoint(tmp_path / name / "fawa.pth.tar") for name in ("full", "killed"))
    assert a["epoch"] == b["epoch"] == 1 and fa["averaged"] == "fawa"
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
        assert torch.equal(fa["state_dict"][key], fb["state_dict"][key]), key
    assert torch.equal(a["fair"]["train_robust"], b["fair"]["train_robust"])
    assert a["fair"]["fawa"]["updates"] == 2 and a["args"]["cfa_begin"] == 1  # epoch 1 trained at class-wise eps
    header = (full.output_dir / "summary.csv").read_text().splitlines()[0].split(",")
    for col in ("train_robust_top1_c0", "train_robust_top1_worst", "train_eps_factor_c9", "eval_holdout_top1_c3",
                "eval_holdout_pgd_top1_worst"):
        assert col in header
    import csv

    rows = list(csv.DictReader((full.output_dir / "summary.csv").open()))
    factors = [[float(r[f"train_eps_factor_c{k}"]) for k in range(10)] for r in rows]
    assert factors[0] == [1.0] * 10 and factors[1] != [1.0] * 10  # CCM from epoch `begin` = 1
    robust = [float(rows[0][f"train_robust_top1_c{k}"]) / 100 for k in range(10)]
    assert factors[1] == pytest.approx([0.5 + a for a in robust])  # (lambda_1 + A_c), A_c of epoch 0
    args_yaml = (full.output_dir / "args.yaml").read_text()
    assert "val_split_record" in args_yaml and "of_split: train" in args_yaml


@pytest.mark.slow
def test_rbla_train_fair_cfa_speaks_each_epoch_and_says_why_no_fawa_model(tmp_path, capsys):
    """rbla train's door says what timm-train's does: the policy's state per epoch, and at the end why there is
    no fawa.pth.tar; exporting the missing file names the reason and the file to export instead."""
    from robustbench_labelaug.cli import main as cli_main
    from robustbench_labelaug.train import parse_args, train

    run = train(parse_args(["--adv-mode", "adv", "--fair", "cfa", "--cfa-parts", "fawa", "--fawa-threshold", "1.5",
                            "--epochs", "1",
                            "--output", str(tmp_path), "--experiment", "closed", *FAST])).output_dir
    out = capsys.readouterr().out
    assert "--fair cfa, epoch 0: eps factors 1 (uniform); weights 1 (uniform); fawa_updates 0; FAWA gate " in out
    assert "< 1.5: closed (0 epoch(s) averaged)" in out
    assert "--fair cfa: no averaged model written: FAWA's gate never opened: the worst-class validation PGD " \
           "accuracy peaked at " in out
    assert not (run / "fawa.pth.tar").exists()
    assert cli_main(["zoo", "export", "--checkpoint", str(run / "fawa.pth.tar"), "--name", "mine_cfa",
                     "--model-dir", str(tmp_path / "models"), "--zoo", str(tmp_path / "zoo")]) == 2
    err = capsys.readouterr().err
    assert "that run wrote no fawa.pth.tar: FAWA's gate never opened" in err and "below --fawa-threshold 1.5" in err


@pytest.mark.parametrize("flags,pattern", [
    (["--fair", "frl", "--val-split", "0"], "--fair frl needs a validation split"),
    (["--fair", "cfa", "--adv-mode", "std"], "needs adversarial training"),
    (["--cfa-parts", "ccm,xyz"], "unknown part"),
    (["--trades-beta", "-1"], "--trades-beta must be >= 0"),
])
def test_bad_fair_flags(tmp_path, flags, pattern):
    from .conftest import run_cli_inprocess

    result = run_cli_inprocess("train", "--epochs", "1", "--output", str(tmp_path), "--experiment", "bad", *flags)
    assert result.returncode == 2 and pattern in result.stderr, result.stderr[-1000:]


def test_timm_launcher_refuses_trades():
    import argparse

    from robustbench_labelaug.timm_train import add_arguments, hook_settings, parse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parse(parser, ["train.py", "--adv-mode", "trades"])
    with pytest.raises(UserError, match="use rbla train --adv-mode trades"):
        hook_settings(args)


# -- curves, labels, demo methods -----------------------------------------------------------------------------------


def test_leaderboard_plots_draws_per_class_training_curves(tmp_path):
    from .conftest import run_cli_inprocess

    run = tmp_path / "run"
    run.mkdir()
    header = ["epoch", "train_loss", *[f"train_robust_top1_c{k}" for k in range(3)], "train_robust_top1_worst",
              *[f"eval_holdout_pgd_top1_c{k}" for k in range(3)], "eval_holdout_pgd_top1_worst"]
    rows = [[0, 2.0, 10, 20, 30, 10, 5, 6, 7, 5], [1, 1.5, 20, 30, 40, 20, 8, 9, 10, 8]]
    (run / "summary.csv").write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")
    result = run_cli_inprocess("leaderboard", "--plots", str(tmp_path))
    assert result.returncode == 0, result.stderr
    png = run / "plots" / "training_curves.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"


def test_training_labels_are_the_zoo_trainings():
    from robustbench_labelaug.results.vocab import TRAINING_LABELS, training_label
    from robustbench_labelaug.zoo import load_entries

    assert {e.training for e in load_entries().values()} <= set(TRAINING_LABELS)
    assert {"trades", "adv_cfa", "adv_plus_cfa", "trades_cfa", "trades_frl", "adv_mix", "adv_plus_dummy"} <= set(
        TRAINING_LABELS)
    assert training_label("adv_plus", "cfa") == "adv_plus_cfa" and training_label("trades", "none") == "trades"


def test_demo_methods():
    from robustbench_labelaug.demo import demo_models
    from robustbench_labelaug.zoo import get_entry

    assert demo_models(None) == ("digits_std", "digits_adv", "digits_adv_plus")
    every = demo_models("std,adv,adv_plus,adv_mix,adv_plus_dummy,trades,cfa,adv_plus_cfa,trades_cfa,frl")
    assert len(every) == 10 and all(get_entry(name).dataset == "digits" for name in every)
    assert demo_models("frl") == ("digits_adv", "digits_frl")  # the hot start is trained first
    from pathlib import Path

    from robustbench_labelaug.demo import run_train_args

    args = run_train_args("digits_frl", 1, Path("demo_out"), fast=True, progress=False, device=None)
    # seed 1's FRL fine-tunes seed 1's Adv run of this demo folder
    assert Path(args.initial_checkpoint) == Path("demo_out") / "train" / "digits_adv_seed1" / "last.pth.tar"
    assert (args.lr, args.trades_beta, args.val_split) == (0.001, 1.5, 0.36)
    with pytest.raises(UserError, match="unknown method"):
        demo_models("adv,mart")


def test_a_fawa_checkpoint_exports_under_its_policy_entry(tmp_path):
    """fawa.pth.tar of an `--adv-mode adv --fair cfa` run exports as digits_adv_cfa (training label adv_cfa), and
    is refused as digits_adv (the plain method)."""
    import argparse

    from robustbench_labelaug.train.checkpoint import RunCheckpointSaver
    from robustbench_labelaug.zoo import export_checkpoint, load_model

    model = create_classifier("resnet8_tiny", 10, 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    args = argparse.Namespace(model="resnet8_tiny", dataset="digits", adv_mode="adv", fair="cfa", adv_eps=0.2,
                              la_delta=0.03, la_ops=1)
    saver = RunCheckpointSaver(model, opt, torch.optim.lr_scheduler.StepLR(opt, 1), args,
                               checkpoint_dir=str(tmp_path), max_history=1)
    averaged = {k: v + 1 if k.endswith("fc.weight") else v for k, v in model.state_dict().items()}
    path = saver.save_averaged("fawa", 0, averaged)
    export_checkpoint(path, "digits_adv_cfa", tmp_path / "models")
    loaded = load_model("digits_adv_cfa", model_dir=tmp_path / "models")
    weight = loaded.state_dict()
    key = next(k for k in weight if k.endswith("fc.weight"))
    assert torch.equal(weight[key], averaged[key.removeprefix("model.")])
    with pytest.raises(UserError, match="adv_cfa"):
        export_checkpoint(path, "digits_adv", tmp_path / "other")


def test_policy_line_and_the_missing_average_reason():
    """The per-epoch line of a policy (eps factors and weights min–max, FAWA's gate) and why no FAWA model."""
    from robustbench_labelaug.fair import create_policy
    from robustbench_labelaug.fair.epoch import averaged_model_line, no_average_reason, policy_line
    from robustbench_labelaug.fair.policy import EpochStats

    policy = create_policy("cfa", 3, 0.1, begin=0, fawa_threshold=0.3)
    stats = EpochStats(train_robust=torch.tensor([0.2, 0.5, 0.9]), val_robust=torch.tensor([0.25, 0.6, 0.7]))
    before = policy.class_params(0, False)
    policy.end_epoch(0, stats, {"w": torch.ones(2)})
    assert policy_line(policy, before, 0) == ("--fair cfa, epoch 0: eps factors 1 (uniform); weights 1 (uniform); "
                                              "fawa_updates 0; FAWA gate 0.250 < 0.3: closed (0 epoch(s) averaged)")
    trained = policy.class_params(1, False)  # CCM: (0.5 + A_c)
    policy.end_epoch(1, EpochStats(train_robust=stats.train_robust, val_robust=torch.tensor([0.4, 0.6, 0.7])),
                     {"w": torch.ones(2)})
    line = policy_line(policy, trained, 1)
    assert "eps factors 0.700–1.400" in line and "FAWA gate 0.400 >= 0.3: opened (1 epoch(s) averaged)" in line
    assert averaged_model_line(policy, "run/fawa.pth.tar", 0.1) == (
        "--fair cfa: averaged model (FAWA, 1 epoch(s)) written to run/fawa.pth.tar")
    closed = create_policy("cfa", 3, 0.1, fawa_threshold=0.9)
    closed.end_epoch(0, stats, {"w": torch.ones(2)})
    assert averaged_model_line(closed, None, 0.1) == (
        "--fair cfa: no averaged model written: FAWA's gate never opened: the worst-class validation PGD accuracy "
        "peaked at 0.250, below --fawa-threshold 0.9 (lower it, train longer, or export last.pth.tar)")
    assert no_average_reason("frl") == "--fair frl keeps no weight average (only CFA's FAWA writes fawa.pth.tar)"
    assert no_average_reason("cfa", "ccm,ccr", None, 0.1) == "FAWA was off (--cfa-parts without fawa)"
    assert no_average_reason("cfa", ("ccm", "fawa"), {"updates": 2}, 0.1) is None
    assert policy_line(create_policy("none", 3, 0.1), {}, 0) is None
# -- issue 28: FRL from a hot start, the references' schedules -------------------------------------------------------


@pytest.mark.slow
def test_frl_fine_tunes_its_hot_start_and_updates_before_epoch_0(tmp_path):
    """rbla train --fair frl --initial-checkpoint HOT: the run starts from HOT's weights (lr ~0: they stay), records
    its sha256, and epoch 0 already trains at the radii of the update made from HOT's validation errors (the
    reference's first update, before its first epoch): eps * clip(exp(2 * 0.2 * g1_start), 0.98, 3)."""
    import csv

    import yaml

    from robustbench_labelaug.fair.frl import remargin_factor
    from robustbench_labelaug.fileio import file_sha256
    from robustbench_labelaug.train import parse_args, read_checkpoint, train
    from robustbench_labelaug.train.checkpoint import RunCheckpointSaver

    torch.manual_seed(3)
    hot = create_classifier("resnet8_tiny", 10, 0)
    opt = torch.optim.SGD(hot.parameters(), lr=0.1)
    import argparse

    RunCheckpointSaver(hot, opt, torch.optim.lr_scheduler.StepLR(opt, 1),
                       argparse.Namespace(model="resnet8_tiny", dataset="digits", adv_mode="adv"),
                       checkpoint_dir=str(tmp_path / "hot"), max_history=1).save_checkpoint(epoch=0)
    hot_path = tmp_path / "hot" / "last.pth.tar"
    flags = ["--adv-mode", "trades", "--trades-beta", "1.5", "--fair", "frl", "--epochs", "1", "--lr", "1e-12",
             "--initial-checkpoint", str(hot_path), "--output", str(tmp_path), "--experiment", "frl", "--val-split",
             "0.1", *[f for f in FAST if f not in ("--lr", "0.05")]]
    run = train(parse_args(flags)).output_dir
    last = read_checkpoint(run / "last.pth.tar")
    for key, value in hot.state_dict().items():
        if key.endswith("weight") and value.dim() > 1:  # conv / linear weights: HOT's (BN statistics move)
            torch.testing.assert_close(last["state_dict"][key], value, rtol=0, atol=1e-6)
    recorded = yaml.safe_load((run / "args.yaml").read_text())
    assert recorded["initial_checkpoint_sha256"] == file_sha256(hot_path)
    s0, s1 = last["fair"]["start_violations"]
    rows = list(csv.DictReader((run / "summary.csv").open()))
    factors = [float(rows[0][f"train_eps_factor_c{k}"]) for k in range(10)]
    assert factors == pytest.approx(remargin_factor(0.2 * s1).tolist())


def test_the_cifar_recipes_follow_cfas_piecewise_schedule():
    """CFA's train.py lr_schedule: lr_max while t/epochs < 0.5, /10 until 0.75, /100 after (0-based t, 200 epochs);
    the entries' timm multistep (1-based milestones 101 151) gives the same lr at every epoch. FRL's entry keeps
    0.001 over its 40 epochs (the reference's MultiStepLR at 40 and 80 steps after each epoch)."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    from robustbench_labelaug.train.args import schedule_kwargs
    from robustbench_labelaug.zoo import get_entry
    from robustbench_labelaug.zoo.entries import parse_recipe

    def lrs(name):
        args = parse_recipe(get_entry(name).recipe, name)
        opt = create_optimizer_v2([torch.nn.Parameter(torch.zeros(1))], opt=args.opt, lr=args.lr,
                                  weight_decay=args.weight_decay, momentum=args.momentum)
        sched, epochs = create_scheduler_v2(opt, **schedule_kwargs(args, args.lr * 1e-4))
        out = []
        for t in range(epochs):
            sched.step(t)
            out.append(opt.param_groups[0]["lr"])
        return out

    cfa = [0.1 if t / 200 < 0.5 else 0.01 if t / 200 < 0.75 else 0.001 for t in range(200)]
    for name in ("cifar10_preactresnet18_trades_cfa", "cifar10_preactresnet18_trades", "cifar10_preactresnet18_adv"):
        assert lrs(name) == pytest.approx(cfa), name
    assert lrs("cifar10_preactresnet18_trades_frl") == pytest.approx([0.001] * 40)
