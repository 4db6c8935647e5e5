"""The caching :class:`Assembler` of one run or tile, and one-shot assembly."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
import threading

import numpy as np

from ..errors import DippasInputError
from .averaging import average_blocks, check_snapshots
from .geometry import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_BLOCKS,
    DEFAULT_PSNR_THRESHOLD,
    WHOLE,
    BlockSize,
    block_cells,
    block_grid,
    is_whole,
)
from .heatmaps import image_block_ncc
from .ncc import block_ncc_blockmajor
from .ranking import order_blocks_blockmajor
from .selection import reaches_threshold, select_snapshots
from .stitching import stitch


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
        m, h, w, nc = check_snapshots(snapshots)
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
        if not np.isfinite(self.cells).all():
            raise DippasInputError("cell statistics hold NaN or infinite values: the run is damaged; "
                                   "recompute them (dippas.dip.DippasRun.catch_up_cells) or invert again")
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
            bm = block_ncc_blockmajor(self.cells, key[0], key[1])
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

    def assemble(self, block_size: BlockSize = DEFAULT_BLOCK_SIZE,
                 blocks: int = DEFAULT_BLOCKS,
                 psnr_threshold: float | None = DEFAULT_PSNR_THRESHOLD,
                 rule: str = "rank") -> AssemblyResult:
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
        rule : {'rank', 'min-abs'}
            Ordering of the candidates of a block (:mod:`dippas.assembly.ranking`):
            the paper's rank (below), or increasing ``|NCC|``.

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
        order = order_blocks_blockmajor(ncc_c, n_avg, rule)
        k = order.shape[2]
        selection = np.full(order.shape[:2] + (n_avg,), -1, dtype=np.int64)
        selection[:, :, :k] = cand[order]
        chosen = np.full(selection.shape, np.nan, dtype=np.float64)
        chosen[:, :, :k] = np.take_along_axis(ncc_c, order, axis=2)
        image = average_blocks(self.snapshots, selection, shape)
        params = {
            "block_size": WHOLE if is_whole(block_size) else int(block_size),
            "blocks": n_avg,
            "psnr_threshold": None if psnr_threshold is None else float(psnr_threshold),
            "psnr_fallback": not reaches_threshold(self.psnr, psnr_threshold),
            "cell_size": self.cell_size,
            "n_snapshots": self.n_snapshots,
            "n_candidates": int(cand.shape[0]),
            "rule": rule,
        }
        return AssemblyResult(image=image, selection=selection, block_ncc=chosen,
                              block_size=shape, params=params, candidates=cand)


def assemble(snapshots: Any, cells: Any, psnr: Any, cell_size: int,
             block_size: BlockSize = DEFAULT_BLOCK_SIZE, blocks: int = DEFAULT_BLOCKS,
             psnr_threshold: float | None = DEFAULT_PSNR_THRESHOLD, rule: str = "rank") -> AssemblyResult:
    """One-shot block assembly: ``Assembler(...).assemble(...)``.

    See :class:`Assembler` and :meth:`Assembler.assemble`.
    """
    return Assembler(snapshots, cells, psnr, cell_size).assemble(block_size, blocks, psnr_threshold, rule)


def assemble_tiles(tiles: Sequence[tuple[int, int, Assembler]], shape: tuple[int, ...],
                   block_size: BlockSize = DEFAULT_BLOCK_SIZE, blocks: int = DEFAULT_BLOCKS,
                   psnr_threshold: float | None = DEFAULT_PSNR_THRESHOLD,
                   rule: str = "rank", overlap: int = 0) -> tuple[np.ndarray, list[AssemblyResult]]:
    """Assemble every tile of a tiled run with the same B, L, tau, then stitch.

    Parameters
    ----------
    tiles : sequence of (y0, x0, Assembler)
        Each tile's top-left corner in the full image and its assembler.
    shape : tuple
        Full image shape ``(H, W, C)``.
    overlap : int, optional
        The grid's tile overlap, the feather ramp of :func:`stitch` (0: none).

    Returns
    -------
    image : ndarray, uint8, shape ``shape``
    results : list of AssemblyResult
        One per tile, in the order given.
    """
    results = [a.assemble(block_size, blocks, psnr_threshold, rule) for _, _, a in tiles]
    image = stitch([(y0, x0, r.image) for (y0, x0, _), r in zip(tiles, results)], shape,
                   overlap)
    return image, results
