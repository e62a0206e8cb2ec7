"""Pure scoring functions: top-1 / class-wise errors and their bootstrap, ImageNet-C (m)CE, ReaL, ImageNet-X."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import torch

from robustbench_labelaug import UserError
from robustbench_labelaug.scoring import (
    ALEXNET_IMAGENET_C_ERRORS,
    CI_METHODS,
    IMAGENET_C_CORRUPTIONS,
    IMAGENET_X_FACTORS,
    NUM_VAL_IMAGES,
    classwise_bootstrap,
    classwise_error,
    classwise_summary,
    corruption_errors,
    imagenet_x_errors,
    imagenet_x_scores,
    official_val_labels,
    real_classwise_error,
    real_classwise_summary,
    real_error,
    real_label_sets,
    top1_error,
)

ALL_NAMES = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, NUM_VAL_IMAGES + 1)]


@pytest.fixture(scope="module")
def real_sets() -> list[list[int]]:
    """timm's ReaL label sets, read here independently of the code under test."""
    return json.loads((resources.files("timm.data") / "_info" / "imagenet_real_labels.json").read_text())


@pytest.fixture(scope="module")
def official() -> np.ndarray:
    return official_val_labels(ALL_NAMES)


# -- top-1 and class-wise ---------------------------------------------------------------------------------------

Y_TRUE = [0, 0, 1, 1, 1, 3]
Y_PRED = [0, 1, 1, 0, 2, 3]  # class 0: 1/2 wrong, class 1: 2/3 wrong, class 2: no sample, class 3: 0/1 wrong


def test_top1_error_hand_computed():
    assert top1_error(Y_TRUE, Y_PRED) == pytest.approx(100 * 3 / 6)
    assert top1_error([1, 2], [1, 2]) == 0.0
    assert math.isnan(top1_error([], []))
    with pytest.raises(ValueError, match="differ in length"):
        top1_error([0, 1], [0])


def test_classwise_error_hand_computed_and_empty_class_nan():
    errors = classwise_error(Y_TRUE, Y_PRED, 4)
    assert errors.shape == (4,)
    np.testing.assert_allclose(errors[[0, 1, 3]], [50.0, 200 / 3, 0.0])
    assert math.isnan(errors[2])


def test_classwise_summary_hand_computed_skips_empty_class():
    s = classwise_summary(Y_TRUE, Y_PRED, 4, n_boot=0)
    values = [50.0, 200 / 3, 0.0]  # class 2 has no sample: left out
    mean = sum(values) / 3
    assert s["mean"] == pytest.approx(mean)
    assert s["sd"] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values) / 3))
    assert s["sd_sample"] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values) / 2))
    assert (s["worst_class"], s["worst_error"]) == (1, pytest.approx(200 / 3))
    assert (s["best_class"], s["best_error"]) == (3, 0.0)
    assert s["num_classes_scored"] == 3
    assert "sd_ci" not in s
    with pytest.raises(ValueError, match="no class"):
        classwise_summary([], [], 3)


def _two_level_data(n_per_class: int, rates, seed: int = 0):
    """Classes with the given exact error rates (n_per_class samples each)."""
    rng = np.random.default_rng(seed)
    y_true, y_pred = [], []
    for c, rate in enumerate(rates):
        wrong = np.zeros(n_per_class, dtype=bool)
        wrong[: round(rate * n_per_class)] = True
        rng.shuffle(wrong)
        y_true += [c] * n_per_class
        y_pred += [(c + 1) % len(rates) if w else c for w in wrong]
    return np.array(y_true), np.array(y_pred)


