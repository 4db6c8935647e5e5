"""Denoisers for the edge reconstruction of the inpainting anonymizer.

A denoiser is any callable ``f(image) -> image`` on float32 arrays in 0-255
units, gray ``(H, W)`` or colour ``(H, W, 3)``, that returns an array of
the same shape. They live in a name -> function registry, so the CLI and
the plugin can offer them by name and users can add their own with
:func:`register_denoiser`.

Built in (all from scikit-image or from this package, so they install
offline with the project):

``'nl_means'`` (default)
    scikit-image's fast non-local means, 7x7 patches, search distance 6,
    ``sigma = 6`` grey levels, ``h = 0.8 sigma``.
``'wiener_wavelet'``
    The Binghamton wavelet-Wiener denoiser of the noise residual
    (:func:`dippas.noise_residual_rgb`), ``sigma = 7``: the image minus its
    colour residual. About 20 times faster than non-local means and close
    to it on the Dresden crops, but it is the very denoiser of the standard
    attribution test, so its anonymity may not carry over to a detector
    built on another denoiser.
``'wavelet'``
    scikit-image's BayesShrink wavelet denoiser (YCbCr, soft thresholds)
    with a fixed noise level ``sigma = 8``. Keeps much of the PRNU.
``'tv'``
    Chambolle total-variation denoising, weight 0.08 (on 0-1 data). Loses
    PSNR for little anonymity.
``'nl_means_twice'``
    ``'nl_means'`` applied to its own output: twice the cost, less PRNU
    left on the edges.
``'nl_means_wiener'``
    ``'nl_means'``, then ``'wiener_wavelet'`` on its output: the second,
    cheap pass takes out what the standard residual would still read as
    noise on the edges.
``'bm3d'``
    Only with the optional extra ``[bm3d]`` (the ``bm3d`` package): colour
    BM3D with ``sigma = 7`` and the ``'lc'`` profile, applied twice, as the
    authors did.

The default was chosen by measurement on the 16 natural Dresden 512x512
crops against their 6 golden fingerprints (``benchmarks/bench_inpainting.py``):
non-local means gave the best fidelity at a given anonymity (wavelet
BayesShrink keeps too much PRNU at any PSNR above 35 dB, Chambolle TV
loses more PSNR for the same AUC, the Binghamton wavelet-Wiener denoiser
comes close). Its strength was set so that the edge
reconstruction keeps the mean PSNR at or above 38 dB with hole 5 while the
NCC of an image with its own camera falls to the level of the other
cameras' (AUC about 0.5). ``sigma = 6`` with 7x7 patches was the best of
``sigma`` in 4-8 and patches of 5 and 7; search distance 11 cost three
times the time for no gain. Stronger is not more anonymous: with
``sigma = 8`` the AUC drops to about 0.36, i.e. the inpainted pixels'
anti-correlation with the camera's PRNU dominates, which is as telling as
a positive correlation.

Large images are denoised in overlapping tiles (:func:`denoise`), which
bounds memory and lets a long run report progress and be cancelled. Each
denoiser is registered with the context its tiles need: non-local means
reaches 6 + 3 pixels around a pixel, so 32 pixels give exactly the untiled
result; 128 pixels leave the wavelet-Wiener result within 0.001 grey
levels. scikit-image's wavelet (per-image thresholds) and TV (a global
energy) denoisers are global, so they are never tiled.
"""

from __future__ import annotations

import importlib.util
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import Cancelled, DippasInputError
from ..progress import CancelToken

#: A denoiser: float32 image in 0-255 units -> array of the same shape.
DenoiserFunc = Callable[[np.ndarray], np.ndarray]

#: Name of the default denoiser.
DEFAULT_DENOISER = "nl_means"

#: Side of the tiles :func:`denoise` works on, and their overlap, in pixels.
DENOISE_TILE = 1024
DENOISE_OVERLAP = 32
#: Tiles denoised at once by default (bounded by the number of CPUs).
DENOISE_WORKERS = 2

