"""Iterations of the DIPPAS inversion to a PSNR level, for preset variants, on protocol crops.

The iteration count, not the cost of one iteration, decides most of the time
to anonymize (issue 13), and one crop is one random draw of it. This script
runs :class:`dippas.dip.Inversion` (PRNU-aware, the scorer's K cut like the
crop, the preset's fixed seed so that every setting starts alike) on the
centre crops of the tuning protocol's quadrants (``tune_protocol.py``) and
prints, per setting, the iteration at which the raw network output first
reached ``--level`` dB on each crop, their mean, and the median NCC of the
8-bit snapshots within ``level ± 0.5`` dB against K (null scale ``1/side``
for a square crop).

Settings use the syntax of ``bench_time_to_anonymize.py``: ``default``, a
preset name, or ``LABEL=PRESET:field=value:...``; ``bf16=1`` as a field runs
under bfloat16 autocast.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_iterations_to_target.py \\
        --settings 'default,n01=fast:z_noise_std=0.01' [--size 128] [--level 38]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The five quadrants the first scan used (three cameras, both D70 bodies).
DEFAULT_CROPS = ("Nikon_D200_0_14902_q3", "Nikon_D70s_0_22115_q2", "Nikon_D70_1_20543_q2",
                 "Nikon_D70_0_19593_q0", "Nikon_D70s_0_21853_q2")


def _snapshot_ncc(snapshot: np.ndarray, k: np.ndarray) -> float:
    from dippas.correlation import attribution_reference, ncc
    from dippas.residual import noise_residual

    return ncc(noise_residual(snapshot, 3.0), attribution_reference(snapshot, k))


def iterations_to_level(image: np.ndarray, k: np.ndarray, preset, level: float, max_iter: int,
                        bf16: bool) -> tuple[int | None, float | None]:
    """First iteration at ``level`` dB, and the median snapshot NCC within ``level ± 0.5``."""
    from dippas.dip import Inversion

    preset = preset.with_overrides(max_iter=max_iter, stop_psnr=level + 1.0,
                                   save_psnr=level - 0.5)
    inv = Inversion(image, k, preset, device="cpu", bf16=bf16)
    first, nccs = None, []
    while not inv.done:
        ev = inv.step()
        if first is None and ev.psnr >= level:
            first = ev.iteration
        if ev.snapshot is not None and ev.psnr < level + 0.5:
            nccs.append(_snapshot_ncc(ev.snapshot, k))
    return first, (float(np.median(nccs)) if nccs else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="default")
    ap.add_argument("--crops", default=",".join(DEFAULT_CROPS),
                    help="protocol item ids (photo stem + _q0.._q3)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--level", type=float, default=38.0)
    ap.add_argument("--max-iter", type=int, default=2500)
    ap.add_argument("--out", type=Path, default=Path("/tmp/tune"),
                    help="fingerprint cache of tune_protocol.py")
    args = ap.parse_args(argv)

    import torch

    import tune_protocol as tp
    from bench_time_to_anonymize import job_of

    items = {it["id"]: it for it in tp.load_items(args.size)}
    wanted = [c for c in args.crops.split(",") if c]
    unknown = [c for c in wanted if c not in items]
    if unknown:
        ap.error(f"unknown crop id(s): {', '.join(unknown)}")
    prints = tp.load_fingerprints(args.out, "all")
    print(f"{len(wanted)} crops of {args.size}², level {args.level:g} dB, "
          f"torch threads {torch.get_num_threads()}, null NCC scale {1 / args.size:.4f}")
    for setting in args.settings.split(","):
        fields = setting.split(":")
        bf16 = "bf16=1" in fields
        label, job = job_of(":".join(f for f in fields if f != "bf16=1"))
        preset = job.preset_parameters()
        its, nccs, t0 = [], [], time.perf_counter()
        for cid in wanted:
            item = items[cid]
            k = tp._cut(prints[item["device"]], item["window"])
            first, n = iterations_to_level(item["image"], k, preset, args.level, args.max_iter, bf16)
            its.append(first)
            nccs.append(n)
        done = [i for i in its if i is not None]
        mean = f"{statistics.mean(done):.0f}" if done else "-"
        print(f"{label:12s} iterations {', '.join(str(i) if i else '>' + str(args.max_iter) for i in its)}"
              f"  mean {mean}  NCC {', '.join('-' if n is None else f'{n:+.4f}' for n in nccs)}"
              f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
