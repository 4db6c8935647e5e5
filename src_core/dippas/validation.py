"""Checks on arrays handed to the core.

The forensic maths works on pixel values in 0-255 units, the units of the
Binghamton toolbox. These helpers validate shapes and dtypes once, at the
public entry points, and convert to float32 in those units.
"""

from __future__ import annotations

import numpy as np

from .errors import DippasInputError

#: Smallest image side accepted by the residual (a 4-level db4 transform needs it).
MIN_IMAGE_SIDE = 32


def check_positive_int(name: str, value, *, optional: bool = False) -> int | None:
    """``value`` as an int if it is a positive integer (or None, when ``optional``).

    Raises
    ------
    DippasInputError
        ``"<name> must be a positive integer, got <value>"``.
    """
    if value is None and optional:
        return None
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise DippasInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_image(image: np.ndarray, name: str = "image", min_side: int = MIN_IMAGE_SIDE) -> np.ndarray:
    """Validate an image array and return it as an ndarray.

    Parameters
    ----------
    image : array_like
        Gray ``(H, W)`` or colour ``(H, W, 3)`` image. ``(H, W, 1)`` is taken
        as gray. uint8, uint16 or floating point (0-255 units).
    name : str
        Name used in error messages.
    min_side : int
        Smallest accepted height and width.

    Returns
    -------
    numpy.ndarray
        The image, ``(H, W)`` or ``(H, W, 3)``.

    Raises
    ------
    DippasInputError
        On a wrong number of dimensions or channels, an unsupported dtype,
        non-finite values or a side below ``min_side``.
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        raise DippasInputError(
            f"{name} has 4 channels (RGBA); drop the alpha channel first "
            "(dippas.io.load_image does this for you)"
        )
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise DippasInputError(
            f"{name} must be (H, W) gray or (H, W, 3) RGB, got shape {arr.shape}"
        )
    if arr.dtype not in (np.uint8, np.uint16) and not np.issubdtype(arr.dtype, np.floating):
        raise DippasInputError(
            f"{name} has dtype {arr.dtype}; expected uint8, uint16 or float (0-255 units)"
        )
    h, w = arr.shape[:2]
    if h < min_side or w < min_side:
        raise DippasInputError(
            f"{name} is {h}x{w} pixels; at least {min_side}x{min_side} is needed"
        )
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise DippasInputError(f"{name} contains NaN or infinite values")
    return arr


def check_fingerprint(fingerprint: np.ndarray, shape: tuple[int, int] | None = None,
                      name: str = "fingerprint") -> np.ndarray:
    """Validate a fingerprint (PRNU) array and return it as float32 ``(H, W)``.

    Parameters
    ----------
    fingerprint : array_like
        2-D array of finite floats.
    shape : tuple of int, optional
        Expected ``(H, W)``, usually the image's.
    name : str
        Name used in error messages.

    Raises
    ------
    DippasInputError
        If it is not 2-D, holds NaN or inf, is all zeros, or has the wrong shape.
    """
    k = np.asarray(fingerprint)
    if k.ndim == 3 and k.shape[2] == 1:
        k = k[:, :, 0]
    if k.ndim != 2:
        raise DippasInputError(f"{name} must be a 2-D array, got shape {k.shape}")
    if not (np.issubdtype(k.dtype, np.floating) or np.issubdtype(k.dtype, np.integer)):
        raise DippasInputError(f"{name} has dtype {k.dtype}; expected a float array")
    k = k.astype(np.float32, copy=False)
    if not np.isfinite(k).all():
        raise DippasInputError(f"{name} contains NaN or infinite values")
    if shape is not None and tuple(k.shape) != tuple(shape[:2]):
        raise DippasInputError(
            f"{name} is {k.shape[0]}x{k.shape[1]} but the image is {shape[0]}x{shape[1]}"
        )
    if not np.any(k):
        raise DippasInputError(f"{name} is all zeros")
    return k
