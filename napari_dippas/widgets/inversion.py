"""Dock widget: the DIPPAS deep-image-prior inversion, live.

The inversion runs in a plain thread (:class:`~napari_dippas.workers.core_task.CoreTask`
over :func:`~napari_dippas.workers.inversion.drive_inversion`; torch is slow
inside napari's thread workers, docs/plugin.md) and reports through
throttled events that a generator worker hands to the GUI thread:

- progress about every 100 ms: the status line, the progress bar and the
  PSNR, gamma and loss curves (redrawn at most twice a second);
- the newest snapshot at most once a second: the "DIP output" layer shows
  it, and the tile's snapshot stack layer is re-pointed at the on-disk store
  (a memory map: frames are read only when shown).

Stop and Pause set the core's cancel token: the inversion stops after the
current iteration and checkpoints, so the run can be resumed (Resume opens
the run in the folder field and continues it). After a run ends or is
stopped, its folder is published as the session's last run
(:data:`napari_dippas._state.last_run`) for the assembler widget.
"""

from __future__ import annotations

import time
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
    RadioButtons,
    SpinBox,
)

from .._layers import image_to_uint8
from .._state import last_run
from ..run_layers import (
    find_snapshot_layer,
    refresh_snapshot_layer,
    snapshot_layer_kwargs,
)
from ..workers.core_task import CoreTask, error_message
from ..workers.events import (
    CellsProgress,
    RunProgress,
    RunStarted,
    SnapshotReady,
    WorkerEvent,
)
from ..workers.inversion import drive_inversion
from ._common import (
    ClosedFlag,
    fingerprint_layers,
    layer_by_name,
    notify_error,
    notify_info,
    photo_layers,
    start_task,
)
from ._curves import CurvesCanvas

if TYPE_CHECKING:
    import napari
    from dippas.dip import Preset, RunSummary

def default_run_dir(root: Path | None = None) -> Path:
    """A new, not yet existing run folder ``root/run-YYYYmmdd-HHMMSS[-N]``.

    ``root`` defaults to the per-user private folder :func:`napari_dippas._state.default_run_root`.
    """
    if root is None:
        from .._state import default_run_root

        root = default_run_root()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"run-{stamp}"
    i = 1
    while path.exists():
        path = root / f"run-{stamp}-{i}"
        i += 1
    return path


#: Inversions running in this session (stopped cleanly when the application quits).
_RUNNING: set[CoreTask] = set()
_QUIT_HOOKED = False


def _stop_running_tasks(timeout: float = 30.0) -> None:
    """Cancel every running inversion and wait for its thread (one iteration)."""
    for task in list(_RUNNING):
        task.cancel()
    for task in list(_RUNNING):
        task.join(timeout)


def _cancel_all_on_quit() -> None:
    global _QUIT_HOOKED
    if _QUIT_HOOKED:
        return
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(_stop_running_tasks)
        _QUIT_HOOKED = True


def _job_target_psnr() -> float:
    """The job's default target PSNR of the assembled output (0 when it has none)."""
    from dippas.jobs import DippasJob

    return DippasJob().target_psnr or 0.0


def _is_run(path: Path) -> bool:
    from dippas.dip.store import is_run_folder

    return is_run_folder(path)


