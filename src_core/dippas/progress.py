"""Progress reporting and cancellation shared by the CLI, the plugin and batch jobs.

Long computations in the core take an optional ``progress`` callback and an
optional :class:`CancelToken`. The CLI wraps the callback in a tqdm bar, the
napari plugin in a thread worker that yields throttled updates, and the Stop
button sets the token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CancelToken:
    """A thread-safe flag that asks a running computation to stop.

    Examples
    --------
    >>> token = CancelToken()
    >>> token.cancelled
    False
    >>> token.cancel()
    >>> token.cancelled
    True
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the computation to stop at its next check."""
        self._event.set()

    def reset(self) -> None:
        """Clear the flag so the token can be reused."""
        self._event.clear()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()


class Throttle:
    """True at most once every ``interval`` seconds (and always on the first call).

    Used to yield progress to a GUI about every 100 ms however fast the loop runs.
    """

    def __init__(self, interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = float(interval)
        self._clock = clock
        self._last = -float("inf")

    def __call__(self) -> bool:
        now = self._clock()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False


class Steps:
    """Counts the steps of a computation, reports them and honours the cancel token.

    Parameters
    ----------
    total : int
        Steps planned.
    progress : callable, optional
        ``progress(done, total)`` after each step.
    cancel : CancelToken, optional
        Checked by :meth:`check` (and :meth:`step`).
    what : str
        Named in the :class:`~dippas.errors.Cancelled` message.
    """

    def __init__(self, total: int, progress: Callable[[int, int], None] | None,
                 cancel: CancelToken | None, what: str = "computation") -> None:
        self.total = total
        self.done = 0
        self.progress = progress
        self.cancel = cancel
        self.what = what

    def check(self) -> None:
        """Raise :class:`~dippas.errors.Cancelled` when the token is set."""
        if self.cancel is not None and self.cancel.cancelled:
            from .errors import Cancelled

            raise Cancelled(f"{self.what} cancelled")

    def tick(self) -> None:
        """Count one step done and report it."""
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    def step(self) -> None:
        """:meth:`check`, then :meth:`tick`."""
        self.check()
        self.tick()
