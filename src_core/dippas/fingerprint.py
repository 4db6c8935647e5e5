"""Maximum-likelihood estimation of a camera fingerprint K (PRNU).

Follows prnu-python's ``extract_multiple_aligned``:
over N images of one device it accumulates

- numerator   += W_i * I_i / 255      (colour residual times the image)
- denominator += (IntenScale(I_i) * Saturation(I_i)) ** 2

then ``K = numerator / (denominator + 1)``, gray conversion,
ZeroMeanTotal and WienerInDFT. The Binghamton MATLAB toolbox weights the
numerator by ``IntenScale * Saturation`` instead of ``I / 255``; the
golden files follow the Python port, and so does this module.

Estimation streams: it holds one image at a time plus two accumulators, so
hundreds of full-size photos fit in memory. Small images (under
:data:`dippas.wavelet.PARALLEL_MIN_SIZE` pixels) are taken a few at a time,
one per thread (as many as there are threads); the sums still run in image
order, so the result does not depend on the number of threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Union

import numba as nb
import numpy as np

from .errors import Cancelled, DippasInputError
from .progress import CancelToken
from .residual import colour_residual_float255, postprocess_inplace, rgb2gray
from .dtype import to_float255
from .validation import check_image
from .threads import n_threads, parallel_for, parallel_map, use_parallel

ImageSource = Union[np.ndarray, str, "os.PathLike[str]"]

#: Saturation level of IntenScale, in 0-255 units.
INTENSITY_KNEE = 252.0
#: Width of the Gaussian roll-off of IntenScale above the knee.
INTENSITY_WIDTH = 6.0
#: A channel whose maximum is above this is checked for saturation.
SATURATION_LEVEL = 250.0


@nb.njit(cache=True, nogil=True, fastmath={"nnan", "ninf"})
def _channel_max(img):
    """Per-channel maximum of a C-contiguous (H, W, C) float32 image of finite values."""
    h, w, nch = img.shape
    flat = img.reshape(h, w * nch)
    out = np.empty(nch, dtype=np.float32)
    if nch == 3:  # three interleaved running maxima vectorise
        m0, m1, m2 = img[0, 0, 0], img[0, 0, 1], img[0, 0, 2]
        for i in range(h):
            row = flat[i]
            for j in range(w):
                a, b, c = row[3 * j], row[3 * j + 1], row[3 * j + 2]
                m0 = a if a > m0 else m0
                m1 = b if b > m1 else m1
                m2 = c if c > m2 else m2
        out[0], out[1], out[2] = m0, m1, m2
        return out
    for c in range(nch):
        m = img[0, 0, c]
        for i in range(h):
            row = flat[i]
            for j in range(w):
                v = row[j * nch + c]
                m = v if v > m else m
        out[c] = m
    return out


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _accumulate_rows(img, wrgb, num, den, chmax, check_sat, r0, r1):
    """Add rows ``r0:r1`` of one image's terms to the ML numerator and denominator.

    ``img`` and ``wrgb`` are C-contiguous (H, W, C) float32 in 0-255 units;
    ``num += wrgb * img / 255`` and ``den += (IntenScale * Saturation)**2``
    (see :func:`_bright_pixels`), in float64 rounded to float32. The common
    case (below 250) runs as flat, vectorised loops.
    """
    h, w, nch = img.shape
    n = w * nch
    flat_img = img.reshape(h, n)
    flat_w = wrgb.reshape(h, n)
    flat_num = num.reshape(h, n)
    flat_den = den.reshape(h, n)
    scale = np.empty(n, dtype=np.float64)
    for i in range(r0, r1):
        v_row = flat_img[i]
        w_row = flat_w[i]
        num_row = flat_num[i]
        bright = 0  # a count rather than a maximum, which would not vectorise
        for k in range(n):
            v = v_row[k]
            num_row[k] = num_row[k] + w_row[k] * (v / 255.0)
            scale[k] = v / 252.0
            bright += 1 if v >= 250.0 else 0
        if bright:
            _bright_pixels(img, i, chmax, check_sat, scale)
        den_row = flat_den[i]
        for k in range(n):
            s = scale[k]
            den_row[k] = den_row[k] + s * s


@nb.njit(cache=True, nogil=True)
def _bright_pixels(img, i, chmax, check_sat, scale):
    """IntenScale above the knee, and Saturation, for row ``i`` (in place in ``scale``).

    IntenScale is ``exp(-(v - 252)**2 / 6)`` from 252 up. Saturation follows
    the port: a pixel is saturated (weight 0) when it equals its channel's
    maximum, that maximum is above 250, and one of its 4 neighbours (with
    wrap-around) has the same value. Pixels below 250 are left alone.
    """
    h, w, nch = img.shape
    row = img[i]
    up = img[i - 1 if i > 0 else h - 1]
    down = img[i + 1 if i < h - 1 else 0]
    for j in range(w):
        for c in range(nch):
            v = row[j, c]
            if v < 250.0:
                continue
            k = j * nch + c
            if v >= 252.0:
                d = v - 252.0
                scale[k] = np.exp(-(d * d) / 6.0)
            if check_sat and chmax[c] > 250.0 and v == chmax[c]:
                left = row[j - 1 if j > 0 else w - 1, c]
                right = row[j + 1 if j < w - 1 else 0, c]
                if up[j, c] == v or down[j, c] == v or left == v or right == v:
                    scale[k] = 0.0


def _accumulate(frames: list[np.ndarray], residuals: list[np.ndarray], num: np.ndarray,
                den: np.ndarray) -> None:
    """Add the terms of several images, in order, to ``num`` and ``den`` (in place).

    Rows are split over the threads for large images and for batches of
    small ones; every element sees the images in list order, so the sums do
    not depend on the threads.
    """
    frames = [np.ascontiguousarray(f) for f in frames]
    residuals = [np.ascontiguousarray(r) for r in residuals]
    maxima = [_channel_max(f) for f in frames]

    def rows(r0: int, r1: int) -> None:
        for f, wrgb, chmax in zip(frames, residuals, maxima, strict=True):
            _accumulate_rows(f, wrgb, num, den, chmax, bool(chmax.max() > SATURATION_LEVEL),
                             r0, r1)

    h, w = num.shape[:2]
    parallel_for(rows, h, parallel=len(frames) > 1 or use_parallel(h * w))


def _frames(images: Iterable[ImageSource], crop: tuple[int, int] | None,
            cancel: CancelToken | None) -> Iterator[np.ndarray]:
    """Load, check, crop and convert the images one at a time, (H, W, C) float32.

    Checks ``cancel`` before each image and that all have the same shape.
    """
    shape = None
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
        elif f.shape != shape:
            raise DippasInputError(
                f"{label} is {f.shape[0]}x{f.shape[1]}x{f.shape[2]} but earlier images are "
                f"{shape[0]}x{shape[1]}x{shape[2]}; pass crop=N (CLI: --crop N) to centre-crop"
            )
        yield f


def _batches(frames: Iterator[np.ndarray]) -> Iterator[list[np.ndarray]]:
    """Group small images by the number of threads (one image per thread); large ones alone."""
    batch: list[np.ndarray] = []
    for f in frames:
        batch.append(f)
        if len(batch) >= n_threads() or use_parallel(f.shape[0] * f.shape[1]):
            yield batch
            batch = []
    if batch:
        yield batch


def _colour_residuals(batch: list[np.ndarray], sigma: float) -> list[np.ndarray]:
    """Colour residuals of a batch: one image per thread, or one image on every thread."""
    if len(batch) == 1:
        return [colour_residual_float255(batch[0], sigma)]
    return parallel_map(lambda f: colour_residual_float255(f, sigma, threads=False), batch)


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


def fingerprint_sums(
    images: Iterable[ImageSource],
    sigma: float = 3.0,
    crop: tuple[int, int] | None = None,
    parts: int = 1,
    progress: Callable[[int, int | None], None] | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Stream images into the ML numerator and denominator, split into disjoint parts.

    Image ``i`` (in iteration order) goes to part ``i % parts``, so ``parts=2``
    gives two disjoint halves (even and odd images) from one pass over the
    images: each residual is computed once. The sums of all parts give the
    sums of the whole set (see :func:`fingerprint_from_sums`).

    Parameters
    ----------
    images : iterable of ndarray or path
        Images of one device, all the same size after ``crop``.
    sigma : float, optional
        Residual noise level, 0-255 units.
    crop : (h, w) or None, optional
        Centre crop applied to every image.
    parts : int, optional
        Number of disjoint parts (default 1).
    progress, cancel
        As in :func:`estimate_fingerprint`.

    Returns
    -------
    num, den : ndarray, shape (parts, H, W, C), float32
        Per-part numerator ``sum W_i I_i / 255`` and denominator
        ``sum (IntenScale * Saturation)**2``.
    counts : list of int
        Images summed into each part.

    Raises
    ------
    DippasInputError
        On no images, unequal sizes, or a bad image.
    """
    if parts < 1:
        raise DippasInputError(f"parts must be at least 1, got {parts}")
    total = len(images) if hasattr(images, "__len__") else None
    num = den = None
    counts = [0] * parts
    count = 0
    for batch in _batches(_frames(images, crop, cancel)):
        if num is None:
            num = np.zeros((parts, *batch[0].shape), dtype=np.float32)
            den = np.zeros((parts, *batch[0].shape), dtype=np.float32)
        residuals = _colour_residuals(batch, sigma)
        for part in range(parts):
            idx = [k for k in range(len(batch)) if (count + k) % parts == part]
            if idx:
                _accumulate([batch[k] for k in idx], [residuals[k] for k in idx],
                            num[part], den[part])
                counts[part] += len(idx)
        for k in range(len(batch)):
            if k and cancel is not None and cancel.cancelled:  # as if between images
                raise Cancelled("fingerprint estimation cancelled")
            count += 1
            if progress is not None:
                progress(count, total)
    if count == 0:
        raise DippasInputError("no images to estimate a fingerprint from")
    return num, den, counts


def fingerprint_from_sums(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """The fingerprint ``K = num / (den + 1)``, gray-converted and post-processed.

    Parameters
    ----------
    num, den : ndarray, shape (H, W, C)
        Sums from :func:`fingerprint_sums` (one part, or the sum of parts).

    Returns
    -------
    ndarray, shape (H, W), float32
    """
    k = np.asarray(num, dtype=np.float32) / (np.asarray(den, dtype=np.float32) + 1.0)
    return postprocess_inplace(rgb2gray(k if k.shape[2] == 3 else k[:, :, 0]))


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
    num, den, _ = fingerprint_sums(images, sigma, crop, 1, progress, cancel)
    return fingerprint_from_sums(num[0], den[0])