def test_bootstrap_deterministic_with_seed_and_ci_around_point_when_noise_is_small():
    y_true, y_pred = _two_level_data(4000, [0.1, 0.3, 0.5, 0.7, 0.2])
    a = classwise_summary(y_true, y_pred, 5, n_boot=400, seed=3)
    b = classwise_summary(y_true, y_pred, 5, n_boot=400, seed=3)
    c = classwise_summary(y_true, y_pred, 5, n_boot=400, seed=4)
    assert a == b
    assert a["sd_ci"] != c["sd_ci"]
    for method in ("basic", "percentile"):
        s = classwise_summary(y_true, y_pred, 5, n_boot=400, seed=3, ci_method=method)
        assert s["ci_method"] == method
        assert s["sd_ci"][0] < s["sd"] < s["sd_ci"][1]
        assert s["worst_error_ci"][0] <= s["worst_error"] <= s["worst_error_ci"][1]
        assert s["sd_ci"][1] - s["sd_ci"][0] < 2.0  # 4 000 samples per class: a tight interval
    with pytest.raises(ValueError, match="ci_method"):
        classwise_summary(y_true, y_pred, 5, ci_method="bca")


def test_binomial_bootstrap_matches_explicit_resampling():
    """The vectorised bootstrap draws the same distribution as resampling examples within each class."""
    y_true, y_pred = _two_level_data(30, [0.1, 0.4, 0.6, 0.2])
    wrong = y_true != y_pred
    rng = np.random.default_rng(0)
    explicit = []
    for _ in range(3000):
        errs = [100 * rng.choice(wrong[y_true == c], size=30, replace=True).mean() for c in range(4)]
        explicit.append(np.std(errs))
    s = classwise_summary(y_true, y_pred, 4, n_boot=3000, seed=1, ci_method="percentile")
    lo, hi = np.percentile(explicit, [2.5, 97.5])
    assert s["sd_ci"][0] == pytest.approx(lo, abs=1.0)
    assert s["sd_ci"][1] == pytest.approx(hi, abs=1.0)
    assert s["sd_bias_corrected"] == pytest.approx(2 * s["sd"] - np.mean(explicit), abs=0.3)


def test_basic_ci_covers_true_classwise_sd_where_percentile_does_not():
    """50 images per class: sampling noise inflates the observed SD; the default (basic) interval still covers
    the classes' true SD in most repetitions, the plain percentile interval almost never does."""
    rng = np.random.default_rng(0)
    covered = {"basic": 0, "percentile": 0}
    reps, k, n = 40, 100, 50
    for r in range(reps):
        p = np.clip(rng.normal(0.3, 0.15, k), 0.01, 0.99)
        y_true = np.repeat(np.arange(k), n)
        wrong = rng.random(k * n) < p[y_true]
        y_pred = np.where(wrong, (y_true + 1) % k, y_true)
        for method in covered:
            lo, hi = classwise_summary(y_true, y_pred, k, n_boot=300, seed=r, ci_method=method)["sd_ci"]
            covered[method] += lo <= 100 * p.std() <= hi
    assert covered["basic"] >= 0.8 * reps
    assert covered["percentile"] <= 0.2 * reps


# -- ImageNet-C -------------------------------------------------------------------------------------------------

# Per-corruption AlexNet errors as published in the README of github.com/hendrycks/robustness (fractions):
# an independent check of the per-severity table transcribed in scoring.py.
ALEXNET_MEANS = [0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816, 0.826572,
                 0.819324, 0.564592, 0.853204, 0.646056, 0.717840, 0.606500]


def test_alexnet_reference_matches_published_means():
    assert tuple(ALEXNET_IMAGENET_C_ERRORS) == IMAGENET_C_CORRUPTIONS
    for name, mean in zip(IMAGENET_C_CORRUPTIONS, ALEXNET_MEANS):
        assert len(ALEXNET_IMAGENET_C_ERRORS[name]) == 5
        assert np.mean(ALEXNET_IMAGENET_C_ERRORS[name]) == pytest.approx(100 * mean, abs=1e-4)