_REGISTRY: dict[str, tuple[DenoiserFunc, int | None, str | None]] = {}

#: Tile sides and overlaps are rounded up to multiples of this, so that
#: wavelet denoisers (up to 4 levels) see the same dyadic grid in every tile.
TILE_ALIGN = 16


def _channel_axis(image: np.ndarray) -> int | None:
    return -1 if image.ndim == 3 else None


def denoise_nl_means(image: np.ndarray, sigma: float = 6.0, patch_size: int = 7,
                     patch_distance: int = 6, h_factor: float = 0.8) -> np.ndarray:
    """Fast non-local means (scikit-image), in 0-255 units.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3), float
        0-255 units.
    sigma : float, optional
        Noise standard deviation assumed, grey levels (default 6).
    patch_size, patch_distance : int, optional
        Patch side and search radius (defaults 7 and 6).
    h_factor : float, optional
        Filter strength ``h = h_factor * sigma`` (default 0.8, the
        scikit-image recommendation when ``sigma`` is given).

    Returns
    -------
    ndarray, float32, same shape
    """
    from skimage.restoration import denoise_nl_means as _nlm

    img = np.asarray(image, dtype=np.float32)
    out = _nlm(img, patch_size=patch_size, patch_distance=patch_distance,
               h=h_factor * float(sigma), sigma=float(sigma), fast_mode=True,
               preserve_range=True, channel_axis=_channel_axis(img))
    return np.asarray(out, dtype=np.float32)


def denoise_wavelet(image: np.ndarray, sigma: float | None = 8.0) -> np.ndarray:
    """BayesShrink wavelet denoising (scikit-image), YCbCr for colour.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3), float
        0-255 units.
    sigma : float or None, optional
        Noise standard deviation in grey levels (default 8); None estimates
        it from the finest wavelet band.

    Returns
    -------
    ndarray, float32, same shape
    """
    from skimage.restoration import denoise_wavelet as _wav

    img = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    out = _wav(img, sigma=None if sigma is None else float(sigma) / 255.0,
               mode="soft", method="BayesShrink", rescale_sigma=True,
               convert2ycbcr=img.ndim == 3, channel_axis=_channel_axis(img))
    return (np.asarray(out, dtype=np.float32) * np.float32(255.0))


def denoise_tv(image: np.ndarray, weight: float = 0.08) -> np.ndarray:
    """Chambolle total-variation denoising (scikit-image).

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3), float
        0-255 units.
    weight : float, optional
        Denoising weight on data scaled to 0-1 (default 0.08).

    Returns
    -------
    ndarray, float32, same shape
    """
    from skimage.restoration import denoise_tv_chambolle

    img = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    out = denoise_tv_chambolle(img, weight=float(weight), channel_axis=_channel_axis(img))
    return np.asarray(out, dtype=np.float32) * np.float32(255.0)


def denoise_wiener_wavelet(image: np.ndarray, sigma: float = 7.0) -> np.ndarray:
    """The image minus its Binghamton colour noise residual.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3), float
        0-255 units, at least 32 pixels a side.
    sigma : float, optional
        Noise standard deviation of the wavelet-Wiener rule, grey levels
        (default 7).

    Returns
    -------
    ndarray, float32, same shape
    """
    from ..residual import noise_residual_rgb
    from ..validation import MIN_IMAGE_SIDE

    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape[:2]
    pad = ((0, max(MIN_IMAGE_SIDE - h, 0)), (0, max(MIN_IMAGE_SIDE - w, 0))) + ((0, 0),) * (img.ndim - 2)
    padded = np.pad(img, pad, mode="symmetric") if any(p[1] for p in pad) else img
    return img - noise_residual_rgb(padded, sigma)[:h, :w]


#: The optional-dependency extra that provides BM3D.
BM3D_EXTRA = "bm3d"


