"""Gradient-masking checks: a normal model passes, deliberately masked models fail the right checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from robustbench_labelaug import UserError
from robustbench_labelaug.evaluation import EvalContext, create_evaluator
from robustbench_labelaug.evaluation.masking import MaskingChecks, max_rise

from .robust_fixtures import trained_resnet8_digits

CTX = dict(num_classes=10, progress=False, batch_size=128)


class Round(nn.Module):
    """8-bit quantisation without a straight-through estimator: the forward pass is (almost) the identity, the
    gradient is exactly zero (Athalye et al.'s shattered gradients)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 255) / 255


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
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x, y = digits_train.tensors
    for _ in range(5):
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 64):
            b = perm[i:i + 64]
            loss = F.cross_entropy(net(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def test64(digits_test):
    return TensorDataset(*(t[:64] for t in digits_test.tensors))


def checks_of(result) -> dict[str, dict]:
    return {c["name"]: c for c in result.details["checks"]}


@pytest.mark.slow
def test_normal_model_passes_masked_model_fails(mlp, test64, one_thread):
    """eps 0.1 (PGD leaves ~25 % of the normal MLP standing). The rounding front end leaves the forward pass
    unchanged but zeroes every gradient: PGD cannot move beyond its random start, so accuracy stays high even at
    eps 0.5, and AutoAttack's black-box Square attack gets far below PGD."""
    settings = dict(eps=0.1, steps=20, steps_sweep=[5, 10, 20, 40], n_examples=64, autoattack_n=32)
    normal = create_evaluator("masking", **settings).run(mlp, test64, EvalContext(**CTX))
    checks = checks_of(normal)
    assert normal.metrics["failed_checks"] == 0, normal.details["checks"]
    assert set(checks) == {"eps_sweep_monotone", "large_eps_near_zero", "steps_sweep_monotone",
                           "autoattack_not_weaker_than_pgd", "pgd_close_to_autoattack"}
    assert "k_way_attack_not_weaker_than_full_head" in normal.details["skipped"]  # M = 0
    assert 5.0 < checks["steps_sweep_monotone"]["robust_accuracy"][-1] < 80.0  # non-trivial
    assert checks["eps_sweep_monotone"]["eps"] == [0.05, 0.1, 0.2, 0.4, 0.5]
    assert normal.metrics["passed_checks"] == 5 and normal.protocol == "sound"

    masked = create_evaluator("masking", **settings).run(nn.Sequential(Round(), mlp).eval(), test64,
                                                         EvalContext(**CTX))
    checks = checks_of(masked)
    assert set(masked.details["failed"]) >= {"large_eps_near_zero", "pgd_close_to_autoattack"}
    assert masked.metrics["failed_checks"] == len(masked.details["failed"]) >= 2
    assert checks["large_eps_near_zero"]["robust_accuracy"] > 50.0
    assert checks["pgd_close_to_autoattack"]["gap"] > 30.0


def test_k_way_attack_weaker_than_full_head_is_flagged(mlp, test64):
    """A K+M model whose K-way loss saturates hides the gradient from the default attack but not from the
    loss over all K+M logits: the check reports both and fails; a normal K+M model passes it."""
    settings = dict(eps=0.1, steps=10, eps_sweep=[0.1, 0.5], steps_sweep=[10], autoattack=False, n_examples=64)
    saturated = create_evaluator("masking", **settings).run(SaturatedKWay(mlp).eval(), test64, EvalContext(**CTX))
    check = checks_of(saturated)["k_way_attack_not_weaker_than_full_head"]
    assert not check["passed"] and check["num_ops"] == 1
    assert check["k_way_robust_accuracy"] > check["full_head_robust_accuracy"] + 20.0
    assert "pgd_close_to_autoattack" in saturated.details["skipped"]

    normal = create_evaluator("masking", **settings).run(trained_resnet8_digits(), test64, EvalContext(**CTX))
    assert checks_of(normal)["k_way_attack_not_weaker_than_full_head"]["passed"]


def test_masking_cache_resume(mlp, test64, tmp_path, monkeypatch):
    settings = dict(eps=0.1, steps=5, eps_sweep=[0.1, 0.5], steps_sweep=[2, 5], autoattack=False, n_examples=16)
    ctx = EvalContext(**CTX, out_dir=tmp_path)
    first = create_evaluator("masking", **settings).run(mlp, test64, ctx)
    assert len(list((tmp_path / "masking").glob("*.npz"))) == 3  # (0.1, 5), (0.5, 5), (0.1, 2)

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
    ({"eps": 0}, "eps"),
])
def test_masking_bad_settings(settings, match):
    with pytest.raises(UserError, match=match):
        create_evaluator("masking", **settings)


def test_large_eps_check_skipped_without_large_eps(mlp, test64):
    r = create_evaluator("masking", eps=0.05, steps=2, eps_sweep=[0.05, 0.1], steps_sweep=[2],
                         autoattack=False, n_examples=8).run(mlp, test64, EvalContext(**CTX))
    assert "large_eps_near_zero" in r.details["skipped"]
    assert set(checks_of(r)) == {"eps_sweep_monotone", "steps_sweep_monotone"}