def test_corruption_errors_hand_computed():
    errors = {"a": [10, 20, 30, 40, 50], "b": [0, 0, 0, 0, 50]}
    out = corruption_errors(errors)
    assert out["CE"] == {"a": pytest.approx(30.0), "b": pytest.approx(10.0)}
    assert out["mce"] == pytest.approx(20.0)
    assert out["E"]["a"] == [10, 20, 30, 40, 50]
    assert "mce_normalized" not in out
    ref = {"a": [20] * 5, "b": [50] * 5, "unused": [1] * 5}
    norm = corruption_errors(errors, ref)
    assert norm["CE_normalized"] == {"a": pytest.approx(150.0), "b": pytest.approx(20.0)}  # 150/100, 50/250
    assert norm["mce_normalized"] == pytest.approx(85.0)
    assert norm["reference"] == "custom"
    arr = corruption_errors(np.array([[10, 20, 30, 40, 50], [0, 0, 0, 0, 50]]), ref, names=["a", "b"])
    assert arr["mce_normalized"] == pytest.approx(85.0)
    sub = corruption_errors({"a": [30, 50]}, {"a": [10, 20, 30, 40, 50]}, severities=[3, 5])
    assert sub["CE"]["a"] == pytest.approx(40.0)
    assert sub["CE_normalized"]["a"] == pytest.approx(100.0)  # (30 + 50) / (30 + 50)


def test_alexnet_normalised_mce_of_alexnet_is_100():
    out = corruption_errors(ALEXNET_IMAGENET_C_ERRORS, normalize="alexnet")
    assert out["reference"] == "alexnet"
    assert out["mce_normalized"] == pytest.approx(100.0)
    assert all(v == pytest.approx(100.0) for v in out["CE_normalized"].values())
    assert out["mce"] == pytest.approx(100 * np.mean(ALEXNET_MEANS), abs=1e-4)
    half = {k: [v / 2 for v in vals] for k, vals in ALEXNET_IMAGENET_C_ERRORS.items()}
    assert corruption_errors(half, normalize="alexnet")["mce_normalized"] == pytest.approx(50.0)


@pytest.mark.parametrize("errors, kwargs, match", [
    ({"a": [10, 20], "b": [10]}, {}, "different numbers of severities"),
    ({"a": [10, 120]}, {}, r"\[0, 100\]"),
    ({"a": [10, float("nan")]}, {}, "finite"),
    ({}, {}, "no corruption"),
    (np.ones((2, 5)), {}, "one name per row"),
    ({"speckle_noise": [10] * 5}, {"normalize": "alexnet"}, "speckle_noise"),
    ({"fog": [10] * 5}, {"normalize": "resnet"}, "not known"),
    ({"fog": [10] * 2}, {"normalize": "alexnet", "severities": [5, 6]}, "severity 6"),
])
def test_corruption_errors_bad_input(errors, kwargs, match):
    with pytest.raises(UserError, match=match):
        corruption_errors(errors, **kwargs)


# -- ReaL -------------------------------------------------------------------------------------------------------

def _synthetic_predictions(official: np.ndarray, real_sets, seed: int = 0) -> np.ndarray:
    """~60 % of images get a prediction from their ReaL set (when it has one), the rest a random class."""
    rng = np.random.default_rng(seed)
    preds = rng.integers(0, 1000, NUM_VAL_IMAGES)
    for i in np.flatnonzero(rng.random(NUM_VAL_IMAGES) < 0.6):
        if real_sets[i]:
            preds[i] = real_sets[i][rng.integers(len(real_sets[i]))]
    return preds


def test_real_error_equals_timm_on_full_val_set(official, real_sets):
    from timm.data import RealLabelsImagenet

    preds = _synthetic_predictions(official, real_sets)
    timm_real = RealLabelsImagenet(ALL_NAMES, topk=(1,))
    gen = torch.Generator().manual_seed(0)
    for start in range(0, NUM_VAL_IMAGES, 2500):
        batch = torch.as_tensor(preds[start:start + 2500])
        logits = torch.rand(batch.numel(), 1000, generator=gen)
        logits[torch.arange(batch.numel()), batch] = 2.0  # top-1 = our prediction
        timm_real.add_result(logits)
    error, count = real_error(ALL_NAMES, preds, return_count=True)
    assert error == pytest.approx(100.0 - timm_real.get_accuracy(k=1), abs=1e-9)
    assert count == len(timm_real.is_correct[1]) == sum(1 for s in real_sets if s)
    assert 30 < error < 70  # the synthetic set is neither all right nor all wrong


