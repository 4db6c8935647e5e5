"""Inpainting-based camera anonymization (Mandelli et al., ICIP 2017).

Every pixel is inpainted from its neighbours by a regularised inversion in
which it was hidden, so the PRNU it carried is lost; pixels near edges are
then taken from a denoised original. See :func:`inpaint_anonymize`.

Modules
-------
masks
    The pixel selectors (holes on a periodic grid).
solver
    The per-hole regularised inversion (L2 or TV by IRLS), in Numba.
denoisers
    The name -> function registry of denoisers for the edge reconstruction.
edges
    Canny edges of the denoised image, dilated with a disk.
anonymize
    The whole method.
"""

from .anonymize import InpaintingResult, inpaint_anonymize, inpaint_anonymize_result
from .denoisers import (
    DEFAULT_DENOISER,
    available_denoisers,
    denoise,
    get_denoiser,
    register_denoiser,
)
from .edges import canny_edges, dilate_edges, edge_mask
from .masks import hole_period, mask_index_map, mask_offsets, selector_mask, selector_masks
from .solver import DEFAULT_TV_EPS, DEFAULT_TV_ROUNDS, inpaint_mask, inpaint_plane

__all__ = [
    "DEFAULT_DENOISER",
    "DEFAULT_TV_EPS",
    "DEFAULT_TV_ROUNDS",
    "InpaintingResult",
    "available_denoisers",
    "canny_edges",
    "denoise",
    "dilate_edges",
    "edge_mask",
    "get_denoiser",
    "hole_period",
    "inpaint_anonymize",
    "inpaint_anonymize_result",
    "inpaint_mask",
    "inpaint_plane",
    "mask_index_map",
    "mask_offsets",
    "register_denoiser",
    "selector_mask",
    "selector_masks",
]
