"""attacks.MarginPGD and dlr_loss against pyautoattack's DLR loss and torchattacks' PGD; the gradient probe."""

from __future__ import annotations

import types

import pytest
import torch
import torchattacks
import torchattacks.attacks.pgd
from pyautoattack.autopgd_base import APGDAttack
from torch import nn

from robustbench_labelaug import UserError
from robustbench_labelaug.attacks import MarginPGD, dlr_loss
from robustbench_labelaug.attacks.gradient_probe import gradient_problem, require_input_gradient

from .masked_models import Detached, InputIgnored, Scaled
from .robust_fixtures import train_digits_mlp


@pytest.fixture(scope="module")
def net(digits_train):
    """A small MLP after 3 clean epochs on digits, in data order (well under a second)."""
    return train_digits_mlp(digits_train, hidden=32, epochs=3, lr=0.05, shuffle=False)


def test_dlr_loss_equals_pyautoattack():
    torch.manual_seed(0)
    logits = torch.randn(200, 10) * 3
    labels = torch.randint(0, 10, (200,))
    ref = APGDAttack.dlr_loss(None, logits, labels)
    assert torch.allclose(dlr_loss(logits, labels), ref, atol=1e-6)
    # scale and shift invariant; positive exactly where misclassified
    assert torch.allclose(dlr_loss(1e4 * logits + 7.0, labels), ref, atol=1e-5)
    assert torch.equal(dlr_loss(logits, labels) > 0, logits.argmax(1) != labels)
    with pytest.raises(ValueError, match="3 logits"):
        dlr_loss(logits[:, :2], labels % 2)


class _MeanDLR:
    """Stands in for ``nn.CrossEntropyLoss()`` inside torchattacks.PGD: the mean DLR loss."""

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return APGDAttack.dlr_loss(None, logits, labels).mean()


def test_margin_pgd_equals_torchattacks_pgd_on_the_dlr_loss(net, digits_test, monkeypatch, one_thread):
    """torchattacks.PGD with its cross entropy replaced by the DLR loss, run for t = 0..steps steps from the same
    random start: MarginPGD returns, per image, the first of these iterates the model misclassifies (else the
    last one)."""
    x, y = (t[:64] for t in digits_test.tensors)
    kw = dict(eps=0.08, alpha=0.02, random_start=True)
    steps = 6
    torch.manual_seed(1)
    ours = MarginPGD(net, steps=steps, **kw)(x, y)
    monkeypatch.setattr(torchattacks.attacks.pgd, "nn", types.SimpleNamespace(CrossEntropyLoss=_MeanDLR))
    refs = []
    for t in range(steps + 1):
        torch.manual_seed(1)
        refs.append(torchattacks.PGD(net, steps=t, **kw)(x, y))
    refs = torch.stack(refs)  # (steps + 1, N, C, H, W)
    with torch.no_grad():
        fooled = torch.stack([net(r).argmax(1) != y for r in refs])  # (steps + 1, N)
    first = torch.where(fooled.any(0), fooled.float().argmax(0), torch.full_like(y, steps))
    expected = refs[first, torch.arange(len(y))]
    assert 0 < int(fooled.any(0).sum()) < len(y)  # some points broken, some not
    assert int((first < steps).sum()) > 0  # some broken before the last step
    assert torch.allclose(ours, expected, atol=1e-6)
    assert (ours - x).abs().amax() <= kw["eps"] + 1e-6 and ours.min() >= 0 and ours.max() <= 1


def test_margin_pgd_is_scale_invariant_where_ce_pgd_is_not(net, digits_test, one_thread):
    """Logits x 1e4 saturate the softmax: the CE attack loses its gradient, the margin attack does not."""
    x, y = (t[:96] for t in digits_test.tensors)
    kw = dict(eps=0.08, alpha=0.02, steps=10)

    def accuracy(model, attack) -> float:
        gen = torch.Generator().manual_seed(0)
        adv = attack(model, **kw)(x, y, generator=gen) if attack is MarginPGD else attack(model, **kw)(x, y)
        with torch.no_grad():
            return (model(adv).argmax(1) == y).float().mean().item()

    plain, scaled = accuracy(net, MarginPGD), accuracy(Scaled(net, 1e4), MarginPGD)
    assert scaled == pytest.approx(plain, abs=0.02)
    torch.manual_seed(0)
    ce_plain = accuracy(net, torchattacks.PGD)
    torch.manual_seed(0)
    ce_scaled = accuracy(Scaled(net, 1e4), torchattacks.PGD)
    assert ce_scaled > ce_plain + 0.2 and ce_scaled > plain + 0.2


def test_gradient_probe(net, digits_test):
    x = digits_test.tensors[0][:2]
    assert gradient_problem(net, x) is None
    assert gradient_problem(nn.Sequential(net, nn.Sigmoid()), x) is None
    assert "do not require grad" in gradient_problem(Detached(net), x)
    assert "do not depend on the input" in gradient_problem(InputIgnored(net), x)
    with torch.no_grad():  # the probe works inside an evaluation's no_grad too
        assert gradient_problem(net, x) is None
    with pytest.raises(UserError, match="pgd: no gradient reaches the input") as err:
        require_input_gradient(Detached(net), x, "pgd")
    assert "\n" not in str(err.value) and "masking" in str(err.value)
