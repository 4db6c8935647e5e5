"""The option groups of the anonymization methods, shared by ``anonymize`` and ``batch``."""

from __future__ import annotations

import argparse


def add_dippas_arguments(g: argparse._ArgumentGroup, *, blind_help: str, device_help: str) -> None:
    """--blind, --preset, --max-iter, --device, --seed and the assembly options."""
    from ._common import positive_int
    from .assemble import add_assembly_arguments

    g.add_argument("--blind", action="store_true", help=blind_help)
    g.add_argument("--preset", choices=("fast", "paper"), default="fast",
                   help="network and optimiser preset (default fast)")
    g.add_argument("--max-iter", type=positive_int, default=None, help="iteration limit")
    g.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help=device_help)
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_assembly_arguments(g)


def add_inpainting_arguments(h: argparse._ArgumentGroup) -> None:
    """--hole, --reg, --no-edges, --denoiser."""
    from ..inpainting import available_denoisers

    h.add_argument("--hole", type=int, choices=(3, 5), default=5, help="hole side B (default 5)")
    h.add_argument("--reg", choices=("l2", "tv"), default="l2", help="regulariser (default l2)")
    h.add_argument("--no-edges", action="store_true", help="skip the edge reconstruction")
    h.add_argument("--denoiser", choices=available_denoisers(), default="nl_means",
                   help="denoiser of the edge reconstruction (default nl_means)")
