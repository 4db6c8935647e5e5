"""Benchmark of the inpainting anonymizer: speed, memory, fidelity and anonymity.

Prints:

* the time of :func:`dippas.inpainting.inpaint_anonymize` on a 512x512 RGB
  crop (target <= 2 s on the 2-core development machine), per setting;
* the time and the memory of the full 3008x2000 photo (target <= 20 s),
  as the tracemalloc peak (NumPy buffers) and the process peak RSS;
* for each setting, on the 16 natural Dresden 512x512 centre crops against
  the 6 golden fingerprints: the mean PSNR against the original, the ROC
  AUC of the NCC matrix (positives: image vs its own device), the
  trade-off ``C = PSNR (1 - 2 |AUC - 0.5|)`` and the TPR at 5 % FPR.

The NCC is ``dippas.ncc(noise_residual(anon), attribution_reference(anon, K))``
on the uint8 output.

Usage::

    python benchmarks/bench_inpainting.py            # all settings
    python benchmarks/bench_inpainting.py --quick    # hole 5, L2, edges on/off
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import statistics
import sys
import time
import tracemalloc

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score, roc_curve

import dippas
from dippas.correlation import attribution_reference
from dippas.inpainting import inpaint_anonymize

DATA = os.environ.get("DIPPAS_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
CROP = 512
OFFSET = 256


def load_crops(data: str = DATA) -> tuple[list[np.ndarray], list[str]]:
    """The 16 natural images' 512x512 centre crops (offset 256) and their devices."""
    files = sorted(glob.glob(os.path.join(data, "dresden", "natural", "*.jpg")))
    if not files:
        sys.exit(f"no natural images under {data}/dresden/natural (set DIPPAS_DATA)")
    images, devices = [], []
    for f in files:
        with Image.open(f) as im:
            rgb = np.asarray(im.convert("RGB"))
        images.append(np.ascontiguousarray(rgb[OFFSET:OFFSET + CROP, OFFSET:OFFSET + CROP]))
        devices.append(os.path.basename(f).rsplit(".", 1)[0].rsplit("_", 1)[0])
    return images, devices


def load_fingerprints(devices: list[str], data: str = DATA) -> dict[str, np.ndarray]:
    """Golden 512-crop fingerprints of the devices."""
    return {d: np.load(os.path.join(data, "reference", f"fingerprint_{d}_crop512_sigma3.npy"))
            for d in sorted(set(devices))}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in 0-255 units."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def attribution_matrix(images: list[np.ndarray], fingerprints: dict[str, np.ndarray]) -> np.ndarray:
    """NCC of every image (columns) against every fingerprint (rows)."""
    out = np.empty((len(fingerprints), len(images)))
    for j, img in enumerate(images):
        w = dippas.noise_residual(img)
        for i, k in enumerate(fingerprints.values()):
            out[i, j] = dippas.ncc(w, attribution_reference(img, k))
    return out


def scores(ncc: np.ndarray, devices: list[str], fingerprints: dict[str, np.ndarray],
           fpr_at: float = 0.05) -> tuple[float, float]:
    """ROC AUC and TPR at ``fpr_at`` of an NCC matrix."""
    labels = np.array([[dev == d for d in devices] for dev in fingerprints]).ravel()
    s = ncc.ravel()
    fpr, tpr, _ = roc_curve(labels, s)
    return float(roc_auc_score(labels, s)), float(np.interp(fpr_at, fpr, tpr))


def evaluate(setting: dict, images, devices, fingerprints) -> dict:
    """Anonymize every crop with ``setting``; PSNR, AUC, C, TPR and time."""
    t0 = time.perf_counter()
    anon = [inpaint_anonymize(img, **setting) for img in images]
    elapsed = time.perf_counter() - t0
    p = statistics.fmean(psnr(a, o) for a, o in zip(anon, images))
    auc, tpr = scores(attribution_matrix(anon, fingerprints), devices, fingerprints)
    return {"psnr": p, "auc": auc, "c": p * (1.0 - 2.0 * abs(auc - 0.5)), "tpr5": tpr,
            "sec_per_image": elapsed / len(images)}