def _pick(real_sets, official, cls: int, kind: str) -> int:
    """First val image of class ``cls`` whose ReaL set is: A = exactly {cls}, B = {cls, others}, C = empty,
    D = not empty and without cls."""
    for i in np.flatnonzero(official == cls):
        s = real_sets[i]
        k = "C" if not s else "D" if cls not in s else "A" if len(s) == 1 else "B"
        if k == kind:
            return int(i + 1)
    raise LookupError(f"class {cls} has no image of kind {kind}")


def test_real_error_hand_computed_subset(official, real_sets):
    a, b, c, d = (_pick(real_sets, official, 3, k) for k in "ABCD")
    other_in_b = next(label for label in real_sets[b - 1] if label != 3)
    not_in_d = next(x for x in range(1000) if x not in real_sets[d - 1])
    names = [f"/data/val/n01491361/ILSVRC2012_val_{a:08d}.JPEG",  # a path, kind A, predicted 3: right
             f"ILSVRC2012_val_{b:08d}.JPEG",  # kind B, another label of its set: right for ReaL
             f"ILSVRC2012_val_{c:08d}.png",  # empty set: skipped (other extension accepted)
             f"ILSVRC2012_val_{d:08d}.JPEG",  # kind D, predicted a class outside its set: wrong
             f"ILSVRC2012_val_{d:08d}.JPEG"]  # kind D, predicted 3 (not in its set): wrong
    preds = [3, other_in_b, 3, not_in_d, 3]
    error, count = real_error(names, preds, return_count=True)
    assert count == 4
    assert error == pytest.approx(100 * 2 / 4)
    assert real_error(names[:2], preds[:2]) == 0.0
    assert math.isnan(real_error(names[2:3], preds[2:3]))
    assert real_label_sets(names[:3]) == [[3], sorted(real_sets[b - 1]), []]
    # class-wise: images of class 3 and one of class 4 (kind A, predicted wrong)
    e = _pick(real_sets, official, 4, "A")
    names_cw, preds_cw = [*names, f"ILSVRC2012_val_{e:08d}.JPEG"], [*preds, 999 if 999 not in real_sets[e - 1] else 0]
    y_true = [3, 3, 3, 3, 3, 4]
    cw = real_classwise_error(names_cw, preds_cw, y_true, 6)
    np.testing.assert_allclose(cw[[3, 4]], [50.0, 100.0])
    assert np.isnan(cw[[0, 1, 2, 5]]).all()
    s = real_classwise_summary(names_cw, preds_cw, y_true, 6, n_boot=0)
    assert (s["mean"], s["sd"], s["worst_class"]) == (75.0, 25.0, 4)


@pytest.mark.parametrize("bad", ["foo.JPEG", "ILSVRC2012_val_00050001.JPEG", "ILSVRC2012_val_0000001.JPEG",
                                 "ILSVRC2012_test_00000001.JPEG"])
def test_real_error_unknown_names(bad):
    with pytest.raises(UserError, match=rf"'{bad}'.*ILSVRC2012_val_XXXXXXXX\.JPEG"):
        real_error(["ILSVRC2012_val_00000001.JPEG", bad], [0, 0])


# -- ImageNet-X -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inx_package():
    imagenet_x = pytest.importorskip("imagenet_x")
    return imagenet_x


