"""The hook inside a loop written the way timm's train.py runs with --no-prefetcher: timm's loader normalises the
batch, ``mixup_fn(input, target)`` is where the hook sits, the timm model has K+M outputs (``--num-classes K+M``),
the loss is ``SoftTargetCrossEntropy`` and validation reads the first K logits."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.data import create_dataset, create_loader, resolve_data_config
from timm.loss import SoftTargetCrossEntropy
from timm.utils import accuracy

from robustbench_labelaug import AdvLabelAug


@pytest.fixture()
def image_folder(tmp_path, digits_train):
    """Three digit classes as PNG files in timm's folder layout."""
    x, y = digits_train.tensors
    for split, rows in (("train", range(0, 600)), ("validation", range(600, 900))):
        for i in rows:
            if int(y[i]) < 3:
                folder = tmp_path / split / f"class_{int(y[i])}"
                folder.mkdir(parents=True, exist_ok=True)
                img = (x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i:05d}.png")
    return tmp_path


def test_timm_train_loop_with_hook_as_mixup_fn(image_folder):
    k, m = 3, 1
    torch.manual_seed(0)
    model = timm.create_model("resnet8_tiny", num_classes=k + m)  # train.py: --num-classes K+M
    data_config = resolve_data_config({"input_size": (3, 32, 32), "crop_pct": 1.0}, model=model)
    train_ds = create_dataset("", root=str(image_folder), split="train", is_training=True)
    val_ds = create_dataset("", root=str(image_folder), split="validation")
    common = dict(input_size=data_config["input_size"], mean=data_config["mean"], std=data_config["std"],
                  use_prefetcher=False, num_workers=0, persistent_workers=False, device=torch.device("cpu"),
                  crop_pct=1.0)
    loader = create_loader(train_ds, batch_size=16, is_training=True, no_aug=True, **common)
    val_loader = create_loader(val_ds, batch_size=64, is_training=False, **common)
    mixup_fn = AdvLabelAug(model, num_classes=k, mode="adv_plus", eps=0.1, steps=3,
                           mean=data_config["mean"], std=data_config["std"])
    loss_fn = SoftTargetCrossEntropy()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    mean = torch.tensor(data_config["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(data_config["std"]).view(1, 3, 1, 1)

    losses = []
    for _epoch in range(3):
        model.train()
        for input, target in loader:  # train.py's train_one_epoch, prefetcher off
            input, target = input.to("cpu"), target.to("cpu")
            assert input.min() < 0  # timm's transforms normalised it
            clean = input
            if mixup_fn is not None:
                input, target = mixup_fn(input, target)
            assert target.shape == (input.shape[0], k + m) and model.training
            assert ((input - clean) * std).abs().max() <= 0.1 + 1e-4  # eps in pixel units
            assert (input * std + mean).min() >= -1e-4 and (input * std + mean).max() <= 1 + 1e-4
            output = model(input)
            loss = loss_fn(output, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3

    model.eval()
    correct = total = 0
    with torch.no_grad():
        for input, target in val_loader:  # train.py's validate, on the first K logits
            output = model(input)[:, :k]
            correct += accuracy(output, target, topk=(1,))[0].item() * input.size(0) / 100
            total += input.size(0)
    assert correct / total > 0.8
