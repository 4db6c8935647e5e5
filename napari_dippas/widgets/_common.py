"""Small helpers shared by the dock widgets: layers, notifications, workers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._tasks import CoreTask


def image_layers(viewer) -> list:
    """Image layers of the viewer, in order."""
    from napari.layers import Image

    return [layer for layer in viewer.layers if isinstance(layer, Image)]


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


def start_task(task: CoreTask, on_event: Callable[[tuple], None],
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
