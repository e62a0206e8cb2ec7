"""timm's random erasing (``--reprob``) fills patches with normal noise in normalised space, i.e. outside the [0,1]
image range: the hook names it when it refuses such a batch, and with ``clip_input=True`` attacks the clipped image
and keeps the erased noise."""

from __future__ import annotations

import pytest
import timm
import torch
from timm.data.random_erasing import RandomErasing

from robustbench_labelaug import AdvLabelAug, UserError

K, M, EPS = 3, 1, 0.05
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _erased_batch(n=8, seed=0):
    """Normalised [0,1] images after timm's RandomErasing (pixel mode: per-pixel normal noise), as in train.py."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(n, 3, 32, 32, generator=g)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    normalised = (pixels - mean) / std
    torch.manual_seed(seed)
    erased = RandomErasing(probability=1.0, mode="pixel", device="cpu")(normalised.clone())
    return erased, torch.randint(K, (n,), generator=g), mean, std


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return timm.create_model("resnet8_tiny", num_classes=K + M).eval()


def test_erased_batch_is_refused_with_a_message_naming_random_erasing(model):
    x, y, mean, std = _erased_batch()
    assert ((x * std + mean) < -0.01).any()  # the erased noise leaves the image range
    hook = AdvLabelAug(model, K, eps=EPS, steps=2, mean=MEAN, std=STD)
    with pytest.raises(UserError) as err:
        hook(x, y)
    message = str(err.value)
    assert "\n" not in message and "random erasing" in message and "--reprob 0" in message
    assert "clip_input=True" in message and "pass mean=/std=" not in message  # mean/std were passed


def test_unnormalised_batch_without_mean_std_still_asks_for_them(model):
    x, y, _, _ = _erased_batch()
    with pytest.raises(UserError, match="pass mean=/std="):
        AdvLabelAug(model, K, eps=EPS, steps=2)(x, y)


@pytest.mark.parametrize("mode", ["adv", "adv_plus"])
def test_clip_input_attacks_the_image_and_keeps_the_erasing(mode):
    torch.manual_seed(0)
    model = timm.create_model("resnet8_tiny", num_classes=K + (M if mode == "adv_plus" else 0)).eval()
    x, y, mean, std = _erased_batch()
    hook = AdvLabelAug(model, K, mode=mode, eps=EPS, steps=3, mean=MEAN, std=STD, clip_input=True,
                       protocol="adversarial")  # every row attacked
    out, target = hook(x, y)
    assert target.shape == (len(y), K + (M if mode == "adv_plus" else 0))
    pixels, out_pixels = x * std + mean, out * std + mean
    delta = out_pixels - pixels
    assert delta.abs().max() <= EPS + 1e-5 and delta.abs().max() > EPS / 2  # within eps, and attacked
    erased = (pixels < 0) | (pixels > 1)
    # erased pixels keep timm's noise (moved by at most eps); the image pixels stay inside [0,1]
    assert (out_pixels[erased] - pixels[erased]).abs().max() <= EPS + 1e-5
    assert ((out_pixels < -0.01) | (out_pixels > 1.01)).any()
    inside = out_pixels[~erased]
    assert inside.min() >= -1e-5 and inside.max() <= 1 + 1e-5
    # the perturbation is an attack on the (clipped) image: the K-way loss goes up
    with torch.no_grad():
        clean_loss = torch.nn.functional.cross_entropy(model(x)[:, :K], y)
        adv_loss = torch.nn.functional.cross_entropy(model(out)[:, :K], y)
    assert adv_loss > clean_loss


def test_clip_input_changes_nothing_for_batches_inside_the_range(model):
    g = torch.Generator().manual_seed(1)
    pixels = torch.rand(6, 3, 32, 32, generator=g)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    x, y = (pixels - mean) / std, torch.randint(K, (6,), generator=g)
    outs = []
    for clip in (False, True):
        torch.manual_seed(3)
        outs.append(AdvLabelAug(model, K, eps=EPS, steps=2, mean=MEAN, std=STD, clip_input=clip)(x, y)[0])
    assert torch.equal(outs[0], outs[1])
