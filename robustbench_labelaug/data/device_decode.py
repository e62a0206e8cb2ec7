"""``runtime.decode: gpu``: folder images decoded, resized and cropped in batches on the evaluation device.

The default (``decode: cpu``) is the reference: DataLoader workers open each file with PIL and run the dataset's
transform (timm's eval transform: resize the shorter side to ``input_size / crop_pct``, centre crop, ToTensor).
With ``decode: gpu`` the workers only read the files' bytes (:class:`EncodedFiles`); the evaluation process then
decodes a whole batch with ``torchvision.io.decode_jpeg(..., device=ctx.device)`` (nvJPEG on CUDA, libjpeg-turbo
on a CPU device, which is what the tests run) and applies the same resize / centre crop as tensor operations on
the device (:class:`DeviceDecoder`), images of equal size resized together. Resampling follows PIL's (antialiased
bilinear / bicubic, the width first, then the height, each pass rounded to 8 bits as PIL's uint8 images are), so
the pixels differ from the PIL path by at most one grey level in 255, on well under 1 % of the pixels on the CPU
(fixed-point rounding; nvJPEG's IDCT differs a little more; measured in docs/gpu-decode.md).

Files that are not complete JPEGs (PNG, a JPEG without its end marker) and JPEGs the batched decoder refuses
(e.g. CMYK on nvJPEG) are decoded by PIL from the same bytes, so they still work; a file PIL cannot decode either
stops the run with the folder path's one-line :class:`~robustbench_labelaug.data.folder.BadImageError` naming it.

Datasets that are not image files (CIFAR arrays, generated corruptions) or whose transform has a step other than
Resize / CenterCrop / ToTensor / Normalize are loaded as usual (:func:`encoded_source` returns None).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from .folder import BadImageError, ImageFolderDataset, bad_image_message

JPEG_START = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"

Sample = tuple[str, int]  # (file path, label)


# ----------------------------------------------------------------------------------------------------------------
# which files, which transform
# ----------------------------------------------------------------------------------------------------------------


def _lookup(dataset: Dataset) -> tuple[Callable[[int], Sample], object] | None:
    """``(index -> (path, label), transform)`` for a folder dataset or a wrapper around one, else None."""
    # deferred: torch (kept out of the CLI's start)
    from .corruptions import AlignedDataset

    if isinstance(dataset, ImageFolderDataset):
        samples, target_transform = dataset.reader.samples, dataset.target_transform

        def get(i: int) -> Sample:
            path, target = samples[i]
            if target is None:
                target = -1
            elif target_transform is not None:
                target = target_transform(target)
            return str(path), int(target)

        return get, dataset.transform
    if isinstance(dataset, AlignedDataset):
        inner = _lookup(dataset.dataset)
        if inner is None:
            return None
        positions = dataset.positions
        return (lambda i: inner[0](positions[int(i)])), inner[1]
    if isinstance(dataset, Subset):
        inner = _lookup(dataset.dataset)
        if inner is None:
            return None
        indices = dataset.indices
        return (lambda i: inner[0](indices[int(i)])), inner[1]
    return None


@dataclass(frozen=True)
class TensorTransform:
    """The eval transform's steps as tensor operations: ``geometry`` (torchvision Resize / CenterCrop modules,
    run on 0..255 float images, rounded after each resize) then /255 and the Normalize steps."""

    geometry: tuple
    normalize: tuple

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: uint8 ``(B, C, H, W)`` images of one size -> float ``(B, C, h, w)`` in the transform's range."""
        from torchvision.transforms import CenterCrop, Resize
        from torchvision.transforms import functional as F

        out = x.float()
        for step in self.geometry:
            if isinstance(step, Resize):
                # as PIL resizes an 8-bit image: the width first, rounded to 8 bits, then the height, rounded
                height, width = resized_size(out.shape[-2], out.shape[-1], step.size, step.max_size)
                for size in ((out.shape[-2], width), (height, width)):
                    if tuple(out.shape[-2:]) != size:
                        out = F.resize(out, list(size), step.interpolation, antialias=True).round_().clamp_(0, 255)
            elif isinstance(step, CenterCrop):
                out = F.center_crop(out, list(step.size))
        out = out.div_(255.0)
        for step in self.normalize:
            out = F.normalize(out, step.mean, step.std)
        return out


