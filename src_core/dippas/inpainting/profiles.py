"""Named profiles of the inpainting anonymizer: every option of one recipe in one place.

A profile fixes the hole geometry, the regulariser, the border treatment
and the whole edge reconstruction. :func:`dippas.inpainting.inpaint_anonymize`
takes a profile name (default :data:`DEFAULT_PROFILE`) and lets single
options override it.

Profiles
--------
``'paper'``
    The authors' recipe (ICIP 2017 slides and the method description):
    hole 5, TV by 4 IRLS rounds with their isotropic weights
    ``g / (g**2 + eps)`` on [0, 1] data, the plane padded symmetrically by
    one period and each mask's result rescaled to the original's range;
    edges by MATLAB's ``edge(I, 'canny')`` defaults on the gray of the
    colour BM3D (``sigma = 7``, profile ``'lc'``, applied twice) of the
    original, dilated by ``strel('disk', 3)``. Needs the extra ``[bm3d]``.
``'classic'``
    This package's first default (hole 5, L2, non-local means edges,
    scikit-image Canny with thresholds 4 and 8, exact disk of radius 3).
``'tv'`` (the default)
    ``'classic'`` with the TV regulariser (4 IRLS rounds, anisotropic
    weights). On the tuning protocol (``benchmarks/tune_protocol.py``, 64
    quadrants, ``docs/evaluation.md``) it keeps the AUC of ``'classic'``
    (paired difference -0.008, 95 % interval [-0.047, +0.030]) at a PSNR
    higher by 0.53 dB (interval [0.42, 0.66]): AUC 0.503, PSNR 39.52 dB,
    C 39.30 against 0.510, 38.98 dB, 38.19. The difference in C alone
    (+1.12, interval [-2.26, +3.55]) is within the noise of the AUC.

Every profile is blind. The K-aware step (:mod:`dippas.inpainting.prnu`,
``fingerprint=`` of :func:`dippas.inpainting.inpaint_anonymize_result`) is
a research option: on 8-bit outputs it raised the AUC (see
``docs/evaluation.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import DippasInputError
from .edges import CANNY_HIGH, CANNY_LOW, CANNY_SIGMA, EDGE_RADIUS
from .solver import ISO_TV_EPS


@dataclass(frozen=True)
class InpaintingProfile:
    """Every option of the inpainting anonymizer.

    Attributes
    ----------
    name, description : str
    hole : int
        Hole side B (3 or 5).
    reg : str
        ``'l2'`` or ``'tv'``.
    delta : int
        Derivative step.
    tv_rounds : int
        IRLS solves of TV.
    tv_eps : float
        IRLS floor: 0-255 units for ``'aniso'`` weights, the ``eps`` of
        ``g / (g**2 + eps)`` on [0, 1] data for ``'iso'``.
    tv_weights : str
        ``'aniso'`` or ``'iso'``.
    border : str
        ``'drop'`` or ``'symmetric'``.
    rescale : bool
        Rescale each mask's result to the original's range.
    edges : bool
        Take the pixels near edges from the denoised original.
    denoiser : str
        Registered denoiser of the edge reconstruction.
    edge_detector : str
        ``'fixed'`` (scikit-image Canny, thresholds below) or ``'matlab'``.
    canny_sigma, canny_low, canny_high : float
        Options of the ``'fixed'`` detector.
    footprint : str
        Dilation footprint, ``'disk'`` or ``'strel'``.
    edge_radius : int
        Dilation radius.
    mix_weight : float
        Weight of a second inpainting (``mix_hole``, ``mix_delta``, same
        regulariser) averaged with the first (0: none). Inpainting from
        neighbours at distance 3 leaves a small negative correlation with K,
        from distance 1 a positive one (``docs/evaluation.md``); a mix can
        cancel them.
    mix_hole, mix_delta : int
        Geometry of the second inpainting.
    """

    name: str
    description: str
    hole: int = 5
    reg: str = "l2"
    delta: int = 3
    tv_rounds: int = 4
    tv_eps: float = 1.0
    tv_weights: str = "aniso"
    border: str = "drop"
    rescale: bool = False
    edges: bool = True
    denoiser: str = "nl_means"
    edge_detector: str = "fixed"
    canny_sigma: float = CANNY_SIGMA
    canny_low: float = CANNY_LOW
    canny_high: float = CANNY_HIGH
    footprint: str = "disk"
    edge_radius: int = EDGE_RADIUS
    mix_weight: float = 0.0
    mix_hole: int = 5
    mix_delta: int = 1

    def options(self) -> dict:
        """The options as a dict, without ``name`` and ``description``."""
        d = asdict(self)
        d.pop("name")
        d.pop("description")
        return d

    def with_options(self, **overrides) -> InpaintingProfile:
        """A copy with some options replaced (None values are ignored)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - set(self.options())
        if unknown:
            raise DippasInputError(f"unknown inpainting option(s): {', '.join(sorted(unknown))}")
        return replace(self, **given) if given else self


PROFILES: dict[str, InpaintingProfile] = {
    p.name: p for p in (
        InpaintingProfile(
            "paper", "the authors' recipe: TV with isotropic IRLS, symmetric padding and per-mask "
            "rescaling, BM3D (twice, sigma 7, 'lc') edges by MATLAB Canny, strel('disk', 3)",
            reg="tv", tv_weights="iso", tv_eps=ISO_TV_EPS, border="symmetric", rescale=True,
            denoiser="bm3d", edge_detector="matlab", footprint="strel"),
        InpaintingProfile(
            "classic", "hole 5, L2, non-local means edges (Canny 4/8, disk 3): the first default"),
        InpaintingProfile(
            "tv", "hole 5, TV (4 IRLS rounds), non-local means edges (Canny 4/8, disk 3)", reg="tv"),
    )
}

#: The profile used when none is named: the one place that holds the default.
DEFAULT_PROFILE = "tv"


def available_profiles() -> list[str]:
    """Names of the registered profiles."""
    return list(PROFILES)


def get_profile(profile: str | InpaintingProfile | None = None) -> InpaintingProfile:
    """Resolve a profile name (None: :data:`DEFAULT_PROFILE`) or pass a profile through.

    Raises
    ------
    DippasInputError
        On an unknown name.
    """
    if isinstance(profile, InpaintingProfile):
        return profile
    name = DEFAULT_PROFILE if profile is None else profile
    if not isinstance(name, str) or name not in PROFILES:
        raise DippasInputError(f"unknown inpainting profile {profile!r}; choose one of "
                               f"{', '.join(PROFILES)}")
    return PROFILES[name]
