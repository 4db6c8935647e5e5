"""dippas: remove the camera sensor fingerprint (PRNU) from photos.

The headless core of napari-dippas. Functions work on NumPy arrays in the
style of scikit-image; pixel values are in 0-255 units (uint8, uint16 scaled
by 1/257, or float already in 0-255). The core never imports Qt or napari.
"""

from .correlation import (
    attribution_scores,
    block_ncc_map,
    cell_statistics,
    ncc,
    ncc_from_cells,
    pce,
)
from .errors import Cancelled, DippasInputError
from .fingerprint import estimate_fingerprint
from .residual import noise_residual, noise_residual_rgb, rgb2gray

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "DippasInputError",
    "attribution_scores",
    "block_ncc_map",
    "cell_statistics",
    "estimate_fingerprint",
    "ncc",
    "ncc_from_cells",
    "noise_residual",
    "noise_residual_rgb",
    "pce",
    "rgb2gray",
]
