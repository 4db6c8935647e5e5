"""Null distributions and thresholds of the audit tests.

Every test of :mod:`dippas.audit` is decided at a stated false-alarm
probability ``pfa`` (default :data:`DEFAULT_PFA`): the probability that the
test says "match" for an image that the fingerprint's camera did not take.
The thresholds below are derived from each test's null distribution; none is
tuned on data. ``docs/audit.md`` lists the false-alarm rates measured on the
shared Dresden negatives.

Correlation tests (NCC)
-----------------------
For two signals ``a`` (a noise residual) and ``b`` (``gray(I) * K``, or a
second residual), ``NCC = S / (||a|| ||b||)`` with ``S = sum(a * b)``. Under
no match the candidate fingerprint is unrelated to the image, so ``S`` is a
sum of zero-mean products ``p_i = a_i b_i`` and is close to Gaussian with
variance ``V = var(S)``. The standard deviation of the NCC is then
``sqrt(V) / (||a|| ||b||)``: about ``1 / sqrt(N)`` for white signals of ``N``
pixels.

Residuals and fingerprints are not quite white (demosaicing and the
denoiser correlate neighbouring pixels) and their power varies over the
image (more residual in textured areas). ``V`` is therefore estimated with
the heteroscedasticity- and autocorrelation-consistent (HAC, Newey-West)
estimator of the variance of a sum: the products' autocovariances up to lag
:data:`HAC_LAG` in each direction, with separable Bartlett weights, and never
below ``sum(p_i**2)``, the variance for independent pixels. With ``1/sqrt(N)``
alone, 1.3 % of the 320 shared negatives passed a 0.1 % threshold; with this
estimate 0.3 % did.

A test is two-sided: ``|NCC| >= t`` with ``t = z * sqrt(V) / (||a|| ||b||)``
and ``z`` the upper ``pfa / 2`` quantile of the standard normal (3.29 at
``1e-3``). A significant negative correlation with K betrays the camera as
surely as a positive one.

Block maximum
-------------
The largest of ``m`` block scores is compared with the null of the maximum
of ``m`` independent two-sided normal scores: each block is standardised by
its own HAC variance (``z_b = S_b / sqrt(V_b)``) and the threshold on
``max |z_b|`` is the upper ``p_m / 2`` quantile with
``p_m = 1 - (1 - pfa)**(1/m)`` (Sidak).

PCE
---
PCE divides the squared correlation peak by the mean energy of the
cross-correlation away from the peak, an estimate of the peak's variance
under no match. The signed PCE is then ``sign(z) z**2`` for a standard
normal ``z``: the zero-shift test is ``|PCE| >= z**2`` (chi-square with one
degree of freedom, two-sided, 10.83 at ``1e-3``). The searched PCE is the
largest of ``n`` shifts: one-sided, its threshold is ``z**2`` with ``z`` the
upper ``1 - (1 - pfa)**(1/n)`` quantile (33.4 for 512x512 at ``1e-3``).

AUC
---
The linking AUC compares ``n1`` within-set pair scores with ``n0`` pairs
against references. Under no shared camera all pair correlations are
uncorrelated Gaussians (``E[a_i b_j a_i c_k] = 0``), so the AUC is the
Mann-Whitney statistic of two samples of one distribution: mean 1/2,
variance ``(n0 + n1 + 1) / (12 n0 n1)``. The test is one-sided (linked
photos correlate more); the threshold can exceed 1 when the set is too small
to reach ``pfa``, and then no AUC can match.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from ..errors import DippasInputError

#: Default false-alarm probability of every audit test.
DEFAULT_PFA = 1e-3
#: Largest lag (pixels, in each direction) of the HAC variance estimate.
HAC_LAG = 2


def check_pfa(pfa: float) -> float:
    """Validate a false-alarm probability (0 < pfa < 1)."""
    try:
        p = float(pfa)
    except (TypeError, ValueError):
        raise DippasInputError(f"false-alarm probability must be a number, got {pfa!r}") from None
    if not (0.0 < p < 1.0):
        raise DippasInputError(f"false-alarm probability must be between 0 and 1, got {pfa}")
    return p


def two_sided_z(pfa: float = DEFAULT_PFA) -> float:
    """Upper ``pfa / 2`` quantile of the standard normal."""
    return float(norm.isf(check_pfa(pfa) / 2.0))


def one_sided_z(pfa: float = DEFAULT_PFA) -> float:
    """Upper ``pfa`` quantile of the standard normal."""
    return float(norm.isf(check_pfa(pfa)))


def sidak(pfa: float, m: int) -> float:
    """Per-test false-alarm probability that gives ``pfa`` for the maximum of ``m`` tests."""
    if m < 1:
        raise DippasInputError(f"need at least one test, got {m}")
    return float(-np.expm1(np.log1p(-check_pfa(pfa)) / m))


def max_z_threshold(m: int, pfa: float = DEFAULT_PFA) -> float:
    """Threshold on ``max |z|`` of ``m`` independent standard normal scores."""
    return float(norm.isf(sidak(pfa, m) / 2.0))


def pce_threshold(pfa: float = DEFAULT_PFA) -> float:
    """Threshold on ``|PCE|`` at zero shift (chi-square, 1 degree of freedom)."""
    return two_sided_z(pfa) ** 2


def pce_search_threshold(shifts: int, pfa: float = DEFAULT_PFA) -> float:
    """Threshold on the PCE whose peak is the largest of ``shifts`` shifts (one-sided)."""
    return float(norm.isf(sidak(pfa, shifts))) ** 2


def auc_threshold(n_pos: int, n_neg: int, pfa: float = DEFAULT_PFA) -> float:
    """One-sided Mann-Whitney threshold on an AUC of ``n_pos`` against ``n_neg`` scores."""
    if n_pos < 1 or n_neg < 1:
        raise DippasInputError("an AUC needs at least one score of each kind")
    sd = math.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))
    return 0.5 + one_sided_z(pfa) * sd


def _lag_pairs(p: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``q[i, j] = p[i, j] * p[i + dy, j + dx]`` where both exist, else 0 (dy >= 0)."""
    h, w = p.shape
    q = np.zeros_like(p)
    x0, x1 = max(0, -dx), w - max(0, dx)
    q[:h - dy, x0:x1] = p[:h - dy, x0:x1] * p[dy:, x0 + dx:x1 + dx]
    return q


