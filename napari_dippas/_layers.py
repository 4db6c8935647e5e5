"""Layer conventions of the plugin: diverging colormaps for fingerprints and NCC heatmaps."""

from __future__ import annotations

import numpy as np
from dippas.dtype import float255_to_dtype

#: Diverging colormap of fingerprint and NCC heatmap layers.
DIVERGING = "PiYG"


def symmetric_limits(data: np.ndarray, spread: float = 3.0) -> tuple[float, float]:
    """Contrast limits ``(-a, a)`` with ``a = spread * std`` (NaN ignored), never zero."""
    finite = np.asarray(data, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    a = float(spread * finite.std()) if finite.size else 1.0
    if not np.isfinite(a) or a <= 0:
        a = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
    return -a, a


def fingerprint_layer_kwargs(k: np.ndarray, name: str = "fingerprint") -> dict:
    """Keyword arguments of ``viewer.add_image`` for a fingerprint K."""
    return {"name": name, "colormap": DIVERGING, "contrast_limits": symmetric_limits(k),
            "metadata": {"dippas_kind": "fingerprint"}}


def heatmap_layer_kwargs(heatmap: np.ndarray, block: int | tuple[int, int],
                         name: str = "block NCC", origin: tuple[float, float] = (0, 0)) -> dict:
    """``add_image`` arguments for a per-block NCC map scaled to sit over the image.

    Parameters
    ----------
    heatmap : ndarray, shape (nby, nbx)
        One NCC value per block.
    block : int or (int, int)
        Block side in pixels (``(bh, bw)`` for non-square blocks, e.g. a
        whole tile).
    name : str
        Layer name.
    origin : (float, float)
        Top-left pixel of the map's area in the image (a tile's ``(y0, x0)``).

    Returns
    -------
    dict
        Diverging colormap with limits symmetric about zero, scale and
        translate so that each value covers its block.
    """
    bh, bw = (block, block) if np.isscalar(block) else (int(block[0]), int(block[1]))
    finite = np.isfinite(heatmap)
    lim = max(float(np.nanmax(np.abs(heatmap))) if finite.any() else 0.0, 1e-6)
    return {"name": name, "colormap": DIVERGING, "contrast_limits": (-lim, lim),
            "scale": (bh, bw),
            "translate": (origin[0] + (bh - 1) / 2, origin[1] + (bw - 1) / 2),
            "opacity": 0.6, "blending": "translucent", "interpolation2d": "nearest",
            "metadata": {"dippas_kind": "heatmap", "block": (bh, bw)}}


def image_to_uint8(data: np.ndarray) -> np.ndarray:
    """A layer's data as an 8- or 16-bit image for the core and the writer.

    uint8 and uint16 are kept; floats in [0, 1] are scaled by 255, other
    floats are taken as 0-255 units; values are rounded and clipped.
    """
    arr = np.asarray(data)
    if arr.dtype in (np.uint8, np.uint16):
        return arr
    f = arr.astype(np.float64)
    if np.nanmax(f) <= 1.0:
        f = f * 255.0
    return float255_to_dtype(np.nan_to_num(f), np.uint8)
