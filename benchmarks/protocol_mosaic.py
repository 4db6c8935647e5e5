"""A DIPPAS setting on every protocol crop at once: the crops as the tiles of one photo.

On a GPU, ``dippas`` steps the tiles of a photo together as one batched
model (``dippas.dip.tile_batch``), each tile with its own network,
optimiser, seed, stop rule and store. This script lays the protocol's crops
(``benchmarks/tune_protocol.py``: the centre crops of the four quadrants of
each shared 1024² crop) side by side as the tiles of one mosaic, with the
camera's K of each crop at its place, and runs one ``DippasJob`` on it with
tiles of the crop side and no overlap. Each tile is then exactly one crop's
PRNU-aware inversion; only the seeds differ from a run per crop (a tile's
seed mixes the mosaic's content seed with its position).

It is how the ``paper`` preset, minutes per 128² crop on this CPU, gets
onto the protocol in one short GPU lease. The outputs are scored here by
``tune_protocol.py`` through ``protocol_dippas:imported``.

Steps::

    # 1. here: the crops and their K (the protocol's fingerprints, cached by tune_protocol)
    PYTHONPATH=src_core:benchmarks python benchmarks/protocol_mosaic.py export \\
        --tune /tmp/tune --size 128 --out .gpudata/protocol128.npz
    # 2. on the GPU: one mosaic run per setting, outputs named by the crop's digest
    python benchmarks/protocol_mosaic.py run .gpudata/protocol128.npz --device cuda \\
        --preset paper --out OUT/paper
    # 3. here: score them with the protocol (bootstrap intervals, paired against the default)
    DIPPAS_IMPORTED=OUT/paper PYTHONPATH=src_core:benchmarks python benchmarks/tune_protocol.py \\
        --out /tmp/tune --size 128 --settings '' \\
        --callable dippas-paper-gpu=protocol_dippas:imported \\
        --callable dippas-default=protocol_dippas:default --reference dippas-default

``run`` prints, per setting, the wall time of the whole mosaic, and per
crop the iterations and the stop reason (also in ``OUT/<setting>/runs.json``,
keyed by the crop's digest). The seconds that ``tune_protocol.py`` lists for
imported outputs are the time to read a PNG, not an inversion's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np


def crop_digest(image: np.ndarray) -> str:
    """The name of a crop's output: its pixels' digest (never a path or a camera)."""
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:20]


def export(tune: Path, size: int, quadrants: tuple[int, ...], out: Path) -> int:
    """Write the protocol's crops and the K each one is anonymized with to ``out`` (.npz)."""
    from tune_protocol import _cut, load_fingerprints, load_items

    prints = load_fingerprints(tune, "all")
    items = load_items(size, quadrants)
    images = np.stack([it["image"] for it in items])
    ks = np.stack([_cut(prints[it["device"]], it["window"]) for it in items]).astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, images=images, fingerprints=ks)
    print(f"{len(items)} crops of {size}² and their K -> {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def mosaic(tiles: np.ndarray) -> tuple[np.ndarray, int]:
    """``tiles`` (n, s, s, ...) laid row by row on a grid of ``ceil(sqrt(n))`` columns.

    Cells past the last tile repeat the first one (their output is not used).
    """
    n, s = tiles.shape[0], tiles.shape[1]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.concatenate([tiles, np.repeat(tiles[:1], rows * cols - n, axis=0)])
    grid = grid.reshape(rows, cols, s, s, *tiles.shape[3:]).swapaxes(1, 2)
    return np.ascontiguousarray(grid.reshape(rows * s, cols * s, *tiles.shape[3:])), cols


def cut(image: np.ndarray, index: int, side: int, cols: int) -> np.ndarray:
    """Tile ``index`` of a mosaic of ``cols`` columns."""
    r, c = divmod(index, cols)
    return np.ascontiguousarray(image[r * side:(r + 1) * side, c * side:(c + 1) * side])


def run(data: Path, preset: str, device: str, out: Path, max_iter: int, tiles_at_once: int | None,
        max_seconds: float, label: str, runs: Path | None = None) -> int:
    """Invert the mosaic with ``preset``, assemble it, and write each crop's output."""
    from dippas.dip.store import RunStore
    from dippas.errors import Cancelled
    from dippas.io import save_image
    from dippas.jobs import DippasJob
    from dippas.progress import CancelToken

    arrays = np.load(data)
    images, ks = arrays["images"], arrays["fingerprints"]
    side = int(images.shape[1])
    image, cols = mosaic(images)
    k, _ = mosaic(ks)
    folder = out / label
    folder.mkdir(parents=True, exist_ok=True)
    job = DippasJob(device=device, preset=preset, tile=side, tile_overlap=0, max_iter=max_iter,
                    tiles_at_once=tiles_at_once)
    run_dir = (runs or folder) / f"{label}-run"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    token = CancelToken()
    n_tiles = (image.shape[0] // side) * cols
    state = {"done": 0, "last": 0.0, "events": 0}
    t0 = time.perf_counter()

    def on_iteration(ev) -> None:
        state["events"] += 1
        state["done"] += bool(ev.done)
        now = time.perf_counter() - t0
        if now - state["last"] >= 15:
            state["last"] = now
            print(f"[{label}] {now:6.0f} s: {state['done']}/{n_tiles} tiles stopped, "
                  f"{state['events'] / now:.0f} tile-iterations/s", flush=True)
        if now > max_seconds:
            token.cancel()

    try:
        job.invert(image, k, run_dir, cancel=token, on_iteration=on_iteration)
    except Cancelled:
        print(f"[{label}] cut at --max-seconds after {time.perf_counter() - t0:.0f} s: every tile is "
              f"checkpointed in {run_dir}; the same command continues it", flush=True)
        return 1
    seconds = time.perf_counter() - t0
    assembled = job.assemble(run_dir).image
    store = RunStore(run_dir)
    records = {}
    for i in range(images.shape[0]):
        r, c = divmod(i, cols)
        status = store.tile(r, c).status
        name = crop_digest(images[i])
        save_image(folder / f"{name}.png", cut(assembled, i, side, cols), force=True)
        records[name] = {"iterations": int(status["iteration"]), "stop_reason": status.get("stop_reason")}
    its = [r["iterations"] for r in records.values()]
    summary = {"preset": preset, "device": device, "crops": len(records), "side": side,
               "max_iter": max_iter, "tiles_at_once": job.tiles_at_once, "seconds": seconds,
               "iterations_total": int(sum(its)),
               "iterations_median": float(np.median(its)), "runs": records}
    (folder / "runs.json").write_text(json.dumps(summary, indent=1))
    reasons = {}
    for r in records.values():
        reasons[r["stop_reason"]] = reasons.get(r["stop_reason"], 0) + 1
    print(f"[{label}] {len(records)} crops of {side}² in {seconds:.0f} s (this call): iterations mean {np.mean(its):.0f}, "
          f"median {np.median(its):.0f}, stops {reasons}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write the protocol's crops and their K to an .npz")
    ex.add_argument("--tune", type=Path, required=True, help="tune_protocol.py's --out (fingerprint cache)")
    ex.add_argument("--size", type=int, default=128)
    ex.add_argument("--quadrants", default="0,1,2,3")
    ex.add_argument("--out", type=Path, required=True)
    rn = sub.add_parser("run", help="run settings on the mosaic of an exported .npz")
    rn.add_argument("data", type=Path)
    rn.add_argument("--preset", action="append", required=True,
                    help="a preset name, or LABEL=PRESET (repeatable: run in order)")
    rn.add_argument("--device", default="cuda")
    rn.add_argument("--out", type=Path, required=True)
    rn.add_argument("--max-iter", type=int, default=3000, help="the protocol's cap (default 3000)")
    rn.add_argument("--tiles-at-once", type=int, default=None,
                    help="tiles per batch (default: the product's for the device)")
    rn.add_argument("--runs", type=Path, default=None,
                    help="where the run folders go (default: beside the outputs)")
    rn.add_argument("--max-seconds", type=float, default=math.inf,
                    help="per setting: checkpoint and stop after this long (run again to continue)")
    args = ap.parse_args(argv)
    if args.command == "export":
        quads = tuple(int(q) for q in args.quadrants.split(","))
        return export(args.tune, args.size, quads, args.out)
    status = 0
    for spec in args.preset:
        label, _, preset = spec.rpartition("=")
        status |= run(args.data, preset, args.device, args.out, args.max_iter, args.tiles_at_once,
                      args.max_seconds, label or preset, args.runs)
    return status


if __name__ == "__main__":
    sys.exit(main())
