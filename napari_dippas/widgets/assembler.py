"""Dock widget: DIPPAS block assembly of a run folder, with per-block NCC heatmaps.

Choose B (block side), L (blocks averaged) and τ_PSNR; the widget shows

- the assembled image (layer "assembled");
- a per-block NCC heatmap (layer "block NCC", diverging colormap, scaled
  over the image) of either the snapshot under the dims slider of the
  tile's snapshot layer, or of the assembled result;
- a report: PSNR and SSIM against the input and, for an aware run, NCC and
  PCE of the input and of the result against the run's K.

Every change (controls, slider) is computed in a latest-wins worker
(:class:`~napari_dippas.widgets._latest.LatestWins`): the assembly reuses
the core's cached cell statistics, so B, L and τ are interactive, and the
GUI never waits. Export writes the assembled image through the core's
metadata-free writer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from dippas.dip.store import RunStore, is_run_folder
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
    RadioButtons,
    SpinBox,
)

from .._layers import heatmap_layer_kwargs
from .._state import last_run
from ..run_layers import find_snapshot_layer, run_layers
from ..workers.assembly import (
    RESULT,
    SNAPSHOT,
    AssemblyRequest,
    AssemblyView,
    compute_assembly,
)
from ..workers.core_task import error_message
from ._common import ClosedFlag, notify_error, notify_info
from ._latest import LatestWins

if TYPE_CHECKING:
    import napari
    from dippas.assembly import RunAssembler

#: Block sides offered (pixels), kept when a multiple of the run's cell size.
BLOCK_SIDES = (32, 64, 128, 256, 512)


def block_choices(cell: int, max_side: int) -> list[tuple[str, int | str]]:
    """``(label, value)`` choices of B: the paper's sides that are multiples of ``cell``.

    Sides larger than the image are left out; ``'whole'`` (one block per
    tile) is always offered.
    """
    sides = [b for b in BLOCK_SIDES if b % cell == 0 and b <= max_side]
    return [(str(b), b) for b in sides] + [("whole", "whole")]


class AssemblerWidget(Container):
    """Interactive assembly of a DIPPAS run folder.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        from dippas.jobs import DippasJob

        defaults = DippasJob()

        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.assembler: RunAssembler | None = None
        self.result: AssemblyView | None = None
        self._path: str | None = None
        self._assembled_layer = None
        self._heat_layer = None
        self._loading = False
        self._runner = LatestWins(compute_assembly, self._show, self._failed)

        self.run_dir = FileEdit(mode="d", label="run folder")
        self.load_btn = PushButton(text="Load run")
        self.use_last_btn = PushButton(text="Use last run", enabled=last_run.path is not None)
        self.tile = ComboBox(label="tile", choices=self._tile_choices)
        self.block = ComboBox(label="B (block side)", choices=self._block_choices)
        self.blocks = SpinBox(label="L (blocks averaged)", min=1, max=100, value=defaults.blocks)
        self.tau = FloatSpinBox(label="τ PSNR (dB, 0 = all)", min=0.0, max=100.0, step=0.5,
                                value=0.0)
        self.source = RadioButtons(label="heatmap of", choices=[SNAPSHOT, RESULT], value=SNAPSHOT,
                                   orientation="horizontal")
        self.heat_info = Label(value="")
        self.report = Label(value="")
        self.export_path = FileEdit(mode="w", label="export as", filter="*.png *.tif *.tiff")
        self.overwrite = CheckBox(value=False, text="overwrite an existing file")
        self.export_btn = PushButton(text="Export assembled image")
        buttons = Container(widgets=[self.load_btn, self.use_last_btn], layout="horizontal",
                            labels=False)
        buttons.margins = (0, 0, 0, 0)

        self.extend([self.run_dir, buttons, self.tile, self.block, self.blocks, self.tau,
                     self.source, self.heat_info, self.report,
                     Label(value="<b>Export</b>"), self.export_path, self.overwrite,
                     self.export_btn])

        self.load_btn.changed.connect(self._load_clicked)
        self.use_last_btn.changed.connect(self.use_last_run)
        self.run_dir.changed.connect(self._on_run_dir)
        for w in (self.tile, self.block, self.blocks, self.tau):
            w.changed.connect(self.recompute)
        self.source.changed.connect(self._on_source)
        self.export_btn.changed.connect(self.export)
        self.viewer.dims.events.current_step.connect(self._on_step)
        last_run.changed.connect(self._on_last_run)
        # the registry outlives the widget: stop listening when the widget goes
        self._closed = ClosedFlag(self)
        callback = self._on_last_run
        self._closed.on_close(lambda: last_run.changed.disconnect(callback))

    # ------------------------------------------------------------------ choices
    def _tile_choices(self, widget=None) -> list[str]:
        return [] if self.assembler is None else [g.name for g in self.assembler.store.tiles]

    def _block_choices(self, widget=None) -> list[tuple[str, int | str]]:
        if self.assembler is None:
            return []
        max_side = max(max(g.h, g.w) for g in self.assembler.store.tiles)
        return block_choices(self.assembler.cell_size, max_side)

    # ------------------------------------------------------------------ loading
    def _on_last_run(self, path: str) -> None:
        try:
            self.use_last_btn.enabled = True
        except RuntimeError:  # the Qt widget is gone
            last_run.changed.disconnect(self._on_last_run)

    def use_last_run(self) -> None:
        """Load the session's last run (from the inversion widget)."""
        if last_run.path is None:
            notify_error("no run yet in this session; run an inversion or choose a run folder")
            return
        self.load(last_run.path)

    def _on_run_dir(self, value) -> None:
        """A folder that holds a run is loaded as soon as it is chosen (quietly otherwise)."""
        path = Path(str(value))
        if not self._loading and is_run_folder(path) \
                and os.fspath(path) != self._path:
            self.load(path)

    def _load_clicked(self) -> None:
        self.load(str(self.run_dir.value or ""))

    def load(self, path: str | os.PathLike) -> bool:
        """Open a run folder: its layers (unless shown already) and the controls.

        Returns
        -------
        bool
            False (with a notification) when ``path`` is not a usable run.
        """
        from dippas.assembly import RunAssembler

        try:
            if str(path) in ("", "."):
                from dippas.errors import DippasInputError

                raise DippasInputError("choose a DIPPAS run folder")
            asm = RunAssembler(path)
        except Exception as exc:
            notify_error(error_message(exc))
            return False
        self.assembler = asm
        self._path = os.fspath(path)
        self.result = None
        self._loading = True
        try:
            from dippas.jobs import DippasJob

            default = DippasJob().block_size

            self.run_dir.value = path
            self.tile.reset_choices()
            self.block.reset_choices()
            tiles = list(self.tile.choices)
            values = list(self.block.choices)
            self.block.value = default if default in values else values[0]
            self.tile.value = tiles[0]
            self.tile.visible = len(tiles) > 1
        finally:
            self._loading = False
        if not any(find_snapshot_layer(self.viewer, self._path, t) for t in tiles):
            for data, kwargs, _ in run_layers(self._path):
                self.viewer.add_image(data, **kwargs)
        self._assembled_layer = None
        self._heat_layer = None
        self.recompute()
        return True

    # ------------------------------------------------------------------ requests
    def _current_frame(self) -> int | None:
        """Index of the snapshot under the slider in the tile's snapshot layer."""
        layer = find_snapshot_layer(self.viewer, self._path, self.tile.value)
        if layer is None:
            return None
        n = layer.data.shape[0]
        axis = self.viewer.dims.ndim - 3
        step = int(self.viewer.dims.current_step[axis]) if axis >= 0 else 0
        return int(np.clip(step, 0, n - 1))

    def _on_step(self, event=None) -> None:
        if self._closed:
            return
        if self.assembler is not None and self.source.value == SNAPSHOT:
            self.recompute()

    def _on_source(self, value) -> None:
        if self._assembled_layer is not None and self._assembled_layer in self.viewer.layers:
            self._assembled_layer.visible = value == RESULT
        self.recompute()

    def recompute(self, *_) -> None:
        """Ask for the assembly and heatmap of the current controls (latest wins)."""
        if self._closed or self.assembler is None or self._loading or self.block.value is None:
            return
        tau = float(self.tau.value) or None
        self._runner.submit(AssemblyRequest(block=self.block.value, blocks=int(self.blocks.value),
                                     tau=tau, source=self.source.value, tile=self.tile.value,
                                     frame=self._current_frame(), previous=self.result,
                                     assembler=self.assembler))

    @property
    def busy(self) -> bool:
        """Whether a computation is running or waiting."""
        return self._runner.busy

    # ------------------------------------------------------------------ GUI side
    def _show(self, res: AssemblyView) -> None:
        if self._closed:
            return
        self.result = res
        layers = self.viewer.layers
        meta = {"dippas_kind": "assembled", "run": self._path}
        if self._assembled_layer is None or self._assembled_layer not in layers:
            self._assembled_layer = self.viewer.add_image(
                res.image, name="assembled", rgb=True, contrast_limits=(0, 255), metadata=meta,
                visible=self.source.value == RESULT)
        elif self._assembled_layer.data is not res.image:
            self._assembled_layer.data = res.image
        kwargs = heatmap_layer_kwargs(res.heatmap, res.heat_block, origin=res.heat_origin)
        if self._heat_layer is None or self._heat_layer not in layers:
            self._heat_layer = self.viewer.add_image(res.heatmap, **kwargs)
        else:
            layer = self._heat_layer
            layer.data = res.heatmap
            layer.scale = kwargs["scale"]
            layer.translate = kwargs["translate"]
            layer.contrast_limits_range = kwargs["contrast_limits"]
            layer.contrast_limits = kwargs["contrast_limits"]
            layer.metadata.update(kwargs["metadata"])
        if layers.index(self._heat_layer) < layers.index(self._assembled_layer):
            layers.move(layers.index(self._heat_layer), len(layers))
        self.heat_info.value = res.heat_text
        self.report.value = self._report_text(res)

    @staticmethod
    def _report_text(res: AssemblyView) -> str:
        from dippas.report import report_lines

        text = "<br>".join(report_lines(res.report))
        if res.fallback:
            text += "<br>no snapshot reaches τ: the best-PSNR ones were used"
        return text

    def _failed(self, exc: BaseException) -> None:
        if self._closed:
            return
        notify_error(error_message(exc))

    # ------------------------------------------------------------------ export
    def export(self) -> Path | None:
        """Write the assembled image without metadata; return the path written."""
        from dippas.errors import DippasInputError
        from dippas.io import save_image

        try:
            if self.result is None:
                raise DippasInputError("nothing assembled yet; load a run first")
            target = str(self.export_path.value or "")
            if target in ("", "."):
                raise DippasInputError("choose a file to export to (.png or .tif)")
            inputs = [RunStore(self._path).input_path] if self._path else []
            out = save_image(target, self.result.image, inputs=inputs, force=self.overwrite.value)
        except Exception as exc:
            notify_error(error_message(exc))
            return None
        notify_info(f"saved {out}")
        return out
