"""dippas: remove the camera sensor fingerprint (PRNU) from photos.

The headless core of napari-dippas. Functions work on NumPy arrays in the
style of scikit-image; pixel values are in 0-255 units (uint8, uint16 scaled
by 1/257, or float already in 0-255). The core never imports Qt or napari.
"""

# How OpenMP threads (torch's and Numba's) wait: spinning on an idle machine,
# sleeping on a busy one (see the module). Only effective before torch or
# Numba start their OpenMP runtime; a user's OMP_WAIT_POLICY wins.
from .openmp_policy import set_default_wait_policy as _set_wait_policy

_set_wait_policy()

from .correlation import (  # noqa: E402
    attribution_scores,
    block_ncc_map,
    cell_statistics,
    ncc,
    ncc_from_cells,
    pce,
)
from .errors import Cancelled, DippasInputError  # noqa: E402
from .fingerprint import estimate_fingerprint  # noqa: E402
from .residual import noise_residual, noise_residual_rgb, rgb2gray  # noqa: E402


def __getattr__(name: str):
    """Lazy exports that pull in heavier modules (torch for DIPPAS) only when used."""
    if name in ("anonymize_dippas", "invert_to_run", "assemble_run"):
        from . import anonymize

        return getattr(anonymize, name)
    if name == "inpaint_anonymize":
        from .inpainting import inpaint_anonymize

        return inpaint_anonymize
    if name in ("run_audit", "camera_fingerprint"):
        # ``dippas.audit`` is the subpackage; its entry point is exported as ``run_audit``.
        from . import audit as _audit

        return _audit.audit if name == "run_audit" else _audit.camera_fingerprint
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
    "camera_fingerprint",
    "cell_statistics",
    "estimate_fingerprint",
    "ncc",
    "ncc_from_cells",
    "noise_residual",
    "noise_residual_rgb",
    "pce",
    "rgb2gray",
    "run_audit",
]
