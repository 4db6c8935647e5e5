"""Plugin-wide state shared between widgets: the last DIPPAS run folder, and where runs go.

New runs are proposed under :func:`default_run_root`, a per-user private
folder (``runs/`` of :func:`dippas.userdirs.state_dir`, mode ``0700``:
``~/.local/state/napari-dippas/runs`` on Linux, or ``$DIPPAS_STATE_DIR/runs``),
never a shared temporary folder: a run holds the original photo.

The inversion widget publishes the folder of a run it finished (or
stopped) here; the assembler widget offers it through "Use last run" and
listens to :attr:`RunRegistry.changed`. The registry is a module-level
singleton, :data:`last_run`, so widgets docked in the same viewer (or in
several viewers of one session) see the same run.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from psygnal import Signal


def default_run_root() -> Path:
    """The per-user private folder under which the plugin proposes new runs (created, ``0700``)."""
    from dippas.userdirs import state_dir

    return state_dir("runs")


class RunRegistry:
    """The most recent run folder produced in this session.

    Attributes
    ----------
    changed : psygnal.Signal
        Emitted with the new path (a ``str``) by :meth:`set`.
    """

    changed = Signal(str)

    def __init__(self) -> None:
        self._path: str | None = None

    @property
    def path(self) -> str | None:
        """The last run folder, or None when no run has been published."""
        return self._path

    def set(self, path: str | os.PathLike) -> None:
        """Publish ``path`` as the last run and emit :attr:`changed`."""
        self._path = os.fspath(path)
        try:
            self.changed.emit(self._path)
        except Exception as exc:  # a broken listener must not break the publisher
            warnings.warn(f"a listener of the last run failed: {exc}", RuntimeWarning,
                          stacklevel=2)

    def clear(self) -> None:
        """Forget the last run (no signal)."""
        self._path = None


#: The session's last run folder.
last_run = RunRegistry()
