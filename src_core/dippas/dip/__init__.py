"""DIPPAS deep-image-prior inversion: network, inversion engine, snapshot store and presets.

Public API (torch is imported only when an engine class is first used, so
``from dippas.dip import RunStore`` stays light for readers)::

    get_preset, Preset, PRESETS            # presets.py
    Inversion, IterationEvent              # inversion.py (torch)
    DippasRun, RunSummary, open_run        # dippas_run.py (torch)
    RunStore, TileStore                    # store.py (read-only run folders)
    injection_pattern                      # pattern.py
    tile_grid, TileGeometry                # tiling.py
    catch_up_cells, CellsWorker            # cells_worker.py
    AppendableNpy                          # appendable_npy.py
    resolve_device                         # device.py

See ``docs/inversion.md`` and ``docs/run-format.md``.
"""

from __future__ import annotations

import importlib

from .appendable_npy import AppendableNpy, open_frames, valid_frame_count
from .presets import PRESETS, Preset, get_preset
from .store import RunStore, TileStore
from .tiling import TileGeometry, tile_grid

_LAZY = {
    "Inversion": ".inversion",
    "IterationEvent": ".inversion",
    "DippasRun": ".dippas_run",
    "RunSummary": ".dippas_run",
    "open_run": ".dippas_run",
    "injection_pattern": ".pattern",
    "catch_up_cells": ".cells_worker",
    "CellsWorker": ".cells_worker",
    "resolve_device": ".device",
}

__all__ = [
    "PRESETS",
    "AppendableNpy",
    "CellsWorker",
    "DippasRun",
    "Inversion",
    "IterationEvent",
    "Preset",
    "RunStore",
    "RunSummary",
    "TileGeometry",
    "TileStore",
    "catch_up_cells",
    "get_preset",
    "injection_pattern",
    "open_run",
    "open_frames",
    "resolve_device",
    "tile_grid",
    "valid_frame_count",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
