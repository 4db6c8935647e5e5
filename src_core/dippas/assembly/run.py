"""Assemble a DIPPAS run folder: one :class:`~dippas.assembly.Assembler` per tile, stitched.

This is the bridge between the on-disk run store (:mod:`dippas.dip.store`)
and the array-level assembler. The CLI's
``assemble`` and ``anonymize``, the evaluation harness and the napari
assembler widget all go through :class:`RunAssembler`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..dip.store import RunStore, TileStore
from ..dtype import as_rgb_uint8
from ..errors import DippasInputError
from .assembler import Assembler, AssemblyResult, assemble_tiles
from .geometry import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_BLOCKS,
    DEFAULT_PSNR_THRESHOLD,
    WHOLE,
    BlockSize,
    is_whole,
)
from .heatmaps import image_block_ncc
from .zero_blend import blend_to_zero_ncc


@dataclass
class RunAssembly:
    """An assembled run.

    Attributes
    ----------
    image : ndarray, uint8 (H, W, 3)
        The anonymized image.
    tiles : list of AssemblyResult
        Per tile, in the run's tile order.
    params : dict
        ``block_size``, ``blocks``, ``psnr_threshold``, ``rule`` and
        ``zero_blend`` as used, ``psnr_fallback`` (True when a tile had no
        snapshot reaching τ) and, with the blend, ``blended_blocks``.
    """

    image: np.ndarray
    tiles: list[AssemblyResult]
    params: dict


def cell_size_of(params: dict) -> int:
    """Cell side c recorded in a run's ``params.json``."""
    for key in ("cell", "cell_size"):
        if key in params:
            return int(params[key])
    raise DippasInputError("run params.json records no cell size")


class RunAssembler:
    """Interactive assembly of a run folder.

    Parameters
    ----------
    run_dir : path
        A DIPPAS run folder.

    Notes
    -----
    Tile assemblers are built lazily and rebuilt when a tile has gained
    snapshots or cell statistics since (a running inversion), see
    :meth:`refresh`.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.store = RunStore(run_dir)
        self.cell_size = cell_size_of(self.store.params)
        self._fingerprint = np.asarray(self.store.fingerprint, dtype=np.float32)
        self._assemblers: dict[str, tuple[int, Assembler]] = {}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, 3)`` of the input."""
        h, w = self.store.image_shape
        return h, w, 3

    @property
    def fingerprint(self) -> np.ndarray:
        """The injected pattern P of the run, float32 (H, W)."""
        return self._fingerprint

    def tile_store(self, name: str) -> TileStore:
        """The tile store called ``'ty_tx'``."""
        return self.store.tile(name)

    def assembler(self, name: str) -> Assembler:
        """The (cached) assembler of one tile; rebuilt if the tile has grown."""
        tile = self.store.tile(name)
        n = min(tile.n_snapshots, tile.n_cells)
        cached = self._assemblers.get(name)
        if cached is not None and cached[0] == n:
            return cached[1]
        if n == 0:
            raise DippasInputError(
                f"{self.store.path}: tile {name} has no snapshot with cell statistics yet")
        g = tile.geometry
        asm = Assembler(tile.snapshots[:n], tile.cells[:n], tile.table["psnr"][:n],
                        self.cell_size, fingerprint=self._fingerprint[g.slices])
        self._assemblers[name] = (n, asm)
        return asm

    def refresh(self) -> None:
        """Forget cached tile assemblers (they are rebuilt on next use)."""
        self._assemblers.clear()

    def assemble(self, block_size: BlockSize = DEFAULT_BLOCK_SIZE, blocks: int = DEFAULT_BLOCKS,
                 psnr_threshold: float | None = DEFAULT_PSNR_THRESHOLD,
                 rule: str = "rank", zero_blend: bool = False) -> RunAssembly:
        """Assemble every tile with the same B, L and τ, and stitch them.

        Tiles are feathered over the run's tile overlap (:func:`~dippas.assembly.stitch`).

        Parameters
        ----------
        block_size : int, 'whole' or None
            Block side B in pixels, a multiple of the run's cell size;
            'whole' (or None) for one block per tile.
        blocks : int
            L, the number of best blocks averaged.
        psnr_threshold : float, optional
            τ_PSNR; snapshots below it are not candidates. When none
            reaches it, the best-PSNR snapshots are used.
        rule : {'rank', 'min-abs'}
            Ordering of the candidates (:mod:`dippas.assembly.ranking`).
        zero_blend : bool
            Blend every block whose NCC with P is negative towards the input
            until it is zero (:mod:`dippas.assembly.zero_blend`).
        """
        tiles = [(g.y0, g.x0, self.assembler(g.name)) for g in self.store.tiles]
        image, results = assemble_tiles(tiles, self.image_shape, block_size, blocks, psnr_threshold,
                                        rule, self.store.tile_overlap)
        params = {"block_size": WHOLE if is_whole(block_size) else int(block_size),
                  "blocks": int(blocks), "psnr_threshold": psnr_threshold, "rule": rule,
                  "psnr_fallback": any(r.params.get("psnr_fallback", False) for r in results),
                  "zero_blend": bool(zero_blend)}
        if zero_blend:
            image, alpha = blend_to_zero_ncc(image, as_rgb_uint8(self.store.input),
                                             self._fingerprint, block_size)
            params["blended_blocks"] = int(np.count_nonzero(alpha))
        return RunAssembly(image=image, tiles=results, params=params)

    def result_heatmap(self, image: np.ndarray, block_size: int, sigma: float = 3.0) -> np.ndarray:
        """Per-block NCC of an assembled image against the run's P (whole image)."""
        return image_block_ncc(image, self._fingerprint, block_size, sigma=sigma)


def assemble_run(run_dir: str | os.PathLike, block_size: BlockSize = DEFAULT_BLOCK_SIZE,
                 blocks: int = DEFAULT_BLOCKS, psnr_threshold: float | None = DEFAULT_PSNR_THRESHOLD,
                 rule: str = "rank") -> np.ndarray:
    """Assemble a run folder into the anonymized uint8 ``(H, W, 3)`` image.

    See :meth:`RunAssembler.assemble` for the parameters.
    """
    return RunAssembler(run_dir).assemble(block_size, blocks, psnr_threshold, rule).image
