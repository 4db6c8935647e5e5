"""The "Audit" dock widget under Xvfb: results table, heatmap layers, bad input."""

from __future__ import annotations

import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

DEVICE = "Nikon_D70_1"
SIZE = 256


def _last_notification() -> str:
    from napari.utils.notifications import notification_manager

    return notification_manager.records[-1].message if notification_manager.records else ""


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def audit_viewer(viewer, dresden_dir):
    import dippas
    from dippas.fingerprint import centre_crop
    from dippas.io import load_image

    k = dippas.estimate_fingerprint(sorted((dresden_dir / "flatfield" / DEVICE).glob("*.jpg")),
                                    crop=SIZE)
    for f in sorted((dresden_dir / "natural").glob(f"{DEVICE}_*.jpg"))[:2]:
        viewer.add_image(centre_crop(load_image(f), (SIZE, SIZE)), name=f.stem, rgb=True)
    viewer.add_image(k, name="K")
    return viewer


def test_audit_widget_fills_table_and_adds_heatmaps(audit_viewer, qtbot):
    from napari_dippas.widgets.audit import AuditWidget

    w = AuditWidget(audit_viewer)
    audit_viewer.window.add_dock_widget(w)
    names = [n for n in w.images.choices]
    assert len(names) == 2 and "K" not in names
    w.images.value = names
    w.fingerprint.value = "K"
    w.run()
    qtbot.waitUntil(lambda: w.report is not None, timeout=180_000)
    assert w.run_btn.enabled and not w.stop_btn.enabled
    rows = w.table.data.to_list()
    assert len(rows) == sum(len(r.tests) for r in w.report.images) + len(w.report.set.tests)
    assert {r[-1] for r in rows} <= {"match", "no match"}
    for n in names:
        layer = audit_viewer.layers[f"audit NCC {n}"]
        assert layer.metadata["dippas_kind"] == "heatmap"
        assert tuple(layer.scale) == (64, 64)
    assert "false alarm 0.001" in w.summary.value


def test_audit_widget_bad_input(audit_viewer):
    from napari_dippas.widgets.audit import AuditWidget

    w = AuditWidget(audit_viewer)
    audit_viewer.window.add_dock_widget(w)
    w.run()
    assert "choose at least one image layer" in _last_notification()
    w.images.value = list(w.images.choices)[:1]
    w.run()  # no fingerprint layer chosen, no folder
    assert "choose a fingerprint layer or a folder" in _last_notification()
    assert w.report is None and w.run_btn.enabled