def _package_table(imagenet_x, names, preds, which_factor="top"):
    """ImageNet-X's own pipeline: load_annotations -> augment_model_predictions -> compute_factor_accuracies
    -> error_ratio."""
    from imagenet_x.aggregate import compute_factor_accuracies

    annotations = imagenet_x.load_annotations(which_factor=which_factor)
    frame = imagenet_x.augment_model_predictions(
        annotations, {"m": pd.DataFrame({"file_name": names, "predicted_class": preds})})
    acc = compute_factor_accuracies(frame, imagenet_x.FACTORS, error_type="is_correct")
    return acc.loc["m"], imagenet_x.error_ratio(acc).loc["m"]


@pytest.mark.parametrize("which_factor, subset", [("top", None), ("multi", 7000)])
def test_imagenet_x_equals_package_aggregation(inx_package, official, real_sets, which_factor, subset):
    assert tuple(inx_package.FACTORS) == IMAGENET_X_FACTORS
    preds = _synthetic_predictions(official, real_sets, seed=1)
    rng = np.random.default_rng(2)
    keep = np.arange(NUM_VAL_IMAGES) if subset is None else np.sort(rng.choice(NUM_VAL_IMAGES, subset, False))
    names = [ALL_NAMES[i] for i in keep]
    acc, ratio = _package_table(inx_package, names, preds[keep], which_factor)
    ours = imagenet_x_scores(names, preds[keep], official[keep], which_factor=which_factor)
    assert ours["error"] == pytest.approx(100 * (1 - acc["average"]), abs=1e-9)
    for factor in IMAGENET_X_FACTORS:
        assert ours["factors"][factor]["error"] == pytest.approx(100 * (1 - acc[factor]), abs=1e-9)
        assert ours["factors"][factor]["error_ratio"] == pytest.approx(ratio[factor], abs=1e-9)
    assert ours["factors"] == imagenet_x_errors(names, preds[keep], which_factor=which_factor)


def test_imagenet_x_hand_computed(inx_package, official):
    ann = inx_package.load_annotations()
    by_factor = {f: ann.loc[ann[f] == 1, "file_name"].head(2).tolist() for f in ("pose", "background", "color")}
    prototype = pd.read_csv(inx_package.utils.get_annotation_path() / "prototypical_paths.csv").file_name[0]
    annotated = set(inx_package.load_annotations(filter_prototypes=False).file_name)
    unannotated = next(n for n in ALL_NAMES if n not in annotated)
    names = [*by_factor["pose"], *by_factor["background"], *by_factor["color"], prototype, unannotated]
    truth = official_val_labels(names)
    wrong = (truth + 1) % 1000
    # pose: 1 of 2 wrong; background: both right; color: both wrong; the last two are skipped
    preds = [truth[0], wrong[1], truth[2], truth[3], wrong[4], wrong[5], wrong[6], wrong[7]]
    s = imagenet_x_scores(names, preds, truth)
    assert (s["count"], s["skipped"]) == (6, 2)
    assert s["error"] == pytest.approx(50.0)
    assert s["factors"]["pose"] == {"error": pytest.approx(50.0), "error_ratio": pytest.approx(1.0), "count": 2}
    assert s["factors"]["background"] == {"error": 0.0, "error_ratio": 0.0, "count": 2}
    assert s["factors"]["color"] == {"error": pytest.approx(100.0), "error_ratio": pytest.approx(2.0), "count": 2}
    assert s["worst_factor"] == "color"
    assert s["factors"]["texture"]["count"] == 0 and math.isnan(s["factors"]["texture"]["error"])
    # keeping prototypes scores the prototype too
    assert imagenet_x_scores(names, preds, filter_prototypes=False)["count"] == 7


def test_imagenet_x_bad_input(inx_package, official):
    with pytest.raises(UserError, match="none of the 2 images"):
        imagenet_x_scores(["foo.JPEG", "bar.png"], [0, 0])
    ann = inx_package.load_annotations()
    name = ann.file_name.iloc[0]
    label = int(ann["class"].iloc[0])
    with pytest.raises(UserError, match="ImageNet-X annotates class"):
        imagenet_x_scores([name], [0], [(label + 1) % 1000])
    with pytest.raises(UserError, match="more than once"):
        imagenet_x_scores([name, name], [0, 0])
    with pytest.raises(UserError, match="which_factor"):
        imagenet_x_scores([name], [0], which_factor="all")


