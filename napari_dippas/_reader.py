"""Reader for fingerprint files (``.npy``, ``.mat``, float ``.tif``) and DIPPAS run folders."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ._layers import fingerprint_layer_kwargs

_FINGERPRINT_SUFFIXES = (".npy", ".mat", ".tif", ".tiff")


def _is_float_tiff(path: Path) -> bool:
    import numpy as np
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            return np.issubdtype(tf.pages[0].dtype, np.floating)
    except Exception:
        return False


def _is_run_folder(path: Path) -> bool:
    from dippas.dip.store import is_run_folder

    return is_run_folder(path)


def get_reader(path: str | list[str]) -> Callable | None:
    """Return a reader for a fingerprint file or a DIPPAS run folder, else None."""
    if isinstance(path, list):
        return None
    p = Path(path)
    if _is_run_folder(p):
        return read_run
    suffix = p.suffix.lower()
    if suffix not in _FINGERPRINT_SUFFIXES or not p.is_file():
        return None
    if suffix in (".tif", ".tiff") and not _is_float_tiff(p):
        return None  # an ordinary photo: leave it to napari's own readers
    return read_fingerprint


def read_fingerprint(path: str) -> list[tuple]:
    """Read a fingerprint K as an image layer with a diverging colormap."""
    from dippas.io import load_fingerprint

    k = load_fingerprint(path)
    return [(k, fingerprint_layer_kwargs(k, Path(path).stem), "image")]


def read_run(path: str) -> list[tuple]:
    """Open a DIPPAS run folder: input, fingerprint, and each tile's snapshots lazily."""
    from .run_layers import run_layers

    return run_layers(os.fspath(path))
