"""Split an image of any size into inversion tiles.

A photo larger than one tile is cut into a grid of tiles of ``tile x tile``
pixels from the top-left corner. Neighbouring tiles share ``overlap``
pixels (the stride is ``tile - overlap``), where
:func:`dippas.assembly.stitch` blends them with a linear ramp so that no
seam shows; with ``overlap=0`` every pixel belongs to exactly one tile.
The last row and column of tiles take the remainder, so edge tiles are
smaller. A remainder adding fewer than :func:`min_tile_side` new pixels
would give a tile too small for the noise residual and for the network (or
one that costs a whole inversion for a sliver), so it is merged into its
neighbour (that edge tile is then up to ``tile + min_tile_side - 1``
pixels). An image no larger than one tile is one tile, whatever the overlap.

Each tile is inverted on its own, at its size padded up to a multiple of
the network's :attr:`~dippas.dip.presets.Preset.pad_multiple` (16 for five
scales); the network output is cropped back to the tile before the loss.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import DippasInputError

#: Default tile side in pixels.
DEFAULT_TILE = 512

#: Default overlap of neighbouring tiles in pixels. 32 pixels (two cells of the
#: run's statistics) spread a difference of d grey levels between two tiles
#: over a 32-pixel ramp, steps of d/32 per pixel, for 10 % more pixels to
#: invert on the 3008x2000 Dresden photo, whose 512-pixel grid keeps its 24
#: tiles (an overlap of 64 would need 35 tiles, 27 % more pixels).
DEFAULT_TILE_OVERLAP = 32

#: Smallest tile side the residual accepts (a 4-level db4 transform).
MIN_SIDE = 32


@dataclass(frozen=True)
class TileGeometry:
    """Where one tile sits in the full image.

    Attributes
    ----------
    ty, tx : int
        Row and column of the tile in the grid.
    y0, x0 : int
        Top-left pixel of the tile in the full image.
    h, w : int
        Tile size in pixels.
    padded_h, padded_w : int
        Size the network works at (multiples of the pad multiple).
    """

    ty: int
    tx: int
    y0: int
    x0: int
    h: int
    w: int
    padded_h: int
    padded_w: int

    @property
    def name(self) -> str:
        """Folder name ``'<ty>_<tx>'`` under ``tiles/``."""
        return f"{self.ty}_{self.tx}"

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of the tile in the full image."""
        return slice(self.y0, self.y0 + self.h), slice(self.x0, self.x0 + self.w)

    def to_json(self) -> str:
        """The ``tile.json`` text."""
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> TileGeometry:
        """Inverse of :meth:`to_json` (after ``json.loads``)."""
        return cls(**{k: int(data[k]) for k in
                      ("ty", "tx", "y0", "x0", "h", "w", "padded_h", "padded_w")})


