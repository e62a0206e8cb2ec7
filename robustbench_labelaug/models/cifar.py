"""CIFAR architectures registered with timm, so ``rbla train --model <name>`` and zoo entries can name them:

- ``preactresnet18_cifar``: RobustBench's ``PreActResNet18`` (``robustbench.model_zoo.architectures.resnet``), the
  network of most CIFAR-10 adversarial-training papers (Rice et al. 2020, Wong et al. 2020, Wei et al. 2023);
- ``wideresnet28_10_cifar``: RobustBench's ``WideResNet(depth=28, widen_factor=10)``
  (``robustbench.model_zoo.architectures.wide_resnet``, its ``Standard`` model);
- ``resnet18_cifar``: timm's ``resnet18`` with the CIFAR stem (3x3 stride-1 first convolution, no max-pool).

They are imported from RobustBench / timm, not rewritten. The K+M head is the network's own last linear layer
(``num_classes`` = K+M). ``pretrained_cfg`` carries the CIFAR-10 training statistics, which ``create_classifier``
puts in front of the network (normalisation inside the model, inputs in [0,1]). There are no pretrained weights.
"""

from __future__ import annotations

from timm.models import register_model
from torch import nn

from ..compat import import_robustbench
from ..errors import UserError

CIFAR_PRETRAINED_CFG = {"mean": (0.4914, 0.4822, 0.4465), "std": (0.2471, 0.2435, 0.2616), "input_size": (3, 32, 32),
                        "num_classes": 10, "crop_pct": 1.0, "interpolation": "bilinear"}


def _no_pretrained(name: str, pretrained: bool, kwargs: dict) -> int:
    if pretrained:
        raise UserError(f"{name} has no pretrained weights: drop --pretrained")
    if kwargs.get("in_chans", 3) != 3:
        raise UserError(f"{name} takes 3-channel images")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "in_chans", "drop_rate", "drop_path_rate"):
        kwargs.pop(key, None)
    return int(kwargs.pop("num_classes", 10))


def _with_cfg(net: nn.Module, num_classes: int) -> nn.Module:
    net.pretrained_cfg = {**CIFAR_PRETRAINED_CFG, "num_classes": num_classes}
    net.num_classes = num_classes
    return net


def _rb_architectures(module: str):
    import_robustbench()
    import importlib

    return importlib.import_module(f"robustbench.model_zoo.architectures.{module}")


@register_model
def preactresnet18_cifar(pretrained: bool = False, **kwargs) -> nn.Module:
    """RobustBench's PreAct ResNet-18 for 32x32 inputs."""
    k = _no_pretrained("preactresnet18_cifar", pretrained, kwargs)
    rn = _rb_architectures("resnet")
    return _with_cfg(rn.PreActResNet(rn.PreActBlock, [2, 2, 2, 2], num_classes=k), k)


@register_model
def wideresnet28_10_cifar(pretrained: bool = False, **kwargs) -> nn.Module:
    """RobustBench's WideResNet-28-10 (its CIFAR ``Standard`` architecture)."""
    k = _no_pretrained("wideresnet28_10_cifar", pretrained, kwargs)
    wrn = _rb_architectures("wide_resnet")
    return _with_cfg(wrn.WideResNet(depth=28, widen_factor=10, num_classes=k), k)


@register_model
def resnet18_cifar(pretrained: bool = False, **kwargs) -> nn.Module:
    """timm's resnet18 with the CIFAR stem: conv 3x3 stride 1 (64 channels), no max-pool."""
    import timm

    k = _no_pretrained("resnet18_cifar", pretrained, kwargs)
    net = timm.create_model("resnet18", pretrained=False, num_classes=k)
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return _with_cfg(net, k)

