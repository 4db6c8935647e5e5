"""Block NCC of every snapshot from its cell statistics (Numba)."""

from __future__ import annotations

from collections.abc import Sequence
import math

import numba as nb
import numpy as np

from ..errors import DippasInputError
from .geometry import BlockSize, block_cells


@nb.njit(cache=True, nogil=True)
def _block_ncc_kernel(cells, rows, kcy, kcx, out):
    """NCC of the blocks of ``kcy x kcx`` cells, for the snapshots ``rows``.

    ``out`` has shape (nby, nbx, len(rows)): block-major, so that the
    candidates of one block are contiguous for the ordering.
    """
    _, _, ny, nx = cells.shape
    nby, nbx, _ = out.shape
    s = np.empty((3, nby, nbx), dtype=np.float64)
    for i in range(rows.shape[0]):
        m = rows[i]
        s[:] = 0.0
        for cy in range(ny):
            by = cy // kcy
            for cx in range(nx):
                bx = cx // kcx
                s[0, by, bx] += cells[m, 0, cy, cx]
                s[1, by, bx] += cells[m, 1, cy, cx]
                s[2, by, bx] += cells[m, 2, cy, cx]
        for by in range(nby):
            for bx in range(nbx):
                den = math.sqrt(s[1, by, bx] * s[2, by, bx])
                out[by, bx, i] = s[0, by, bx] / den if den > 0.0 else np.nan
    return out


def _check_cells(cells: np.ndarray) -> None:
    if cells.ndim != 4 or cells.shape[1] != 3:
        raise DippasInputError(f"cell statistics must have shape (M, 3, ny, nx), got {cells.shape}")


def block_ncc_blockmajor(cells: np.ndarray, kcy: int, kcx: int,
                          rows: np.ndarray | None = None) -> np.ndarray:
    """Block NCC as (nby, nbx, M'), from float64 C-contiguous cells."""
    ny, nx = cells.shape[2], cells.shape[3]
    rows = np.arange(cells.shape[0], dtype=np.int64) if rows is None else rows
    out = np.empty((-(-ny // kcy), -(-nx // kcx), rows.shape[0]), dtype=np.float64)
    return _block_ncc_kernel(cells, rows, int(kcy), int(kcx), out)


def block_ncc_from_cells(cells: np.ndarray, cell_size: int, block_size: BlockSize,
                         indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Per-block NCC of snapshots, from their cell statistics.

    The statistics of the cells of each block are summed, then
    ``NCC = sum(W*X) / sqrt(sum(W**2) * sum(X**2))``. Edge blocks are
    partial when B does not divide the image size.

    Parameters
    ----------
    cells : ndarray, shape (M, 3, ny, nx) or (3, ny, nx)
        Cell statistics (:func:`dippas.cell_statistics`), one snapshot
        per row. May be a memory map: only the rows in ``indices`` are read.
    cell_size : int
        Cell side c in pixels.
    block_size : int, "whole" or None
        B in pixels, a multiple of c; "whole" or None for one block.
    indices : sequence of int, optional
        Snapshots to score (default all).

    Returns
    -------
    ndarray, float64, shape (M', nby, nbx) or (nby, nbx) for 3-D ``cells``
        NaN where a block has no energy in W or X.
    """
    arr = np.asarray(cells)
    single = arr.ndim == 3
    if single:
        arr = arr[None]
    _check_cells(arr)
    kcy, kcx = block_cells(block_size, cell_size, arr.shape[2:])
    if indices is not None:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= arr.shape[0]):
            raise DippasInputError("snapshot index out of range")
        arr = arr[idx]
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    out = np.moveaxis(block_ncc_blockmajor(arr, kcy, kcx), 2, 0)
    return out[0] if single else np.ascontiguousarray(out)


def snapshot_block_ncc(cells: np.ndarray, cell_size: int, block_size: BlockSize) -> np.ndarray:
    """Per-block NCC heatmap of one snapshot from its cell statistics.

    Parameters
    ----------
    cells : ndarray, shape (3, ny, nx)
        The snapshot's cell statistics.
    cell_size : int
        Cell side c.
    block_size : int, "whole" or None
        B, a multiple of c.

    Returns
    -------
    ndarray, float64, shape (nby, nbx)
    """
    arr = np.asarray(cells)
    if arr.ndim != 3:
        raise DippasInputError(
            f"one snapshot's cell statistics must have shape (3, ny, nx), got {arr.shape}")
    return block_ncc_from_cells(arr, cell_size, block_size)
