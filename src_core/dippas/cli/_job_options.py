"""The CLI option groups of the two jobs, built from :mod:`dippas.jobs`.

Every option defaults to ``None`` ("not given"); the job fills in its one
default, which the help text shows. So ``anonymize``, ``invert``,
``assemble``, ``batch`` and ``demo`` cannot disagree, and ``invert --resume``
can tell a given option from a default.
"""

from __future__ import annotations

import argparse

from ..jobs import ASSEMBLY_RULES, DippasJob, InpaintingJob

#: The defaults, for the help texts.
_DIPPAS = DippasJob()
_INPAINTING = InpaintingJob()


def _block_size(text: str) -> int | str:
    """argparse type of --block-size: a positive int or 'whole'."""
    from ._common import positive_int

    return "whole" if text.lower() == "whole" else positive_int(text)


#: What ``--psnr-threshold`` and ``--target-psnr`` take to mean "no value".
NONE = "none"


def _db_or_none(text: str) -> float | str:
    """argparse type of a PSNR in dB that may be switched off: a positive number or 'none'."""
    from ._common import positive_float

    return NONE if text.lower() == NONE else positive_float(text)


def add_inversion_arguments(g: argparse._ArgumentGroup, *, device_help: str) -> None:
    """--preset, --max-iter, --target-psnr, --stop-psnr, --save-psnr, --lr, --warm-start, --seed,
    --tile, --tile-overlap, --device."""
    from ..dip.device import DEVICE_CHOICES
    from ..dip.presets import PRESETS
    from ._common import non_negative_int, positive_float, positive_int

    p = _DIPPAS.preset_parameters()
    g.add_argument("--preset", choices=tuple(PRESETS), default=None,
                   help=f"network and schedule (default {_DIPPAS.preset})")
    g.add_argument("--max-iter", type=positive_int, default=None, metavar="N",
                   help=f"iteration cap per tile (default: the preset's, {p.max_iter})")
    g.add_argument("--target-psnr", type=_db_or_none, default=None, metavar="DB|none",
                   help="stop each tile as soon as its assembled output (-B, -L, --psnr-threshold, "
                   "--rule) reaches DB with its NCCs at chance; 'none': only --stop-psnr and "
                   f"--max-iter (default {_DIPPAS.target_psnr:g})")
    g.add_argument("--stop-psnr", type=positive_float, default=None, metavar="DB",
                   help=f"stop when the network's own PSNR exceeds DB (default {p.stop_psnr:g})")
    g.add_argument("--save-psnr", type=positive_float, default=None, metavar="DB",
                   help=f"store every output whose PSNR is at least DB (default {p.save_psnr:g})")
    g.add_argument("--lr", type=positive_float, default=None,
                   help=f"Adam learning rate (default: the preset's, {p.lr:g})")
    g.add_argument("--warm-start", action=argparse.BooleanOptionalAction, default=None,
                   help="start the network from the packaged meta-learned weights of its shape "
                   "(docs/inversion.md) instead of a random initialisation (default: the "
                   f"preset's, {'on' if p.warm_start else 'off'})")
    g.add_argument("--seed", type=non_negative_int, default=None, metavar="N",
                   help="random seed (default: derived from the photo's pixels, so photos share "
                   "no starting point)")
    g.add_argument("--tile", type=positive_int, default=None, metavar="PX",
                   help=f"tile side for large images (default {_DIPPAS.tile})")
    g.add_argument("--tile-overlap", type=non_negative_int, default=None, metavar="PX",
                   help="pixels shared by neighbouring tiles, blended with a linear ramp so no "
                   f"seam shows; less than half --tile (default {_DIPPAS.overlap}, a quarter "
                   "of a --tile of 64 or less)")
    g.add_argument("--device", choices=DEVICE_CHOICES, default=None, help=device_help)


def add_workers_argument(g: argparse._ArgumentGroup) -> None:
    """--workers and --tiles-at-once of ``anonymize`` and ``invert``: how the tiles of one
    photo run (on Dask workers; batched in this process)."""
    from ..dip.tile_batch import GPU_TILES_AT_ONCE
    from ._common import positive_int

    g.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="invert the tiles of the photo as Dask tasks on a local cluster of N worker "
                   "processes (CPU; needs the [dask] extra; at most one per core); "
                   f"{_DIPPAS.workers}: every tile in this process (default "
                   f"{_DIPPAS.workers})")
    g.add_argument("--tiles-at-once", type=positive_int, default=None, metavar="N",
                   help="invert N tiles of the photo together in this process, as one batched "
                   "model, each with its own weights and seed (default: "
                   f"{GPU_TILES_AT_ONCE} on a CUDA GPU, 1 elsewhere)")


