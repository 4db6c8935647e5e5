"""A small shared thread pool for the Numba kernels that release the GIL.

Large arrays are split into chunks run by :func:`parallel_for` on the
calling thread and a pool of helper threads. The calling thread and the
helpers take chunks from a shared counter and nobody busy-waits, so a
machine shared with other processes slows the work down only in
proportion. Numba's ``prange`` would serve the same kernels, but its
threading layers spin at every barrier: on a loaded 2-core machine the
residual of a photo ran twice as slow as on one thread. A plain
:class:`concurrent.futures.ThreadPoolExecutor` does serve, with the shared
counter on top so that a helper starting late costs nothing. Results do not
depend on the number of threads. Small arrays run on one thread
(:func:`use_parallel`); callers parallelise those at a coarser grain, e.g.
one colour channel per thread with :func:`parallel_map`. The number of
threads is Numba's, ``NUMBA_NUM_THREADS`` (by default the number of cores).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba as nb

#: Arrays with at least this many elements are processed by several threads;
#: smaller ones by one, as handing work to threads would cost more than it saves.
PARALLEL_MIN_SIZE = 1 << 20
#: Chunks per thread of :func:`parallel_for` (several, to balance the load).
_CHUNKS_PER_THREAD = 4

_POOL_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


def n_threads() -> int:
    """Threads used for large arrays: ``NUMBA_NUM_THREADS`` (default: the cores)."""
    return max(1, int(nb.config.NUMBA_NUM_THREADS))


def use_parallel(size: int, parallel: bool | None = None) -> bool:
    """Whether work on ``size`` elements is split over threads.

    ``parallel`` forces the answer when not None; otherwise arrays of at
    least :data:`PARALLEL_MIN_SIZE` elements go parallel.
    """
    if parallel is not None:
        return bool(parallel) and n_threads() > 1
    return size >= PARALLEL_MIN_SIZE and n_threads() > 1


def _helper_pool() -> ThreadPoolExecutor:
    """The shared pool of ``n_threads() - 1`` helper threads, created on first use."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=max(1, n_threads() - 1),
                                       thread_name_prefix="dippas")
        return _POOL


def parallel_map(fn: Callable[[Any], Any], items: Iterable[Any]) -> list:
    """``[fn(item) for item in items]``, run by this thread and the helper threads.

    Every thread takes the next item from a shared counter until none is
    left, so a helper that starts late (busy machine, pool busy with another
    caller) only takes fewer items; helpers that never started are
    cancelled rather than waited for. ``fn`` should spend its time in
    kernels that release the GIL. The first exception raised is re-raised.

    Parameters
    ----------
    fn : callable
    items : iterable

    Returns
    -------
    list
        The results, in the order of ``items``.
    """
    items = list(items)
    results: list = [None] * len(items)
    counter = itertools.count()

    def work() -> None:
        for k in iter(counter.__next__, None):
            if k >= len(items):
                return
            results[k] = fn(items[k])

    nhelpers = min(n_threads(), len(items)) - 1
    futures = [_helper_pool().submit(work) for _ in range(nhelpers)] if nhelpers > 0 else []
    try:
        work()
    finally:
        for future in futures:
            if not future.cancel():
                future.result()
    return results


def parallel_for(kernel: Callable[..., None], n: int, *args: Any, parallel: bool = True,
                 min_chunk: int = 8) -> None:
    """Run ``kernel(*args, start, stop)`` over ``range(n)`` in chunks, on several threads.

    Parameters
    ----------
    kernel : callable
        A Numba kernel (``nogil=True``) processing items ``start <= i < stop``.
    n : int
        Number of items (rows, usually).
    *args
        Leading arguments of ``kernel``.
    parallel : bool
        With False (or one thread) ``kernel(*args, 0, n)`` runs here.
    min_chunk : int
        Smallest number of items per chunk.
    """
    if n <= 0:
        return
    nchunks = min(_CHUNKS_PER_THREAD * n_threads(), max(1, n // max(1, min_chunk)))
    if not parallel or n_threads() == 1 or nchunks == 1:
        kernel(*args, 0, n)
        return
    size = -(-n // nchunks)
    starts = range(0, n, size)
    parallel_map(lambda start: kernel(*args, start, min(n, start + size)), starts)


# ---------------------------------------------------------------------------
# Sizes
