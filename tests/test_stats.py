"""The study statistics (robustbench_labelaug.stats): the two-level bootstrap's coverage of a planted effect, the
power formula against a Monte-Carlo simulation, the model-based check, Holm, the equivalence bound and matched
robustness, each on hand-worked or synthetic data with a known truth."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_labelaug import UserError
from robustbench_labelaug.stats import (
    VarianceComponents,
    arm_outcomes,
    bootstrap_draws,
    endpoint_verdicts,
    equivalence_bound,
    hierarchical_bootstrap,
    interpolate_at,
    interval,
    matched_robustness,
    matched_value,
    outcome_table,
    power,
    seeds_for_power,
    variance_components,
)
from robustbench_labelaug.stats.paired import paired_bootstrap
from robustbench_labelaug.stats.simulate import simulate_arms, to_table, true_class_errors

LOGITS = np.linspace(-2.0, 0.5, 5)  # five classes from easy (12 % error) to hard (62 %)


def _truth(effect: float, seed_sd: float, example_sd: float) -> float:
    """The population class-mean error difference (pp) of a logit effect."""
    kw = {"class_logits": LOGITS, "seed_sd": seed_sd, "example_sd": example_sd}
    return float(true_class_errors(effect, **kw).mean() - true_class_errors(0.0, **kw).mean())


def test_tiny_table_by_hand():
    """Two seeds of one arm, four examples of two classes: per-seed class errors by hand, the per_model and
    pooled estimands."""
    table = outcome_table("adv", [0, 0, 0, 0, 1, 1, 1, 1], [10, 11, 12, 13] * 2, [0, 0, 1, 1] * 2,
                          [1, 0, 0, 0, 1, 0, 1, 1])
    arm = arm_outcomes(table, "adv")
    assert arm.wrong.tolist() == [[False, True, True, True], [False, True, False, False]]
    # seed 0: class errors (50, 100): mean 75, SD 25, worst 100; seed 1: (50, 0): mean 25, SD 25, worst 50
    d = bootstrap_draws(table, ["adv"], n_boot=10)
    assert d.point["adv"].tolist() == [50.0, 25.0, 75.0]
    pooled = bootstrap_draws(table, ["adv"], n_boot=10, estimand="pooled")  # class errors (50, 50)
    assert pooled.point["adv"].tolist() == [50.0, 0.0, 50.0]
    one = outcome_table("adv", 0, [1, 2, 3], [0, 1, 1], [1, 1, 0])
    assert bootstrap_draws(one, n_boot=5, estimand="pooled").point["adv"].tolist() == [25.0, 25.0, 50.0]


@pytest.mark.parametrize("bad, match", [
    (dict(index=[1, 1], seed=0), "two rows for arm"),
    (dict(index=[1, 2], seed=[0, 1], y=[0, 1], correct=[1, 1], arm=["a", "a"], extra=True), "other examples"),
])
def test_outcome_table_refuses_bad_rows(bad, match):
    with pytest.raises(UserError, match=match) as info:
        kw = {"arm": "a", "seed": 0, "y": [0, 0], "correct": [1, 0]}
        kw.update({k: v for k, v in bad.items() if k != "extra"})
        table = outcome_table(kw["arm"], kw["seed"], kw["index"], kw["y"], kw["correct"])
        arm_outcomes(table, "a")
    assert len(str(info.value).splitlines()) == 1


def test_arms_must_share_their_examples():
    a = outcome_table("a", 0, [1, 2], [0, 1], [1, 0])
    b = outcome_table("b", 0, [1, 3], [0, 1], [1, 0])
    import pandas as pd

    with pytest.raises(UserError, match="different test examples"):
        bootstrap_draws(pd.concat([a, b]), ["a", "b"])
    with pytest.raises(UserError, match="two classes"):
        from robustbench_labelaug.stats import concat_tables

        concat_tables([a, outcome_table("b", 0, [1, 2], [1, 1], [1, 0])])


def test_one_seed_matches_the_paired_stratified_bootstrap_of_compare():
    """Two doors to one thing: with one seed per arm the two-level bootstrap is the paired stratified bootstrap
    over examples that ``rbla compare`` runs (scipy.stats.bootstrap): same point estimates, intervals equal up to
    Monte-Carlo error."""
    arms = simulate_arms(1, arms={"a": 0.0, "b": -0.5}, n_seeds=1, n_per_class=40, class_logits=LOGITS,
                         seed_sd=0.0, example_sd=1.0)
    ours = hierarchical_bootstrap(arms, "a", "b", n_boot=4000, seed=3)
    ref = paired_bootstrap(arms["a"].y, arms["a"].wrong[0], arms["b"].wrong[0], 5, n_boot=4000, seed=3)
    for name in ("mean", "sd", "worst"):
        assert ours[name]["diff"] == pytest.approx(ref["summary"][name]["diff"], abs=1e-9)
        assert ours[name]["ci"] == pytest.approx(ref["summary"][name]["ci"], abs=1.0)  # pp, MC error of 4000 draws
    assert ours["notes"] and "one seed" in ours["notes"][0]


def test_draws_are_deterministic_and_an_arms_draws_do_not_depend_on_the_others():
    arms = simulate_arms(2, arms={"a": 0.0, "b": -0.3, "c": 0.2}, n_seeds=3, n_per_class=10, class_logits=LOGITS,
                         seed_sd=0.3, example_sd=0.5)
    two = bootstrap_draws(arms, ["a", "b"], n_boot=50, seed=4)
    three = bootstrap_draws(arms, ["c", "a", "b"], n_boot=50, seed=4)
    again = bootstrap_draws(to_table(arms), ["a", "b"], n_boot=50, seed=4)  # the table door: same numbers
    for arm in ("a", "b"):
        assert np.array_equal(two.draws[arm], three.draws[arm])
        assert np.allclose(two.draws[arm], again.draws[arm])
    assert not np.array_equal(two.draws["a"], bootstrap_draws(arms, ["a", "b"], n_boot=50, seed=5).draws["a"])


def test_pooled_interval_covers_a_planted_effect():
    """100 synthetic studies (5 classes x 30 examples, 5 seeds per arm, seed SD 0.4 and example SD 0.8 on the
    logit scale, a planted logit effect of -0.4): the 95 % interval of the class-mean error difference covers the
    population difference in at least 90 of them."""
    seed_sd, example_sd, effect = 0.4, 0.8, -0.4
    truth = _truth(effect, seed_sd, example_sd)
    covered = 0
    for rep in range(100):
        arms = simulate_arms(100 + rep, arms={"adv": 0.0, "adv_plus": effect}, n_seeds=5, n_per_class=30,
                             class_logits=LOGITS, seed_sd=seed_sd, example_sd=example_sd)
        low, high = hierarchical_bootstrap(arms, "adv", "adv_plus", n_boot=200, seed=rep)["mean"]["ci"]
        covered += low <= truth <= high
    assert covered >= 90, covered


@pytest.mark.slow
def test_power_formula_matches_a_simulation():
    """The power of the bootstrap test against a planted effect, predicted from the variance components (measured
    on 30 of the synthetic studies, averaged), is within 0.08 of the share of 200 synthetic studies in which the
    bootstrap interval excludes 0 (two settings: small and large power)."""
    for effect, n_seeds in ((-0.3, 4), (-0.6, 6)):
        truth = _truth(effect, 0.3, 0.8)
        rejected, comps = 0, []
        for rep in range(200):
            arms = simulate_arms(9000 + rep, arms={"a": 0.0, "b": effect}, n_seeds=n_seeds, n_per_class=30,
                                 class_logits=LOGITS, seed_sd=0.3, example_sd=0.8)
            low, high = hierarchical_bootstrap(arms, "a", "b", n_boot=200, seed=rep)["mean"]["ci"]
            rejected += not low <= 0 <= high
            if rep < 30:
                c = variance_components(arms, "a", "b", statistic="mean", n_boot=200, seed=rep)
                comps.append([c.seed_var_a, c.seed_var_b, c.example_shared, c.example_interaction])
        predicted = power(truth, VarianceComponents("mean", *np.mean(comps, axis=0)), n_seeds)
        assert abs(predicted - rejected / 200) <= 0.08, (effect, predicted, rejected / 200)


def test_power_by_hand_and_seeds_needed():
    """SE^2 = (4 + 4) / S + 0.25 + 2 x 1 / S; effect 2 at S = 8: SE = sqrt(1.5), z = 1.96."""
    from scipy.stats import norm

    comps = VarianceComponents("sd", 4.0, 4.0, 0.25, 1.0)
    se = np.sqrt(10 / 8 + 0.25)
    assert power(2.0, comps, 8) == pytest.approx(norm.cdf(2 / se - 1.959964) + norm.cdf(-2 / se - 1.959964))
    n = seeds_for_power(2.0, comps)
    assert power(2.0, comps, n) >= 0.8 > power(2.0, comps, n - 1)
    # the test set's own variance alone (0.25: SE >= 0.5) caps the power for a small effect
    assert seeds_for_power(0.5, comps) is None
    assert VarianceComponents.from_sds(2.0, example_sd=0.5).se(8) == pytest.approx(np.sqrt(8 / 8 + 0.25))
    with pytest.raises(UserError, match="alpha"):
        power(1.0, comps, 3, alpha=1.5)


def test_variance_components_recover_the_seed_variance():
    """Seeds' variance of the mean error measured on a large test set ~ the spread of the seeds' planted logit
    offsets (seed SD 0.5 at error ~35 %: about 100 x 0.5 x 0.23 = 11 pp)."""
    arms = simulate_arms(5, arms={"a": 0.0, "b": 0.0}, n_seeds=40, n_per_class=200, class_logits=LOGITS,
                         seed_sd=0.5, example_sd=0.3)
    c = variance_components(arms, "a", "b", statistic="mean", n_boot=200)
    assert 7.0 < np.sqrt(c.seed_var_a) < 15.0 and 7.0 < np.sqrt(c.seed_var_b) < 15.0
    assert c.example_interaction > 0 and c.measured_seeds == (40, 40)
    pilot = variance_components(arms, "a", statistic="mean", n_boot=200)  # one arm: B assumed like A
    assert pilot.seed_var_b == pilot.seed_var_a and pilot.notes


@pytest.mark.slow
def test_bootstrap_agrees_with_the_logistic_models_on_a_planted_effect():
    """One synthetic study with a planted effect: the bootstrap's interval of the class-mean error difference and
    the GEE logistic model's both cover the population difference, their estimates agree within a fifth of the
    bootstrap interval's width and their widths within a factor 1.6; the crossed mixed-effects logistic model's
    estimate agrees too, and recovers the planted variance components' order."""
    from robustbench_labelaug.stats.mixed import gee_difference, mixed_glm_difference

    effect, seed_sd, example_sd = -0.8, 0.3, 1.0
    truth = _truth(effect, seed_sd, example_sd)
    arms = simulate_arms(11, arms={"a": 0.0, "b": effect}, n_seeds=4, n_per_class=16, class_logits=LOGITS,
                         seed_sd=seed_sd, example_sd=example_sd)
    boot = hierarchical_bootstrap(arms, "a", "b", n_boot=2000)["mean"]
    gee = gee_difference(arms, "a", "b")
    width = boot["ci"][1] - boot["ci"][0]
    assert boot["ci"][0] <= truth <= boot["ci"][1] and gee["ci"][0] <= truth <= gee["ci"][1]
    assert abs(boot["diff"] - gee["diff"]) < width / 5
    assert 1 / 1.6 < (gee["ci"][1] - gee["ci"][0]) / width < 1.6
    vb = mixed_glm_difference(arms, "a", "b")
    assert abs(vb["diff"] - boot["diff"]) < width / 5
    assert vb["example_sd"] > vb["seed_sd"]


