"""Dock widget: estimate a camera fingerprint, save it, and test attribution."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
)

from .._layers import fingerprint_layer_kwargs, image_to_uint8
from ..workers.core_task import CoreTask, error_message
from ..workers.events import TaskProgress
from ._common import (
    image_layers,
    layer_by_name,
    notify_error,
    notify_info,
    notify_task_end,
    start_task,
)

if TYPE_CHECKING:
    import napari


class FingerprintWidget(Container):
    """Fingerprint estimation from flat-fields (a folder or image layers) and attribution.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self._task: CoreTask | None = None
        self._worker = None

        self.folder = FileEdit(mode="d", label="flat-field folder")
        self.layers = Select(label="or image layers", choices=self._image_choices)
        self.sigma = FloatSpinBox(value=3.0, min=0.1, max=50.0, step=0.5, label="sigma (0-255)")
        self.crop = SpinBox(value=0, min=0, max=100_000, label="centre crop (0 = none)")
        self.crop_common = CheckBox(value=False, text="crop to the smallest common size")
        self.estimate_btn = PushButton(text="Estimate fingerprint")
        self.stop_btn = PushButton(text="Stop", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.save_path = FileEdit(mode="w", label="save as", filter="*.npy *.tif")
        self.save_btn = PushButton(text="Save fingerprint layer")
        self.attr_image = ComboBox(label="image", choices=self._image_choices)
        self.attr_fp = ComboBox(label="fingerprint", choices=self._fingerprint_choices)
        self.attr_btn = PushButton(text="Check attribution")
        self.result = Label(value="")

        self.extend([
            Label(value="<b>Estimate</b>"), self.folder, self.layers, self.sigma, self.crop,
            self.crop_common, self.estimate_btn, self.stop_btn, self.progress,
            self.save_path, self.save_btn,
            Label(value="<b>Attribution</b>"), self.attr_image, self.attr_fp, self.attr_btn,
            self.result,
        ])
        self.estimate_btn.changed.connect(self.estimate)
        self.stop_btn.changed.connect(self.stop)
        self.save_btn.changed.connect(self.save)
        self.attr_btn.changed.connect(self.check_attribution)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self.reset_choices)

    # ------------------------------------------------------------------ choices
    def _image_choices(self, widget=None) -> list[str]:
        return [layer.name for layer in image_layers(self.viewer)
                if layer.metadata.get("dippas_kind") is None]

    def _fingerprint_choices(self, widget=None) -> list[str]:
        return [layer.name for layer in image_layers(self.viewer) if layer.ndim == 2
                and not layer.rgb and np.issubdtype(np.asarray(layer.data).dtype, np.floating)]

    # ------------------------------------------------------------------ estimate
    def _sources(self) -> list:
        folder = str(self.folder.value or "")
        if folder not in ("", "."):
            from dippas.io import list_images

            return list(list_images(folder))
        names = list(self.layers.value or [])
        if not names:
            from dippas.errors import DippasInputError

            raise DippasInputError("choose a flat-field folder or at least one image layer")
        return [image_to_uint8(layer_by_name(self.viewer, n).data) for n in names]

    def estimate(self) -> None:
        """Estimate K in a worker; add it as a layer when done."""
        from dippas.fingerprint import estimate_fingerprint

        try:
            sources = self._sources()
        except Exception as exc:
            notify_error(error_message(exc))
            return
        crop = "common" if self.crop_common.value else (self.crop.value or None)
        self.progress.max = len(sources)
        self.progress.value = 0
        self._task = CoreTask(estimate_fingerprint, sources, sigma=self.sigma.value, crop=crop)
        self._set_running(True)
        self._worker = start_task(self._task, on_event=self._on_event, on_done=self._on_done,
                                  on_error=self._on_error)

    def _on_event(self, event: TaskProgress) -> None:
        self.progress.value = event.done

    def _on_done(self, k: np.ndarray | None) -> None:
        self._set_running(False)
        if k is not None:
            kwargs = fingerprint_layer_kwargs(k, "fingerprint")
            self.viewer.add_image(k, **kwargs)
            notify_info(f"fingerprint estimated: {k.shape[0]}x{k.shape[1]}")

    def _on_error(self, exc: BaseException) -> None:

        self._set_running(False)
        notify_task_end(exc, "fingerprint estimation")

    def _set_running(self, running: bool) -> None:
        self.estimate_btn.enabled = not running
        self.stop_btn.enabled = running

    def stop(self) -> None:
        """Stop a running estimation at the next image."""
        if self._task is not None:
            self._task.cancel()

    # ------------------------------------------------------------------ save
    def save(self) -> None:
        """Save the selected (or last) fingerprint layer, atomically and without metadata."""
        from dippas.io import save_fingerprint

        names = self._fingerprint_choices()
        name = self.attr_fp.value or (names[-1] if names else None)
        try:
            if name is None:
                from dippas.errors import DippasInputError

                raise DippasInputError("no fingerprint layer to save")
            path = Path(str(self.save_path.value))
            out = save_fingerprint(path, layer_by_name(self.viewer, name).data, force=True)
            notify_info(f"saved {out}")
        except Exception as exc:
            notify_error(error_message(exc))

    # ------------------------------------------------------------------ attribution
    def check_attribution(self) -> dict | None:
        """NCC, both PCEs and the verdict of an image layer against a fingerprint layer."""
        from dippas.correlation import attribution_scores

        try:
            if not self.attr_image.value or not self.attr_fp.value:
                from dippas.errors import DippasInputError

                raise DippasInputError("choose an image layer and a fingerprint layer")
            img = image_to_uint8(layer_by_name(self.viewer, self.attr_image.value).data)
            k = np.asarray(layer_by_name(self.viewer, self.attr_fp.value).data)
            scores = attribution_scores(img, k, sigma=self.sigma.value)
        except Exception as exc:
            notify_error(error_message(exc))
            self.result.value = ""
            return None
        verdict = "MATCH" if scores["match"] else "no match"
        self.result.value = (f"NCC {scores['ncc']:+.4f}   PCE {scores['pce']:.1f}   "
                             f"PCE(search) {scores['pce_search']:.1f}   {verdict}")
        return scores
