"""Stitching of tile images into the full image, feathered where tiles overlap.

Each tile is weighted by a separable feather: along each side that does not
lie on the image border, its weight rises linearly over the ``overlap``
pixels next to that side, ``(d + 0.5) / overlap`` at ``d`` pixels from the
edge, and is 1 elsewhere. For two tiles of a grid that share ``overlap``
columns (:func:`dippas.dip.tiling.tile_grid`), the falling ramp of one and
the rising ramp of the other sum to 1 on every shared column, and so do the
products in the corners where four tiles meet. The stitched pixel is the
weighted mean of the tiles covering it (weights divided by their sum, so
they sum to 1 for any layout), computed in float64 and rounded once to
uint8. A pixel covered by one tile keeps that tile's value exactly; a step
of ``d`` grey levels between two tiles becomes steps of at most
``d / overlap`` per pixel across the ramp.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DippasInputError


def ramp(length: int, overlap: int, rise: bool, fall: bool) -> np.ndarray:
    """The 1-D feather of one tile side along one axis.

    Parameters
    ----------
    length : int
        Tile size along the axis.
    overlap : int
        Ramp length in pixels; 0 gives all ones.
    rise, fall : bool
        Ramp up at the start, ramp down at the end (False on the image border).

    Returns
    -------
    ndarray, float64, shape ``(length,)``
        ``min(1, (d + 0.5) / overlap)`` with ``d`` the distance in pixels to
        the nearest ramped end; values in ``(0, 1]``.

    Examples
    --------
    >>> ramp(6, 2, rise=True, fall=False).tolist()
    [0.25, 0.75, 1.0, 1.0, 1.0, 1.0]
    >>> left, right = ramp(6, 2, False, True), ramp(6, 2, True, False)
    >>> (left[-2:] + right[:2]).tolist()   # two neighbours sharing 2 pixels
    [1.0, 1.0]
    """
    w = np.ones(int(length), dtype=np.float64)
    if overlap <= 0:
        return w
    up = (np.arange(int(length), dtype=np.float64) + 0.5) / float(overlap)
    if rise:
        w = np.minimum(w, up)
    if fall:
        w = np.minimum(w, up[::-1])
    return w


def tile_weights(y0: int, x0: int, h: int, w: int, shape: tuple[int, int],
                 overlap: int) -> np.ndarray:
    """The feather weight ``(h, w)`` of a tile at ``(y0, x0)`` in an image of ``shape`` (H, W).

    Sides on the image border are not ramped: nothing lies beyond them.
    """
    height, width = shape
    wy = ramp(h, overlap, rise=y0 > 0, fall=y0 + h < height)
    wx = ramp(w, overlap, rise=x0 > 0, fall=x0 + w < width)
    return wy[:, None] * wx[None, :]


def stitch(tiles: Sequence[tuple[int, int, np.ndarray]], shape: tuple[int, ...],
           overlap: int = 0) -> np.ndarray:
    """Put assembled tiles back into one image.

    Parameters
    ----------
    tiles : sequence of (y0, x0, image)
        Top-left corner of each tile in the full image, and its uint8
        ``(h, w, C)`` (or ``(h, w)``) image.
    shape : tuple
        Shape of the full image, ``(H, W, C)`` or ``(H, W)``.
    overlap : int, optional
        Feather ramp length in pixels: the tile overlap of the grid
        (``params.json`` ``tile_overlap``). 0 (default): every tile weighs 1,
        so overlapping pixels are plainly averaged.

    Returns
    -------
    ndarray, uint8, shape ``shape``
        The weighted mean of the tiles at every pixel (see the module),
        rounded half to even once.

    Raises
    ------
    DippasInputError
        If a tile falls outside the image, its channels differ from
        ``shape``, a pixel is covered by no tile, or the overlap is negative.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise DippasInputError(f"stitched shape must be (H, W) or (H, W, C), got {shape}")
    if isinstance(overlap, bool) or int(overlap) != overlap or overlap < 0:
        raise DippasInputError(f"tile overlap must be a non-negative integer, got {overlap!r}")
    h, w = shape[:2]
    total = np.zeros(shape, dtype=np.float64)
    weight = np.zeros((h, w), dtype=np.float64)
    for y0, x0, img in tiles:
        tile = np.asarray(img)
        y0, x0 = int(y0), int(x0)
        if tile.dtype != np.uint8:
            raise DippasInputError(f"tiles must be uint8, got {tile.dtype}")
        if tile.shape[2:] != shape[2:]:
            raise DippasInputError(
                f"tile of shape {tile.shape} does not fit an image of shape {shape}")
        th, tw = tile.shape[:2]
        if y0 < 0 or x0 < 0 or y0 + th > h or x0 + tw > w:
            raise DippasInputError(
                f"tile at ({y0}, {x0}) of size {th}x{tw} falls outside the {h}x{w} image")
        wt = tile_weights(y0, x0, th, tw, (h, w), int(overlap))
        rows, cols = slice(y0, y0 + th), slice(x0, x0 + tw)
        total[rows, cols] += tile * (wt if tile.ndim == 2 else wt[..., None])
        weight[rows, cols] += wt
    if not weight.all():
        raise DippasInputError("the tiles do not cover the whole image")
    div = weight if len(shape) == 2 else weight[..., None]
    return np.clip(np.rint(total / div), 0, 255).astype(np.uint8)
