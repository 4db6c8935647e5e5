"""PNG figures: per-block NCC heatmaps, and before/after panels (matplotlib, Agg).

Every figure is written by :func:`save_figure`: rendered to pixels, then
written by :func:`dippas.io.save_image`, so it carries no metadata
(matplotlib's own PNG writer adds ``tEXt Software`` and ``pHYs`` chunks).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import save_image


def figure_pixels(fig, *, tight: bool = False, dpi: float = 100) -> np.ndarray:
    """A matplotlib figure rendered to an ``(H, W, 3)`` uint8 array (Agg).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    tight : bool
        Crop to the drawn content, as ``savefig(bbox_inches='tight')``.
    dpi : float
    """
    import io as pyio

    from PIL import Image

    buf = pyio.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def save_figure(fig, path: str | os.PathLike, *, force: bool = False, tight: bool = False,
                dpi: float = 100) -> Path:
    """Write a matplotlib figure as a metadata-free PNG, atomically (:func:`dippas.io.save_image`)."""
    return save_image(path, figure_pixels(fig, tight=tight, dpi=dpi), force=force)


def heatmap_limit(*maps: np.ndarray) -> float:
    vals = [np.abs(m[np.isfinite(m)]) for m in maps if m is not None and np.isfinite(m).any()]
    top = max((float(v.max()) for v in vals if v.size), default=0.0)
    return top if top > 0 else 1e-3


def show_heatmap(ax, heatmap: np.ndarray, shape: tuple[int, int], limit: float, title: str):
    h, w = shape
    im = ax.imshow(heatmap, cmap="PiYG", vmin=-limit, vmax=limit, interpolation="nearest",
                   extent=(0, w, h, 0))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def before_after_figure(path: str | os.PathLike, before: np.ndarray, after: np.ndarray,
                        heat_before: np.ndarray, heat_after: np.ndarray, block: int,
                        title: str = "", force: bool = False) -> Path:
    """Write a 2x2 PNG: input and output, with their per-block NCC heatmaps.

    The figure is rendered by matplotlib's Agg backend to an array and
    written by :func:`dippas.io.save_image`, so it carries no metadata
    (matplotlib's own PNG writer adds ``Software`` and ``pHYs`` chunks).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .io import check_output_path

    out = check_output_path(path, force=force)
    limit = heatmap_limit(heat_before, heat_after)
    fig, axes = plt.subplots(2, 2, figsize=(8, 8.4), constrained_layout=True)
    for ax, img, label in ((axes[0, 0], before, "input"), (axes[0, 1], after, "anonymized")):
        ax.imshow(img)
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    shape = before.shape[:2]
    show_heatmap(axes[1, 0], heat_before, shape, limit, f"input: NCC per {block}px block")
    im = show_heatmap(axes[1, 1], heat_after, shape, limit, f"anonymized: NCC per {block}px block")
    fig.colorbar(im, ax=axes[1, :], shrink=0.8, label="NCC with the fingerprint")
    if title:
        fig.suptitle(title, fontsize=11)
    try:
        pixels = figure_pixels(fig)
    finally:
        plt.close(fig)
    return save_image(out, pixels, force=force)


def block_ncc_figure(path: str | os.PathLike, before: np.ndarray, after: np.ndarray,
                     fingerprint: np.ndarray, block: int, title: str = "",
                     force: bool = False) -> Path:
    """:func:`before_after_figure` with the per-block NCC of both images against ``fingerprint``."""
    from .assembly.heatmaps import image_block_ncc

    return before_after_figure(path, before, after, image_block_ncc(before, fingerprint, block),
                               image_block_ncc(after, fingerprint, block), block, title=title,
                               force=force)
