"""Dock widget "Audit": attack image layers the way a forensic examiner would.

Controls and callbacks only: inputs and results are translated by
:mod:`napari_dippas.workers.audit`, the computation (:func:`dippas.audit.audit`)
runs in a thread worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
    Table,
)

from ..workers.audit import (
    COLUMNS,
    audit_task,
    heatmap_layers,
    report_rows,
    summary_text,
)
from ..workers.core_task import CoreTask, error_message
from ..workers.events import TaskProgress
from ._common import (
    ClosedFlag,
    fingerprint_layers,
    layer_by_name,
    notify_error,
    notify_info,
    notify_task_end,
    photo_layers,
    start_task,
)

if TYPE_CHECKING:
    import napari

#: False-alarm probabilities offered (the core's default first).
PFA_CHOICES = ("0.001", "0.01", "0.0001", "1e-06")
NO_FINGERPRINT = "(camera photos)"


class AuditWidget(Container):
    """Per-image and set tests of image layers against a fingerprint, with verdicts.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self._task: CoreTask | None = None
        self._worker = None
        self._names: list[str] = []
        self.report = None
        self._closed = ClosedFlag(self)
        self._closed.on_close(self.stop)

        self.images = Select(label="images", choices=self._image_choices)
        self.fingerprint = ComboBox(label="fingerprint", choices=self._fingerprint_choices)
        self.photos = FileEdit(mode="d", label="or camera photos")
        self.crop = SpinBox(value=0, min=0, max=100_000, label="centre crop (0 = none)")
        self.pfa = ComboBox(label="false alarm", choices=PFA_CHOICES, value=PFA_CHOICES[0])
        self.run_btn = PushButton(text="Audit")
        self.stop_btn = PushButton(text="Stop", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.summary = Label(value="")
        self.table = Table(value={c: [] for c in COLUMNS})
        self.extend([self.images, self.fingerprint, self.photos, self.crop, self.pfa,
                     self.run_btn, self.stop_btn, self.progress, self.summary, self.table])
        self.run_btn.changed.connect(self.run)
        self.stop_btn.changed.connect(self.stop)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self.reset_choices)

    def _image_choices(self, widget=None) -> list[str]:
        return [layer.name for layer in photo_layers(self.viewer)]

    def _fingerprint_choices(self, widget=None) -> list[str]:
        return [NO_FINGERPRINT] + [layer.name for layer in fingerprint_layers(self.viewer)]

    def _inputs(self) -> tuple[list[str], np.ndarray | None, str | None]:
        from dippas.errors import DippasInputError

        names = list(self.images.value or [])
        if not names:
            raise DippasInputError("choose at least one image layer")
        k_name = self.fingerprint.value
        k = None if k_name in (None, NO_FINGERPRINT) else np.asarray(
            layer_by_name(self.viewer, k_name).data)
        folder = str(self.photos.value or "")
        photos = folder if folder not in ("", ".") else None
        if k is None and photos is None:
            raise DippasInputError("choose a fingerprint layer or a folder of camera photos")
        return names, k, photos if k is None else None

    def run(self) -> None:
        """Start the audit in a worker; fill the table and add heatmaps when done."""
        try:
            names, k, photos = self._inputs()
            data = [layer_by_name(self.viewer, n).data for n in names]
        except Exception as exc:
            notify_error(error_message(exc))
            return
        self._names = names
        self.progress.value = 0
        self._task = audit_task(data, k, photos, float(self.pfa.value), self.crop.value or None)
        self._set_running(True)
        self._worker = start_task(self._task, on_event=self._on_event, on_done=self._on_done,
                                  on_error=self._on_error)

    def _on_event(self, event: TaskProgress) -> None:
        if self._closed:
            return
        if event.total:
            self.progress.max = event.total
        self.progress.value = min(event.done, self.progress.max)

    def _on_done(self, report) -> None:
        if self._closed:
            return
        self._set_running(False)
        self.report = report
        rows = report_rows(report, self._names)
        self.table.value = {c: [r[c] for r in rows] for c in COLUMNS}
        self.summary.value = summary_text(report)
        for data, kwargs in heatmap_layers(report, self._names):
            if kwargs["name"] in self.viewer.layers:
                self.viewer.layers.remove(kwargs["name"])
            self.viewer.add_image(data, **kwargs)
        notify_info(self.summary.value)

    def _on_error(self, exc: BaseException) -> None:

        if self._closed:
            return
        self._set_running(False)
        notify_task_end(exc, "audit")

    def _set_running(self, running: bool) -> None:
        self.run_btn.enabled = not running
        self.stop_btn.enabled = running

    def stop(self) -> None:
        """Stop a running audit at its next check."""
        if self._task is not None:
            self._task.cancel()
