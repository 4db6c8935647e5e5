"""Correlation scores: NCC, PCE, per-block NCC maps and cell statistics.

The attribution test of the paper (eq. 2) is ``NCC(W, gray(I) * K)``: the
sums run over pixels with no mean removal. PCE follows the Binghamton
toolbox: circular cross-correlation of the mean-removed signals, squared
peak over the mean energy outside an ``exclude x exclude`` neighbourhood of
the peak (with wrap-around), signed like the peak.

Cell statistics (docs/architecture.md) keep, for each ``c x c`` cell, the three
sums ``sum(W*X)``, ``sum(W**2)`` and ``sum(X**2)``; the NCC of any block made
of whole cells is then a sum of cell statistics.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import scipy.fft as sfft

from .errors import DippasInputError
from .residual import noise_residual, rgb2gray
from .dtype import to_float255
from .validation import check_fingerprint, check_image

#: Default PCE decision threshold (Binghamton toolbox practice).
PCE_THRESHOLD = 60.0
#: Side of the neighbourhood excluded around the PCE peak (toolbox: 11).
PCE_EXCLUDE = 11


@nb.njit(cache=True, nogil=True)
def _ncc_kernel(a, b):
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for i in range(a.shape[0]):
        x = np.float64(a[i])
        y = np.float64(b[i])
        sab += x * y
        saa += x * x
        sbb += y * y
    den = math.sqrt(saa * sbb)
    if den == 0.0:
        return np.nan
    return sab / den


def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise DippasInputError(f"shapes differ: {a.shape} and {b.shape}")


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation with no mean removal (paper eq. 2).

    ``sum(a * b) / (||a||_F ||b||_F)``, accumulated in float64.

    Parameters
    ----------
    a, b : ndarray
        Arrays of the same shape.

    Returns
    -------
    float
        In [-1, 1]; NaN when either array is all zeros.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    _same_shape(a, b)
    return float(_ncc_kernel(np.ascontiguousarray(a, dtype=np.float32).ravel(),
                             np.ascontiguousarray(b, dtype=np.float32).ravel()))


def crosscorr_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Circular cross-correlation of the mean-removed signals.

    ``C[dy, dx] = sum_{i,j} a'[i, j] * b'[i - dy, j - dx]`` (indices modulo
    the size), with ``a' = a - mean(a)`` and ``b' = b - mean(b)``.

    Returns
    -------
    ndarray, float64, same shape as ``a``
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    _same_shape(a, b)
    fa = sfft.rfft2(a - a.mean(), workers=-1)
    fb = sfft.rfft2(b - b.mean(), workers=-1)
    return sfft.irfft2(fa * np.conj(fb), s=a.shape, workers=-1)


def pce(a: np.ndarray, b: np.ndarray, search: bool = False,
        exclude: int = PCE_EXCLUDE) -> tuple[float, tuple[int, int]]:
    """Peak-to-correlation energy of two signals.

    Parameters
    ----------
    a, b : ndarray, shape (H, W)
        Usually the residual W and ``gray(I) * K``.
    search : bool, optional
        False (default): the toolbox's zero-shift PCE, the peak is the value
        at shift (0, 0). True: the peak is the largest value over all shifts
        (for a possibly cropped or shifted image).
    exclude : int, optional
        Side of the square neighbourhood of the peak left out of the energy
        (wrap-around), 11 in the toolbox.

    Returns
    -------
    pce : float
        ``sign(peak) * peak**2 / mean(C**2 outside the neighbourhood)``.
    shift : (int, int)
        Shift of the peak, in ``[-H/2, H/2) x [-W/2, W/2)``.
    """
    c = crosscorr_2d(a, b)
    h, w = c.shape
    if exclude < 1 or exclude >= min(h, w):
        raise DippasInputError(f"exclude must be between 1 and {min(h, w) - 1}, got {exclude}")
    if search:
        py, px = np.unravel_index(int(np.argmax(c)), c.shape)
    else:
        py, px = 0, 0
    peak = float(c[py, px])
    r = exclude // 2
    mask = np.ones_like(c, dtype=bool)
    rows = (np.arange(py - r, py - r + exclude) % h)[:, None]
    cols = (np.arange(px - r, px - r + exclude) % w)[None, :]
    mask[rows, cols] = False
    energy = float(np.mean(c[mask] ** 2))
    value = math.copysign(peak * peak / energy, peak) if energy > 0 else float("nan")
    shift = (int(py if py < h - h // 2 else py - h), int(px if px < w - w // 2 else px - w))
    return value, shift


def attribution_reference(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """``gray(I) * K``, the signal the residual is correlated with.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        0-255 units (see :func:`dippas.validation.to_float255`).
    fingerprint : ndarray, shape (H, W)

    Returns
    -------
    ndarray, shape (H, W), float32
    """
    return rgb2gray(to_float255(image)) * np.asarray(fingerprint, dtype=np.float32)


def attribution_scores(image: np.ndarray, fingerprint: np.ndarray, sigma: float = 3.0,
                       pce_threshold: float = PCE_THRESHOLD,
                       residual: np.ndarray | None = None) -> dict:
    """Attribution test of an image against a device fingerprint.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
    fingerprint : ndarray, shape (H, W)
        Fingerprint K of the candidate device, same size as the image.
    sigma : float, optional
        Residual noise level, 0-255 units.
    pce_threshold : float, optional
        Decision threshold on the zero-shift PCE (default 60).
    residual : ndarray, optional
        Precomputed ``noise_residual(image, sigma)``.

    Returns
    -------
    dict
        ``ncc``, ``pce`` (zero shift, 11x11 exclusion), ``pce_search`` and
        ``pce_search_shift`` (peak searched over all shifts), ``pixels``,
        ``pce_threshold``, the equivalent NCC threshold
        ``ncc_threshold = sqrt(pce_threshold / pixels)`` and ``match``
        (``pce >= pce_threshold``).

    Notes
    -----
    Under no match, PCE is roughly chi-square with one degree of freedom
    whatever the size, so a fixed PCE threshold fixes the false-alarm rate.
    A genuine image's PCE grows with its pixel count: at 512x512, genuine
    Dresden crops reach a PCE of only about 35, so at that size "no match"
    is weak evidence.
    """
    img = check_image(image)
    k = check_fingerprint(fingerprint, shape=img.shape[:2])
    w = noise_residual(img, sigma) if residual is None else np.asarray(residual, np.float32)
    x = attribution_reference(img, k)
    p0, _ = pce(w, x, search=False)
    ps, shift = pce(w, x, search=True)
    n = int(w.size)
    return {
        "ncc": ncc(w, x),
        "pce": p0,
        "pce_search": ps,
        "pce_search_shift": list(shift),
        "pixels": n,
        "pce_threshold": float(pce_threshold),
        "ncc_threshold": math.sqrt(pce_threshold / n),
        "match": bool(p0 >= pce_threshold),
    }


@nb.njit(cache=True, nogil=True)
def _cell_stats_kernel(w, x, cell, out):
    h, wd = w.shape
    for i in range(h):
        ci = i // cell
        for j in range(wd):
            cj = j // cell
            a = np.float64(w[i, j])
            b = np.float64(x[i, j])
            out[0, ci, cj] += a * b
            out[1, ci, cj] += a * a
            out[2, ci, cj] += b * b
    return out


def cell_statistics(residual: np.ndarray, reference: np.ndarray, cell: int = 16) -> np.ndarray:
    """Per-cell sums ``sum(W*X)``, ``sum(W**2)``, ``sum(X**2)``.

    Parameters
    ----------
    residual : ndarray, shape (H, W)
        W, the noise residual of an image.
    reference : ndarray, shape (H, W)
        X, usually ``gray(I) * P``.
    cell : int, optional
        Cell side c; edge cells are partial when c does not divide the size.

    Returns
    -------
    ndarray, shape (3, ceil(H/c), ceil(W/c)), float64
    """
    w = np.ascontiguousarray(residual, dtype=np.float32)
    x = np.ascontiguousarray(reference, dtype=np.float32)
    _same_shape(w, x)
    if cell < 1:
        raise DippasInputError(f"cell size must be positive, got {cell}")
    ny, nx = -(-w.shape[0] // cell), -(-w.shape[1] // cell)
    return _cell_stats_kernel(w, x, int(cell), np.zeros((3, ny, nx), dtype=np.float64))


@nb.njit(cache=True, nogil=True)
def _ncc_from_cells_kernel(stats, k, out):
    _, ny, nx = stats.shape
    nby, nbx = out.shape
    for by in range(nby):
        for bx in range(nbx):
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            for cy in range(by * k, min((by + 1) * k, ny)):
                for cx in range(bx * k, min((bx + 1) * k, nx)):
                    s0 += stats[0, cy, cx]
                    s1 += stats[1, cy, cx]
                    s2 += stats[2, cy, cx]
            den = math.sqrt(s1 * s2)
            out[by, bx] = s0 / den if den > 0.0 else np.nan
    return out


def ncc_from_cells(stats: np.ndarray, block_cells: int) -> np.ndarray:
    """Per-block NCC map from cell statistics.

    Parameters
    ----------
    stats : ndarray, shape (3, ny, nx)
        From :func:`cell_statistics`.
    block_cells : int
        Block side in cells (block size B = block_cells * c).

    Returns
    -------
    ndarray, shape (ceil(ny/k), ceil(nx/k)), float64
        NaN where a block has zero energy.
    """
    stats = np.ascontiguousarray(stats, dtype=np.float64)
    if stats.ndim != 3 or stats.shape[0] != 3:
        raise DippasInputError(f"cell statistics must have shape (3, ny, nx), got {stats.shape}")
    k = int(block_cells)
    if k < 1:
        raise DippasInputError(f"block_cells must be positive, got {block_cells}")
    out = np.empty((-(-stats.shape[1] // k), -(-stats.shape[2] // k)), dtype=np.float64)
    return _ncc_from_cells_kernel(stats, k, out)


def block_ncc_map(residual: np.ndarray, reference: np.ndarray, block: int) -> np.ndarray:
    """Per-block NCC of ``residual`` against ``reference``, computed directly.

    Blocks are ``block x block``, non-overlapping, from the top-left corner;
    edge blocks are partial when ``block`` does not divide the size.

    Returns
    -------
    ndarray, shape (ceil(H/B), ceil(W/B)), float64
    """
    return ncc_from_cells(cell_statistics(residual, reference, block), 1)