def add_assembly_arguments(g: argparse._ArgumentGroup) -> None:
    """--block-size, --blocks, --psnr-threshold, --zero-blend, --rule."""
    from ._common import positive_int

    g.add_argument("--block-size", "-B", type=_block_size, default=None, metavar="B|whole",
                   help="assembly block side in pixels, a multiple of 16, or 'whole' "
                   f"(default {_DIPPAS.block_size})")
    g.add_argument("--blocks", "-L", type=positive_int, default=None, metavar="L",
                   help=f"number of best blocks averaged per position (default {_DIPPAS.blocks})")
    g.add_argument("--psnr-threshold", type=_db_or_none, default=None, metavar="DB|none",
                   help="only snapshots with at least this PSNR are candidates; 'none': every "
                   "stored snapshot; if none reaches it, the best-PSNR ones are used "
                   f"(default {_DIPPAS.psnr_threshold:g})")
    g.add_argument("--zero-blend", action=argparse.BooleanOptionalAction, default=None,
                   help="blend every block whose NCC with K is negative towards the input until it "
                   "is zero (outputs stop over-correcting and gain PSNR) (default "
                   f"{'on' if _DIPPAS.zero_blend else 'off'})")
    g.add_argument("--rule", choices=ASSEMBLY_RULES, default=None,
                   help="which blocks are averaged: the paper's ordering (negatives closest to "
                   "zero first; with -B whole -L 1 the snapshot of minimum |NCC|), or min-abs "
                   f"(minimum |NCC| everywhere, aims the NCC at zero) (default {_DIPPAS.rule})")


def add_dippas_arguments(g: argparse._ArgumentGroup, *, blind_help: str, device_help: str) -> None:
    """--blind, the inversion options and the assembly options."""
    g.add_argument("--blind", action="store_true", help=blind_help)
    add_inversion_arguments(g, device_help=device_help)
    add_assembly_arguments(g)


def add_inpainting_arguments(h: argparse._ArgumentGroup) -> None:
    """--profile, and --hole, --reg, --no-edges, --denoiser to override it."""
    from ..inpainting import available_denoisers
    from ..inpainting.masks import HOLE_SIZES
    from ..inpainting.profiles import PROFILES

    p = _INPAINTING.recipe()
    h.add_argument("--profile", choices=tuple(PROFILES), default=None,
                   help=f"inpainting recipe (default {_INPAINTING.profile}; docs/evaluation.md): "
                   + "; ".join(f"{n}: {q.description}" for n, q in PROFILES.items()))
    h.add_argument("--hole", type=int, choices=HOLE_SIZES, default=None,
                   help=f"hole side B (default: the profile's; {p.hole} in {p.name})")
    h.add_argument("--reg", choices=("l2", "tv"), default=None,
                   help=f"regulariser (default: the profile's; {p.reg} in {p.name})")
    h.add_argument("--no-edges", action="store_true", help="skip the edge reconstruction")
    h.add_argument("--denoiser", choices=available_denoisers(), default=None,
                   help=f"denoiser of the edge reconstruction (default: the profile's; {p.denoiser} "
                   f"in {p.name})")


def _given(args: argparse.Namespace, names) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


#: The DippasJob fields that have a command-line option of the same name.
DIPPAS_OPTION_FIELDS = ("preset", "max_iter", "stop_psnr", "save_psnr", "lr", "warm_start", "seed",
                        "tile", "tile_overlap", "device", "block_size", "blocks", "psnr_threshold",
                        "target_psnr", "zero_blend", "rule")


def dippas_options(args: argparse.Namespace) -> dict:
    """The DIPPAS options the user gave (not their defaults); 'none' becomes None."""
    return {k: None if v == NONE else v for k, v in _given(args, DIPPAS_OPTION_FIELDS).items()}


def dippas_job(args: argparse.Namespace, base: DippasJob | None = None) -> DippasJob:
    """The DIPPAS job of the command line (every option checked here, before any work)."""
    base = base or DippasJob(mode="blind" if getattr(args, "blind", False) else "aware")
    return base.with_values(**dippas_options(args))


def inpainting_job(args: argparse.Namespace) -> InpaintingJob:
    """The inpainting job of the command line."""
    options = _given(args, ("profile", "hole", "reg", "denoiser"))
    if getattr(args, "no_edges", False):
        options["edges"] = False
    return InpaintingJob(**options)


def refuse_other_method_options(args: argparse.Namespace, method: str) -> None:
    """Refuse, before any work, an option of the method that will not run.

    Raises
    ------
    DippasInputError
        Naming the first such option.
    """
    from ..errors import DippasInputError

    if method == "dippas":
        given = sorted(_given(args, ("profile", "hole", "reg", "denoiser")))
        given += ["no_edges"] if getattr(args, "no_edges", False) else []
        other = "--method inpainting"
    else:
        given = sorted(dippas_options(args)) + (["blind"] if getattr(args, "blind", False) else [])
        given += ["run"] if getattr(args, "run", None) else []
        other = "--method dippas"
    if given:
        raise DippasInputError(f"--{given[0].replace('_', '-')} applies to {other} only")
