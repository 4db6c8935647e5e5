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

Memory: the denoised original is written straight into the float32 output
and the inversion runs one colour plane at a time, so besides the input and
the output the working set is one denoising tile (1024x1024 and its
margin), Canny's float temporaries on the gray image, the edge mask and two
float32 planes: about 3.7 times the float32 image at the peak (253 MiB for
a 3008x2000 RGB photo).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import Cancelled, DippasInputError
from ..progress import CancelToken
from ..dtype import float255_to_dtype, to_float255
from ..validation import check_image
from .denoisers import DEFAULT_DENOISER, DenoiserFunc, denoise, denoise_tile_count, get_denoiser
from .edges import CANNY_HIGH, CANNY_LOW, CANNY_SIGMA, EDGE_RADIUS, check_edge_options, edge_mask
from .masks import DEFAULT_DELTA, check_hole_delta, hole_period, mask_offsets
from .solver import DEFAULT_TV_EPS, DEFAULT_TV_ROUNDS, check_regulariser, check_tv_options, inpaint_plane

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
        The parameters used: ``hole``, ``delta``, ``period``, ``n_masks``,
        ``reg``, ``tv_rounds``, ``tv_eps``, ``edges``, ``denoiser``,
        ``canny_sigma``, ``canny_low``, ``canny_high``, ``edge_radius`` and
        ``edge_fraction`` (share of pixels in the edge mask).
    """

    image: np.ndarray
    edges: np.ndarray | None
    params: dict = field(default_factory=dict)


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


class _Steps:
    """Counts progress steps, reports them and honours the cancel token."""

    def __init__(self, total: int, progress: ProgressFunc | None, cancel: CancelToken | None) -> None:
        self.total = total
        self.done = 0
        self.progress = progress
        self.cancel = cancel

    def check(self) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            raise Cancelled("inpainting anonymization cancelled")

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def _check_options(hole: int, reg: str, delta: int, edges: bool, denoiser: str | DenoiserFunc,
                   tv_rounds: int, tv_eps: float) -> tuple[int, int, str, int, float]:
    hole, delta = check_hole_delta(hole, delta)
    reg = check_regulariser(reg)
    tv_rounds, tv_eps = check_tv_options(tv_rounds, tv_eps)
    if not isinstance(edges, (bool, np.bool_)):
        raise DippasInputError(f"edges must be True or False, got {edges!r}")
    # An unknown name is refused either way; an optional package is only needed when used.
    get_denoiser(denoiser, require_installed=bool(edges))
    return hole, delta, reg, tv_rounds, tv_eps


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


def inpaint_anonymize_result(
    image: np.ndarray,
    hole: int = 5,
    reg: str = "l2",
    edges: bool = True,
    delta: int = DEFAULT_DELTA,
    denoiser: str | DenoiserFunc = DEFAULT_DENOISER,
    tv_rounds: int = DEFAULT_TV_ROUNDS,
    tv_eps: float = DEFAULT_TV_EPS,
    canny_sigma: float = CANNY_SIGMA,
    canny_low: float = CANNY_LOW,
    canny_high: float = CANNY_HIGH,
    edge_radius: int = EDGE_RADIUS,
    progress: ProgressFunc | None = None,
    cancel: CancelToken | None = None,
) -> InpaintingResult:
    """Inpainting anonymization, returning the float image and the edge mask.

    Same parameters as :func:`inpaint_anonymize`, plus the Canny options.

    Parameters
    ----------
    canny_sigma, canny_low, canny_high : float, optional
        Canny smoothing (pixels) and hysteresis thresholds (Sobel magnitude,
        0-255 units); see :func:`dippas.inpainting.edges.canny_edges`.
    edge_radius : int, optional
        Radius of the disk dilating the edges (default 3).

    Returns
    -------
    InpaintingResult
        ``image`` (float32, 0-255 units, shaped like the input), ``edges``
        (bool mask or None) and ``params``.
    """
    hole, delta, reg, tv_rounds, tv_eps = _check_options(hole, reg, delta, edges, denoiser,
                                                         tv_rounds, tv_eps)
    check_edge_options(canny_sigma, canny_low, canny_high, edge_radius)
    period = hole_period(hole, delta)
    in_shape = np.shape(image)
    arr = _check_input(image, period, hole)
    h, w = arr.shape[:2]
    nch = 1 if arr.ndim == 2 else arr.shape[2]
    offsets = mask_offsets(hole, delta)
    n_tiles = denoise_tile_count(arr.shape, denoiser) if edges else 0
    steps = _Steps((n_tiles + 1 if edges else 0) + nch, progress, cancel)
    steps.check()

    mask = None
    if edges:
        # The denoised original is written straight into the output buffer;
        # the inpainted planes then overwrite the pixels off the edges.
        out = np.empty(arr.shape, dtype=np.float32)
        denoise(arr, denoiser, out=out, progress=lambda d, t: steps.tick(), cancel=cancel)
        steps.check()
        mask = edge_mask(None, denoised=out, sigma=canny_sigma, low_threshold=canny_low,
                         high_threshold=canny_high, radius=edge_radius)
        keep = ~mask
        steps.tick()
    else:
        out = np.empty(arr.shape, dtype=np.float32)
        keep = None
    out3 = out[:, :, None] if out.ndim == 2 else out

    for c in range(nch):
        steps.check()
        y = _as_float_plane(arr, None if arr.ndim == 2 else c)
        o = inpaint_plane(y, hole, delta, reg, tv_rounds, tv_eps, out=np.empty_like(y))
        steps.tick()
        if keep is None:
            out3[:, :, c] = o
        else:
            np.copyto(out3[:, :, c], o, where=keep)
        del y, o

    params = {
        "method": "inpainting",
        "hole": hole,
        "delta": delta,
        "period": period,
        "n_masks": len(offsets),
        "reg": reg,
        "tv_rounds": tv_rounds if reg == "tv" else None,
        "tv_eps": tv_eps if reg == "tv" else None,
        "edges": bool(edges),
        "denoiser": _denoiser_name(denoiser) if edges else None,
        "canny_sigma": float(canny_sigma) if edges else None,
        "canny_low": float(canny_low) if edges else None,
        "canny_high": float(canny_high) if edges else None,
        "edge_radius": int(edge_radius) if edges else None,
        "edge_fraction": float(mask.mean()) if mask is not None else 0.0,
    }
    return InpaintingResult(image=out.reshape(in_shape), edges=mask, params=params)


def inpaint_anonymize(
    image: np.ndarray,
    hole: int = 5,
    reg: str = "l2",
    edges: bool = True,
    delta: int = DEFAULT_DELTA,
    denoiser: str | DenoiserFunc = DEFAULT_DENOISER,
    tv_rounds: int = DEFAULT_TV_ROUNDS,
    tv_eps: float = DEFAULT_TV_EPS,
    progress: ProgressFunc | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Remove the sensor fingerprint by inpainting every pixel (ICIP 2017).

    Parameters
    ----------
    image : ndarray, shape (H, W), (H, W, 1) or (H, W, 3)
        uint8, uint16 or float in 0-255 units. RGBA is refused: drop the
        alpha channel first. At least one period (10 pixels for ``hole=5``,
        9 for ``hole=3``) on each side.
    hole : {5, 3}, optional
        Hole side ``B`` (default 5). The period is
        ``p = max(ceil(2 (delta + 1) / B) B, 2 B)``: 4 masks for ``B = 5``,
        9 for ``B = 3`` (with ``delta = 3``).
    reg : {'l2', 'tv'}, optional
        Smoothness penalty: Tikhonov (``'l2'``, default) or total variation
        (``'tv'``, by IRLS).
    edges : bool, optional
        Take the pixels near edges from the denoised original (default
        True): raises the PSNR from about 28 to about 38 dB.
    delta : int, optional
        Distance of the first differences of the penalty (default 3).
    denoiser : str or callable, optional
        Denoiser of the edge reconstruction: a name from
        :func:`dippas.inpainting.available_denoisers` or a callable on
        float32 images in 0-255 units (default ``'nl_means'``).
    tv_rounds : int, optional
        IRLS rounds of the TV penalty, the first with unit weights
        (default 4).
    tv_eps : float, optional
        IRLS weights are ``1 / max(|difference|, tv_eps)``, 0-255 units
        (default 1.0, one grey level).
    progress : callable, optional
        ``progress(done, total)`` after every denoising tile (1024x1024),
        the edge detection and the inversion of every colour plane.
    cancel : CancelToken, optional
        Checked between those steps; raises :class:`dippas.Cancelled`.

    Returns
    -------
    ndarray
        The anonymized image, same shape and dtype as ``image``. Integer
        outputs are rounded and clipped; float outputs are neither.

    Raises
    ------
    DippasInputError
        On an RGBA or otherwise malformed image, NaN or infinite values, an
        image smaller than one period, or an unknown ``hole``, ``reg`` or
        ``denoiser``.

    See Also
    --------
    inpaint_anonymize_result : the float image, the edge mask and the parameters.
    """
    arr = np.asarray(image)
    res = inpaint_anonymize_result(arr, hole=hole, reg=reg, edges=edges, delta=delta,
                                   denoiser=denoiser, tv_rounds=tv_rounds, tv_eps=tv_eps,
                                   progress=progress, cancel=cancel)
    return float255_to_dtype(res.image, arr.dtype, in_place=True)
