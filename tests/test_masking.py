"""Gradient-masking checks: a normal model passes, deliberately masked models fail the right checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from robustbench_labelaug import UserError
from robustbench_labelaug.evaluation import EvalContext, create_evaluator, masking
from robustbench_labelaug.evaluation.masking import MaskingChecks, max_rise, paired_difference_ci

from .masked_models import Detached, OneHot, Round, Scaled
from .robust_fixtures import train_digits_mlp, trained_resnet8_digits

CTX = dict(num_classes=10, progress=False, batch_size=128)


class SaturatedKWay(nn.Module):
    """K+1 logits: the K class logits times 1e4 (softmax saturates, so the K-way cross entropy has exactly zero
    gradient on confident points) and one extra logit 1e4 * logsumexp(z), through which the K+M cross entropy
    still carries the normal gradient."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        return torch.cat([1e4 * z, 1e4 * torch.logsumexp(z, 1, keepdim=True)], 1)


@pytest.fixture(scope="module")
def mlp(digits_train):
    """A small MLP trained 5 clean epochs on digits (~90 % clean accuracy; well under a second)."""
    return train_digits_mlp(digits_train, hidden=64, epochs=5, lr=0.05)


@pytest.fixture(scope="module")
def adv_mlp(digits_train):
    """The same MLP, adversarially trained on digits: 3 clean epochs, then 6 epochs of PGD-3 at eps 0.1 (~92 %
    clean, ~50 % PGD accuracy at eps 0.1; 1-3 s). Unmasked: its logit margins are a few units."""
    return train_digits_mlp(digits_train, hidden=64, epochs=9, lr=0.01, pgd_from=3, eps=0.1, alpha=0.05, steps=3)


@pytest.fixture(scope="module")
def test64(digits_test):
    return TensorDataset(*(t[:64] for t in digits_test.tensors))


def checks_of(result) -> dict[str, dict]:
    return {c["name"]: c for c in result.details["checks"]}


NEW_CHECKS = {"gradient_reaches_input", "input_gradient_nonzero", "ce_attack_not_weaker_than_margin_attack"}


@pytest.mark.slow
def test_normal_model_passes_masked_model_fails(adv_mlp, test64, one_thread):
    """eps 0.1 (PGD leaves ~half of the adversarially trained MLP standing). The rounding front end leaves the
    forward pass unchanged but zeroes every gradient: PGD cannot move beyond its random start, so accuracy stays
    high even at eps 0.5, and AutoAttack's black-box Square attack gets far below PGD, by more than the gap's CI
    can explain."""
    settings = dict(eps=0.1, steps=20, steps_sweep=[5, 10, 20, 40], n_examples=64, autoattack_n=32)
    normal = create_evaluator("masking", **settings).run(adv_mlp, test64, EvalContext(**CTX))
    checks = checks_of(normal)
    assert normal.metrics["failed_checks"] == 0, normal.details["checks"]
    assert normal.metrics["passed_checks"] + normal.metrics["inconclusive_checks"] == 8
    assert set(checks) == {"eps_sweep_monotone", "large_eps_near_zero", "steps_sweep_monotone",
                           "autoattack_not_weaker_than_pgd", "pgd_close_to_autoattack"} | NEW_CHECKS
    assert "k_way_attack_not_weaker_than_full_head" in normal.details["skipped"]  # M = 0
    assert 5.0 < checks["steps_sweep_monotone"]["robust_accuracy"][-1] < 80.0  # non-trivial
    assert checks["eps_sweep_monotone"]["eps"] == [0.05, 0.1, 0.2, 0.4, 0.5]
    assert normal.protocol == "sound"
    gap = checks["pgd_close_to_autoattack"]
    assert gap["n"] == 32 and gap["confidence"] == 0.95 and gap["gap_ci"][0] <= gap["gap"] <= gap["gap_ci"][1]

    masked = create_evaluator("masking", **settings).run(nn.Sequential(Round(), adv_mlp).eval(), test64,
                                                         EvalContext(**CTX))
    checks = checks_of(masked)
    assert set(masked.details["failed"]) >= {"large_eps_near_zero", "pgd_close_to_autoattack",
                                             "input_gradient_nonzero"}
    assert masked.metrics["failed_checks"] == len(masked.details["failed"]) >= 3
    assert checks["large_eps_near_zero"]["robust_accuracy"] > 50.0
    assert checks["pgd_close_to_autoattack"]["gap_ci"][0] > 10.0 and checks["pgd_close_to_autoattack"]["conclusive"]
    assert checks["input_gradient_nonzero"]["zero_gradient_percent"] == 100.0


