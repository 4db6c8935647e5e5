"""Screenshots of the plugin's widgets in use, for the README and docs/plugin.md.

Opens napari with the demo sample (a 256x256 photo with a simulated camera
fingerprint), runs every widget for real on it and saves the whole window:

- ``fingerprint.png``: the attribution check of the photo against K;
- ``inversion.png``: a DIPPAS inversion (fast preset) while it runs;
- ``assembler.png``: the block assembly of that run with its NCC heatmap;
- ``inpainting.png``: the inpainting anonymization with its edge mask.

Needs a display. Without ``DISPLAY`` the script starts a virtual one with
pyvirtualdisplay (Xvfb) when it is installed; else run it as
``xvfb-run -a python scripts/screenshots.py``. OpenGL must work (Mesa).

Usage::

    python scripts/screenshots.py [--out docs/images] [--iterations 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WINDOW = (1600, 1000)


def start_display():
    """A virtual display when there is none (pyvirtualdisplay + Xvfb); None otherwise."""
    if os.environ.get("DISPLAY"):
        return None
    try:
        from pyvirtualdisplay import Display
    except ImportError:
        sys.exit("no DISPLAY and pyvirtualdisplay is not installed: "
                 "run `xvfb-run -a python scripts/screenshots.py`")
    display = Display(visible=False, size=(WINDOW[0] + 100, WINDOW[1] + 100), color_depth=24)
    display.start()
    return display


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Process Qt events until ``condition()`` holds."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    t0 = time.perf_counter()
    while not condition():
        app.processEvents()
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def settle(seconds: float = 0.5) -> None:
    """Let pending redraws happen."""
    from qtpy.QtWidgets import QApplication

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        QApplication.instance().processEvents()
        time.sleep(0.02)


def close_toasts(viewer) -> None:
    """Close notification pop-ups so they do not cover the screenshot."""
    try:
        from napari._qt.dialogs.qt_notification import NapariQtNotification
    except ImportError:  # pragma: no cover - napari internals moved
        return
    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()


def shoot(viewer, path: Path) -> None:
    """Save the whole window (canvas, layer list and dock widgets)."""
    close_toasts(viewer)
    settle(0.5)  # the canvas takes its size beside the dock widget first
    viewer.reset_view()
    settle(0.8)
    viewer.screenshot(str(path), canvas_only=False)
    print(f"wrote {path}", flush=True)


def show_only(viewer, names: list[str]) -> None:
    """Make the layers called ``names`` visible and hide the others."""
    for layer in viewer.layers:
        layer.visible = layer.name in names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Screenshots of the napari-dippas widgets.")
    ap.add_argument("--out", default=str(ROOT / "docs" / "images"), help="output folder")
    ap.add_argument("--iterations", type=int, default=300,
                    help="iterations of the demo inversion (default 300)")
    ap.add_argument("--save-psnr", type=float, default=20.0,
                    help="save threshold of the demo inversion, dB (default 20: a short run)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default torch's; 1 on a busy machine)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    display = start_display()
    try:
        import napari

        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        viewer = napari.Viewer(title="napari-dippas")
        viewer.window.resize(*WINDOW)
        viewer.open_sample("napari-dippas", "camera_sample")
        photo, k = "camera sample", "camera fingerprint"
        settle(1.0)

        # 1. fingerprint and attribution
        dock, fw = viewer.window.add_plugin_dock_widget("napari-dippas",
                                                        "Fingerprint and attribution")
        fw.reset_choices()
        fw.attr_image.value, fw.attr_fp.value = photo, k
        fw.check_attribution()
        viewer.layers.selection.active = viewer.layers[k]
        shoot(viewer, out / "fingerprint.png")
        viewer.window.remove_dock_widget(dock)

        # 2. DIPPAS inversion, caught while it runs
        dock, iw = viewer.window.add_plugin_dock_widget("napari-dippas", "DIPPAS inversion")
        run_dir = Path(tempfile.mkdtemp(prefix="dippas-screenshots-")) / "run"
        iw.reset_choices()
        iw.image.value, iw.mode.value, iw.fingerprint.value = photo, "aware", k
        iw.preset.value = "fast"
        iw.device.value = iw.device.choices[0]
        iw.max_iter.value = args.iterations
        iw.save_psnr.value = args.save_psnr
        iw.run_dir.value = run_dir
        t0 = time.perf_counter()
        iw.run()
        wait(lambda: not iw.running or (iw.last_info is not None and
                                        iw.last_info["iteration"] >= 0.8 * args.iterations
                                        and "snapshots 0_0" in viewer.layers),
             1800, "the inversion to reach 80%")
        show_only(viewer, ["snapshots 0_0"])
        viewer.layers.selection.active = viewer.layers["snapshots 0_0"]
        shoot(viewer, out / "inversion.png")
        wait(lambda: not iw.running, 1800, "the inversion to end")
        print(f"inversion: {iw.status.value} ({time.perf_counter() - t0:.0f} s)", flush=True)
        viewer.window.remove_dock_widget(dock)

        # 3. block assembler on that run
        dock, aw = viewer.window.add_plugin_dock_widget("napari-dippas", "DIPPAS block assembler")
        aw.use_last_run()
        wait(lambda: aw.result is not None and not aw.busy, 600, "the first assembly")
        aw.block.value = 32
        aw.source.value = "assembled result"
        wait(lambda: aw.heat_info.value.startswith("assembled") and aw.result.heat_block[0] == 32
             and not aw.busy, 600, "the result heatmap")
        show_only(viewer, ["assembled", "block NCC"])
        viewer.layers.selection.active = viewer.layers["block NCC"]
        aw.export_path.value = run_dir.parent / "anonymized.png"
        shoot(viewer, out / "assembler.png")
        viewer.window.remove_dock_widget(dock)

        # 4. inpainting anonymizer
        dock, pw = viewer.window.add_plugin_dock_widget("napari-dippas", "Inpainting anonymizer")
        pw.reset_choices()
        pw.image.value, pw.fingerprint.value = photo, k
        pw.run()
        wait(lambda: not pw.running, 600, "the inpainting")
        show_only(viewer, [f"{photo} anonymized", f"{photo} edge mask"])
        viewer.layers.selection.active = viewer.layers[f"{photo} edge mask"]
        shoot(viewer, out / "inpainting.png")

        viewer.close()
        shutil.rmtree(run_dir.parent, ignore_errors=True)  # the demo run folder
        return 0
    finally:
        if display is not None:
            display.stop()


if __name__ == "__main__":
    raise SystemExit(main())
