"""Tuning protocol of the anonymizers: 64 quadrants, bootstrap intervals, cached.

The data (issue 12, DESIGN.md §8b):

* positives: the four 512x512 quadrants of each of the 16 shared 1024x1024
  natural Dresden crops (64 images), each against its own device's
  fingerprint; negatives: each quadrant against the 5 other devices' (320);
* scoring fingerprints: estimated at 1024x1024 from all 10 flat-fields of
  each device (:func:`dippas.estimate_fingerprint`, sigma 3), cut to the
  quadrant;
* K-aware anonymizers get the scorer's fingerprint (``--aware-k all``, the
  paper's PRNU-aware setting: the examiner and the user hold the same K),
  or, with ``--aware-k even --score-k odd``, an estimate from the even 5
  flat-fields while every setting is scored against one from the odd 5
  (independent estimates, as when the examiner has their own
  flat-fields). Mixing ``even`` with ``all`` would share half of the
  estimation noise, an artificial case;
* ``--size N`` (N < 512) scores the N x N centre crop of every quadrant
  instead (for DIPPAS, too slow at 512 on this CPU).

Per setting (images resampled with replacement, 2000 draws, percentile
95 % intervals): AUC [CI], mean PSNR, mean SSIM, C = PSNR (1 - 2|AUC-0.5|)
[CI], edge-only AUC [CI] (edge mask of the original: Canny on non-local
means, dilated by a disk of 3, as ``dippas evaluate``), seconds per 512²
and, for anonymizers that report the pixels they took from the denoised
original, the NCC of the own device and the AUC on those pixels only
("edge part") and on the inpainted ones only ("inpainted part"). The
difference of C with ``--reference`` is bootstrapped on paired draws;
choose only on differences whose interval excludes 0.

``--lags`` prints the diagnostic of the hole geometries: the mean
correlation, over the 64 positives, of the original quadrant's residual
shifted by ``s`` pixels with gray(I)·K, ``c(s) = NCC(S_s W, I K)``. An
inpainted pixel made of its neighbours at distance ``s`` keeps about
``c(s)`` of the correlation.

Everything is cached under ``--out``: fingerprints, edge masks, outputs
(PNG) and per-image records (JSON); a rerun only computes what is missing.

Usage::

    python benchmarks/tune_protocol.py --out /tmp/tune --settings classic,classic-h3
    python benchmarks/tune_protocol.py --out /tmp/tune --list
    python benchmarks/tune_protocol.py --out /tmp/tune --lags
    # any anonymizer f(image_uint8, fingerprint_or_None) -> image (or an object with .image/.edges)
    python benchmarks/tune_protocol.py --out /tmp/tune --size 256 --callable mine=my_module:anonymize
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dippas.correlation import attribution_reference, ncc
from dippas.errors import DippasInputError
from dippas.evaluation.bootstrap import bootstrap_auc, bootstrap_summary, paired_difference
from dippas.evaluation.dataset import device_from_name
from dippas.evaluation.scoring import edge_ncc, label_matrix, score_image
from dippas.jsonio import read_json, write_json
from dippas.residual import noise_residual

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("DIPPAS_DATA", ROOT.parent / "shared" / "data"))
QUADRANT = 512
SIGMA = 3.0

# An anonymizer: (uint8 image, fingerprint for K-aware use or None) -> image, or an
# object with ``image`` and ``edges`` (the pixels taken from the denoised original).
Anonymizer = Callable[[np.ndarray, np.ndarray | None], object]


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------

def _inpainting(k_aware: bool = False, **kw) -> Anonymizer:
    from dippas.inpainting import inpaint_anonymize_result

    def run(image: np.ndarray, k: np.ndarray | None):
        return inpaint_anonymize_result(image, fingerprint=k if k_aware else None, **kw)
    return run


#: name -> (description, anonymizer factory, needs K)
SETTINGS: dict[str, tuple[str, Callable[[], Anonymizer], bool]] = {
    "classic": ("hole 5, L2, nl_means edges (first default)",
                lambda: _inpainting(profile="classic"), False),
    "classic-h3": ("classic with hole 3", lambda: _inpainting(profile="classic", hole=3), False),
    "classic-tv": ("classic with TV", lambda: _inpainting(profile="classic", reg="tv"), False),
    "classic-h3-tv": ("classic with hole 3 and TV",
                      lambda: _inpainting(profile="classic", hole=3, reg="tv"), False),
    "classic-noedges": ("classic without edge reconstruction",
                        lambda: _inpainting(profile="classic", edges=False), False),
    "h3-noedges": ("hole 3 without edge reconstruction",
                   lambda: _inpainting(profile="classic", hole=3, edges=False), False),
    "d1-noedges": ("hole 5, delta 1, no edges", lambda: _inpainting(profile="classic", delta=1, edges=False), False),
    "d2-noedges": ("hole 5, delta 2, no edges", lambda: _inpainting(profile="classic", delta=2, edges=False), False),
    "paper": ("the authors' recipe (BM3D)", lambda: _inpainting(profile="paper"), False),
    "paper-l2": ("paper with L2", lambda: _inpainting(profile="paper", reg="l2"), False),
    "nlm2": ("classic, nl_means twice on the edges",
             lambda: _inpainting(profile="classic", denoiser="nl_means_twice"), False),
    "mix30": ("classic mixed with 30 % of a delta-1 inpainting",
              lambda: _inpainting(profile="classic", mix_weight=0.3), False),
    "mix45": ("classic mixed with 45 % of a delta-1 inpainting",
              lambda: _inpainting(profile="classic", mix_weight=0.45), False),
    "mix60": ("classic mixed with 60 % of a delta-1 inpainting",
              lambda: _inpainting(profile="classic", mix_weight=0.6), False),
    "mix45-noedges": ("mix45 without edge reconstruction",
                      lambda: _inpainting(profile="classic", mix_weight=0.45, edges=False), False),
    "nlm2-mix45": ("mix45 with nl_means twice on the edges",
                   lambda: _inpainting(profile="classic", mix_weight=0.45, denoiser="nl_means_twice"), False),
    "nlmw": ("classic, nl_means then wiener_wavelet on the edges",
             lambda: _inpainting(profile="classic", denoiser="nl_means_wiener"), False),
    "nlmw-mix45": ("mix45 with nl_means then wiener_wavelet on the edges",
                   lambda: _inpainting(profile="classic", mix_weight=0.45, denoiser="nl_means_wiener"), False),
    "classic+K": ("classic, K-aware (edges and inpainted pixels nulled)",
                  lambda: _inpainting(True, profile="classic"), True),
    "classic-tv+K": ("classic with TV, K-aware", lambda: _inpainting(True, profile="classic", reg="tv"), True),
    "mix45+K": ("mix45, K-aware", lambda: _inpainting(True, profile="classic", mix_weight=0.45), True),
    "mix60+K": ("mix60, K-aware", lambda: _inpainting(True, profile="classic", mix_weight=0.6), True),
    "d1+K": ("hole 5, delta 1, nl_means edges, K-aware",
             lambda: _inpainting(True, profile="classic", delta=1), True),
    "paper+K": ("paper, K-aware", lambda: _inpainting(True, profile="paper"), True),
}


def register_setting(name: str, func: Anonymizer, description: str = "", k_aware: bool = True) -> None:
    """Add an anonymizer callable to the settings (for scripts that import this module)."""
    SETTINGS[name] = (description or name, lambda f=func: f, k_aware)


def _load_callable(spec: str) -> tuple[str, Anonymizer]:
    if "=" not in spec or ":" not in spec:
        raise DippasInputError(f"--callable expects NAME=module:function, got {spec!r}")
    name, target = spec.split("=", 1)
    mod, attr = target.split(":", 1)
    return name, getattr(importlib.import_module(mod), attr)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def load_items(size: int, quadrants: tuple[int, ...] = (0, 1, 2, 3)) -> list[dict]:
    """The quadrants (or their centre crops of ``size``) of the natural crops, with devices.

    Quadrant-major order (quadrant 0 of every image first), so that a run cut
    short covers whole quadrants and can be summarised with ``--quadrants``.
    """
    from dippas.io import load_image

    files = sorted((DATA / "dresden" / "natural").glob("*.jpg"))
    if not files:
        sys.exit(f"no natural images under {DATA}/dresden/natural (set DIPPAS_DATA)")
    off = (QUADRANT - size) // 2
    items = []
    corners = ((0, 0), (0, QUADRANT), (QUADRANT, 0), (QUADRANT, QUADRANT))
    images = {f: load_image(f) for f in files}
    for q in quadrants:
        r, c = corners[q]
        for f, img in images.items():
            r0, c0 = r + off, c + off
            items.append({"id": f"{f.stem}_q{q}", "device": device_from_name(f),
                          "image": np.ascontiguousarray(img[r0:r0 + size, c0:c0 + size]),
                          "window": (r0, c0, size)})
    return items


def load_fingerprints(out: Path, tag: str) -> dict[str, np.ndarray]:
    """Fingerprints at 1024² from all, the even or the odd flat-fields of every device, cached."""
    from dippas.fingerprint import estimate_fingerprint

    folder = out / "fingerprints"
    folder.mkdir(parents=True, exist_ok=True)
    prints = {}
    for d in sorted(p for p in (DATA / "dresden" / "flatfield").iterdir() if p.is_dir()):
        flats = sorted(d.glob("*.jpg"))
        files = {"all": flats, "even": flats[::2], "odd": flats[1::2]}[tag]
        path = folder / f"{d.name}_{tag}.npy"
        if not path.is_file():
            np.save(path, estimate_fingerprint([str(f) for f in files], sigma=SIGMA, crop=1024))
        prints[d.name] = np.load(path)
    return prints


def _cut(k: np.ndarray, window: tuple[int, int, int]) -> np.ndarray:
    r0, c0, n = window
    return np.ascontiguousarray(k[r0:r0 + n, c0:c0 + n])


def eval_edges(item: dict, cache: Path) -> np.ndarray:
    """Edge mask of the original (as ``dippas evaluate``), cached."""
    from dippas.inpainting.edges import edge_mask

    path = cache / "edges" / f"{item['id']}.npy"
    if path.is_file():
        return np.load(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    m = edge_mask(item["image"], denoiser="nl_means")
    np.save(path, m)
    return m


# --------------------------------------------------------------------------
# One setting
# --------------------------------------------------------------------------

def _to_uint8(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def run_one(name: str, func: Anonymizer, k_aware: bool, item: dict, score_k: dict, aware_k: dict,
            cache: Path) -> dict:
    """Anonymize one image (cached PNG), score it against every device, return its record."""
    from dippas.io import load_image, save_image

    sdir = cache / name
    rec_path = sdir / f"{item['id']}.json"
    if rec_path.is_file():
        return read_json(rec_path)
    sdir.mkdir(parents=True, exist_ok=True)
    kin = _cut(aware_k[item["device"]], item["window"]) if k_aware else None
    t0 = time.perf_counter()
    res = func(item["image"], kin)
    secs = time.perf_counter() - t0
    img = getattr(res, "image", res)
    parts = getattr(res, "edges", None)
    out8 = _to_uint8(img)
    save_image(sdir / f"{item['id']}.png", out8, force=True)
    fps = {d: _cut(k, item["window"]) for d, k in score_k.items()}
    rec = score_image(out8, item["image"], fps, eval_edges(item, cache), sigma=SIGMA)
    rec.pop("pce", None)
    rec.update(image_id=item["id"], device=item["device"], seconds=secs,
               seconds_per_512=secs * (512 * 512) / out8.shape[0] / out8.shape[1])
    if parts is not None and np.any(parts) and not np.all(parts):
        w = noise_residual(out8, SIGMA)
        rec["ncc_part_edges"], rec["ncc_part_inpainted"] = {}, {}
        for d, k in fps.items():
            x = attribution_reference(out8, k)
            rec["ncc_part_edges"][d] = edge_ncc(w, x, parts)
            rec["ncc_part_inpainted"][d] = edge_ncc(w, x, ~parts)
    rec.pop("pce", None)
    write_json(rec_path, rec)
    return rec


def _matrix(records: list[dict], devices: list[str], key: str) -> np.ndarray:
    m = np.full((len(devices), len(records)), np.nan)
    for j, r in enumerate(records):
        for i, d in enumerate(devices):
            v = r.get(key, {}).get(d)
            m[i, j] = np.nan if v is None else v
    return m


def summarize(records: list[dict], devices: list[str], n_boot: int) -> dict:
    """Every figure of one setting."""
    labels = label_matrix(devices, [r["device"] for r in records])
    psnr = np.array([r["psnr"] for r in records])
    s = bootstrap_summary(labels, _matrix(records, devices, "ncc"), psnr, n_boot=n_boot)
    s["images"] = len(records)
    s["ssim"] = float(np.mean([r["ssim"] for r in records]))
    s["auc_edges"], s["auc_edges_ci"] = bootstrap_auc(labels, _matrix(records, devices, "ncc_edges"),
                                                      n_boot=n_boot)
    s["seconds_per_512"] = float(np.median([r["seconds_per_512"] for r in records]))
    ncc_m = _matrix(records, devices, "ncc")
    s["ncc_own_mean"] = float(np.nanmean(ncc_m[labels]))
    s["ncc_other_mean"] = float(np.nanmean(ncc_m[~labels]))
    if all("ncc_part_edges" in r for r in records):
        for part in ("edges", "inpainted"):
            m = _matrix(records, devices, f"ncc_part_{part}")
            key = "edges_part" if part == "edges" else part
            s[f"ncc_own_{part}"] = float(np.nanmean(m[labels]))
            s[f"auc_{key}"], s[f"auc_{key}_ci"] = bootstrap_auc(labels, m, n_boot=n_boot)
    return s


# --------------------------------------------------------------------------
# Diagnostics
# --------------------------------------------------------------------------

def lag_profile(items: list[dict], score_k: dict, shifts=(1, 2, 3, 4, 5, 6, 8, 9, 10)) -> dict:
    """Mean over positives of NCC(W shifted by s, gray(I) K), along rows and columns."""
    out = {"0": []}
    for s in shifts:
        out[f"x{s}"] = []
        out[f"y{s}"] = []
    for it in items:
        k = _cut(score_k[it["device"]], it["window"])
        w = noise_residual(it["image"], SIGMA)
        x = attribution_reference(it["image"], k)
        out["0"].append(ncc(w, x))
        for s in shifts:
            # average of the shifts +s and -s (interior only, no wrap-around)
            out[f"x{s}"].append(0.5 * (ncc(w[:, s:], x[:, :-s]) + ncc(w[:, :-s], x[:, s:])))
            out[f"y{s}"].append(0.5 * (ncc(w[s:, :], x[:-s, :]) + ncc(w[:-s, :], x[s:, :])))
    return {k: float(np.mean(v)) for k, v in out.items()}


def time_full(name: str, aware_k: dict) -> float:
    """Seconds of one setting on the full 3008x2000 photo (after a warm-up on a crop).

    K-aware settings get a fingerprint of the photo's size (the 1024² one
    tiled: the time does not depend on its values).
    """
    from dippas.io import load_image

    photo = load_image(next((DATA / "dresden" / "full").glob("*.JPG")))
    _, factory, k_aware = SETTINGS[name]
    func = factory()
    k = None
    if k_aware:
        k1 = next(iter(aware_k.values()))
        reps = (-(-photo.shape[0] // 1024), -(-photo.shape[1] // 1024))
        k = np.ascontiguousarray(np.tile(k1, reps)[:photo.shape[0], :photo.shape[1]])
    func(photo[:256, :256], None if k is None else k[:256, :256])
    t0 = time.perf_counter()
    func(photo, k)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def _ci(v, ci, fmt="{:.3f}") -> str:
    return f"{fmt.format(v)} [{fmt.format(ci[0])}, {fmt.format(ci[1])}]"


def table(summaries: dict[str, dict], descriptions: dict[str, str], size: int) -> str:
    """Markdown table of the settings."""
    head = ("| setting | AUC [95% CI] | PSNR | SSIM | C [95% CI] | edge AUC [95% CI] | s / 512² "
            "| NCC own: edges / inpainted | AUC: edge part / inpainted part | ΔC vs ref [95% CI] | ΔAUC vs ref [95% CI] |")
    lines = [head, "|" + "---|" * 11]
    for name, s in summaries.items():
        parts = (f"{s['ncc_own_edges']:+.4f} / {s['ncc_own_inpainted']:+.4f}"
                 if "ncc_own_edges" in s else "–")
        part_auc = (f"{s['auc_edges_part']:.3f} / {s['auc_inpainted']:.3f}"
                    if "auc_edges_part" in s else "–")
        dc = s.get("paired")
        dct = "–" if dc is None else (_ci(dc["dc"], dc["dc_ci"], "{:+.2f}") + (" *" if dc["separated"] else ""))
        dat = "–" if dc is None else _ci(dc["dauc"], dc["dauc_ci"], "{:+.3f}")
        lines.append(f"| {name} | {_ci(s['auc'], s['auc_ci'])} | {s['psnr']:.2f} | {s['ssim']:.4f} | "
                     f"{_ci(s['c'], s['c_ci'], '{:.2f}')} | {_ci(s['auc_edges'], s['auc_edges_ci'])} | "
                     f"{s['seconds_per_512']:.2f} | {parts} | {part_auc} | {dct} | {dat} |")
    lines.append("")
    n = next(iter(summaries.values())).get("images", "")
    lines.append(f"{n} images, crops {size}x{size} " + ("(the quadrants)" if size == QUADRANT else
                                                       "(centre crops of the quadrants)")
                 + "; * = difference interval excludes 0.")
    for name in summaries:
        lines.append(f"- `{name}`: {descriptions.get(name, '')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="cache and result folder")
    ap.add_argument("--settings", default="classic", help="comma-separated setting names (see --list)")
    ap.add_argument("--callable", action="append", default=[], metavar="NAME=module:function",
                    help="an extra anonymizer f(image, fingerprint) (K-aware: it gets the even-half K)")
    ap.add_argument("--size", type=int, default=QUADRANT, help="crop side (512: the quadrants)")
    ap.add_argument("--quadrants", default="0,1,2,3",
                    help="quadrants to use (default all four: 64 images)")
    ap.add_argument("--score-k", choices=("all", "odd"), default="all",
                    help="flat-fields of the scoring fingerprints (default all 10)")
    ap.add_argument("--aware-k", choices=("all", "even"), default="all",
                    help="flat-fields of the K-aware anonymizers' fingerprint (default: the scorer's)")
    ap.add_argument("--reference", default=None, help="setting the paired ΔC is taken against")
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap draws")
    ap.add_argument("--lags", action="store_true", help="print the lag profile c(s) of the originals")
    ap.add_argument("--list", action="store_true", help="list the settings and exit")
    ap.add_argument("--cached-only", action="store_true",
                    help="only the images the first setting has already scored (a protocol still "
                    "running elsewhere); the table says how many")
    ap.add_argument("--time-full", action="store_true",
                    help="also time every setting on the full 3008x2000 photo (target <= 20 s)")
    args = ap.parse_args(argv)

    if args.list:
        for n, (d, _, k) in SETTINGS.items():
            print(f"{n:16s} {'K-aware ' if k else ''}{d}")
        return 0
    for spec in args.callable:
        name, f = _load_callable(spec)
        register_setting(name, f)
    names = [n for n in args.settings.split(",") if n] + [s.split("=", 1)[0] for s in args.callable]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise DippasInputError(f"unknown setting(s) {', '.join(unknown)}; see --list")
    if not 32 <= args.size <= QUADRANT:
        raise DippasInputError(f"--size must be in 32..{QUADRANT}")

    if (args.score_k, args.aware_k) not in (("all", "all"), ("odd", "even")):
        raise DippasInputError("use --score-k all --aware-k all, or --score-k odd --aware-k even")
    cache = args.out / (f"size{args.size}" + ("" if args.score_k == "all" else f"-score{args.score_k}")
                        + ("" if args.aware_k == "all" else f"-aware{args.aware_k}"))
    score_k = load_fingerprints(args.out, args.score_k)
    aware_k = score_k if args.aware_k == args.score_k else load_fingerprints(args.out, args.aware_k)
    devices = sorted(score_k)
    quads = tuple(sorted({int(q) for q in args.quadrants.split(",")}))
    if not quads or not set(quads) <= {0, 1, 2, 3}:
        raise DippasInputError("--quadrants takes numbers among 0, 1, 2, 3")
    items = load_items(args.size, quads)
    if args.cached_only:
        items = [it for it in items if (cache / names[0] / f"{it['id']}.json").is_file()]
        print(f"--cached-only: {len(items)} image(s) scored by {names[0]} so far", flush=True)
    if args.lags:
        prof = lag_profile(items, score_k)
        cache.mkdir(parents=True, exist_ok=True)
        write_json(cache / "lags.json", prof)
        print("lag s | c(s) along rows (x) | c(s) along columns (y)")
        print(f"0 | {prof['0']:+.4f} |")
        for s in (1, 2, 3, 4, 5, 6, 8, 9, 10):
            print(f"{s} | {prof[f'x{s}']:+.4f} | {prof[f'y{s}']:+.4f}")
    summaries, records_by = {}, {}
    for name in names:
        desc, factory, k_aware = SETTINGS[name]
        func = factory()
        t0 = time.perf_counter()
        recs = [run_one(name, func, k_aware, it, score_k, aware_k, cache) for it in items]
        records_by[name] = recs
        summaries[name] = summarize(recs, devices, args.boot)
        print(f"[{name}] done in {time.perf_counter() - t0:.0f} s: AUC {summaries[name]['auc']:.3f} "
              f"PSNR {summaries[name]['psnr']:.2f} C {summaries[name]['c']:.2f}", flush=True)
    if args.time_full:
        for name in names:
            summaries[name]["seconds_full_photo"] = time_full(name, aware_k)
            print(f"[{name}] full 3008x2000 photo: {summaries[name]['seconds_full_photo']:.1f} s", flush=True)
    ref = args.reference or names[0]
    if ref in records_by:
        labels = label_matrix(devices, [r["device"] for r in records_by[ref]])
        for name in names:
            if name == ref:
                continue
            a, b = records_by[name], records_by[ref]
            summaries[name]["paired"] = paired_difference(
                labels, _matrix(a, devices, "ncc"), [r["psnr"] for r in a],
                _matrix(b, devices, "ncc"), [r["psnr"] for r in b], n_boot=args.boot)
    cache.mkdir(parents=True, exist_ok=True)
    tag = ("" if quads == (0, 1, 2, 3) else "_q" + "".join(map(str, quads))) + ("_cached" if args.cached_only else "")
    write_json(cache / f"summary{tag}.json", {"size": args.size, "quadrants": list(quads),
                                              "images": len(items), "reference": ref,
                                              "settings": summaries})
    print(table(summaries, {n: SETTINGS[n][0] for n in names}, args.size))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DippasInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
