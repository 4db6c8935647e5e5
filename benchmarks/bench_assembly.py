"""Benchmark of the block assembler: switching B, L and tau on a stored run.

Creates a run-like set of arrays in a temporary folder:

* ``snapshots.npy``: M random uint8 snapshots of N x N x 3, written with
  :func:`numpy.lib.format.open_memmap` and reopened with ``mmap_mode="r"``
  (M = 2000, N = 512 by default: 1.5 GB on disk);
* ``cells.npy``: synthetic float64 ``(M, 3, N/c, N/c)`` cell statistics
  with a random correlation per cell, reopened as a memory map (true
  residuals of 2000 random images would take minutes and would not change
  the assembler's cost);
* PSNRs: increasing from 30 to 40 dB with noise.

Then times :meth:`dippas.assembly.Assembler.assemble` for every B and L,
first call for a block size (block NCC of every snapshot computed) and
repeated calls (cached), and a change of tau.

Usage::

    python benchmarks/bench_assembly.py            # 512x512, M=2000
    python benchmarks/bench_assembly.py --quick    # 512x512, M=200, fewer B and L

Note that the snapshot file was just written, so it is in the page cache:
times are those of an interactive session, not of a cold disk.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from dippas.assembly import Assembler


def make_run(folder: Path, m: int, size: int, cell: int,
             seed: int = 0) -> tuple[np.memmap, np.memmap, np.ndarray]:
    """Write random snapshots as a memory-mapped .npy; synthetic cells and PSNRs."""
    rng = np.random.default_rng(seed)
    path = folder / "snapshots.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(m, size, size, 3))
    chunk = 50
    for i in range(0, m, chunk):
        j = min(i + chunk, m)
        mm[i:j] = rng.integers(0, 256, (j - i, size, size, 3), dtype=np.uint8)
    mm.flush()
    del mm
    snapshots = np.load(path, mmap_mode="r")
    n = -(-size // cell)
    energy_w = rng.uniform(0.5, 2.0, (m, n, n)) * cell * cell
    energy_x = rng.uniform(0.5, 2.0, (m, n, n)) * cell * cell
    r = rng.normal(0.0, 0.05, (m, n, n))
    cells_path = folder / "cells.npy"
    np.save(cells_path, np.stack([r * np.sqrt(energy_w * energy_x), energy_w, energy_x], axis=1))
    cells = np.load(cells_path, mmap_mode="r")
    psnr = np.linspace(30.0, 40.0, m) + rng.normal(0.0, 0.3, m)
    return snapshots, cells, psnr


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Median wall time of ``repeat`` calls, and the last result."""
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="M=200 and a few configurations")
    ap.add_argument("--snapshots", type=int, default=None,
                    help="M (default 2000, 200 with --quick)")
    ap.add_argument("--size", type=int, default=512, help="image side N (default 512)")
    ap.add_argument("--cell", type=int, default=16, help="cell side c (default 16)")
    ap.add_argument("--repeat", type=int, default=3, help="repeats of the cached timing")
    args = ap.parse_args(argv)
    m = args.snapshots or (200 if args.quick else 2000)
    sizes = (64, 512) if args.quick else (32, 64, 128, 256, 512)
    counts = (1, 10) if args.quick else (1, 10, 100)

    # Compile (or load from the Numba cache) outside the timings.
    rng = np.random.default_rng(1)
    tiny = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    tiny_cells = rng.uniform(1, 2, (3, 3, 2, 2))
    Assembler(tiny, tiny_cells, np.arange(3.0), 16).assemble(16, 2, 1.0)

    with tempfile.TemporaryDirectory(prefix="bench_assembly_") as tmp:
        t0 = time.perf_counter()
        snapshots, cells, psnr = make_run(Path(tmp), m, args.size, args.cell)
        print(f"run: M={m} snapshots of {args.size}x{args.size}x3 uint8 (memmap, "
              f"{snapshots.nbytes / 2**30:.2f} GiB), cells c={args.cell} "
              f"{cells.shape} ({cells.nbytes / 2**20:.0f} MiB); "
              f"written in {time.perf_counter() - t0:.1f} s")
        # Warm the compiled kernels on the read-only memmap type too.
        Assembler(snapshots[:2], cells[:2], psnr[:2], args.cell).assemble(args.cell, 1, None)

        t_init, asm = timed(lambda: Assembler(snapshots, cells, psnr, args.cell))
        print(f"Assembler(...) (copies the cells): {t_init * 1e3:.1f} ms")
        tau = 0.0  # every snapshot is a candidate: the most work
        print(f"\nassemble(B, L, tau={tau}) with all {m} snapshots as candidates")
        print(f"{'B':>6} {'L':>5} {'first B (ms)':>13} {'cached (ms)':>12} {'unique snaps':>13}")
        for b in sizes:
            for i, n_avg in enumerate(counts):
                if i == 0:
                    asm.clear_cache()
                    t_first, _ = timed(lambda: asm.assemble(b, n_avg, tau))
                    first = f"{t_first * 1e3:13.1f}"
                else:
                    first = f"{'':>13}"
                t_rep, res = timed(lambda: asm.assemble(b, n_avg, tau), args.repeat)
                uniq = np.unique(res.selection[res.selection >= 0]).size
                print(f"{b:>6} {n_avg:>5} {first} {t_rep * 1e3:12.1f} {uniq:>13}")
        b, n_avg = sizes[1], counts[-1]
        for tau in (35.0, 39.0, 45.0):
            t, res = timed(lambda: asm.assemble(b, n_avg, tau), args.repeat)
            print(f"tau={tau:>4} B={b} L={n_avg}: {t * 1e3:.1f} ms, "
                  f"{res.params['n_candidates']} candidates, "
                  f"fallback={res.params['psnr_fallback']}")
        t, hm = timed(lambda: asm.snapshot_heatmap(m - 1, sizes[0]), args.repeat)
        print(f"snapshot_heatmap(B={sizes[0]}), cached: {t * 1e3:.2f} ms, shape {hm.shape}")
        del snapshots, asm


if __name__ == "__main__":
    main()
