"""rbla compare / compare(a, b): paired statistics checked against scipy on fixed data, refusals, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from robustbench_labelaug import UserError
from robustbench_labelaug.compare import stats
from robustbench_labelaug.compare.core import compare
from tests.conftest import run_cli_inprocess

RNG = np.random.default_rng(20261204)
K = 5
Y = np.repeat(np.arange(K), 24)                       # 24 examples per class
A_WRONG = RNG.random(Y.size) < np.where(Y == 4, 0.9, 0.4)   # A: class 4 is its worst
B_WRONG = A_WRONG & (RNG.random(Y.size) < 0.35)             # B: fixes most of A's mistakes, adds none


# -- statistics against scipy -------------------------------------------------------------------------------------


@pytest.mark.parametrize("a_only,b_only", [(0, 0), (3, 0), (7, 2), (11, 9), (1, 25)])
def test_mcnemar_exact_equals_scipy_binomtest(a_only, b_only):
    both = 4
    a = np.array([1] * a_only + [0] * b_only + [1] * both + [0] * 5, dtype=bool)
    b = np.array([0] * a_only + [1] * b_only + [1] * both + [0] * 5, dtype=bool)
    t = stats.mcnemar_exact(a, b)
    assert (t["a_only"], t["b_only"]) == (a_only, b_only)
    expected = 1.0 if a_only + b_only == 0 else sps.binomtest(b_only, a_only + b_only, 0.5).pvalue
    assert t["p"] == pytest.approx(expected, rel=1e-12)


def test_holm_by_hand():
    p = [0.01, 0.04, 0.03, np.nan, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4): 0.02, 0.03, 0.06, max(0.04, 0.06) = 0.06
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, 0.06, np.nan, 0.02])
    assert stats.holm([0.5, 0.9]).tolist() == [1.0, 1.0]


def test_one_class_bootstrap_equals_scipy_paired_bootstrap():
    y = np.zeros(60, dtype=np.int64)
    a, b = A_WRONG[:60], B_WRONG[:60]
    ours = stats.paired_bootstrap(y, a, b, 1, n_boot=999, seed=3)
    ref = sps.bootstrap((a.astype(float), b.astype(float)),
                        lambda x, z, axis=-1: 100 * (z.mean(axis) - x.mean(axis)), paired=True, vectorized=True,
                        n_resamples=999, rng=np.random.default_rng(3), method="percentile")
    np.testing.assert_allclose(ours["diff_ci"][0], [ref.confidence_interval.low, ref.confidence_interval.high])


def _reference_stratified(y, a, b, n_boot, seed):
    """scipy's bootstrap on per-class 2 x n samples (rows A, B; columns resampled together: paired) with the
    statistic written out: per-class differences, then mean / SD / worst differences."""
    samples = tuple(np.stack([a[y == c], b[y == c]]).astype(float) for c in range(K))

    def statistic(*s, axis=-1):
        ea = np.stack([100 * x[0].mean(-1) for x in s], -1)
        eb = np.stack([100 * x[1].mean(-1) for x in s], -1)
        return np.concatenate([np.moveaxis(eb - ea, -1, 0),
                               np.stack([eb.mean(-1) - ea.mean(-1), eb.std(-1) - ea.std(-1),
                                         eb.max(-1) - ea.max(-1)])])

    return sps.bootstrap(samples, statistic, n_resamples=n_boot, vectorized=True, paired=False, axis=-1,
                         rng=np.random.default_rng(seed), method="percentile")


def test_stratified_paired_bootstrap_equals_scipy_reference():
    ours = stats.paired_bootstrap(Y, A_WRONG, B_WRONG, K, n_boot=1500, seed=7)
    ref = _reference_stratified(Y, A_WRONG, B_WRONG, 1500, 7)
    low, high = ref.confidence_interval.low, ref.confidence_interval.high
    np.testing.assert_allclose([c for ci in ours["diff_ci"] for c in ci], np.ravel(np.c_[low[:K], high[:K]]))
    for j, name in enumerate(stats.SUMMARIES):
        np.testing.assert_allclose(ours["summary"][name]["ci"], [low[K + j], high[K + j]])
    # point estimates by hand
    ea = [100 * A_WRONG[Y == c].mean() for c in range(K)]
    eb = [100 * B_WRONG[Y == c].mean() for c in range(K)]
    assert ours["summary"]["worst"]["diff"] == pytest.approx(max(eb) - max(ea))
    assert ours["summary"]["sd"]["diff"] == pytest.approx(np.std(eb) - np.std(ea))


def test_seed_spread_matches_welch():
    a, b = [41.0, 43.5, 40.2, 42.0], [38.1, 39.9, 37.0]
    s = stats.seed_spread(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    np.testing.assert_allclose(s["ci"], [ref.low, ref.high])
    assert s["a"]["sd"] == pytest.approx(np.std(a, ddof=1))


# -- evaluation folders --------------------------------------------------------------------------------------------


def write_evaluation(root: Path, name: str, wrong: np.ndarray, *, index=None, steps: int = 40,
                     y=Y) -> Path:
    """An evaluation folder in the documented per-example format (one pgd result)."""
    folder = root / name
    index = np.arange(len(y)) if index is None else np.asarray(index)
    y_pred = np.where(wrong, (y + 1) % K, y)
    (folder / "cache" / "pgd" / "pgd").mkdir(parents=True)
    np.savez(folder / "cache" / "pgd" / "pgd" / "all.npz", __fingerprint__=np.array("x"), index=index, y_true=y,
             y_pred=y_pred, y_clean=y, broken=wrong)
    dataset = {"name": "digits", "split": "test"}
    (folder / "cache" / "pgd" / "fingerprint.json").write_text(json.dumps(
        {"fingerprint": "x", "evaluator": "pgd", "settings": {"steps": steps}, "dataset": dataset}))
    result = {"evaluator": "pgd", "protocol": "sound", "settings": {"protocol": "sound", "steps": steps, "eps": 0.2},
              "metrics": {"robust_error": 100 * wrong.mean()}, "num_examples": len(y),
              "classwise": {"pgd": {"error": [100 * wrong[y == c].mean() for c in range(K)]}}}
    (folder / "results").mkdir()
    (folder / "results" / "pgd.json").write_text(json.dumps({"fingerprint": "x", "id": "pgd", "result": result}))
    (folder / "model.json").write_text(json.dumps({"model": name, "meta": {}}))
    return folder


def test_compare_gives_paired_differences_and_a_verdict(tmp_path):
    a = write_evaluation(tmp_path, "model_a", A_WRONG)
    b = write_evaluation(tmp_path, "model_b", B_WRONG)
    result = compare(a, b, n_boot=1000)
    e = result.evaluators["pgd"]
    assert e.label == "PGD-40 (sound)"
    assert e.worst_class("a") == "4"
    verdict = result.verdicts["pgd"]
    assert verdict.startswith("model_b's worst-class PGD-40 (sound) error") and "lower than" in verdict
    assert verdict.endswith(": significant")
    frame = e.to_frame()
    assert list(frame["n"]) == [24] * K
    assert (frame["b_only"] == 0).all()                      # B adds no mistake
    assert frame.loc[4, "p_holm"] < 0.05 and frame.loc[4, "significant"]
    md = result.markdown()
    assert "| class mean error |" in md and "McNemar p" in md
    assert result.plot(tmp_path / "diff.png").stat().st_size > 1000


def test_compare_refuses_other_examples_and_other_settings(tmp_path):
    a = write_evaluation(tmp_path, "a", A_WRONG)
    b = write_evaluation(tmp_path, "b", B_WRONG, index=np.arange(len(Y)) + 1)
    with pytest.raises(UserError, match="different examples"):
        compare(a, b)
    c = write_evaluation(tmp_path, "c", B_WRONG, steps=10)
    with pytest.raises(UserError, match=r"different settings \(steps: 40 vs 10\)"):
        compare(a, c)


def test_compare_seeds_and_cli(tmp_path):
    a = [write_evaluation(tmp_path, f"a{s}", A_WRONG ^ (RNG.random(Y.size) < 0.05)) for s in range(3)]
    b = [write_evaluation(tmp_path, f"b{s}", B_WRONG ^ (RNG.random(Y.size) < 0.05)) for s in range(3)]
    r = run_cli_inprocess("compare", ",".join(map(str, a)), ",".join(map(str, b)), "--n-boot", "500",
                          "--plot", str(tmp_path / "p.png"), "--markdown", str(tmp_path / "c.md"))
    assert r.returncode == 0, r.stderr
    assert "Across seeds (3 for a0, 3 for b0)" in r.stdout
    assert "worst-class PGD-40 (sound) error" in r.stdout
    assert (tmp_path / "p.png").is_file() and (tmp_path / "c.md").read_text().startswith("# b0 vs a0")
    bad = run_cli_inprocess("compare", str(a[0]), str(tmp_path / "nowhere"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "not an evaluation" in bad.stderr
