"""The pattern P injected into the inversion: a fingerprint K, or the image's own residual."""

from __future__ import annotations

import numpy as np

from ..residual import noise_residual
from ..validation import check_fingerprint, check_image

def injection_pattern(image: np.ndarray, fingerprint: np.ndarray | None = None,
                      sigma: float = 3.0) -> tuple[np.ndarray, str]:
    """The pattern P of the loss ``||I_phi (1 + gamma P) - I||^2`` and the mode.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        The image to anonymize (0-255 units, see :mod:`dippas.validation`).
    fingerprint : ndarray, shape (H, W), optional
        The camera's fingerprint K (PRNU-aware mode). When ``None``, the
        PRNU-blind mode injects the image's own noise residual
        ``W = noise_residual(image, sigma)``, as in the paper (eq. 11).
    sigma : float, optional
        Residual noise level of the blind mode, 0-255 units (default 3).

    Returns
    -------
    pattern : ndarray, shape (H, W), float32
        K as given, or W in the residual's 0-255 units (gamma absorbs the scale).
    mode : {'aware', 'blind'}

    Raises
    ------
    DippasInputError
        On a bad image, or a fingerprint with NaN values or the wrong shape.
    """
    img = check_image(image)
    if fingerprint is None:
        return noise_residual(img, sigma).astype(np.float32, copy=False), "blind"
    return check_fingerprint(fingerprint, shape=img.shape[:2]), "aware"
