"""Maximum-likelihood estimation of a camera fingerprint K (PRNU).

Follows prnu-python's ``extract_multiple_aligned`` (DESIGN.md section 3):
over N images of one device it accumulates

- numerator   += W_i * I_i / 255      (colour residual times the image)
- denominator += (IntenScale(I_i) * Saturation(I_i)) ** 2

then ``K = numerator / (denominator + 1)``, gray conversion,
ZeroMeanTotal and WienerInDFT. The Binghamton MATLAB toolbox weights the
numerator by ``IntenScale * Saturation`` instead of ``I / 255``; the
golden files follow the Python port, and so does this module.

Estimation streams: it holds one image at a time plus two accumulators, so
hundreds of full-size photos fit in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Union

import numba as nb
import numpy as np

from .errors import Cancelled, DippasInputError
from .progress import CancelToken
from .residual import noise_residual_rgb, residual_postprocess, rgb2gray
from .validation import check_image, to_float255

ImageSource = Union[np.ndarray, str, "os.PathLike[str]"]

#: Saturation level of IntenScale, in 0-255 units.
INTENSITY_KNEE = 252.0
#: Width of the Gaussian roll-off of IntenScale above the knee.
INTENSITY_WIDTH = 6.0
#: A channel whose maximum is above this is checked for saturation.
SATURATION_LEVEL = 250.0


@nb.njit(cache=True, nogil=True)
def _accumulate(img, wrgb, num, den, chmax, check_sat):
    """Add one image's terms to the ML numerator and denominator, in place.

    ``img`` and ``wrgb`` are (H, W, C) float32 in 0-255 units. Saturation
    follows the port: a pixel is saturated when it equals its channel's
    maximum, that maximum is above 250, and one of its 4 neighbours
    (with wrap-around) has the same value.
    """
    h, w, nch = img.shape
    for i in range(h):
        iu = (i - 1) % h
        idn = (i + 1) % h
        for j in range(w):
            jl = (j - 1) % w
            jr = (j + 1) % w
            for c in range(nch):
                v = img[i, j, c]
                if v < 252.0:
                    scale = v / 252.0
                else:
                    d = v - 252.0
                    scale = np.exp(-(d * d) / 6.0)
                if check_sat and chmax[c] > 250.0 and v == chmax[c]:
                    if (img[iu, j, c] == v or img[idn, j, c] == v
                            or img[i, jl, c] == v or img[i, jr, c] == v):
                        scale = 0.0
                num[i, j, c] += wrgb[i, j, c] * (v / 255.0)
                den[i, j, c] += scale * scale


def intensity_scale(image: np.ndarray) -> np.ndarray:
    """IntenScale weight: ``x/252`` below 252, ``exp(-(x-252)**2/6)`` from 252 up.

    Parameters
    ----------
    image : ndarray
        Pixel values in 0-255 units (computed in float, so uint8 never overflows).

    Returns
    -------
    ndarray, float32, same shape
    """
    x = np.asarray(image, dtype=np.float32)
    return np.where(x < INTENSITY_KNEE, x / INTENSITY_KNEE,
                    np.exp(-((x - INTENSITY_KNEE) ** 2) / INTENSITY_WIDTH)).astype(np.float32)


def centre_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre crop to ``size = (h, w)`` with offset ``(H - h) // 2``, as the reference.

    Raises
    ------
    DippasInputError
        If the image is smaller than ``size``.
    """
    h, w = size
    H, W = image.shape[:2]
    if h > H or w > W:
        raise DippasInputError(f"cannot crop a {H}x{W} image to {h}x{w}")
    top, left = (H - h) // 2, (W - w) // 2
    return image[top:top + h, left:left + w]


def _normalise_crop(crop) -> tuple[int, int] | str | None:
    if crop is None or crop == "common":
        return crop
    if isinstance(crop, (int, np.integer)):
        if crop <= 0:
            raise DippasInputError(f"crop must be positive, got {crop}")
        return int(crop), int(crop)
    if isinstance(crop, Sequence) and len(crop) == 2:
        return int(crop[0]), int(crop[1])
    raise DippasInputError(f"crop must be an int, a (h, w) pair or 'common', got {crop!r}")


def _source_size(src: ImageSource) -> tuple[int, int]:
    if isinstance(src, np.ndarray):
        return src.shape[:2]
    from .io import image_size
    return image_size(src)


def _load(src: ImageSource) -> tuple[np.ndarray, str]:
    if isinstance(src, np.ndarray):
        return src, "array"
    from .io import load_image
    return load_image(src), os.fspath(src)


def estimate_fingerprint(
    images: Iterable[ImageSource],
    sigma: float = 3.0,
    crop: int | tuple[int, int] | str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Estimate a camera fingerprint K from images of one device.

    Parameters
    ----------
    images : iterable of ndarray or path
        Flat, bright, unsaturated images of one device, all the same size
        and orientation (never rotated by EXIF: the PRNU lives in sensor
        coordinates). Read one at a time.
    sigma : float, optional
        Noise standard deviation of the residual, 0-255 units (default 3).
    crop : int, (h, w), 'common' or None, optional
        Centre-crop every image to this size; ``'common'`` crops to the
        smallest height and width among the images. With ``None`` (default)
        images of unequal size are refused.
    progress : callable, optional
        Called as ``progress(done, total)`` after each image; ``total`` is
        None when ``images`` has no length.
    cancel : CancelToken, optional
        Checked between images; raises :class:`dippas.Cancelled` when set.

    Returns
    -------
    ndarray, shape (H, W), float32
        The fingerprint K.

    Raises
    ------
    DippasInputError
        On no images, unequal sizes without ``crop``, or a bad image.
    """
    crop = _normalise_crop(crop)
    if crop == "common":
        images = list(images)
        sizes = [_source_size(s) for s in images]
        if not sizes:
            raise DippasInputError("no images to estimate a fingerprint from")
        crop = (min(s[0] for s in sizes), min(s[1] for s in sizes))
    total = len(images) if hasattr(images, "__len__") else None
    num = den = None
    shape = None
    count = 0
    for src in images:
        if cancel is not None and cancel.cancelled:
            raise Cancelled("fingerprint estimation cancelled")
        img, label = _load(src)
        img = check_image(img, name=label)
        if crop is not None:
            img = centre_crop(img, crop)
        f = to_float255(img)
        if f.ndim == 2:
            f = f[:, :, None]
        if shape is None:
            shape = f.shape
            num = np.zeros(shape, dtype=np.float32)
            den = np.zeros(shape, dtype=np.float32)
        elif f.shape != shape:
            raise DippasInputError(
                f"{label} is {f.shape[0]}x{f.shape[1]}x{f.shape[2]} but earlier images are "
                f"{shape[0]}x{shape[1]}x{shape[2]}; pass crop=N (CLI: --crop N) to centre-crop"
            )
        wrgb = noise_residual_rgb(f if f.shape[2] == 3 else f[:, :, 0], sigma)
        if wrgb.ndim == 2:
            wrgb = wrgb[:, :, None]
        chmax = f.reshape(-1, f.shape[2]).max(axis=0).astype(np.float32)
        _accumulate(f, wrgb, num, den, chmax, bool(chmax.max() > SATURATION_LEVEL))
        count += 1
        if progress is not None:
            progress(count, total)
    if count == 0:
        raise DippasInputError("no images to estimate a fingerprint from")
    k = num / (den + 1.0)
    return residual_postprocess(rgb2gray(k if k.shape[2] == 3 else k[:, :, 0]))