FAST = dict(eps=0.1, steps=10, eps_sweep=[0.05, 0.1, 0.5], steps_sweep=[5, 10], autoattack=False, n_examples=64)


@pytest.mark.parametrize("wrap, flagged", [
    (lambda m: m, set()),
    (lambda m: nn.Sequential(Round(), m), {"input_gradient_nonzero", "large_eps_near_zero"}),
    (lambda m: Scaled(m, 30.0), {"input_gradient_nonzero", "large_eps_near_zero"}),
    (lambda m: Scaled(m, 1e4), {"input_gradient_nonzero", "large_eps_near_zero",
                                "ce_attack_not_weaker_than_margin_attack"}),
], ids=["unmasked", "round8bit", "logits_x30", "logits_x1e4"])
def test_masked_wrappers_are_flagged_by_named_checks(adv_mlp, test64, wrap, flagged, one_thread):
    """The adversarially trained MLP passes every check; each masked wrapper of it fails the named ones."""
    r = create_evaluator("masking", **FAST).run(wrap(adv_mlp).eval(), test64, EvalContext(**CTX))
    checks = checks_of(r)
    assert NEW_CHECKS <= set(checks)
    if not flagged:
        assert r.details["failed"] == [], r.details["checks"]
        assert checks["input_gradient_nonzero"]["zero_gradient_percent"] == 0.0
    else:
        assert set(r.details["failed"]) >= flagged, r.details["checks"]
    assert checks["gradient_reaches_input"]["passed"]
    margin = checks["ce_attack_not_weaker_than_margin_attack"]
    assert margin["n"] == 64 and margin["gap_ci"][0] <= margin["gap"] <= margin["gap_ci"][1]


def test_margin_attack_sees_through_logit_scaling(adv_mlp, test64, one_thread):
    """The margin attack is scale-invariant: its robust accuracy is the same with logits x 1e4, while the CE
    attack's rises far above it."""
    plain = checks_of(create_evaluator("masking", **FAST).run(adv_mlp, test64, EvalContext(**CTX)))
    scaled = checks_of(create_evaluator("masking", **FAST).run(Scaled(adv_mlp, 1e4).eval(), test64,
                                                                 EvalContext(**CTX)))
    a, b = plain["ce_attack_not_weaker_than_margin_attack"], scaled["ce_attack_not_weaker_than_margin_attack"]
    assert abs(a["margin_robust_accuracy"] - b["margin_robust_accuracy"]) <= 100.0 / 64
    assert b["ce_robust_accuracy"] > b["margin_robust_accuracy"] + 20.0 and b["gap_ci"][0] > b["tolerance"]


@pytest.mark.parametrize("wrap", [Detached, OneHot], ids=["detached", "one_hot"])
def test_no_gradient_is_a_failed_check_and_a_clear_error(adv_mlp, test64, wrap, one_thread):
    """Detached or non-differentiable logits: the masking evaluator reports the failed check (nothing crashes,
    every other check skipped with the reason); the pgd and autoattack evaluators refuse with one line."""
    model = wrap(adv_mlp).eval()
    r = create_evaluator("masking", **{**FAST, "autoattack": True}).run(model, test64, EvalContext(**CTX))
    assert r.details["failed"] == ["gradient_reaches_input"] and r.metrics["failed_checks"] == 1
    assert "no gradient reaches the input" in checks_of(r)["gradient_reaches_input"]["problem"]
    assert {"pgd_close_to_autoattack", "ce_attack_not_weaker_than_margin_attack",
            "large_eps_near_zero"} <= set(r.details["skipped"])
    for name, settings in (("pgd", {"steps": 2}), ("pgd", {"steps": 2, "protocol": "paper"}), ("autoattack", {})):
        with pytest.raises(UserError, match=f"{name}: no gradient reaches the input") as err:
            create_evaluator(name, n_examples=8, **settings).run(model, test64, EvalContext(**CTX))
        assert "\n" not in str(err.value) and "masking" in str(err.value)


class ClassSorted(Dataset):
    """10 classes x 20 images, sorted by class (an ImageNet-val-like layout), with ``targets``."""

    def __init__(self, digits_test) -> None:
        x, y = digits_test.tensors
        order = torch.cat([torch.nonzero(y == c).flatten()[:20] for c in range(10)])
        self.x, self.targets = x[order], y[order].tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.x[i], self.targets[i]


