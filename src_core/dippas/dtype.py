"""Image dtype and channel conversions: the one home of these rules.

Modelled on :mod:`skimage.util.dtype`. The forensic maths works in 0-255
units: uint8 is taken as is, uint16 is divided by 257 (65535 maps to 255),
floats are taken as already in 0-255 units.
"""

from __future__ import annotations

import numpy as np

from .errors import DippasInputError
from .validation import check_image

__all__ = ["to_float255", "float255_to_dtype", "as_rgb", "as_rgb_uint8"]

#: uint16 / uint8 scale: 65535 / 255.
UINT16_SCALE = np.float32(257.0)


def to_float255(image: np.ndarray) -> np.ndarray:
    """``image`` as float32 in 0-255 units.

    Raises
    ------
    DippasInputError
        If a float image looks like it is in [0, 1] (its maximum is at most 1
        while it is not constant), which would silently defeat the noise model.
    """
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / UINT16_SCALE
    out = arr.astype(np.float32, copy=False)
    if out.size and float(out.max()) <= 1.0 and float(out.min()) >= 0.0 and float(out.max()) > float(out.min()):
        raise DippasInputError(
            "float image is in [0, 1]; the noise model works in 0-255 units, multiply by 255"
        )
    return out


def float255_to_dtype(image: np.ndarray, dtype: np.dtype | type, *, in_place: bool = False) -> np.ndarray:
    """A float image in 0-255 units as ``dtype``: rounded and clipped for uint8 and uint16.

    uint16 outputs are scaled by 257 (255 maps to 65535); other dtypes are cast.

    Parameters
    ----------
    image : ndarray
        Float image in 0-255 units.
    dtype : dtype
    in_place : bool
        Round and clip a float32 ``image`` in place (saves a copy of large images).
    """
    dt = np.dtype(dtype)
    f = np.asarray(image, dtype=np.float32)
    if not in_place or f is not image:
        f = f.copy() if dt in (np.uint8, np.uint16) else f
    if dt == np.uint16:
        f *= UINT16_SCALE
    if dt in (np.uint8, np.uint16):
        np.rint(f, out=f)
        np.clip(f, 0, np.iinfo(dt).max, out=f)
    return f.astype(dt, copy=False)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A validated image as contiguous ``(H, W, 3)``; gray is replicated, the dtype is kept."""
    img = check_image(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img)


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """The 8-bit RGB image DIPPAS works on: validated, gray replicated, uint16 and float rounded.

    Returns the input itself when it already is contiguous uint8 RGB.
    """
    img = check_image(image)
    if img.dtype != np.uint8:
        img = float255_to_dtype(to_float255(img), np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img)
