"""Every PIL image mode to correct 8-bit RGB (the transforms then give [0,1] tensors), or one :class:`UserError`.

``Image.convert("RGB")`` is right for the 8-bit modes (1, L, P, RGB, RGBA, CMYK, YCbCr, LAB, LA, PA, RGBX, ...) but
clips the wide ones: a 16-bit PNG (mode ``I;16`` or, with older Pillow, ``I``) becomes an all-white image, a float
image in [0,1] (mode ``F``) an all-black one. :func:`to_rgb` scales those by their real range first:

- ``I;16``, ``I;16B``, ``I;16L``, ``I;16N`` and a PNG in mode ``I``: 16-bit, 0..65535;
- ``I`` (32-bit integers, e.g. TIFF): PIL's 0..255 when the values fit, else refused;
- ``F`` (float): [0,1] when the values fit, else PIL's 0..255 when they fit, else refused (NaN too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError

WIDE_16 = ("I;16", "I;16B", "I;16L", "I;16N")


def _refuse(path: str | Path | None, what: str) -> UserError:
    name = f"image {path}" if path is not None else "an image"
    return UserError(f"{name} is {what}: save it as an 8-bit (or 16-bit PNG) RGB or grayscale image")


def _gray(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L").convert("RGB")


def to_rgb(img: Image.Image, path: str | Path | None = None) -> Image.Image:
    """``img`` as an 8-bit RGB image with its values scaled from the mode's real range (see the module docstring);
    ``path`` names the file in the error for a mode or range that cannot be read correctly."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in WIDE_16 or (mode == "I" and (img.format or "").upper() == "PNG"):
        values = np.asarray(img, dtype=np.float64)
        return _gray(values / 65535.0 * 255.0)
    if mode in ("I", "I;32", "I;32B", "I;32L"):
        values = np.asarray(img, dtype=np.float64)
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if lo < 0 or hi > 255:
            raise _refuse(path, f"a 32-bit integer image with values in [{lo:g}, {hi:g}] (no known white point)")
        return _gray(values)
    if mode == "F":
        values = np.asarray(img, dtype=np.float64)
        if not np.isfinite(values).all():
            raise _refuse(path, "a float image holding NaN or infinite values")
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if lo >= 0 and hi <= 1.0:
            return _gray(values * 255.0)
        if lo >= 0 and hi <= 255.0:
            return _gray(values)
        raise _refuse(path, f"a float image with values in [{lo:g}, {hi:g}] (neither [0,1] nor [0,255])")
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise _refuse(path, f"in mode {mode}, which cannot be converted to RGB ({exc})") from None


__all__ = ["to_rgb"]