def test_autoattack_n_takes_the_first_of_the_chosen_examples(mlp, digits_test, monkeypatch, one_thread):
    """On class-sorted data the chosen examples are spread over the classes; AutoAttack gets exactly
    ``autoattack_n`` of them (the first in the round-robin order: 2 per class), not those with index <
    autoattack_n (which would be 5 examples of class 0), and PGD is compared on the same ones."""
    data = ClassSorted(digits_test)
    seen: list[int] = []

    def fake_autoattack(model, batches, **kw):  # AutoAttack that does nothing: the clean predictions
        out = {"index": [], "y_true": [], "y_clean": [], "y_pred": [], "linf": []}
        for x, y, idx in batches:
            with torch.no_grad():
                pred = model(x).argmax(1)
            for k, v in zip(out, (idx, y, pred, pred, torch.zeros(len(y))), strict=False):
                out[k].append(v.numpy())
        seen.extend(np.concatenate(out["index"]).tolist())
        return {k: np.concatenate(v) for k, v in out.items()}

    monkeypatch.setattr(masking, "predict_autoattack", fake_autoattack)
    ev = create_evaluator("masking", eps=0.05, steps=1, eps_sweep=[0.05], steps_sweep=[1], n_examples=50,
                          autoattack_n=20, margin_attack=False)
    r = ev.run(mlp, data, EvalContext(**CTX))
    chosen = ev.example_indices(data)
    assert len(chosen) == 50 and len(seen) == 20 and set(seen) <= set(chosen)
    assert sorted(np.bincount([data.targets[i] for i in seen], minlength=10).tolist()) == [2] * 10
    checks = checks_of(r)
    assert checks["pgd_close_to_autoattack"]["n"] == checks["autoattack_not_weaker_than_pgd"]["n"] == 20
    assert checks["gradient_reaches_input"]["passed"]


def test_paired_difference_ci():
    """Newcombe's paired interval: the issue's case (a 12.5-point gap on 32 images, 4 changed outcomes) is
    consistent both with no masking and with masking at tolerance 10 (inconclusive); a 44-point gap is not;
    swapping the attacks negates the interval; no changed outcomes still give an interval of non-zero width."""
    a = np.array([True] * 20 + [False] * 12)
    b = a.copy()
    b[:4] = False
    gap, low, high = paired_difference_ci(a, b)
    assert gap == pytest.approx(12.5) and low < 0.0 < 10.0 < high  # McNemar: 4 of 4 one way, p = 0.125
    check = masking.gap_check("x", a, b, 10.0, 0.95)
    assert check["outcome"] == "inconclusive" and not check["passed"] and not check["conclusive"]
    assert check["changed_outcome"] == 4
    b[:14] = False
    assert masking.gap_check("x", a, b, 10.0, 0.95)["outcome"] == "failed"
    g2, l2, h2 = paired_difference_ci(b, a)
    g1, l1, h1 = paired_difference_ci(a, b)
    assert (g2, l2, h2) == pytest.approx((-g1, -h1, -l1))
    g0, l0, h0 = paired_difference_ci(a, a)
    assert g0 == 0.0 and l0 < 0.0 < h0
    assert np.isnan(paired_difference_ci(a[:0], a[:0])[0])


@pytest.mark.parametrize("both, a_only, b_only, neither, low, high", [
    (36, 12, 2, 0, 5.69, 34.04),
    (18, 12, 2, 18, 5.62, 32.90),
    (53, 0, 0, 1, -7.29, 7.29),
])
def test_paired_difference_ci_matches_newcombe_1998(both, a_only, b_only, neither, low, high):
    """The worked examples of Newcombe (1998, Stat. Med. 17:2635), method 10, 95 % (his e, f, g, h)."""
    a = np.repeat([True, True, False, False], [both, a_only, b_only, neither])
    b = np.repeat([True, False, True, False], [both, a_only, b_only, neither])
    gap, lo, hi = paired_difference_ci(a, b, 0.95)
    assert gap == pytest.approx(100.0 * (a_only - b_only) / len(a))
    assert (lo, hi) == pytest.approx((low, high), abs=0.006)


