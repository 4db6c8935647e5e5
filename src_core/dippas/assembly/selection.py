"""Candidate snapshots by PSNR: the τ_PSNR rule and its best-PSNR fallback."""

from __future__ import annotations

import math

import numpy as np

from ..errors import DippasInputError


def select_snapshots(psnr: np.ndarray, psnr_threshold: float | None) -> np.ndarray:
    """Indices of the snapshots that take part in the assembly.

    Parameters
    ----------
    psnr : ndarray, shape (M,)
        PSNR of each snapshot against the input image, in dB.
    psnr_threshold : float or None
        tau_PSNR in dB. None keeps every snapshot.

    Returns
    -------
    ndarray of int64, shape (M',), increasing
        The snapshots with ``psnr >= psnr_threshold``. If none reaches the
        threshold, the snapshots at the best PSNR reached (every snapshot
        whose PSNR equals the maximum; NaN PSNRs are ignored).

    Raises
    ------
    DippasInputError
        If there is no snapshot, the threshold is NaN, or (with a threshold)
        no snapshot has a PSNR that is not NaN.
    """
    p = np.asarray(psnr, dtype=np.float64).reshape(-1)
    if p.size == 0:
        raise DippasInputError("the run holds no snapshot to assemble")
    if psnr_threshold is None:
        return np.arange(p.size, dtype=np.int64)
    tau = float(psnr_threshold)
    if math.isnan(tau):
        raise DippasInputError("the PSNR threshold must be a number, got NaN")
    keep = np.flatnonzero(p >= tau)
    if keep.size:
        return keep.astype(np.int64)
    valid = ~np.isnan(p)
    if not valid.any():
        raise DippasInputError("no snapshot has a valid PSNR")
    return np.flatnonzero(valid & (p == p[valid].max())).astype(np.int64)


def reaches_threshold(psnr: np.ndarray, psnr_threshold: float | None) -> bool:
    """Whether at least one snapshot reaches ``psnr_threshold`` (no fallback)."""
    if psnr_threshold is None:
        return True
    return bool(np.any(np.asarray(psnr, dtype=np.float64) >= float(psnr_threshold)))
