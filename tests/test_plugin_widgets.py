"""napari widgets: inversion, assembler, inpainting, and lazy run layers (Xvfb).

Everything runs on the CPU on 48x48 crops of the demo sample with a tiny
two-scale network (one torch thread), so a whole inversion takes about a
second.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]

from dippas.dip import DippasRun, RunStore, get_preset  # noqa: E402

#: A tiny two-scale network: ~15 ms per iteration at 48x48 on one CPU thread.
TINY = get_preset("fast", max_iter=20, lr=1e-2, stop_psnr=60.0, save_psnr=10.0).with_overrides(
    z_channels=8, widths=(4, 8), skip_channels=(4,))
SIZE = 48



@pytest.fixture(autouse=True)
def fresh_last_run():
    from napari_dippas._state import last_run

    last_run.clear()
    yield
    last_run.clear()


@pytest.fixture(scope="module")
def sample():
    from dippas.samples import camera_sample

    return camera_sample(SIZE)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, sample):
    """A complete aware run folder of the 48x48 sample (TINY, 30 iterations)."""
    image, k = sample
    path = tmp_path_factory.mktemp("runs") / "run"
    run = DippasRun.create(path, image, k, preset=TINY.with_overrides(max_iter=30), device="cpu",
                           checkpoint_every=10)
    summary = run.run()
    assert summary.complete and summary.snapshots > 5
    return path


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def photo_viewer(viewer, sample):
    image, k = sample
    viewer.add_image(image, name="photo", rgb=True)
    viewer.add_image(k, name="K")
    return viewer


def _last_notification() -> str:
    from napari.utils.notifications import notification_manager

    return notification_manager.records[-1].message if notification_manager.records else ""


def _inversion(viewer, tmp_path, max_iter=20, name="run"):
    from napari_dippas.widgets.inversion import InversionWidget

    w = InversionWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.add_preset(TINY, "tiny")
    w.max_iter.value = max_iter
    w.run_dir.value = tmp_path / name
    w.image.value, w.fingerprint.value = "photo", "K"
    return w


def _history_rows(run_dir: Path) -> int:
    return len(RunStore(run_dir).tile(0, 0).history["iteration"])


def _png_chunks(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, names = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        names.append(data[pos + 4:pos + 8])
        pos += 12 + length
    return names


# ------------------------------------------------------------------ run layers and reader

def test_run_layers_are_lazy_views_of_the_store(finished_run):
    from napari_dippas.run_layers import run_layers

    layers = run_layers(finished_run)
    assert [t[1]["name"] for t in layers] == ["run input", "injected K", "snapshots 0_0"]
    (img, img_kw, _), (p, p_kw, _), (snaps, s_kw, kind) = layers
    assert img.shape == (SIZE, SIZE, 3) and img_kw["rgb"]
    assert p.shape == (SIZE, SIZE) and p_kw["colormap"] == "PiYG"
    tile = RunStore(finished_run).tile(0, 0)
    assert isinstance(snaps, np.memmap) and snaps.shape == tile.snapshots.shape
    assert kind == "image" and s_kw["rgb"] and s_kw["contrast_limits"] == (0, 255)
    assert s_kw["translate"] == (0, 0, 0)
    meta = s_kw["metadata"]
    assert meta["tile"] == "0_0" and meta["run"] == os.fspath(finished_run)
    np.testing.assert_array_equal(meta["psnr"], tile.table["psnr"])


def test_reader_opens_a_run_folder(viewer, finished_run):
    layers = viewer.open(str(finished_run), plugin="napari-dippas")
    names = [layer.name for layer in layers]
    assert names == ["run input", "injected K", "snapshots 0_0"]
    snaps = viewer.layers["snapshots 0_0"]
    n = RunStore(finished_run).tile(0, 0).n_snapshots
    assert snaps.data.shape == (n, SIZE, SIZE, 3) and snaps.rgb
    assert viewer.layers["injected K"].colormap.name == "PiYG"


def _fake_run(path: Path, n: int, size: int) -> Path:
    """A run folder with ``n`` snapshots written through the store's own writer."""
    from dippas.dip.store import TileWriter, create_run_folder
    from dippas.dip.tiling import TileGeometry

    g = TileGeometry(0, 0, 0, 0, size, size, size, size)
    params = {"format": "dippas-run", "mode": "aware", "cell": 16, "sigma": 3.0,
              "image_shape": [size, size, 3], "tiles": [g.__dict__]}
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    create_run_folder(path, params, img, rng.normal(size=(size, size)).astype(np.float32))
    writer = TileWriter(path / "tiles" / g.name, g, 16)
    for i in range(n):
        writer.append_snapshot(np.roll(img, i, axis=1), i + 1, 30.0 + 1e-3 * i, 0.01, 0.1)
    writer.close()
    return path


