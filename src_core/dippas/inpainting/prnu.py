"""K-aware step of the inpainting anonymizer: null the correlation with a known fingerprint.

When the camera's fingerprint ``K`` is known, the output ``O`` is divided,
region by region, by ``1 + gamma_r K``: the regions are the reconstructed
edge pixels (copied from the denoised original, so they keep a positive
correlation with ``K``) and the inpainted pixels (which keep a small
negative one, see ``docs/evaluation.md``). Each ``gamma_r`` is chosen so
that the attribution statistic restricted to that region,
``NCC(W(O)[r], (gray(O) K)[r])``, is zero; W is the standard noise
residual. The NCC's numerator ``sum(W X)`` is nearly linear in the gains
(its denominator is not, when the PRNU dominates W), so Newton steps on
the numerators with a finite-difference Jacobian (one residual per region
and per step) land on zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DippasInputError

#: Newton steps of :func:`null_prnu` (each costs ``len(regions) + 1`` residuals).
NULL_STEPS = 2
#: Finite-difference step, as the RMS of the multiplicative pattern
#: ``gamma K`` (1 %: a strong PRNU). Fingerprints come in arbitrary scales
#: (the estimator's is about 255 times the physical one), so the gains are
#: measured against the fingerprint's own RMS.
NULL_PROBE = 0.01
#: Regions with fewer pixels are left alone: their NCC is too noisy to null.
MIN_REGION_PIXELS = 4096
#: Gains are kept to a pattern of at most this RMS (5 %): beyond, it is
#: no longer a correction.
GAIN_LIMIT = 0.05


def _divide(image: np.ndarray, k: np.ndarray, regions: Sequence[np.ndarray],
            gains: np.ndarray) -> np.ndarray:
    out = np.array(image, dtype=np.float32, copy=True)
    o3 = out[:, :, None] if out.ndim == 2 else out
    for m, g in zip(regions, gains):
        if g != 0.0:
            # floor: a fingerprint outlier must not flip or blow up a pixel
            o3[m] /= np.maximum(1.0 + np.float32(g) * k[m], np.float32(0.5))[:, None]
    return out


def region_nccs(image: np.ndarray, fingerprint: np.ndarray, regions: Sequence[np.ndarray],
                sigma: float = 3.0) -> np.ndarray:
    """``NCC(W(I)[r], (gray(I) K)[r])`` for every region ``r`` (NaN for an empty one)."""
    from ..correlation import attribution_reference, ncc
    from ..residual import noise_residual

    w = noise_residual(image, sigma)
    x = attribution_reference(image, fingerprint)
    return np.array([ncc(w[m], x[m]) if m.any() else np.nan for m in regions])


def _region_correlations(image: np.ndarray, k: np.ndarray, regions: Sequence[np.ndarray],
                         sigma: float) -> np.ndarray:
    """``sum(W X)`` per region: the NCC's numerator, nearly linear in the gains."""
    from ..correlation import attribution_reference
    from ..residual import noise_residual

    w = noise_residual(image, sigma).astype(np.float64)
    x = attribution_reference(image, k).astype(np.float64)
    return np.array([float(np.dot(w[m], x[m])) for m in regions])


def null_prnu(image: np.ndarray, fingerprint: np.ndarray, regions: Sequence[np.ndarray],
              sigma: float = 3.0, steps: int = NULL_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Divide each region by ``1 + gamma_r K`` so that its NCC with ``gray(I) K`` is zero.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, 3), float
        0-255 units.
    fingerprint : ndarray, (H, W)
        The camera's fingerprint K.
    regions : sequence of bool ndarray (H, W)
        Disjoint pixel sets; those under :data:`MIN_REGION_PIXELS` are
        left alone. Gains are clipped so that ``gamma K`` has an RMS of at
        most :data:`GAIN_LIMIT`.
    sigma : float, optional
        Noise level of the residual, 0-255 units (default 3, the standard test).
    steps : int, optional
        Newton steps (default 2).

    Returns
    -------
    image : ndarray, float32
        The corrected image (unclipped).
    gains : ndarray
        ``gamma_r`` per region.
    """
    k = np.asarray(fingerprint, dtype=np.float32)
    if k.shape != image.shape[:2]:
        raise DippasInputError(f"fingerprint is {k.shape[0]}x{k.shape[1]}, the image "
                               f"{image.shape[0]}x{image.shape[1]}")
    if not np.isfinite(k).all():
        raise DippasInputError("fingerprint contains NaN or infinite values")
    regs = [np.asarray(m, dtype=bool) for m in regions]
    live = [i for i, m in enumerate(regs) if m.sum() >= MIN_REGION_PIXELS]
    gains = np.zeros(len(regs))
    if not live:
        return np.array(image, dtype=np.float32, copy=True), gains
    rms = float(np.sqrt(np.mean(np.square(k, dtype=np.float64))))
    if not rms > 0:
        return np.array(image, dtype=np.float32, copy=True), gains
    probe, limit = NULL_PROBE / rms, GAIN_LIMIT / rms
    for _ in range(int(steps)):
        n0 = _region_correlations(_divide(image, k, regs, gains), k, regs, sigma)[live]
        jac = np.empty((len(live), len(live)))
        for c, i in enumerate(live):
            g = gains.copy()
            g[i] += probe
            jac[:, c] = (_region_correlations(_divide(image, k, regs, g), k, regs, sigma)[live] - n0) / probe
        try:
            delta = np.linalg.solve(jac, -n0)
        except np.linalg.LinAlgError:
            break
        gains[live] = np.clip(gains[live] + delta, -limit, limit)
    return _divide(image, k, regs, gains), gains
