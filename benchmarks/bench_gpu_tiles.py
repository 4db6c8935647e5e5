"""DIPPAS on a GPU: iterations per second with tiles batched, and whole anonymizations.

What runs
---------
1. **Speed per iteration** at ``--size`` (default 512): for each preset of
   ``--presets``, one tile stepped alone (``Inversion.step``, the product's
   path for one tile) and ``R`` tiles of that size stepped together as one
   batched model (:func:`dippas.dip.tile_batch.step_together`) for each ``R``
   of ``--batches``. The tiles are windows of a shared Dresden crop with its
   camera's K. ``--warmup`` steps, then ``--iters`` timed steps. Printed:
   seconds per step, tile-iterations per second (``R`` / seconds per step),
   and the peak GPU memory; with ``--cudnn-benchmark off,on``, once without and
   once with ``torch.backends.cudnn.benchmark``.
2. **Anonymization of centre crops** of the 1024² crop (``--crop-sides``:
   512, one tile; 1024, 2 x 2 tiles of 512):
   ``DippasJob(device=...)`` with every other option at its default, PRNU-aware
   with the camera's K estimated from the shared flat-fields, through
   ``job.invert`` and ``job.assemble``; once per ``--tiles-at-once`` value.
   Printed: wall seconds (set-up, inversion and the background stage), when
   the last iteration ended and how many snapshots had their cell statistics
   then (the rest is the background stage catching up), iterations per
   tile, stop reasons, the assembled output's PSNR and its NCC
   with K against the null scale 1/sqrt(N).
3. **The 3008x2000 shared photo** (``dresden/full``) the same way, with the
   defaults (tile 512, overlap 32: 24 tiles). The shared flat-fields are
   1024² centre crops, so no K of the whole frame exists here: the photo is
   anonymized PRNU-aware against a Gaussian K of the same standard deviation
   as its camera's (seeded), which it does not carry. Its stop rule (every
   tile's assembly at >= 38 dB with block NCCs at chance) is then met as soon
   as the PSNR is; the time is that of reaching the PSNR target on every
   tile, the larger part of the cost. ``--full-seconds`` caps it; a capped
   run prints how far it got.

Every figure is also written as one JSON object per line to ``--out``.

Usage::

    python benchmarks/bench_gpu_tiles.py --device cuda                      # everything
    python benchmarks/bench_gpu_tiles.py --device cpu --size 64 --quick     # a check on CPU
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DRESDEN = ROOT.parent / "shared" / "data" / "dresden"
CROP = "Nikon_D70_1_20543"


def emit(out: Path | None, **record) -> None:
    """Append ``record`` as one JSON line to ``out``."""
    if out is not None:
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")


def crop_and_fingerprint(dresden: Path, name: str, k_file: Path | None):
    """The natural 1024² crop ``name`` and its camera's K (from ``k_file`` or the flat-fields)."""
    import dippas
    from dippas.io import load_image

    image = load_image(dresden / "natural" / f"{name}.jpg")
    if k_file is not None:
        return image, np.load(k_file)
    camera = name.rsplit("_", 1)[0]
    flats = sorted((dresden / "flatfield" / camera).glob("*.jpg"))
    return image, dippas.estimate_fingerprint(flats, crop=image.shape[0])


