"""napari plugin: sample data, reader, writer and the fingerprint widget (Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui


def _last_notification():
    from napari.utils.notifications import notification_manager

    return notification_manager.records[-1].message if notification_manager.records else ""


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def test_sample_data_layers(viewer):
    viewer.open_sample("napari-dippas", "camera_sample")
    img, k = viewer.layers["camera sample"], viewer.layers["camera fingerprint"]
    assert img.data.shape == (256, 256, 3) and img.rgb
    assert k.data.shape == (256, 256) and k.colormap.name == "PiYG"
    lo, hi = k.contrast_limits
    assert lo == pytest.approx(-hi)


def test_reader_opens_fingerprint_with_diverging_colormap(viewer, tmp_path, reference_dir):
    import shutil

    src = reference_dir / "fingerprint_Nikon_D70_0_crop512_sigma3.npy"
    shutil.copy(src, tmp_path / "K.npy")
    layers = viewer.open(str(tmp_path / "K.npy"), plugin="napari-dippas")
    assert layers[0].data.shape == (512, 512) and layers[0].colormap.name == "PiYG"


def test_writer_png_has_no_metadata(viewer, tmp_path):
    viewer.open_sample("napari-dippas", "camera_sample")
    out = tmp_path / "saved.png"
    viewer.layers["camera sample"].save(str(out), plugin="napari-dippas")
    data = out.read_bytes()
    assert b"tEXt" not in data and b"eXIf" not in data and b"iCCP" not in data
    from dippas.io import load_image

    np.testing.assert_array_equal(load_image(out), viewer.layers["camera sample"].data)


def test_attribution_check_on_sample(viewer):
    from napari_dippas.widgets.fingerprint import FingerprintWidget

    viewer.open_sample("napari-dippas", "camera_sample")
    w = FingerprintWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.reset_choices()
    w.attr_image.value = "camera sample"
    w.attr_fp.value = "camera fingerprint"
    scores = w.check_attribution()
    assert scores["match"] and "MATCH" in w.result.value


def test_estimate_from_folder_adds_layer(viewer, qtbot, dresden_dir):
    from napari_dippas.widgets.fingerprint import FingerprintWidget

    w = FingerprintWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.folder.value = dresden_dir / "flatfield" / "Nikon_D70_0"
    w.crop.value = 128
    w.estimate()
    qtbot.waitUntil(lambda: "fingerprint" in viewer.layers, timeout=120_000)
    layer = viewer.layers["fingerprint"]
    assert layer.data.shape == (128, 128) and layer.colormap.name == "PiYG"
    assert w.estimate_btn.enabled and not w.stop_btn.enabled
    assert w.progress.value == 10


def test_stop_ends_estimation(viewer, qtbot, dresden_dir, tmp_path):
    import shutil

    from napari_dippas.widgets.fingerprint import FingerprintWidget

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        for f in sorted((dresden_dir / "flatfield" / "Nikon_D70_0").glob("*.jpg")):
            shutil.copy(f, folder / f"{i}_{f.name}")
    w = FingerprintWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.folder.value = folder
    w.estimate()
    w.stop()
    qtbot.waitUntil(lambda: w.estimate_btn.enabled, timeout=60_000)
    assert "fingerprint" not in viewer.layers
    assert "stopped" in _last_notification()
    assert w.progress.value < 60


def test_bad_input_gives_notification(viewer, qtbot):
    from napari_dippas.widgets.fingerprint import FingerprintWidget

    w = FingerprintWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.estimate()  # neither folder nor layers
    assert "choose a flat-field folder" in _last_notification()
    w.check_attribution()
    assert "choose an image layer" in _last_notification()


def test_core_task_reports_runtime_errors_and_results():
    from napari_dippas.workers.core_task import CoreTask, TaskFailed

    def boom(progress=None, cancel=None):
        progress(1, 2)
        raise RuntimeError("torch failed")

    gen = CoreTask(boom).events()
    events = []
    with pytest.raises(TaskFailed, match="torch failed"):
        for e in gen:
            events.append(e)
    from napari_dippas.workers.events import TaskProgress

    assert events == [TaskProgress(1, 2)]

    def ok(x, progress=None, cancel=None):
        return x * 2

    gen = CoreTask(ok, 21).events()
    with pytest.raises(StopIteration) as stop:
        while True:
            next(gen)
    assert stop.value.value == 42
