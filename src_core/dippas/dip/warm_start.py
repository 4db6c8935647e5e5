"""Packaged initial weights of the DIPPAS network: the warm start.

The paper's conclusions name "a pre-trained network to start from" as the way
to fewer iterations. A warm start is a set of initial weights for one network
shape, meta-learned once (Reptile) on public-domain images that ship with
scikit-image, so that the inversion's own procedure (Adam from a fresh state,
the preset's learning rate and input noise) fits a new photo in fewer steps.
``scripts/make_warm_start.py`` made the packaged file; ``docs/inversion.md``
says how and what it measured.

A preset asks for it with ``warm_start=True``; the file is found by the
network's signature (:func:`network_signature`), so a custom preset with the
same network shares it. ``z`` and the input noise still come from the run's
seed, which differs between photos. This module does not import torch at
import time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import DippasInputError

#: Folder of the packaged weights (package data of ``dippas``).
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "data"

#: Format version written by ``scripts/make_warm_start.py``.
FORMAT = 1

#: Preset fields that define the network and its input, hence the weights' meaning.
SIGNATURE_FIELDS = ("z_channels", "z_std", "widths", "skip_channels", "alpha",
                    "negative_slope", "upsample")


def network_signature(preset) -> str:
    """A text naming the network shape and input scale of a preset.

    Parameters
    ----------
    preset : Preset

    Returns
    -------
    str
        ``'field=value;...'`` over :data:`SIGNATURE_FIELDS`.
    """
    parts = []
    for name in SIGNATURE_FIELDS:
        value = getattr(preset, name)
        if isinstance(value, tuple):
            value = ",".join(str(int(v)) for v in value)
        parts.append(f"{name}={value}")
    return ";".join(parts)


def warm_start_path(preset) -> Path:
    """Where the warm start of this preset's network lives (it may not exist)."""
    digest = hashlib.sha256(network_signature(preset).encode()).hexdigest()[:12]
    return WEIGHTS_DIR / f"warm_start_{digest}.pt"


def check_warm_start(preset) -> None:
    """Raise a one-line error when no warm start ships for this preset's network.

    Raises
    ------
    DippasInputError
        Naming the presets whose network has one.
    """
    if warm_start_path(preset).is_file():
        return
    from .presets import PRESETS

    having = sorted(name for name, p in PRESETS.items() if warm_start_path(p).is_file())
    raise DippasInputError(
        f"no warm start ships for the network of preset {preset.name!r}; "
        f"it exists for: {', '.join(having) or 'none'}")


def load_warm_start(preset) -> dict:
    """The packaged initial weights of a preset's network.

    Parameters
    ----------
    preset : Preset

    Returns
    -------
    dict
        A state dict for :class:`dippas.dip.network.MultiResUNet`.

    Raises
    ------
    DippasInputError
        If no file ships for this network, or the file is of another format
        or network.
    """
    import torch

    check_warm_start(preset)
    path = warm_start_path(preset)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged package file
        raise DippasInputError(f"cannot read the warm start {path.name}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DippasInputError(f"the warm start {path.name} is not of format {FORMAT}")
    if data.get("signature") != network_signature(preset):
        raise DippasInputError(f"the warm start {path.name} was fitted for another network")
    return data["state_dict"]
