"""Stitching of tile images into the full image."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DippasInputError


def stitch(tiles: Sequence[tuple[int, int, np.ndarray]], shape: tuple[int, ...]) -> np.ndarray:
    """Put assembled tiles back into one image.

    Parameters
    ----------
    tiles : sequence of (y0, x0, image)
        Top-left corner of each tile in the full image, and its uint8
        ``(h, w, C)`` (or ``(h, w)``) image.
    shape : tuple
        Shape of the full image, ``(H, W, C)`` or ``(H, W)``.

    Returns
    -------
    ndarray, uint8, shape ``shape``
        Where tiles overlap, their pixels are averaged (sum in integers,
        rounded half to even).

    Raises
    ------
    DippasInputError
        If a tile falls outside the image, its channels differ from
        ``shape``, or a pixel is covered by no tile.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise DippasInputError(f"stitched shape must be (H, W) or (H, W, C), got {shape}")
    h, w = shape[:2]
    total = np.zeros(shape, dtype=np.uint32)
    count = np.zeros((h, w), dtype=np.uint16)
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
        total[y0:y0 + th, x0:x0 + tw] += tile
        count[y0:y0 + th, x0:x0 + tw] += 1
    if not count.all():
        raise DippasInputError("the tiles do not cover the whole image")
    if count.max() == 1:
        return total.astype(np.uint8)
    div = count if len(shape) == 2 else count[..., None]
    return np.rint(total / div).astype(np.uint8)
