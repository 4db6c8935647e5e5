"""Typed events that workers send to widgets (instead of bare tuples).

Workers run core computations in plain threads (:mod:`.core_task`) and
queue these; widgets receive them on the GUI thread and match on the type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TaskProgress:
    """A core computation's ``progress(done, total)`` (``total`` None when unknown)."""

    done: int
    total: int | None = None


@dataclass(frozen=True)
class RunStarted:
    """The inversion's run folder exists."""

    run_dir: str
    n_tiles: int


@dataclass(frozen=True)
class RunProgress:
    """The last iteration (``info``) and every iteration since the previous event (``history``).

    ``info`` holds ``iteration``, ``max_iter``, ``loss``, ``psnr``, ``gamma``,
    ``its_per_s``, ``n_saved``, ``tile``, ``tile_index``, ``n_tiles``, ``done``;
    ``history`` arrays of ``iteration``, ``psnr``, ``loss``, ``gamma``.
    """

    info: dict
    history: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SnapshotReady:
    """The newest stored snapshot of a tile."""

    tile: str
    index: int
    frame: np.ndarray
    iteration: int
    psnr: float


@dataclass(frozen=True)
class CellsProgress:
    """The background stage finishing the cell statistics."""

    done: int
    total: int


#: Any event a worker sends.
WorkerEvent = TaskProgress | RunStarted | RunProgress | SnapshotReady | CellsProgress