def test_opening_3000_snapshots_is_lazy(viewer, tmp_path):
    import psutil

    n, size = 3000, 128
    run = _fake_run(tmp_path / "big", n, size)
    stack_mb = n * size * size * 3 / 1e6  # 147 MB on disk
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    viewer.open(str(run), plugin="napari-dippas")
    seconds = time.perf_counter() - t0
    extra_mb = (proc.memory_info().rss - rss0) / 1e6
    layer = viewer.layers["snapshots 0_0"]
    assert layer.data.shape == (n, size, size, 3)
    assert isinstance(layer.data, np.memmap)  # the store itself, not a copy
    assert seconds < 2.0
    assert extra_mb < stack_mb / 3, f"{extra_mb:.0f} MB for a {stack_mb:.0f} MB stack"


def test_plugin_imports_without_torch():
    code = ("import sys, napari_dippas.run_layers, napari_dippas._reader, "
            "napari_dippas.widgets.inversion, napari_dippas.widgets.assembler, "
            "napari_dippas.widgets.inpainting; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_widgets_are_in_the_manifest(viewer):
    for name in ("DIPPAS inversion", "DIPPAS block assembler", "Inpainting anonymizer",
                 "Fingerprint and attribution"):
        dock, widget = viewer.window.add_plugin_dock_widget("napari-dippas", name)
        assert widget is not None


# ------------------------------------------------------------------ inversion widget

def test_inversion_end_to_end(photo_viewer, qtbot, tmp_path):
    from napari_dippas._state import last_run

    viewer = photo_viewer
    w = _inversion(viewer, tmp_path)
    assert w.device.choices[-1] == "cpu"
    w.run()
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    summary = w.summary
    assert summary is not None and summary.complete and not summary.cancelled
    snaps = viewer.layers["snapshots 0_0"]
    assert snaps.data.shape == (summary.snapshots, SIZE, SIZE, 3) and snaps.rgb
    assert isinstance(snaps.data, np.memmap)
    out = viewer.layers["DIP output"]
    assert out.data.shape == (SIZE, SIZE, 3) and out.data.dtype == np.uint8
    np.testing.assert_array_equal(out.data, snaps.data[out.metadata["snapshot_index"]])
    assert w.curves.n_points == 20
    np.testing.assert_array_equal(w.curves.data("iteration"), np.arange(1, 21))
    assert w.progress.value == 20 and "done" in w.status.value
    assert last_run.path == os.fspath(tmp_path / "run")
    assert w.resume_btn.enabled and w.run_btn.enabled and not w.stop_btn.enabled


def test_stop_ends_inversion_within_an_iteration_and_run_is_resumable(photo_viewer, qtbot,
                                                                       tmp_path):
    from napari_dippas._state import last_run

    w = _inversion(photo_viewer, tmp_path, max_iter=2000)
    run_dir = tmp_path / "run"
    w.run()
    qtbot.waitUntil(lambda: w.last_info is not None and w.last_info["iteration"] >= 5,
                    timeout=60_000)
    # inputs are locked while it runs (layers added meanwhile must not unlock them)
    assert not (w.image.enabled or w.fingerprint.enabled or w.run_btn.enabled
                or w.resume_btn.enabled)
    assert w.stop_btn.enabled and w.pause_btn.enabled
    w.stop()
    at_stop = _history_rows(run_dir)
    qtbot.waitUntil(lambda: not w.running, timeout=30_000)
    status = RunStore(run_dir).tile(0, 0).status
    assert w.summary.cancelled
    assert status["iteration"] - at_stop <= 2 and not status["done"]
    assert RunStore(run_dir).tile(0, 0).has_checkpoint
    assert "stopped" in _last_notification() and "resumed" in w.status.value
    assert last_run.path == os.fspath(run_dir)
    assert w.resume_btn.enabled
    # the run continues from its checkpoint, outside the widget too
    run = DippasRun.open(run_dir, device="cpu", max_iter=status["iteration"] + 3)
    assert run.run().iterations == 3


def test_pause_then_resume_continues_the_same_run(photo_viewer, qtbot, tmp_path):
    w = _inversion(photo_viewer, tmp_path, max_iter=2000)
    run_dir = tmp_path / "run"
    w.run()
    qtbot.waitUntil(lambda: w.last_info is not None and w.last_info["iteration"] >= 5,
                    timeout=60_000)
    w.pause()
    qtbot.waitUntil(lambda: not w.running, timeout=30_000)
    paused_at = RunStore(run_dir).tile(0, 0).status["iteration"]
    assert "paused" in w.status.value and w.resume_btn.enabled
    w.max_iter.value = paused_at + 15
    w.resume()
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    tile = RunStore(run_dir).tile(0, 0)
    assert tile.status["done"] and tile.status["iteration"] == paused_at + 15
    np.testing.assert_array_equal(tile.history["iteration"], np.arange(1, paused_at + 16))
    np.testing.assert_array_equal(w.curves.data("iteration"), np.arange(1, paused_at + 16))
    assert photo_viewer.layers["snapshots 0_0"].data.shape[0] == tile.n_snapshots


def test_gui_stays_responsive_during_inversion(photo_viewer, qtbot, tmp_path):
    from qtpy.QtCore import QTimer

    w = _inversion(photo_viewer, tmp_path, max_iter=120)
    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    t0 = time.perf_counter()
    w.run()
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    elapsed = time.perf_counter() - t0
    timer.stop()
    assert w.summary.complete and elapsed > 0.5
    # An inversion on the GUI thread would give no tick at all until it ends. The
    # thresholds leave room for a loaded machine (2 shared cores): the GUI thread
    # also draws the curves and adds the snapshot layer (once, the longest pause).
    gaps = np.diff(ticks)
    assert len(ticks) > 0.3 * elapsed / 0.02, f"{len(ticks)} ticks in {elapsed:.1f} s"
    assert gaps.max() < 1.5, f"GUI froze for {gaps.max():.2f} s"


def test_inversion_bad_input_gives_notifications(viewer, qtbot, tmp_path, sample):
    from napari_dippas.widgets.inversion import InversionWidget

    w = InversionWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.run()
    assert "choose an image layer" in _last_notification()
    viewer.add_image(sample[0], name="photo", rgb=True)
    w.reset_choices()
    w.image.value = "photo"
    w.run()
    assert "aware mode needs a fingerprint layer" in _last_notification()
    # an error raised in the inversion thread: one line, same as the CLI's
    w.mode.value = "blind"
    w.add_preset(TINY, "tiny")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something.txt").write_text("x")
    w.run_dir.value = busy
    w.run()
    qtbot.waitUntil(lambda: not w.running, timeout=30_000)
    assert _last_notification() == f"{busy}: folder is not empty; choose a new run folder"
    assert "\n" not in _last_notification()


# ------------------------------------------------------------------ assembler widget

def _assembler(viewer, run):
    from napari_dippas._state import last_run
    from napari_dippas.widgets.assembler import AssemblerWidget

    w = AssemblerWidget(viewer)
    viewer.window.add_dock_widget(w)
    last_run.set(run)
    assert w.use_last_btn.enabled
    w.use_last_run()
    return w


def test_assembler_heatmaps_follow_controls_and_slider(viewer, qtbot, finished_run):
    w = _assembler(viewer, finished_run)
    assert list(w.block.choices) == [32, "whole"] and w.tile.native.isHidden()
    qtbot.waitUntil(lambda: w.result is not None and not w.busy, timeout=30_000)
    assembled = viewer.layers["assembled"]
    heat = viewer.layers["block NCC"]
    assert assembled.data.shape == (SIZE, SIZE, 3) and assembled.data.dtype == np.uint8
    assert heat.colormap.name == "PiYG" and heat.data.shape == (2, 2)
    assert tuple(heat.scale) == (32, 32)
    lo, hi = heat.contrast_limits
    assert lo == pytest.approx(-hi)
    assert "PSNR" in w.report.value and "NCC" in w.report.value

    w.block.value = "whole"
    qtbot.waitUntil(lambda: viewer.layers["block NCC"].data.shape == (1, 1) and not w.busy,
                    timeout=30_000)
    assert tuple(viewer.layers["block NCC"].scale) == (SIZE, SIZE)

    # the snapshot heatmap follows the dims slider of the snapshot layer
    w.block.value = 32
    qtbot.waitUntil(lambda: viewer.layers["block NCC"].data.shape == (2, 2) and not w.busy,
                    timeout=30_000)
    axis = viewer.dims.ndim - 3
    asm = w.assembler.assembler("0_0")
    for frame in (0, 3):
        viewer.dims.set_current_step(axis, frame)
        qtbot.waitUntil(lambda f=frame: w.heat_info.value.startswith(f"snapshot {f}/")
                        and not w.busy, timeout=30_000)
        np.testing.assert_allclose(viewer.layers["block NCC"].data,
                                   asm.snapshot_heatmap(frame, 32))

    # the heatmap of the assembled result; the assembled layer is shown with it
    w.source.value = "assembled result"
    qtbot.waitUntil(lambda: w.heat_info.value.startswith("assembled") and not w.busy,
                    timeout=30_000)
    assert assembled.visible
    np.testing.assert_allclose(viewer.layers["block NCC"].data,
                               w.assembler.result_heatmap(w.result.image, 32))

    # L and tau change the assembly
    before = w.result.image.copy()
    w.blocks.value = 5
    qtbot.waitUntil(lambda: w.result.key[1] == 5 and not w.busy, timeout=30_000)
    from dippas.jobs import DippasJob

    # the widget assembles as dippas anonymize does: with the job's zero-NCC blend
    expected = w.assembler.assemble(32, 5, None, zero_blend=DippasJob().zero_blend).image
    np.testing.assert_array_equal(viewer.layers["assembled"].data, expected)
    assert not np.array_equal(before, expected)


def test_assembler_export_writes_png_without_metadata(viewer, qtbot, finished_run, tmp_path):
    w = _assembler(viewer, finished_run)
    qtbot.waitUntil(lambda: w.result is not None and not w.busy, timeout=30_000)
    out = tmp_path / "anonymized.png"
    w.export_path.value = out
    assert w.export() == out
    assert _png_chunks(out) == [b"IHDR", b"IDAT", b"IEND"]
    from dippas.io import load_image

    np.testing.assert_array_equal(load_image(out), w.result.image)
    assert w.export() is None  # exists: refused without "overwrite"
    assert "already exists" in _last_notification()
    w.overwrite.value = True
    assert w.export() == out


def test_assembler_bad_input_gives_notifications(viewer, tmp_path):
    from napari_dippas.widgets.assembler import AssemblerWidget

    w = AssemblerWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.use_last_run()
    assert "no run yet" in _last_notification()
    assert not w.load(tmp_path)
    assert _last_notification() == f"{tmp_path}: not a DIPPAS run folder (no params.json)"
    assert w.export() is None
    assert "nothing assembled yet" in _last_notification()


def test_assembler_picks_up_the_inversion_widget_run(photo_viewer, qtbot, tmp_path):
    from napari_dippas.widgets.assembler import AssemblerWidget

    inv = _inversion(photo_viewer, tmp_path)
    asm = AssemblerWidget(photo_viewer)
    photo_viewer.window.add_dock_widget(asm)
    assert not asm.use_last_btn.enabled
    inv.run()
    qtbot.waitUntil(lambda: not inv.running, timeout=60_000)
    assert asm.use_last_btn.enabled
    asm.use_last_run()
    qtbot.waitUntil(lambda: asm.result is not None and not asm.busy, timeout=30_000)
    # the live snapshot layer of the inversion is reused, not opened a second time
    assert [layer.name for layer in photo_viewer.layers].count("snapshots 0_0") == 1
    assert "run input" not in photo_viewer.layers


def test_tiled_run_in_the_inversion_and_assembler_widgets(viewer, qtbot, tmp_path):
    """A 48x80 photo in 48-pixel tiles: two tiles, each with its own translated layer."""
    from dippas.samples import camera_sample

    from napari_dippas.widgets.assembler import AssemblerWidget

    image, k = camera_sample(80)
    viewer.add_image(image[16:64], name="photo", rgb=True)
    viewer.add_image(np.ascontiguousarray(k[16:64]), name="K")
    w = _inversion(viewer, tmp_path, max_iter=10)
    w.tile_size.value = SIZE
    w.tile_overlap.value = 0  # the default overlap does not fit a 48-pixel tile
    w.run()
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    assert w.summary.complete and w.summary.n_tiles == 2
    second = viewer.layers["snapshots 0_1"]
    assert second.data.shape[1:] == (SIZE, 32, 3) and tuple(second.translate) == (0, 0, SIZE)
    assert viewer.layers["snapshots 0_0"].data.shape[1:] == (SIZE, SIZE, 3)
    # the curves show the tile being inverted last, from its first iteration
    np.testing.assert_array_equal(w.curves.data("iteration"), np.arange(1, 11))

    a = AssemblerWidget(viewer)
    viewer.window.add_dock_widget(a)
    a.use_last_run()
    qtbot.waitUntil(lambda: a.result is not None and not a.busy, timeout=30_000)
    assert list(a.tile.choices) == ["0_0", "0_1"] and not a.tile.native.isHidden()
    assert viewer.layers["assembled"].data.shape == (SIZE, 80, 3)
    a.tile.value = "0_1"
    qtbot.waitUntil(lambda: a.result.heat_origin == (0, SIZE) and not a.busy, timeout=30_000)
    heat = viewer.layers["block NCC"]
    assert heat.data.shape == (2, 1)  # 48x32 tile in 32-pixel blocks
    assert tuple(heat.translate) == (15.5, SIZE + 15.5)


# ------------------------------------------------------------------ inpainting widget

def _inpainting(viewer):
    from napari_dippas.widgets.inpainting import InpaintingWidget

    w = InpaintingWidget(viewer)
    viewer.window.add_dock_widget(w)
    return w


def test_inpainting_end_to_end(photo_viewer, qtbot):
    w = _inpainting(photo_viewer)
    assert "l2" in w.reg.choices and set(w.hole.choices) == {3, 5}
    w.image.value, w.fingerprint.value = "photo", "K"
    w.run()
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    out = photo_viewer.layers["photo anonymized"]
    assert out.data.shape == (SIZE, SIZE, 3) and out.data.dtype == np.uint8 and out.rgb
    mask = photo_viewer.layers["photo edge mask"]
    assert mask.data.shape == (SIZE, SIZE) and type(mask).__name__ == "Labels"
    assert w.progress.value == w.progress.max
    report = w.output.report
    assert report["psnr"] > 20 and abs(report["output"]["ncc"]) < abs(report["input"]["ncc"])
    assert "NCC" in w.report.value and "PCE" in w.report.value

    w.reg.value, w.edges.value, w.hole.value = "tv", False, 3
    w.fingerprint.value = "(none)"
    w.run()
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    assert w.output.params["reg"] == "tv" and w.output.edges is None
    assert "NCC" not in w.report.value and "SSIM" in w.report.value


def test_inpainting_stop_and_bad_input(viewer, qtbot):
    from dippas.samples import camera_sample

    w = _inpainting(viewer)
    viewer.add_image(camera_sample(256)[0], name="big", rgb=True)
    w.reset_choices()
    w.image.value = "big"
    w.run()
    w.stop()
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    assert "inpainting stopped" in _last_notification()
    assert "big anonymized" not in viewer.layers

    viewer.add_image(np.zeros((6, 6, 3), np.uint8), name="tiny", rgb=True)
    w.reset_choices()
    w.image.value = "tiny"
    w.run()
    qtbot.waitUntil(lambda: not w.running, timeout=30_000)
    assert _last_notification() == ("image is 6x6 pixels; inpainting with holes of 5 needs at "
                                    "least one period, 10x10")


def test_curves_follow_the_napari_theme(viewer):
    from matplotlib.colors import to_hex
    from napari.utils.theme import get_theme

    from napari_dippas.widgets.inversion import InversionWidget

    w = InversionWidget(viewer)
    for theme in ("dark", "light"):
        viewer.theme = theme
        t = get_theme(theme)
        assert to_hex(w.curves.figure.get_facecolor()) == t.background.as_hex()
        ax = w.curves.axes["psnr"]
        assert to_hex(ax.get_facecolor()) == t.background.as_hex()
        assert to_hex(ax.yaxis.label.get_color()) == t.text.as_hex()


def test_resume_refuses_a_changed_seed_like_the_cli(photo_viewer, qtbot, tmp_path):
    w = _inversion(photo_viewer, tmp_path, max_iter=3)
    w.run()
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    w.seed.value = 12345
    w.resume()
    assert "cannot change on resume" in _last_notification()
    assert not w.running


def test_the_tile_overlap_is_the_jobs_and_cannot_change_on_resume(photo_viewer, qtbot, tmp_path,
                                                                 finished_run):
    from dippas.jobs import DippasJob

    image, k = photo_viewer.layers["photo"].data, photo_viewer.layers["K"].data
    photo_viewer.add_image(np.concatenate([image, image], axis=1), name="wide", rgb=True)
    photo_viewer.add_image(np.concatenate([k, k], axis=1), name="K wide")
    w = _inversion(photo_viewer, tmp_path, max_iter=3)
    assert w.tile_overlap.value == DippasJob().overlap
    w.reset_choices()
    w.image.value, w.fingerprint.value = "wide", "K wide"
    w.tile_size.value = 48  # too small for the overlap shown: it takes the default of its size
    assert w.tile_overlap.value == DippasJob(tile=48).overlap == 12
    w.tile_overlap.value = 8  # 48x96 in two tiles that share 8 columns
    w.run()
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    assert RunStore(tmp_path / "run").tile_overlap == 8 and len(RunStore(tmp_path / "run")) == 2
    w.tile_overlap.value = 4
    w.resume()
    assert "tile_overlap 8" in _last_notification() and not w.running
    w.run_dir.value = finished_run  # a run made with tiles that do not overlap loads its 0
    assert w.tile_overlap.value == 0
