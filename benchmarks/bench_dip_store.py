"""Peak memory of a long DIPPAS run through the snapshot store and the cells stage.

What runs
---------
The real run machinery (:class:`dippas.dip.DippasRun`: the iteration loop,
``snapshots.npy`` / ``table.csv`` / ``history.csv`` appends, checkpoints, and
the background thread computing each snapshot's residual and cell
statistics), with one substitution: the snapshot source is a **fake
network**, a single 1x1 convolution + sigmoid on a 1-channel ``z``, so that
an iteration costs milliseconds instead of a U-Net pass. With
``save_psnr`` near 0 dB every iteration is stored, so N iterations give N
snapshots of ``size x size x 3`` uint8.

What is measured
----------------
Resident memory (``VmRSS``) sampled during the run, and the process's peak
RSS (``getrusage``). The target (issue) is a 3000-snapshot 512x512 run
under 2 GB, and RSS that does not grow with the number of snapshots.

Usage::

    python benchmarks/bench_dip_store.py            # 3000 snapshots of 512x512 (2.4 GB on disk)
    python benchmarks/bench_dip_store.py --quick    # 300 snapshots of 256x256
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def fake_network(preset):
    """The fake snapshot source: a 1x1 convolution and a sigmoid."""
    import torch

    return torch.nn.Sequential(torch.nn.Conv2d(preset.z_channels, 3, 1), torch.nn.Sigmoid())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 snapshots of 256x256")
    ap.add_argument("--snapshots", type=int, default=None, help="number of snapshots (default 3000)")
    ap.add_argument("--size", type=int, default=None, help="snapshot side in pixels (default 512)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="parent folder of the run (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the run folder")
    args = ap.parse_args(argv)
    n = args.snapshots or (300 if args.quick else 3000)
    size = args.size or (256 if args.quick else 512)

    import torch
    from dippas.dip import DippasRun, RunStore, get_preset

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    base = 128 + 60 * np.sin(x / 17.0)[..., None] * np.cos(y / 23.0)[..., None]
    image = np.clip(base + rng.normal(0, 4, (size, size, 3)), 0, 255).astype(np.uint8)
    k = rng.normal(0, 1, (size, size)).astype(np.float32)
    preset = get_preset("fast", max_iter=n, save_psnr=1e-3, stop_psnr=99.0, lr=1e-2).with_overrides(
        z_channels=1, widths=(4,), skip_channels=())

    parent = Path(tempfile.mkdtemp(prefix="bench_dip_store_", dir=args.dir))
    run_dir = parent / "run"
    frame_mb = size * size * 3 / 1e6
    print(f"fake snapshot source (1x1 conv + sigmoid), real store + cells path: "
          f"{n} snapshots of {size}x{size}x3 uint8 ({frame_mb:.2f} MB each, "
          f"{n * frame_mb / 1000:.2f} GB in total)")
    print(f"run folder: {run_dir}")
    rss0 = rss_mb()
    samples: list[tuple[int, float]] = []
    marks = {max(1, round(n * f)) for f in (0.01, 0.1, 0.25, 0.5, 0.75, 1.0)}

    def callback(ev) -> None:
        if ev.iteration in marks:
            samples.append((ev.iteration, rss_mb()))

    t0 = time.perf_counter()
    run = DippasRun.create(run_dir, image, k, preset=preset, tile=size, device="cpu",
                           checkpoint_every=500, network_factory=fake_network)
    t_inv = [0.0]

    def cells_progress(done: int, total: int) -> None:
        if not t_inv[0]:
            t_inv[0] = time.perf_counter() - t0
            samples.append((-done, rss_mb()))  # cells done when the inversion ended

    summary = run.run(callback=callback, cancel=None, cells_progress=cells_progress)
    elapsed = time.perf_counter() - t0
    store = RunStore(run_dir).tile(0, 0)
    disk = sum(f.stat().st_size for f in store.path.iterdir())

    print(f"baseline RSS (python + torch + dippas, before the run): {rss0:8.1f} MB")
    for it, mb in samples:
        if it < 0:
            print(f"  RSS when the inversion ended ({-it} cells done):  {mb:8.1f} MB")
        else:
            print(f"  RSS after {it:5d} snapshots:                     {mb:8.1f} MB")
    peak = peak_rss_mb()
    print(f"peak RSS: {peak:.1f} MB  (growth over baseline {peak - rss0:.1f} MB)")
    print(f"stored: {store.n_snapshots} snapshots, {store.n_cells} cell frames, "
          f"{disk / 1e9:.2f} GB on disk")
    print(f"time: {elapsed:.1f} s total, inversion loop {t_inv[0]:.1f} s "
          f"({n / max(t_inv[0], 1e-9):.0f} snapshots/s), cells catch-up {elapsed - t_inv[0]:.1f} s")
    ok = store.n_snapshots == n and store.n_cells == n and summary.complete
    target = 2048.0
    print(f"result: {'OK' if ok else 'INCOMPLETE'}; peak RSS {'<' if peak < target else '>='} "
          f"{target:.0f} MB target")
    if not args.keep:
        shutil.rmtree(parent, ignore_errors=True)
    return 0 if ok and peak < target else 1


if __name__ == "__main__":
    sys.exit(main())
