"""``attacks.frozen_model``: eval-mode BatchNorm as an affine map gives the same outputs and input gradients,
the hook's attack is unchanged by it, and every module is restored afterwards."""

from __future__ import annotations

import timm
import torch

from robustbench_labelaug import AdvLabelAug
from robustbench_labelaug.attacks.frozen_model import batchnorm_as_affine, cudnn_autotune


def _model(num_classes: int = 11) -> torch.nn.Module:
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=num_classes)
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def _logits_and_grad(model, x):
    x = x.clone().requires_grad_(True)
    out = model(x)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    return out.detach(), grad


def test_affine_batchnorm_matches_eval_mode_outputs_and_input_gradients():
    model = _model().eval()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ref_out, ref_grad = _logits_and_grad(model, x)
    with batchnorm_as_affine(model) as swapped:
        out, grad = _logits_and_grad(model, x)
    assert swapped == sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) > 0
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-5)
    # restored: the class's own forward again, same results
    assert all("forward" not in m.__dict__ for m in model.modules())
    torch.testing.assert_close(_logits_and_grad(model, x)[0], ref_out)


def test_train_mode_batchnorm_is_left_alone_unless_asked():
    model = _model().train()
    with batchnorm_as_affine(model) as swapped:
        assert swapped == 0
    with batchnorm_as_affine(model, all_modules=True) as swapped:
        assert swapped > 0
    assert all("forward" not in m.__dict__ for m in model.modules())


def test_hook_attack_is_the_same_with_affine_batchnorm(monkeypatch):
    K = 10
    model = _model(K + 1).train()
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    y = torch.arange(8) % K
    hook = AdvLabelAug(model, K, mode="adv_plus", eps=0.03, steps=3, protocol="adversarial")  # every row attacked
    torch.manual_seed(3)
    fast, target = hook(x, y)
    import contextlib

    import robustbench_labelaug.hook.adv_label_aug as hook_module

    monkeypatch.setattr(hook_module, "batchnorm_as_affine", lambda *a, **k: contextlib.nullcontext())
    torch.manual_seed(3)
    slow, target_slow = hook(x, y)
    assert model.training and all("forward" not in m.__dict__ for m in model.modules())
    # sign steps can flip where a gradient entry is ~0 after rounding: nearly all pixels agree exactly
    agree = (fast - slow).abs() < 1e-6
    assert agree.float().mean() > 0.99
    assert (fast - slow).abs().max() <= 2 * 0.03 + 1e-6
    torch.testing.assert_close(target, target_slow)


def test_cudnn_autotune_is_restored():
    before = torch.backends.cudnn.benchmark
    with cudnn_autotune(not before):
        assert torch.backends.cudnn.benchmark is (not before)
    assert torch.backends.cudnn.benchmark is before
