import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustbench_labelaug import AdvLabelAug, UserError, create_classifier, k_way


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return create_classifier("resnet8_tiny", 10, 1)


@pytest.fixture()
def batch(digits_train):
    x, y = digits_train.tensors
    return x[:32].clone(), y[:32].clone()


def test_pgd_batch_stays_within_eps_and_image_range(model, batch):
    x, y = batch
    hook = AdvLabelAug(model, 10, mode="adv_plus", eps=0.05, steps=5, protocol="adversarial")
    x_adv, target = hook(x, y)
    assert x_adv.shape == x.shape and target.shape == (32, 11)
    assert (x_adv - x).abs().max() <= 0.05 + 1e-6
    assert (x_adv - x).abs().max() > 0.04  # it moved (sign steps reach the boundary)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    torch.testing.assert_close(target.sum(1), torch.ones(32))
    assert torch.all(target[torch.arange(32), y] == 0.97) and torch.all(target[:, 10] == 0.03)


def test_adversarial_loss_exceeds_clean_loss(trained_digits_model, batch):
    x, y = batch
    model = trained_digits_model
    hook = AdvLabelAug(model, 10, mode="adv_plus", eps=0.1, steps=10, protocol="adversarial")
    x_adv, _ = hook(x, y)
    with torch.no_grad():
        k_way_model = k_way(model)
        clean_loss = F.cross_entropy(k_way_model(x), y)
        adv_loss = F.cross_entropy(k_way_model(x_adv), y)
    assert adv_loss > clean_loss + 0.1