def require_bm3d(what: str = "denoiser 'bm3d'"):
    """Import the optional ``bm3d`` package, or raise a one-line error naming the extra.

    Raises
    ------
    DippasInputError
        ``"<what> needs the optional extra [bm3d]: pip install 'napari-dippas[bm3d]'"``.
    """
    try:
        import bm3d
    except ImportError:
        raise DippasInputError(f"{what} needs the optional extra [{BM3D_EXTRA}]: "
                               f"pip install 'napari-dippas[{BM3D_EXTRA}]'") from None
    return bm3d


def denoise_bm3d(image: np.ndarray, sigma: float = 7.0, passes: int = 2) -> np.ndarray:
    """Colour BM3D (optional ``bm3d`` package), profile ``'lc'``, applied ``passes`` times.

    The authors ran colour BM3D twice with ``sigma = 7`` (0-255 units) and
    the low-complexity profile ``'lc'``; the data are scaled to [0, 1] for
    the package.

    Raises
    ------
    DippasInputError
        If the ``bm3d`` package is not installed (the extra ``[bm3d]``).
    """
    bm3d = require_bm3d()
    profile = bm3d.BM3DProfileLC()
    out = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    for _ in range(int(passes)):
        if out.ndim == 3:
            out = bm3d.bm3d_rgb(out, sigma_psd=float(sigma) / 255.0, profile=profile)
        else:
            out = bm3d.bm3d(out, sigma_psd=float(sigma) / 255.0, profile=profile)
        out = np.asarray(out, dtype=np.float32)
    return out * np.float32(255.0)


def denoise_nl_means_wiener(image: np.ndarray) -> np.ndarray:
    """:func:`denoise_nl_means`, then :func:`denoise_wiener_wavelet` on its output.

    The second pass removes from the edge pixels what the standard
    attribution residual (the same wavelet-Wiener filter) would read as
    noise, i.e. the PRNU that non-local means left there.
    """
    return denoise_wiener_wavelet(denoise_nl_means(image))


def denoise_nl_means_twice(image: np.ndarray) -> np.ndarray:
    """:func:`denoise_nl_means` applied twice (a cheap stand-in for the authors' double BM3D)."""
    return denoise_nl_means(denoise_nl_means(image))


def register_denoiser(name: str, func: DenoiserFunc, replace: bool = False,
                      overlap: int | None = DENOISE_OVERLAP, requires: str | None = None) -> None:
    """Add a denoiser to the registry.

    Parameters
    ----------
    name : str
        Name to offer it under (case-sensitive).
    func : callable
        ``func(image) -> image`` on float32 arrays in 0-255 units, gray or
        RGB, returning the same shape.
    replace : bool, optional
        Allow replacing an existing name (default False).
    overlap : int or None, optional
        Context in pixels that :func:`denoise` adds around each tile
        (default 32): the reach of the denoiser, beyond which a pixel no
        longer changes the output. None: the denoiser is global (its
        result depends on statistics of the whole image) and is never tiled.
    requires : str, optional
        Optional package the denoiser imports; while it is missing the name
        is registered but not offered by :func:`available_denoisers`.

    Raises
    ------
    DippasInputError
        If ``name`` is taken and ``replace`` is False, or ``func`` is not callable.
    """
    if not callable(func):
        raise DippasInputError(f"denoiser {name!r} is not callable")
    if name in _REGISTRY and not replace:
        raise DippasInputError(f"denoiser {name!r} is already registered")
    _REGISTRY[name] = (func, None if overlap is None else int(overlap), requires)


def available_denoisers() -> list[str]:
    """Names of the registered denoisers usable here (``'bm3d'`` only when installed)."""
    return [name for name, (_, _, req) in _REGISTRY.items()
            if req is None or importlib.util.find_spec(req) is not None]


