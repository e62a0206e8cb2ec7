"""One definition per fact (issue 16): every entry point applies the same value rule, the vocabulary maps to
torch's and timm's words at the edge, and the headline-merge rule is one function."""

from __future__ import annotations

import argparse

import pytest
import torch

from robustbench_labelaug import UserError
from robustbench_labelaug.results import keys, rules, vocab
from robustbench_labelaug.results.measured import Measured, merge_headlines


def _train_args(**overrides) -> argparse.Namespace:
    from robustbench_labelaug.train.args import add_adv_arguments

    parser = argparse.ArgumentParser()
    add_adv_arguments(parser)
    args = parser.parse_args([])
    for k, v in overrides.items():
        setattr(args, k, v)
    return args


def _entry_points(eps=0.03, delta=0.03, num_ops=1, mode="adv_plus"):
    """The same values through the hook, rbla train / timm-train flags, an eval config's model and checks.py."""
    from robustbench_labelaug.checks import check_delta, check_eps
    from robustbench_labelaug.hook import AdvLabelAug
    from robustbench_labelaug.models import create_classifier
    from robustbench_labelaug.train.args import adv_settings

    yield lambda: AdvLabelAug(create_classifier("resnet8_tiny", 10, 1), 10, mode=mode, eps=eps, delta=delta,
                              num_ops=num_ops, steps=3)  # alpha = 2.5 * eps / 3 <= 1
    yield lambda: adv_settings(_train_args(adv_mode=mode, adv_eps=eps, la_delta=delta, la_ops=num_ops))
    yield lambda: (check_eps("config", eps), check_delta("config", delta))


@pytest.mark.parametrize("eps", [1.0, 0.5, 1e-6])
def test_eps_in_range_is_accepted_everywhere(eps):
    for call in _entry_points(eps=eps):
        call()
    assert rules.eps_problem(eps) is None


@pytest.mark.parametrize("eps", [0.0, -0.1, 1.5, float("nan"), True, "0.1"])
def test_eps_out_of_range_is_a_user_error_everywhere(eps):
    for call in _entry_points(eps=eps):
        with pytest.raises(UserError, match=r"must be a number in \(0, 1\]"):
            call()


@pytest.mark.parametrize("delta, ok", [(0.0, True), (0.5, True), (1.0, False), (-0.1, False)])
def test_delta_rule_is_one_range(delta, ok):
    assert (rules.delta_problem(delta) is None) == ok
    for call in _entry_points(delta=delta):
        if ok:
            call()
        else:
            with pytest.raises(UserError, match=r"must be a number in \[0, 1\)"):
                call()


def test_adv_plus_needs_num_ops():
    for call in list(_entry_points(num_ops=0))[:2]:  # the hook and the training flags
        with pytest.raises(UserError, match="num_ops|--la-ops"):
            call()
    assert "adv_plus needs num_ops >= 1" in rules.label_aug_problem("adv_plus", 0, 0.03)
    assert rules.label_aug_problem("adv", 0, None) is None
    assert "label augmentation is adv_plus only" in rules.label_aug_problem("adv", 1, None)


def test_flags_are_named_in_messages():
    from robustbench_labelaug.train.args import adv_settings

    with pytest.raises(UserError, match="--adv-eps must be a number in"):
        adv_settings(_train_args(adv_eps=2.0))
    with pytest.raises(UserError, match="--label-aug needs adversarial training"):
        adv_settings(_train_args(adv_mode="std", label_aug=True))
    assert adv_settings(_train_args(adv_mode="adv", label_aug=True))["mode"] == "adv_plus"


def test_default_alpha_is_one_function():
    from robustbench_labelaug.attacks import EarlyStopPGD, MarginPGD
    from robustbench_labelaug.hook import AdvLabelAug
    from robustbench_labelaug.models import create_classifier, k_way

    model = create_classifier("resnet8_tiny", 10, 1)
    expected = rules.default_alpha(0.03, 7)
    assert expected == pytest.approx(2.5 * 0.03 / 7)
    assert AdvLabelAug(model, 10, eps=0.03, steps=7).alpha == expected
    assert EarlyStopPGD(k_way(model, 10), eps=0.03, steps=7).alpha == expected
    assert MarginPGD(k_way(model, 10), eps=0.03, steps=7).alpha == expected


