"""Seams at tile borders: DIPPAS on a tiled Dresden crop, tiles without and with overlap.

What runs
---------
The centre crop of ``--size`` pixels (default 448) of a shared natural
Dresden photo (``../shared/data/dresden/natural``) is anonymized PRNU-aware
with its camera's fingerprint (estimated from the shared flat-fields at the
crop size), through the Python API: ``DippasJob(tile=--tile, tile_overlap=O,
max_iter=--max-iter, device='cpu')``, every other option at its default.
With ``--tile 256`` a 448-pixel crop is a 2x2 grid. It runs once per
overlap of ``--overlaps`` (default: 0 and the job's default overlap). The
iteration cap is far below what an anonymization needs (about 900 for
``fast`` at 256², docs/benchmarks.md), so the outputs are not anonymized
outputs: the benchmark measures where the tiles meet, not the method.

What is printed
---------------
Per overlap: the tiles, the inversion seconds and seconds per tile, the
PSNR of the output against the crop and its NCC with K; then the step
statistics of D = output - crop (float, every channel), so that the photo's
own edges do not dominate: the absolute difference of D between adjacent
pixels (horizontal and vertical pairs), taken over

* border pairs: the pairs that straddle a tile edge (for tiles that overlap,
  both edges of the shared strip: where one tile starts and where the other
  ends);
* interior pairs: every pair that touches no shared strip and no tile edge;
* block-edge pairs, a reference: the interior pairs that straddle a multiple
  of the job's block side B (64) of the whole image, where the zero-NCC
  blend (and, in tiles starting there, the block assembly) changes from
  one block to the next. A tile edge at such a multiple (256 with 256-pixel
  tiles) carries that block step too.

``border max`` and ``border mean`` against ``interior max``, ``interior
p99.9`` and ``interior mean``; a seam shows as border steps well above the
interior ones (``ratio`` = border mean / interior mean; ``block ratio`` =
block-edge mean / interior mean, the same ratio at block edges alone).

Last, a projection (not a measurement) of the inversion time of the
3008x2000 shared photo (``dresden/full``): the measured seconds per tile
times the tile count of that photo's grid at the same tile side and
overlap, at the same iteration cap.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_tile_seams.py                  # 448², tile 256
    OMP_NUM_THREADS=1 python benchmarks/bench_tile_seams.py --max-iter 40   # a quick check
    python benchmarks/bench_tile_seams.py --photo Nikon_D70_1_20543 --overlaps 0,16,32
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DRESDEN = ROOT.parent / "shared" / "data" / "dresden"
FULL_PHOTO = DRESDEN / "full" / "Nikon_D70_1_20543.JPG"


def crop_and_fingerprint(photo: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The centre crop of a shared natural photo and its camera's K at the same crop."""
    import dippas
    from dippas.fingerprint import centre_crop
    from dippas.io import load_image

    path = DRESDEN / "natural" / f"{photo}.jpg"
    camera = photo.rsplit("_", 1)[0]
    flats = sorted((DRESDEN / "flatfield" / camera).glob("*.jpg"))
    k = dippas.estimate_fingerprint(flats, crop=size)
    return centre_crop(load_image(path), (size, size)), k


