"""DIPPAS block assembly (paper §3.3) on snapshot arrays and cell statistics.

After the DIP inversion a run holds, for ``M`` snapshots,

* ``snapshots``: uint8 ``(M, H, W, C)`` (usually a memory-mapped ``.npy``),
* ``cells``: float64 ``(M, 3, ny, nx)``, the cell statistics
  ``sum(W*X)``, ``sum(W**2)``, ``sum(X**2)`` of every ``c x c`` cell, with W
  the noise residual of the whole snapshot and ``X = gray(snapshot) * P``
  (:func:`dippas.cell_statistics`, ``ny = ceil(H / c)``),
* ``psnr``: ``(M,)`` PSNR of each snapshot against the input.

The assembler

1. keeps the snapshots whose PSNR reaches ``tau`` (:func:`select_snapshots`);
2. computes the NCC of every candidate on every ``B x B`` block by summing
   cell statistics (:func:`block_ncc_from_cells`), so no residual is
   recomputed when ``B`` changes;
3. orders the candidates of each block by the paper's rule
   (:func:`rank_key`, :func:`order_candidates`, :func:`order_blocks`);
4. averages the first ``L`` blocks pixel by pixel (:func:`average_blocks`)
   and assembles them into the anonymized image.

**Candidates.** The snapshots with ``psnr >= tau``; if none reaches tau,
every snapshot at the best PSNR reached (ties included); ``tau=None``
keeps all.

**Block grid.** B is a positive multiple of the cell size c (so that a
block is a union of cells), or "whole"/None for one block covering the
image (whatever its aspect). Blocks are ``B x B`` from the top-left corner;
the last row and column of blocks are cut by the border when B does not
divide the size.

**Ordering rule** (DESIGN.md §4, paper §3.3 step 2). Candidates come in three
groups, in this order:

1. negative NCCs (``x < 0``), by increasing ``|x|``: ``-0.001`` before
   ``-0.5`` (descending among the negatives);
2. non-negative NCCs (``x >= 0``, ``-0.0`` included), smallest first;
3. NaN (a block with no energy in W or X), last.

Equal values keep the order of their snapshot index (lowest index first):
the sort is stable over candidates listed by increasing snapshot index.

**L = 1.** With ``L = 1`` every block is copied from one snapshot: the one
with the negative NCC closest to zero if any candidate is negative on that
block; otherwise the one with the smallest non-negative NCC; when every
candidate is NaN, the candidate with the lowest snapshot index. With
``B = "whole"`` and ``L = 1`` this is the paper's "no post-processing"
configuration: one snapshot is picked for the whole image. Note that it is
*not* ``argmin |NCC|`` over all candidates when both signs occur: a snapshot
at ``-0.3`` is preferred to one at ``+0.01``, as the paper prescribes.

Large images are processed as tiles (one run folder per tile): build one
:class:`Assembler` per tile and :func:`stitch` the tile images.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numba as nb
import numpy as np

from .correlation import attribution_reference, block_ncc_map
from .errors import DippasInputError
from .residual import noise_residual

#: Block sizes of the paper's experiments, in pixels ("whole": one block).
PAPER_BLOCK_SIZES = (32, 64, 128, 256, 512)
#: Numbers of averaged blocks L of the paper's experiments.
PAPER_BLOCK_COUNTS = (1, 5, 10, 25, 50, 75, 100)
#: The value of ``block_size`` that means one block covering the whole image.
WHOLE = "whole"

BlockSize = int | str | None


# --------------------------------------------------------------------------
# Snapshot selection by PSNR
# --------------------------------------------------------------------------

def select_snapshots(psnr: np.ndarray, psnr_threshold: float | None) -> np.ndarray:
    """Indices of the snapshots that take part in the assembly.

    Parameters
    ----------
    psnr : ndarray, shape (M,)
        PSNR of each snapshot against the input image, in dB.
    psnr_threshold : float or None
        tau_PSNR in dB. None keeps every snapshot.

    Returns
    -------
    ndarray of int64, shape (M',), increasing
        The snapshots with ``psnr >= psnr_threshold``. If none reaches the
        threshold, the snapshots at the best PSNR reached (every snapshot
        whose PSNR equals the maximum; NaN PSNRs are ignored).

    Raises
    ------
    DippasInputError
        If there is no snapshot, the threshold is NaN, or (with a threshold)
        no snapshot has a PSNR that is not NaN.
    """
    p = np.asarray(psnr, dtype=np.float64).reshape(-1)
    if p.size == 0:
        raise DippasInputError("the run holds no snapshot to assemble")
    if psnr_threshold is None:
        return np.arange(p.size, dtype=np.int64)
    tau = float(psnr_threshold)
    if math.isnan(tau):
        raise DippasInputError("the PSNR threshold must be a number, got NaN")
    keep = np.flatnonzero(p >= tau)
    if keep.size:
        return keep.astype(np.int64)
    valid = ~np.isnan(p)
    if not valid.any():
        raise DippasInputError("no snapshot has a valid PSNR")
    return np.flatnonzero(valid & (p == p[valid].max())).astype(np.int64)


def reaches_threshold(psnr: np.ndarray, psnr_threshold: float | None) -> bool:
    """Whether at least one snapshot reaches ``psnr_threshold`` (no fallback)."""
    if psnr_threshold is None:
        return True
    return bool(np.any(np.asarray(psnr, dtype=np.float64) >= float(psnr_threshold)))


# --------------------------------------------------------------------------
# Block geometry
# --------------------------------------------------------------------------

def _is_whole(block_size: BlockSize) -> bool:
    return block_size is None or (isinstance(block_size, str) and block_size.lower() == WHOLE)


def block_cells(block_size: BlockSize, cell_size: int,
                cell_grid: tuple[int, int]) -> tuple[int, int]:
    """Block side in cells, along y and x.

    Parameters
    ----------
    block_size : int, "whole" or None
        B in pixels, a positive multiple of ``cell_size``; "whole" or None
        means one block covering the image.
    cell_size : int
        Cell side c in pixels.
    cell_grid : (int, int)
        ``(ny, nx)``, the number of cells along y and x.

    Returns
    -------
    (int, int)
        ``(kcy, kcx)``: a block spans ``kcy x kcx`` cells.
    """
    c = int(cell_size)
    if c < 1:
        raise DippasInputError(f"cell size must be positive, got {cell_size}")
    ny, nx = (int(v) for v in cell_grid)
    if _is_whole(block_size):
        return ny, nx
    if isinstance(block_size, str) or isinstance(block_size, bool):
        raise DippasInputError(
            f"block size must be a number of pixels or 'whole', got {block_size!r}")
    b = int(block_size)
    if b != block_size or b < 1:
        raise DippasInputError(
            f"block size must be a positive whole number of pixels, got {block_size!r}")
    if b % c:
        raise DippasInputError(f"block size {b} is not a multiple of the cell size {c}")
    return b // c, b // c


def block_shape(block_size: BlockSize, cell_size: int,
                image_shape: tuple[int, int]) -> tuple[int, int]:
    """Block side in pixels ``(bh, bw)`` for an image of ``image_shape``.

    With "whole" the block is ``ceil(H/c)*c x ceil(W/c)*c``, which covers
    the image. Edge blocks of the grid are cut by the image border.
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    c = int(cell_size)
    kcy, kcx = block_cells(block_size, c, (-(-h // c), -(-w // c)))
    return kcy * c, kcx * c


def block_grid(image_shape: tuple[int, int], block: tuple[int, int]) -> tuple[int, int]:
    """Number of blocks ``(nby, nbx)`` of side ``block = (bh, bw)`` (edge blocks partial)."""
    h, w = int(image_shape[0]), int(image_shape[1])
    return -(-h // int(block[0])), -(-w // int(block[1]))


# --------------------------------------------------------------------------
# Block NCC from cell statistics
# --------------------------------------------------------------------------

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


def _block_ncc_blockmajor(cells: np.ndarray, kcy: int, kcx: int,
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
    out = np.moveaxis(_block_ncc_blockmajor(arr, kcy, kcx), 2, 0)
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


def image_block_ncc(image: np.ndarray, fingerprint: np.ndarray, block_size: BlockSize,
                    sigma: float = 3.0) -> np.ndarray:
    """Per-block NCC heatmap of an image (e.g. the assembled result) against P.

    W = :func:`dippas.noise_residual` of the whole image, X = ``gray(image) * P``
    (:func:`dippas.correlation.attribution_reference`), then
    :func:`dippas.block_ncc_map` on ``B x B`` blocks.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3) or (H, W)
    fingerprint : ndarray, shape (H, W)
        P, the fingerprint the blocks were ranked against.
    block_size : int, "whole" or None
        B in pixels (any positive size here); "whole"/None for one block.
    sigma : float, optional
        Residual noise level in 0-255 units.

    Returns
    -------
    ndarray, float64, shape (ceil(H/B), ceil(W/B))
    """
    img = np.asarray(image)
    p = np.asarray(fingerprint, dtype=np.float32)
    if p.shape != img.shape[:2]:
        raise DippasInputError(
            f"fingerprint shape {p.shape} differs from the image size {img.shape[:2]}")
    if _is_whole(block_size):
        b = max(img.shape[0], img.shape[1])
    else:
        b = int(block_size)
        if b < 1:
            raise DippasInputError(f"block size must be positive, got {block_size!r}")
    w = noise_residual(img, sigma)
    x = attribution_reference(img, p)
    return block_ncc_map(w, x, b)


# --------------------------------------------------------------------------
# Ordering
# --------------------------------------------------------------------------

def rank_key(x: float) -> tuple[int, float]:
    """Sort key of one NCC value under the paper's ordering.

    Sorting by ``(rank_key(x), snapshot_index)`` gives the assembly order.

    Returns
    -------
    (int, float)
        ``(0, -x)`` for ``x < 0`` (negatives first, closest to zero first),
        ``(1, x)`` for ``x >= 0`` (then non-negatives, smallest first),
        ``(2, 0.0)`` for NaN (last).
    """
    v = float(x)
    if math.isnan(v):
        return (2, 0.0)
    if v < 0.0:
        return (0, -v)
    return (1, v)


#: Rank-key bit of the non-negative group (see :func:`_rank_keys`).
_NONNEG_BIT = np.uint64(1 << 63)
#: Rank key of NaN: larger than every other key.
_NAN_KEY = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


@nb.njit(cache=True, nogil=True)
def _rank_keys(v, keys):
    """Integer rank keys: sorting them (stably) gives the assembly order.

    The key of a non-NaN value is the IEEE-754 bit pattern of ``|x|``, which
    orders like ``|x|`` as an unsigned integer and stays below ``2**63``;
    the top bit is set for ``x >= 0`` (so every negative comes first), and
    NaN gets the largest key. This is :func:`rank_key` packed in 64 bits.
    """
    mag = np.empty(v.shape[0], dtype=np.float64)
    for i in range(v.shape[0]):
        mag[i] = abs(v[i])
    bits = mag.view(np.uint64)
    for i in range(v.shape[0]):
        x = v[i]
        if x < 0.0:
            keys[i] = bits[i]
        elif x >= 0.0:
            keys[i] = bits[i] | _NONNEG_BIT
        else:
            keys[i] = _NAN_KEY
    return keys


@nb.njit(cache=True, nogil=True)
def _order_into(v, out):
    """Write into ``out`` the positions of ``v`` in the assembly order.

    Stable: equal values keep their order in ``v``. ``out`` may be shorter
    than ``v`` (K < n): then only the first K are found, in O(n + K log K)
    (a partition finds the K-th key; ties at it are taken by position).
    """
    n = v.shape[0]
    k = out.shape[0]
    if k == 0:
        return out
    keys = _rank_keys(v, np.empty(n, dtype=np.uint64))
    if k >= n:
        order = np.argsort(keys, kind="mergesort")
        for t in range(n):
            out[t] = order[t]
        return out
    kth = np.partition(keys.copy(), k - 1)[k - 1]
    pos = np.empty(k, dtype=np.int64)
    sub = np.empty(k, dtype=np.uint64)
    j = 0
    for i in range(n):  # strictly below the K-th key: fewer than K of them
        if keys[i] < kth:
            pos[j] = i
            sub[j] = keys[i]
            j += 1
    for i in range(n):  # then ties at the K-th key, lowest position first
        if j >= k:
            break
        if keys[i] == kth:
            pos[j] = i
            sub[j] = kth
            j += 1
    # stable sort of the K keys; ``pos`` is increasing within each key
    order = np.argsort(sub, kind="mergesort")
    for t in range(k):
        out[t] = pos[order[t]]
    return out


@nb.njit(cache=True, nogil=True)
def _order_blocks_kernel(ncc, out):
    """Per-block ordering: ``ncc`` (nby, nbx, M'), ``out`` (nby, nbx, K)."""
    nby, nbx, _ = ncc.shape
    for by in range(nby):
        for bx in range(nbx):
            _order_into(ncc[by, bx], out[by, bx])
    return out


def order_candidates(ncc_values: np.ndarray) -> np.ndarray:
    """Positions of the candidates of one block, in assembly order.

    Parameters
    ----------
    ncc_values : ndarray, shape (M',)
        NCC of each candidate on the block, candidates listed by increasing
        snapshot index.

    Returns
    -------
    ndarray of int64, shape (M',)
        Negatives by increasing ``|x|``, then non-negatives increasing, then
        NaN; ties keep their input order (lowest snapshot index first).
        Same order as sorting by ``(rank_key(x), position)``.
    """
    v = np.ascontiguousarray(ncc_values, dtype=np.float64).reshape(-1)
    return _order_into(v, np.empty(v.shape[0], dtype=np.int64))


def order_blocks(block_ncc: np.ndarray, limit: int | None = None) -> np.ndarray:
    """Assembly order of the candidates of every block.

    Parameters
    ----------
    block_ncc : ndarray, shape (M', nby, nbx)
        NCC of each candidate on each block (:func:`block_ncc_from_cells`).
    limit : int, optional
        Keep only the first ``limit`` positions of each block.

    Returns
    -------
    ndarray of int64, shape (nby, nbx, K)
        ``K = min(limit, M')``; positions along axis 0 of ``block_ncc``,
        ordered per block as :func:`order_candidates`.
    """
    arr = np.asarray(block_ncc, dtype=np.float64)
    if arr.ndim != 3:
        raise DippasInputError(f"block NCC must have shape (M, nby, nbx), got {arr.shape}")
    bm = np.ascontiguousarray(np.moveaxis(arr, 0, 2))
    return _order_blocks_bm(bm, limit)


def _order_blocks_bm(bm: np.ndarray, limit: int | None) -> np.ndarray:
    m = bm.shape[2]
    k = m if limit is None else max(0, min(int(limit), m))
    out = np.empty(bm.shape[:2] + (k,), dtype=np.int64)
    return _order_blocks_kernel(bm, out)


# --------------------------------------------------------------------------
# Averaging the selected blocks
# --------------------------------------------------------------------------

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


def _check_snapshots(snapshots: Any) -> tuple[int, int, int, int]:
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
    m, h, w, nc = _check_snapshots(snapshots)
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


# --------------------------------------------------------------------------
# Stitching tiles
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# The assembler
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class AssemblyResult:
    """Outcome of one assembly.

    Attributes
    ----------
    image : ndarray, uint8, shape (H, W, C)
        The assembled (anonymized) image.
    selection : ndarray, int64, shape (nby, nbx, L)
        Per block, the snapshot indices averaged, in assembly order; -1 in
        the unused slots when fewer than L candidates exist.
    block_ncc : ndarray, float64, shape (nby, nbx, L)
        NCC (from the cell statistics) of each selected snapshot on its
        block, aligned with ``selection``; NaN in unused slots.
    block_size : (int, int)
        Block side in pixels ``(bh, bw)`` (edge blocks cut by the border).
    params : dict
        ``block_size`` (as asked), ``blocks`` (L), ``psnr_threshold``,
        ``psnr_fallback`` (True when no snapshot reached the threshold and
        the best-PSNR snapshots were used), ``cell_size``, ``n_snapshots``,
        ``n_candidates``.
    candidates : ndarray, int64
        Indices of the snapshots that took part (selected by PSNR).
    """

    image: np.ndarray
    selection: np.ndarray
    block_ncc: np.ndarray
    block_size: tuple[int, int]
    params: dict = field(default_factory=dict)
    candidates: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def counts(self) -> np.ndarray:
        """Number of snapshots averaged per block, shape (nby, nbx)."""
        return (self.selection >= 0).sum(axis=2)

    @property
    def best_ncc(self) -> np.ndarray:
        """NCC of the first-ranked snapshot of every block, shape (nby, nbx)."""
        return self.block_ncc[:, :, 0]


class Assembler:
    """Interactive block assembler over one run (or one tile of a run).

    Holds the snapshot array (left where it is, e.g. a memory map), a
    float64 C-contiguous copy of the cell statistics and the PSNRs, and
    caches the block NCC of every snapshot for the last few block sizes, so
    changing B, L or tau costs a ranking and one pass over the selected
    blocks, with no residual recomputed.

    Parameters
    ----------
    snapshots : array-like, uint8, shape (M, H, W, C)
    cells : array-like, float64, shape (M, 3, ny, nx)
        Cell statistics of each snapshot, ``ny = ceil(H / cell_size)``.
    psnr : array-like, shape (M,)
        PSNR of each snapshot against the input, in dB.
    cell_size : int
        Cell side c in pixels.
    fingerprint : ndarray, shape (H, W), optional
        P, for :meth:`result_heatmap`.
    cache_size : int, optional
        Number of block sizes whose block NCC stays cached (default 4).

    Notes
    -----
    When the arrays differ in length (the background stage computing cells
    lags behind the snapshot store), only the first
    ``min(len(snapshots), len(cells), len(psnr))`` snapshots are used;
    :attr:`n_snapshots` tells how many.
    """

    def __init__(self, snapshots: Any, cells: Any, psnr: Any, cell_size: int,
                 fingerprint: np.ndarray | None = None, cache_size: int = 4) -> None:
        m, h, w, nc = _check_snapshots(snapshots)
        cells_arr = cells if hasattr(cells, "shape") else np.asarray(cells, dtype=np.float64)
        cshape = tuple(int(s) for s in cells_arr.shape)
        c = int(cell_size)
        if c < 1:
            raise DippasInputError(f"cell size must be positive, got {cell_size}")
        grid = (-(-h // c), -(-w // c))
        if len(cshape) != 4 or cshape[1] != 3 or cshape[2:] != grid:
            raise DippasInputError(f"cell statistics must have shape (M, 3, {grid[0]}, {grid[1]}) "
                                   f"{h}x{w} snapshots and cells of {c}, got {cshape}")
        p = np.asarray(psnr, dtype=np.float64).reshape(-1)
        n = min(m, cshape[0], p.shape[0])
        self.snapshots = snapshots
        # An in-memory copy: cells of a live run may be a memory map that grows.
        self.cells = np.array(cells_arr[:n], dtype=np.float64, order="C", copy=True)
        self.psnr = p[:n].copy()
        self.cell_size = c
        self.image_shape = (h, w)
        self.channels = nc
        self.fingerprint = (None if fingerprint is None
                            else np.asarray(fingerprint, dtype=np.float32))
        if self.fingerprint is not None and self.fingerprint.shape != (h, w):
            raise DippasInputError(f"fingerprint shape {self.fingerprint.shape} differs from the "
                                   f"snapshot size {(h, w)}")
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_size = max(1, int(cache_size))
        self._lock = threading.Lock()

    @property
    def n_snapshots(self) -> int:
        """Number of snapshots taking part (those with cell statistics and a PSNR)."""
        return int(self.psnr.shape[0])

    @property
    def cell_grid(self) -> tuple[int, int]:
        """``(ny, nx)``, the number of cells."""
        return int(self.cells.shape[2]), int(self.cells.shape[3])

    def block_shape(self, block_size: BlockSize) -> tuple[int, int]:
        """Block side in pixels ``(bh, bw)`` for ``block_size``."""
        kcy, kcx = block_cells(block_size, self.cell_size, self.cell_grid)
        return kcy * self.cell_size, kcx * self.cell_size

    def grid(self, block_size: BlockSize) -> tuple[int, int]:
        """Number of blocks ``(nby, nbx)`` for ``block_size``."""
        return block_grid(self.image_shape, self.block_shape(block_size))

    def candidates(self, psnr_threshold: float | None) -> np.ndarray:
        """Snapshot indices kept for ``psnr_threshold`` (see :func:`select_snapshots`)."""
        return select_snapshots(self.psnr, psnr_threshold)

    def _block_ncc_bm(self, block_size: BlockSize) -> np.ndarray:
        key = block_cells(block_size, self.cell_size, self.cell_grid)
        if self.n_snapshots == 0:
            raise DippasInputError("the run holds no snapshot with cell statistics")
        with self._lock:  # a GUI may assemble from a worker thread
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            bm = _block_ncc_blockmajor(self.cells, key[0], key[1])
            bm.flags.writeable = False
            self._cache[key] = bm
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return bm

    def clear_cache(self) -> None:
        """Forget the cached block NCCs (the next call per block size recomputes them)."""
        with self._lock:
            self._cache.clear()

    def block_ncc(self, block_size: BlockSize) -> np.ndarray:
        """Block NCC of every snapshot, shape (M, nby, nbx) (a read-only view of the cache)."""
        return np.moveaxis(self._block_ncc_bm(block_size), 2, 0)

    def snapshot_heatmap(self, index: int, block_size: BlockSize) -> np.ndarray:
        """Per-block NCC map of snapshot ``index``, shape (nby, nbx)."""
        i = int(index)
        if not 0 <= i < self.n_snapshots:
            raise DippasInputError(f"snapshot index {index} out of range 0..{self.n_snapshots - 1}")
        return self._block_ncc_bm(block_size)[:, :, i].copy()

    def result_heatmap(self, result: AssemblyResult | np.ndarray, block_size: BlockSize = None,
                       fingerprint: np.ndarray | None = None, sigma: float = 3.0) -> np.ndarray:
        """Per-block NCC map of an assembled image against P (residual recomputed).

        Parameters
        ----------
        result : AssemblyResult or ndarray (H, W, C)
        block_size : int, "whole" or None, optional
            Default: the result's own block size (or the whole image).
        fingerprint : ndarray (H, W), optional
            P; default the one given to the constructor.
        sigma : float, optional
            Residual noise level.
        """
        p = self.fingerprint if fingerprint is None else fingerprint
        if p is None:
            raise DippasInputError("a fingerprint P is needed for the result's NCC map")
        if isinstance(result, AssemblyResult):
            image = result.image
            if block_size is None:
                block_size = result.params.get("block_size")
        else:
            image = np.asarray(result)
        return image_block_ncc(image, p, block_size, sigma)

    def assemble(self, block_size: BlockSize = WHOLE, blocks: int = 1,
                 psnr_threshold: float | None = None) -> AssemblyResult:
        """Assemble the anonymized image.

        Parameters
        ----------
        block_size : int, "whole" or None
            B in pixels, a multiple of the cell size; "whole"/None: one block.
        blocks : int
            L >= 1, the number of top-ranked blocks averaged per position
            (all candidates when fewer than L).
        psnr_threshold : float or None
            tau_PSNR in dB; None keeps every snapshot. If no snapshot reaches
            it, the snapshots at the best PSNR are used.

        Returns
        -------
        AssemblyResult

        Notes
        -----
        Per block, candidates are ranked negatives first (closest to zero
        first), then non-negatives (smallest first), then NaN, ties by
        snapshot index; the first ``min(L, M')`` are averaged. With L = 1
        the block is copied from the negative-NCC snapshot closest to zero
        if the block has one, else from the smallest non-negative NCC; with
        ``block_size="whole"`` this picks one snapshot for the whole image.
        """
        if isinstance(blocks, bool) or int(blocks) != blocks or int(blocks) < 1:
            raise DippasInputError(
                f"the number of averaged blocks L must be a whole number >= 1, got {blocks!r}")
        n_avg = int(blocks)
        shape = self.block_shape(block_size)
        bm = self._block_ncc_bm(block_size)
        cand = self.candidates(psnr_threshold)
        ncc_c = bm if cand.shape[0] == bm.shape[2] else np.ascontiguousarray(bm[:, :, cand])
        order = _order_blocks_bm(ncc_c, n_avg)
        k = order.shape[2]
        selection = np.full(order.shape[:2] + (n_avg,), -1, dtype=np.int64)
        selection[:, :, :k] = cand[order]
        chosen = np.full(selection.shape, np.nan, dtype=np.float64)
        chosen[:, :, :k] = np.take_along_axis(ncc_c, order, axis=2)
        image = average_blocks(self.snapshots, selection, shape)
        params = {
            "block_size": WHOLE if _is_whole(block_size) else int(block_size),
            "blocks": n_avg,
            "psnr_threshold": None if psnr_threshold is None else float(psnr_threshold),
            "psnr_fallback": not reaches_threshold(self.psnr, psnr_threshold),
            "cell_size": self.cell_size,
            "n_snapshots": self.n_snapshots,
            "n_candidates": int(cand.shape[0]),
        }
        return AssemblyResult(image=image, selection=selection, block_ncc=chosen,
                              block_size=shape, params=params, candidates=cand)


def assemble(snapshots: Any, cells: Any, psnr: Any, cell_size: int, block_size: BlockSize = WHOLE,
             blocks: int = 1, psnr_threshold: float | None = None) -> AssemblyResult:
    """One-shot block assembly: ``Assembler(...).assemble(...)``.

    See :class:`Assembler` and :meth:`Assembler.assemble`.
    """
    return Assembler(snapshots, cells, psnr, cell_size).assemble(block_size, blocks, psnr_threshold)


def assemble_tiles(tiles: Sequence[tuple[int, int, Assembler]], shape: tuple[int, ...],
                   block_size: BlockSize = WHOLE, blocks: int = 1,
                   psnr_threshold: float | None = None) -> tuple[np.ndarray, list[AssemblyResult]]:
    """Assemble every tile of a tiled run with the same B, L, tau, then stitch.

    Parameters
    ----------
    tiles : sequence of (y0, x0, Assembler)
        Each tile's top-left corner in the full image and its assembler.
    shape : tuple
        Full image shape ``(H, W, C)``.

    Returns
    -------
    image : ndarray, uint8, shape ``shape``
    results : list of AssemblyResult
        One per tile, in the order given.
    """
    results = [a.assemble(block_size, blocks, psnr_threshold) for _, _, a in tiles]
    image = stitch([(y0, x0, r.image) for (y0, x0, _), r in zip(tiles, results)], shape)
    return image, results
