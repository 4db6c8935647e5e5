"""Wall time for DIPPAS to anonymize a Dresden crop: PSNR >= target and |NCC| at chance.

What runs
---------
For each shared natural Dresden photo (``../shared/data/dresden/natural``),
its centre crop of ``--size`` pixels is anonymized PRNU-aware with the
camera's fingerprint (estimated from the shared flat-fields at the crop
size), once with the defaults of ``dippas anonymize`` (``dippas.jobs.DippasJob()``)
and once per preset. Every ``--check-every`` iterations, once the network's
PSNR has reached the target, the run folder is assembled with the job's B, L,
τ and rule, and the assembled output is scored. The clock stops at the first
assembly with PSNR >= ``--target`` dB and |NCC with K| <= 1/sqrt(N), N the
pixel count (the null scale of the NCC), or at ``--max-seconds``.

What is printed
---------------
Per crop and setting: seconds, iterations, the PSNR and NCC of the output
at the stop, and whether both targets were met; per setting, the totals and
C = PSNR (1 - 2 |AUC - 0.5|) over the crops used, with the AUC computed
against every other camera's fingerprint (so a handful of crops gives a
rough C only).

Usage::

    python benchmarks/bench_time_to_anonymize.py                       # 256², 4 crops
    python benchmarks/bench_time_to_anonymize.py --size 512 --crops 2 --presets fast
    python benchmarks/bench_time_to_anonymize.py --quick              # 64², 1 crop, a check
    python benchmarks/bench_time_to_anonymize.py --presets 'default,try=fast:lr=0.005:z_noise_std=0.03'

A setting is ``default`` (``DippasJob()``), a preset name, or
``LABEL=PRESET:FIELD=VALUE:...`` with fields of the preset (registered as
a custom preset ``LABEL``) or of the job (``target_psnr``,
``psnr_threshold``, ``block_size``, ``blocks``, ``rule``; ``none`` for None).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DRESDEN = ROOT.parent / "shared" / "data" / "dresden"


def camera_fingerprints(size: int) -> dict[str, np.ndarray]:
    """K of every shared camera, estimated from its flat-fields at the centre crop ``size``."""
    import dippas

    return {d.name: dippas.estimate_fingerprint(sorted(d.glob("*.jpg")), crop=size)
            for d in sorted((DRESDEN / "flatfield").iterdir()) if d.is_dir()}


def crops(size: int, count: int) -> list[tuple[str, np.ndarray]]:
    """``count`` natural photos (one per camera first), centre-cropped to ``size``."""
    from dippas.fingerprint import centre_crop
    from dippas.io import load_image

    files = sorted((DRESDEN / "natural").glob("*.jpg"))
    by_camera: dict[str, list[Path]] = {}
    for f in files:
        by_camera.setdefault(f.stem.rsplit("_", 1)[0], []).append(f)
    order = [fs[i] for i in range(max(map(len, by_camera.values())))
             for fs in by_camera.values() if i < len(fs)]
    return [(f.stem, centre_crop(load_image(f), (size, size))) for f in order[:count]]


def _value(text: str):
    """A setting's value: None, true/false, a number, a tuple of ints (``8/16/32``) or a word."""
    if text.lower() == "none":
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "/" in text:
        return tuple(int(v) for v in text.split("/"))
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def job_of(setting: str):
    """``(label, DippasJob)`` of a ``--presets`` entry (see the module's docstring)."""
    import dataclasses

    from dippas.dip.presets import get_preset, register_preset
    from dippas.jobs import DippasJob

    if setting == "default":
        return setting, DippasJob(device="cpu")
    if "=" not in setting.split(":", 1)[0]:
        return setting, DippasJob(device="cpu", preset=setting)
    label, spec = setting.split("=", 1)
    base, *pairs = spec.split(":")
    fields = dict((k, _value(v)) for k, v in (pair.split("=", 1) for pair in pairs))
    job_fields = {f.name for f in dataclasses.fields(DippasJob)} - {"preset"}
    on_job = {k: v for k, v in fields.items() if k in job_fields}
    on_preset = {k: v for k, v in fields.items() if k not in job_fields}
    preset = base
    if on_preset:
        register_preset(get_preset(base, **on_preset), name=label)
        preset = label
    return label, DippasJob(device="cpu", preset=preset, **on_job)


