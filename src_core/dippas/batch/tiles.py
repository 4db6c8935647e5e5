"""The tiles of one DIPPAS run as Dask tasks: one task per tile, on any client of :mod:`.cluster`.

A photo larger than one tile is inverted tile by tile, each tile with its own
network, store and checkpoint in the run folder (``docs/run-format.md``), so
the tiles are independent: :func:`invert_tiles` submits one
:func:`invert_tile` task per unfinished tile, and each worker inverts its
tile with :meth:`dippas.dip.dippas_run.DippasRun.run` ``(tiles=[index])``,
cell statistics included. The parent opens (creates or resumes) the run
first, so ``params.json`` is written once, before any task starts; the
workers only write their tiles' folders. Once every task is back the
parent computes any missing cell statistics, so the run folder is exactly
the one a sequential run leaves.

On the CPU each tile's output is bit-identical to a sequential run's
*with the same torch threads per tile*: a tile's numbers do not depend on
which process inverts it, but torch's CPU kernels may round differently
with another thread count.

Cancel (a :class:`~dippas.progress.CancelToken`, or Ctrl-C in the parent)
sets a Dask ``Event`` that the tasks poll: the tiles in progress checkpoint
and return, and the run stays resumable, by this function or by a
sequential run. The worker processes of the local cluster ignore SIGINT,
so the Ctrl-C of a terminal reaches the parent only. A worker killed
mid-tile loses the iterations after the tile's last checkpoint; Dask reruns
its task on another worker, which resumes from that checkpoint.

Dask is imported inside the functions: importing this module does not need it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import DippasInputError, one_line
from ..progress import CancelToken
from .cluster import check_resources, task_resources

__all__ = ["TileError", "TileTask", "invert_tile", "invert_tiles"]

#: Seconds between two looks of a task at the cancel event, and of the parent at its futures.
POLL_S = 0.25
#: Seconds the parent waits, after a cancel, for the tiles in progress to checkpoint.
CANCEL_WAIT_S = 120.0


@dataclass(frozen=True)
class TileTask:
    """One tile of a run folder to invert on a worker; plain data, picklable.

    Attributes
    ----------
    run_dir : str
        The run folder (the same path on every worker: a shared file system).
    index : int
        Index of the tile in the run's tiles.
    engine : dict
        :class:`~dippas.dip.dippas_run.DippasRun` arguments: ``device``,
        ``bf16``, ``channels_last``, ``checkpoint_every``, ``network_factory``,
        ``early_stop`` (the run's own ``max_iter`` and ``stop_psnr`` are read
        from ``params.json``).
    threads : int or None
        torch CPU threads of the worker (None: what the worker has, which a
        local cluster of :func:`~dippas.batch.cluster.open_client` sets to its
        share of the cores).
    cancel_event : str or None
        Name of the Dask ``Event`` that asks the task to checkpoint and stop.
    """

    run_dir: str
    index: int
    engine: dict = field(default_factory=dict)
    threads: int | None = None
    cancel_event: str | None = None


class _EventToken:
    """A cancel token backed by a Dask ``Event``, asked at most every :data:`POLL_S` seconds."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self._event = None
        self._set = False
        self._last = -float("inf")

    @property
    def cancelled(self) -> bool:
        if self._set or self.name is None:
            return self._set
        now = time.monotonic()
        if now - self._last >= POLL_S:
            self._last = now
            if self._event is None:
                from distributed import Event

                self._event = Event(self.name)
            self._set = bool(self._event.is_set())
        return self._set


def invert_tile(task: TileTask) -> dict:
    """Invert one tile of a run folder, with its cell statistics (the function workers run).

    Returns
    -------
    dict
        ``index``, ``tile`` (its name), ``cancelled``, ``iterations`` (run in
        this call), ``seconds``.
    """
    from ..dip.dippas_run import DippasRun

    if task.threads is not None:
        import torch

        torch.set_num_threads(int(task.threads))
    run = DippasRun(task.run_dir, **task.engine)
    summary = run.run(cancel=_EventToken(task.cancel_event), tiles=[task.index])
    return {"index": task.index, "tile": run.tiles[task.index].name,
            "cancelled": summary.cancelled, "iterations": summary.iterations,
            "seconds": summary.seconds}


