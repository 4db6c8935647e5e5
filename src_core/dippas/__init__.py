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


def __getattr__(name: str):
    """Lazy exports that pull in heavier modules (torch for DIPPAS) only when used."""
    if name in ("anonymize_dippas", "invert_to_run", "assemble_run"):
        from . import anonymize

        return getattr(anonymize, name)
    if name == "inpaint_anonymize":
        from .inpainting import inpaint_anonymize

        return inpaint_anonymize
    raise AttributeError(f"module 'dippas' has no attribute {name!r}")

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "anonymize_dippas",
    "assemble_run",
    "inpaint_anonymize",
    "invert_to_run",
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
