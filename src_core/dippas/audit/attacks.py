"""Post-processing an examiner applies before testing: JPEG, resizing, crop shifts.

Published photos are recompressed and resized; an examiner re-tests them
after doing the same (and resamples the fingerprint alike). All functions
work in memory and return 8-bit images, as published photos are.
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import DippasInputError
from ..dtype import to_float255


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round an image in 0-255 units to uint8 (uint8 input is returned as is)."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr
    return np.clip(np.rint(to_float255(arr)), 0, 255).astype(np.uint8)


def jpeg_recompress(image: np.ndarray, quality: int) -> np.ndarray:
    """The image after one JPEG compression at ``quality`` (Pillow, 4:2:0 as most publishers).

    Returns
    -------
    ndarray, uint8, same shape
    """
    from PIL import Image

    if not 1 <= int(quality) <= 100:
        raise DippasInputError(f"JPEG quality must be 1-100, got {quality}")
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im).copy()


def _scaled_size(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    if not 0 < scale <= 1:
        raise DippasInputError(f"resize scale must be in (0, 1], got {scale}")
    h, w = shape[:2]
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def resize_image(image: np.ndarray, scale: float) -> np.ndarray:
    """Downscale an image by ``scale`` with Pillow's antialiased bicubic filter (uint8 out)."""
    from PIL import Image

    h, w = _scaled_size(np.shape(image), scale)
    with Image.fromarray(to_uint8(image)) as im:
        return np.asarray(im.resize((w, h), Image.Resampling.BICUBIC)).copy()


def resize_fingerprint(fingerprint: np.ndarray, scale: float) -> np.ndarray:
    """Resample a fingerprint exactly like :func:`resize_image` resamples the image (float32)."""
    from PIL import Image

    k = np.ascontiguousarray(fingerprint, dtype=np.float32)
    h, w = _scaled_size(k.shape, scale)
    with Image.fromarray(k, mode="F") as im:
        return np.asarray(im.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32).copy()


def _check_shift(shape: tuple[int, ...], shift: tuple[int, int]) -> tuple[int, int]:
    dy, dx = (int(v) for v in shift)
    h, w = shape[:2]
    if not (0 <= dy < h // 2 and 0 <= dx < w // 2):
        raise DippasInputError(f"crop shift {tuple(shift)} is too large for a {h}x{w} image")
    return dy, dx


def shift_crop_image(image: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """Crop ``shift = (dy, dx)`` rows and columns off the top and left, as a publisher's re-crop.

    Pixel ``(i, j)`` of the result is sensor pixel ``(i + dy, j + dx)``: against
    :func:`shift_crop_fingerprint` the PRNU is misaligned by ``(dy, dx)`` and
    only a PCE searched over shifts can find it.
    """
    dy, dx = _check_shift(np.shape(image), shift)
    return np.asarray(image)[dy:, dx:]


def shift_crop_fingerprint(fingerprint: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """The fingerprint an examiner lines up with a re-cropped image: its top-left corner of
    the cropped size (the examiner does not know the shift)."""
    dy, dx = _check_shift(np.shape(fingerprint), shift)
    h, w = np.shape(fingerprint)[:2]
    return np.asarray(fingerprint)[:h - dy, :w - dx]