def test_paired_difference_ci_coverage():
    """Simulated paired outcomes with a known accuracy difference: the 95 % interval covers it in about 95 %
    of the draws (Newcombe's method is slightly conservative), and the one-sided 97.5 % lower bound exceeds
    the true gap in at most ~2.5 % + noise."""
    rng = np.random.default_rng(0)
    probs = [0.45, 0.15, 0.05, 0.35]  # both right, only A right, only B right, both wrong: true gap 10 points
    covered, above = 0, 0
    draws = 400
    for _ in range(draws):
        cell = rng.choice(4, size=60, p=probs)
        a, b = np.isin(cell, (0, 1)), np.isin(cell, (0, 2))
        _, low, high = paired_difference_ci(a, b)
        covered += low <= 10.0 <= high
        above += low > 10.0
    assert covered / draws >= 0.92
    assert above / draws <= 0.05


def test_k_way_attack_weaker_than_full_head_is_flagged(mlp, test64, one_thread):
    """A K+M model whose K-way loss saturates hides the gradient from the default attack but not from the
    loss over all K+M logits: the check reports both and fails; a normal K+M model passes it."""
    settings = dict(eps=0.1, steps=10, eps_sweep=[0.1, 0.5], steps_sweep=[10], autoattack=False, n_examples=64,
                    margin_attack=False)
    saturated = create_evaluator("masking", **settings).run(SaturatedKWay(mlp).eval(), test64, EvalContext(**CTX))
    check = checks_of(saturated)["k_way_attack_not_weaker_than_full_head"]
    assert not check["passed"] and check["num_ops"] == 1
    assert check["k_way_robust_accuracy"] > check["full_head_robust_accuracy"] + 20.0
    assert "pgd_close_to_autoattack" in saturated.details["skipped"]

    normal = create_evaluator("masking", **settings).run(trained_resnet8_digits(), test64, EvalContext(**CTX))
    assert checks_of(normal)["k_way_attack_not_weaker_than_full_head"]["passed"]


def test_masking_cache_resume(mlp, test64, tmp_path, monkeypatch, one_thread):
    settings = dict(eps=0.1, steps=5, eps_sweep=[0.1, 0.5], steps_sweep=[2, 5], autoattack=False, n_examples=16)
    ctx = EvalContext(**CTX, out_dir=tmp_path)
    first = create_evaluator("masking", **settings).run(mlp, test64, ctx)
    # PGD (0.1, 5), (0.5, 5), (0.1, 2); the input gradients; margin PGD (0.1, 5)
    assert len(list((tmp_path / "masking").glob("*.npz"))) == 5

    def boom(*a, **k):
        raise AssertionError("cached splits must not be recomputed")

    monkeypatch.setattr(MaskingChecks, "predict", boom)
    assert create_evaluator("masking", **settings).run(mlp, test64, ctx).to_dict() == first.to_dict()


def test_max_rise():
    assert max_rise([50.0, 40.0, 10.0, 0.0]) == 0.0
    assert max_rise([50.0, 40.0, 45.0, 0.0]) == 5.0
    assert max_rise([10.0, 30.0, 0.0, 25.0]) == 25.0
    assert max_rise([]) == 0.0


@pytest.mark.parametrize("settings, match", [
    ({"eps_sweep": []}, "eps_sweep"),
    ({"eps_sweep": [0.1, 2.0]}, "eps_sweep"),
    ({"eps_sweep": "0.1"}, "eps_sweep"),
    ({"steps_sweep": [10, 0]}, "steps_sweep"),
    ({"tolerance": -1}, "tolerance"),
    ({"zero_threshold": "x"}, "zero_threshold"),
    ({"autoattack_n": 0}, "autoattack_n"),
    ({"confidence": 1.0}, "confidence"),
    ({"confidence": "high"}, "confidence"),
    ({"eps": 0}, "eps"),
])
def test_masking_bad_settings(settings, match):
    with pytest.raises(UserError, match=match):
        create_evaluator("masking", **settings)


def test_large_eps_check_skipped_without_large_eps(mlp, test64, one_thread):
    r = create_evaluator("masking", eps=0.05, steps=2, eps_sweep=[0.05, 0.1], steps_sweep=[2],
                         autoattack=False, n_examples=8).run(mlp, test64, EvalContext(**CTX))
    assert "large_eps_near_zero" in r.details["skipped"]
    assert set(checks_of(r)) == {"eps_sweep_monotone", "steps_sweep_monotone"} | NEW_CHECKS


