"""Time and memory to open a large DIPPAS run folder in napari (lazy snapshot layer).

What runs
---------
A fake run folder with N snapshots of S x S (written through the store's own
writer, :class:`dippas.dip.store.TileWriter`) is opened with the plugin's
reader in a napari viewer, then the dims slider is moved to a frame in the
middle and the canvas redrawn. The snapshot layer is the store's memory map:
napari must neither copy nor scan the stack.

What is measured
----------------
Seconds from ``viewer.open`` to the layers being shown, and the growth of
the process's resident memory (``VmRSS``) when opening and after showing
one more frame. The target (issue 6) is < 2 s and < 300 MB extra for 3000
snapshots of 512x512 (2.4 GB on disk).

Usage::

    xvfb-run -a python benchmarks/bench_plugin_lazy.py             # 3000 x 512x512
    xvfb-run -a python benchmarks/bench_plugin_lazy.py --size 128  # quick
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def fake_run(path: Path, n: int, size: int, cell: int = 16) -> Path:
    """A one-tile run folder with ``n`` snapshots of ``size x size x 3``."""
    from dippas.dip.store import TileWriter, create_run_folder
    from dippas.dip.tiling import TileGeometry

    g = TileGeometry(0, 0, 0, 0, size, size, size, size)
    params = {"format": "dippas-run", "mode": "aware", "cell": cell, "sigma": 3.0,
              "image_shape": [size, size, 3], "tiles": [g.__dict__]}
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    create_run_folder(path, params, img, rng.normal(size=(size, size)).astype(np.float32))
    writer = TileWriter(path / "tiles" / g.name, g, cell)
    for i in range(n):
        writer.append_snapshot(np.roll(img, i, axis=1), i + 1, 30.0 + 1e-3 * i, 0.01, 0.1)
    writer.close()
    return path


def drop_file_cache(path: Path) -> None:
    """Ask the kernel to forget the file's cached pages (so reads would show in RSS)."""
    import os

    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="snapshots (default 3000)")
    ap.add_argument("--size", type=int, default=512, help="snapshot side (default 512)")
    ap.add_argument("--dir", default=None, help="where to write the fake run (default: a temp dir)")
    args = ap.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    root = Path(tempfile.mkdtemp(prefix="bench_lazy_", dir=args.dir))
    try:
        t0 = time.perf_counter()
        run = fake_run(root / "run", args.n, args.size)
        stack = run / "tiles" / "0_0" / "snapshots.npy"
        disk_mb = stack.stat().st_size / 1e6
        print(f"wrote {args.n} snapshots of {args.size}x{args.size}: {disk_mb:.0f} MB "
              f"in {time.perf_counter() - t0:.1f} s")
        drop_file_cache(stack)

        viewer = napari.Viewer(show=True)
        app = QApplication.instance()
        app.processEvents()
        rss0 = rss_mb()
        t0 = time.perf_counter()
        viewer.open(str(run), plugin="napari-dippas")
        app.processEvents()
        open_s = time.perf_counter() - t0
        open_mb = rss_mb() - rss0
        layer = viewer.layers["snapshots 0_0"]
        assert isinstance(layer.data, np.memmap) and layer.data.shape[0] == args.n

        t0 = time.perf_counter()
        viewer.dims.set_current_step(viewer.dims.ndim - 3, args.n // 2)
        app.processEvents()
        step_s = time.perf_counter() - t0
        step_mb = rss_mb() - rss0
        print(f"open: {open_s:.2f} s, +{open_mb:.0f} MB RSS")
        print(f"show frame {args.n // 2}: {step_s:.3f} s, +{step_mb:.0f} MB RSS in all "
              f"(stack {disk_mb:.0f} MB)")
        ok = open_s < 2.0 and step_mb < 300.0
        print("target (< 2 s, < 300 MB):", "met" if ok else "NOT met")
        viewer.close()
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
