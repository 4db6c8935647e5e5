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

**Ordering rule** (paper §3.3 step 2). Candidates come in three
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

Large images are processed as tiles: one :class:`Assembler` per tile,
stitched (:func:`stitch`); :class:`RunAssembler` does this for a run folder.

Modules, one concern each::

    selection.py   candidates by PSNR (τ_PSNR and its fallback)
    geometry.py    block sides and grids, 'whole', the assembly defaults
    ncc.py         block NCC from cell statistics (Numba)
    ranking.py     the ordering rule (Numba)
    averaging.py   averaging of the selected blocks (Numba)
    stitching.py   tiles into the full image
    heatmaps.py    per-block NCC of any image against a fingerprint
    assembler.py   the caching Assembler, assemble, assemble_tiles
    run.py         the bridge to run folders: RunAssembler, assemble_run
"""

from .assembler import Assembler, AssemblyResult, assemble, assemble_tiles
from .averaging import average_blocks
from .geometry import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_BLOCKS,
    DEFAULT_PSNR_THRESHOLD,
    WHOLE,
    BlockSize,
    block_cells,
    block_grid,
    block_shape,
    check_block_size,
    is_whole,
)
from .heatmaps import image_block_ncc
from .ncc import block_ncc_from_cells, snapshot_block_ncc
from .ranking import order_blocks, order_candidates, rank_key
from .run import RunAssembler, RunAssembly, assemble_run, cell_size_of
from .selection import reaches_threshold, select_snapshots
from .stitching import stitch

__all__ = [
    "DEFAULT_BLOCKS",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_PSNR_THRESHOLD",
    "WHOLE",
    "Assembler",
    "AssemblyResult",
    "BlockSize",
    "RunAssembler",
    "RunAssembly",
    "assemble",
    "assemble_run",
    "assemble_tiles",
    "average_blocks",
    "block_cells",
    "block_grid",
    "block_ncc_from_cells",
    "block_shape",
    "cell_size_of",
    "check_block_size",
    "image_block_ncc",
    "is_whole",
    "order_blocks",
    "order_candidates",
    "rank_key",
    "reaches_threshold",
    "select_snapshots",
    "snapshot_block_ncc",
    "stitch",
]