def test_bootstrap_ci_is_scipy_stats_bootstrap():
    """The CIs are scipy.stats.bootstrap's (one sample per class, resampled on its own), bounds inside [0, 100]."""
    from scipy import stats

    y_true, y_pred = _two_level_data(40, [0.1, 0.4, 0.6, 0.2, 0.35])
    wrong = (y_true != y_pred).astype(float)
    samples = [wrong[y_true == c] for c in range(5)]
    for method in ("percentile", "BCa", "basic"):
        s = classwise_summary(y_true, y_pred, 5, n_boot=500, seed=7, ci_method=method)
        for key, fn in (("sd", np.std), ("worst_error", np.max)):
            def statistic(*x, axis=-1, fn=fn):
                return fn(100 * np.stack([xi.mean(axis=axis) for xi in x], axis=-1), axis=-1)

            ref = stats.bootstrap(samples, statistic, n_resamples=500, method=method, paired=False, axis=-1,
                                  vectorized=True, rng=np.random.default_rng(7)).confidence_interval
            assert s[f"{key}_ci"] == pytest.approx([max(ref.low, 0.0), min(ref.high, 100.0)], rel=1e-9), (method, key)


def test_bootstrap_ci_stays_inside_0_100_with_few_errors():
    """digits_std-like: 36 images per class, almost no mistakes. The old basic interval went below 0
    (sd_ci [-0.75, 3.57], worst_error_ci [-2.78, 11.11])."""
    rates = [0.0] * 9 + [1 / 36]
    y_true, y_pred = _two_level_data(36, rates)
    for method in CI_METHODS:
        s = classwise_summary(y_true, y_pred, 10, n_boot=1000, seed=0, ci_method=method)
        for key in ("sd", "worst_error"):
            ci = s[f"{key}_ci"]
            assert ci is not None and 0.0 <= ci[0] <= ci[1] <= 100.0, (method, key, ci)
            assert 0.0 <= s[f"{key}_bias_corrected"] <= 100.0
    assert classwise_summary(y_true, y_pred, 10)["ci_method"] == "percentile"  # the default


def test_bootstrap_degenerate_statistic_is_reported_not_a_zero_width_interval():
    # every example of class 1 is wrong: the worst-class error is 100 in every resample; class SD still varies
    y_true, y_pred = _two_level_data(30, [0.2, 1.0, 0.1])
    s = classwise_summary(y_true, y_pred, 3, n_boot=300, seed=0)
    assert s["worst_error"] == 100.0 and s["worst_error_ci"] is None
    assert "every bootstrap resample gives 100.00" in s["worst_error_ci_degenerate"]
    assert s["sd_ci"] is not None and "sd_ci_degenerate" not in s
    # nothing wrong anywhere: both statistics are 0 in every resample
    s = classwise_summary(np.repeat(np.arange(4), 10), np.repeat(np.arange(4), 10), 4, n_boot=200)
    assert s["sd_ci"] is None and s["worst_error_ci"] is None and "0.00" in s["sd_ci_degenerate"]
    # BCa on the degenerate statistic: scipy cannot compute it; reported the same way, no NaN in the output
    s = classwise_summary(y_true, y_pred, 3, n_boot=300, seed=0, ci_method="BCa")
    assert s["worst_error_ci"] is None and s["sd_ci"] is not None and all(np.isfinite(s["sd_ci"]))


