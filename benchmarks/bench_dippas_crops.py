"""DIPPAS-aware on the shared Dresden crops: does it push NCC into the other devices' range?

For each selected natural photo (centre crop, default 512; ``--crop 256``
takes the centre of that crop, and the same window of the golden 512
fingerprint), the script runs a DIPPAS inversion with the photo's own
device fingerprint, assembles it with a few (B, L) settings from one run,
and prints:

- the NCC of the original and of each assembled output against the own K,
- the range of the NCCs of the *originals* against the five other devices'
  fingerprints (the negatives of the attribution test),
- PSNR and SSIM of each output.

On a CPU use reduced settings (``--crop 256 --max-iter 600 --images 4``) and
say so when quoting the figures; on a GPU use the defaults.

Usage::

    python benchmarks/bench_dippas_crops.py [--crop 512] [--images 16] [--preset fast]
        [--max-iter N] [--device auto] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

SETTINGS = [("whole", 1), (64, 1), (64, 10), (32, 10), (32, 50)]


def main(argv=None) -> int:
    import dippas
    from dippas.anonymize import invert_to_run
    from dippas.correlation import attribution_reference
    from dippas.fingerprint import centre_crop
    from dippas.io import load_image
    from dippas.metrics import psnr, ssim
    from dippas.assembly import RunAssembler

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--images", type=int, default=16, help="how many natural photos (of 16)")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--max-iter", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "_out" / "dippas_crops"))
    args = ap.parse_args(argv)

    ref = json.loads((DATA / "reference" / "attribution_ncc.json").read_text())
    devices = ref["devices"]
    ks = {d: centre_crop(np.load(DATA / "reference" / f"fingerprint_{d}_crop512_sigma3.npy"),
                         (args.crop, args.crop)) for d in devices}
    # Spread the selection over devices: every k-th photo.
    names = ref["images"][:: max(1, len(ref["images"]) // args.images)][: args.images]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"DIPPAS-aware, preset {args.preset}, crop {args.crop}, max_iter {args.max_iter or 'preset'}, "
          f"device {args.device}, {len(names)} photos")
    rows = []
    for name in names:
        dev = name.rsplit("_", 1)[0]
        img = centre_crop(centre_crop(load_image(DATA / "dresden" / "natural" / f"{name}.jpg"),
                                      (512, 512)), (args.crop, args.crop))
        w0 = dippas.noise_residual(img)
        own0 = dippas.ncc(w0, attribution_reference(img, ks[dev]))
        others = [dippas.ncc(w0, attribution_reference(img, ks[d])) for d in devices if d != dev]
        run = out / f"{name}_{args.crop}_{args.preset}_{args.max_iter}"
        t0 = time.perf_counter()
        invert_to_run(img, run, ks[dev], preset=args.preset, device=args.device,
                      max_iter=args.max_iter)
        seconds = time.perf_counter() - t0
        asm = RunAssembler(run)
        tile = asm.store.tile(0, 0)
        row = {"image": name, "ncc_in": own0, "others_min": min(others), "others_max": max(others),
               "seconds": seconds, "snapshots": tile.n_snapshots,
               "best_psnr": float(np.max(tile.table["psnr"])) if tile.n_snapshots else None}
        for b, l in SETTINGS:
            res = asm.assemble(b, l, None).image
            w = dippas.noise_residual(res)
            row[f"B={b},L={l}"] = {"ncc": dippas.ncc(w, attribution_reference(res, ks[dev])),
                                   "psnr": psnr(img, res), "ssim": ssim(img, res)}
        rows.append(row)
        print(f"{name:22s} NCC in {own0:+.4f}  others [{min(others):+.4f}, {max(others):+.4f}]  "
              f"{tile.n_snapshots} snapshots, best {row['best_psnr']:.2f} dB, {seconds:.0f} s")
        for b, l in SETTINGS:
            r = row[f"B={b},L={l}"]
            print(f"    B={b!s:>5} L={l:<3} NCC out {r['ncc']:+.4f}  PSNR {r['psnr']:.2f}  SSIM {r['ssim']:.4f}")
        sys.stdout.flush()
    print("\nsummary over photos (mean): NCC in {:+.4f}; others' range of originals [{:+.4f}, {:+.4f}]".format(
        np.mean([r["ncc_in"] for r in rows]), np.mean([r["others_min"] for r in rows]),
        np.mean([r["others_max"] for r in rows])))
    for b, l in SETTINGS:
        k = f"B={b},L={l}"
        inside = np.mean([r["others_min"] <= r[k]["ncc"] <= r["others_max"] for r in rows])
        print(f"  {k:14s} mean NCC out {np.mean([r[k]['ncc'] for r in rows]):+.4f}  "
              f"mean |NCC| out {np.mean([abs(r[k]['ncc']) for r in rows]):.4f}  "
              f"mean PSNR {np.mean([r[k]['psnr'] for r in rows]):.2f}  "
              f"inside others' range {inside:.0%}")
    (out / "results.json").write_text(json.dumps(rows, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
