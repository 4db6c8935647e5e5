"""Dask distributed clients: a local cluster or an existing scheduler, resources, and ``map_func``.

Dask is imported only inside these functions, so the rest of dippas works
without it (``pip install 'napari-dippas[dask]'`` adds it).

GPU workers are marked with the abstract resource ``GPU``
(``dask worker SCHEDULER --resources GPU=1``, one worker process per GPU,
each with its own ``CUDA_VISIBLE_DEVICES``); a DIPPAS task asked to run on
``cuda`` requests ``{'GPU': 1}``, so each GPU runs one inversion at a time.

The default local cluster listens on ``127.0.0.1`` only, its dashboard
included: worker pages show tracebacks and call stacks. To watch it from
another machine, tunnel it (``ssh -L 8787:127.0.0.1:8787 host``), or start
a cluster yourself with the dashboard where you want it and pass
``--scheduler`` (docs/batch.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping

from ..errors import DippasInputError

#: Seconds to wait for an existing scheduler to answer and for a first worker.
CONNECT_TIMEOUT = 60.0
#: The only interface the default local cluster and its dashboard listen on.
LOCAL_HOST = "127.0.0.1"
#: Name of the abstract resource of GPU workers.
GPU_RESOURCE = "GPU"
#: Thread-count variables set on local workers (the cores split between them).
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Those the user set, read before any Nanny writes its pre-spawn values into os.environ.
_USER_SET = frozenset(v for v in THREAD_VARIABLES if v in os.environ)

__all__ = [
    "GPU_RESOURCE",
    "LOCAL_HOST",
    "check_local_size",
    "check_resources",
    "check_scheduler",
    "cpu_count",
    "dashboard_link",
    "dask_map_func",
    "local_cluster_options",
    "open_client",
    "require_distributed",
    "task_resources",
]


def require_distributed():
    """Import and return :mod:`distributed`, or raise a one-line install hint."""
    try:
        import distributed
    except ImportError:
        raise DippasInputError("this needs Dask distributed: pip install 'napari-dippas[dask]' "
                               "(or pip install 'dask[distributed]')") from None
    return distributed


def cpu_count() -> int:
    """Cores available to this process (affinity and cgroup limits as Dask sees them)."""
    try:
        from dask.system import CPU_COUNT

        return max(1, int(CPU_COUNT))
    except ImportError:  # pragma: no cover - dask is there whenever this is called
        return max(1, os.cpu_count() or 1)


def task_resources(method: str, device: str) -> dict | None:
    """Resources one photo's task requests: ``{'GPU': 1}`` for DIPPAS on cuda, else none."""
    if method == "dippas" and device == "cuda":
        return {GPU_RESOURCE: 1}
    return None


def _dashboard_address() -> str:
    try:
        import bokeh  # noqa: F401 - the dashboard needs it
    except ImportError:
        return f"{LOCAL_HOST}:0"  # only Dask's plain HTTP endpoint: any free port, no clash on 8787
    return f"{LOCAL_HOST}:8787"  # taken: Dask picks another port


def check_local_size(workers: int | None, threads_per_worker: int | None) -> None:
    """Refuse a local cluster larger than this machine, before any work.

    Raises
    ------
    DippasInputError
        When ``workers`` or ``threads_per_worker`` exceeds the cores available.
    """
    cores = cpu_count()
    for value, flag in ((workers, "--workers"), (threads_per_worker, "--threads-per-worker")):
        if value is not None and int(value) > cores:
            raise DippasInputError(f"{flag} {value}: this machine has {cores} core(s); use at most "
                                   f"{cores} (for more, start a cluster and pass --scheduler)")


def check_scheduler(scheduler: str) -> str:
    """The scheduler address of ``--scheduler``: an address, or read from a scheduler file.

    Raises
    ------
    DippasInputError
        When a file is not a Dask scheduler file, or a ``.json`` name does not exist.
    """
    from ..jsonio import read_json

    if os.path.isfile(scheduler):
        try:
            address = read_json(scheduler).get("address")
        except DippasInputError:
            address = None
        if not isinstance(address, str) or "://" not in address:
            raise DippasInputError(f"{scheduler}: not a Dask scheduler file "
                                   "(no scheduler address in it)")
        return address
    if scheduler.lower().endswith(".json") or os.sep in scheduler and "://" not in scheduler:
        raise DippasInputError(f"{scheduler}: no such scheduler file")
    return scheduler