def resized_size(height: int, width: int, size, max_size: int | None = None) -> tuple[int, int]:
    """``(height, width)`` after torchvision's ``Resize(size, max_size=max_size)`` of a ``height x width`` image
    (an int or a 1-element size: the shorter side; a pair: exactly that)."""
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    target = int(size[0] if isinstance(size, (list, tuple)) else size)
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = target, int(target * long / short)
    if max_size is not None and new_long > max_size:
        new_short, new_long = int(max_size * new_short / new_long), int(max_size)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def tensor_transform(transform) -> TensorTransform | None:
    """The dataset's eval transform as a :class:`TensorTransform`, or None where it has another step (then the
    images are decoded on the CPU as usual)."""
    from torchvision import transforms as T

    steps = list(getattr(transform, "transforms", [transform] if transform is not None else []))
    geometry, normalize, to_tensor = [], [], False
    for step in steps:
        if isinstance(step, (T.Resize, T.CenterCrop)) and not to_tensor:
            if isinstance(step, T.Resize) and step.antialias is False:
                return None
            geometry.append(step)
        elif isinstance(step, T.ToTensor):  # also timm's MaybeToTensor (timm's own ToTensor does not rescale)
            to_tensor = True
        elif isinstance(step, T.Normalize) and to_tensor:
            normalize.append(step)
        else:
            return None
    return TensorTransform(tuple(geometry), tuple(normalize)) if to_tensor else None


# ----------------------------------------------------------------------------------------------------------------
# loader side: the workers read bytes
# ----------------------------------------------------------------------------------------------------------------


class EncodedFiles(Dataset):
    """``(file bytes as a uint8 tensor, label, index, path)`` of ``samples[i]`` (what the loader workers do)."""

    def __init__(self, samples: Sequence[Sample], indices: Sequence[int]) -> None:
        self.samples, self.indices = list(samples), [int(i) for i in indices]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        return torch.from_numpy(np.fromfile(path, dtype=np.uint8)), label, self.indices[i], path


def collate_encoded(batch):
    """One flat uint8 buffer (one pinned copy, not one per file), the files' end offsets, labels, indices, paths."""
    datas, labels, indices, paths = zip(*batch)
    ends = torch.tensor(np.cumsum([len(d) for d in datas]), dtype=torch.int64)
    return torch.cat(datas), ends, torch.tensor(labels, dtype=torch.int64), torch.tensor(indices), list(paths)


def encoded_source(dataset: Dataset, shard: Sequence[int]) -> tuple[EncodedFiles, TensorTransform] | None:
    """The files of ``dataset[shard]`` as an :class:`EncodedFiles` and the transform to apply on the device, or
    None when ``dataset`` is not an image folder (or its transform has no tensor equivalent)."""
    found = _lookup(dataset)
    if found is None:
        return None
    lookup, transform = found
    steps = tensor_transform(transform)
    if steps is None:
        return None
    if getattr(_root(dataset), "input_img_mode", "RGB") not in (None, "RGB"):
        return None
    return EncodedFiles([lookup(i) for i in shard], shard), steps


def _root(dataset):
    while not isinstance(dataset, ImageFolderDataset) and hasattr(dataset, "dataset"):
        dataset = dataset.dataset
    return dataset


# ----------------------------------------------------------------------------------------------------------------
# device side: decode and transform a batch
# ----------------------------------------------------------------------------------------------------------------


def is_complete_jpeg(data: torch.Tensor) -> bool:
    """Starts with a JPEG's SOI marker and ends (trailing zero bytes aside) with its EOI marker: a truncated JPEG
    goes to PIL, which refuses it as the CPU path does."""
    n = len(data)
    if n < 4 or bytes(data[:3].tolist()) != JPEG_START:
        return False
    tail = bytes(data[max(0, n - 64):].tolist()).rstrip(b"\x00")
    return tail.endswith(JPEG_END)


