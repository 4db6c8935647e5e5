"""Tiles as Dask tasks: the wall time of one tiled DIPPAS anonymization, sequential vs workers.

What runs
---------
The centre crop of ``--size`` pixels (default 256) of a shared natural
Dresden photo (``../shared/data/dresden/natural``) is anonymized PRNU-aware
with its camera's fingerprint (estimated from the shared flat-fields at the
crop size), through the Python API: ``DippasJob(tile=--tile,
max_iter=--max-iter, seed=1, device='cpu')``, every other option at its
default (the default tile overlap, 32). With ``--tile 144`` a 256-pixel
crop is a 2x2 grid. The iteration cap is far below what an anonymization
needs: the benchmark measures the execution, not the method.

Three runs, each into a new run folder, timed from the call to the
assembled output:

* ``sequential, T threads``: ``workers=1``, in this process, torch with
  ``--threads`` threads (default 2: the cores of the reference machine);
* ``sequential, 1 thread``: the same with one torch thread, the rounding
  each worker has;
* ``N Dask workers x 1 thread``: ``workers=--workers`` (default 2), a local
  cluster started and closed inside the timed call, one torch thread per
  worker (the cores divided between the workers by the batch layer).

What is printed
---------------
Per run: the wall seconds, the speed-up over the first run, and whether its
output is bit-identical to each sequential output (with the largest
absolute difference in grey levels when not).

Usage::

    python benchmarks/bench_dask_tiles.py                       # 256² crop, 2x2 tiles of 144
    python benchmarks/bench_dask_tiles.py --max-iter 20         # a quick check
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tile_seams import crop_and_fingerprint  # noqa: E402  (the same crop and K)


def timed_run(job, image, k, folder: Path, name: str, threads: int | None) -> tuple[np.ndarray, float]:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    out = job.run(image, k, folder / name)
    return out, time.perf_counter() - t0


def main() -> None:
    import torch

    from dippas.dip.tiling import tile_grid
    from dippas.jobs import DippasJob

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photo", default="Nikon_D200_0_14902",
                   help="a photo of dresden/natural (default Nikon_D200_0_14902)")
    p.add_argument("--size", type=int, default=256, help="crop side (default 256)")
    p.add_argument("--tile", type=int, default=144, help="tile side (default 144: a 2x2 grid)")
    p.add_argument("--max-iter", type=int, default=150, help="iteration cap per tile (default 150)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads of the sequential run (default 2)")
    p.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    args = p.parse_args()

    image, k = crop_and_fingerprint(args.photo, args.size)
    job = DippasJob(tile=args.tile, max_iter=args.max_iter, seed=1, device="cpu")
    tiles = tile_grid(args.size, args.size, job.tile, job.preset_parameters().pad_multiple,
                      job.overlap)
    grid = f"{max(t.ty for t in tiles) + 1}x{max(t.tx for t in tiles) + 1}"
    print(f"crop {args.size}x{args.size} of {args.photo}, tiles {grid} of {args.tile} "
          f"(overlap {job.overlap}), preset {job.preset}, max_iter {args.max_iter}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} torch threads by default")
    with tempfile.TemporaryDirectory(prefix="bench-dask-tiles-") as tmp:
        folder = Path(tmp)
        runs = [(f"sequential, {args.threads} threads", job, args.threads),
                ("sequential, 1 thread", job, 1),
                (f"{args.workers} Dask workers x 1 thread", job.replace(workers=args.workers), None)]
        results = []
        for i, (name, j, threads) in enumerate(runs):
            out, seconds = timed_run(j, image, k, folder, f"run{i}", threads)
            results.append((name, out, seconds))
            print(f"  done: {name}, {seconds:.1f} s", flush=True)

    base = results[0][2]

    def same(a: np.ndarray, b: np.ndarray) -> str:
        if np.array_equal(a, b):
            return "yes"
        return f"no (max abs diff {np.abs(a.astype(int) - b.astype(int)).max()})"

    print()
    print(f"| run | wall s | speed-up | = {results[0][0]} | = {results[1][0]} |")
    print("|---|---:|---:|---|---|")
    for name, out, seconds in results:
        print(f"| {name} | {seconds:.1f} | {base / seconds:.2f}x | {same(out, results[0][1])} "
              f"| {same(out, results[1][1])} |")


if __name__ == "__main__":
    main()