def time_to_target(job, image: np.ndarray, k: np.ndarray, target: float, check_every: int,
                   max_seconds: float) -> dict:
    """Invert until the assembled output meets the targets (or the run or the time ends)."""
    import dippas
    from dippas.errors import Cancelled, DippasInputError
    from dippas.metrics import psnr
    from dippas.progress import CancelToken

    reference = job.prepare(image, k)[0]
    null = 1.0 / math.sqrt(image.shape[0] * image.shape[1])
    token = CancelToken()
    state = {"iteration": 0, "psnr": float("nan"), "ncc": float("nan"), "met": False,
             "output": None, "null": null}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"

        def score() -> None:
            try:
                out = job.assemble(run_dir).image
            except DippasInputError:  # no snapshot with its cell statistics yet
                return
            state.update(output=out, psnr=psnr(reference, out),
                         ncc=dippas.attribution_scores(out, k)["ncc"])

        def check(ev) -> None:
            state["iteration"] = ev.iteration
            if time.perf_counter() - t0 > max_seconds:
                token.cancel()
            elif ev.psnr >= target and ev.iteration % check_every == 0:
                score()
                if state["psnr"] >= target and abs(state["ncc"]) <= null:
                    state["met"] = True
                    token.cancel()

        try:
            job.invert(image, k, run_dir, cancel=token, on_iteration=check)
        except Cancelled:
            pass
        if not state["met"]:  # the run (or the time) ended first: score what it gives
            score()
    state["seconds"] = time.perf_counter() - t0
    return state


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256, help="crop side (default 256)")
    p.add_argument("--crops", type=int, default=4, help="crops to use (default 4)")
    p.add_argument("--target", type=float, default=38.0, help="PSNR target in dB (default 38)")
    p.add_argument("--presets", default="default,fast,paper",
                   help="settings: 'default' (DippasJob()) and preset names (default all)")
    p.add_argument("--check-every", type=int, default=25, help="iterations between checks")
    p.add_argument("--max-seconds", type=float, default=1800.0, help="time limit per crop")
    p.add_argument("--quick", action="store_true", help="64², one crop, 30 dB, 120 s: a check")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.crops, args.target, args.max_seconds = 64, 1, 30.0, 120.0
    import dippas

    ks = camera_fingerprints(args.size)
    print(f"size {args.size}, {args.crops} crop(s), target {args.target} dB and |NCC| <= 1/sqrt(N); "
          f"{os.cpu_count()} cores, load {', '.join(f'{v:.1f}' for v in os.getloadavg())}, "
          f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY')}")
    print(f"{'setting':<9} {'crop':<24} {'s':>7} {'iter':>6} {'PSNR':>6} {'NCC':>8} met")
    for name in args.presets.split(","):
        name, job = job_of(name)
        scores, labels, psnrs, total = [], [], [], 0.0
        for crop_name, image in crops(args.size, args.crops):
            camera = crop_name.rsplit("_", 1)[0]
            r = time_to_target(job, image, ks[camera], args.target, args.check_every, args.max_seconds)
            total += r["seconds"]
            psnrs.append(r["psnr"])
            print(f"{name:<9} {crop_name:<24} {r['seconds']:7.1f} {r['iteration']:6d} "
                  f"{r['psnr']:6.2f} {r['ncc']:+8.4f} {'yes' if r['met'] else 'no'}", flush=True)
            if r["output"] is None:  # not one snapshot stored: nothing to attribute
                continue
            for dev, k in ks.items():  # against every camera: positives and negatives
                scores.append(dippas.attribution_scores(r["output"], k)["ncc"])
                labels.append(dev == camera)
        from dippas.metrics import auc, tradeoff

        a = auc(np.array(labels), np.array(scores)) if any(labels) and not all(labels) else float("nan")
        print(f"{name:<9} total {total:.0f} s; PSNR mean {np.nanmean(psnrs):.2f} dB; AUC {a:.3f}; "
              f"C {tradeoff(float(np.nanmean(psnrs)), a):.2f} (over {len(psnrs)} crop(s))", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