def windows(image: np.ndarray, k: np.ndarray, side: int, count: int):
    """``count`` windows of ``side`` pixels of (image, K), stepping over the crop."""
    h, w = image.shape[:2]
    starts = [(y, x) for y in range(0, h - side + 1, max(1, side // 4))
              for x in range(0, w - side + 1, max(1, side // 4))]
    picks = [starts[(i * 7) % len(starts)] for i in range(count)]
    return [(image[y:y + side, x:x + side], k[y:y + side, x:x + side]) for y, x in picks]


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_engines(preset: str, tiles, device: str, bf16: bool = False) -> list:
    """One :class:`~dippas.dip.Inversion` per ``(image, K)`` of ``tiles``, seeds 1, 2, ..."""
    from dippas.dip import Inversion, get_preset

    p = get_preset(preset)
    return [Inversion(img, kk, p.with_overrides(seed=1 + i), device=device, bf16=bf16)
            for i, (img, kk) in enumerate(tiles)]


def seconds_per_step(engines: list, iters: int, warmup: int) -> float:
    """Wall seconds of one step of all ``engines`` (``step_together``: one alone steps
    on its own; more, batched), after ``warmup`` steps."""
    from dippas.dip.tile_batch import step_together

    for _ in range(warmup):
        step_together(engines)
    _sync(engines[0].device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step_together(engines)
    _sync(engines[0].device)
    return (time.perf_counter() - t0) / iters


def step_speed(preset: str, side: int, together: int, tiles, device: str, iters: int,
               warmup: int, bf16: bool) -> dict:
    """Seconds per step of ``together`` tiles (1: ``Inversion.step``; more: batched)."""
    import torch

    engines = build_engines(preset, tiles[:together], device, bf16)
    dev = engines[0].device
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    dt = seconds_per_step(engines, iters, warmup)
    peak = torch.cuda.max_memory_allocated(dev) / 2 ** 30 if dev.type == "cuda" else float("nan")
    del engines
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return {"preset": preset, "bf16": bf16, "side": side, "tiles": together,
            "s_per_step": dt, "tile_its_per_s": together / dt, "peak_gib": peak}


def anonymize(image: np.ndarray, k: np.ndarray, device: str, tiles_at_once: int | None,
              max_seconds: float, **job_fields) -> dict:
    """``DippasJob`` defaults on ``image`` with K: wall time, iterations, PSNR and NCC."""
    import dippas
    from dippas.dip import RunStore
    from dippas.errors import Cancelled, DippasInputError
    from dippas.jobs import DippasJob
    from dippas.metrics import psnr
    from dippas.progress import CancelToken

    job = DippasJob(device=device, tiles_at_once=tiles_at_once, **job_fields)
    token = CancelToken()
    timer = threading.Timer(max_seconds, token.cancel)
    t0 = time.perf_counter()
    finished = True
    last = {"iteration_at": math.nan, "cells_total": 0, "cells_done_at_end": 0}

    def on_iteration(_ev) -> None:
        last["iteration_at"] = time.perf_counter() - t0

    def cells_progress(done: int, total: int) -> None:
        if not last["cells_total"]:  # the first report: where the background stage stood
            last.update(cells_total=total, cells_done_at_end=done)

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        timer.start()
        try:
            job.invert(image, k, run_dir, cancel=token, on_iteration=on_iteration,
                       cells_progress=cells_progress)
        except Cancelled:
            finished = False
        finally:
            timer.cancel()
        seconds = time.perf_counter() - t0
        store = RunStore(run_dir)
        statuses = [store.tile(g.ty, g.tx).status for g in store.tiles]
        try:
            out = job.assemble(run_dir).image
        except DippasInputError:  # a capped run with a tile that has no snapshot yet
            out = None
        reference = job.prepare(image, k)[0]
    its = [s.get("iteration", 0) for s in statuses]
    return {"tiles": len(statuses), "tiles_at_once": tiles_at_once, "finished": finished,
            "seconds": seconds, "last_iteration_s": last["iteration_at"],
            "snapshots": last["cells_total"], "cells_done_when_inversion_ended": last["cells_done_at_end"], "iterations_mean": float(np.mean(its)), "iterations_max": max(its),
            "tile_iterations": int(sum(its)),
            "stop_reasons": sorted({str(s.get("stop_reason")) for s in statuses}),
            "psnr": float("nan") if out is None else psnr(reference, out),
            "ncc": float("nan") if out is None else dippas.attribution_scores(out, k)["ncc"],
            "null": 1.0 / math.sqrt(image.shape[0] * image.shape[1])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dresden", type=Path, default=DRESDEN, help="the Dresden data folder")
    p.add_argument("--k-file", type=Path, default=None,
                   help="K of the crop's camera at 1024² as .npy (default: from the flat-fields)")
    p.add_argument("--crop", default=CROP, help=f"natural crop (default {CROP})")
    p.add_argument("--size", type=int, default=512, help="tile side of part 1 (default 512)")
    p.add_argument("--presets", default="fast,paper")
    p.add_argument("--batches", default="2,4,8,16,24", help="tiles stepped together in part 1")
    p.add_argument("--paper-batches", default="2,4,8", help="the same for the paper preset")
    p.add_argument("--bf16", action="store_true", help="also time fast with bf16 autocast")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--tiles-at-once", default="default,1",
                   help="part 2: 'default' (the job's None) and numbers")
    p.add_argument("--crop-sides", default="512,1024",
                   help="part 2: centre crops of the 1024² crop (512: one tile; 1024: 2 x 2)")
    p.add_argument("--crop-seconds", type=float, default=150.0, help="cap per part-2 run")
    p.add_argument("--cudnn-benchmark", default="off",
                   help="part 1: 'off', 'on' or 'off,on' (torch.backends.cudnn.benchmark)")
    p.add_argument("--full-seconds", type=float, default=240.0, help="cap of part 3")
    p.add_argument("--parts", default="1,2,3")
    p.add_argument("--quick", action="store_true", help="small sizes: a check of the script")
    p.add_argument("--out", type=Path, default=None, help="JSON lines file")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    import torch

    from dippas.dip.device import resolve_device
    from dippas.io import load_image

    dev = resolve_device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {name}", flush=True)
    emit(args.out, part="env", torch=torch.__version__, device=name)
    image, k = crop_and_fingerprint(args.dresden, args.crop, args.k_file)
    if args.quick:
        image, k = image[:128, :128], k[:128, :128]

    if "1" in parts:
        print(f"{'preset':<6} {'bf16':<5} {'side':>5} {'tiles':>5} {'s/step':>8} {'tile-it/s':>10} "
              f"{'peak GiB':>9} cudnn.benchmark", flush=True)
        configs = []
        for preset in args.presets.split(","):
            batches = args.paper_batches if preset == "paper" else args.batches
            configs += [(preset, n, False) for n in [1] + [int(b) for b in batches.split(",") if b]]
        if args.bf16:
            configs += [("fast", n, True) for n in (1, 8)]
        most = max(n for _, n, _ in configs)
        tiles = windows(image, k, args.size, most)
        modes = args.cudnn_benchmark.split(",")
        configs = [(c, mode) for mode in modes for c in configs]
        for (preset, n, bf16), mode in configs:
            torch.backends.cudnn.benchmark = mode == "on"
            try:
                r = step_speed(preset, args.size, n, tiles, args.device, args.iters, args.warmup,
                               bf16)
                r["cudnn_benchmark"] = mode
            except Exception as exc:  # out of memory, say: print it and go on
                print(f"{preset:<6} {str(bf16):<5} {args.size:5d} {n:5d} failed: "
                      f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}", flush=True)
                emit(args.out, part="speed", preset=preset, tiles=n, bf16=bf16, error=str(exc)[:300])
                continue
            print(f"{preset:<6} {str(bf16):<5} {r['side']:5d} {n:5d} {r['s_per_step']:8.4f} "
                  f"{r['tile_its_per_s']:10.1f} {r['peak_gib']:9.2f} {mode}", flush=True)
            emit(args.out, part="speed", **r)
        torch.backends.cudnn.benchmark = False  # parts 2 and 3 run the product as it is

    def report(label: str, r: dict) -> None:
        print(f"{label}: {r['tiles']} tiles, tiles_at_once {r['tiles_at_once']}, "
              f"{'finished' if r['finished'] else 'CAPPED'} in {r['seconds']:.1f} s; iterations per "
              f"tile mean {r['iterations_mean']:.0f}, max {r['iterations_max']}; last iteration at "
              f"{r['last_iteration_s']:.1f} s, cell statistics of {r['cells_done_when_inversion_ended']}"
              f" of {r['snapshots']} snapshots done then; stop "
              f"{','.join(r['stop_reasons'])}; PSNR {r['psnr']:.2f} dB, NCC {r['ncc']:+.4f} "
              f"(null 1/sqrt(N) {r['null']:.4f})", flush=True)
        emit(args.out, part=label, **r)

    fields = {"tile": 64, "tile_overlap": 16} if args.quick else {}
    if "2" in parts:
        from dippas.fingerprint import centre_crop

        for side in (int(v) for v in args.crop_sides.split(",")):
            side = min(side, image.shape[0])
            img, kk = centre_crop(image, (side, side)), centre_crop(k, (side, side))
            for value in args.tiles_at_once.split(","):
                n = None if value == "default" else int(value)
                try:
                    r = anonymize(img, kk, args.device, n, args.crop_seconds, **fields)
                except Exception as exc:
                    print(f"crop run {side} tiles_at_once={value} failed: {type(exc).__name__}: "
                          f"{exc}", flush=True)
                    continue
                report(f"crop {args.crop} {side}x{side}", r)

    if "3" in parts:
        full = load_image(next((args.dresden / "full").glob("*")))
        if args.quick:
            full = full[:192, :256]
        rng = np.random.default_rng(0)
        k_full = (rng.standard_normal(full.shape[:2]) * float(np.std(k))).astype(np.float32)
        try:
            r = anonymize(full, k_full, args.device, None, args.full_seconds, **fields)
            report(f"full photo {full.shape[1]}x{full.shape[0]} (Gaussian K)", r)
        except Exception as exc:
            print(f"full photo failed: {type(exc).__name__}: {exc}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
