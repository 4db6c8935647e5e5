"""Block geometry: block sides in cells and pixels, block grids, the 'whole' block, defaults."""

from __future__ import annotations

from ..errors import DippasInputError

#: The value of ``block_size`` that means one block covering the whole image (or tile).
WHOLE = "whole"

#: A block side: pixels, or ``'whole'`` (``None`` is read as ``'whole'``).
BlockSize = int | str | None

#: Default assembly of every face (``dippas.jobs.DippasJob``): block side B in pixels.
DEFAULT_BLOCK_SIZE: int | str = 64
#: Default L, the number of best blocks averaged. Averaging the 10 best blocks
#: raised PSNR by about 1 dB at equal AUC on the Dresden crops (docs/evaluation.md).
DEFAULT_BLOCKS = 10
#: Default τ_PSNR in dB: only snapshots at least this good are candidates
#: (None keeps every stored snapshot). 38 dB is the paper's best setting
#: {τ 38, B 64, L 10} (its Fig. 9); with τ none the averaged blocks come from
#: every snapshot stored from 33 dB and the output stays near 36 dB
#: (docs/benchmarks.md).
DEFAULT_PSNR_THRESHOLD: float | None = 38.0
#: Default of the blend that takes negative block NCCs to zero (:mod:`dippas.assembly.zero_blend`).
#: On the 128^2 protocol (docs/evaluation.md, the 37 quadrant centres scored in
#: the time there was) it took the mean own-camera NCC of the outputs from
#: -0.0048 to -0.0005, the AUC from 0.351 to 0.441, PSNR from 38.87 to 40.23 dB
#: and C from 27.3 to 35.5 (paired difference +8.2, 95 % interval [+4.5, +11.5],
#: on the same inversions).
DEFAULT_ZERO_BLEND: bool = True


def is_whole(block_size: BlockSize) -> bool:
    """Whether ``block_size`` means one block over the whole image."""
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
    if is_whole(block_size):
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


def check_block_size(block_size: BlockSize, cell_size: int) -> int | str:
    """``block_size`` in canonical form (``'whole'`` or a positive multiple of ``cell_size``).

    Raises
    ------
    DippasInputError
        Before any work, on a block side that no run could be assembled with.
    """
    if is_whole(block_size):
        return WHOLE
    block_cells(block_size, cell_size, (1, 1))
    return int(block_size)
