"""Throughput of ``dippas batch`` on Dask distributed: photos per minute with 1 and 2 workers.

Runs the inpainting method (hole 5, L2, edges, nl_means: the defaults) on
the 16 natural Dresden photos of ``shared/data/dresden/natural`` (1024x1024
JPEG) through :func:`dippas.batch.plan_batch` and :func:`dippas.batch.run_batch`
on the default local cluster (:func:`dippas.batch.open_client`: worker
processes, one task at a time each, the machine's cores split between
them for Numba), once with 1 worker and once with 2, each into a fresh
output folder. The cluster's start-up and a warm-up task per worker are
timed apart; the throughput is the batch alone (hashing, planning,
anonymizing, metrics, atomic writes and records). It then checks that the
two runs wrote identical images, and prints both rates and their ratio,
with the 1-minute load average before and after each run (other work on
the machine competes for its cores).

Usage::

    python benchmarks/bench_batch.py            # 16 photos, 1 then 2 workers
    python benchmarks/bench_batch.py --quick    # 4 photos
    python benchmarks/bench_batch.py --repeat 2 # 1, 2, 1, 2 workers: best of each
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(os.environ.get("DIPPAS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _warm_up() -> None:
    """Import the method and load its compiled kernels in a worker."""
    import numpy as np

    from dippas.anonymize import anonymize_inpainting

    anonymize_inpainting(np.full((64, 64, 3), 128, np.uint8))


def run_once(photos: list[Path], workers: int, out: Path) -> dict:
    """Anonymize ``photos`` into ``out`` on a fresh local cluster of ``workers`` workers."""
    from dippas.batch import open_client, plan_batch, run_batch
    from dippas.batch.cluster import local_cluster_options

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open_client(workers=workers, threads_per_worker=1) as client:
        client.run(_warm_up)
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        plan = plan_batch([str(p) for p in photos], out, "inpainting")
        summary = run_batch(plan, client, retries=0)
        seconds = time.perf_counter() - t1
    if summary.failed:
        sys.exit(f"{len(summary.failed)} photos failed: {summary.failed[0]['error']}")
    env = local_cluster_options(workers, 1)["env"]
    return {"workers": workers, "numba_threads": env.get("NUMBA_NUM_THREADS", "?"),
            "startup_s": startup, "seconds": seconds, "photos": len(summary.done),
            "per_minute": 60.0 * len(summary.done) / seconds,
            "task_s": sum(d["seconds"] for d in summary.done) / len(summary.done),
            "load": f"{load:.1f}/{os.getloadavg()[0]:.1f}"}


def main(argv: list[str] | None = None) -> int:
    from dippas.batch.cluster import cpu_count
    from dippas.io import image_size

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 photos instead of 16")
    ap.add_argument("--repeat", type=int, default=1,
                    help="alternate 1 and 2 workers this many times; the best rate of each counts")
    args = ap.parse_args(argv)
    photos = sorted((DATA / "dresden" / "natural").glob("*.jpg"))
    if not photos:
        sys.exit(f"no photos under {DATA}/dresden/natural (set DIPPAS_DATA)")
    photos = photos[:4] if args.quick else photos
    h, w = image_size(photos[0])
    print(f"dippas batch, inpainting (defaults), {len(photos)} Dresden photos {w}x{h}, "
          f"{cpu_count()} cores, local Dask cluster (processes, 1 thread per worker)")
    print(f"{'workers':>7}  {'numba threads':>13}  {'start-up s':>10}  {'batch s':>8}  "
          f"{'s/photo in task':>15}  {'photos/min':>10}  {'load before/after':>17}")
    best: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        for rep in range(max(1, args.repeat)):
            for n in (1, 2):
                r = run_once(photos, n, Path(tmp) / f"out{n}-{rep}")
                best[n] = max(best.get(n, 0.0), r["per_minute"])
                print(f"{r['workers']:>7}  {r['numba_threads']:>13}  {r['startup_s']:>10.1f}  "
                      f"{r['seconds']:>8.1f}  {r['task_s']:>15.2f}  {r['per_minute']:>10.1f}  "
                      f"{r['load']:>17}")
        same = all((Path(tmp) / "out1-0" / p.with_suffix(".png").name).read_bytes()
                   == (Path(tmp) / "out2-0" / p.with_suffix(".png").name).read_bytes() for p in photos)
    print(f"photos/min: 1 worker {best[1]:.1f}, 2 workers {best[2]:.1f}; "
          f"ratio 2 workers / 1 worker: {best[2] / best[1]:.2f}x")
    print(f"outputs of both runs identical: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