def get_denoiser(denoiser: str | DenoiserFunc, require_installed: bool = True) -> DenoiserFunc:
    """Resolve a denoiser name (or pass a callable through).

    Parameters
    ----------
    denoiser : str or callable
        A registered name, or a callable returned as is.
    require_installed : bool, optional
        Also refuse a registered denoiser whose optional package is missing
        (default True).

    Raises
    ------
    DippasInputError
        On an unknown name, or ``'bm3d'`` without the bm3d package.
    """
    if callable(denoiser):
        return denoiser
    if not isinstance(denoiser, str) or denoiser not in _REGISTRY:
        raise DippasInputError(
            f"unknown denoiser {denoiser!r}; choose one of {', '.join(available_denoisers())}"
        )
    req = _REGISTRY[denoiser][2]
    if require_installed and req is not None and importlib.util.find_spec(req) is None:
        raise DippasInputError(f"denoiser {denoiser!r} needs the optional extra [{req}]: "
                               f"pip install 'napari-dippas[{req}]'")
    return _REGISTRY[denoiser][0]


def denoiser_overlap(denoiser: str | DenoiserFunc) -> int | None:
    """Tile overlap registered for a denoiser (:data:`DENOISE_OVERLAP` for a callable).

    None means the denoiser is global and :func:`denoise` does not tile it.
    """
    if isinstance(denoiser, str) and denoiser in _REGISTRY:
        return _REGISTRY[denoiser][1]
    return DENOISE_OVERLAP


def _tile_float(tile: np.ndarray) -> np.ndarray:
    """A tile as C-contiguous float32 in 0-255 units (uint16 is divided by 257)."""
    out = np.ascontiguousarray(tile, dtype=np.float32)
    if tile.dtype == np.uint16:
        out /= np.float32(257.0)
    return out


def _tile_starts(size: int, tile: int) -> list[int]:
    return list(range(0, size, tile))


