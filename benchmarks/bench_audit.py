"""Benchmark of ``dippas audit``: which tests each output passes, and camera-photo counts.

Prints two tables (shared Dresden data, tuning protocol of DESIGN/GUIDE):

``--part tests``: the four 512x512 quadrants of each 1024x1024 natural crop
(64 positives), against fingerprints estimated at 1024x1024 from the 10
flat-fields of each device and cropped alike. For the originals, the default
inpainting output and inpainting without edge reconstruction, the fraction of
quadrants on which each per-image test says "match" at false-alarm 1e-3;
for the originals also against the next device's fingerprint (64 negatives:
the measured false-alarm rate). Set tests: for each device with two or more
natural photos and each quadrant, the set of that quadrant over the device's
photos (references: the other devices' photos, same quadrant); the fraction
of sets on which each set test says "match".

``--part photos``: fingerprint quality and detection strength against the
number of camera photos n. Flat-field photos: K from the first n of a
device's 10, for all six devices; its half-split NCC and predicted accuracy,
its NCC with the 10-photo K, and the fraction of the device's natural
quadrants whose ``ncc`` test says "match". Natural photos (Nikon_D70s_1, 6
photos): K from n natural photos, tested on the held-out ones (leave-out).

``--part calibration``: the null side. Every quadrant of the natural crops
against the five other devices' fingerprints (320 negatives): the fraction
that passes the 1e-3 threshold of the whole-image NCC and of the 64-pixel
block maximum, with the plain ``1/sqrt(N)`` scale and with the HAC scale of
:mod:`dippas.audit.nulls`, and the spread of ``NCC / scale`` (1 for a
calibrated null).

``--part speed``: the time and peak memory (tracemalloc, NumPy buffers) of
the per-image audit of the uncropped 3008x2000 photo, against a random
fingerprint of its size, and of its edge mask alone.

``--part dippas`` (slow on a CPU, so reduced): the 256x256 centre of the
natural crops of two devices with several photos (two photos each), DIPPAS
aware with the ``fast`` preset stopped after ``--max-iter`` iterations
(default 600; the paper runs until 39 dB), assembled with the defaults; the
per-image verdicts of the originals and the outputs, and the set tests per
device.

Usage::

    python benchmarks/bench_audit.py --part tests     # ~8 min on 2 cores
    python benchmarks/bench_audit.py --part photos    # ~3 min
    python benchmarks/bench_audit.py --part calibration   # ~1 min
    python benchmarks/bench_audit.py --part speed     # ~1 min
    python benchmarks/bench_audit.py --part dippas [--max-iter 600]   # ~20 min on 2 cores
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import dippas
from dippas.audit import AuditOptions, audit_image, audit_set
from dippas.audit.camera import half_split_quality
from dippas.correlation import attribution_reference, ncc
from dippas.fingerprint import fingerprint_from_sums, fingerprint_sums
from dippas.io import load_image

DATA = Path(os.environ.get("DIPPAS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DRESDEN = DATA / "dresden"
Q = 512


def device_of(path: Path) -> str:
    return path.stem.rsplit("_", 1)[0]


def quadrant(a: np.ndarray, q: int) -> np.ndarray:
    y, x = (q // 2) * Q, (q % 2) * Q
    return np.ascontiguousarray(a[y:y + Q, x:x + Q])


def flatfield_fingerprints() -> dict[str, np.ndarray]:
    out = {}
    for d in sorted(p.name for p in (DRESDEN / "flatfield").iterdir()):
        out[d] = dippas.estimate_fingerprint(sorted((DRESDEN / "flatfield" / d).glob("*.jpg")))
    return out


def naturals() -> list[Path]:
    files = sorted((DRESDEN / "natural").glob("*.jpg"))
    if not files:
        sys.exit(f"no natural photos under {DRESDEN} (set DIPPAS_DATA)")
    return files


def anonymizers() -> dict:
    from dippas.jobs import InpaintingJob

    return {
        "original": lambda im: im,
        "inpainting (default)": InpaintingJob().run,
        "inpainting, edges off": InpaintingJob(edges=False).run,
    }


def part_tests() -> None:
    ks = flatfield_fingerprints()
    devices = sorted(ks)
    files = naturals()
    opt = AuditOptions()
    rates: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    set_rates: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    outputs: dict[str, dict[tuple[str, int], np.ndarray]] = defaultdict(dict)
    t0 = time.time()
    for f in files:
        img = load_image(f)
        dev = device_of(f)
        other = devices[(devices.index(dev) + 1) % len(devices)]
        for q in range(4):
            im = quadrant(img, q)
            for name, anon in anonymizers().items():
                out = anon(im)
                outputs[name][(f.name, q)] = out
                res = audit_image(out, quadrant(ks[dev], q), opt, original=im)
                for t in res.tests:
                    rates[name][t.name].append(t.matched)
                if name == "original":
                    neg = audit_image(out, quadrant(ks[other], q), opt)
                    for t in neg.tests:
                        rates["original vs another camera (false alarms)"][t.name].append(t.matched)
        print(f"  {f.name} done ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    by_dev = defaultdict(list)
    for f in files:
        by_dev[device_of(f)].append(f)
    for name in outputs:
        for dev, group in by_dev.items():
            if len(group) < 2:
                continue
            refs_files = [f for f in files if device_of(f) != dev]
            for q in range(4):
                imgs = [outputs[name][(f.name, q)] for f in group]
                refs = [outputs["original"][(f.name, q)] for f in refs_files]
                res = audit_set(imgs, quadrant(ks[dev], q), refs, opt)
                for t in res.tests:
                    set_rates[name][t.name].append(t.matched)
    print("\nPer-image tests: fraction of 512x512 quadrants with verdict 'match' (pfa 1e-3)")
    names = list(rates)
    tests = list(rates["original"])
    print("| test | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for t in tests:
        cells = []
        for n in names:
            v = rates[n].get(t)
            cells.append(f"{np.mean(v):.2f} ({sum(v)}/{len(v)})" if v else "-")
        print(f"| {t} | " + " | ".join(cells) + " |")
    print("\nSet tests: fraction of sets (device x quadrant) with verdict 'match'")
    names = list(set_rates)
    tests = list(set_rates["original"])
    print("| test | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for t in tests:
        print(f"| {t} | " + " | ".join(f"{np.mean(set_rates[n][t]):.2f} "
                                       f"({sum(set_rates[n][t])}/{len(set_rates[n][t])})"
                                       for n in names) + " |")
    print(f"\nsets: " + ", ".join(f"{d} ({len(g)} photos)" for d, g in by_dev.items() if len(g) > 1)
          + f"; total time {time.time() - t0:.0f} s")


def _detection(k: np.ndarray, photos: list[Path], opt: AuditOptions) -> list[bool]:
    from dippas.audit.image_tests import ncc_test

    hits = []
    for f in photos:
        img = load_image(f)
        for q in range(4):
            im = quadrant(img, q)
            w = dippas.noise_residual(im)
            hits.append(ncc_test("ncc", w, attribution_reference(im, quadrant(k, q)), opt.pfa).matched)
    return hits


def part_photos() -> None:
    opt = AuditOptions()
    files = naturals()
    print("\nFlat-field camera photos: mean over the 6 devices (detection on their natural quadrants)")
    print("| photos n | half-split NCC | predicted accuracy | NCC with 10-photo K | originals detected (ncc test) |")
    print("|---|---|---|---|---|")
    devices = sorted(p.name for p in (DRESDEN / "flatfield").iterdir())
    full = {}
    rows = defaultdict(lambda: defaultdict(list))
    for d in devices:
        ff = sorted((DRESDEN / "flatfield" / d).glob("*.jpg"))
        photos = [f for f in files if device_of(f) == d]
        num, den, _ = fingerprint_sums(ff, parts=len(ff))
        full[d] = fingerprint_from_sums(num.sum(0), den.sum(0))
        for n in range(2, len(ff) + 1):
            k = fingerprint_from_sums(num[:n].sum(0), den[:n].sum(0))
            ka = fingerprint_from_sums(num[:n:2].sum(0), den[:n:2].sum(0))
            kb = fingerprint_from_sums(num[1:n:2].sum(0), den[1:n:2].sum(0))
            r, thr, acc = half_split_quality(ka, kb)
            rows[n]["half"].append(r)
            rows[n]["thr"].append(thr)
            rows[n]["acc"].append(acc)
            rows[n]["full"].append(ncc(k, full[d]))
            rows[n]["det"] += _detection(k, photos, opt)
    for n in sorted(rows):
        r = rows[n]
        print(f"| {n} | {np.mean(r['half']):.3f} (threshold {np.mean(r['thr']):.4f}) | "
              f"{np.mean(r['acc']):.2f} | {np.mean(r['full']):.2f} | "
              f"{np.mean(r['det']):.2f} ({sum(r['det'])}/{len(r['det'])}) |")
    dev = "Nikon_D70s_1"
    photos = [f for f in files if device_of(f) == dev]
    print(f"\nNatural camera photos ({dev}, {len(photos)} photos; each held out in turn, K from n others)")
    print("| photos n | half-split NCC | predicted accuracy | NCC with flat-field K | held-out quadrants detected |")
    print("|---|---|---|---|---|")
    for n in range(2, len(photos)):
        half, acc, corr, det = [], [], [], []
        for i, held in enumerate(photos):
            rest = [p for j, p in enumerate(photos) if j != i][:n]
            num, den, _ = fingerprint_sums(rest, parts=2)
            k = fingerprint_from_sums(num.sum(0), den.sum(0))
            r, _, a = half_split_quality(fingerprint_from_sums(num[0], den[0]),
                                         fingerprint_from_sums(num[1], den[1]))
            half.append(r)
            acc.append(a)
            corr.append(ncc(k, full[dev]))
            det += _detection(k, [held], opt)
        print(f"| {n} | {np.mean(half):.3f} | {np.mean(acc):.2f} | {np.mean(corr):.3f} | "
              f"{np.mean(det):.2f} ({sum(det)}/{len(det)}) |")


def part_calibration() -> None:
    from dippas.audit.nulls import HAC_LAG, block_z_map, max_z_threshold, ncc_null_sd, two_sided_z

    ks = flatfield_fingerprints()
    z = two_sided_z(1e-3)
    plain, hac, bplain, bhac = [], [], [], []
    for f in naturals():
        img = load_image(f)
        for q in range(4):
            im = quadrant(img, q)
            w = dippas.noise_residual(im)
            for d, k in ks.items():
                if d == device_of(f):
                    continue
                x = attribution_reference(im, quadrant(k, q))
                score = ncc(w, x)
                plain.append(score * Q)
                hac.append(score / ncc_null_sd(w, x))
                b = 64
                m = (Q // b) ** 2
                blocks = [ncc(w[i:i + b, j:j + b], x[i:i + b, j:j + b]) * b
                          for i in range(0, Q, b) for j in range(0, Q, b)]
                bplain.append(np.max(np.abs(blocks)) >= max_z_threshold(m, 1e-3))
                bhac.append(np.nanmax(np.abs(block_z_map(w, x, b))) >= max_z_threshold(m, 1e-3))
    plain, hac = np.array(plain), np.array(hac)
    print(f"\nNull calibration on {plain.size} negatives (512x512 quadrants x other devices), pfa 1e-3")
    print("| scale | std of NCC/scale | whole-image NCC passes | block_max_64 passes |")
    print("|---|---|---|---|")
    print(f"| 1/sqrt(N) | {plain.std():.3f} | {np.mean(np.abs(plain) >= z):.4f} | {np.mean(bplain):.4f} |")
    print(f"| HAC (lag {HAC_LAG}) | "
          f"{hac.std():.3f} | {np.mean(np.abs(hac) >= z):.4f} | {np.mean(bhac):.4f} |")


def part_speed() -> None:
    import tracemalloc

    from dippas.audit import audit
    from dippas.audit.image_tests import audit_edge_mask

    img = load_image(DRESDEN / "full" / "Nikon_D70_1_20543.JPG")
    k = (np.random.default_rng(0).standard_normal(img.shape[:2]) * 0.01).astype(np.float32)
    t = time.perf_counter()
    audit_edge_mask(img)
    t_mask = time.perf_counter() - t
    tracemalloc.start()
    t = time.perf_counter()
    audit([img], fingerprint=k)
    t_all = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"\nFull photo {img.shape[1]}x{img.shape[0]}: per-image audit {t_all:.1f} s "
          f"(edge mask alone {t_mask:.1f} s), peak NumPy memory {peak / 2**20:.0f} MiB")


def part_dippas(max_iter: int, size: int = 256,
                devices: tuple[str, ...] = ("Nikon_D70_1", "Nikon_D70s_1")) -> None:
    from dippas import anonymize_dippas
    from dippas.fingerprint import centre_crop
    from dippas.metrics import psnr

    ks = flatfield_fingerprints()
    opt = AuditOptions()
    t0 = time.time()
    verdicts: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    sets: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    psnrs = []
    for dev in devices:
        k = centre_crop(ks[dev], (size, size))
        group = [f for f in naturals() if device_of(f) == dev][:2]
        pair = {"original": [], "DIPPAS": []}
        for f in group:
            im = np.ascontiguousarray(centre_crop(load_image(f), (size, size)))
            out = anonymize_dippas(im, k, preset="fast", device="cpu", max_iter=max_iter)
            psnrs.append(psnr(im, out, data_range=255.0))
            for name, x in (("original", im), ("DIPPAS", out)):
                pair[name].append(x)
                for t in audit_image(x, k, opt).tests:
                    verdicts[name][t.name].append(t.matched)
            print(f"  {f.name} done ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
        for name, imgs in pair.items():
            for t in audit_set(imgs, k, (), opt).tests:
                sets[name][t.name].append(t.matched)
    print(f"\nDIPPAS (fast preset, {max_iter} iterations, CPU), {size}x{size} centre crops, "
          f"{len(psnrs)} photos of {', '.join(devices)}; PSNR "
          f"{np.mean(psnrs):.2f} dB (min {np.min(psnrs):.2f})")
    print("| test | original | DIPPAS |")
    print("|---|---|---|")
    for table in (verdicts, sets):
        for t in table["original"]:
            print(f"| {t} | " + " | ".join(f"{sum(table[n][t])}/{len(table[n][t])}"
                                           for n in ("original", "DIPPAS")) + " |")
    print(f"total time {time.time() - t0:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("tests", "photos", "calibration", "speed", "dippas", "all"), default="all")
    ap.add_argument("--max-iter", type=int, default=600, help="DIPPAS iterations (--part dippas)")
    args = ap.parse_args()
    if args.part == "dippas":
        part_dippas(args.max_iter)
    if args.part in ("calibration", "all"):
        part_calibration()
    if args.part in ("speed", "all"):
        part_speed()
    if args.part in ("photos", "all"):
        part_photos()
    if args.part in ("tests", "all"):
        part_tests()


if __name__ == "__main__":
    main()