def edge_masks(tiles, length: int, axis: int, overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """Border and interior masks of the ``length - 1`` adjacent pairs along one axis.

    Pair ``i`` is pixels ``(i, i + 1)``. A tile starting at ``s > 0`` has an
    edge between ``s - 1`` and ``s``; the tile before it ends ``overlap``
    pixels later, an edge between ``s + overlap - 1`` and ``s + overlap``.
    Pairs from ``s - 1`` to ``s + overlap - 1`` touch the shared strip.
    """
    starts = sorted({t.y0 if axis == 0 else t.x0 for t in tiles} - {0})
    border = np.zeros(length - 1, bool)
    strip = np.zeros(length - 1, bool)
    for s in starts:
        border[s - 1] = True
        border[s + overlap - 1] = True
        strip[s - 1:s + overlap] = True
    return border, ~strip


def step_statistics(diff: np.ndarray, tiles, overlap: int, block: int) -> dict[str, float]:
    """Border, interior and block-edge statistics of the steps of ``diff`` (H, W, C)."""
    h, w = diff.shape[:2]
    border, interior, blocks = [], [], []
    for axis, length in ((0, h), (1, w)):
        steps = np.abs(np.diff(diff, axis=axis))
        b, i = edge_masks(tiles, length, axis, overlap)
        on_grid = (np.arange(length - 1) + 1) % block == 0
        for out, mask in ((border, b), (interior, i), (blocks, i & on_grid)):
            out.append((steps[mask] if axis == 0 else steps[:, mask]).ravel())
    border, interior, blocks = (np.concatenate(v) for v in (border, interior, blocks))
    return {"border_max": float(border.max()), "border_mean": float(border.mean()),
            "interior_max": float(interior.max()),
            "interior_p999": float(np.quantile(interior, 0.999)),
            "interior_mean": float(interior.mean()), "block_mean": float(blocks.mean())}


def run_one(image: np.ndarray, k: np.ndarray, tile: int, overlap: int, max_iter: int,
            save_psnr: float | None) -> dict:
    """Invert and assemble the crop with one overlap; times, scores and step statistics."""
    import dippas
    from dippas.dip.store import RunStore
    from dippas.jobs import DippasJob
    from dippas.metrics import psnr

    job = DippasJob(device="cpu", tile=tile, tile_overlap=overlap, max_iter=max_iter,
                    save_psnr=save_psnr)
    reference, kk = job.prepare(image, k)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        t0 = time.perf_counter()
        job.invert(image, k, run_dir)
        seconds = time.perf_counter() - t0
        store = RunStore(run_dir)
        tiles = store.tiles
        iterations = [store.tile(g.ty, g.tx).status.get("iteration", 0) for g in tiles]
        t1 = time.perf_counter()
        out = job.assemble(run_dir).image
        assemble_s = time.perf_counter() - t1
    diff = out.astype(np.float64) - reference.astype(np.float64)
    return {"overlap": overlap, "tiles": tiles, "seconds": seconds, "assemble_s": assemble_s,
            "iterations": iterations, "psnr": psnr(reference, out),
            "ncc": dippas.attribution_scores(out, kk)["ncc"],
            **step_statistics(diff, tiles, overlap, int(job.block_size))}


def main(argv: list[str] | None = None) -> int:
    from dippas.jobs import DippasJob

    default_overlap = DippasJob().overlap
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photo", default="Nikon_D200_0_14902",
                   help="a natural Dresden photo's name (default Nikon_D200_0_14902)")
    p.add_argument("--size", type=int, default=448, help="crop side (default 448)")
    p.add_argument("--tile", type=int, default=256, help="tile side (default 256: a 2x2 grid)")
    p.add_argument("--overlaps", default=f"0,{default_overlap}",
                   help=f"tile overlaps to compare (default 0,{default_overlap}: the job's default)")
    p.add_argument("--max-iter", type=int, default=200,
                   help="iteration cap per tile (default 200, far below an anonymization's)")
    p.add_argument("--save-psnr", type=float, default=None,
                   help="store snapshots from this PSNR (default: the preset's)")
    args = p.parse_args(argv)
    import torch
    from dippas.dip.tiling import tile_grid

    image, k = crop_and_fingerprint(args.photo, args.size)
    print(f"{args.photo} centre {args.size}x{args.size}, tile {args.tile}, max_iter {args.max_iter}, "
          f"save_psnr {args.save_psnr if args.save_psnr is not None else 'preset'}; "
          f"torch threads {torch.get_num_threads()}, {os.cpu_count()} cores, load "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("D = output - crop; steps |D(p) - D(q)| over adjacent pixel pairs, all channels")
    head = (f"{'overlap':>7} {'tiles':>5} {'invert s':>8} {'s/tile':>7} {'PSNR':>6} {'NCC':>8} "
            f"{'border max':>10} {'border mean':>11} {'int. max':>8} {'int. p99.9':>10} "
            f"{'int. mean':>9} {'ratio':>5} {'block ratio':>11}")
    rows = []
    for overlap in (int(v) for v in args.overlaps.split(",")):
        r = run_one(image, k, args.tile, overlap, args.max_iter, args.save_psnr)
        rows.append(r)
        print(f"overlap {overlap}: tiles {[(t.y0, t.x0, t.h, t.w) for t in r['tiles']]}, "
              f"iterations {r['iterations']}, assembly {r['assemble_s']:.1f} s", flush=True)
    print(head)
    for r in rows:
        n = len(r["tiles"])
        print(f"{r['overlap']:>7} {n:>5} {r['seconds']:>8.1f} {r['seconds'] / n:>7.1f} "
              f"{r['psnr']:>6.2f} {r['ncc']:>+8.4f} {r['border_max']:>10.1f} {r['border_mean']:>11.2f} "
              f"{r['interior_max']:>8.1f} {r['interior_p999']:>10.1f} {r['interior_mean']:>9.2f} "
              f"{r['border_mean'] / r['interior_mean']:>5.2f} "
              f"{r['block_mean'] / r['interior_mean']:>11.2f}")
    from dippas.io import load_image

    full = load_image(FULL_PHOTO)
    fh, fw = full.shape[:2]
    print(f"projection (not measured) for the {fw}x{fh} photo at tile {args.tile}, "
          f"max_iter {args.max_iter}: measured s/tile x the tile count of its grid")
    for r in rows:
        count = len(tile_grid(fh, fw, args.tile, 16, r["overlap"]))
        per_tile = r["seconds"] / len(r["tiles"])
        print(f"  overlap {r['overlap']:>3}: {count} tiles x {per_tile:.1f} s = "
              f"{count * per_tile / 60:.0f} min")
    job = DippasJob()
    counts = [len(tile_grid(fh, fw, job.tile, 16, o)) for o in (0, job.overlap)]
    print(f"  (at the default tile {job.tile} its grid has {counts[0]} tiles with overlap 0 and "
          f"{counts[1]} with overlap {job.overlap}; seconds per {job.tile}-pixel tile not "
          "measured here)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
