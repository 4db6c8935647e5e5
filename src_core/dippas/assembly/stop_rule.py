"""When an inversion may stop: its *assembled* output is good enough.

The paper stops the network when its raw output passes a fixed PSNR
(39 dB) and assembles afterwards. What a user needs is the assembled
output at a target PSNR with its correlation with the injected pattern P
at chance. This rule checks exactly that on a tile while it is inverted,
every few iterations: it assembles the snapshots stored so far (with the
job's B, L, τ and rule, from the cell statistics the background stage has
computed) and measures the result.

The output is *at chance* when

* its whole-tile NCC with P lies within one null standard deviation,
  ``|NCC| <= 1 / sqrt(N)`` for N pixels (the scale of the NCC of an
  unrelated image: :mod:`dippas.audit.nulls`), and
* no block of the assembly grid lies beyond :data:`BLOCK_CHANCE_Z` null
  standard deviations, ``|NCC_b| <= z / B`` (a B x B block has B² pixels).

The checks add about one residual computation of the tile per
``check_every`` iterations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..correlation import attribution_reference, block_ncc_map, ncc
from ..errors import DippasInputError
from ..metrics import psnr
from ..residual import noise_residual
from .assembler import Assembler
from .geometry import DEFAULT_BLOCK_SIZE, DEFAULT_BLOCKS, BlockSize, is_whole
from .zero_blend import blend_to_zero_ncc

#: The PSNR the assembled output must reach, in dB (the paper's outputs are above 38 dB).
DEFAULT_TARGET_PSNR: float = 38.0

#: Iterations between two checks of a tile.
DEFAULT_CHECK_EVERY: int = 25

#: A block is at chance within this many null standard deviations (1 / B).
BLOCK_CHANCE_Z: float = 3.0


@dataclass(frozen=True)
class StopCheck:
    """What one check measured on the assembled tile.

    Attributes
    ----------
    psnr : float
        PSNR of the assembled tile against the input tile, in dB.
    ncc : float
        Whole-tile NCC with P.
    ncc_limit : float
        ``1 / sqrt(N)``.
    worst_block : float
        Largest ``|NCC|`` of a block (0 with one block).
    block_limit : float
        ``z / B`` (infinite with one block).
    target_psnr : float
    """

    psnr: float
    ncc: float
    ncc_limit: float
    worst_block: float
    block_limit: float
    target_psnr: float

    @property
    def met(self) -> bool:
        """PSNR at the target and every NCC at chance."""
        return (self.psnr >= self.target_psnr and abs(self.ncc) <= self.ncc_limit
                and self.worst_block <= self.block_limit)


@dataclass(frozen=True)
class AssembledStop:
    """Stop a tile once its assembly meets the target PSNR with NCCs at chance.

    Parameters
    ----------
    target_psnr : float
        dB.
    block_size, blocks, psnr_threshold, rule
        The assembly (B, L, τ and the ranking rule of :mod:`dippas.assembly.ranking`).
    check_every : int
        Iterations between checks; a check only runs once the network's own
        PSNR has reached ``target_psnr``, or τ (``psnr_threshold``) when that
        is lower: the candidates of the assembly are the snapshots from τ on,
        and an average of them can meet the target before the network does.
    zero_blend : bool
        The assembly ends with the blend of :mod:`dippas.assembly.zero_blend`.
    sigma : float
        Noise level of the residual, 0-255 units.
    """

    target_psnr: float = DEFAULT_TARGET_PSNR
    block_size: BlockSize = DEFAULT_BLOCK_SIZE
    blocks: int = DEFAULT_BLOCKS
    psnr_threshold: float | None = None
    rule: str = "rank"
    check_every: int = DEFAULT_CHECK_EVERY
    zero_blend: bool = False
    sigma: float = 3.0

    def __post_init__(self) -> None:
        if not (isinstance(self.target_psnr, (int, float)) and math.isfinite(self.target_psnr)
                and self.target_psnr > 0):
            raise DippasInputError(f"target PSNR must be a positive number, got {self.target_psnr!r}")
        if isinstance(self.check_every, bool) or not isinstance(self.check_every, int) \
                or self.check_every < 1:
            raise DippasInputError(f"check_every must be a positive integer, got {self.check_every!r}")

    def due(self, iteration: int, network_psnr: float) -> bool:
        """Whether to check after this iteration."""
        return iteration % self.check_every == 0 and network_psnr >= self.gate_psnr

    @property
    def gate_psnr(self) -> float:
        """The network PSNR from which checks run: the target, or τ when it is lower."""
        if self.psnr_threshold is None:
            return float(self.target_psnr)
        return min(float(self.target_psnr), float(self.psnr_threshold))

    def measure(self, reference: np.ndarray, assembled: np.ndarray, pattern: np.ndarray) -> StopCheck:
        """Measure an assembled tile.

        Parameters
        ----------
        reference : ndarray, uint8 (h, w, 3)
            The input tile.
        assembled : ndarray, uint8 (h, w, 3)
        pattern : ndarray, float32 (h, w)
            P of the tile.
        """
        w = noise_residual(assembled, self.sigma)
        x = attribution_reference(assembled, pattern)
        whole = ncc(w, x)
        if is_whole(self.block_size):
            worst, limit = 0.0, math.inf
        else:
            b = int(self.block_size)
            worst = float(np.nanmax(np.abs(block_ncc_map(w, x, b))))
            limit = BLOCK_CHANCE_Z / b
        return StopCheck(psnr=psnr(reference, assembled), ncc=float(whole),
                         ncc_limit=1.0 / math.sqrt(w.size), worst_block=worst, block_limit=limit,
                         target_psnr=float(self.target_psnr))

    def check(self, reference: np.ndarray, snapshots, cells, snapshot_psnr, cell: int,
              pattern: np.ndarray) -> StopCheck | None:
        """Assemble the stored snapshots of a tile and measure the result.

        Parameters
        ----------
        reference : ndarray, uint8 (h, w, 3)
        snapshots, cells, snapshot_psnr
            The tile's store (only snapshots with their cell statistics count).
        cell : int
            Cell side of the statistics.
        pattern : ndarray, float32 (h, w)

        Returns
        -------
        StopCheck or None
            None while no stored snapshot reaches τ (the assembly would
            fall back to worse ones) or none has its statistics yet.
        """
        n = min(len(snapshots), len(cells), len(snapshot_psnr))
        if n == 0:
            return None
        tau = self.psnr_threshold
        if tau is not None and not np.any(np.asarray(snapshot_psnr[:n]) >= tau):
            return None
        image = self.assemble(reference, snapshots[:n], cells[:n], snapshot_psnr[:n], cell, pattern)
        return self.measure(reference, image, pattern)

    def assemble(self, reference: np.ndarray, snapshots, cells, snapshot_psnr, cell: int,
                 pattern: np.ndarray) -> np.ndarray:
        """The tile's output from these snapshots: assembled with the rule's B, L, τ and
        ranking, then blended when :attr:`zero_blend` (what :meth:`check` measures).

        Parameters are those of :meth:`check`, every snapshot with its cell statistics.
        """
        asm = Assembler(snapshots, cells, snapshot_psnr, cell)
        image = asm.assemble(self.block_size, self.blocks, self.psnr_threshold, self.rule).image
        if self.zero_blend:
            image = blend_to_zero_ncc(image, reference, pattern, self.block_size, self.sigma)[0]
        return image