def test_margin_attack_per_point_results_do_not_depend_on_batch_size(adv_mlp, test64, one_thread):
    """The margin attack's random starts are drawn per example (as the PGD evaluator's): the same points in
    batches of 8 and of 64 give identical per-point results, starts included."""
    x, y = test64.tensors
    idx = torch.arange(len(y)) + 1000  # dataset indices, not positions in the batch

    def run(batch_size):
        batches = [(x[i:i + batch_size], y[i:i + batch_size], idx[i:i + batch_size])
                   for i in range(0, len(y), batch_size)]
        return masking.predict_margin(adv_mlp, iter(batches), eps=0.1, steps=3, seed=7)

    small, large = run(8), run(64)
    assert set(small) == {"index", "y_true", "y_clean", "y_pred"}
    for key in small:
        np.testing.assert_array_equal(small[key], large[key])
    assert (large["y_pred"] != large["y_clean"]).any()  # the attack moved some points: the test can see starts


def _planted(n: int, both: float, a_only: float, b_only: float) -> tuple[np.ndarray, np.ndarray]:
    """Paired outcomes of two attacks on n examples with the given shares of the 2x2 table (A and B right, only
    A right, only B right; the rest: neither): a planted accuracy gap of 100 * (a_only - b_only) points."""
    counts = np.round(np.array([both, a_only, b_only]) * n).astype(int)
    counts = np.append(counts, n - counts.sum())
    a = np.repeat([True, True, False, False], counts)
    b = np.repeat([True, False, True, False], counts)
    return a, b


@pytest.mark.parametrize("gap_share, small, large", [
    (0.125, "inconclusive", "failed"),   # 12.5 points > tolerance 10: masked, told only at large n
    (0.03, "inconclusive", "passed"),    # 3.1 points < 10: not masked, told only at large n
])
def test_a_gap_check_has_three_outcomes_at_small_and_large_n(gap_share, small, large):
    """The issue's case at n = 32 (12.5-point gap, CI about [-0.3, 24.4] against tolerance 10) is inconclusive,
    not passed; with the same shares at n = 3 200 the CI leaves the tolerance. An inconclusive check gives the n
    that decides it: at that n (same shares) the check is decided, at half of it not."""
    shares = dict(both=12 / 32, a_only=gap_share, b_only=0.0) if gap_share > 0.1 else \
        dict(both=13 / 32, a_only=2 / 32, b_only=1 / 32)  # shares exact at n = 32: a 3.1-point gap
    a, b = _planted(32, **shares)
    check = masking.gap_check("pgd_close_to_autoattack", a, b, 10.0, 0.95)
    assert check["outcome"] == small and not check["passed"] and check["n"] == 32
    if gap_share > 0.1:
        assert check["gap"] == pytest.approx(12.5)
        assert check["gap_ci"] == pytest.approx([-0.3, 24.4], abs=0.05)
    n_decide = check["n_to_decide"]
    assert isinstance(n_decide, int) and n_decide > 32
    decided = masking.gap_check("x", *_planted(n_decide, **shares), 10.0, 0.95)
    assert decided["outcome"] == large and decided["n_to_decide"] is None
    assert masking.gap_check("x", *_planted(n_decide // 2, **shares), 10.0, 0.95)["outcome"] == small
    big = masking.gap_check("x", *_planted(3200, **shares), 10.0, 0.95)
    assert big["outcome"] == large and big["passed"] is (large == "passed") and big["conclusive"]


def test_masking_headline_names_inconclusive_checks_apart_from_failed():
    from robustbench_labelaug.results.outcomes import Outcome, outcome_of

    a, b = _planted(32, 12 / 32, 0.125, 0.0)
    checks = [{"name": "eps_sweep_monotone", "passed": True},
              masking.gap_check("pgd_close_to_autoattack", a, b, 10.0, 0.95),
              {"name": "large_eps_near_zero", "passed": False}]
    heads = {h.key: h.value for h in MaskingChecks.headline({"details": {"checks": checks}})}
    n = checks[1]["n_to_decide"]
    assert heads["masking"] == (f"1/3 passed (failed: large_eps_near_zero; inconclusive: pgd_close_to_autoattack, "
                                f"n ≈ {n} decides)")
    assert heads["masking_passed"] == 1 and heads["masking_failed"] == 1
    assert heads["masking_failed_checks"] == ["large_eps_near_zero"]
    # a result written before outcomes existed: passed with conclusive false reads as inconclusive
    assert outcome_of({"name": "x", "passed": True, "conclusive": False}) is Outcome.INCONCLUSIVE
    assert outcome_of({"name": "x", "passed": True}) is Outcome.PASSED