def min_tile_side(tile: int) -> int:
    """Thinnest edge tile kept on its own: ``max(32, tile // 4)`` pixels."""
    return max(MIN_SIDE, int(tile) // 4)


def default_overlap(tile: int) -> int:
    """The overlap a job uses unless told otherwise: :data:`DEFAULT_TILE_OVERLAP`, or a
    quarter of a tile too small for it (an overlap must stay under half the tile side).

    Examples
    --------
    >>> default_overlap(512), default_overlap(80), default_overlap(64), default_overlap(32)
    (32, 32, 16, 8)
    """
    tile = int(tile)
    return DEFAULT_TILE_OVERLAP if 2 * DEFAULT_TILE_OVERLAP < tile else tile // 4


def check_overlap(tile: int, overlap: int) -> int:
    """``overlap`` as an int, checked against ``tile``: ``0 <= overlap < tile / 2``.

    Less than half a tile, so that only two neighbours ever share a pixel
    along an axis and every tile keeps pixels of its own.

    Raises
    ------
    DippasInputError
    """
    if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or overlap < 0:
        raise DippasInputError(f"tile overlap must be a non-negative integer, got {overlap!r}")
    if 2 * int(overlap) >= int(tile):
        raise DippasInputError(f"tile overlap {overlap} must be less than half the tile side {tile} "
                               f"(at most {(int(tile) - 1) // 2} pixels)")
    return int(overlap)


def effective_overlap(height: int, width: int, tile: int, overlap: int) -> int:
    """The overlap a ``height x width`` photo's grid really has: 0 when it is one tile.

    A photo that fits in one tile has nothing to overlap, so its run records 0
    whatever was asked, and runs of it compare equal across overlap settings.

    Examples
    --------
    >>> effective_overlap(256, 256, 512, 32), effective_overlap(448, 448, 256, 32)
    (0, 32)
    """
    overlap = check_overlap(tile, overlap)
    if overlap and all(len(axis_splits(n, tile, overlap)) == 1 for n in (height, width)):
        return 0
    return overlap


def axis_splits(length: int, tile: int, overlap: int = 0) -> list[tuple[int, int]]:
    """``(start, size)`` of the tiles along one axis of ``length`` pixels.

    Neighbours share ``overlap`` pixels: tile ``i + 1`` starts ``overlap``
    pixels before tile ``i`` ends. A last tile adding fewer than
    :func:`min_tile_side` pixels of its own is merged into the one before.

    Examples
    --------
    >>> axis_splits(1200, 512)
    [(0, 512), (512, 512), (1024, 176)]
    >>> axis_splits(1100, 512)   # a 76-pixel remainder is merged
    [(0, 512), (512, 588)]
    >>> axis_splits(1200, 512, overlap=32)
    [(0, 512), (480, 512), (960, 240)]
    >>> axis_splits(512, 512, overlap=32)   # one tile: the overlap changes nothing
    [(0, 512)]
    """
    if length < 1 or tile < 1:
        raise DippasInputError(f"cannot tile a length of {length} with tiles of {tile}")
    overlap = check_overlap(tile, overlap)
    stride = tile - overlap
    starts = [0]
    while starts[-1] + tile < length:
        starts.append(starts[-1] + stride)
    sizes = [min(tile, length - s) for s in starts]
    if len(sizes) > 1 and sizes[-1] - overlap < min_tile_side(tile):
        starts.pop()
        sizes.pop()
        sizes[-1] = length - starts[-1]
    return list(zip(starts, sizes))


def padded(side: int, multiple: int) -> int:
    """``side`` rounded up to a multiple of ``multiple``."""
    return -(-int(side) // int(multiple)) * int(multiple)


def tile_grid(height: int, width: int, tile: int = DEFAULT_TILE,
              multiple: int = 16, overlap: int = 0) -> list[TileGeometry]:
    """The tiles of a ``height x width`` image, row by row.

    Parameters
    ----------
    height, width : int
        Image size in pixels (each at least 32).
    tile : int, optional
        Tile side (default 512). An image no larger than this in both
        directions is a single tile.
    multiple : int, optional
        The network's pad multiple (16 for five scales).
    overlap : int, optional
        Pixels shared by neighbouring tiles, ``0 <= overlap < tile / 2``
        (default 0: every pixel in exactly one tile; the jobs pass
        :attr:`dippas.jobs.DippasJob.tile_overlap`).

    Returns
    -------
    list of TileGeometry
        Row-major; together they cover the image, neighbours sharing
        ``overlap`` rows or columns.

    Raises
    ------
    DippasInputError
        If the image or the tile is smaller than 32 pixels, or the overlap
        is not in ``[0, tile / 2)``.

    Examples
    --------
    >>> [(t.y0, t.x0, t.h, t.w) for t in tile_grid(448, 448, 256, overlap=32)]
    [(0, 0, 256, 256), (0, 224, 256, 224), (224, 0, 224, 256), (224, 224, 224, 224)]
    """
    if tile < MIN_SIDE:
        raise DippasInputError(f"tile size must be at least {MIN_SIDE} pixels, got {tile}")
    if height < MIN_SIDE or width < MIN_SIDE:
        raise DippasInputError(
            f"image is {height}x{width} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed"
        )
    tiles = []
    for ty, (y0, h) in enumerate(axis_splits(height, tile, overlap)):
        for tx, (x0, w) in enumerate(axis_splits(width, tile, overlap)):
            tiles.append(TileGeometry(ty, tx, y0, x0, h, w, padded(h, multiple), padded(w, multiple)))
    return tiles