def time_call(func, repeats: int) -> tuple[float, float]:
    """Median wall and CPU times of ``func()`` over ``repeats`` runs (after one warm-up)."""
    func()
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        func()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def bench_full(path: str, **setting) -> None:
    """Time and memory of one full-size photo."""
    with Image.open(path) as im:
        photo = np.asarray(im.convert("RGB"))
    mb = photo.nbytes / 2**20
    inpaint_anonymize(photo[:256, :256], **setting)  # compile / warm caches
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    out = inpaint_anonymize(photo, **setting)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    assert out.shape == photo.shape and out.dtype == photo.dtype
    print(f"full photo {photo.shape[1]}x{photo.shape[0]} RGB ({mb:.1f} MiB uint8), {_fmt(setting)}: "
          f"{elapsed:.2f} s wall, {cpu:.2f} s CPU; tracemalloc peak {peak / 2**20:.0f} MiB = {peak / photo.nbytes:.1f}x the "
          f"uint8 photo = {peak / (4 * photo.size):.1f}x its float32 copy; process peak RSS {rss:.0f} MiB")


def _fmt(setting: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items())


SETTINGS_QUICK = [
    {"hole": 5, "reg": "l2", "edges": True},
    {"hole": 5, "reg": "l2", "edges": False},
]
SETTINGS_FULL = SETTINGS_QUICK + [
    {"hole": 5, "reg": "tv", "edges": True},
    {"hole": 5, "reg": "tv", "edges": False},
    {"hole": 3, "reg": "l2", "edges": True},
    {"hole": 3, "reg": "l2", "edges": False},
    {"hole": 3, "reg": "tv", "edges": True},
    {"hole": 5, "reg": "l2", "edges": True, "denoiser": "wavelet"},
    {"hole": 5, "reg": "l2", "edges": True, "denoiser": "wiener_wavelet"},
    {"hole": 5, "reg": "l2", "edges": True, "denoiser": "tv"},
]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="only hole 5, L2, edges on and off")
    ap.add_argument("--data", default=DATA, help="the shared data folder (default: %(default)s)")
    ap.add_argument("--no-full", action="store_true", help="skip the full-size photo")
    args = ap.parse_args(argv)
    settings = SETTINGS_QUICK if args.quick else SETTINGS_FULL
    repeats = 3 if args.quick else 5

    images, devices = load_crops(args.data)
    fingerprints = load_fingerprints(devices, args.data)
    print(f"dippas {dippas.__version__}, {os.cpu_count()} CPU cores (load average "
          f"{os.getloadavg()[0]:.1f}), {len(images)} crops of {CROP}x{CROP}, {len(fingerprints)} devices")

    crop = images[0]
    for s in settings[:4] if not args.quick else settings:
        t, c = time_call(lambda s=s: inpaint_anonymize(crop, **s), repeats)
        print(f"512x512 RGB, {_fmt(s)}: {t:.3f} s wall, {c:.3f} s CPU (median of {repeats})")

    if not args.no_full:
        full = os.path.join(args.data, "dresden", "full", "Nikon_D70_1_20543.JPG")
        bench_full(full)
        if not args.quick:
            bench_full(full, edges=False)

    orig = attribution_matrix(images, fingerprints)
    auc, tpr = scores(orig, devices, fingerprints)
    print(f"{'setting':58s} {'PSNR':>6s} {'AUC':>6s} {'C':>6s} {'TPR5%':>6s} {'s/img':>6s}")
    print(f"{'originals':58s} {'inf':>6s} {auc:6.4f} {'':>6s} {tpr:6.3f}")
    for s in settings:
        r = evaluate(s, images, devices, fingerprints)
        print(f"{_fmt(s):58s} {r['psnr']:6.2f} {r['auc']:6.4f} {r['c']:6.2f} {r['tpr5']:6.3f} "
              f"{r['sec_per_image']:6.3f}", flush=True)


if __name__ == "__main__":
    main()
