"""Where the time of one batched step of several tiles goes (``torch.profiler``).

``dippas.dip.tile_batch.step_together`` runs the tiles of a photo as one
vmapped model. Its cost per tile should fall as tiles are added; where it
does not, something is paid per tile (Python, small kernels, syncs). This
script builds ``--tiles`` engines on synthetic tiles of ``--size`` pixels,
times ``--steps`` batched steps (and one tile alone for comparison), then
profiles a few steps and prints the operators by their own CPU time and,
on a GPU, by their device time.

Usage::

    python benchmarks/profile_tile_batch.py --device cpu --size 32 --tiles 8
    python benchmarks/profile_tile_batch.py --device cuda --size 128 --tiles 8,64 --preset fast
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gpu_tiles import build_engines, seconds_per_step  # noqa: E402


def engines_for(preset: str, size: int, count: int, device: str) -> list:
    """``count`` inversions of seeded random tiles with a Gaussian pattern."""
    rng = np.random.default_rng(0)
    tiles = [(rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
              rng.normal(0, 0.01, (size, size)).astype(np.float32)) for _ in range(count)]
    return build_engines(preset, tiles, device)


def profile(engines: list, steps: int, rows: int) -> None:
    """Print the operators of ``steps`` batched steps by self CPU (and device) time."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    from dippas.dip.tile_batch import step_together

    activities = [ProfilerActivity.CPU]
    if engines[0].device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with torch_profile(activities=activities) as prof:
        for _ in range(steps):
            step_together(engines)
    table = prof.key_averages()
    print(table.table(sort_by="self_cpu_time_total", row_limit=rows))
    if engines[0].device.type == "cuda":
        print(table.table(sort_by="self_cuda_time_total", row_limit=rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--size", type=int, default=64, help="tile side (default 64)")
    ap.add_argument("--tiles", default="8", help="comma-separated tile counts (default 8)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--profile-steps", type=int, default=3, help="profiled steps (0: none)")
    ap.add_argument("--rows", type=int, default=25)
    args = ap.parse_args(argv)
    alone = seconds_per_step(engines_for(args.preset, args.size, 1, args.device), args.steps, args.warmup)
    print(f"{args.preset} {args.size}²: 1 tile alone {alone * 1e3:.1f} ms/step")
    for n in (int(t) for t in args.tiles.split(",")):
        engines = engines_for(args.preset, args.size, n, args.device)
        dt = seconds_per_step(engines, args.steps, args.warmup)
        print(f"{args.preset} {args.size}²: {n} tiles together {dt * 1e3:.1f} ms/step, "
              f"{dt / n * 1e3:.1f} ms per tile ({alone / (dt / n):.2f}x alone)", flush=True)
        if args.profile_steps:
            profile(engines, args.profile_steps, args.rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
