"""Seconds per DIPPAS iteration for the presets, on this machine.

Runs :meth:`dippas.dip.Inversion.step` (forward, loss, backward, Adam step,
gamma clamp) on the demo sample, after a few warm-up iterations, and prints
the median time per iteration for each preset.

Usage::

    python benchmarks/bench_dip_iteration.py [--size 512] [--threads 2] [--iters 8]
        [--presets paper fast] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import dippas  # noqa: F401  (sets passive OpenMP waits before torch starts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--presets", nargs="+", default=["paper", "fast"])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import torch

    from dippas.dip import Inversion, get_preset
    from dippas.samples import camera_sample

    torch.set_num_threads(args.threads)
    image, k = camera_sample(args.size)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} threads, "
          f"{args.size}x{args.size}, load average {load:.2f}")
    results = {}
    for name in args.presets:
        inv = Inversion(image, k, get_preset(name), device=args.device)
        for _ in range(args.warmup):
            inv.step()
        times = []
        for _ in range(args.iters):
            t0 = time.perf_counter()
            inv.step()
            times.append(time.perf_counter() - t0)
        results[name] = statistics.median(times)
        print(f"{name:6s} {results[name]:8.3f} s/iteration  ({1 / results[name]:.2f} it/s)", flush=True)
    if "paper" in results and "fast" in results:
        print(f"fast is {results['paper'] / results['fast']:.2f}x cheaper per iteration than paper")
    return 0


if __name__ == "__main__":
    sys.exit(main())
