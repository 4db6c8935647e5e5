"""Noise residual W of an image: the Binghamton pipeline, as in prnu-python.

The steps follow the reference Python port (prnu-python) and are checked
against its golden outputs (``tests/test_reference_agreement.py``):

1. per colour channel, a 4-level ``db4`` wavelet decomposition (symmetric
   boundary), approximation band zeroed, every detail band filtered with the
   adaptive Wiener rule :func:`wiener_adaptive`, then the inverse transform;
2. gray conversion with :data:`GRAY_WEIGHTS`;
3. :func:`zero_mean_total` on the four 2x2 CFA sub-lattices;
4. :func:`wiener_dft`, Wiener filtering of the Fourier magnitude.

The windowed energy means use summed-area tables (four look-ups per
window) instead of four full convolutions, and all per-pixel work runs in
Numba kernels compiled once and cached on disk.

Speed and memory
----------------
The wavelet transforms and the Wiener rule are the Numba kernels of
:mod:`dippas.wavelet` (the transforms identical to PyWavelets' to the bit).
Large images are processed channel after channel, every kernel split by
rows over the threads (:func:`dippas.wavelet.parallel_for`), and
:func:`noise_residual` never builds their colour residual: the last
inverse wavelet level of each channel adds its weighted output straight
into the gray image, in the same float32 order as :func:`rgb2gray`. Small
images run one colour channel per thread, each channel in a single kernel
call (:func:`dippas.wavelet.denoise_plane`). The summed-area tables are
built per strip of rows (with a halo of the largest window radius) so they
stay in cache and never take a full float64 copy of the image; the
post-processing works in place on buffers it owns and keeps only the half
(real-FFT) spectrum. Results equal those of the straightforward port to
float32 rounding (most are bit-identical).
"""

from __future__ import annotations

import numba as nb
import numpy as np
import scipy.fft as sfft

from .errors import DippasInputError
from .dtype import to_float255
from .threads import n_threads, parallel_for, parallel_map, use_parallel
from .validation import check_image
from .wavelet import (
    ADD_WEIGHTED,
    STORE,
    STORE_WEIGHTED,
    WAVELET_LEVELS,
    WIENER_WINDOWS,
    denoise_plane,
    dwt2_level,
    idwt2_level,
    wiener_strip_height,
    wiener_strips,
)

#: Weights of the toolbox's RGB to gray conversion.
GRAY_WEIGHTS = np.array([0.29893602, 0.58704307, 0.11402090], dtype=np.float32)

__all__ = [
    "GRAY_WEIGHTS",
    "WAVELET_LEVELS",
    "WIENER_WINDOWS",
    "colour_residual_float255",
    "noise_residual",
    "noise_residual_rgb",
    "postprocess_inplace",
    "residual_postprocess",
    "rgb2gray",
    "wiener_adaptive",
    "wiener_dft",
    "zero_mean_total",
]


def _fft_workers(size: int) -> int:
    """SciPy FFT workers: all threads for large arrays, one for small ones."""
    return n_threads() if use_parallel(size) else 1


# ---------------------------------------------------------------------------
# Adaptive Wiener rule ("WaveNoise"); the kernels are in dippas.wavelet
# ---------------------------------------------------------------------------

