"""Inpainting-based camera anonymization (Mandelli et al., ICIP 2017).

Every pixel is replaced by a value inpainted from its neighbours, so the
multiplicative PRNU it carried is lost:

1. selector masks hide ``B x B`` holes on a grid of period ``p``
   (:mod:`dippas.inpainting.masks`);
2. for every mask and colour plane, a regularised inversion fills the holes
   from the visible pixels (:mod:`dippas.inpainting.solver`);
3. the output takes each pixel from the inversion of the mask that hid it;
4. optionally (on by default) the pixels near edges, which inpainting
   blurs, are taken from a denoised original
   (:mod:`dippas.inpainting.edges`, :mod:`dippas.inpainting.denoisers`).

Every option comes from a named profile (:mod:`dippas.inpainting.profiles`,
default ``'tv'``) unless given explicitly.

Memory: the denoised original is written straight into the float32 output
and the inversion runs one colour plane at a time, so besides the input and
the output the working set is one denoising tile (1024x1024 and its
margin), Canny's float temporaries on the gray image, the edge mask and two
float32 planes: about 3.7 times the float32 image at the peak (253 MiB for
a 3008x2000 RGB photo).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import DippasInputError
from ..progress import CancelToken, Steps
from ..dtype import float255_to_dtype, to_float255
from ..validation import check_image
from .denoisers import DenoiserFunc, denoise, denoise_tile_count, get_denoiser, require_bm3d
from .edges import EDGE_DETECTORS, FOOTPRINTS, check_edge_options, edge_mask, strel_disk
from .masks import check_hole_delta, hole_period, mask_offsets
from .profiles import PROFILES, InpaintingProfile, get_profile
from .solver import (
    check_border,
    check_regulariser,
    check_tv_options,
    check_tv_weights,
    inpaint_plane,
)

ProgressFunc = Callable[[int, int], None]


@dataclass
class InpaintingResult:
    """Output of :func:`inpaint_anonymize_result`.

    Attributes
    ----------
    image : ndarray, float32
        The anonymized image in 0-255 units, unrounded and unclipped, shaped
        like the input (``(H, W)`` or ``(H, W, 3)``).
    edges : ndarray of bool, shape (H, W), or None
        The pixels taken from the denoised original; None when edge
        reconstruction is off.
    params : dict
        The parameters used: ``profile``, ``hole``, ``delta``, ``period``,
        ``n_masks``, ``reg``, ``tv_rounds``, ``tv_eps``, ``tv_weights``,
        ``border``, ``rescale``, ``mix_weight``, ``mix_hole``,
        ``mix_delta``, ``edges``, ``denoiser``, ``edge_detector``,
        ``canny_sigma``, ``canny_low``, ``canny_high``, ``footprint``,
        ``edge_radius``, ``edge_fraction`` (share of pixels in the edge
        mask) and ``k_aware``.
    prnu_gains : list of float or None
        Gains of the K-aware step (edge pixels, inpainted pixels), relative
        to the fingerprint's scale; None without a fingerprint.
    """

    image: np.ndarray
    edges: np.ndarray | None
    params: dict = field(default_factory=dict)
    prnu_gains: list[float] | None = None


def _denoiser_name(denoiser: str | DenoiserFunc) -> str:
    if isinstance(denoiser, str):
        return denoiser
    return getattr(denoiser, "__name__", type(denoiser).__name__)


def _as_float_plane(arr: np.ndarray, channel: int | None) -> np.ndarray:
    """One plane of ``arr`` as a C-contiguous float32 array in 0-255 units."""
    plane = arr if channel is None else arr[:, :, channel]
    out = np.ascontiguousarray(plane, dtype=np.float32)
    if arr.dtype == np.uint16:
        out /= np.float32(257.0)
    return out


def _check_profile(prof: InpaintingProfile) -> InpaintingProfile:
    """Validate every option of a resolved profile (before any work)."""
    hole, delta = check_hole_delta(prof.hole, prof.delta)
    reg = check_regulariser(prof.reg)
    tv_rounds, tv_eps = check_tv_options(prof.tv_rounds, prof.tv_eps)
    check_tv_weights(prof.tv_weights)
    check_border(prof.border)
    if not isinstance(prof.edges, (bool, np.bool_)):
        raise DippasInputError(f"edges must be True or False, got {prof.edges!r}")
    if not isinstance(prof.rescale, (bool, np.bool_)):
        raise DippasInputError(f"rescale must be True or False, got {prof.rescale!r}")
    if prof.edge_detector not in EDGE_DETECTORS:
        raise DippasInputError(f"unknown edge detector {prof.edge_detector!r}; choose one of "
                               f"{', '.join(EDGE_DETECTORS)}")
    if prof.footprint not in FOOTPRINTS:
        raise DippasInputError(f"unknown footprint {prof.footprint!r}; choose one of {', '.join(FOOTPRINTS)}")
    if prof.footprint == "strel" and prof.edges:
        strel_disk(prof.edge_radius)
    try:
        mix = float(prof.mix_weight)
    except (TypeError, ValueError):
        raise DippasInputError(f"mix_weight must be a number in [0, 1], got {prof.mix_weight!r}") from None
    if not 0.0 <= mix <= 1.0:
        raise DippasInputError(f"mix_weight must be a number in [0, 1], got {prof.mix_weight!r}")
    mix_hole, mix_delta = check_hole_delta(prof.mix_hole, prof.mix_delta)
    if prof.edges and prof.denoiser == "bm3d":
        require_bm3d(f"inpainting profile {prof.name!r}" if prof.name in PROFILES
                     and PROFILES[prof.name].denoiser == "bm3d" else "denoiser 'bm3d'")
    # An unknown name is refused either way; an optional package is only needed when used.
    get_denoiser(prof.denoiser, require_installed=bool(prof.edges))
    check_edge_options(prof.canny_sigma, prof.canny_low, prof.canny_high, prof.edge_radius)
    return replace(prof, hole=hole, delta=delta, reg=reg, tv_rounds=tv_rounds, tv_eps=tv_eps,
                   mix_weight=mix, mix_hole=mix_hole, mix_delta=mix_delta)


def _check_input(image: np.ndarray, period: int, hole: int) -> np.ndarray:
    """Validated image: uint8, uint16 or float32 in 0-255 units, (H, W) or (H, W, 3)."""
    arr = check_image(image, min_side=1)
    h, w = arr.shape[:2]
    if h < period or w < period:
        raise DippasInputError(
            f"image is {h}x{w} pixels; inpainting with holes of {hole} needs at least one "
            f"period, {period}x{period}"
        )
    if np.issubdtype(arr.dtype, np.floating):
        arr = to_float255(arr)  # float32, refuses images scaled to [0, 1]
    return arr


def _check_fingerprint(fingerprint, shape: tuple[int, int]) -> np.ndarray | None:
    if fingerprint is None:
        return None
    from ..validation import check_fingerprint

    return np.asarray(check_fingerprint(fingerprint, shape=shape), dtype=np.float32)


def _inpaint(y: np.ndarray, prof: InpaintingProfile) -> np.ndarray:
    """Inpainted plane of a profile (with its optional second, mixed-in inpainting)."""
    o = inpaint_plane(y, prof.hole, prof.delta, prof.reg, prof.tv_rounds, prof.tv_eps,
                      out=np.empty_like(y), tv_weights=prof.tv_weights, border=prof.border,
                      rescale=prof.rescale)
    if prof.mix_weight > 0.0:
        o2 = inpaint_plane(y, prof.mix_hole, prof.mix_delta, prof.reg, prof.tv_rounds, prof.tv_eps,
                           out=np.empty_like(y), tv_weights=prof.tv_weights, border=prof.border,
                           rescale=prof.rescale)
        a = np.float32(prof.mix_weight)
        o *= np.float32(1.0) - a
        o += a * o2
    return o


def inpaint_anonymize_result(
    image: np.ndarray,
    hole: int | None = None,
    reg: str | None = None,
    edges: bool | None = None,
    delta: int | None = None,
    denoiser: str | DenoiserFunc | None = None,
    tv_rounds: int | None = None,
    tv_eps: float | None = None,
    canny_sigma: float | None = None,
    canny_low: float | None = None,
    canny_high: float | None = None,
    edge_radius: int | None = None,
    progress: ProgressFunc | None = None,
    cancel: CancelToken | None = None,
    profile: str | InpaintingProfile | None = None,
    fingerprint: np.ndarray | None = None,
    **options,
) -> InpaintingResult:
    """Inpainting anonymization, returning the float image and the edge mask.

    Same parameters as :func:`inpaint_anonymize`, plus the Canny options.
    Every option left to None comes from the profile.

    Parameters
    ----------
    canny_sigma, canny_low, canny_high : float, optional
        Canny smoothing (pixels) and hysteresis thresholds (Sobel magnitude,
        0-255 units) of the ``'fixed'`` edge detector; see
        :func:`dippas.inpainting.edges.canny_edges`.
    edge_radius : int, optional
        Radius of the disk dilating the edges.
    profile : str or InpaintingProfile, optional
        Default :data:`~dippas.inpainting.profiles.DEFAULT_PROFILE`.
    fingerprint : ndarray, shape (H, W), optional
        Research option, not for 8-bit outputs: the camera's fingerprint K;
        the edge pixels and the inpainted pixels are then each divided by
        ``1 + gamma K`` with the gain that brings their NCC with
        ``gray(I) K`` to zero on this float result
        (:func:`dippas.inpainting.prnu.null_prnu`). Rounding to 8 bits
        moves about 1 % of the pixels by a whole grey level in the
        direction of the correction and undoes the nulling: on the tuning
        protocol the AUC rose from 0.50 to 0.66 (``docs/evaluation.md``).
    **options
        Any other field of :class:`~dippas.inpainting.profiles.InpaintingProfile`
        (``tv_weights``, ``border``, ``rescale``, ``edge_detector``,
        ``footprint``, ``mix_weight``, ``mix_hole``, ``mix_delta``).

    Returns
    -------
    InpaintingResult
        ``image`` (float32, 0-255 units, shaped like the input), ``edges``
        (bool mask or None), ``params`` and ``prnu_gains`` (the K-aware
        gains, edges then inpainted pixels; None without a fingerprint).
    """
    prof = get_profile(profile).with_options(
        hole=hole, reg=reg, edges=edges, delta=delta, denoiser=denoiser, tv_rounds=tv_rounds,
        tv_eps=tv_eps, canny_sigma=canny_sigma, canny_low=canny_low, canny_high=canny_high,
        edge_radius=edge_radius, **options)
    prof = _check_profile(prof)
    period = hole_period(prof.hole, prof.delta)
    in_shape = np.shape(image)
    arr = _check_input(image, period, prof.hole)
    k = _check_fingerprint(fingerprint, arr.shape[:2])
    nch = 1 if arr.ndim == 2 else arr.shape[2]
    offsets = mask_offsets(prof.hole, prof.delta)
    n_tiles = denoise_tile_count(arr.shape, prof.denoiser) if prof.edges else 0
    steps = Steps((n_tiles + 1 if prof.edges else 0) + nch + (1 if k is not None else 0),
                  progress, cancel, "inpainting anonymization")
    steps.check()

    mask = None
    out = np.empty(arr.shape, dtype=np.float32)
    if prof.edges:
        # The denoised original is written straight into the output buffer;
        # the inpainted planes then overwrite the pixels off the edges.
        denoise(arr, prof.denoiser, out=out, progress=lambda d, t: steps.tick(), cancel=cancel)
        steps.check()
        mask = edge_mask(None, denoised=out, sigma=prof.canny_sigma, low_threshold=prof.canny_low,
                         high_threshold=prof.canny_high, radius=prof.edge_radius,
                         detector=prof.edge_detector, footprint=prof.footprint)
        keep = ~mask
        steps.tick()
    else:
        keep = None
    out3 = out[:, :, None] if out.ndim == 2 else out

    for c in range(nch):
        steps.check()
        y = _as_float_plane(arr, None if arr.ndim == 2 else c)
        o = _inpaint(y, prof)
        steps.tick()
        if keep is None:
            out3[:, :, c] = o
        else:
            np.copyto(out3[:, :, c], o, where=keep)
        del y, o

    gains = None
    if k is not None:
        steps.check()
        from .prnu import null_prnu

        regions = [mask, ~mask] if mask is not None else [np.ones(arr.shape[:2], dtype=bool)]
        out, gains = null_prnu(out, k, regions)
        steps.tick()

    edges_on = bool(prof.edges)
    params = {
        "method": "inpainting",
        "profile": prof.name,
        "hole": prof.hole,
        "delta": prof.delta,
        "period": period,
        "n_masks": len(offsets),
        "reg": prof.reg,
        "tv_rounds": prof.tv_rounds if prof.reg == "tv" else None,
        "tv_eps": prof.tv_eps if prof.reg == "tv" else None,
        "tv_weights": prof.tv_weights if prof.reg == "tv" else None,
        "border": prof.border,
        "rescale": bool(prof.rescale),
        "mix_weight": prof.mix_weight,
        "mix_hole": prof.mix_hole if prof.mix_weight > 0 else None,
        "mix_delta": prof.mix_delta if prof.mix_weight > 0 else None,
        "edges": edges_on,
        "denoiser": _denoiser_name(prof.denoiser) if edges_on else None,
        "edge_detector": prof.edge_detector if edges_on else None,
        "canny_sigma": float(prof.canny_sigma) if edges_on and prof.edge_detector == "fixed" else None,
        "canny_low": float(prof.canny_low) if edges_on and prof.edge_detector == "fixed" else None,
        "canny_high": float(prof.canny_high) if edges_on and prof.edge_detector == "fixed" else None,
        "footprint": prof.footprint if edges_on else None,
        "edge_radius": int(prof.edge_radius) if edges_on else None,
        "edge_fraction": float(mask.mean()) if mask is not None else 0.0,
        "k_aware": k is not None,
    }
    return InpaintingResult(image=out.reshape(in_shape), edges=mask, params=params,
                            prnu_gains=None if gains is None else [float(g) for g in gains])


def inpaint_anonymize(
    image: np.ndarray,
    hole: int | None = None,
    reg: str | None = None,
    edges: bool | None = None,
    delta: int | None = None,
    denoiser: str | DenoiserFunc | None = None,
    tv_rounds: int | None = None,
    tv_eps: float | None = None,
    progress: ProgressFunc | None = None,
    cancel: CancelToken | None = None,
    profile: str | InpaintingProfile | None = None,
    **options,
) -> np.ndarray:
    """Remove the sensor fingerprint by inpainting every pixel (ICIP 2017).

    Every option left to None comes from ``profile``
    (:mod:`dippas.inpainting.profiles`; default
    :data:`~dippas.inpainting.profiles.DEFAULT_PROFILE`).

    Parameters
    ----------
    image : ndarray, shape (H, W), (H, W, 1) or (H, W, 3)
        uint8, uint16 or float in 0-255 units. RGBA is refused: drop the
        alpha channel first. At least one period (10 pixels for ``hole=5``,
        9 for ``hole=3``) on each side.
    hole : {5, 3}, optional
        Hole side ``B``. The period is
        ``p = max(ceil(2 (delta + 1) / B) B, 2 B)``: 4 masks for ``B = 5``,
        9 for ``B = 3`` (with ``delta = 3``).
    reg : {'l2', 'tv'}, optional
        Smoothness penalty: Tikhonov (``'l2'``) or total variation
        (``'tv'``, by IRLS).
    edges : bool, optional
        Take the pixels near edges from the denoised original: raises the
        PSNR from about 28 to about 38 dB.
    delta : int, optional
        Distance of the first differences of the penalty (3 in every profile).
    denoiser : str or callable, optional
        Denoiser of the edge reconstruction: a name from
        :func:`dippas.inpainting.available_denoisers` or a callable on
        float32 images in 0-255 units.
    tv_rounds : int, optional
        IRLS rounds of the TV penalty, the first with unit weights.
    tv_eps : float, optional
        IRLS floor (see :class:`~dippas.inpainting.profiles.InpaintingProfile`).
    progress : callable, optional
        ``progress(done, total)`` after every denoising tile (1024x1024),
        the edge detection, the inversion of every colour plane and the
        K-aware step.
    cancel : CancelToken, optional
        Checked between those steps; raises :class:`dippas.Cancelled`.
    profile : str or InpaintingProfile, optional
        ``'tv'`` (default), ``'classic'`` or ``'paper'``
        (:mod:`dippas.inpainting.profiles`).
    **options
        Other profile fields (``tv_weights``, ``border``, ``rescale``,
        ``edge_detector``, ``footprint``, ``mix_weight``, ``mix_hole``,
        ``mix_delta``).

    Returns
    -------
    ndarray
        The anonymized image, same shape and dtype as ``image``. Integer
        outputs are rounded and clipped; float outputs are neither.

    Raises
    ------
    DippasInputError
        On an RGBA or otherwise malformed image, NaN or infinite values, an
        image smaller than one period, an unknown profile, ``hole``,
        ``reg`` or ``denoiser``, or the ``'paper'`` profile (BM3D) without
        the extra ``[bm3d]``.

    See Also
    --------
    inpaint_anonymize_result : the float image, the edge mask and the parameters.
    """
    arr = np.asarray(image)
    res = inpaint_anonymize_result(arr, hole=hole, reg=reg, edges=edges, delta=delta,
                                   denoiser=denoiser, tv_rounds=tv_rounds, tv_eps=tv_eps,
                                   progress=progress, cancel=cancel, profile=profile, **options)
    return float255_to_dtype(res.image, arr.dtype, in_place=True)
