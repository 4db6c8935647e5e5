"""Iterations of two DIPPAS settings on the same protocol crops, read from their run folders.

``protocol_dippas.py`` keeps one run folder per (crop, inversion job) under
``DIPPAS_PROTOCOL_RUNS``. This script pairs the runs of two settings by
their input crop and prints, over the crops both have finished: the mean
and median iterations (summed over a run's tiles), the ratio of the totals
with a bootstrap 95 % interval over the crops, on how many crops the second
setting needed fewer, and how the tiles stopped.

A setting is ``PRESET`` or ``PRESET:warm_start=0|1`` (the preset name and
the warm start recorded in ``params.json``).

Usage::

    python benchmarks/protocol_iterations.py /tmp/dippas-protocol-runs \\
        fast fast-noise-0.01               # reference first
    python benchmarks/protocol_iterations.py RUNS fast:warm_start=0 fast:warm_start=1
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
from collections import Counter
from pathlib import Path

import numpy as np


def _matches(params: dict, setting: str) -> bool:
    name, _, rest = setting.partition(":")
    if params.get("preset") != name:
        return False
    if rest:
        key, _, value = rest.partition("=")
        if key != "warm_start":
            raise SystemExit(f"unknown setting field {key!r}")
        return bool(params.get("warm_start")) == bool(int(value))
    return True


def finished_runs(root: Path, setting: str) -> dict[str, tuple[int, list[str]]]:
    """``{crop digest: (iterations over tiles, stop reasons)}`` of the finished runs of a setting."""
    from dippas.dip.store import RunStore, is_run_folder

    runs = {}
    for folder in sorted(p for p in root.iterdir() if is_run_folder(p)):
        store = RunStore(folder)
        if not _matches(store.params, setting) or not store.is_complete:
            continue
        statuses = [store.tile(t.ty, t.tx).status for t in store.tiles]
        digest = hashlib.sha1(np.ascontiguousarray(store.input).tobytes()).hexdigest()
        runs[digest] = (sum(int(s["iteration"]) for s in statuses),
                        [str(s.get("stop_reason")) for s in statuses])
    return runs


def ratio_interval(a: list[int], b: list[int], draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95 % interval of ``sum(b) / sum(a)`` over crops drawn with replacement."""
    rng = np.random.default_rng(seed)
    x, y = np.asarray(a, float), np.asarray(b, float)
    idx = rng.integers(0, len(x), (draws, len(x)))
    ratios = y[idx].sum(axis=1) / x[idx].sum(axis=1)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, help="the DIPPAS_PROTOCOL_RUNS folder")
    ap.add_argument("reference", help="PRESET[:warm_start=0|1]")
    ap.add_argument("other", help="PRESET[:warm_start=0|1]")
    args = ap.parse_args(argv)
    ref, other = finished_runs(args.runs, args.reference), finished_runs(args.runs, args.other)
    crops = sorted(set(ref) & set(other))
    if not crops:
        raise SystemExit("no crop has finished runs of both settings")
    a, b = [ref[c][0] for c in crops], [other[c][0] for c in crops]
    lo, hi = ratio_interval(a, b)
    print(f"{len(crops)} crops with both settings finished")
    for label, its, runs in ((args.reference, a, ref), (args.other, b, other)):
        stops = Counter(r for c in crops for r in runs[c][1])
        print(f"{label:28s} mean {statistics.mean(its):7.1f}  median {statistics.median(its):6.1f}  "
              f"stops {dict(sorted(stops.items()))}")
    print(f"total ratio {sum(b) / sum(a):.3f} [{lo:.3f}, {hi:.3f}]  "
          f"fewer on {sum(y < x for x, y in zip(a, b))} of {len(crops)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
