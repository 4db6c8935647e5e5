"""Dock widget: inpainting-based anonymization (ICIP 2017), blind.

Every pixel is inpainted from its neighbours (holes of 3 or 5 pixels, L2 or
TV regularizer); optionally the pixels near edges are taken from a denoised
original. The core runs in a plain thread with progress and Stop
(:class:`~napari_dippas.workers.core_task.CoreTask`); the widget adds the anonymized
image, the edge mask (a labels layer) and a report: PSNR and SSIM against
the input and, when a fingerprint layer is chosen, NCC and PCE of the input
and of the output against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from dippas.report import report_lines
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    Label,
    ProgressBar,
    PushButton,
)

from .._layers import image_to_uint8
from ..workers.core_task import CoreTask, error_message
from ..workers.events import TaskProgress
from ..workers.inpainting import InpaintingOutput, inpaint_with_report
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

NO_FINGERPRINT = "(none)"


class InpaintingWidget(Container):
    """Inpainting anonymization of an image layer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        from dippas.inpainting import available_denoisers
        from dippas.inpainting.profiles import DEFAULT_PROFILE, PROFILES

        super().__init__(labels=True)
        self.viewer = napari_viewer
        self._task: CoreTask | None = None
        self._worker = None
        self._source: str | None = None
        self.output: InpaintingOutput | None = None

        denoisers = available_denoisers()
        self.image = ComboBox(label="image", choices=self._image_choices)
        self.profile = ComboBox(label="profile", choices=list(PROFILES), value=DEFAULT_PROFILE)
        self.hole = ComboBox(label="hole (pixels)", choices=[5, 3])
        self.reg = ComboBox(label="regularizer", choices=["l2", "tv"])
        self.edges = CheckBox(value=True, text="reconstruct edges from a denoised original")
        self.denoiser = ComboBox(label="denoiser", choices=denoisers)
        self.fingerprint = ComboBox(label="fingerprint K (report)", choices=self._fp_choices)
        self.run_btn = PushButton(text="Anonymize")
        self.stop_btn = PushButton(text="Stop", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.report = Label(value="")
        buttons = Container(widgets=[self.run_btn, self.stop_btn], layout="horizontal",
                            labels=False)
        buttons.margins = (0, 0, 0, 0)
        self.extend([self.image, self.profile, self.hole, self.reg, self.edges, self.denoiser,
                     self.fingerprint, buttons, self.progress, self.report])

        self.edges.changed.connect(lambda v: setattr(self.denoiser, "enabled", bool(v)))
        self.profile.changed.connect(self._load_profile)
        self._load_profile(self.profile.value)
        self.run_btn.changed.connect(self.run)
        self.stop_btn.changed.connect(self.stop)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self.reset_choices)
        self._closed = ClosedFlag(self)
        self._closed.on_close(self.stop)

    def _image_choices(self, widget=None) -> list[str]:
        return [layer.name for layer in photo_layers(self.viewer)]

    def _fp_choices(self, widget=None) -> list[str]:
        return [NO_FINGERPRINT] + [layer.name for layer in fingerprint_layers(self.viewer)]

    @property
    def running(self) -> bool:
        """Whether an anonymization is running."""
        return self._worker is not None

    def _load_profile(self, name: str) -> None:
        """Show the options of profile ``name`` (the user may then change them)."""
        from dippas.inpainting.profiles import get_profile

        p = get_profile(name)
        self.hole.value, self.reg.value, self.edges.value = p.hole, p.reg, p.edges
        if p.denoiser in self.denoiser.choices:
            self.denoiser.value = p.denoiser

    def job(self):
        """The :class:`dippas.jobs.InpaintingJob` of the controls (checked)."""
        from dippas.inpainting.profiles import get_profile
        from dippas.jobs import InpaintingJob

        wanted = get_profile(self.profile.value).denoiser
        # a profile whose denoiser is not installed keeps it, so the job names the missing extra
        denoiser = self.denoiser.value if wanted in self.denoiser.choices else None
        return InpaintingJob(profile=self.profile.value, hole=int(self.hole.value),
                             reg=self.reg.value, edges=bool(self.edges.value), denoiser=denoiser)

    def run(self) -> None:
        """Start the anonymization of the chosen image layer."""
        from dippas.errors import DippasInputError

        if self.running:
            return
        try:
            if not self.image.value:
                raise DippasInputError("choose an image layer to anonymize")
            image = image_to_uint8(layer_by_name(self.viewer, self.image.value).data)
            k = None
            if self.fingerprint.value and self.fingerprint.value != NO_FINGERPRINT:
                k = np.asarray(layer_by_name(self.viewer, self.fingerprint.value).data,
                               dtype=np.float32)
            job = self.job()
        except Exception as exc:
            notify_error(error_message(exc))
            return
        self._source = self.image.value
        self.progress.value = 0
        self.report.value = ""
        self._task = CoreTask(inpaint_with_report, np.ascontiguousarray(image), k, job=job)
        self._worker = start_task(self._task, on_event=self._on_event, on_done=self._on_done,
                                  on_error=self._on_error)
        self._set_running(True)

    def stop(self) -> None:
        """Stop a running anonymization at its next step."""
        if self._task is not None:
            self._task.cancel()

    def _set_running(self, running: bool) -> None:
        self.run_btn.enabled = not running
        self.stop_btn.enabled = running

    def _on_event(self, event: TaskProgress) -> None:
        if self._closed:
            return
        self.progress.max = max(int(event.total or 1), 1)
        self.progress.value = min(int(event.done), self.progress.max)

    def _on_done(self, out: InpaintingOutput | None) -> None:
        if self._closed:
            return
        self._worker = None
        self._set_running(False)
        if out is None:
            return
        self.output = out
        name = f"{self._source} anonymized"
        rgb = out.image.ndim == 3
        limits = (0, 65535) if out.image.dtype == np.uint16 else (0, 255)
        meta = {"dippas_kind": "anonymized", "method": "inpainting", "params": out.params}
        if name in self.viewer.layers:
            self.viewer.layers[name].data = out.image
            self.viewer.layers[name].metadata.update(meta)
        else:
            self.viewer.add_image(out.image, name=name, rgb=rgb, contrast_limits=limits,
                                  metadata=meta)
        edge_name = f"{self._source} edge mask"
        if out.edges is not None:
            mask = out.edges.astype(np.uint8)
            if edge_name in self.viewer.layers:
                self.viewer.layers[edge_name].data = mask
            else:
                self.viewer.add_labels(mask, name=edge_name, opacity=0.4,
                                       metadata={"dippas_kind": "edge_mask"})
        self.report.value = "<br>".join(report_lines(out.report))
        notify_info(f"inpainting done: PSNR {out.report['psnr']:.2f} dB")

    def _on_error(self, exc: BaseException) -> None:

        if self._closed:
            return
        self._worker = None
        self._set_running(False)
        notify_task_end(exc, "inpainting")
