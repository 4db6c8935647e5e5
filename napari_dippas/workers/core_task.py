"""Run a core function in a plain thread and drain its events from a generator.

napari's thread workers run generators; the core reports through callbacks.
:class:`CoreTask` bridges the two the way careamics-napari does: the core
function runs in an ordinary ``threading.Thread`` (torch is not slowed down
by the worker machinery, see docs/plugin.md), pushes events into a
queue, and :meth:`CoreTask.events` is the generator that a napari
``GeneratorWorker`` runs, yielding the queued events to the GUI thread.
Progress events are throttled (about every 100 ms) so the GUI is never
flooded. :meth:`CoreTask.cancel` sets the core's cancel token: Stop really
stops the computation, not only the generator.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from typing import Any

from dippas.progress import CancelToken, Throttle

from .events import TaskProgress, WorkerEvent


class CoreTask:
    """A core computation running in its own thread, observed through events.

    Parameters
    ----------
    fn : callable
        Called as ``fn(*args, progress=callback, cancel=token, **kwargs)``
        (``progress`` is omitted when ``progress_kw`` is None).
    progress_kw : str or None
        Name of the keyword through which ``fn`` reports progress.
    interval : float
        Minimum seconds between two progress events.
    emit_kw : str or None
        Name of a keyword through which ``fn`` receives :meth:`put`, to
        queue its own events (it then does its own throttling).
    """

    def __init__(self, fn: Callable, *args, progress_kw: str | None = "progress",
                 interval: float = 0.1, emit_kw: str | None = None, **kwargs) -> None:
        self.token = CancelToken()
        self._queue: queue.Queue = queue.Queue(maxsize=256)
        self._throttle = Throttle(interval)
        self._result: Any = None
        self._error: BaseException | None = None
        if progress_kw is not None:
            kwargs[progress_kw] = self._on_progress
        if emit_kw is not None:
            kwargs[emit_kw] = self.put
        kwargs.setdefault("cancel", self.token)
        self._thread = threading.Thread(target=self._target, args=(fn, args, kwargs),
                                        daemon=True, name="dippas-core")

    def _target(self, fn, args, kwargs) -> None:
        try:
            self._result = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the generator, on the worker thread
            self._error = exc

    def _on_progress(self, done: int, total: int | None = None) -> None:
        if (total is not None and done == total) or self._throttle():
            self.put(TaskProgress(int(done), None if total is None else int(total)))

    def put(self, event: WorkerEvent) -> None:
        """Queue an event for the GUI, dropping it if the GUI has fallen far behind."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            pass

    def cancel(self) -> None:
        """Ask the core computation to stop at its next check."""
        self.token.cancel()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the core thread to end (if started); True when it has."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def events(self, poll: float = 0.05) -> Generator[WorkerEvent, None, Any]:
        """Start the thread and yield its events; return its result (raise its error)."""
        self._thread.start()
        while self._thread.is_alive() or not self._queue.empty():
            try:
                yield self._queue.get(timeout=poll)
            except queue.Empty:
                continue
        self._thread.join()
        if isinstance(self._error, RuntimeError):
            # superqt treats a RuntimeError from a worker as "aborted thread" and
            # emits nothing: wrap it so the widget always hears about the failure.
            raise TaskFailed(error_message(self._error)) from self._error
        if self._error is not None:
            raise self._error
        return self._result


class TaskFailed(Exception):
    """A core computation failed with a RuntimeError (message kept, one line)."""


def error_message(exc: BaseException) -> str:
    """One line for a notification: :func:`dippas.errors.one_line`, or "stopped" after a Stop."""
    from dippas.errors import Cancelled, one_line

    return "stopped" if isinstance(exc, Cancelled) else one_line(exc)
