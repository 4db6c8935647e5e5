"""Atomic checkpoints of an inversion (network, optimiser, RNG, iteration).

A checkpoint is a ``torch.save`` dictionary written to a temporary file in
the tile folder and renamed over ``checkpoint.pt``, so a kill at any moment
leaves either the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DippasInputError
from ..io import atomic_write

#: Version of the checkpoint dictionary layout.
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` (a :meth:`Inversion.state_dict`) atomically to ``path``."""
    import torch

    payload = {"checkpoint_version": CHECKPOINT_VERSION, **state}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    DippasInputError
        If the file cannot be read or is of another layout version.
    """
    import torch

    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds on a corrupt file
        raise DippasInputError(f"{path}: unreadable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise DippasInputError(f"{path}: not a DIPPAS checkpoint of version {CHECKPOINT_VERSION}")
    return state
