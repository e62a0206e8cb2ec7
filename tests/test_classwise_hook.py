"""Class-wise epsilon and class-wise loss weights in AdvLabelAug, and per-sample epsilon in attacks.PGD (issue 20)."""

import pytest
import torch
import torch.nn.functional as F
from timm.loss import SoftTargetCrossEntropy

from robustbench_labelaug import AdvLabelAug, UserError, create_classifier, k_way
from robustbench_labelaug.attacks.pgd import PGD


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return create_classifier("resnet8_tiny", 10, 1).eval()


@pytest.fixture()
def batch(digits_train):
    x, y = digits_train.tensors
    return x[:16].clone(), y[:16].clone()


def test_per_sample_eps_keeps_each_sample_in_its_own_ball(model, batch):
    x, y = batch
    eps = torch.where(torch.arange(16) % 2 == 0, 0.02, 0.2)
    torch.manual_seed(1)
    adv = PGD(k_way(model), eps=0.2, alpha=0.05, steps=5)(x, y, eps=eps)
    dist = (adv - x).abs().flatten(1).amax(1)
    assert torch.all(dist <= eps + 1e-6)
    assert dist[0::2].max() > 0.015 and dist[1::2].min() > 0.1  # each reaches its own boundary
    assert adv.min() >= 0 and adv.max() <= 1


def test_per_sample_eps_equals_each_sample_attacked_alone(model, batch):
    """Without a random start the per-sample path is the scalar attack of each sample on its own (eval BN: the
    samples do not interact; the batch-mean loss only scales each sample's gradient, not its sign)."""
    x, y = batch
    x, y = x[:4], y[:4]
    eps = torch.tensor([0.05, 0.1, 0.15, 0.3])
    kway = k_way(model)
    together = PGD(kway, eps=0.3, alpha=0.03, steps=4, random_start=False)(x, y, eps=eps)
    for i in range(4):
        alone = PGD(kway, eps=float(eps[i]), alpha=0.03, steps=4, random_start=False)(x[i:i + 1], y[i:i + 1])
        torch.testing.assert_close(together[i:i + 1], alone, rtol=0, atol=1e-6)


def test_constant_eps_tensor_is_bit_identical_to_scalar_pgd(model, batch):
    x, y = batch
    kway = k_way(model)
    torch.manual_seed(3)
    scalar = PGD(kway, eps=0.25, alpha=0.05, steps=5)(x, y)
    torch.manual_seed(3)
    tensor = PGD(kway, eps=0.25, alpha=0.05, steps=5)(x, y, eps=torch.full((16,), 0.25, dtype=torch.float64))
    assert torch.equal(scalar, tensor)


@pytest.mark.parametrize("mode", ["adv", "adv_plus"])
def test_hook_with_constant_class_eps_is_bit_identical_to_today(mode, batch):
    x, y = batch
    torch.manual_seed(0)
    m = create_classifier("resnet8_tiny", 10, 1 if mode == "adv_plus" else 0)
    outs = []
    for class_eps in (None, [0.2] * 10):
        torch.manual_seed(5)
        hook = AdvLabelAug(m, 10, mode=mode, eps=0.2, steps=4, class_eps=class_eps)
        outs.append(hook(x, y))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


def test_hook_attacks_each_sample_at_its_class_eps(model, batch):
    x, y = batch
    class_eps = torch.linspace(0.02, 0.2, 10)
    hook = AdvLabelAug(model, 10, mode="adv_plus", eps=0.1, steps=5, alpha=0.05, class_eps=class_eps,
                       protocol="adversarial")
    x_adv, target = hook(x, y)
    dist = (x_adv - x).abs().flatten(1).amax(1)
    assert torch.all(dist <= class_eps[y].float() + 1e-6)
    assert torch.all(dist >= class_eps[y].float() - 0.011)  # alpha 0.05 sign steps reach each boundary
    assert hook.adv_rows == slice(0, 16)


def test_class_weight_scales_targets_and_gives_weighted_cross_entropy(model, batch):
    """w*t gives w*CE: SoftTargetCrossEntropy of the weighted targets equals the weighted mean of the per-sample
    cross entropies, recomputed here by hand from log_softmax."""
    x, y = batch
    weight = torch.arange(1, 11, dtype=torch.float64) / 5.5
    plain = AdvLabelAug(model, 10, mode="adv_plus", eps=0.1, steps=2, delta=0.03, protocol="adversarial")
    weighted = AdvLabelAug(model, 10, mode="adv_plus", eps=0.1, steps=2, delta=0.03, class_weight=weight,
                           protocol="adversarial")
    torch.manual_seed(2)
    x1, t1 = plain(x, y)
    torch.manual_seed(2)
    x2, t2 = weighted(x, y)
    assert torch.equal(x1, x2)
    torch.testing.assert_close(t2, t1 * weight.float()[y][:, None])
    logits = model(x2)
    logp = F.log_softmax(logits, dim=1)
    ce = torch.stack([-(0.97 * logp[i, y[i]] + 0.03 * logp[i, 10]) for i in range(16)])
    expected = (weight.float()[y] * ce).mean()
    torch.testing.assert_close(SoftTargetCrossEntropy()(logits, t2), expected)


def test_train_clean_reports_adversarial_rows(model, batch):
    x, y = batch
    m = create_classifier("resnet8_tiny", 10, 0)
    hook = AdvLabelAug(m, 10, mode="adv", eps=0.1, steps=1, train_clean=True, class_weight=[2.0] * 10)
    out, target = hook(x, y)
    assert hook.adv_rows == slice(16, 32) and out.shape[0] == 32
    torch.testing.assert_close(target.sum(1), torch.full((32,), 2.0))
    std = AdvLabelAug(m, 10, mode="std")
    std(x, y)
    assert std.adv_rows is None


@pytest.mark.parametrize("kwargs,match", [
    ({"class_eps": [0.1] * 9}, "9 entries but K=10"),
    ({"class_eps": [0.0] + [0.1] * 9}, "> 0"),
    ({"class_weight": [-1.0] + [1.0] * 9}, ">= 0"),
    ({"class_weight": [float("nan")] * 10}, "finite"),
])
def test_bad_class_params(model, kwargs, match):
    with pytest.raises(UserError, match=match):
        AdvLabelAug(model, 10, **kwargs)