def _wiener(x: np.ndarray, noise_var: float, gain: bool) -> np.ndarray:
    """Run :func:`dippas.wavelet.wiener_rows` over a C-contiguous float32 array.

    Whole strips of rows are shared among the threads if the array is large
    (:func:`dippas.wavelet.wiener_strips`), so the result does not depend
    on the number of threads.
    """
    out = np.empty_like(x)
    nstrips = -(-x.shape[0] // wiener_strip_height(x.shape[1]))
    parallel_for(wiener_strips, nstrips, x, np.float64(noise_var), out, gain,
                 parallel=use_parallel(x.size), min_chunk=1)
    return out


def wiener_adaptive(x: np.ndarray, noise_var: float) -> np.ndarray:
    """Adaptive Wiener filtering of a 2-D array ("WaveNoise").

    For every element the local signal variance is estimated as
    ``max(0, mean(x**2) - noise_var)`` over zero-padded square windows of
    3, 5, 7 and 9, taking the minimum over the windows; the output is
    ``x * noise_var / (var + noise_var)``.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        Coefficients to filter.
    noise_var : float
        Variance of the noise, in the squared units of ``x``.

    Returns
    -------
    ndarray, shape (H, W), float32
    """
    return _wiener(np.ascontiguousarray(x, dtype=np.float32), noise_var, False)


def _wiener_gain(x: np.ndarray, noise_var: float) -> np.ndarray:
    """``wiener_adaptive(x) / x`` in float32 (0 where ``x`` is 0), in one pass."""
    return _wiener(x, noise_var, True)


# ---------------------------------------------------------------------------
# Colour wavelet residual
# ---------------------------------------------------------------------------

@nb.njit(cache=True, nogil=True, error_model="numpy")
def _channel_plane_rows(img, c, divisor, out, r0, r1):
    """Rows ``r0:r1`` of ``out = float32(img[:, :, c])``, divided by ``divisor`` unless 0."""
    w = out.shape[1]
    for i in range(r0, r1):
        row = img[i]
        dst = out[i]
        if divisor != 0:
            for j in range(w):
                dst[j] = np.float32(row[j, c]) / divisor
        else:
            for j in range(w):
                dst[j] = np.float32(row[j, c])


def _channel_plane(src: np.ndarray, c: int, divisor: np.float32, out: np.ndarray,
                   parallel: bool) -> np.ndarray:
    """Channel ``c`` of ``src`` as float32 0-255 units, into the (H, W) array ``out``."""
    parallel_for(_channel_plane_rows, out.shape[0], src, c, divisor, out, parallel=parallel)
    return out


def _source(image: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """The pixels to read (H, W, C) and the divisor giving 0-255 float32 units.

    uint8 and uint16 are read as they are (uint16 divided by 257 on the fly,
    as :func:`to_float255` does); other dtypes go through :func:`to_float255`,
    which also refuses float images in [0, 1].
    """
    if image.dtype == np.uint8:
        src, divisor = image, np.float32(0.0)
    elif image.dtype == np.uint16:
        src, divisor = image, np.float32(257.0)
    else:
        src, divisor = to_float255(image), np.float32(0.0)
    return (src[:, :, None] if src.ndim == 2 else src), divisor


def _denoise_channel(plane: np.ndarray, noise_var: float, out: np.ndarray,
                     mode: int, weight: float) -> None:
    """Wavelet-Wiener residual of one float32 plane, written into ``out``.

    Decomposes ``plane`` over :data:`WAVELET_LEVELS` levels, filters every
    detail band with :func:`wiener_adaptive`, drops the approximation and
    reconstructs; the last level is cropped to ``out`` and stored or added
    there as :func:`dippas.wavelet.idwt2_level` does with ``mode`` and
    ``weight``. Large planes split every level over the threads; small
    ones run :func:`dippas.wavelet.denoise_plane`, all in one call on this
    thread.
    """
    if not use_parallel(plane.size):
        denoise_plane(plane, np.float64(noise_var), out, mode, np.float32(weight))
        return
    details = []
    approx = plane
    for _ in range(WAVELET_LEVELS):
        approx, bands = dwt2_level(approx)
        details.append(tuple(wiener_adaptive(b, noise_var) for b in bands))
        del bands
    del approx  # the approximation band is zeroed
    recon = None
    for _ in range(WAVELET_LEVELS - 1):
        recon = idwt2_level(recon, details.pop())
    idwt2_level(recon, details.pop(), out=out, mode=mode, weight=weight)


def _check_sigma(sigma: float) -> float:
    """Return ``sigma**2`` after checking that ``sigma`` is a positive number."""
    if not np.isfinite(sigma) or sigma <= 0:
        raise DippasInputError(f"sigma must be a positive number, got {sigma}")
    return float(sigma) ** 2


def _residual_from_source(src: np.ndarray, divisor: np.float32, noise_var: float,
                          gray: bool, threads: bool = True) -> np.ndarray:
    """Wavelet residual of validated (H, W, C) pixels: per channel, or summed to gray.

    The gray output equals ``rgb2gray`` of the colour one exactly: channel
    ``c`` adds ``residual_c * GRAY_WEIGHTS[c]`` in float32, in channel order.
    Returns (H, W) when ``C`` is 1 or ``gray`` is set, else (H, W, C).

    Large images go channel after channel, each kernel split over the
    threads, the gray sum built in place. Small ones run one channel per
    thread (all on this thread if ``threads`` is False), every kernel on
    its thread.
    """
    h, w, nch = src.shape
    if nch > 1 and not use_parallel(h * w):
        out = _residual_channels_concurrently(src, divisor, noise_var, threads)
        return rgb2gray(out) if gray else out
    to_gray = gray and nch == 3
    out = np.empty((h, w, 1 if to_gray else nch), dtype=np.float32)
    plane = np.empty((h, w), dtype=np.float32)
    for c in range(nch):
        _channel_plane(src, c, divisor, plane, use_parallel(h * w))
        if to_gray:
            mode = STORE_WEIGHTED if c == 0 else ADD_WEIGHTED
            _denoise_channel(plane, noise_var, out[:, :, 0], mode, float(GRAY_WEIGHTS[c]))
        else:
            _denoise_channel(plane, noise_var, out[:, :, c], STORE, 1.0)
    return out[:, :, 0] if out.shape[2] == 1 else out


def _residual_channels_concurrently(src: np.ndarray, divisor: np.float32,
                                    noise_var: float, threads: bool = True) -> np.ndarray:
    """Colour residual (H, W, C) of a small image, one channel per thread if ``threads``."""
    h, w, nch = src.shape
    out = np.empty((h, w, nch), dtype=np.float32)

    def one(c: int) -> None:
        plane = _channel_plane(src, c, divisor, np.empty((h, w), dtype=np.float32), False)
        _denoise_channel(plane, noise_var, out[:, :, c], STORE, 1.0)

    if threads:
        parallel_map(one, range(nch))
    else:
        for c in range(nch):
            one(c)
    return out


def _wavelet_residual(image: np.ndarray, sigma: float, gray: bool) -> np.ndarray:
    """Validate ``image`` and ``sigma``, then :func:`_residual_from_source`.

    Returns the shape of ``image`` (``gray`` False) or (H, W) (``gray`` True).
    """
    img = check_image(image)
    src, divisor = _source(img)
    noise_var = _check_sigma(sigma)
    return _residual_from_source(src, divisor, noise_var, gray)


def colour_residual_float255(image: np.ndarray, sigma: float, threads: bool = True) -> np.ndarray:
    """:func:`noise_residual_rgb` of an already validated float32 (H, W, C) image.

    For callers that hold the image as float32 in 0-255 units anyway (the
    fingerprint estimator); skips the input checks and conversions.

    Parameters
    ----------
    image : ndarray, shape (H, W, C), float32
        Finite values in 0-255 units; any memory layout.
    sigma : float
    threads : bool
        With False a small image is processed on this thread only (for
        callers that run several images at once).

    Returns
    -------
    ndarray, shape (H, W, C), float32
    """
    out = _residual_from_source(image, np.float32(0.0), _check_sigma(sigma), gray=False,
                                threads=threads)
    return out[:, :, None] if out.ndim == 2 else out


def noise_residual_rgb(image: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """Colour noise residual: wavelet denoising residual of every channel.

    This is step 1 of the pipeline (``noise_extract`` in prnu-python),
    before gray conversion.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        uint8, uint16 (scaled to 0-255) or float in 0-255 units.
    sigma : float
        Assumed noise standard deviation in 0-255 units.

    Returns
    -------
    ndarray, float32, same shape as ``image``
    """
    return _wavelet_residual(image, sigma, gray=False)


# ---------------------------------------------------------------------------
# Gray conversion and ZeroMeanTotal
# ---------------------------------------------------------------------------

@nb.njit(cache=True, nogil=True)
def _rgb2gray_rows(x, wts, out, r0, r1):
    """Rows ``r0:r1`` of ``out = x[..., 0] w0 + x[..., 1] w1 + x[..., 2] w2`` (float32)."""
    w0, w1, w2 = wts[0], wts[1], wts[2]
    for i in range(r0, r1):
        src = x[i]
        dst = out[i]
        for j in range(dst.shape[0]):
            dst[j] = src[j, 0] * w0 + src[j, 1] * w1 + src[j, 2] * w2


def rgb2gray(image: np.ndarray) -> np.ndarray:
    """Gray conversion with the toolbox weights :data:`GRAY_WEIGHTS`.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)

    Returns
    -------
    ndarray, shape (H, W), float32
        A 2-D input is returned as a float32 copy.
    """
    x = np.asarray(image)
    if x.ndim == 2:
        return x.astype(np.float32, copy=True)
    if x.ndim == 3 and x.shape[2] == 1:
        return x[:, :, 0].astype(np.float32, copy=True)
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty(x.shape[:2], dtype=np.float32)
    parallel_for(_rgb2gray_rows, x.shape[0], x, GRAY_WEIGHTS, out,
                 parallel=use_parallel(out.size))
    return out


@nb.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _parity_sums(row):
    """Float64 sums of the even-index and odd-index elements of ``row``.

    Reassociated (vectorised) sums: they differ from sequential ones by a
    few float64 ulps, far below the float32 results built from them.
    """
    n = row.shape[0]
    s0 = 0.0
    s1 = 0.0
    for j in range(n // 2):
        s0 += np.float64(row[2 * j])
        s1 += np.float64(row[2 * j + 1])
    if n % 2:
        s0 += np.float64(row[n - 1])
    return s0, s1


@nb.njit(cache=True, nogil=True)
def _row_parity_sums(x, row_sums, r0, r1):
    """``row_sums[i, q]``: float64 sum of row ``i`` over the columns of parity ``q``."""
    for i in range(r0, r1):
        s0, s1 = _parity_sums(x[i])
        row_sums[i, 0] = s0
        row_sums[i, 1] = s1


#: Columns per task of the column sums.
_COLUMN_BLOCK = 512


@nb.njit(cache=True, nogil=True)
def _column_parity_sums(x, col_sums, k0, k1):
    """Column sums over the rows of each parity, for column blocks ``k0 <= k < k1``.

    Block ``k`` covers columns ``(k // 2) * _COLUMN_BLOCK ...`` over rows of
    parity ``k % 2``; ``col_sums[p, j]`` is a float64 sum in row order.
    """
    h, w = x.shape
    for k in range(k0, k1):
        p = k % 2
        j0 = (k // 2) * _COLUMN_BLOCK
        j1 = min(w, j0 + _COLUMN_BLOCK)
        acc = col_sums[p, j0:j1]
        for j in range(j1 - j0):
            acc[j] = 0.0
        for i in range(p, h, 2):
            row = x[i, j0:j1]
            for j in range(j1 - j0):
                acc[j] += np.float64(row[j])


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _lattice_means(row_sums, col_sums, h, w):
    """Per-pixel terms of ZeroMeanTotal from the lattice sums.

    Returns ``mean[p, j]`` (the mean of the lattice of row parity ``p`` and
    column parity ``j % 2``), ``row_mean[i, q]`` and ``col_mean[p, j]``, the
    row and column means of the mean-removed lattices.
    """
    mean = np.zeros((2, 2), dtype=np.float64)
    counts_r = ((h + 1) // 2, h // 2)
    counts_c = ((w + 1) // 2, w // 2)
    for p in range(2):
        for q in range(2):
            if counts_r[p] == 0 or counts_c[q] == 0:
                continue
            total = 0.0
            for i in range(p, h, 2):
                total += row_sums[i, q]
            mean[p, q] = total / (counts_r[p] * counts_c[q])
    row_mean = np.empty((h, 2), dtype=np.float64)
    for i in range(h):
        for q in range(2):
            row_mean[i, q] = row_sums[i, q] / counts_c[q] - mean[i % 2, q]
    mean_px = np.empty((2, w), dtype=np.float64)
    col_mean = np.empty((2, w), dtype=np.float64)
    for p in range(2):
        for j in range(w):
            mean_px[p, j] = mean[p, j % 2]
            col_mean[p, j] = col_sums[p, j] / counts_r[p] - mean[p, j % 2]
    return mean_px, row_mean, col_mean


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _subtract_means_rows(x, mean_px, row_mean, col_mean, r0, r1):
    """Rows ``r0:r1`` of ``x = float32(((x - mean) - row mean) - column mean)``.

    The lattice mean and the row and column means of the mean-removed
    lattice, subtracted in the reference's order, in float64.
    """
    w = x.shape[1]
    rm = np.empty(w, dtype=np.float64)
    for i in range(r0, r1):
        p = i % 2
        for j in range(0, w - 1, 2):
            rm[j] = row_mean[i, 0]
            rm[j + 1] = row_mean[i, 1]
        if w % 2:
            rm[w - 1] = row_mean[i, 0]
        row = x[i]
        m = mean_px[p]
        c = col_mean[p]
        for j in range(w):
            row[j] = np.float32(((np.float64(row[j]) - m[j]) - rm[j]) - c[j])


def _zero_mean_total_inplace(x: np.ndarray) -> np.ndarray:
    """:func:`zero_mean_total` of a C-contiguous float32 array, in place."""
    h, w = x.shape
    parallel = use_parallel(x.size)
    row_sums = np.empty((h, 2), dtype=np.float64)
    col_sums = np.empty((2, w), dtype=np.float64)
    parallel_for(_row_parity_sums, h, x, row_sums, parallel=parallel)
    nblocks = 2 * (-(-w // _COLUMN_BLOCK))
    parallel_for(_column_parity_sums, nblocks, x, col_sums, parallel=parallel, min_chunk=1)
    mean_px, row_mean, col_mean = _lattice_means(row_sums, col_sums, h, w)
    parallel_for(_subtract_means_rows, h, x, mean_px, row_mean, col_mean, parallel=parallel)
    return x


def zero_mean_total(x: np.ndarray) -> np.ndarray:
    """ZeroMeanTotal: zero the mean, row means and column means per CFA lattice.

    On each of the four 2x2 sub-lattices (even/odd rows by even/odd columns)
    subtract the mean, then each row's mean, then each column's mean.

    Parameters
    ----------
    x : ndarray, shape (H, W)

    Returns
    -------
    ndarray, shape (H, W), float32
        A new array; ``x`` is not modified.
    """
    return _zero_mean_total_inplace(np.array(x, dtype=np.float32, order="C", copy=True))


# ---------------------------------------------------------------------------
# WienerInDFT
# ---------------------------------------------------------------------------

@nb.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _row_sum(row, mean, squared):
    """Float64 sum of ``row - mean`` (or of its squares), reassociated (vectorised)."""
    acc = 0.0
    if squared:
        for j in range(row.shape[0]):
            d = np.float64(row[j]) - mean
            acc += d * d
    else:
        for j in range(row.shape[0]):
            acc += np.float64(row[j]) - mean
    return acc


@nb.njit(cache=True, nogil=True)
def _row_sums(x, mean, squared, out, r0, r1):
    """``out[i]``: :func:`_row_sum` of row ``i`` for ``r0 <= i < r1``."""
    for i in range(r0, r1):
        out[i] = _row_sum(x[i], mean, squared)


def _std_ddof1(x: np.ndarray) -> float:
    """Sample standard deviation (ddof 1) of a 2-D float32 array, two-pass, float64."""
    h, w = x.shape
    parallel = use_parallel(x.size)
    rows = np.empty(h, dtype=np.float64)
    parallel_for(_row_sums, h, x, 0.0, False, rows, parallel=parallel)
    mean = float(rows.sum()) / (h * w)
    parallel_for(_row_sums, h, x, mean, True, rows, parallel=parallel)
    return float(np.sqrt(rows.sum() / (h * w - 1)))


@nb.njit(cache=True, nogil=True, inline="always")
def _abs32(z):
    """``abs`` of a complex64 as float32, as ``hypotf``: sqrt in float64, rounded once."""
    re = np.float64(z.real)
    im = np.float64(z.imag)
    return np.float32(np.sqrt(re * re + im * im))


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _full_magnitude_rows(fh, scale, mag, r0, r1):
    """Rows ``r0:r1`` of |F| * scale on the full grid, from the half spectrum."""
    h, w = mag.shape
    wh = fh.shape[1]
    for i in range(r0, r1):
        ii = (h - i) % h
        src = fh[i]
        mirror = fh[ii]
        dst = mag[i]
        for j in range(wh):
            dst[j] = np.float32(np.float64(_abs32(src[j])) * scale)
        for j in range(wh, w):
            dst[j] = np.float32(np.float64(_abs32(mirror[w - j])) * scale)


@nb.njit(cache=True, nogil=True)
def _apply_symmetric_gain_rows(fh, gain, r0, r1):
    """Multiply rows ``r0:r1`` of the half spectrum by the Hermitian-symmetrised gain.

    ``real(ifft2(F * g))`` equals ``irfft2`` of the half spectrum times
    ``(g(k) + g(-k)) / 2`` for a real gain ``g``, which lets the filter run
    on a real FFT at half the cost.
    """
    h, w = gain.shape
    wh = fh.shape[1]
    for i in range(r0, r1):
        row = fh[i]
        g = gain[i]
        g_mirror = gain[(h - i) % h]  # gain(-k) is g_mirror[(w - j) % w]
        row[0] = row[0] * np.float32(0.5 * (np.float64(g[0]) + np.float64(g_mirror[0])))
        for j in range(1, wh):
            row[j] = row[j] * np.float32(0.5 * (np.float64(g[j]) + np.float64(g_mirror[w - j])))


def _wiener_dft_owned(x: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`wiener_dft` of a C-contiguous float32 array (read, never modified)."""
    h, w = x.shape
    parallel = use_parallel(x.size)
    workers = _fft_workers(x.size)
    fh = sfft.rfft2(x, workers=workers)
    mag = np.empty((h, w), dtype=np.float32)
    parallel_for(_full_magnitude_rows, h, fh, 1.0 / np.sqrt(h * w), mag, parallel=parallel)
    gain = _wiener_gain(mag, float(sigma) ** 2)
    del mag
    parallel_for(_apply_symmetric_gain_rows, h, fh, gain, parallel=parallel)
    del gain
    out = sfft.irfft2(fh, s=(h, w), workers=workers, overwrite_x=True)
    return out.astype(np.float32, copy=False)


def wiener_dft(x: np.ndarray, sigma: float) -> np.ndarray:
    """WienerInDFT: adaptive Wiener filtering of the Fourier magnitude.

    ``F = fft2(x)``; the magnitude ``|F| / sqrt(H W)`` goes through
    :func:`wiener_adaptive` with noise variance ``sigma**2``; ``F`` is scaled
    by ``filtered / |F|`` (0 where ``|F| = 0``) and transformed back.

    Parameters
    ----------
    x : ndarray, shape (H, W)
    sigma : float
        Noise standard deviation, usually ``x.std(ddof=1)``.

    Returns
    -------
    ndarray, shape (H, W), float32
    """
    return _wiener_dft_owned(np.ascontiguousarray(x, dtype=np.float32), sigma)


def postprocess_inplace(w_gray: np.ndarray) -> np.ndarray:
    """:func:`residual_postprocess` that overwrites its input, a C-contiguous float32 array.

    Saves a copy of the image for callers that own the gray residual; any
    other input is copied first.
    """
    zm = _zero_mean_total_inplace(np.ascontiguousarray(w_gray, dtype=np.float32))
    return _wiener_dft_owned(zm, _std_ddof1(zm))


def residual_postprocess(w_gray: np.ndarray) -> np.ndarray:
    """ZeroMeanTotal then WienerInDFT with sigma = std(ddof=1), as for W and K."""
    return postprocess_inplace(np.array(w_gray, dtype=np.float32, order="C", copy=True))


def noise_residual(image: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """Noise residual W used for attribution.

    Colour wavelet residual (:func:`noise_residual_rgb`), gray conversion,
    :func:`zero_mean_total` and :func:`wiener_dft`, exactly as the
    Binghamton toolbox and prnu-python.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        uint8, uint16 (scaled to 0-255) or float in 0-255 units. Never
        rotated: the PRNU lives in sensor coordinates.
    sigma : float, optional
        Assumed noise standard deviation in 0-255 units (default 3).

    Returns
    -------
    ndarray, shape (H, W), float32

    Examples
    --------
    >>> import numpy as np
    >>> from dippas import noise_residual
    >>> img = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    >>> noise_residual(img).shape
    (64, 64)
    """
    return postprocess_inplace(_wavelet_residual(image, sigma, gray=True))
