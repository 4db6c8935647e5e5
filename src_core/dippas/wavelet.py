"""2-D ``db4`` wavelet transform with symmetric boundaries (PyWavelets layout).

The residual needs a 4-level decomposition and its inverse with exactly the
coefficient layout of ``pywt.wavedec2(x, 'db4', mode='symmetric')``, because
the adaptive Wiener rule depends on the boundary coefficients.
"""

from __future__ import annotations

import numpy as np
import pywt

WAVELET = "db4"
MODE = "symmetric"


def wavedec2(x: np.ndarray, levels: int) -> list:
    """Multi-level 2-D decomposition, ``[cA_n, (cH_n, cV_n, cD_n), ..., (cH_1, cV_1, cD_1)]``.

    Parameters
    ----------
    x : ndarray, shape (H, W), float32
    levels : int

    Returns
    -------
    list
        Same layout and values as ``pywt.wavedec2(x, 'db4', 'symmetric', levels)``.
    """
    return pywt.wavedec2(x, WAVELET, mode=MODE, level=levels)


def waverec2(coeffs: list) -> np.ndarray:
    """Inverse of :func:`wavedec2` (may be one pixel larger than the input on odd sides)."""
    return pywt.waverec2(coeffs, WAVELET, mode=MODE)
