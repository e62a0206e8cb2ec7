"""rbla compare / compare(a, b): paired statistics checked against scipy on fixed data, refusals, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from robustbench_labelaug import UserError
from robustbench_labelaug.compare.core import compare
from robustbench_labelaug.stats import paired as stats
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


DIGITS = {"name": "digits", "split": "test"}


def write_evaluation(root: Path, name: str, wrong: np.ndarray, *, index=None, steps: int = 40,
                     y=Y, rid: str = "pgd", dataset=DIGITS, data_fingerprint="absent", extra=None) -> Path:
    """An evaluation folder in the documented per-example format (one pgd result, id ``rid``; ``extra``: more
    results ``{id: (evaluator, settings)}`` with the same predictions)."""
    folder = root / name
    index = np.arange(len(y)) if index is None else np.asarray(index)
    y_pred = np.where(wrong, (y + 1) % K, y)
    k = int(y.max()) + 1
    results = {rid: ("pgd", {"protocol": "sound", "steps": steps, "eps": 0.2, "seed": 0}), **(extra or {})}
    for result_id, (evaluator, settings) in results.items():
        (folder / "cache" / result_id / evaluator).mkdir(parents=True)
        np.savez(folder / "cache" / result_id / evaluator / "all.npz", __fingerprint__=np.array("x"), index=index,
                 y_true=y, y_pred=y_pred, y_clean=y, broken=wrong)
        (folder / "cache" / result_id / "fingerprint.json").write_text(json.dumps(
            {"fingerprint": "x", "evaluator": evaluator, "settings": settings, "dataset": dataset}))
        result = {"evaluator": evaluator, "protocol": "sound", "settings": settings,
                  "metrics": {"robust_error": 100 * wrong.mean()}, "num_examples": len(y),
                  "classwise": {evaluator: {"error": [100 * wrong[y == c].mean() for c in range(k)]}}}
        (folder / "results").mkdir(exist_ok=True)
        stored = {"fingerprint": "x", "id": result_id, "result": result}
        if data_fingerprint != "absent":
            stored["data_fingerprint"] = data_fingerprint
        (folder / "results" / f"{result_id}.json").write_text(json.dumps(stored))
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
    assert "Pooled over 3 seed(s) of a0 and 3 of b0" in r.stdout and "Across seeds" in r.stdout
    assert "worst-class PGD-40 (sound) error" in r.stdout
    assert (tmp_path / "p.png").is_file() and (tmp_path / "c.md").read_text().startswith("# b0 vs a0")
    bad = run_cli_inprocess("compare", str(a[0]), str(tmp_path / "nowhere"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "not an evaluation" in bad.stderr


def test_compare_pools_seeds_in_the_two_level_bootstrap_and_refuses_a_seed_of_other_data(tmp_path):
    """``rbla compare A_seed*.json -- B_seed*.json``: every seed of both sides in one two-level bootstrap, the
    numbers those of stats' functions on the same outcomes (an independent rebuild of the outcome table); a seed on
    other data is refused in one line, as a pair is."""
    from robustbench_labelaug.stats import bootstrap_draws, class_difference, difference, outcome_table

    rng = np.random.default_rng(5)
    wrong_a = [A_WRONG ^ (rng.random(Y.size) < 0.08) for _ in range(3)]
    wrong_b = [B_WRONG ^ (rng.random(Y.size) < 0.08) for _ in range(2)]
    a = [write_evaluation(tmp_path, f"a{s}", w) for s, w in enumerate(wrong_a)]
    b = [write_evaluation(tmp_path, f"b{s}", w) for s, w in enumerate(wrong_b)]
    r = run_cli_inprocess("compare", *map(str, a), "--", *map(str, b), "--n-boot", "400", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "Pooled over 3 seed(s) of a0 and 2 of b0" in r.stdout and "pooled over 3 + 2 seeds" in r.stdout
    result = compare(a, b, n_boot=400, seed=3)
    pooled = result.evaluators["pgd"].pooled
    table = pd.concat([outcome_table(arm, s, np.arange(Y.size), Y, ~w) for arm, ws in (("A", wrong_a), ("B", wrong_b))
                       for s, w in enumerate(ws)])
    expected = difference(bootstrap_draws(table, ["A", "B"], n_boot=400, seed=3, num_classes=K), "A", "B")
    for name in ("mean", "sd", "worst"):
        assert pooled["summary"][name]["diff"] == pytest.approx(expected[name]["diff"])
        assert pooled["summary"][name]["ci"] == pytest.approx(expected[name]["ci"])
        assert pooled["summary"][name]["p"] == pytest.approx(expected[name]["p"])
    per_class = class_difference(table, "A", "B", n_boot=400, seed=3, num_classes=K)
    np.testing.assert_allclose(pooled["diff"], per_class["diff"])
    # the seed-averaged class errors, by hand
    by_hand = np.mean([[100 * w[Y == c].mean() for c in range(K)] for w in wrong_b], axis=0) - \
        np.mean([[100 * w[Y == c].mean() for c in range(K)] for w in wrong_a], axis=0)
    np.testing.assert_allclose(pooled["diff"], by_hand)
    assert result.verdicts["pgd"].endswith(("significant", "not significant"))
    # one seed of B on another split: refused in one line naming it
    other = write_evaluation(tmp_path, "b_other", wrong_b[0], dataset={"name": "digits", "split": "train"})
    bad = run_cli_inprocess("compare", *map(str, a), "--", str(b[0]), str(other))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "different data (dataset split: 'test' vs 'train')" in bad.stderr
    lonely = run_cli_inprocess("compare", str(a[0]), "--")
    assert lonely.returncode == 2 and "at least one evaluation on each side" in lonely.stderr
    three = run_cli_inprocess("compare", str(a[0]), str(a[1]), str(b[0]))
    assert three.returncode == 2 and "two sides" in three.stderr


# -- Newcombe's interval per class, no CI that cannot be computed (issue 30, family 3) ---------------------------


@pytest.mark.parametrize("table, low, high", [
    ((59, 6, 16, 80), -0.1186, -0.0046),   # Fagerland, Lydersen & Laake (2017), Table 8.x: Cavo et al. (2012)
    ((36, 12, 2, 0), 0.0569, 0.3404),      # Newcombe (1998), method 10, his examples
    ((18, 12, 2, 18), 0.0562, 0.3290),
    ((53, 0, 0, 1), -0.0729, 0.0729),
])
def test_newcombe_paired_matches_published_values(table, low, high):
    both, first_only, second_only, neither = table
    d, lo, hi = stats.newcombe_paired(both, first_only, second_only, neither)
    assert d == pytest.approx((first_only - second_only) / sum(table))
    assert (lo, hi) == pytest.approx((low, high), abs=6e-5)


def test_newcombe_per_class_is_never_zero_width_and_bootstrap_needs_enough_examples(tmp_path):
    y = np.repeat(np.arange(3), 12)
    a = np.zeros(36, dtype=bool)
    a[:6] = True                                      # class 0: A wrong on 6, B right everywhere
    b = np.zeros(36, dtype=bool)
    ci = stats.per_class_intervals(y, a, b, 3)
    for c in (1, 2):                                  # no discordant pair: a real interval around 0
        assert ci[c][0] < -10 and ci[c][1] > 10
    assert ci[0][1] < 0                               # B fixes 6 of 12: excluded 0
    # against the pure function on the same 2 x 2 table (B wrong both / only, A only, neither)
    assert ci[0] == pytest.approx([100 * v for v in stats.newcombe_paired(0, 0, 6, 6)[1:]])

    one = np.arange(K)                                # one example per class
    r = compare(write_evaluation(tmp_path, "a1", np.ones(K, dtype=bool), y=one),
                write_evaluation(tmp_path, "b1", np.zeros(K, dtype=bool), y=one), n_boot=200)
    e = r.evaluators["pgd"]
    assert all(s["ci"] is None for s in e.boot["summary"].values())
    assert "fewer than the 10 per class" in e.boot["no_ci"]
    assert "no CI (class 0 has 1 example(s)" in r.verdicts["pgd"] and r.verdicts["pgd"].endswith("undetermined")
    assert "[0.0, 0.0]" not in r.markdown()
    assert all(hi - lo > 50 for lo, hi in e.class_ci)  # n = 1: wide, honest


def test_identical_models_get_no_zero_width_summary_ci(tmp_path):
    a = write_evaluation(tmp_path, "a", A_WRONG)
    b = write_evaluation(tmp_path, "b", A_WRONG)
    e = compare(a, b, n_boot=200).evaluators["pgd"]
    assert all(s["ci"] is None for s in e.boot["summary"].values()) and "no example is discordant" in e.boot["no_ci"]
    assert all(lo < 0 < hi for lo, hi in e.class_ci)


# -- pairing by settings, refusing other data (issue 30, family 3) -----------------------------------------------


def test_results_pair_by_settings_not_ids_and_unpaired_ones_are_named(tmp_path):
    aa = {"autoattack": ("autoattack", {"eps": 0.2, "version": "standard", "n_examples": 60, "pgd_first": True})}
    a = write_evaluation(tmp_path, "bench", A_WRONG, rid="pgd",
                         extra={"autoattack": ("autoattack", {"eps": 0.2, "version": "standard", "n_examples": None})})
    b = write_evaluation(tmp_path, "demo", B_WRONG, rid="pgd40_sound", extra=aa)
    r = compare(a, b, n_boot=200)
    assert list(r.evaluators) == ["pgd = pgd40_sound"]
    e = r.evaluators["pgd = pgd40_sound"]
    assert (e.a_id, e.b_id) == ("pgd", "pgd40_sound")
    assert r.skipped["bench's autoattack"].startswith("demo's 'autoattack' ran with different settings (n_examples")
    assert "demo's autoattack" in r.skipped
    md = r.markdown()
    assert "Not compared:" in md and "bench's `pgd` with demo's `pgd40_sound`" in md
    assert compare(a, b, n_boot=200, evaluators=["pgd40_sound"]).evaluators.keys() == {"pgd = pgd40_sound"}
    with pytest.raises(UserError, match="--evaluators names \\['autoattack'\\].*n_examples: 120 vs 60"):
        compare(a, b, evaluators=["autoattack"])


@pytest.mark.parametrize("dataset_b, fingerprint_b, expect", [
    ({"name": "folder", "split": "test", "crop_pct": 1.0}, "absent", "different data (dataset: 'digits' vs 'folder')"),
    ({"name": "digits", "split": "train"}, "absent", "different data (dataset split: 'test' vs 'train')"),
    ({"name": "cifar10", "split": "test", "data_dir": "/d"}, "f2", "different data (dataset: 'digits' vs 'cifar10')"),
    ({"name": "folder", "split": "val", "crop_pct": 0.875, "data_dir": "/d"}, "f2",
     "different data (data fingerprint: f1 vs f2: the files of the dataset differ"),
    ({"name": "folder", "split": "val", "crop_pct": 1.0, "data_dir": "/d"}, "f1",
     "different data (crop_pct: 0.875 vs 1.0)"),
    ({"name": "folder", "split": "val", "crop_pct": 0.875, "data_dir": "/d"}, "absent",
     "does not record which files it read"),
])
def test_compare_refuses_other_data_naming_the_dataset_first(tmp_path, dataset_b, fingerprint_b, expect):
    folder = {"name": "folder", "split": "val", "crop_pct": 0.875, "data_dir": "/d"}
    dataset_a, fingerprint_a = (DIGITS, "absent") if dataset_b["name"] != "folder" or "data_dir" not in dataset_b \
        else (folder, "f1")
    a = write_evaluation(tmp_path, "a", A_WRONG, dataset=dataset_a, data_fingerprint=fingerprint_a)
    b = write_evaluation(tmp_path, "b", B_WRONG, dataset=dataset_b, data_fingerprint=fingerprint_b)
    with pytest.raises(UserError) as info:
        compare(a, b)
    assert expect in str(info.value) and "\n" not in str(info.value)


def test_same_files_in_another_folder_compare(tmp_path):
    a = write_evaluation(tmp_path, "a", A_WRONG, dataset={"name": "folder", "split": "val", "data_dir": "/x"},
                         data_fingerprint="f1")
    b = write_evaluation(tmp_path, "b", B_WRONG, dataset={"name": "folder", "split": "val", "data_dir": "/y"},
                         data_fingerprint="f1")
    assert "pgd" in compare(a, b, n_boot=200).evaluators


def test_compare_refuses_reordered_examples_and_other_class_names(tmp_path):
    a = write_evaluation(tmp_path, "a", A_WRONG)
    b = write_evaluation(tmp_path, "b", B_WRONG, index=np.arange(len(Y))[::-1])
    with pytest.raises(UserError, match="different examples .*another order"):
        compare(a, b)


NET = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.fc = nn.Linear(4 * 15 * 15, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def build():
    return Net()
'''


@pytest.mark.slow
def test_benchmark_and_a_config_pair_by_settings_and_agree(tmp_path):
    """Two doors to one measurement: benchmark()'s `pgd` and a config's `pgd2_sound` with the same settings are
    paired (not dropped for their ids) and give the same per-example outcomes on the same examples."""
    import importlib.util

    import yaml

    from robustbench_labelaug import benchmark
    from robustbench_labelaug.cli import main as cli_main

    (tmp_path / "net.py").write_text(NET)
    spec = importlib.util.spec_from_file_location("net_for_compare", tmp_path / "net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    benchmark(module.build(), evaluators=(("pgd", {"steps": 2}),), n_examples=20, to_disk=True,
              output=tmp_path / "bench", model_name="mine")
    cfg = {"title": "t", "runtime": {"batch_size": 64, "device": "cpu", "output": str(tmp_path / "eval"),
                                     "progress": False, "plots": False},
           "datasets": {"digits": {"name": "digits", "split": "test"}},
           "models": [{"name": "mine", "python": f"{tmp_path / 'net.py'}:build", "dataset": "digits"}],
           "evaluators": [{"id": "pgd2_sound", "name": "pgd", "settings": {"protocol": "sound", "eps": 0.2,
                                                                          "steps": 2, "n_examples": 20}}]}
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(cfg))
    assert cli_main(["evaluate", "-c", str(tmp_path / "eval.yaml"), "--no-progress"]) == 0
    r = compare(tmp_path / "bench" / "mine", tmp_path / "eval" / "mine", n_boot=200)
    assert list(r.evaluators) == ["pgd = pgd2_sound"] and not r.skipped
    e = r.evaluators["pgd = pgd2_sound"]
    assert list(e.n) == [2] * 10 and e.tests["a_only"].sum() == e.tests["b_only"].sum() == 0


def test_all_examples_and_their_count_measure_alike(tmp_path):
    every = {"autoattack": ("autoattack", {"eps": 0.2, "n_examples": None})}
    counted = {"autoattack": ("autoattack", {"eps": 0.2, "n_examples": len(Y)})}
    r = compare(write_evaluation(tmp_path, "a", A_WRONG, extra=every),
                write_evaluation(tmp_path, "b", B_WRONG, extra=counted), n_boot=200)
    assert set(r.evaluators) == {"pgd", "autoattack"} and not r.skipped


def test_in_memory_reports_carry_their_dataset_and_fingerprint(tmp_path):
    from types import SimpleNamespace

    def report(name, wrong, fingerprint):
        folder = write_evaluation(tmp_path, name, wrong)
        arrays = {"pgd": dict(np.load(folder / "cache" / "pgd" / "pgd" / "all.npz"))}
        result = json.loads((folder / "results" / "pgd.json").read_text())["result"]
        return SimpleNamespace(model_name=name, results={"pgd": result}, arrays=arrays, class_names=[],
                               meta={"dataset": "folder", "data_fingerprint": fingerprint}, folder=None)

    assert "pgd" in compare(report("a", A_WRONG, "f1"), report("b", B_WRONG, "f1"), n_boot=200).evaluators
    with pytest.raises(UserError, match="data fingerprint: f1 vs f2"):
        compare(report("c", A_WRONG, "f1"), report("d", B_WRONG, "f2"))


def test_an_output_file_is_checked_before_the_work(tmp_path):
    from robustbench_labelaug.fileio import check_output_file

    (tmp_path / "a_file").write_text("x")
    for bad, words in ((tmp_path, "is a folder"), (tmp_path / "a_file" / "x.md", "a_file is a file, not a folder"),
                       (Path("/proc/x.md"), "cannot be written")):
        with pytest.raises(UserError, match=words):
            check_output_file(bad, "--markdown")
    with pytest.raises(UserError, match="'.xyz' is not a format"):
        check_output_file(tmp_path / "p.xyz", "--plot", (".png", ".pdf"))
    assert check_output_file(tmp_path / "new" / "p.png", "--plot", (".png",)) == tmp_path / "new" / "p.png"