def _tiling(shape: tuple[int, ...], denoiser: str | DenoiserFunc, tile: int,
            overlap: int | None) -> tuple[int, int]:
    """Aligned tile side and overlap for an image shape and a denoiser."""
    if overlap is None:
        overlap = denoiser_overlap(denoiser)
    if overlap is None:
        tile = overlap = max(shape[:2])
    tile = max(TILE_ALIGN, -(-int(tile) // TILE_ALIGN) * TILE_ALIGN)
    overlap = -(-int(overlap) // TILE_ALIGN) * TILE_ALIGN
    return tile, overlap


def denoise_tile_count(shape: tuple[int, ...], denoiser: str | DenoiserFunc = DEFAULT_DENOISER,
                       tile: int = DENOISE_TILE) -> int:
    """Number of tiles (progress steps) :func:`denoise` uses for an image shape."""
    tile, _ = _tiling(shape, denoiser, tile, None)
    return len(_tile_starts(shape[0], tile)) * len(_tile_starts(shape[1], tile))


def _tile_windows(shape: tuple[int, ...], tile: int, overlap: int) -> list[tuple[slice, slice, slice, slice]]:
    """(output rows, output cols, window rows, window cols) of every tile, row-major."""
    h, w = shape[:2]
    wins = []
    for r0 in _tile_starts(h, tile):
        for c0 in _tile_starts(w, tile):
            r1, c1 = min(r0 + tile, h), min(c0 + tile, w)
            wr0, wc0 = max(r0 - overlap, 0), max(c0 - overlap, 0)
            wr1, wc1 = min(r1 + overlap, h), min(c1 + overlap, w)
            wins.append((slice(r0, r1), slice(c0, c1), slice(wr0, wr1), slice(wc0, wc1)))
    return wins


def denoise(image: np.ndarray, denoiser: str | DenoiserFunc = DEFAULT_DENOISER,
            out: np.ndarray | None = None, tile: int = DENOISE_TILE, overlap: int | None = None,
            workers: int | None = None, progress: Callable[[int, int], None] | None = None,
            cancel: CancelToken | None = None) -> np.ndarray:
    """Denoise an image in overlapping tiles.

    Each ``tile x tile`` block of the output is the centre of the denoised
    block grown by ``overlap`` pixels on every side (clipped to the image),
    so memory stays bounded on large photos. Images up to ``tile`` pixels a
    side, and global denoisers (registered with ``overlap=None``), are
    denoised in one piece. Tile sides and overlaps are rounded up to
    multiples of :data:`TILE_ALIGN`. Tiles run in a small thread pool
    (scikit-image's non-local means releases the GIL); the result does not
    depend on the number of workers.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        uint8, uint16 (divided by 257) or float in 0-255 units; converted
        to float32 one tile at a time.
    denoiser : str or callable, optional
        A registered name or a callable (default :data:`DEFAULT_DENOISER`).
    out : ndarray, optional
        float32 array shaped like ``image`` to write into.
    tile : int, optional
        Tile side in pixels (default 1024).
    overlap : int, optional
        Context added around each tile, pixels; by default the one
        registered with the denoiser (32 for non-local means, 128 for the
        wavelet-Wiener denoiser, whose 4-level transform reaches further).
    workers : int, optional
        Tiles denoised at once (default :data:`DENOISE_WORKERS`, at most the
        number of CPUs). Each holds one tile's temporaries (about 110 MiB
        for a 1024x1024 RGB tile with non-local means).
    progress : callable, optional
        ``progress(done, total)`` after each tile.
    cancel : CancelToken, optional
        Checked before each tile starts; raises :class:`dippas.Cancelled`.

    Returns
    -------
    ndarray, float32, same shape as ``image``
    """
    func = get_denoiser(denoiser)
    img = np.asarray(image)
    tile, overlap = _tiling(img.shape, denoiser, tile, overlap)
    if out is None:
        out = np.empty(img.shape, dtype=np.float32)
    wins = _tile_windows(img.shape, tile, overlap)
    if workers is None:
        workers = DENOISE_WORKERS
    workers = max(1, min(int(workers), os.cpu_count() or 1, len(wins)))

    def run(win: tuple[slice, slice, slice, slice]) -> np.ndarray:
        return np.asarray(func(_tile_float(img[win[2], win[3]])))

    def store(win: tuple[slice, slice, slice, slice], res: np.ndarray, done: int) -> None:
        rows, cols, wrows, wcols = win
        expect = (wrows.stop - wrows.start, wcols.stop - wcols.start) + img.shape[2:]
        if res.shape != expect:
            raise DippasInputError(f"denoiser returned shape {res.shape} for a tile of shape {expect}")
        out[rows, cols] = res[rows.start - wrows.start:rows.stop - wrows.start,
                              cols.start - wcols.start:cols.stop - wcols.start]
        if progress is not None:
            progress(done, len(wins))

    def check() -> None:
        if cancel is not None and cancel.cancelled:
            raise Cancelled("denoising cancelled")

    if workers == 1:
        for k, win in enumerate(wins):
            check()
            store(win, run(win), k + 1)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        todo = iter(wins)
        done = 0
        try:
            for win in todo:
                check()
                pending.append((win, pool.submit(run, win)))
                if len(pending) >= workers:
                    win0, fut = pending.popleft()
                    done += 1
                    store(win0, fut.result(), done)
            while pending:
                win0, fut = pending.popleft()
                done += 1
                store(win0, fut.result(), done)
        except BaseException:
            for _, fut in pending:
                fut.cancel()
            raise
    return out


register_denoiser("nl_means", denoise_nl_means)
register_denoiser("nl_means_twice", denoise_nl_means_twice, overlap=64)
register_denoiser("nl_means_wiener", denoise_nl_means_wiener, overlap=160)
register_denoiser("wiener_wavelet", denoise_wiener_wavelet, overlap=128)
register_denoiser("wavelet", denoise_wavelet, overlap=None)
register_denoiser("tv", denoise_tv, overlap=None)
register_denoiser("bm3d", denoise_bm3d, overlap=64, requires=BM3D_EXTRA)
