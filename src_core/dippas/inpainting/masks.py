"""Pixel selectors of the inpainting anonymizer (ICIP 2017, step 1).

Each selector (mask) hides ``B x B`` holes placed on a regular grid of
period ``p`` in both directions. Mask ``(a, b)``, for ``a, b`` in
``0 .. p/B - 1``, hides the pixels whose coordinates satisfy

    ``(i mod p) // B == a``  and  ``(j mod p) // B == b``.

The ``(p/B)**2`` masks are shifted copies of one another and together hide
every pixel exactly once. The grid is anchored at pixel ``(0, 0)``.

**Image borders.** A hole cut by the image border is still a hole: it has
fewer than ``B x B`` pixels and is inpainted like any other. Difference
terms whose second pixel would lie outside the image are simply dropped
from the penalty, so a border pixel is inpainted from the neighbours it
has. Hence every pixel, border pixels included, is hidden and inpainted.

**Independence of the holes.** The smoothness penalty only couples pixels
at distance ``delta`` along a row or a column. Two holes of the same mask
in one row band are ``p`` apart (``p - B`` visible pixels in between), so a
difference starting in one hole reaches the next only when
``B - 1 + delta >= p``. The period rule
``p = max(ceil(2 (delta + 1) / B) * B, 2 B)`` gives ``p >= 2 (delta + 1)``
and ``p >= 2 B``, hence ``p >= B + delta + 1``: holes are never coupled,
for any ``B`` and ``delta`` (for ``delta = 3``: ``p = 10 >= 9`` with
``B = 5``, ``p = 9 >= 7`` with ``B = 3``). Holes in different row bands
are never on the same row, and a vertical difference joins pixels in
one column only, so the same argument holds vertically.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DippasInputError

#: Hole sides supported (the authors' choices).
HOLE_SIZES = (3, 5)

#: Default derivative step of the smoothness penalty (the authors' choice).
DEFAULT_DELTA = 3


def check_hole_delta(hole: int, delta: int) -> tuple[int, int]:
    """Validate the hole side and derivative step.

    Parameters
    ----------
    hole : int
        Hole side ``B``, 3 or 5.
    delta : int
        Derivative step, a positive integer.

    Returns
    -------
    tuple of int
        ``(hole, delta)`` as Python ints.

    Raises
    ------
    DippasInputError
        If ``hole`` is not 3 or 5, or ``delta`` is not a positive integer.
    """
    if isinstance(hole, bool) or not isinstance(hole, (int, np.integer)) or int(hole) not in HOLE_SIZES:
        raise DippasInputError(f"unknown hole size {hole!r}; choose one of {', '.join(map(str, HOLE_SIZES))}")
    if isinstance(delta, bool) or not isinstance(delta, (int, np.integer)) or int(delta) < 1:
        raise DippasInputError(f"delta must be a positive integer, got {delta!r}")
    return int(hole), int(delta)


def hole_period(hole: int, delta: int = DEFAULT_DELTA) -> int:
    """Grid period ``p = max(ceil(2 (delta + 1) / B) * B, 2 B)``.

    Parameters
    ----------
    hole : int
        Hole side ``B``.
    delta : int, optional
        Derivative step (default 3).

    Returns
    -------
    int
        The period; 10 for ``B = 5`` and 9 for ``B = 3`` with ``delta = 3``.

    Examples
    --------
    >>> hole_period(5), hole_period(3)
    (10, 9)
    """
    hole, delta = check_hole_delta(hole, delta)
    return max(math.ceil(2 * (delta + 1) / hole) * hole, 2 * hole)


def holes_decoupled(hole: int, period: int, delta: int) -> bool:
    """Whether no difference at distance ``delta`` joins two holes of one mask.

    A difference from column ``c`` of a hole (``0 <= c < B``) lands on
    ``c + delta``; the next hole of the mask starts at ``p``. They are
    decoupled when ``B - 1 + delta < p``.
    """
    return hole - 1 + delta < period


def mask_offsets(hole: int, delta: int = DEFAULT_DELTA) -> list[tuple[int, int]]:
    """Row and column offsets of the holes of every mask.

    Parameters
    ----------
    hole : int
        Hole side ``B``.
    delta : int, optional
        Derivative step (default 3).

    Returns
    -------
    list of (int, int)
        ``(a * B, b * B)`` for every mask ``(a, b)``, row-major;
        ``(p / B)**2`` entries.

    Examples
    --------
    >>> len(mask_offsets(5)), len(mask_offsets(3))
    (4, 9)
    """
    period = hole_period(hole, delta)
    steps = range(0, period, hole)
    return [(r, c) for r in steps for c in steps]


def mask_index_map(shape: tuple[int, int], hole: int, delta: int = DEFAULT_DELTA) -> np.ndarray:
    """Index of the mask that hides each pixel.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` of the image.
    hole : int
        Hole side ``B``.
    delta : int, optional
        Derivative step (default 3).

    Returns
    -------
    ndarray, shape (H, W), int16
        ``k`` where mask ``k`` (in the order of :func:`mask_offsets`)
        hides the pixel.
    """
    period = hole_period(hole, delta)
    per_side = period // hole
    h, w = int(shape[0]), int(shape[1])
    rows = (np.arange(h) % period) // hole
    cols = (np.arange(w) % period) // hole
    return (rows[:, None] * per_side + cols[None, :]).astype(np.int16)


def selector_mask(shape: tuple[int, int], index: int, hole: int,
                  delta: int = DEFAULT_DELTA) -> np.ndarray:
    """Boolean mask of the pixels hidden by selector ``index``.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` of the image.
    index : int
        Mask number, ``0 <= index < len(mask_offsets(hole, delta))``.
    hole : int
        Hole side ``B``.
    delta : int, optional
        Derivative step (default 3).

    Returns
    -------
    ndarray, shape (H, W), bool
        True where the pixel is hidden (to be inpainted).
    """
    n = len(mask_offsets(hole, delta))
    if not 0 <= int(index) < n:
        raise DippasInputError(f"mask index {index} out of range 0..{n - 1}")
    return mask_index_map(shape, hole, delta) == int(index)


def selector_masks(shape: tuple[int, int], hole: int, delta: int = DEFAULT_DELTA) -> np.ndarray:
    """All selector masks, stacked.

    Returns
    -------
    ndarray, shape (n_masks, H, W), bool
        ``masks.sum(axis=0) == 1`` everywhere: the masks partition the image.
    """
    idx = mask_index_map(shape, hole, delta)
    n = len(mask_offsets(hole, delta))
    return idx[None, :, :] == np.arange(n, dtype=np.int16)[:, None, None]