def test_interval_methods_and_their_p_values():
    rng = np.random.default_rng(0)
    reps = rng.normal(1.0, 1.0, 4000)
    for method in ("percentile", "basic", "bc"):
        ci, p = interval(1.0, reps, 0.95, method)
        assert ci[0] == pytest.approx(1 - 1.96, abs=0.15) and ci[1] == pytest.approx(1 + 1.96, abs=0.15)
        assert p == pytest.approx(2 * 0.1587, abs=0.03)  # P(N(1, 1) <= 0) = 0.1587, two-sided
        ci, p = interval(3.0, reps + 2.0, 0.95, method)  # excludes 0: p below 0.05
        assert ci[0] > 0 and p < 0.05
    # bc: replicates centred above the estimate (a statistic pushed up by resampling) move the interval down
    (lo_bc, hi_bc), _ = interval(0.0, rng.normal(0.5, 1.0, 4000), 0.95, "bc")
    assert lo_bc == pytest.approx(-0.5 - 1.96, abs=0.2) and hi_bc == pytest.approx(-0.5 + 1.96, abs=0.2)
    assert interval(float("nan"), reps) == (None, None)


def test_holm_over_pre_specified_endpoints_by_hand():
    """p = (0.01, 0.04, 0.03): Holm multiplies the sorted p by 3, 2, 1 and keeps them monotone: 0.03, 0.06,
    0.06; the non-significant endpoints get their equivalence bound."""
    endpoints = {"worst": {"diff": -4.0, "ci": [-7.0, -1.0], "p": 0.01},
                 "sd": {"diff": -1.0, "ci": [-2.5, 0.4], "p": 0.04},
                 "mean": {"diff": 1.0, "ci": [0.1, 1.9], "p": 0.03}}
    v = endpoint_verdicts(endpoints, directions={"sd": "decrease"})
    assert [v[k]["p_holm"] for k in endpoints] == pytest.approx([0.03, 0.06, 0.06])
    assert [v[k]["significant"] for k in endpoints] == [True, False, False]
    assert v["worst"]["equivalence_bound"] is None
    assert v["sd"]["equivalence_bound"] == 2.5  # the largest decrease not excluded
    assert v["mean"]["equivalence_bound"] == 1.9 and v["mean"]["ci_includes_zero"] is False


