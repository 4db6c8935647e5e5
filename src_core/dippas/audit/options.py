"""Settings of an audit: every default of :mod:`dippas.audit` lives here, once."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DippasInputError
from .nulls import DEFAULT_PFA, check_pfa


@dataclass(frozen=True)
class AuditOptions:
    """What the audit tests and at which false-alarm probability.

    Attributes
    ----------
    pfa : float
        False-alarm probability of every test (default 1e-3).
    sigma : float
        Noise level of the main residual, 0-255 units (3, as DIPPAS).
    second_sigma : float
        Noise level of the second residual extractor (5): an examiner is
        free to choose a stronger denoiser.
    blocks : tuple of int
        Block sides of the block-maximum tests.
    heatmap_block : int
        Block side of the per-block NCC heatmap (figure, napari layer).
    jpeg_qualities : tuple of int
        JPEG recompressions tested.
    scales : tuple of float
        Downscaling factors tested (the fingerprint is resampled alike).
    shift : (int, int)
        Rows and columns cropped off the top and left for the crop-shift test.
    """

    pfa: float = DEFAULT_PFA
    sigma: float = 3.0
    second_sigma: float = 5.0
    blocks: tuple[int, ...] = (32, 64, 128)
    heatmap_block: int = 64
    jpeg_qualities: tuple[int, ...] = (95, 90, 75)
    scales: tuple[float, ...] = (0.5, 0.75)
    shift: tuple[int, int] = (3, 5)

    def __post_init__(self) -> None:
        check_pfa(self.pfa)
        for name in ("sigma", "second_sigma"):
            if not float(getattr(self, name)) > 0:
                raise DippasInputError(f"{name} must be positive, got {getattr(self, name)}")
        if any(int(b) < 8 for b in self.blocks) or int(self.heatmap_block) < 8:
            raise DippasInputError("audit block sides must be at least 8 pixels")
