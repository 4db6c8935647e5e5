"""Bundled sample data: a public-domain photo with a simulated camera fingerprint.

The photo is scikit-image's ``astronaut`` (NASA, public domain), shipped
inside the scikit-image wheel, so nothing is downloaded. A simulated PRNU
K (zero-mean white Gaussian, seeded) is applied multiplicatively,
``I = I0 (1 + K)``, as in the image model of the paper, so the sample is
attributable to its "camera" K while the original astronaut is not.
"""

from __future__ import annotations

import numpy as np

#: Standard deviation of the simulated PRNU (relative gain).
DEFAULT_PRNU_STRENGTH = 0.01


def simulated_fingerprint(shape: tuple[int, int], strength: float = DEFAULT_PRNU_STRENGTH,
                          seed: int = 0) -> np.ndarray:
    """A zero-mean Gaussian PRNU pattern.

    Parameters
    ----------
    shape : (int, int)
    strength : float
        Standard deviation of the relative gain.
    seed : int

    Returns
    -------
    ndarray, float32, shape ``shape``
    """
    rng = np.random.default_rng(seed)
    k = rng.standard_normal(shape).astype(np.float32)
    k -= k.mean()
    return k * np.float32(strength / k.std())


def apply_fingerprint(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """``I0 (1 + K)`` on every channel, rounded and clipped to uint8."""
    img = np.asarray(image, dtype=np.float32)
    k = np.asarray(fingerprint, dtype=np.float32)
    if img.ndim == 3:
        k = k[:, :, None]
    return np.clip(np.rint(img * (1.0 + k)), 0, 255).astype(np.uint8)


def camera_sample(size: int = 256, strength: float = DEFAULT_PRNU_STRENGTH,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The demo photo and its camera fingerprint.

    Parameters
    ----------
    size : int
        Side of the centre crop of the 512x512 astronaut (default 256).
    strength : float
        Standard deviation of the simulated PRNU.
    seed : int
        Seed of the fingerprint.

    Returns
    -------
    image : ndarray, uint8, (size, size, 3)
        The photo "taken" by the simulated camera.
    fingerprint : ndarray, float32, (size, size)
        Its fingerprint K.
    """
    from skimage.data import astronaut

    from .fingerprint import centre_crop

    base = centre_crop(astronaut(), (size, size))
    k = simulated_fingerprint((size, size), strength, seed)
    return apply_fingerprint(base, k), k