def test_equivalence_bound_by_hand():
    assert equivalence_bound([-0.8, 0.3]) == 0.8
    assert equivalence_bound([-0.8, 0.3], "decrease") == 0.8
    assert equivalence_bound([-0.8, 0.3], "increase") == 0.3
    assert equivalence_bound([0.2, 0.9], "decrease") == 0.0
    assert equivalence_bound(None) is None
    with pytest.raises(UserError, match="direction"):
        equivalence_bound([-1, 1], "sideways")


def test_matched_robustness_interpolates_and_refuses_to_extrapolate():
    # sweep (mean, worst): (40, 70), (45, 66), (50, 60); target 47.5 lies between the 2nd and 3rd: 63
    assert interpolate_at([40, 45, 50], [70, 66, 60], 47.5) == pytest.approx(63.0)
    assert interpolate_at([50, 40, 45], [60, 70, 66], 42.0) == pytest.approx(68.4)  # any knob order
    with pytest.raises(UserError, match="outside the sweep's range") as info:
        interpolate_at([40, 45, 50], [70, 66, 60], 52.0)
    assert len(str(info.value).splitlines()) == 1
    # replicates: the sweep shifted by noise; the interval holds the point value
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.5, (500, 1))
    res = matched_value([40, 45, 50], [70, 66, 60], 47.5, x_draws=np.array([40, 45, 50]) + noise,
                        y_draws=np.array([70.0, 66, 60]) + rng.normal(0, 0.5, (500, 3)),
                        target_draws=47.5 + rng.normal(0, 0.3, 500), reference=68.0,
                        reference_draws=68.0 + rng.normal(0, 0.5, 500))
    assert res["value"] == pytest.approx(63.0) and res["ci"][0] < 63.0 < res["ci"][1]
    assert res["diff"] == pytest.approx(-5.0) and res["diff_ci"][1] < 0 and res["p"] < 0.01
    # a target near the sweep's end: most replicates fall outside it, so no interval
    edge = matched_value([40, 45, 50], [70, 66, 60], 49.9, x_draws=np.array([40, 45, 50]) + noise,
                         y_draws=np.tile([70.0, 66, 60], (500, 1)), target_draws=49.9 + rng.normal(0, 1, 500))
    assert edge["ci"] is None and edge["out_of_range"] > 0.025 and "extend the knob sweep" in edge["notes"][0]