class InversionWidget(Container):
    """DIPPAS inversion of an image layer into a run folder, with live layers and curves.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Notes
    -----
    :meth:`add_preset` registers a custom :class:`dippas.dip.Preset` (for
    example a tiny network for tests or demos) next to ``fast`` and
    ``paper``.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        from dippas.dip import PRESETS
        from dippas.dip.device import available_devices
        from dippas.dip.tiling import DEFAULT_TILE, MIN_SIDE, default_overlap

        super().__init__(labels=True)
        self.viewer = napari_viewer
        self._presets: dict[str, Preset] = dict(PRESETS)
        self._task: CoreTask | None = None
        self._worker = None
        self._run_path: str | None = None
        self._stop_kind: str | None = None
        self._curve_tile: str | None = None
        self._output_layer = None
        self._auto_dir: Path | None = default_run_dir()
        self.last_info: dict | None = None
        self.summary: RunSummary | None = None

        self.image = ComboBox(label="image", choices=self._image_choices)
        self.mode = RadioButtons(label="mode", choices=["aware", "blind"], value="aware",
                                 orientation="horizontal")
        self.fingerprint = ComboBox(label="fingerprint K", choices=self._fingerprint_choices)
        self.preset = ComboBox(label="preset", choices=self._preset_choices, value="fast")
        self.device = ComboBox(label="device", choices=list(available_devices()))
        self.max_iter = SpinBox(label="iterations", min=1, max=10_000_000, step=100)
        # 0 switches the assembled-output stop rule off (dippas.assembly.stop_rule)
        self.target_psnr = FloatSpinBox(label="target PSNR, assembled (dB; 0: off)", min=0.0,
                                        max=100.0, step=0.5, value=_job_target_psnr())
        self.stop_psnr = FloatSpinBox(label="stop PSNR (dB)", min=1.0, max=100.0, step=0.5)
        self.save_psnr = FloatSpinBox(label="save PSNR (dB)", min=1.0, max=100.0, step=0.5)
        self.warm_start = CheckBox(text="warm start (packaged initial weights)", value=False)
        # -1: the seed is derived from the photo's pixels, like every other face
        self.seed = SpinBox(label="seed (-1: from the photo)", min=-1, max=2**31 - 1, value=-1)
        self.tile_size = SpinBox(label="tile side (pixels)", min=MIN_SIDE, max=8192, step=16,
                                 value=DEFAULT_TILE)
        # less than half the tile side, checked by the job
        self.tile_overlap = SpinBox(label="tile overlap (pixels)", min=0, max=4095, step=8,
                                    value=default_overlap(DEFAULT_TILE))
        self.run_dir = FileEdit(mode="d", label="run folder", value=self._auto_dir)
        self.run_btn = PushButton(text="Run")
        self.pause_btn = PushButton(text="Pause", enabled=False)
        self.stop_btn = PushButton(text="Stop", enabled=False)
        self.resume_btn = PushButton(text="Resume", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.status = Label(value="")
        buttons = Container(widgets=[self.run_btn, self.pause_btn, self.stop_btn, self.resume_btn],
                            layout="horizontal", labels=False)
        buttons.margins = (0, 0, 0, 0)

        self.extend([self.image, self.mode, self.fingerprint, self.preset, self.device,
                     self.max_iter, self.target_psnr, self.stop_psnr, self.save_psnr,
                     self.warm_start, self.seed, self.tile_size, self.tile_overlap,
                     self.run_dir,
                     buttons, self.progress, self.status])
        self.curves = CurvesCanvas()
        self.curves.apply_theme(self.viewer.theme)
        self.viewer.events.theme.connect(lambda _e: self.curves.apply_theme(self.viewer.theme))
        self.native.layout().addWidget(self.curves.widget)
        self._load_preset(self.preset.value)

        self.preset.changed.connect(self._load_preset)
        self.mode.changed.connect(self._on_mode)
        self.tile_size.changed.connect(self._on_tile_size)
        self.run_dir.changed.connect(self._on_run_dir)
        self.run_btn.changed.connect(self.run)
        self.pause_btn.changed.connect(self.pause)
        self.stop_btn.changed.connect(self.stop)
        self.resume_btn.changed.connect(self.resume)
        self.save_psnr.changed.connect(self._show_thresholds)
        self.stop_psnr.changed.connect(self._show_thresholds)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self.reset_choices)
        _cancel_all_on_quit()
        # closing the dock widget (or the viewer) stops the inversion cleanly
        self._closed = ClosedFlag(self)
        self._closed.on_close(lambda: self._task is not None and self._task.cancel())

    # ------------------------------------------------------------------ choices
    def _image_choices(self, widget=None) -> list[str]:
        return [layer.name for layer in photo_layers(self.viewer)]

    def _fingerprint_choices(self, widget=None) -> list[str]:
        return [layer.name for layer in fingerprint_layers(self.viewer)]

    def _preset_choices(self, widget=None) -> list[str]:
        return list(self._presets)

    def add_preset(self, preset: Preset, name: str | None = None, select: bool = True) -> str:
        """Offer a custom preset in the preset list.

        Parameters
        ----------
        preset : dippas.dip.Preset
        name : str, optional
            Name in the list and in the run's ``params.json`` (default the
            preset's own name).
        select : bool
            Select it (and load its values into the controls).

        Returns
        -------
        str
            The name it is listed under.
        """
        from dippas.dip.presets import register_preset

        registered = register_preset(preset, name)
        name = registered.name
        self._presets[name] = registered
        self.preset.reset_choices()
        if select:
            self.preset.value = name
            self._load_preset(name)
        return name

    def _load_preset(self, name: str) -> None:
        p = self._presets.get(name)
        if p is None:
            return
        self.max_iter.value = p.max_iter
        self.stop_psnr.value = p.stop_psnr
        self.save_psnr.value = p.save_psnr
        self.warm_start.value = p.warm_start
        self._update_buttons()
        self._show_thresholds()

    def _show_thresholds(self, *_) -> None:
        self.curves.set_thresholds(self.save_psnr.value, self.stop_psnr.value)

    def _on_tile_size(self, tile: int) -> None:
        """A tile too small for the overlap shown takes the default overlap of its size."""
        from dippas.dip.tiling import default_overlap

        if 2 * int(self.tile_overlap.value) >= int(tile):
            self.tile_overlap.value = default_overlap(tile)

    def _on_mode(self, mode: str) -> None:
        self.fingerprint.enabled = mode == "aware" and not self.running

    def _on_run_dir(self, value) -> None:
        """Choosing a folder that holds a run loads its settings (for Resume)."""
        path = Path(str(value))
        if self.running or not _is_run(path):
            self._update_buttons()
            return
        from dippas.dip import Preset, RunStore

        try:
            params = RunStore(path).params
            preset = Preset.from_dict(params["preset_parameters"])
        except Exception:
            self._update_buttons()
            return
        if preset.name not in self._presets:
            self.add_preset(preset, select=False)
        self.preset.value = preset.name
        self.mode.value = params.get("mode", "aware")
        self.max_iter.value = preset.max_iter
        self.stop_psnr.value = preset.stop_psnr
        self.save_psnr.value = preset.save_psnr
        self.seed.value = preset.seed
        self.warm_start.value = preset.warm_start
        self.tile_size.value = int(params.get("tile", self.tile_size.value))
        self.tile_overlap.value = int(params["tile_overlap"])
        self._update_buttons()

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        """Whether an inversion is running."""
        return self._worker is not None

    def _update_buttons(self) -> None:
        running = self.running
        self.run_btn.enabled = not running
        self.pause_btn.enabled = running
        self.stop_btn.enabled = running
        self.resume_btn.enabled = not running and _is_run(Path(str(self.run_dir.value)))
        for w in (self.image, self.mode, self.preset, self.device, self.save_psnr, self.seed,
                  self.tile_size, self.tile_overlap, self.run_dir):
            w.enabled = not running
        self.warm_start.enabled = not running and self._has_warm_start()
        self.fingerprint.enabled = not running and self.mode.value == "aware"

    def _has_warm_start(self) -> bool:
        """Whether a warm start ships for the chosen preset's network."""
        from dippas.dip.warm_start import warm_start_path

        preset = self._presets.get(self.preset.value)
        return preset is not None and warm_start_path(preset).is_file()

    def _target_dir(self) -> Path:
        """The folder for a new run; a fresh default when the proposed one got used."""
        path = Path(str(self.run_dir.value))
        if self._auto_dir is not None and path == self._auto_dir:
            if path.exists() and any(path.iterdir()):
                self._auto_dir = default_run_dir()
                self.run_dir.value = self._auto_dir
                path = self._auto_dir
            path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # ------------------------------------------------------------------ actions
    def run(self) -> None:
        """Start a new inversion of the chosen image into the run folder."""
        from dippas.errors import DippasInputError
        from dippas.jobs import DippasJob

        if self.running:
            return
        try:
            if not self.image.value:
                raise DippasInputError("choose an image layer to invert")
            image = image_to_uint8(layer_by_name(self.viewer, self.image.value).data)
            fingerprint = None
            if self.mode.value == "aware":
                if not self.fingerprint.value:
                    raise DippasInputError(
                        "aware mode needs a fingerprint layer; choose one or switch to blind")
                fingerprint = np.asarray(layer_by_name(self.viewer, self.fingerprint.value).data,
                                         dtype=np.float32)
            job = DippasJob(mode=self.mode.value, preset=self.preset.value,
                            max_iter=self.max_iter.value, stop_psnr=self.stop_psnr.value,
                            save_psnr=self.save_psnr.value, target_psnr=self._target(),
                            warm_start=bool(self.warm_start.value),
                            seed=None if self.seed.value < 0 else self.seed.value,
                            tile=int(self.tile_size.value),
                            tile_overlap=int(self.tile_overlap.value), device=self.device.value)
            job.prepare(image, fingerprint)
            run_dir = self._target_dir()
        except Exception as exc:
            notify_error(error_message(exc))
            return
        create = {"job": job, "image": image, "fingerprint": fingerprint}
        self.curves.clear()
        self._run_path = str(run_dir)
        # the output layer exists before the first snapshot (adding a layer takes a moment)
        self._show_output(image if image.ndim == 3 else np.repeat(image[..., None], 3, 2), (0, 0))
        self._start(run_dir, create=create)

    def resume(self) -> None:
        """Continue the run in the folder field (after Pause, Stop, or a crash)."""
        if self.running:
            return
        from dippas.dip.store import RunStore
        from dippas.errors import DippasInputError
        from dippas.jobs import DippasJob

        run_dir = Path(str(self.run_dir.value))
        try:  # as on the command line: what defines the run cannot change on resume
            store = RunStore(run_dir)
            recorded = DippasJob.from_run(store.params)
            asked = recorded.replace(preset=self.preset.value, save_psnr=self.save_psnr.value,
                                     seed=self.seed.value if self.seed.value >= 0 else None,
                                     warm_start=bool(self.warm_start.value),
                                     tile=int(self.tile_size.value),
                                     tile_overlap=int(self.tile_overlap.value))
            asked = asked.for_image(store.input)  # e.g. a photo of one tile has no overlap
            changed = [k for k in ("preset", "save_psnr", "seed", "warm_start", "tile", "tile_overlap")
                       if getattr(asked, k) != getattr(recorded, k)]
            if changed:
                raise DippasInputError(f"{run_dir}: the run has {changed[0]} "
                                       f"{getattr(recorded, changed[0])}; it cannot change on resume")
            early_stop = recorded.with_values(target_psnr=self._target()).stop_rule()
        except Exception as exc:
            notify_error(error_message(exc))
            return
        open_kwargs = {"device": self.device.value, "max_iter": self.max_iter.value,
                       "stop_psnr": self.stop_psnr.value, "early_stop": early_stop}
        self._start(run_dir, open_kwargs=open_kwargs)

    def _target(self) -> float | None:
        """The target PSNR of the assembled output, None when switched off."""
        return float(self.target_psnr.value) if self.target_psnr.value > 0 else None

    def pause(self) -> None:
        """Stop after the current iteration, keeping everything for Resume."""
        self._cancel("pause")

    def stop(self) -> None:
        """Stop after the current iteration; the run stays resumable."""
        self._cancel("stop")

    def _cancel(self, kind: str) -> None:
        if self._task is not None and self.running:
            self._stop_kind = kind
            self._task.cancel()
            self.status.value = f"{'pausing' if kind == 'pause' else 'stopping'}..."

    def _start(self, run_dir: Path, create: dict | None = None,
               open_kwargs: dict | None = None) -> None:
        self._run_path = str(run_dir)
        self._stop_kind = None
        self._curve_tile = None
        self.summary = None
        self._task = CoreTask(drive_inversion, run_dir, create=create, open_kwargs=open_kwargs,
                              progress_kw=None, emit_kw="emit")
        task = self._task
        _RUNNING.add(task)
        self._worker = start_task(self._task, on_event=self._on_event, on_done=self._on_done,
                                  on_error=self._on_error)
        self._worker.finished.connect(lambda: _RUNNING.discard(task))
        self._update_buttons()
        self.status.value = "starting..."

    # ------------------------------------------------------------------ events (GUI thread)
    def _store(self):
        from dippas.dip import RunStore

        return RunStore(self._run_path)

    def _on_event(self, event: WorkerEvent) -> None:
        if self._closed:
            return
        if isinstance(event, RunProgress):
            self._on_progress(event.info, event.history)
        elif isinstance(event, SnapshotReady):
            self._on_snapshot(event.tile, event.index, event.frame, event.iteration, event.psnr)
        elif isinstance(event, CellsProgress):
            self.status.value = f"computing cell statistics {event.done}/{event.total}"
        elif isinstance(event, RunStarted):
            self._run_path = event.run_dir

    def _on_progress(self, info: dict, history: dict) -> None:
        self.last_info = info
        if info["tile"] != self._curve_tile:
            # first event of a tile (or of a resumed run): the curve so far from the store
            self._curve_tile = info["tile"]
            title = f"tile {info['tile']}" if info["n_tiles"] > 1 else ""
            self.curves.clear(title)
            self.curves.extend(self._store().tile(info["tile"]).history)
        self.curves.extend(history)
        self.progress.max = max(int(info["max_iter"]), 1)
        self.progress.value = min(int(info["iteration"]), self.progress.max)
        tile = f"tile {info['tile_index'] + 1}/{info['n_tiles']} · " if info["n_tiles"] > 1 else ""
        if info.get("tiles_together", 1) > 1:
            tile = f"{info['tiles_together']} tiles at once, showing {tile}"
        self.status.value = (f"{tile}iteration {info['iteration']}/{info['max_iter']} · "
                             f"{info['its_per_s']:.1f} it/s · PSNR {info['psnr']:.2f} dB · "
                             f"γ {info['gamma']:.4g} · saved {info['n_saved']}")

    def _on_snapshot(self, tile: str, index: int, frame: np.ndarray, iteration: int,
                     psnr: float) -> None:
        store = self._store()
        g = store.tile(tile).geometry
        self._show_output(frame, (g.y0, g.x0))
        self._output_layer.metadata.update(iteration=iteration, psnr=psnr, snapshot_index=index)
        self._refresh_snapshots(store, tile)

    def _show_output(self, frame: np.ndarray, origin: tuple[int, int]) -> None:
        """Show ``frame`` in the "DIP output" layer (created when missing)."""
        if self._output_layer is None or self._output_layer not in self.viewer.layers:
            self._output_layer = self.viewer.add_image(
                frame, name="DIP output", rgb=True, contrast_limits=(0, 255), translate=origin,
                metadata={"dippas_kind": "dip_output", "run": self._run_path})
        else:
            self._output_layer.data = frame
            self._output_layer.translate = origin
            self._output_layer.metadata["run"] = self._run_path

    def _refresh_snapshots(self, store, tile: str) -> None:
        """Create or re-point the tile's snapshot layer; follow the newest frame."""
        layer = find_snapshot_layer(self.viewer, self._run_path, tile)
        if layer is None:
            got = snapshot_layer_kwargs(store, tile)
            if got is None:
                return
            layer = self.viewer.add_image(got[0], **got[1])
            # keep the current output visible above the stack
            if self._output_layer is not None and self._output_layer in self.viewer.layers:
                self.viewer.layers.move(self.viewer.layers.index(self._output_layer),
                                        len(self.viewer.layers))
            follow = True
        else:
            axis = self.viewer.dims.ndim - 3
            n_before = layer.data.shape[0]
            at_end = axis >= 0 and self.viewer.dims.current_step[axis] >= n_before - 1
            follow = at_end
            refresh_snapshot_layer(layer, store)
        n = layer.data.shape[0]
        axis = self.viewer.dims.ndim - 3
        if follow and axis >= 0 and n > 0:
            self.viewer.dims.set_current_step(axis, n - 1)

    def _finish(self) -> None:
        self._worker = None
        self._update_buttons()
        self.curves.redraw()

    def _on_done(self, summary: RunSummary | None) -> None:
        if self._closed:
            return
        self._finish()
        self.summary = summary
        if summary is None:
            return
        store = self._store()
        for g in store.tiles:
            layer = find_snapshot_layer(self.viewer, self._run_path, g.name)
            if layer is not None:
                refresh_snapshot_layer(layer, store)
            elif snapshot_layer_kwargs(store, g.name) is not None:
                self._refresh_snapshots(store, g.name)
        it = self.last_info["iteration"] if self.last_info else 0
        if summary.cancelled and self._stop_kind == "pause":
            self.status.value = (f"paused at iteration {it} · {summary.snapshots} snapshots · "
                                 "Resume continues")
            notify_info(f"inversion paused at iteration {it}")
            return
        last_run.set(self._run_path)
        if summary.cancelled:
            self.status.value = (f"stopped at iteration {it} · {summary.snapshots} snapshots · "
                                 "the run can be resumed")
            notify_info(f"inversion stopped at iteration {it}; run folder {self._run_path}")
        else:
            self.status.value = (f"done · {summary.snapshots} snapshots in {summary.seconds:.1f} s"
                                 f" · {self._run_path}")
            notify_info(f"inversion done: {summary.snapshots} snapshots in {self._run_path}")

    def _on_error(self, exc: BaseException) -> None:
        from dippas.errors import Cancelled

        if self._closed:
            return
        self._finish()
        if isinstance(exc, Cancelled):
            self.status.value = "stopped"
            notify_info("inversion stopped")
        else:
            msg = error_message(exc)
            self.status.value = f"error: {msg}"
            notify_error(msg)
