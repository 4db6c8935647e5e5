"""Benchmark of the noise residual and the fingerprint estimation.

Times, as the median of several runs after a warm-up:

- ``dippas.noise_residual`` on a 512x512 RGB uint8 crop;
- ``dippas.noise_residual`` on a full 3008x2000 photo;
- ``dippas.estimate_fingerprint`` from ten 512x512 flat-field crops;

and the peak memory of the full-photo residual (RSS delta, and the NumPy
allocations seen by :mod:`tracemalloc`), measured in a fresh process. The
same three figures are printed for a small pure PyWavelets + SciPy + NumPy
version of the reference port (prnu-python's pipeline, as described in
``shared/data/reference/README.md``), written out below, with the largest
difference between it and dippas as a check that both compute the same
thing.

Usage::

    python benchmarks/bench_residual.py [--quick] [--repeats N] [--compile]

``--quick`` takes fewer repeats; ``--compile`` also times the first call
with an empty Numba cache (a cold JIT compile), in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pywt
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CROP = DATA / "reference" / "Nikon_D70_1_20543_crop512_uint8.npy"
FULL = DATA / "dresden" / "full" / "Nikon_D70_1_20543.JPG"
FLATS = DATA / "dresden" / "flatfield" / "Nikon_D70_0"
SIGMA = 3.0


# ---------------------------------------------------------------------------
# Baseline: the reference port with PyWavelets, SciPy and NumPy only
# ---------------------------------------------------------------------------

def ref_wiener_adaptive(x: np.ndarray, noise_var: float) -> np.ndarray:
    """WaveNoise with ``scipy.ndimage.uniform_filter`` window means (zero padded)."""
    energy = x * x
    var = None
    for size in (3, 5, 7, 9):
        v = np.maximum(ndimage.uniform_filter(energy, size, mode="constant") - noise_var, 0)
        var = v if var is None else np.minimum(var, v)
    return x * noise_var / (var + noise_var)


def ref_noise_extract_rgb(image: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """Colour residual: per channel wavedec2, Wiener on details, zero cA, waverec2."""
    im = image.astype(np.float32)
    if im.ndim == 2:
        im = im[:, :, None]
    out = np.zeros(im.shape, np.float32)
    for c in range(im.shape[2]):
        coeffs = pywt.wavedec2(im[:, :, c], "db4", mode="symmetric", level=4)
        coeffs[0][...] = 0
        coeffs[1:] = [tuple(ref_wiener_adaptive(d, sigma ** 2) for d in lvl) for lvl in coeffs[1:]]
        out[:, :, c] = pywt.waverec2(coeffs, "db4", mode="symmetric")[:im.shape[0], :im.shape[1]]
    return out


def ref_rgb2gray(x: np.ndarray) -> np.ndarray:
    """Gray with the toolbox weights."""
    w = np.array([0.29893602, 0.58704307, 0.11402090], dtype=np.float32)
    return (x[:, :, 0] * w[0] + x[:, :, 1] * w[1] + x[:, :, 2] * w[2]).astype(np.float32)


def ref_zero_mean(x: np.ndarray) -> np.ndarray:
    """Subtract the mean, then the row means, then the column means."""
    x = x - x.mean()
    x = x - x.mean(axis=1, keepdims=True)
    return x - x.mean(axis=0, keepdims=True)


def ref_zero_mean_total(x: np.ndarray) -> np.ndarray:
    """ZeroMeanTotal on the four 2x2 sub-lattices."""
    out = x.copy()
    for di in (0, 1):
        for dj in (0, 1):
            out[di::2, dj::2] = ref_zero_mean(x[di::2, dj::2])
    return out


def ref_wiener_dft(x: np.ndarray, sigma: float) -> np.ndarray:
    """WienerInDFT with NumPy's complex FFT."""
    h, w = x.shape
    f = np.fft.fft2(x)
    mag = np.abs(f / np.sqrt(h * w))
    filt = ref_wiener_adaptive(mag, sigma ** 2)
    zero = mag == 0
    mag[zero] = 1
    filt[zero] = 0
    return np.real(np.fft.ifft2(f * filt / mag)).astype(np.float32)


