"""Background stage: residual and cell statistics of every stored snapshot.

For each snapshot the stage computes the noise residual ``W`` (sigma 3 by
default) and the cell statistics of ``W`` against ``X = gray(snapshot) * P``
(:func:`dippas.cell_statistics`), and appends them, in snapshot order, to
the tile's ``cells.npy``. The assembler then gets the NCC of any block from
sums of cells.

Snapshots are read back from ``snapshots.npy`` one at a time by index, so
the stage never holds more than one snapshot in memory and never slows the
inversion down: it lags behind when it is slower, and catches up at the end
of the run (:meth:`CellsWorker.finish`) or later (:func:`catch_up_cells`).
The Numba kernels release the GIL, so a thread runs beside torch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..correlation import attribution_reference, cell_statistics
from ..progress import CancelToken
from ..residual import noise_residual
from .appendable_npy import AppendableNpy, read_frame, valid_frame_count
from .store import CELLS, SNAPSHOTS, TABLE, TABLE_COLUMNS, read_csv_columns


def snapshot_cells(snapshot: np.ndarray, pattern: np.ndarray, cell: int = 16,
                   sigma: float = 3.0) -> np.ndarray:
    """Cell statistics of one snapshot against the pattern ``P``.

    Parameters
    ----------
    snapshot : ndarray, shape (h, w, 3), uint8
    pattern : ndarray, shape (h, w)
        The injected fingerprint P of the tile.
    cell : int
        Cell side.
    sigma : float
        Residual noise level, 0-255 units.

    Returns
    -------
    ndarray, shape (3, ceil(h/cell), ceil(w/cell)), float64
        ``sum(W*X)``, ``sum(W**2)``, ``sum(X**2)`` with ``W`` the residual
        of the snapshot and ``X = gray(snapshot) * P``.
    """
    w = noise_residual(snapshot, sigma)
    x = attribution_reference(snapshot, pattern)
    return cell_statistics(w, x, cell)


def stored_snapshot_count(tile_dir: str | os.PathLike) -> int:
    """Valid snapshots of a tile: ``min(table rows, complete frames)``."""
    d = Path(tile_dir)
    if not (d / SNAPSHOTS).exists():
        return 0
    rows = len(read_csv_columns(d / TABLE, TABLE_COLUMNS)["index"])
    return min(rows, valid_frame_count(d / SNAPSHOTS))


def catch_up_cells(tile_dir: str | os.PathLike, pattern: np.ndarray, cell: int = 16,
                   sigma: float = 3.0, upto: int | None = None,
                   cancel: CancelToken | None = None,
                   progress: Callable[[int, int], None] | None = None) -> int:
    """Compute the cell statistics a tile is missing; return the cells now stored.

    Parameters
    ----------
    tile_dir : path
        The tile folder (``snapshots.npy`` and ``cells.npy`` inside).
    pattern : ndarray, shape (h, w)
        The tile's P.
    cell, sigma : optional
        As in :func:`snapshot_cells`.
    upto : int, optional
        Stop after this many cells (default: every valid snapshot).
    cancel : CancelToken, optional
        Checked between snapshots.
    progress : callable, optional
        ``progress(done, total)`` after every snapshot.
    """
    d = Path(tile_dir)
    total = stored_snapshot_count(d) if upto is None else int(upto)
    with AppendableNpy.open(d / CELLS) as cells:
        if len(cells) > total:  # never keep cells of snapshots that are not valid
            cells.truncate(total)
        for i in range(len(cells), total):
            if cancel is not None and cancel.cancelled:
                break
            cells.append(snapshot_cells(read_frame(d / SNAPSHOTS, i), pattern, cell, sigma))
            if progress is not None:
                progress(i + 1, total)
        return len(cells)


@dataclass
class _TileJob:
    tile_dir: Path
    pattern: np.ndarray
    available: int
    done: int = -1  # unknown until the worker opens the file


class CellsWorker:
    """A thread that keeps every registered tile's ``cells.npy`` up to date.

    The inversion registers a tile with :meth:`add_tile` (after any
    rollback) and calls :meth:`notify` after each stored snapshot. Tiles are
    served in registration order, snapshots in index order.

    Parameters
    ----------
    cell : int
        Cell side.
    sigma : float
        Residual noise level.
    """

    def __init__(self, cell: int = 16, sigma: float = 3.0) -> None:
        self.cell = int(cell)
        self.sigma = float(sigma)
        self._jobs: dict[str, _TileJob] = {}
        self._cond = threading.Condition()
        self._finishing = False
        self._stop = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="dippas-cells", daemon=True)

    def start(self) -> CellsWorker:
        """Start the thread; returns ``self``."""
        self._thread.start()
        return self

    def add_tile(self, tile_dir: str | os.PathLike, pattern: np.ndarray, available: int) -> None:
        """Register a tile whose first ``available`` snapshots are stored."""
        key = str(Path(tile_dir))
        with self._cond:
            self._jobs[key] = _TileJob(Path(tile_dir), np.ascontiguousarray(pattern, np.float32),
                                       int(available))
            self._cond.notify_all()

    def notify(self, tile_dir: str | os.PathLike, available: int) -> None:
        """Tell the worker that a tile now has ``available`` stored snapshots."""
        with self._cond:
            self._jobs[str(Path(tile_dir))].available = int(available)
            self._cond.notify_all()

    def done_count(self, tile_dir: str | os.PathLike) -> int:
        """Cells computed so far for a tile (as known by the worker)."""
        with self._cond:
            return max(0, self._jobs[str(Path(tile_dir))].done)

    def _next_job(self) -> _TileJob | None:
        for job in self._jobs.values():
            if job.done < job.available:
                return job
        return None

    def _loop(self) -> None:
        try:
            while True:
                with self._cond:
                    job = self._next_job()
                    while job is None and not (self._stop or self._finishing):
                        self._cond.wait(timeout=0.5)
                        job = self._next_job()
                    if self._stop or job is None:
                        return
                    target = job.available
                self._work(job, target)
        except BaseException as exc:  # reported by finish()/stop()
            self.error = exc

    def _work(self, job: _TileJob, target: int) -> None:
        with AppendableNpy.open(job.tile_dir / CELLS) as cells:
            if len(cells) > target:
                cells.truncate(target)
            for i in range(len(cells), target):
                if self._stop:
                    break
                # the layout is known: never parse a header the writer may be rewriting
                frame = read_frame(job.tile_dir / SNAPSHOTS, i, (*job.pattern.shape, 3), np.uint8)
                cells.append(snapshot_cells(frame, job.pattern, self.cell, self.sigma))
                with self._cond:
                    job.done = len(cells)
            with self._cond:
                job.done = len(cells)

    @property
    def alive(self) -> bool:
        """Whether the thread is still running."""
        return self._thread.is_alive()

    def finish(self, timeout: float | None = None) -> None:
        """Compute every missing cell, then stop the thread.

        Parameters
        ----------
        timeout : float, optional
            Return after this many seconds even if the thread is still
            working (check :attr:`alive`); call again to keep waiting.

        Raises
        ------
        BaseException
            Whatever the thread raised.
        """
        with self._cond:
            self._finishing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Stop after the snapshot in progress; missing cells are left for later."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()
