"""Small helpers shared by the dock widgets: layers, notifications, workers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..workers.core_task import CoreTask
from ..workers.events import WorkerEvent


def image_layers(viewer) -> list:
    """Image layers of the viewer, in order."""
    from napari.layers import Image

    return [layer for layer in viewer.layers if isinstance(layer, Image)]


#: ``dippas_kind`` of layers that are not photos (never offered as an input image).
NOT_PHOTOS = ("fingerprint", "heatmap", "snapshots")


def photo_layers(viewer) -> list:
    """Image layers that can be an input photo: RGB or 2-D integer, not plugin maps or stacks."""
    import numpy as np

    out = []
    for layer in image_layers(viewer):
        if layer.metadata.get("dippas_kind") in NOT_PHOTOS:
            continue
        if layer.rgb and layer.ndim == 2:
            out.append(layer)
        elif layer.ndim == 2 and not layer.rgb and not np.issubdtype(layer.dtype, np.floating):
            out.append(layer)
    return out


def fingerprint_layers(viewer) -> list:
    """2-D float image layers: fingerprints K (or any such map) for aware mode and reports."""
    import numpy as np

    return [layer for layer in image_layers(viewer) if layer.ndim == 2 and not layer.rgb
            and np.issubdtype(layer.dtype, np.floating)]


def layer_by_name(viewer, name: str):
    """The layer called ``name``; a clear error when it is gone."""
    from dippas.errors import DippasInputError

    try:
        return viewer.layers[name]
    except KeyError:
        raise DippasInputError(f"layer {name!r} no longer exists") from None


def notify_error(message: str) -> None:
    """Show a one-line error notification (never a traceback dialog)."""
    from napari.utils.notifications import show_error

    show_error(message)


def notify_info(message: str) -> None:
    """Show an information notification."""
    from napari.utils.notifications import show_info

    show_info(message)


class ClosedFlag:
    """Becomes true when a widget's Qt side is destroyed (viewer or dock closed).

    Worker callbacks that arrive later check it and return, instead of
    touching deleted Qt objects. ``on_close`` callables run at that moment
    (e.g. cancelling a running task).
    """

    def __init__(self, widget) -> None:
        self.closed = False
        self._on_close: list[Callable[[], None]] = []
        widget.native.destroyed.connect(self._destroyed)

    def _destroyed(self, *_) -> None:
        self.closed = True
        for fn in self._on_close:
            fn()

    def on_close(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` when the widget is destroyed."""
        self._on_close.append(fn)

    def __bool__(self) -> bool:
        return self.closed


def start_task(task: CoreTask, on_event: Callable[[WorkerEvent], None],
               on_done: Callable[[Any], None], on_error: Callable[[BaseException], None]):
    """Run ``task.events()`` in a napari generator worker, wired to the callbacks.

    Events arrive on the GUI thread through ``yielded``; the task's result
    through ``returned``; errors through ``errored`` (``_ignore_errors`` keeps
    napari from showing a traceback dialog: ``on_error`` shows one line).
    """
    from napari.qt.threading import create_worker

    worker = create_worker(task.events, _start_thread=False, _ignore_errors=True)
    worker.yielded.connect(on_event)
    worker.returned.connect(on_done)
    worker.errored.connect(on_error)
    worker.start()
    return worker


def notify_task_end(exc: BaseException, what: str) -> None:
    """A task that ended with ``exc``: "``what`` stopped" after a Stop, else the error in one line."""
    from dippas.errors import Cancelled

    from ..workers.core_task import error_message

    if isinstance(exc, Cancelled):
        notify_info(f"{what} stopped")
    else:
        notify_error(error_message(exc))