def test_bootstrap_classes_with_one_example_count_as_fixed():
    # class 2 has a single (wrong) example: scipy needs two per sample, so it enters every resample unchanged
    y_true = np.array([0] * 20 + [1] * 20 + [2])
    y_pred = y_true.copy()
    y_pred[:5] = 1
    y_pred[40] = 0
    s = classwise_summary(y_true, y_pred, 3, n_boot=300, seed=0)
    assert s["worst_error"] == 100.0 and s["worst_error_ci"] is None  # class 2 is always 100 % wrong
    assert s["sd_ci"] is not None and 0.0 <= s["sd_ci"][0] <= s["sd"] <= s["sd_ci"][1] <= 100.0
    one_each = classwise_summary(np.arange(3), np.array([0, 2, 2]), 3, n_boot=50)
    assert one_each["sd_ci"] is None and one_each["worst_error_ci"] is None


def _old_imagenet_x_arithmetic(names, preds):
    """The hand-written aggregation scoring.py used before it called imagenet_x (kept here as a reference)."""
    import imagenet_x

    ann = imagenet_x.load_annotations().set_index("file_name")
    rows = [n for n in names if n in ann.index]
    pred = dict(zip(names, preds))
    shows = ann.loc[rows, list(IMAGENET_X_FACTORS)].to_numpy() > 0
    correct = np.array([pred[n] == ann.loc[n, "class"] for n in rows])
    total, right = shows.sum(axis=0), (shows & correct[:, None]).sum(axis=0)
    overall = 1.0 - correct.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.where(total > 0, 1.0 - right / np.maximum(total, 1), np.nan)
        ratio = error / overall if overall > 0 else np.full(total.size, np.nan)
    return 100 * error, ratio


@pytest.mark.parametrize("case", ["mixed", "all_wrong", "all_right"])
def test_imagenet_x_package_aggregation_equals_old_numbers(inx_package, official, monkeypatch, case):
    calls = []
    real = inx_package.compute_factor_accuracies
    monkeypatch.setattr(inx_package, "compute_factor_accuracies", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(5)
    keep = np.sort(rng.choice(NUM_VAL_IMAGES, 3000, replace=False))
    names = [ALL_NAMES[i] for i in keep]
    truth = official[keep]
    preds = {"mixed": np.where(rng.random(keep.size) < 0.7, truth, (truth + 1) % 1000),
             "all_wrong": (truth + 1) % 1000, "all_right": truth}[case]
    ours = imagenet_x_scores(names, preds)
    assert calls, "imagenet_x.compute_factor_accuracies was not called"
    error, ratio = _old_imagenet_x_arithmetic(names, preds)
    np.testing.assert_allclose([ours["factors"][f]["error"] for f in IMAGENET_X_FACTORS], error, atol=1e-9)
    np.testing.assert_allclose([ours["factors"][f]["error_ratio"] for f in IMAGENET_X_FACTORS], ratio, atol=1e-9)


def test_bootstrap_on_imagenet_c_sized_data_draws_binomially_with_the_same_distribution():
    y_true, y_pred = _two_level_data(60, [0.1, 0.4, 0.6, 0.2, 0.3])
    wrong = y_true != y_pred
    for method in ("percentile", "basic"):
        resampled = classwise_bootstrap(y_true, wrong, 5, n_boot=4000, seed=0, ci_method=method)
        drawn = classwise_bootstrap(y_true, wrong, 5, n_boot=4000, seed=0, ci_method=method, max_resampled=0)
        assert drawn["ci_draws"] == "binomial" and "ci_draws" not in resampled
        for key in ("sd_ci", "worst_error_ci"):
            assert drawn[key] == pytest.approx(resampled[key], abs=0.8), (method, key)
    with pytest.raises(ValueError, match="BCa"):
        classwise_bootstrap(y_true, wrong, 5, ci_method="BCa", max_resampled=0)
    # 75 corruptions x 50 000 images: per-class draws, not 3.75 billion resampled examples
    rng = np.random.default_rng(0)
    y_big = np.repeat(np.arange(1000), 3750)
    s = classwise_summary(y_big, np.where(rng.random(y_big.size) < 0.5, y_big, (y_big + 1) % 1000), 1000)
    assert s["ci_draws"] == "binomial" and 0.0 <= s["sd_ci"][0] <= s["sd_ci"][1] <= 100.0