def test_matched_robustness_from_the_bootstrap_draws():
    """A TRADES-like sweep whose knob lowers the error of every class (a logit effect): at Adv's mean error the
    sweep's worst class is Adv's worst class (they are the same model family), so the matched difference's
    interval covers 0; an arm worse at the hardest class (a class-specific effect) is matched above it."""
    effects = {"adv": 0.0, "k1": 0.4, "k2": 0.1, "k3": -0.3, "k4": -0.7}
    arms = simulate_arms(21, arms=effects, n_seeds=3, n_per_class=60, class_logits=LOGITS, seed_sd=0.1,
                         example_sd=0.3)
    draws = bootstrap_draws(arms, n_boot=400)
    res = matched_robustness(draws, ["k1", "k2", "k3", "k4"], "adv")
    assert res["ci"] is not None and res["diff_ci"][0] <= 0 <= res["diff_ci"][1]
    assert res["target"] == pytest.approx(draws.point["adv"][0])
    with pytest.raises(UserError, match="outside the sweep's range"):
        matched_robustness(draws, ["k3", "k4"], "adv")


def test_table_from_predictions_power_report_and_arm_summary():
    """The doors a study uses: rows from an evaluator's per-example arrays, the power report at the paper's
    relative effect (effect = -0.0279 x arm A's class SD), one arm's intervals."""
    from robustbench_labelaug.stats import arm_summary, concat_tables, outcomes_from_predictions, power_report
    from robustbench_labelaug.stats.bootstrap import per_seed_statistics

    arms = simulate_arms(8, arms={"adv": 0.0, "adv_plus": -0.2}, n_seeds=3, n_per_class=20, class_logits=LOGITS,
                         seed_sd=0.3, example_sd=0.5)
    rows = []
    for name, a in arms.items():
        for s in range(3):
            y_pred = np.where(a.wrong[s], (a.y + 1) % 5, a.y)
            rows.append(outcomes_from_predictions(name, s, {"index": a.index, "y_true": a.y, "y_pred": y_pred}))
    table = concat_tables(rows)
    assert np.array_equal(arm_outcomes(table, "adv").wrong, arms["adv"].wrong)
    report = power_report(table, "adv", "adv_plus", statistic="sd", relative_effect=-0.0279, n_boot=100)
    baseline = per_seed_statistics(arms["adv"], 5)[:, 1].mean()
    assert report["effect"] == pytest.approx(-0.0279 * baseline) and report["n_seeds"] == [3, 3]
    assert 0 < report["power"] < 1 and (report["seeds_for_power"] is None or report["seeds_for_power"] > 3)
    summary = arm_summary(bootstrap_draws(table, ["adv"], n_boot=200), "adv")
    assert summary["mean"]["ci"][0] < summary["mean"]["estimate"] < summary["mean"]["ci"][1]
