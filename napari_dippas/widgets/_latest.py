"""Latest-wins background computations for interactive controls.

Sliders and spin boxes ask for a recomputation on every change. A
:class:`LatestWins` runs one request at a time in a napari thread worker;
requests that arrive meanwhile replace each other, so only the newest is
computed next, and the result of a request that was superseded while it
ran is dropped. The GUI thread never waits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LatestWins:
    """Run ``fn(request)`` in a worker, newest request only.

    Parameters
    ----------
    fn : callable
        ``fn(request) -> result``; runs in a worker thread, must not touch
        layers or widgets.
    on_result : callable
        ``on_result(result)`` on the GUI thread, for the newest request only.
    on_error : callable
        ``on_error(exc)`` on the GUI thread, for the newest request only.
    """

    def __init__(self, fn: Callable[[Any], Any], on_result: Callable[[Any], None],
                 on_error: Callable[[BaseException], None]) -> None:
        self._fn = fn
        self._on_result = on_result
        self._on_error = on_error
        self._seq = 0
        self._pending: tuple[int, Any] | None = None
        self._worker = None
        self.completed = 0

    @property
    def busy(self) -> bool:
        """Whether a request is running or waiting."""
        return self._worker is not None or self._pending is not None

    def submit(self, request: Any) -> None:
        """Ask for ``request``; it replaces any request not started yet."""
        self._seq += 1
        self._pending = (self._seq, request)
        if self._worker is None:
            self._start_next()

    def _start_next(self) -> None:
        from napari.qt.threading import create_worker

        seq, request = self._pending
        self._pending = None
        worker = create_worker(_call, self._fn, request, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda result, s=seq: self._returned(s, result))
        worker.errored.connect(lambda exc, s=seq: self._errored(s, exc))
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def _returned(self, seq: int, result: Any) -> None:
        if seq == self._seq:
            self.completed += 1
            self._on_result(result)

    def _errored(self, seq: int, exc: BaseException) -> None:
        if seq == self._seq:
            self._on_error(exc)

    def _finished(self) -> None:
        self._worker = None
        if self._pending is not None:
            self._start_next()


def _call(fn: Callable[[Any], Any], request: Any) -> Any:
    """``fn(request)``, with a RuntimeError re-raised as TaskFailed (superqt drops those)."""
    from ..workers.core_task import TaskFailed, error_message

    try:
        return fn(request)
    except RuntimeError as exc:
        raise TaskFailed(error_message(exc)) from exc
