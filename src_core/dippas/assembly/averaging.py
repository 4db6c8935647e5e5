"""Averaging of the selected blocks, pixel by pixel (Numba kernels that call each other)."""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

from ..errors import DippasInputError
from .geometry import block_grid


@nb.njit(cache=True, nogil=True)
def _pairs_by_snapshot(selection, n_snapshots):
    """(block, snapshot) pairs grouped by increasing snapshot index.

    Returns ``start`` (n_snapshots + 1,) and ``blocks``: the flat indices
    of the blocks that use snapshot m are ``blocks[start[m]:start[m + 1]]``.
    """
    nby, nbx, nl = selection.shape
    count = np.zeros(n_snapshots + 1, dtype=np.int64)
    for by in range(nby):
        for bx in range(nbx):
            for t in range(nl):
                m = selection[by, bx, t]
                if m >= 0:
                    count[m + 1] += 1
    for m in range(n_snapshots):
        count[m + 1] += count[m]
    fill = count[:-1].copy()
    blocks = np.empty(count[n_snapshots], dtype=np.int64)
    for by in range(nby):
        for bx in range(nbx):
            for t in range(nl):
                m = selection[by, bx, t]
                if m >= 0:
                    blocks[fill[m]] = by * nbx + bx
                    fill[m] += 1
    return count, blocks


@nb.njit(cache=True, nogil=True)
def _add_block(frame, acc, by, bx, bh, bw, nc):
    """Add block (by, bx) of ``frame`` to ``acc``, both (H, W*C) row-flat."""
    h, wn = acc.shape
    y0 = by * bh
    x0 = bx * bw * nc
    y1 = min(y0 + bh, h)
    x1 = min(x0 + bw * nc, wn)
    for i in range(y0, y1):
        src = frame[i]
        dst = acc[i]
        for j in range(x0, x1):
            dst[j] += src[j]


@nb.njit(cache=True, nogil=True)
def _accumulate_all(snapshots, start, blocks, nbx, bh, bw, nc, acc):
    """Add the selected blocks of every snapshot, snapshot by snapshot.

    ``snapshots`` is (M, H, W*C), ``acc`` (H, W*C).
    """
    for m in range(start.shape[0] - 1):
        if start[m + 1] == start[m]:
            continue
        frame = snapshots[m]
        for t in range(start[m], start[m + 1]):
            b = blocks[t]
            _add_block(frame, acc, b // nbx, b % nbx, bh, bw, nc)
    return acc


@nb.njit(cache=True, nogil=True)
def _accumulate_frame(frame, blocks, nbx, bh, bw, nc, acc):
    for t in range(blocks.shape[0]):
        b = blocks[t]
        _add_block(frame, acc, b // nbx, b % nbx, bh, bw, nc)
    return acc


@nb.njit(cache=True, nogil=True)
def _finalize(acc, selection, bh, bw, out):
    """Divide each block's sum by its number of blocks and round half to even."""
    h, w, nc = acc.shape
    nby, nbx, nl = selection.shape
    for by in range(nby):
        for bx in range(nbx):
            n = 0
            for t in range(nl):
                if selection[by, bx, t] >= 0:
                    n += 1
            y0 = by * bh
            x0 = bx * bw
            for i in range(y0, min(y0 + bh, h)):
                for j in range(x0, min(x0 + bw, w)):
                    for ch in range(nc):
                        v = np.rint(acc[i, j, ch] / n)
                        out[i, j, ch] = min(max(v, 0.0), 255.0)
    return out


def check_snapshots(snapshots: Any) -> tuple[int, int, int, int]:
    shape = tuple(int(s) for s in getattr(snapshots, "shape", ()))
    if len(shape) != 4:
        raise DippasInputError(f"snapshots must have shape (M, H, W, C), got {shape}")
    dtype = np.dtype(getattr(snapshots, "dtype", np.uint8))
    if dtype != np.uint8:
        raise DippasInputError(f"snapshots must be uint8, got {dtype}")
    return shape  # type: ignore[return-value]


def average_blocks(snapshots: Any, selection: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """Average, for every block, the blocks of the selected snapshots.

    Sums are accumulated in float64, pixel by pixel and channel by channel,
    divided by the number of selected snapshots of the block and rounded
    half to even (:func:`numpy.rint`) to uint8.

    The snapshots are read once, in increasing index, and only where they
    are selected: a C-contiguous NumPy array or memory map is read block by
    block in place (never copied whole); another array-like (zarr, h5py,
    a strided view...) is read one selected frame ``snapshots[m]`` at a time.

    Parameters
    ----------
    snapshots : array-like, uint8, shape (M, H, W, C)
    selection : ndarray of int, shape (nby, nbx, L)
        Snapshot indices per block; a negative index (-1) marks an unused
        slot. Every block needs at least one index.
    block : (int, int)
        Block side ``(bh, bw)`` in pixels; edge blocks are cut by the border.

    Returns
    -------
    ndarray, uint8, shape (H, W, C)
    """
    m, h, w, nc = check_snapshots(snapshots)
    sel = np.ascontiguousarray(selection, dtype=np.int64)
    bh, bw = int(block[0]), int(block[1])
    if bh < 1 or bw < 1:
        raise DippasInputError(f"block sides must be positive, got {bh}x{bw}")
    if sel.ndim != 3 or sel.shape[:2] != block_grid((h, w), (bh, bw)):
        raise DippasInputError(f"selection shape {sel.shape} does not match the block grid "
                               f"{block_grid((h, w), (bh, bw))} of blocks {bh}x{bw}")
    if sel.size and sel.max() >= m:
        raise DippasInputError("selection refers to a snapshot that does not exist")
    if sel.shape[2] == 0 or not (sel >= 0).any(axis=2).all():
        raise DippasInputError("every block needs at least one selected snapshot")
    start, blocks = _pairs_by_snapshot(sel, m)
    acc = np.zeros((h, w * nc), dtype=np.float64)
    nbx = sel.shape[1]
    if isinstance(snapshots, np.ndarray) and snapshots.flags.c_contiguous:
        # a view (no copy) of the array or memory map with flat rows
        flat = np.asarray(snapshots).reshape(m, h, w * nc)
        _accumulate_all(flat, start, blocks, nbx, bh, bw, nc, acc)
    else:
        for s in np.flatnonzero(np.diff(start)):
            frame = np.ascontiguousarray(snapshots[int(s)], dtype=np.uint8).reshape(h, w * nc)
            _accumulate_frame(frame, blocks[start[s]:start[s + 1]], nbx, bh, bw, nc, acc)
    acc = acc.reshape(h, w, nc)
    return _finalize(acc, sel, bh, bw, np.empty((h, w, nc), dtype=np.uint8))
