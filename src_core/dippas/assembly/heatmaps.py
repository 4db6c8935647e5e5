"""Per-block NCC heatmap of any image against a fingerprint."""

from __future__ import annotations

import numpy as np

from ..correlation import attribution_reference, block_ncc_map
from ..errors import DippasInputError
from ..residual import noise_residual
from .geometry import BlockSize, is_whole


def image_block_ncc(image: np.ndarray, fingerprint: np.ndarray, block_size: BlockSize,
                    sigma: float = 3.0) -> np.ndarray:
    """Per-block NCC heatmap of an image (e.g. the assembled result) against P.

    W = :func:`dippas.noise_residual` of the whole image, X = ``gray(image) * P``
    (:func:`dippas.correlation.attribution_reference`), then
    :func:`dippas.block_ncc_map` on ``B x B`` blocks.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3) or (H, W)
    fingerprint : ndarray, shape (H, W)
        P, the fingerprint the blocks were ranked against.
    block_size : int, "whole" or None
        B in pixels (any positive size here); "whole"/None for one block.
    sigma : float, optional
        Residual noise level in 0-255 units.

    Returns
    -------
    ndarray, float64, shape (ceil(H/B), ceil(W/B))
    """
    img = np.asarray(image)
    p = np.asarray(fingerprint, dtype=np.float32)
    if p.shape != img.shape[:2]:
        raise DippasInputError(
            f"fingerprint shape {p.shape} differs from the image size {img.shape[:2]}")
    if is_whole(block_size):
        b = max(img.shape[0], img.shape[1])
    else:
        b = int(block_size)
        if b < 1:
            raise DippasInputError(f"block size must be positive, got {block_size!r}")
    w = noise_residual(img, sigma)
    x = attribution_reference(img, p)
    return block_ncc_map(w, x, b)
