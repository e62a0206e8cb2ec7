"""Generated photo-like JPEG folders (ImageNet-layout, ImageNet-like sizes) for the device-decode tests, the
agreement measurement of docs/gpu-decode.md and bench/gpu_check.py's decode section.

Each image is smooth random colour fields (a 6x6..12x12 random grid upsampled bicubically) plus edges (a few
rectangles) plus mild pixel noise, saved as a JPEG at quality 90: content with both flat regions and sharp
edges, so resampling differences show as they would on photographs (white noise would exaggerate them)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

# (width, height) of typical ImageNet validation images, cycled
IMAGENET_SIZES = ((500, 375), (375, 500), (500, 333), (500, 500), (333, 500), (640, 480), (500, 400), (400, 300))


def photo_like(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    grid = int(rng.integers(6, 13))
    small = Image.fromarray(rng.integers(0, 256, (grid, grid, 3), dtype=np.uint8))
    img = np.asarray(small.resize((width, height), Image.BICUBIC), dtype=np.float32)
    for _ in range(int(rng.integers(2, 6))):
        x0, y0 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        x1, y1 = x0 + int(rng.integers(8, max(9, width // 2))), y0 + int(rng.integers(8, max(9, height // 2)))
        img[y0:y1, x0:x1] = rng.integers(0, 256, 3)
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8))


def make_jpeg_folder(root: str | Path, wnids: Sequence[str], n: int, *, sizes: Sequence[tuple[int, int]] =
                     IMAGENET_SIZES, seed: int = 0, quality: int = 90, split: str = "val") -> list[Path]:
    """``n`` images spread round-robin over ``<root>/<split>/<wnid>/img_XXXXX.JPEG``; returns their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        path = Path(root) / split / wnids[i % len(wnids)] / f"img_{i:05d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        photo_like(rng, w, h).save(path, format="JPEG", quality=quality)
        paths.append(path)
    return paths
