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
    Canny edges of the denoised image (fixed thresholds or MATLAB's
    defaults), dilated with a disk or MATLAB's ``strel('disk', 3)``.
prnu
    The K-aware step: null the correlation with a known fingerprint.
profiles
    Named recipes (``'paper'``, ``'classic'``, ``'balanced'``) and the
    default profile.
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
from .edges import canny_edges, canny_matlab, dilate_edges, edge_mask, strel_disk
from .profiles import DEFAULT_PROFILE, PROFILES, InpaintingProfile, available_profiles, get_profile
from .prnu import null_prnu
from .masks import hole_period, mask_index_map, mask_offsets, selector_mask, selector_masks
from .solver import DEFAULT_TV_EPS, DEFAULT_TV_ROUNDS, inpaint_mask, inpaint_plane

__all__ = [
    "DEFAULT_DENOISER",
    "DEFAULT_PROFILE",
    "InpaintingProfile",
    "PROFILES",
    "available_profiles",
    "canny_matlab",
    "get_profile",
    "null_prnu",
    "strel_disk",
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
