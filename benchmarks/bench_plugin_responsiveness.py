"""How responsive napari stays while a DIPPAS inversion runs, for two worker designs.

What runs
---------
A napari viewer (under Xvfb) and a 10 ms ``QTimer`` that records when the Qt
event loop gets to it. Meanwhile one inversion of a crop of the bundled
sample runs with the ``fast`` preset, in one of two designs:

``plain-thread`` (the plugin's design)
    The core runs in a plain Python thread (:class:`napari_dippas.workers.core_task.CoreTask`);
    a napari generator worker only polls its event queue and yields the
    typed events, throttled, to the GUI thread.
``napari-worker``
    The inversion's generator (:meth:`dippas.dip.DippasRun.events`) is
    iterated inside the napari generator worker itself (a ``QThread``), which
    yields a progress event every iteration.

What is measured
----------------
Iterations per second of the inversion, the longest gap between two timer
ticks and its 99th percentile (a frozen GUI shows as a long gap), and the
number of events delivered to the GUI thread. The plugin keeps the design
with the shorter gaps at no loss of it/s.

Usage::

    xvfb-run -a python benchmarks/bench_plugin_responsiveness.py [--size 128] [--iters 150]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _inputs(size: int):
    from dippas.jobs import DippasJob
    from dippas.samples import camera_sample

    image, k = camera_sample(size)
    return image, k, DippasJob(device="cpu")


def run_design(design: str, size: int, iters: int) -> dict:
    """One inversion in ``design`` with a ticking QTimer; returns the figures."""
    import napari
    from napari.qt.threading import create_worker
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from dippas.dip.dippas_run import open_run
    from napari_dippas.widgets._common import start_task
    from napari_dippas.workers.core_task import CoreTask
    from napari_dippas.workers.events import RunProgress
    from napari_dippas.workers.inversion import drive_inversion

    image, k, job = _inputs(size)
    job = job.replace(max_iter=iters, stop_psnr=99.0)
    viewer = napari.Viewer(show=True)
    viewer.add_image(image, rgb=True)
    app = QApplication.instance()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    state = {"done": False, "events": 0, "iterations": 0}

    def on_event(ev) -> None:
        state["events"] += 1
        if isinstance(ev, RunProgress):
            state["iterations"] = ev.info["iteration"]

    def on_done(*_):
        state["done"] = True

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        timer.start()
        t0 = time.perf_counter()
        if design == "plain-thread":
            task = CoreTask(drive_inversion, run_dir, create={"job": job, "image": image, "fingerprint": k},
                            progress_kw=None, emit_kw="emit")
            worker = start_task(task, on_event, on_done, lambda exc: on_done())
        else:
            def generator():
                img, kk = job.prepare(image, k)
                run = open_run(run_dir, img, kk, job, resume=False)
                for ev in run.events():
                    yield RunProgress({"iteration": ev.iteration}, {})

            worker = create_worker(generator, _start_thread=False, _ignore_errors=True)
            worker.yielded.connect(on_event)
            worker.finished.connect(on_done)
            worker.start()
        while not state["done"]:
            app.processEvents()
            time.sleep(0.001)
        elapsed = time.perf_counter() - t0
        timer.stop()
        del worker
    viewer.close()
    gaps = np.diff(ticks) if len(ticks) > 1 else np.array([elapsed])
    return {"design": design, "its_per_s": iters / elapsed, "seconds": elapsed,
            "max_gap_ms": 1e3 * float(gaps.max()), "p99_gap_ms": 1e3 * float(np.percentile(gaps, 99)),
            "events": state["events"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128, help="crop side (default 128)")
    p.add_argument("--iters", type=int, default=150, help="iterations per design (default 150)")
    p.add_argument("--rounds", type=int, default=2, help="runs of each design, alternated (default 2)")
    args = p.parse_args(argv)
    import os

    print(f"size {args.size}, {args.iters} iterations, load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for design in ("plain-thread", "napari-worker"):  # warm-up: imports, Numba and torch caches
        run_design(design, 64, 3)
    print(f"{'design':<14} {'it/s':>6} {'max gap ms':>11} {'p99 gap ms':>11} {'events':>7}")
    for _ in range(args.rounds):
        for design in ("plain-thread", "napari-worker"):
            r = run_design(design, args.size, args.iters)
            print(f"{r['design']:<14} {r['its_per_s']:6.2f} {r['max_gap_ms']:11.1f} "
                  f"{r['p99_gap_ms']:11.1f} {r['events']:7d}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
