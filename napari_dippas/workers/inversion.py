"""Turn a DIPPAS run's per-iteration events into a few GUI events.

:func:`drive_inversion` runs in the plain thread of a
:class:`~napari_dippas.workers.core_task.CoreTask` (no Qt here). It creates or opens
the run, iterates :meth:`dippas.dip.DippasRun.events` and emits, through
``emit``:

:class:`~.events.RunStarted`
    Once, when the run folder exists.
:class:`~.events.RunProgress`
    At most every ``progress_interval`` seconds (and at the end of each
    tile): ``info`` is a dict of the last iteration (``iteration``,
    ``max_iter``, ``loss``, ``psnr``, ``gamma``, ``its_per_s``, ``n_saved``,
    ``tile``, ``tile_index``, ``n_tiles``, ``done``, ``tiles_together``) and
    ``history`` a dict of arrays (``iteration``, ``psnr``, ``loss``,
    ``gamma``) of every iteration since the previous progress event, so
    curves miss nothing. Of tiles inverted together (they advance in step)
    one is reported until it ends, then the next.
:class:`~.events.SnapshotReady`
    The newest stored snapshot, at most every ``snapshot_interval`` seconds
    (and the last one of each tile): frames in between stay on disk only.
:class:`~.events.CellsProgress`
    While the background stage finishes the cell statistics.

It returns the run's :class:`~dippas.dip.RunSummary` (``cancelled`` is
True after a Stop; the run is then resumable).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dippas.progress import CancelToken, Throttle

from .events import CellsProgress, RunProgress, RunStarted, SnapshotReady, WorkerEvent

Emit = Callable[[WorkerEvent], None]

_HISTORY = ("iteration", "psnr", "loss", "gamma")


class _History:
    """Iterations gathered between two progress events."""

    def __init__(self) -> None:
        self.rows: dict[str, list] = {k: [] for k in _HISTORY}

    def add(self, ev) -> None:
        for k in _HISTORY:
            self.rows[k].append(getattr(ev, k))

    def take(self) -> dict:
        import numpy as np

        out = {k: np.asarray(v) for k, v in self.rows.items()}
        self.rows = {k: [] for k in _HISTORY}
        return out


def _info(ev) -> dict[str, Any]:
    return {"iteration": ev.iteration, "max_iter": ev.max_iter, "loss": ev.loss, "psnr": ev.psnr,
            "gamma": ev.gamma, "its_per_s": ev.its_per_s, "n_saved": ev.n_saved,
            "tile": ev.tile.name if ev.tile is not None else "0_0",
            "tile_index": ev.tile_index, "n_tiles": ev.n_tiles, "done": ev.done,
            "tiles_together": ev.tiles_together}


def drive_inversion(run_dir: str | os.PathLike, *, create: dict | None = None,
                    open_kwargs: dict | None = None, emit: Emit,
                    cancel: CancelToken | None = None, progress_interval: float = 0.1,
                    snapshot_interval: float = 1.0):
    """Create (``create`` given) or resume a run and report it through ``emit``.

    Parameters
    ----------
    run_dir : path
        The run folder.
    create : dict, optional
        ``job`` (a :class:`dippas.jobs.DippasJob`), ``image`` and
        ``fingerprint``: a new run is made through the run store's
        :func:`dippas.dip.dippas_run.open_run`. Without it the run in ``run_dir``
        is resumed.
    open_kwargs : dict, optional
        Arguments of :meth:`dippas.dip.DippasRun.open` (``device``,
        ``max_iter``, ``stop_psnr``, ``early_stop``) when resuming.
    emit : callable
        Receives the events described in the module docstring.
    cancel : CancelToken, optional
        Stop after the current iteration (the run is checkpointed).
    progress_interval, snapshot_interval : float
        Minimum seconds between two progress events, two snapshot events.

    Returns
    -------
    dippas.dip.RunSummary
    """
    import time

    import numpy as np
    from dippas.dip import DippasRun
    from dippas.dip.dippas_run import open_run

    if create is not None:
        job = create["job"]
        image, k = job.prepare(create["image"], create.get("fingerprint"))
        run = open_run(run_dir, image, k, job, resume=False)
    else:
        run = DippasRun.open(run_dir, **(open_kwargs or {}))
    emit(RunStarted(os.fspath(run.path), len(run.tiles)))

    progress_due = Throttle(progress_interval)
    snapshot_due = Throttle(snapshot_interval)
    history = _History()
    pending: SnapshotReady | None = None  # newest snapshot not yet sent
    last = None
    cells_due = Throttle(progress_interval)

    def flush(ev) -> None:
        nonlocal pending
        emit(RunProgress(_info(ev), history.take()))
        if pending is not None:
            emit(pending)
            pending = None

    def on_cells(done: int, total: int) -> None:
        if done >= total or cells_due():
            emit(CellsProgress(int(done), int(total)))

    t0 = time.perf_counter()
    iterations = 0
    followed = None  # tiles inverted together advance in step: report one until it ends
    for ev in run.events(cancel=cancel, cells_progress=on_cells):
        iterations += 1
        if ev.snapshot_index is not None:
            frame = ev.snapshot
            if frame is None:  # a tile's stand-in best snapshot: read it back from the store
                frame = np.array(run.store.tile(ev.tile.name).snapshots[ev.snapshot_index])
            pending = SnapshotReady(ev.tile.name, int(ev.snapshot_index), frame,
                                    int(ev.iteration), float(ev.psnr))
        if not (followed is None or followed.done or followed.tile_index == ev.tile_index):
            if ev.done and pending is not None:  # that tile's last snapshot is shown
                emit(pending)
                pending = None
            continue  # another tile of the batch: its curve and status are not shown
        followed = ev
        history.add(ev)
        if ev.done:
            flush(ev)
        elif progress_due():
            emit(RunProgress(_info(ev), history.take()))
            if pending is not None and snapshot_due():
                emit(pending)
                pending = None
        last = ev
    if last is not None and (history.rows["iteration"] or pending is not None):
        flush(last)
    return run.summary(iterations=iterations, seconds=time.perf_counter() - t0)
