"""Named parameter sets of the DIPPAS inversion.

A :class:`Preset` holds everything that defines an inversion apart from the
image and the fingerprint: the shape of the input tensor ``z``, the network
widths, the optimiser and the stop and save rules. Presets are frozen; user
choices are applied with :meth:`Preset.with_overrides`, which returns a new
preset and validates it.

This module does not import torch, so the napari reader and the CLI's
``--help`` stay light.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import DippasInputError

#: Parameters a user may override on the command line or in the API.
OVERRIDABLE = ("max_iter", "stop_psnr", "save_psnr", "seed", "lr", "warm_start")


@dataclass(frozen=True)
class Preset:
    """Parameters of one DIPPAS inversion.

    Attributes
    ----------
    name : str
        Preset name, recorded in ``params.json``.
    z_channels : int
        Channels of the random input tensor ``z`` (same height and width as
        the padded image).
    z_std : float
        Standard deviation of the Gaussian ``z``.
    z_noise_std : float
        Standard deviation of the fresh Gaussian noise added to ``z`` at
        every iteration (the deep-image-prior "reg noise").
    widths : tuple of int
        Channel widths U of the multi-resolution U-Net, one per scale. The
        padded image sides are multiples of ``2 ** (len(widths) - 1)``.
    skip_channels : tuple of int
        Channels of the residual skip paths, one per scale except the last.
    alpha : float
        Width multiplier W = alpha * U of the multi-resolution blocks.
    negative_slope : float
        Slope of the LeakyReLU activations.
    upsample : str
        Upsampling mode of the decoder (``'nearest'`` in the paper).
    lr : float
        Adam learning rate (for the network weights and gamma).
    lr_half_life : int
        The learning rate halves every this many iterations,
        ``lr * 2 ** (-iteration / lr_half_life)``; 0 keeps it constant (the
        paper).
    amsgrad : bool
        Use the AMSGrad variant of Adam, as the authors' code does.
    stop_psnr : float
        Stop as soon as the PSNR of the output against the input exceeds
        this value, in dB (data range 1).
    max_iter : int
        Stop after this many iterations at most.
    save_psnr : float
        Store every iteration's output whose PSNR is at least this, in dB.
    seed : int
        Seed of the network initialisation, ``z`` and the per-iteration noise.
    sigma : float
        Noise level of the residual (0-255 units): the blind-mode pattern and
        the residuals of the cell statistics.
    cell : int
        Side of the cells of the cell statistics, in pixels.
    ncc_weight : float
        Weight of the squared correlation of the output's high-pass with
        ``gray(output) * P`` in the loss (:mod:`dippas.dip.correlation_loss`,
        the paper's proposed "NCC term"); 0, the paper, leaves it out.
    warm_start : bool
        Start the network from the packaged meta-learned weights of its
        shape (:mod:`dippas.dip.warm_start`) instead of a seeded random
        initialisation; ``z`` and the input noise still follow ``seed``.
    description : str
        One line for ``--help`` and the plugin.
    """

    name: str
    z_channels: int
    z_std: float
    z_noise_std: float
    widths: tuple[int, ...]
    skip_channels: tuple[int, ...]
    alpha: float = 1.67
    negative_slope: float = 0.2
    upsample: str = "nearest"
    lr: float = 1e-3
    lr_half_life: int = 0
    amsgrad: bool = True
    stop_psnr: float = 39.0
    max_iter: int = 10_000
    save_psnr: float = 33.0
    seed: int = 0
    sigma: float = 3.0
    cell: int = 16
    ncc_weight: float = 0.0
    warm_start: bool = False
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def pad_multiple(self) -> int:
        """Image sides are reflect-padded to a multiple of this (16 for five scales)."""
        return 2 ** (len(self.widths) - 1)

    def with_overrides(self, **overrides) -> Preset:
        """A copy with some fields replaced; ``None`` values are ignored.

        Parameters
        ----------
        **overrides
            Any field of the preset, usually one of :data:`OVERRIDABLE`.

        Notes
        -----
        The warm start belongs to a network shape: a copy with another network
        (:data:`dippas.dip.warm_start.SIGNATURE_FIELDS`) that does not ask for
        ``warm_start`` itself starts from random weights; asking for it there
        is refused when no warm start ships for that shape.

        Raises
        ------
        DippasInputError
            On an unknown field or an invalid value.
        """
        from .warm_start import SIGNATURE_FIELDS

        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise DippasInputError(f"unknown preset parameter(s): {', '.join(unknown)}")
        clean = {k: v for k, v in overrides.items() if v is not None}
        for key in ("widths", "skip_channels"):
            if key in clean:
                clean[key] = tuple(int(v) for v in clean[key])
        if (self.warm_start and "warm_start" not in clean
                and any(k in clean and clean[k] != getattr(self, k) for k in SIGNATURE_FIELDS)):
            clean["warm_start"] = False  # the inherited weights do not fit the new network
        return dataclasses.replace(self, **clean) if clean else self

    def to_dict(self) -> dict:
        """JSON-ready dictionary of every field."""
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        d["skip_channels"] = list(self.skip_channels)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> Preset:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["widths"] = tuple(kw["widths"])
        kw["skip_channels"] = tuple(kw["skip_channels"])
        return cls(**kw)


def _validate(p: Preset) -> None:
    def positive(name: str, value: float) -> None:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise DippasInputError(f"{name} must be a positive number, got {value!r}")

    for name in ("z_std", "lr", "alpha", "stop_psnr", "save_psnr", "sigma"):
        positive(name, getattr(p, name))
    for name in ("z_noise_std", "ncc_weight"):
        value = getattr(p, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise DippasInputError(f"{name} must be >= 0, got {value!r}")
    for name in ("z_channels", "max_iter", "cell"):
        value = getattr(p, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DippasInputError(f"{name} must be a positive integer, got {value!r}")
    for name in ("lr_half_life", "seed"):
        value = getattr(p, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise DippasInputError(f"{name} must be a non-negative integer, got {value!r}")
    if not isinstance(p.warm_start, bool):
        raise DippasInputError(f"warm_start must be true or false, got {p.warm_start!r}")
    if len(p.widths) < 1 or any(int(w) < 1 for w in p.widths):
        raise DippasInputError(f"widths must be positive integers, got {p.widths!r}")
    if len(p.skip_channels) != len(p.widths) - 1 or any(int(s) < 1 for s in p.skip_channels):
        raise DippasInputError(
            f"skip_channels needs {len(p.widths) - 1} positive values for "
            f"{len(p.widths)} widths, got {p.skip_channels!r}"
        )
    if p.warm_start:
        from .warm_start import check_warm_start

        check_warm_start(p)


#: The paper's setting (paper §4, docs/inversion.md): five scales of 16-256
#: channels, z of 512 channels, Adam (AMSGrad) at 1e-3, stop at 39 dB or
#: 10 000 iterations, snapshots kept from 33 dB.
PAPER = Preset(
    name="paper",
    z_channels=512,
    z_std=0.1,
    z_noise_std=0.1,
    widths=(16, 32, 64, 128, 256),
    skip_channels=(16, 32, 64, 128),
    lr=1e-3,
    amsgrad=True,
    stop_psnr=39.0,
    max_iter=10_000,
    save_psnr=33.0,
    description="the paper's network and schedule (about 5 it/s at 512x512 on a V100)",
)

#: A lighter network and a quicker schedule for CPUs: the same method (loss,
#: injection, deep prior) with half the widths, a 32-channel z, lr 1e-2 and
#: input noise of std 0.03. Measured (docs/benchmarks.md): 3.2-3.5x cheaper
#: per iteration than ``paper``; on a 256^2 Dresden crop the assembled output
#: met 38 dB with its NCC at chance after 900 iterations, against 1400 with
#: lr 5e-3 and about 3000 with lr 2e-3 and noise 0.1 (the first values of
#: this preset, which stopped at 36.4 dB assembled); on the 128^2 protocol
#: (64 quadrant centres, docs/evaluation.md) see the DIPPAS rows. It starts
#: from the packaged warm start (dippas.dip.warm_start): on those 64 crops
#: 29 % fewer iterations in total (bootstrap 95 % [9 %, 46 %]) at C 39.85
#: against 37.42 from a random start (ΔC +2.44 [-4.16, +6.77]).
FAST = Preset(
    name="fast",
    z_channels=32,
    z_std=0.1,
    z_noise_std=0.03,
    widths=(8, 16, 32, 64, 128),
    skip_channels=(8, 16, 32, 64),
    lr=1e-2,
    amsgrad=True,
    stop_psnr=39.0,
    max_iter=10_000,
    save_psnr=33.0,
    warm_start=True,
    description=("the same method (loss, injection, deep prior) with half the widths, a 32-channel "
                 "z, lr 1e-2, input noise 0.03 and the packaged warm start: 3.2-3.5x cheaper per "
                 "iteration than paper on CPU and about 3x fewer iterations to 38 dB "
                 "(docs/benchmarks.md)"),
)

#: Presets by name.
PRESETS: dict[str, Preset] = {p.name: p for p in (PAPER, FAST)}

_BUILT_IN = frozenset(PRESETS)

#: The preset of every face (CLI, API, batch, evaluation, plugin): see :class:`dippas.jobs.DippasJob`.
DEFAULT_PRESET = "fast"


def register_preset(preset: Preset, name: str | None = None) -> Preset:
    """Add a custom preset to :data:`PRESETS`, so jobs can name it.

    Parameters
    ----------
    preset : Preset
    name : str, optional
        Name to register it under (default its own); the stored preset carries it.

    Returns
    -------
    Preset
        The preset as registered.

    Raises
    ------
    DippasInputError
        When ``name`` is a built-in preset's.
    """
    name = name or preset.name
    if name in _BUILT_IN and PRESETS.get(name) is not preset:
        raise DippasInputError(f"{name!r} is a built-in preset; register yours under another name")
    registered = preset.with_overrides(name=name)
    PRESETS[name] = registered
    return registered


def get_preset(name: str | Preset = DEFAULT_PRESET, **overrides) -> Preset:
    """Look up a preset by name and apply overrides.

    Parameters
    ----------
    name : str or Preset
        A name of :data:`PRESETS` (default :data:`DEFAULT_PRESET`), or a
        :class:`Preset` to start from.
    **overrides
        Fields to replace (``None`` values are ignored), e.g. ``max_iter``,
        ``stop_psnr``, ``save_psnr``, ``seed``, ``lr``.

    Returns
    -------
    Preset

    Raises
    ------
    DippasInputError
        On an unknown preset name or an invalid override.

    Examples
    --------
    >>> get_preset("paper", max_iter=500).max_iter
    500
    """
    if isinstance(name, Preset):
        base = name
    else:
        try:
            base = PRESETS[str(name)]
        except KeyError:
            raise DippasInputError(
                f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}"
            ) from None
    return base.with_overrides(**overrides)