def hac_variance(products: np.ndarray, block: int | None = None,
                 lag: int = HAC_LAG) -> np.ndarray:
    """HAC (Newey-West) variance of the sum of ``products``, whole or per block.

    Parameters
    ----------
    products : ndarray, shape (H, W)
        ``p = a * b`` (zero outside a mask, for a masked test).
    block : int, optional
        Block side: one variance per full ``block x block`` block (rows and
        columns beyond the last full block are ignored). None: one value.
    lag : int, optional
        Largest lag in each direction (default :data:`HAC_LAG`).

    Returns
    -------
    ndarray
        Shape ``(H // block, W // block)``, or ``()`` for the whole array.
        Never below the independent-pixel variance ``sum(p**2)``.
    """
    p = np.asarray(products, dtype=np.float64)
    if block is not None:
        h, w = (p.shape[0] // block) * block, (p.shape[1] // block) * block
        if h == 0 or w == 0:
            raise DippasInputError(f"image {p.shape} is smaller than one {block}px block")
        p = p[:h, :w]

    def total(q: np.ndarray) -> np.ndarray:
        if block is None:
            return np.asarray(q.sum())
        return q.reshape(h // block, block, w // block, block).sum(axis=(1, 3))

    base = total(p * p)
    v = base.copy()
    for dy in range(lag + 1):
        for dx in range(-lag, lag + 1):
            if dy == 0 and dx <= 0:
                continue
            weight = (1.0 - dy / (lag + 1.0)) * (1.0 - abs(dx) / (lag + 1.0))
            v = v + 2.0 * weight * total(_lag_pairs(p, dy, dx))
    return np.maximum(v, base)


def ncc_null_sd(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Standard deviation of ``NCC(a, b)`` under no match (HAC estimate, see module notes)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        a = np.where(m, a, 0.0)
        b = np.where(m, b, 0.0)
    den = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
    if den == 0.0:
        return float("nan")
    return math.sqrt(float(hac_variance(a * b))) / den


def block_z_map(a: np.ndarray, b: np.ndarray, block: int) -> np.ndarray:
    """Per-block standardised correlation ``S_b / sqrt(V_b)`` over full blocks."""
    p = np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)
    v = hac_variance(p, block)
    h, w = v.shape[0] * block, v.shape[1] * block
    s = p[:h, :w].reshape(v.shape[0], block, v.shape[1], block).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(v > 0, s / np.sqrt(v), np.nan)
