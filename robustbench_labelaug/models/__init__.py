"""Models: timm networks behind input normalisation, the K-way view, and the tiny digits ResNet."""

from . import cifar, tiny_resnet  # noqa: F401  (register the CIFAR architectures and resnet8_tiny with timm)
from .classifier import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageClassifier,
    InputNormalize,
    KWayClassifier,
    create_classifier,
    k_way,
    unwrap_model,
)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageClassifier", "InputNormalize", "KWayClassifier",
           "create_classifier", "k_way", "unwrap_model"]