def local_cluster_options(workers: int | None = None, threads_per_worker: int | None = None,
                          *, gpu: bool = False, tasks: int | None = None) -> dict:
    """Keyword arguments of the default ``LocalCluster``, sized to this machine.

    Parameters
    ----------
    workers : int, optional
        Worker processes; default one per core (at most one per task), or
        one with ``gpu``. At most one per core (:func:`check_local_size`).
    threads_per_worker : int, optional
        Tasks run at once per worker (default 1).
    gpu : bool
        Mark every worker with the ``GPU`` resource (one GPU on this machine).
    tasks : int, optional
        Number of tasks, to start no more workers than there is work for.

    Returns
    -------
    dict
        ``n_workers``, ``threads_per_worker``, ``processes=True``,
        ``host='127.0.0.1'``, the dashboard address (``127.0.0.1:8787``;
        any free port without bokeh), ``silence_logs``,
        ``resources`` and ``env``: the numerical libraries of each worker
        get the cores divided by the tasks running at once (unless the
        variables are already set).
    """
    check_local_size(workers, threads_per_worker)
    cores = cpu_count()
    tpw = int(threads_per_worker or 1)
    if workers is None:
        workers = 1 if gpu else max(1, min(cores // tpw or 1, tasks if tasks else cores))
    share = max(1, cores // (int(workers) * tpw))
    env = {v: str(share) for v in THREAD_VARIABLES if v not in _USER_SET}
    return {"n_workers": int(workers), "threads_per_worker": tpw, "processes": True,
            "host": LOCAL_HOST, "dashboard_address": _dashboard_address(), "silence_logs": logging.ERROR,
            "resources": {GPU_RESOURCE: 1} if gpu else None, "env": env}


@contextlib.contextmanager
def open_client(scheduler: str | None = None, workers: int | None = None,
                threads_per_worker: int | None = None, *, gpu: bool = False,
                tasks: int | None = None, timeout: float = CONNECT_TIMEOUT) -> Iterator:
    """A Dask client on an existing scheduler, or on a new local cluster closed on exit.

    Parameters
    ----------
    scheduler : str, optional
        Scheduler address (``tcp://host:8786``) or scheduler file (JSON
        written by ``dask scheduler --scheduler-file``). Default: start a
        ``LocalCluster`` (:func:`local_cluster_options`).
    workers, threads_per_worker : int, optional
        Size of the local cluster; not with ``scheduler``.
    gpu : bool
        Local cluster: mark its workers with the ``GPU`` resource.
    tasks : int, optional
        Local cluster: start no more workers than tasks.
    timeout : float
        Seconds to wait for the scheduler, and for its first worker.

    Yields
    ------
    distributed.Client

    Raises
    ------
    DippasInputError
        When Dask is missing, sizes are given with ``scheduler``, or the
        scheduler cannot be reached or has no worker in time.
    """
    distributed = require_distributed()
    if scheduler is None:
        opts = local_cluster_options(workers, threads_per_worker, gpu=gpu, tasks=tasks)
        with distributed.LocalCluster(**opts) as cluster, distributed.Client(cluster) as client:
            yield client
        return
    if workers is not None or threads_per_worker is not None:
        raise DippasInputError("--workers and --threads-per-worker size the local cluster; "
                               "with --scheduler, size the cluster where its workers start")
    address = check_scheduler(scheduler)
    try:
        client = distributed.Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError, TypeError, AssertionError) as exc:
        raise DippasInputError(f"cannot reach the Dask scheduler {scheduler} ({exc})") from None
    try:
        _wait_for_workers(client, scheduler, timeout)
        yield client
    finally:
        client.close()


def _wait_for_workers(client, scheduler: str, timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise DippasInputError(f"the Dask scheduler {scheduler} has no worker "
                               f"(none joined within {timeout:g} s)") from None


def check_resources(client, resources: Mapping[str, float] | None) -> None:
    """Refuse to submit tasks that no worker of ``client`` could ever run.

    Raises
    ------
    DippasInputError
        When ``resources`` are asked and no worker offers them.
    """
    if not resources:
        return
    workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()
    for w in workers:
        have = w.get("resources") or {}
        if all(have.get(r, 0) >= n for r, n in resources.items()):
            return
    needed = ",".join(f"{r}={n:g}" for r, n in resources.items())
    raise DippasInputError(f"no Dask worker offers the resources {needed}; start GPU workers with "
                           f"dask worker SCHEDULER --resources {needed}")


def dashboard_link(client) -> str | None:
    """The scheduler's dashboard URL, or None when it runs none.

    Without bokeh (or with ``--no-dashboard``) a scheduler still serves a
    plain HTTP endpoint; only a scheduler with the bokeh dashboard mounted
    gets a link.
    """
    def has_dashboard(dask_scheduler=None) -> bool:  # runs on the scheduler, pickled by value
        app = getattr(dask_scheduler, "http_application", None)
        return bool(getattr(app, "applications", None))

    try:
        if not client.run_on_scheduler(has_dashboard):
            return None
        return client.dashboard_link or None
    except Exception:  # noqa: BLE001 - a missing link is never an error
        return None


def dask_map_func(client, retries: int = 0,
                  resources: Mapping | Callable[[object], Mapping | None] | None = None
                  ) -> Callable[[Callable, Iterable], Iterator]:
    """A ``map_func(func, tasks)`` running the tasks on ``client``, results in task order.

    This is the execution layer of ``dippas evaluate`` (its ``map_func``).

    Parameters
    ----------
    client : distributed.Client
    retries : int
        Times Dask reruns a task that raised.
    resources : mapping or callable, optional
        Resources every task requests, or ``resources(task)`` per task.

    Returns
    -------
    callable
        ``map_func(func, tasks)`` yields ``func(task)`` for each task, in
        order, as soon as it and the ones before it are done; the first
        error is raised after cancelling the tasks not yet finished.
    """
    def map_func(func: Callable, tasks: Iterable) -> Iterator:
        tasks = list(tasks)
        wanted = [resources(t) if callable(resources) else resources for t in tasks]
        for res in {tuple(sorted(r.items())) for r in wanted if r}:
            check_resources(client, dict(res))
        futures = [client.submit(func, t, pure=False, retries=retries,
                                 resources=dict(r) if r else None) for t, r in zip(tasks, wanted)]
        try:
            for i, fut in enumerate(futures):
                result = fut.result()
                futures[i] = None
                fut.release()
                yield result
        finally:
            pending = [f for f in futures if f is not None]
            if pending:
                client.cancel(pending)

    return map_func
