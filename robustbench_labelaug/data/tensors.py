"""A dataset given as tensors: ``benchmark(model, dataset=(x, y))``, as RobustBench's ``clean_accuracy(model, x, y)``
takes them (``x`` float N x C x H x W in [0,1], ``y`` int64 labels).

:func:`tensor_data` checks the pair at the door (one :class:`UserError` line per problem, naming the fix), decides
K (``num_classes``, else ``max(y) + 1``) and the class names (``class_names``, else ``class_0`` ..
``class_{K-1}``), and fingerprints the content (:func:`tensors_fingerprint`: sha256 of both tensors' dtype, shape
and bytes), which the evaluation store keeps as the result's data fingerprint: changed tensors recompute, the same
tensors reuse, as changed files of a registered dataset do. The dataset's name is :data:`TENSORS_DATASET`
(``tensors``, never a registered name).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import TensorDataset

from ..errors import UserError
from ..results.rules import is_int
from .registry import TENSORS_DATASET

OWNER = "benchmark(dataset=(x, y))"


class TensorsDataset(TensorDataset):
    """``(image, label)`` pairs of in-memory tensors, with ``targets`` (the labels, for class-balanced selection)
    and ``classes`` (the class names) as the registered datasets have them."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, classes: Sequence[str]) -> None:
        super().__init__(x, y)
        self.targets = y
        self.classes = list(classes)

    def filename(self, index: int) -> str:
        return f"{TENSORS_DATASET}_{index:06d}"


@dataclass(frozen=True)
class TensorData:
    """Checked tensors: the dataset, K, the class names, where K came from and the content fingerprint."""

    dataset: TensorsDataset
    num_classes: int
    class_names: list[str]
    k_from_labels: bool
    fingerprint: str

    def describe(self) -> dict[str, Any]:
        """What model_info records of the data (``labelaug.data``): name, fingerprint, N, image shape, K."""
        x = self.dataset.tensors[0]
        return {"name": TENSORS_DATASET, "fingerprint": self.fingerprint, "n_examples": int(x.shape[0]),
                "image_shape": [int(s) for s in x.shape[1:]], "num_classes": self.num_classes}


def tensors_fingerprint(*tensors: torch.Tensor) -> str:
    """sha256 (first 16 hex digits, as the store's other fingerprints) over each tensor's dtype, shape and bytes."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():
            digest.update(memoryview(t.view(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()[:16]


def _fail(problem: str, fix: str) -> UserError:
    return UserError(f"{OWNER}: {problem}: {fix}")


def _labels(y: torch.Tensor, n: int) -> torch.Tensor:
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise _fail(f"y is {y.dtype}, not integer labels", "pass class indices as an integer tensor, e.g. y.long()")
    if y.dim() != 1:
        raise _fail(f"y has shape {tuple(y.shape)}, not N labels", "pass a 1-D tensor of N labels, e.g. y.view(-1)")
    if y.shape[0] != n:
        raise _fail(f"x holds {n} images but y {y.shape[0]} labels", "pass one label per image")
    return y.detach().cpu().long().contiguous()


def _images(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 4:
        fix = "add the channel axis, e.g. x.unsqueeze(1)" if x.dim() == 3 else "pass a batch of images N x C x H x W"
        raise _fail(f"x has shape {tuple(x.shape)}, not N x C x H x W", fix)
    if x.shape[0] == 0:
        raise _fail("x holds no images", "pass at least one image (N >= 1)")
    if not x.is_floating_point():
        raise _fail(f"x is {x.dtype}, not float images in [0,1]", "pass x.float() / 255 for 8-bit images")
    x = x.detach().cpu().float().contiguous()
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
        raise _fail(f"x holds NaN or infinite values ({bad} image(s))", "pass finite images in [0,1]")
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        raise _fail(f"x holds values in [{low:g}, {high:g}], outside [0,1]",
                    "pass images in [0,1] pixel units (normalisation inside the model, as RobustBench's; "
                    "e.g. x / 255, or undo the normalisation)")
    return x


def _class_names(names: Any, k: int, k_from_labels: bool) -> list[str]:
    if names is None:
        return [f"class_{c}" for c in range(k)]
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence) \
            or not all(isinstance(n, str) for n in names):
        raise _fail(f"class_names must be a list of K strings, got {type(names).__name__}",
                    "pass e.g. class_names=['cat', 'dog', ...] in class-index order")
    if len(names) != k:
        where = f"from y: labels 0..{k - 1}" if k_from_labels else "num_classes"
        raise _fail(f"class_names has {len(names)} names but K={k} ({where})",
                    f"pass {k} names" + (f", or num_classes={len(names)}" if k_from_labels and len(names) > k else ""))
    return [str(n) for n in names]


def tensor_data(dataset: Any, num_classes: Any = None, class_names: Any = None) -> TensorData:
    """The checked :class:`TensorData` of ``dataset = (x, y)``: ``x`` a float tensor N x C x H x W in [0,1]
    (stored as float32, on the CPU), ``y`` an integer tensor of N labels (stored as int64). K is ``num_classes``,
    else ``max(y) + 1`` (a class above every label of ``y`` is then not counted: pass ``num_classes``). One
    :class:`UserError` line per problem: not two tensors, a wrong rank, no images, x not float, outside [0,1] or
    not finite, y not integer, lengths that differ, a label outside 0..K-1, class names that are not K strings."""
    if not isinstance(dataset, (tuple, list)) or len(dataset) != 2:
        raise _fail(f"dataset is a {type(dataset).__name__}" + (f" of {len(dataset)} items" if isinstance(
            dataset, (tuple, list)) else ""), "pass a registered name (e.g. 'digits') or a pair (x, y) of tensors")
    x, y = dataset
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise _fail(f"{name} is a {type(t).__name__}, not a torch.Tensor", f"pass torch.as_tensor({name})")
    x = _images(x)
    y = _labels(y, x.shape[0])
    low, high = int(y.min()), int(y.max())
    if low < 0:
        raise _fail(f"y holds the label {low}", "labels are class indices 0..K-1")
    k_from_labels = num_classes is None
    if k_from_labels:
        k = high + 1
    else:
        if not is_int(num_classes) or num_classes < 1:
            raise _fail(f"num_classes must be an integer >= 1, got {num_classes!r}", "pass K, or leave it out "
                        "(K = max(y) + 1)")
        k = int(num_classes)
        if high >= k:
            raise _fail(f"y holds the label {high} but num_classes={k}",
                        f"pass labels 0..{k - 1}, or num_classes={high + 1}")
    names = _class_names(class_names, k, k_from_labels)
    return TensorData(TensorsDataset(x, y, names), k, names, k_from_labels, tensors_fingerprint(x, y))


__all__ = ["TENSORS_DATASET", "TensorData", "TensorsDataset", "tensor_data", "tensors_fingerprint"]