def ref_postprocess(w_gray: np.ndarray) -> np.ndarray:
    """ZeroMeanTotal, then WienerInDFT with sigma = std(ddof=1)."""
    zm = ref_zero_mean_total(w_gray)
    return ref_wiener_dft(zm, zm.std(ddof=1))


def ref_noise_residual(image: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """The attribution residual W of the reference port."""
    return ref_postprocess(ref_rgb2gray(ref_noise_extract_rgb(image, sigma)))


def ref_estimate_fingerprint(images: list[np.ndarray], sigma: float = SIGMA) -> np.ndarray:
    """ML fingerprint of the reference port (numerator weighted by image / 255)."""
    num = den = None
    for image in images:
        im = image.astype(np.float32)
        w = ref_noise_extract_rgb(im, sigma)
        scale = np.where(im < 252, im / 252, np.exp(-((im - 252) ** 2) / 6))
        chmax = im.max(axis=(0, 1))
        eq = ((np.roll(im, 1, 0) == im) | (np.roll(im, -1, 0) == im)
              | (np.roll(im, 1, 1) == im) | (np.roll(im, -1, 1) == im))
        sat = (im == chmax) & (chmax > 250) & eq
        scale = np.where(sat, 0, scale)
        num = w * im / 255 if num is None else num + w * im / 255
        den = scale ** 2 if den is None else den + scale ** 2
    k = (num / (den + 1)).astype(np.float32)
    return ref_postprocess(ref_rgb2gray(k))


# ---------------------------------------------------------------------------
# Measurement helpers
# ---------------------------------------------------------------------------

def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and minimum wall time in seconds of ``repeats`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times))


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_during(fn: Callable[[], object]) -> int:
    """Largest RSS over the baseline while ``fn`` runs, sampled every 0.2 ms."""
    base = rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.0002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return max(peak[0], rss_bytes()) - base


def load_inputs() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The 512 crop, the decoded full photo, and ten 512x512 flat-field crops."""
    from dippas.fingerprint import centre_crop

    crop = np.load(CROP)
    full = np.asarray(Image.open(FULL))
    flats = [np.ascontiguousarray(centre_crop(np.asarray(Image.open(p)), (512, 512)))
             for p in sorted(FLATS.glob("*"))][:10]
    return crop, full, flats


# ---------------------------------------------------------------------------
# Subprocess modes: memory and cold compile
# ---------------------------------------------------------------------------

def memory_child(npy: str) -> None:
    """Print, as JSON, the peak memory of ``noise_residual`` on the array in ``npy``."""
    import dippas

    full = np.load(npy)
    dippas.noise_residual(full[:256, :256])  # load (or compile) the kernels
    rss = peak_rss_during(lambda: dippas.noise_residual(full))
    tracemalloc.start()
    dippas.noise_residual(full)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"rss": rss, "traced": traced, "photo": full.nbytes}))


def compile_child() -> None:
    """Print, as JSON, the first-call times of the three timed functions."""
    t0 = time.perf_counter()
    import dippas
    t_import = time.perf_counter() - t0
    crop = np.load(CROP)
    t0 = time.perf_counter()
    dippas.noise_residual(crop)
    t_res = time.perf_counter() - t0
    t0 = time.perf_counter()
    dippas.estimate_fingerprint([crop, crop])
    t_fp = time.perf_counter() - t0
    print(json.dumps({"import": t_import, "residual": t_res, "fingerprint": t_fp}))


def run_child(args: list[str], env: dict | None = None) -> dict:
    """Run this script in a subprocess and parse the JSON line it prints."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True,
                         text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def report(label: str, ours: tuple[float, float], ref: tuple[float, float] | None) -> None:
    """Print one timing line: dippas median (min), baseline median, speed-up, in ms."""
    line = f"{label:<40s} dippas {ours[0] * 1e3:7.1f} ms (min {ours[1] * 1e3:7.1f})"
    if ref is not None:
        line += f" | baseline {ref[0] * 1e3:7.1f} ms | x{ref[0] / ours[0]:5.1f}"
    print(line, flush=True)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per figure")
    parser.add_argument("--no-baseline", action="store_true", help="skip the PyWavelets baseline")
    parser.add_argument("--compile", action="store_true",
                        help="also time a cold Numba compile in a subprocess")
    parser.add_argument("--_memory-child", dest="memory_child", help=argparse.SUPPRESS)
    parser.add_argument("--_compile-child", dest="compile_child", action="store_true",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return memory_child(args.memory_child)
    if args.compile_child:
        return compile_child()

    import numba

    import dippas

    small = 3 if args.quick else 9
    large = 2 if args.quick else 5
    if args.repeats:
        small = large = args.repeats
    base_small, base_large = (1, 1) if args.quick else (3, 2)
    print(f"cores: {os.cpu_count()}, threads: {numba.config.NUMBA_NUM_THREADS}, "
          f"repeats: {small} (512) / {large} (full), "
          f"load average: {os.getloadavg()[0]:.2f}", flush=True)

    t0 = time.perf_counter()
    crop, full, flats = load_inputs()
    print(f"inputs: crop {crop.shape}, photo {full.shape}, {len(flats)} flat-fields "
          f"(decoded in {time.perf_counter() - t0:.2f} s, not timed)")
    t0 = time.perf_counter()
    dippas.noise_residual(crop)
    dippas.estimate_fingerprint(flats[:2])
    print(f"first calls in this process (Numba cache load or compile): "
          f"{time.perf_counter() - t0:.2f} s")
    if args.compile:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            cold = run_child(["--_compile-child"], env=env)
        print(f"cold compile (empty Numba cache): import {cold['import']:.2f} s, first "
              f"noise_residual {cold['residual']:.2f} s, then first estimate_fingerprint "
              f"{cold['fingerprint']:.2f} s")

    baseline = not args.no_baseline
    res = median_time(lambda: dippas.noise_residual(crop), small)
    ref = median_time(lambda: ref_noise_residual(crop), base_small) if baseline else None
    report("noise_residual 512x512 RGB", res, ref)
    res = median_time(lambda: dippas.noise_residual(full), large)
    ref = median_time(lambda: ref_noise_residual(full), base_large) if baseline else None
    report(f"noise_residual {full.shape[1]}x{full.shape[0]} RGB", res, ref)
    res = median_time(lambda: dippas.estimate_fingerprint(flats), small)
    ref = median_time(lambda: ref_estimate_fingerprint(flats), base_small) if baseline else None
    report(f"estimate_fingerprint {len(flats)} x 512x512 RGB", res, ref)

    with tempfile.TemporaryDirectory() as tmp:
        npy = os.path.join(tmp, "photo.npy")
        np.save(npy, full)
        mem = run_child(["--_memory-child", npy])
    mib = 1024 * 1024
    print(f"peak memory, full photo ({mem['photo'] / mib:.1f} MiB): "
          f"RSS +{mem['rss'] / mib:.1f} MiB ({mem['rss'] / mem['photo']:.1f}x photo), "
          f"NumPy allocations (tracemalloc) {mem['traced'] / mib:.1f} MiB")

    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other processes share the cores)")
    if baseline:
        w_ours, w_ref = dippas.noise_residual(crop), ref_noise_residual(crop)
        k_ours, k_ref = dippas.estimate_fingerprint(flats), ref_estimate_fingerprint(flats)
        print(f"check vs baseline: residual max |diff| {np.abs(w_ours - w_ref).max():.2e}, "
              f"fingerprint max |diff| {np.abs(k_ours - k_ref).max():.2e}")


if __name__ == "__main__":
    main()