def pil_decode(data: torch.Tensor, path: str) -> torch.Tensor:
    """The image in ``data`` decoded by PIL as the CPU path does (RGB uint8 ``(3, H, W)``), or the folder path's
    one-line :class:`BadImageError` naming ``path``."""
    from PIL import Image

    try:
        if len(data) == 0:
            raise BadImageError(bad_image_message(path, "empty file"))
        with Image.open(io.BytesIO(data.numpy().tobytes())) as img:
            img.load()
            rgb = np.array(img.convert("RGB"))
    except BadImageError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, ... for damaged files
        reason = " ".join(str(exc).split())[:80] or type(exc).__name__
        raise BadImageError(bad_image_message(path, reason)) from None
    return torch.from_numpy(rgb).permute(2, 0, 1)


class DeviceDecoder:
    """Turns a batch of :func:`collate_encoded` into ``(x, y, index)`` on ``device``: complete JPEGs decoded in
    one ``decode_jpeg`` call on the device, the rest by PIL; then the :class:`TensorTransform`, images of one size
    together. ``stats`` counts the files each way went (``jpeg_device``, ``pil``)."""

    def __init__(self, transform: TensorTransform, device: torch.device | str) -> None:
        self.transform, self.device = transform, torch.device(device)
        self.stats = {"jpeg_device": 0, "pil": 0}

    def decode(self, datas: list[torch.Tensor], paths: Sequence[str]) -> list[torch.Tensor]:
        """uint8 ``(3, H, W)`` images on the device, in order."""
        from torchvision.io import ImageReadMode, decode_jpeg

        images: list[torch.Tensor | None] = [None] * len(datas)
        jpeg = [i for i, d in enumerate(datas) if is_complete_jpeg(d)]
        if jpeg:
            try:
                decoded = decode_jpeg([datas[i] for i in jpeg], mode=ImageReadMode.RGB, device=self.device)
            except RuntimeError:  # one bad file fails the batch: decode one by one, the refused ones by PIL
                decoded = []
                for i in jpeg:
                    try:
                        decoded.append(decode_jpeg(datas[i], mode=ImageReadMode.RGB, device=self.device))
                    except RuntimeError:
                        decoded.append(None)
            for i, img in zip(jpeg, decoded):
                images[i] = img
        for i, img in enumerate(images):
            if img is None:
                images[i] = pil_decode(datas[i], paths[i]).to(self.device, non_blocking=True)
                self.stats["pil"] += 1
            else:
                self.stats["jpeg_device"] += 1
        return images

    def images(self, datas: list[torch.Tensor], paths: Sequence[str]) -> torch.Tensor:
        """The transformed batch ``(B, 3, h, w)`` (float) on the device."""
        images = self.decode(datas, paths)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(tuple(img.shape), []).append(i)
        out: list[torch.Tensor | None] = [None] * len(images)
        for members in groups.values():
            done = self.transform(torch.stack([images[i] for i in members]))
            for i, x in zip(members, done):
                out[i] = x
        return torch.stack(out)

    def __call__(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat, ends, labels, indices, paths = batch
        starts = [0, *ends[:-1].tolist()]
        datas = [flat[s:e] for s, e in zip(starts, ends.tolist())]
        x = self.images(datas, paths)
        return x, labels.to(self.device, non_blocking=True), indices.to(self.device, non_blocking=True)


_NOTED: set[str] = set()


def device_batches(dataset: Dataset, shard: Sequence[int], *, batch_size: int, num_workers: int,
                   device: torch.device) -> tuple[DataLoader, DeviceDecoder] | None:
    """A DataLoader of this rank's ``shard`` whose workers read file bytes, and the :class:`DeviceDecoder` that
    turns each of its batches into ``(x, y, index)`` on ``device``; None (with a one-time note) when ``dataset``
    is not a folder of image files the device path can transform: it is then loaded as usual."""
    source = encoded_source(dataset, shard)
    if source is None:
        kind = type(dataset).__name__
        if kind not in _NOTED:
            _NOTED.add(kind)
            warnings.warn(f"runtime.decode gpu: {kind} is not a folder of image files with a resize/crop transform: "
                          "its images are decoded on the CPU as usual", stacklevel=2)
        return None
    files, transform = source
    device = torch.device(device)
    loader = DataLoader(files, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_encoded, pin_memory=device.type == "cuda")
    return loader, DeviceDecoder(transform, device)