def _ignore_sigint() -> None:  # runs in the main thread of each worker process
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def invert_tiles(run, client, *, tiles: Iterable[int] | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 cancel: CancelToken | None = None, threads: int | None = None,
                 retries: int = 0, ignore_sigint: bool = False):
    """Invert the unfinished tiles of ``run`` as Dask tasks on ``client``, one task per tile.

    Parameters
    ----------
    run : dippas.dip.dippas_run.DippasRun
        The run, opened by the parent (:func:`~dippas.dip.dippas_run.open_run`);
        its device, speed options, checkpoint interval and early stop go to
        every task.
    client : distributed.Client
        E.g. from :func:`~dippas.batch.cluster.open_client`; its workers must
        see ``run.path`` at the same path. With ``device='cuda'`` every task
        requests ``GPU=1``.
    tiles : iterable of int, optional
        Only these tiles (default every tile).
    progress : callable, optional
        ``progress(done_tiles, n_tiles)``: at the start (tiles already
        finished count as done), then after every tile.
    cancel : CancelToken, optional
        Stops the tasks within about :data:`POLL_S` s and an iteration; the
        tiles in progress checkpoint and the summary says ``cancelled``.
    threads : int, optional
        torch threads of each task (see :class:`TileTask`).
    retries : int
        Times Dask reruns a tile that raised (the rerun resumes from the
        tile's checkpoint).
    ignore_sigint : bool
        Make the client's workers ignore SIGINT, so the Ctrl-C of a terminal
        reaches this process only (for a local cluster started by it, as
        :func:`invert_on_local_cluster` does; default False: a shared
        cluster's workers are left alone).

    Returns
    -------
    dippas.dip.dippas_run.RunSummary
        Of the whole run; ``iterations`` sums the tasks'.

    Raises
    ------
    DippasInputError
        On a bad tile index, or resources no worker offers.
    TileError
        ``tile <name>: <error in one line>`` when a tile failed (after its
        retries); the other tiles are stopped at a checkpoint first (a bad
        input error stays a :class:`DippasInputError`).
    KeyboardInterrupt
        After the tiles in progress checkpointed.
    """
    t0 = time.perf_counter()
    indices = run.tile_indices(tiles)
    todo = run.unfinished_tiles(indices)
    n = len(indices)
    if progress is not None:
        progress(n - len(todo), n)
    resources = task_resources("dippas", run.device)
    check_resources(client, resources)
    if todo and ignore_sigint:
        client.run(_ignore_sigint)
    name = f"dippas-tiles-{uuid.uuid4().hex}"
    engine = {"device": run.device, "bf16": run.bf16, "channels_last": run.channels_last,
              "checkpoint_every": run.checkpoint_every, "network_factory": run.network_factory,
              "early_stop": run.early_stop}
    futures = {client.submit(invert_tile, TileTask(str(run.path), i, engine, threads, name),
                             key=f"{name}-tile-{i}", pure=False, retries=retries,
                             resources=resources): i for i in todo}
    pending = dict(futures)
    done, iterations, cancelled = n - len(todo), 0, False
    try:
        while pending:
            if cancel is not None and cancel.cancelled:
                cancelled = True
                break
            finished = [f for f in pending if f.done()]
            for fut in finished:
                index = pending.pop(fut)
                if fut.status != "finished":
                    raise _tile_error(run.tiles[index].name, fut)
                result = fut.result()
                iterations += result["iterations"]
                if result["cancelled"]:  # the event was set by another client
                    cancelled = True
                    continue
                done += 1
                if progress is not None:
                    progress(done, n)
            if pending and not finished:
                time.sleep(POLL_S)
    except BaseException:
        _stop(client, name, pending)
        raise
    if cancelled:
        iterations += _stop(client, name, pending)
    else:
        run.catch_up_cells()  # cells a task left behind (its worker lost after its last snapshot)
    run.cancelled = cancelled
    return run.summary(iterations=iterations, seconds=time.perf_counter() - t0)


def _stop(client, name: str, pending: dict) -> int:
    """Set the cancel event, wait for the tiles in progress to checkpoint; their iterations."""
    from distributed import Event, wait

    if not pending:
        return 0
    Event(name, client=client).set()
    try:
        wait(list(pending), timeout=CANCEL_WAIT_S)
    except (TimeoutError, KeyboardInterrupt):  # a second Ctrl-C stops waiting
        pass
    client.cancel([f for f in pending if not f.done()])
    return sum(f.result()["iterations"] for f in pending if f.status == "finished")


def _tile_error(tile: str, fut) -> Exception:
    """The error of a failed tile task in one line, naming the tile (bad input stays bad input)."""
    try:
        exc = fut.exception()
    except Exception as err:  # noqa: BLE001 - cancelled or lost: say so in one line
        exc = err
    line = f"tile {tile}: {one_line(exc) if exc is not None else 'task ' + str(fut.status)}"
    return DippasInputError(line) if isinstance(exc, DippasInputError) else TileError(line)


class TileError(RuntimeError):
    """A tile's task failed (after its retries); the message is one line naming the tile."""


def tiles_for_workers(run, workers: int) -> bool:
    """Whether ``run``'s tiles go to ``workers`` Dask workers: more than one worker, on the CPU,
    and more than one tile left to invert.

    When ``workers`` > 1 but the answer is no, says why in one
    :class:`~dippas.errors.DippasWarning` (the inversion then runs in this process).
    """
    import warnings

    from ..dip.device import resolve_device
    from ..errors import DippasWarning

    if int(workers) <= 1:
        return False
    left = len(run.unfinished_tiles())
    if resolve_device(run.device).type != "cpu":
        why = "tiles run on Dask workers on the CPU only; inverting on the GPU in this process"
    elif left <= 1:
        what = "the photo is one tile" if len(run.tiles) == 1 else "one tile is left to invert"
        why = f"{what}; inverting it in this process"
    else:
        return True
    warnings.warn(f"--workers {workers}: {why}", DippasWarning, stacklevel=2)
    return False


def invert_on_local_cluster(run, workers: int, *, progress: Callable[[int, int], None] | None = None,
                            cancel: CancelToken | None = None, threads: int | None = None):
    """:func:`invert_tiles` on a local cluster of ``workers`` processes, closed afterwards.

    The cluster is :func:`~dippas.batch.cluster.open_client`'s (127.0.0.1 only,
    at most one worker per core, no more workers than tiles left), whose
    workers' numerical libraries get their share of the cores; ``threads``
    sets torch's threads in each worker instead.

    Returns
    -------
    dippas.dip.dippas_run.RunSummary
    """
    from .cluster import open_client

    left = len(run.unfinished_tiles())
    with open_client(workers=min(int(workers), max(1, left))) as client:
        return invert_tiles(run, client, progress=progress, cancel=cancel, threads=threads,
                            ignore_sigint=True)
