"""Class-wise robustness curves: the pure scoring (scoring/curves.py) by hand, the ``robustness_curve`` evaluator on
an analytic case (a linear model whose minimal L-inf radii are known in closed form), AutoAttack tightening the
curve, ``Report.curve()`` and the leaderboard's figure."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from robustbench_labelaug.evaluation import EvalContext, create_evaluator, evaluator_class
from robustbench_labelaug.evaluation.parts import part_cache
from robustbench_labelaug.scoring.curves import (
    curve_accuracy,
    curve_area,
    curve_intervals,
    median_radius,
    robustness_curves,
    tighten_radii,
)
from robustbench_labelaug.scoring.intervals import wilson_interval

K, SHAPE = 4, (1, 4, 5)  # four classes, 20 "pixels"


class LinearModel(nn.Module):
    """logits = W x + b on the flattened image: the minimal L-inf distance from x to the region where class j
    beats the predicted class y is (z_y - z_j) / ||w_y - w_j||_1 while the box [0, 1] does not bind."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.fc = nn.Linear(int(np.prod(SHAPE)), K)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(K, int(np.prod(SHAPE)), generator=g))
            self.fc.bias.copy_(-0.5 * self.fc.weight.sum(1))  # centred at the mid-grey image: every class occurs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class Points(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.targets = x, y
        self.classes = [str(c) for c in range(K)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.x[i], int(self.targets[i])


def analytic_case(n: int = 48, seed: int = 0):
    """``n / K`` points of each predicted class, inside [0.35, 0.65] (so no minimal perturbation, at most 0.3
    here, reaches the box), labelled with the model's prediction except every 8th, labelled wrongly (radius 0);
    the closed-form radii."""
    model = LinearModel(seed).eval()
    g = torch.Generator().manual_seed(seed + 1)
    pool = 0.35 + 0.3 * torch.rand(40 * n, *SHAPE, generator=g)
    with torch.no_grad():
        pool_pred = model(pool).argmax(1)
    keep = torch.cat([torch.nonzero(pool_pred == c).squeeze(1)[:n // K] for c in range(K)])
    x = pool[keep.sort().values]
    with torch.no_grad():
        z = model(x).double()
    n = len(x)
    pred = z.argmax(1)
    w = model.fc.weight.detach().double()
    dist = torch.stack([(z[torch.arange(n), pred] - z[:, j]) / (w[pred] - w[j]).abs().sum(1) for j in range(K)], 1)
    dist[torch.arange(n), pred] = math.inf
    radius = dist.min(1).values.numpy()
    y = pred.clone()
    wrong = torch.arange(n) % 8 == 0
    y[wrong] = (pred[wrong] + 1) % K
    radius[wrong.numpy()] = 0.0
    assert radius.max() < 0.3  # the box does not bind
    return model, Points(x, y), y.numpy(), radius


def test_scoring_by_hand():
    """Class 0: radii 0, 0.1, inf; class 1: 0.2, 0.3. At eps 0: 2/3 and 2/2 robust; at 0.1: 1/3 (0.1 is not > 0.1)
    and 2/2; at 0.25: 1/3 and 1/2."""
    y = [0, 0, 0, 1, 1]
    r = [0.0, 0.1, math.inf, 0.2, 0.3]
    acc, n = curve_accuracy(y, r, 3, [0.0, 0.1, 0.25])
    assert n.tolist() == [3, 2, 0]
    assert acc[0] == pytest.approx([200 / 3, 100 / 3, 100 / 3]) and acc[1].tolist() == [100.0, 100.0, 50.0]
    assert np.isnan(acc[2]).all()
    low, high = curve_intervals(acc, n)
    ci = wilson_interval(2, 3)  # the project's Wilson interval of the error, turned into accuracy
    assert (low[0, 1], high[0, 1]) == pytest.approx((100 - ci[1], 100 - ci[0]))
    assert median_radius(y, r, 2).tolist() == [0.1, 0.25]
    # area on [0, 0.4]: class 0 = mean(0, 0.25, 1) ; class 1 = mean(0.5, 0.75)
    assert curve_area(y, r, 2, 0.4) == pytest.approx([100 * 1.25 / 3, 62.5])
    with pytest.raises(ValueError, match="NaN or negative"):
        curve_accuracy([0], [-1.0], 1, [0.0])


def test_area_is_the_integral_of_the_curve():
    """Independent reference: the trapezoid integral of the step curve on a fine grid."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    r = np.where(rng.random(300) < 0.1, np.inf, rng.exponential(0.1, 300))
    eps = np.linspace(0, 0.3, 30001)
    acc, _ = curve_accuracy(y, r, 3, eps)
    reference = np.trapezoid(acc, eps, axis=1) / 0.3
    assert curve_area(y, r, 3, 0.3) == pytest.approx(reference, abs=0.01)
    block = robustness_curves(y, r, 3, 0.3, points=7)
    assert block["worst_area"] == pytest.approx(reference.min(), abs=0.01)
    assert block["worst_area_class"] == int(np.argmin(reference))


def test_tighten_radii_by_hand():
    r, tightened = tighten_radii([5, 6, 7, 8], [0.3, np.inf, 0.1, 0.2], other_index=[8, 6, 7, 9],
                                 other_broken=[True, True, True, True], other_linf=[0.25, 0.2, 0.2, 0.01])
    assert r.tolist() == [0.3, 0.2, 0.1, 0.2] and tightened.tolist() == [False, True, False, False]


def test_curve_matches_the_closed_form_on_a_linear_model(tmp_path):
    """Every example's radius within 1e-3 (relative) of the closed form, and each class's robust accuracy equal to
    the closed form's at every eps of the grid (no closed-form radius lies within the attack's precision of a grid
    point); median radii and areas likewise."""
    model, data, y, truth = analytic_case(32)
    # a grid with no closed-form radius within the attack's precision (1e-3 relative) of a grid point
    eps_max = next(e for e in (0.2, 0.19, 0.21, 0.18, 0.22)
                   if not np.any(np.abs(truth[:, None] - np.linspace(0, e, 21)[None, 1:])
                                 <= 1e-3 * np.linspace(0, e, 21)[None, 1:]))
    grid = np.linspace(0, eps_max, 21)
    torch.set_num_threads(1)
    ctx = EvalContext(num_classes=K, out_dir=tmp_path, batch_size=16, progress=False)
    evaluator = create_evaluator("robustness_curve", eps=0.05, eps_max=eps_max, points=21, steps=20,
                                 autoattack=False)
    result = evaluator.run(model, data, ctx).to_dict()
    arrays = part_cache(evaluator, ctx).load("all")
    order = np.argsort(arrays["index"])
    found = arrays["radius"][order]
    assert np.all(found[truth == 0] == 0)
    assert np.allclose(found, truth, rtol=1e-3, atol=0)
    expected, n = curve_accuracy(y, truth, K, grid)
    curve = result["details"]["curve"]
    assert np.array_equal(np.asarray(curve["accuracy"], dtype=float), expected)
    assert min(n) >= 6  # every class is in the test
    assert curve["n"] == n.tolist() and curve["eps"] == pytest.approx(grid.tolist())
    assert curve["median_radius"] == pytest.approx(median_radius(y, truth, K).tolist(), rel=1e-3)
    assert curve["area"] == pytest.approx(curve_area(y, truth, K, eps_max).tolist(), rel=1e-3)
    # y_pred: the prediction at the closest adversarial example within eps_max, so its error is the curve's there
    assert result["metrics"]["robust_error_at_eps_max"] == pytest.approx(100 * np.mean(truth <= eps_max))
    assert json.loads(json.dumps(result)) == result


def test_autoattack_tightens_the_curve_and_is_shared(tmp_path, monkeypatch):
    """AutoAttack at the study eps run first by the autoattack evaluator of the same model is taken (not run
    again); every example it broke has a radius <= its L-inf distance <= eps, and each class's curve at eps is at
    most AutoAttack's robust accuracy there (no attack of the run broke a robust example within eps)."""
    import robustbench_labelaug.evaluation.robustness_curve as rc

    model, data, y, _ = analytic_case(24, seed=3)
    torch.set_num_threads(1)
    ctx = EvalContext(num_classes=K, batch_size=12, progress=False, predictions={})
    aa = create_evaluator("autoattack", eps=0.05, version="standard", selection="class_balanced")
    aa_result = aa.run(model, data, ctx).to_dict()

    def no_second_run(*args, **kwargs):
        raise AssertionError("AutoAttack ran again although the autoattack evaluator's results cover the points")

    monkeypatch.setattr(rc, "predict_autoattack", no_second_run)
    ctx.out_dir = tmp_path
    curve_eval = create_evaluator("robustness_curve", eps=0.05, eps_max=0.1, points=11, steps=5, refine_steps=0)
    curve = curve_eval.run(model, data, ctx).to_dict()
    part = part_cache(curve_eval, ctx).load("all")
    broken = np.isfinite(part["autoattack_linf"])
    assert broken.any() and np.all(part["autoattack_linf"][broken] <= 0.05)  # no float32 rounding past eps
    assert np.all(part["radius"][broken] <= 0.05)  # every example AutoAttack broke is broken at eps on the curve
    assert curve["metrics"]["robust_error_at_eps"] >= aa_result["metrics"]["robust_error"] - 1e-9
    assert np.array_equal(part["radius"], np.minimum(part["attack_radius"], part["autoattack_linf"]))
    assert curve["details"]["tightened_by_autoattack"] == int(np.sum(part["autoattack_linf"] < part["attack_radius"]))
    aa_wrong = np.asarray(aa_result["classwise"]["autoattack"]["error"])
    at_eps = np.asarray(curve["details"]["curve"]["accuracy"])[:, 5]  # eps = 0.05
    assert np.all(at_eps <= 100 - aa_wrong + 1e-9)
    assert "AutoAttack (standard)" in curve["settings"]["attack_label"]


def test_report_curve_and_the_figure(tmp_path):
    from robustbench_labelaug.leaderboard.plots import curve_block, curves_figure, write_plots

    model, data, _, _ = analytic_case(16)
    torch.set_num_threads(1)
    ctx = EvalContext(num_classes=K, batch_size=16, progress=False)
    result = create_evaluator("robustness_curve", eps=0.05, eps_max=0.1, points=6, steps=20,
                              autoattack=False).run(model, data, ctx).to_dict()
    from robustbench_labelaug.api import Report

    report = Report("linear", {"curve": result}, {}, [str(c) for c in range(K)], {"dataset": None})
    frame = report.curve()
    assert list(frame.columns) == ["class", "eps", "accuracy", "ci_low", "ci_high"] and len(frame) == K * 6
    first = frame[frame["class"] == 1]
    assert first["accuracy"].tolist() == result["details"]["curve"]["accuracy"][1]
    assert (frame["ci_low"] <= frame["accuracy"]).all() and (frame["accuracy"] <= frame["ci_high"]).all()
    info = report.model_info()
    measured = info["labelaug"]["measured"]
    assert measured["curve_source"] == "curve" and measured["curve_worst_area"] == pytest.approx(
        result["details"]["curve"]["worst_area"])
    assert measured["classwise"]["curve"]["source"] == "curve"
    assert curve_block(info)["eps"] == result["details"]["curve"]["eps"]
    assert curves_figure([("linear", info)]) is not None and curves_figure([("x", {"labelaug": {}})]) is None
    written = write_plots([("linear", info)], tmp_path)
    assert tmp_path / "robustness_curves.png" in written
    with pytest.raises(Exception, match="robustness_curve"):
        Report("x", {}, {}, ["a"], {}).curve()


def test_headline_declares_the_curve():
    cls = evaluator_class("robustness_curve")
    result = {"details": {"curve": {"worst_area": 40.0, "mean_area": 55.0, "worst_median_radius": 0.03,
                                    "median_radius": [0.05, None], "eps_max": 0.2}},
              "settings": {"attack_label": "FAB (pyautoattack)"}, "classwise": {"curve": {"error": [1, 2]}}}
    heads = {h.key: h for h in cls.headline(result)}
    assert heads["curve_worst_area"].value == 40.0 and heads["curve_worst_area"].unit == "%"
    assert "ε ≤ 0.2" in heads["curve_worst_area"].label and heads["curve_worst_area"].protocol == "FAB (pyautoattack)"
    assert heads["curve_median_radius"].value == [0.05, None] and not heads["curve_median_radius"].show
    assert cls.classwise_refs(result) == {"curve": "curve"}


@pytest.mark.parametrize("settings, match", [({"eps": 0.1, "eps_max": 0.05}, "below eps"),
                                             ({"points": 1}, "points"), ({"attack": "cw"}, "attack"),
                                             ({"targets": -1}, "targets")])
def test_bad_settings(settings, match):
    from robustbench_labelaug import UserError

    with pytest.raises(UserError, match=match) as info:
        create_evaluator("robustness_curve", **settings)
    assert len(str(info.value).splitlines()) == 1


@pytest.mark.slow
def test_benchmark_door_shares_autoattack_with_the_curve(monkeypatch):
    """``benchmark(..., evaluators=("autoattack", "robustness_curve"))``: the curve gets benchmark's eps and
    examples, takes the AutoAttack run's per-example results (no second run) and ``Report.curve()`` reads it."""
    import robustbench_labelaug.evaluation.robustness_curve as rc
    from robustbench_labelaug import benchmark

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)).eval()
    monkeypatch.setattr(rc, "predict_autoattack", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    torch.set_num_threads(1)
    report = benchmark(model, dataset="digits", n_examples=10, eps=0.05, evaluators=(
        "autoattack", ("robustness_curve", {"steps": 10, "points": 5})))
    curve = report.results["robustness_curve"]
    assert curve["settings"]["eps"] == 0.05 and curve["num_examples"] == 10
    frame = report.curve()
    assert frame["eps"].max() == pytest.approx(0.1) and len(frame) == 10 * 5
    assert "robustness_curve_pred" in report.per_example.columns