def test_precision_vocabulary_maps_at_the_edge():
    assert vocab.torch_dtype("fp32") is None
    assert vocab.torch_dtype("bf16") is torch.bfloat16 and vocab.torch_dtype("fp16") is torch.float16
    assert vocab.timm_amp_dtype("bf16") == "bfloat16" and vocab.precision_of_amp_dtype("float16") == "fp16"
    assert vocab.precision_of_amp_dtype(None) == vocab.DEFAULT_AMP_PRECISION == "bf16"
    assert _train_args().__dict__.get("amp_dtype") is None  # --amp-dtype belongs to rbla train's misc flags
    from robustbench_labelaug.train.args import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.get_default("amp_dtype") == vocab.DEFAULT_AMP_DTYPE == "bfloat16"
    for bad in (lambda: vocab.torch_dtype("fp8"), lambda: vocab.precision_of_amp_dtype("half")):
        with pytest.raises(UserError):
            bad()


def test_threat_models_are_one_vocabulary():
    from robustbench_labelaug.leaderboard import table
    from robustbench_labelaug.results import model_info
    from robustbench_labelaug.runner import config
    from robustbench_labelaug.zoo import entries

    assert set(vocab.ATTACK_THREAT_MODELS) <= set(vocab.THREAT_MODELS)
    assert table.THREAT_MODELS is model_info.THREAT_MODELS is vocab.THREAT_MODELS
    assert not hasattr(config, "THREAT_MODELS") and not hasattr(entries, "THREAT_MODELS")


def test_merge_headlines_first_wins_fallback_and_accumulate():
    pairs = [
        ("pgd", Measured(keys.CLEAN_ERROR, "clean err", 5.0, fallback=True)),
        ("pgd", Measured(keys.PGD_ERROR, "PGD err", 40.0)),
        ("clean", Measured(keys.CLEAN_ERROR, "clean err", 4.0)),
        ("pgd2", Measured(keys.PGD_ERROR, "PGD err", 42.0)),
        ("m1", Measured(keys.MASKING_PASSED, "passed", 3, accumulate=True)),
        ("m2", Measured(keys.MASKING_PASSED, "passed", 4, accumulate=True)),
        ("aa", Measured(keys.AUTOATTACK_N, "n", None)),
        ("aa", Measured(keys.CLEAN_N, "clean n", 120, fallback=True)),
    ]
    merged = merge_headlines(pairs)
    assert list(merged) == [keys.CLEAN_ERROR, keys.PGD_ERROR, keys.MASKING_PASSED, keys.CLEAN_N]
    assert (merged[keys.CLEAN_ERROR].measured.value, merged[keys.CLEAN_ERROR].source) == (4.0, "clean")
    assert (merged[keys.PGD_ERROR].measured.value, merged[keys.PGD_ERROR].source) == (40.0, "pgd")
    assert (merged[keys.MASKING_PASSED].measured.value, merged[keys.MASKING_PASSED].source) == (7, "m1")
    assert merged[keys.CLEAN_N].from_fallback and merged[keys.CLEAN_N].measured.value == 120


def test_measured_moved_but_old_import_works():
    from robustbench_labelaug.evaluation.base import Measured as OldPath
    from robustbench_labelaug.results.model_info import build_model_info
    from robustbench_labelaug.results.model_info import build_model_info as new_build

    assert OldPath is Measured and build_model_info is new_build


def test_is_error_is_one_rule_for_every_reader():
    """results.keys.is_error decides "is this key an error rate" for the leaderboard (acc = 100 - err) and for
    model_info validation (an error must be finite) alike: worst_class_* is an error in both, a class SD in neither."""
    import copy
    import json
    from pathlib import Path

    from robustbench_labelaug.leaderboard.table import is_error
    from robustbench_labelaug.results.model_info import validate_model_info

    errors = (keys.CLEAN_ERROR, keys.PGD_PAPER_ERROR, keys.worst_class(keys.PGD), keys.MCE, keys.ERROR,
              keys.ROBUST_ERROR, keys.PGD_ROBUST_ERROR)
    others = (keys.class_sd(keys.PGD), keys.MCE_NORMALIZED, keys.MCE_ALEXNET, keys.count(keys.PGD), keys.SD)
    assert all(keys.is_error(k) for k in errors) and not any(keys.is_error(k) for k in others)
    assert [is_error(Measured(k, k, 1.0)) for k in errors + others] == [True] * len(errors) + [False] * len(others)
    assert not is_error(Measured(keys.CLEAN_N, "n", 5, unit=""))  # a count is never converted
    info = json.loads((Path(__file__).parents[1] / "docs/data/demo/model_info/digits_adv.json").read_text())
    validate_model_info(info, "demo")
    for key, bad in ((keys.worst_class(keys.PGD), True), (keys.PGD_ERROR, True), (keys.class_sd(keys.PGD), False)):
        broken = copy.deepcopy(info)
        broken["labelaug"]["measured"][key] = float("inf")
        if bad:
            with pytest.raises(UserError, match=key):
                validate_model_info(broken, "demo")
        else:
            validate_model_info(broken, "demo")
