"""Split an image of any size into inversion tiles.

A photo larger than one tile is cut into a grid of tiles of ``tile x tile``
pixels from the top-left corner; the last row and column of tiles take the
remainder, so edge tiles are smaller. A remainder thinner than
:func:`min_tile_side` would give a tile too small for the noise residual
and for the network, so it is merged into its neighbour (that edge tile is
then up to ``tile + min_tile_side - 1`` pixels). Every pixel belongs to
exactly one tile.

Each tile is inverted on its own, at its size padded up to a multiple of
the network's :attr:`~dippas.dip.presets.Preset.pad_multiple` (16 for five
scales); the network output is cropped back to the tile before the loss.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ..errors import DippasInputError

#: Default tile side in pixels.
DEFAULT_TILE = 512

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


def axis_splits(length: int, tile: int) -> list[tuple[int, int]]:
    """``(start, size)`` of the tiles along one axis of ``length`` pixels.

    Examples
    --------
    >>> axis_splits(1200, 512)
    [(0, 512), (512, 512), (1024, 176)]
    >>> axis_splits(1100, 512)   # a 76-pixel remainder is merged
    [(0, 512), (512, 588)]
    """
    if length < 1 or tile < 1:
        raise DippasInputError(f"cannot tile a length of {length} with tiles of {tile}")
    starts = list(range(0, length, tile))
    sizes = [min(tile, length - s) for s in starts]
    if len(sizes) > 1 and sizes[-1] < min_tile_side(tile):
        last = sizes.pop()
        starts.pop()
        sizes[-1] += last
    return list(zip(starts, sizes))


def padded(side: int, multiple: int) -> int:
    """``side`` rounded up to a multiple of ``multiple``."""
    return -(-int(side) // int(multiple)) * int(multiple)


def tile_grid(height: int, width: int, tile: int = DEFAULT_TILE,
              multiple: int = 16) -> list[TileGeometry]:
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

    Returns
    -------
    list of TileGeometry
        Row-major; together they cover the image exactly once.

    Raises
    ------
    DippasInputError
        If the image or the tile is smaller than 32 pixels.
    """
    if tile < MIN_SIDE:
        raise DippasInputError(f"tile size must be at least {MIN_SIDE} pixels, got {tile}")
    if height < MIN_SIDE or width < MIN_SIDE:
        raise DippasInputError(
            f"image is {height}x{width} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed"
        )
    tiles = []
    for ty, (y0, h) in enumerate(axis_splits(height, tile)):
        for tx, (x0, w) in enumerate(axis_splits(width, tile)):
            tiles.append(TileGeometry(ty, tx, y0, x0, h, w, padded(h, multiple), padded(w, multiple)))
    return tiles
