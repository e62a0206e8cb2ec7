"""``resnet8_tiny``: a timm-registered ResNet for 32x32 inputs that adversarially trains in seconds on a CPU.

Stem: 3x3 stride-2 conv (the digits are 8x8 upsampled to 32x32, so nothing is lost); then three timm
``BasicBlock`` stages of 16/32/64 channels; global average pool; linear head. ~78k parameters."""

from __future__ import annotations

from timm.models import register_model
from timm.models.resnet import BasicBlock
from torch import nn

from ..data import create_dataset
from ..errors import UserError


class TinyResNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 3, channels: tuple[int, ...] = (16, 32, 64),
                 stem_stride: int = 2, **_: object) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(nn.Conv2d(in_chans, channels[0], 3, stem_stride, 1, bias=False),
                                  nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        blocks, width = [], channels[0]
        for i, out in enumerate(channels):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or width != out:
                down = nn.Sequential(nn.Conv2d(width, out, 1, stride, bias=False), nn.BatchNorm2d(out))
            blocks.append(BasicBlock(width, out, stride=stride, downsample=down))
            width = out
        self.stages = nn.Sequential(*blocks)
        self.num_features = width
        self.fc = nn.Linear(width, num_classes)
        self.pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "input_size": (3, 32, 32)}

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x):
        return self.stages(self.stem(x))

    def forward_head(self, x, pre_logits: bool = False):
        x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


@register_model
def resnet8_tiny(pretrained: bool = False, **kwargs) -> TinyResNet:
    """ResNet-8 for 32x32 inputs (digits default). There are no pretrained weights."""
    if pretrained:
        raise UserError("resnet8_tiny has no pretrained weights: drop --pretrained")
    kwargs.pop("pretrained_cfg", None)
    kwargs.pop("pretrained_cfg_overlay", None)
    return TinyResNet(**kwargs)


def train_tiny_digits(epochs: int = 2, *, seed: int = 0, shuffle: bool = True, num_ops: int = 1,
                      lr: float = 0.05, batch_size: int = 64) -> nn.Module:
    """``resnet8_tiny`` (K=10, M=``num_ops``) after a few clean SGD epochs on the digits training split, in eval
    mode: a small model with informative gradients for tests and benchmarks (~1 s per epoch on a CPU).
    Deterministic for a given ``seed``; ``shuffle`` draws a new batch order per epoch (else the data order)."""
    import torch
    import torch.nn.functional as F

    # deferred: torch (kept out of the CLI's start)
    from .classifier import create_classifier

    torch.manual_seed(seed)
    model = create_classifier("resnet8_tiny", 10, num_ops)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x, y = create_dataset("digits", split="train").tensors
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y)) if shuffle else torch.arange(len(y))
        for i in range(0, len(y) - batch_size + 1, batch_size):
            b = order[i:i + batch_size]
            loss = F.cross_entropy(model(x[b])[:, :10], y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()