def test_hook_restores_modes_and_requires_grad(model, batch):
    x, y = batch
    model.train()
    model.net.stem[1].eval()  # a frozen BN inside a training model
    model.net.fc.weight.requires_grad_(False)
    modes = {n: m.training for n, m in model.named_modules()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    for attack_mode in ("eval", "train"):
        AdvLabelAug(model, 10, eps=0.03, steps=2, attack_mode=attack_mode)(x, y)
        assert {n: m.training for n, m in model.named_modules()} == modes
        assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    model.eval()
    AdvLabelAug(model, 10, eps=0.03, steps=2)(x, y)
    assert not any(m.training for m in model.modules())


def test_eval_attack_mode_leaves_batchnorm_statistics_alone(model, batch):
    x, y = batch
    model.train()
    before = model.net.stem[1].running_mean.clone()
    AdvLabelAug(model, 10, eps=0.03, steps=3, attack_mode="eval", protocol="adversarial")(x, y)
    torch.testing.assert_close(model.net.stem[1].running_mean, before)
    AdvLabelAug(model, 10, eps=0.03, steps=3, attack_mode="train", protocol="adversarial")(x, y)
    assert not torch.allclose(model.net.stem[1].running_mean, before)


def test_modes_and_options(model, batch):
    x, y = batch
    std_model = create_classifier("resnet8_tiny", 10, 0)
    x_std, t_std = AdvLabelAug(std_model, 10, mode="std")(x, y)
    assert x_std is x and t_std.shape == (32, 10)
    x_adv, t_adv = AdvLabelAug(std_model, 10, mode="adv", eps=0.03, steps=2)(x, y)
    assert t_adv.shape == (32, 10) and not torch.equal(x_adv, x)
    x2, t2 = AdvLabelAug(model, 10, eps=0.03, steps=2, train_clean=True, protocol="adversarial")(x, y)
    assert x2.shape[0] == 64 and torch.equal(x2[:32], x)
    assert torch.all(t2[:32, 10] == 0) and torch.all(t2[32:, 10] == 0.03)
    x3, t3 = AdvLabelAug(model, 10, eps=0.03, steps=2, adv_prob=0.0, protocol="adversarial")(x, y)
    assert torch.equal(x3, x) and torch.all(t3[:, 10] == 0)


def test_several_transformation_labels_use_graded_strengths(batch):
    x, y = batch
    torch.manual_seed(1)
    model = create_classifier("resnet8_tiny", 10, 3)
    hook = AdvLabelAug(model, 10, eps=0.09, steps=3, num_ops=3, random_start=False, protocol="adversarial")
    x_adv, t = hook(x, y)
    ops = t[:, 10:].argmax(1)
    assert set(ops.tolist()) == {0, 1, 2}
    for j in range(3):
        dist = (x_adv[ops == j] - x[ops == j]).abs().amax(dim=(1, 2, 3))
        assert dist.max() <= 0.09 * (j + 1) / 3 + 1e-6


def test_normalised_batches_are_attacked_in_pixel_space(batch):
    """The timm train.py path: loader output is normalised and the model has no normalisation inside."""
    x, y = batch
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    torch.manual_seed(0)
    net = create_classifier("resnet8_tiny", 10, 1).net  # raw timm network: expects normalised input
    hook = AdvLabelAug(net, 10, eps=0.03, steps=3, mean=mean, std=std, protocol="adversarial")
    x_norm = (x - m) / s
    x_adv_norm, _ = hook(x_norm, y)
    pixels = x_adv_norm * s + m
    assert (pixels - x).abs().max() <= 0.03 + 1e-5
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    with pytest.raises(UserError, match="outside \\[0,1\\]"):
        AdvLabelAug(net, 10, eps=0.03, steps=1)(x_norm, y)  # normalised batch without mean/std


def test_distributed_wrapper_is_unwrapped(model, tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        ddp = nn.parallel.DistributedDataParallel(model)
        hook = AdvLabelAug(ddp, 10, eps=0.03, steps=1)
        assert hook.model is model
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("kwargs,match", [
    ({"eps": 0.0}, "eps"), ({"eps": 1.5}, "eps"), ({"steps": 0}, "steps"), ({"delta": 1.0}, "delta"),
    ({"delta": -0.1}, "delta"), ({"mode": "fgsm"}, "mode"), ({"adv_prob": 2.0}, "adv_prob"),
    ({"num_ops": 0}, "num_ops"), ({"attack_mode": "half"}, "attack mode"), ({"protocol": "paper"}, "protocol"),
    ({"la_p": 1.5}, "la_p"), ({"adv_prob": 0.5}, "adv_prob belongs to the adversarial protocol"),
    ({"train_clean": True}, "train_clean belongs to the adversarial protocol"),
    ({"mode": "std", "protocol": "authors"}, "applies to adv and adv_plus only"),
])
def test_bad_arguments(model, kwargs, match):
    with pytest.raises(UserError, match=match):
        AdvLabelAug(model, 10, **kwargs)


def test_bad_batches(model, batch):
    x, y = batch
    hook = AdvLabelAug(model, 10, eps=0.03, steps=1)
    with pytest.raises(UserError, match="outside"):
        hook(x * 255, y)
    with pytest.raises(UserError, match="integer class labels"):
        hook(x, F.one_hot(y, 10).float())
    wrong_head = create_classifier("resnet8_tiny", 10, 0)
    with pytest.raises(UserError, match="K\\+M=11"):
        AdvLabelAug(wrong_head, 10, eps=0.03, steps=1)(x, y)


def test_fp16_attack_moves_every_sample_of_a_mixed_batch_like_fp32(monkeypatch):
    """A 2-class linear net with bias (16, 0): the label-0 samples are confident (d loss / d logit ~ 1e-8), the
    label-1 ones are wrong (~0.1). With one loss scale per batch the confident samples' float16 gradient underflows
    and PGD never moves them; scaled per sample, float16 moves all 8 exactly as float32 does."""
    import robustbench_labelaug.hook.attack_model as hook_module

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    with torch.no_grad():
        net[1].weight.uniform_(-0.01, 0.01)
        net[1].bias.copy_(torch.tensor([16.0, 0.0]))
    x, y = torch.rand(8, 3, 4, 4) * 0.6 + 0.2, torch.tensor([0] * 4 + [1] * 4)

    def moved(dtype):
        hook = AdvLabelAug(net, 2, mode="adv", eps=0.03, steps=2, random_start=False, autocast_dtype=dtype)
        return hook(x, y)[0] - x

    reference = moved(None)  # float32: every sample moves by eps
    torch.testing.assert_close(reference.flatten(1).abs().amax(1), torch.full((8,), 0.03))
    fp16 = moved(torch.float16)
    assert torch.equal(torch.sign(fp16), torch.sign(reference))
    torch.testing.assert_close(fp16, reference)

    # what the per-batch scale did: only the unsure half moved
    real = hook_module._ScaleGradient.forward
    monkeypatch.setattr(hook_module._ScaleGradient, "forward",
                        staticmethod(lambda ctx, logits, per_sample=True: real(ctx, logits, False)))
    per_batch = moved(torch.float16).flatten(1).abs().amax(1)
    assert (per_batch[4:] > 0).all() and (per_batch[:4] == 0).any()
