"""Replay other stop rules on kept DIPPAS runs: where each would have stopped, and its output.

A stop rule only decides *when* an inversion ends; up to that point the
trajectory (every snapshot, its PSNR and its cell statistics) is the same.
So the run folders that ``protocol_dippas.py`` keeps for the default job
(``DIPPAS_PROTOCOL_RUNS``, one per protocol crop) answer, for any rule that
stops no later than the recorded run did, at which iteration it would have
stopped and what the assembled output would have been. No new inversion
is needed, and the comparison is paired crop by crop.

A rule here is the default job's (:meth:`dippas.jobs.DippasJob.stop_rule`:
the raw network's 39 dB, or every 25 iterations, once the raw PSNR has
reached the gate, an assembly with τ that meets ``target`` dB with its NCCs
at chance), with τ, the gate and the target changed::

    NAME=tau:T,target:P[,gate:G]      (tau:none for every stored snapshot; the gate is
                                       the product's, the lower of target and τ, unless given)

For each rule the script prints the total iterations against the recorded
stops with a bootstrap 95 % interval over the crops, and how many crops it
could not replay (a rule that would have run past the recorded stop). It
writes each crop's output to ``OUT/NAME/<crop digest>.png``, which
``tune_protocol.py`` scores through ``protocol_dippas:imported``::

    PYTHONPATH=src_core:benchmarks python benchmarks/replay_stop_rule.py --out /tmp/replay \\
        --rule now=tau:38,target:38 --rule tau37=tau:37,target:38
    DIPPAS_IMPORTED=/tmp/replay/tau37 PYTHONPATH=src_core:benchmarks python benchmarks/tune_protocol.py \\
        --out /tmp/tune --size 128 --settings '' --callable replay-tau37=protocol_dippas:imported \\
        --callable dippas-default=protocol_dippas:default --reference dippas-default

The ``now`` rule must give back the recorded stops and outputs (a check of
the replay).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np


def parse_rule(text: str) -> tuple[str, dict]:
    """``NAME=tau:T,gate:G,target:P`` -> ``(name, {'tau': .., 'gate': .., 'target': ..})``."""
    name, _, spec = text.partition("=")
    fields = {"tau": 38.0, "gate": None, "target": 38.0}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition(":")
        if key not in fields:
            raise SystemExit(f"unknown rule field {key!r} in {text!r}")
        fields[key] = None if value.lower() == "none" else float(value)
    return name, fields


def default_runs(root: Path) -> list:
    """The finished one-tile run folders of the default job (``fast``, warm start, aware)."""
    from dippas.dip.store import RunStore, is_run_folder
    from dippas.jobs import DippasJob

    preset = DippasJob().preset
    runs = []
    for folder in sorted(p for p in root.iterdir() if is_run_folder(p)):
        store = RunStore(folder)
        p = store.params
        if (p.get("preset") == preset and p.get("warm_start") and p.get("mode") == "aware"
                and store.is_complete and len(store) == 1):
            runs.append(store)
    return runs


def replay(store, fields: dict) -> tuple[int | None, np.ndarray | None, str]:
    """Where ``fields``' rule stops on ``store``'s trajectory: (iteration, output, reason).

    ``(None, None, 'beyond')`` when it would have run past the recorded stop.
    """
    from dippas.jobs import DippasJob

    job = DippasJob()
    rule = dataclasses.replace(job.stop_rule(), psnr_threshold=fields["tau"],
                               target_psnr=fields["target"])
    gate = rule.gate_psnr if fields["gate"] is None else fields["gate"]
    preset = job.preset_parameters()
    tile = store.tile(0, 0)
    reference, pattern = store.input, store.fingerprint
    table = tile.table
    iters, psnrs = np.asarray(table["iteration"]), np.asarray(table["psnr"])
    history = tile.history
    h_it, h_psnr = np.asarray(history["iteration"]), np.asarray(history["psnr"])
    snapshots, cells = tile.snapshots, tile.cells
    recorded = int(tile.status["iteration"])

    def output(k: int) -> np.ndarray:
        n = int(np.searchsorted(iters, k, side="right"))
        if n == 0:  # no snapshot at all: the run keeps its best output (recorded at the end)
            n = len(iters)
        return rule.assemble(reference, snapshots[:n], cells[:n], psnrs[:n], preset.cell, pattern)

    for k, raw in zip(h_it.tolist(), h_psnr.tolist()):
        if raw >= preset.stop_psnr:
            return k, output(k), "psnr"
        if k % rule.check_every == 0 and raw >= gate:
            n = int(np.searchsorted(iters, k, side="right"))
            check = rule.check(reference, snapshots[:n], cells[:n], psnrs[:n], preset.cell, pattern)
            if check is not None and check.met:
                return k, output(k), "assembled"
    if tile.status.get("stop_reason") == "max_iter":
        return recorded, output(recorded), "max_iter"
    return None, None, "beyond"


def main(argv: list[str] | None = None) -> int:
    from dippas.io import save_image
    from protocol_iterations import ratio_interval
    from protocol_mosaic import crop_digest

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("/tmp/dippas-protocol-runs"),
                    help="DIPPAS_PROTOCOL_RUNS (default /tmp/dippas-protocol-runs)")
    ap.add_argument("--rule", action="append", required=True, help="NAME=tau:T,gate:G,target:P")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    runs = default_runs(args.runs)
    print(f"{len(runs)} finished runs of the default job under {args.runs}")
    for spec in args.rule:
        name, fields = parse_rule(spec)
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        recorded, replayed, reasons, beyond, same = [], [], {}, 0, 0
        for store in runs:
            k, image, reason = replay(store, fields)
            reasons[reason] = reasons.get(reason, 0) + 1
            if k is None:
                beyond += 1
                continue
            tile_status = store.tile(0, 0).status
            recorded.append(int(tile_status["iteration"]))
            replayed.append(k)
            same += k == recorded[-1]
            save_image(folder / f"{crop_digest(store.input)}.png", image, force=True)
        lo, hi = ratio_interval(recorded, replayed) if recorded else (math.nan, math.nan)
        ratio = sum(replayed) / sum(recorded) if recorded else math.nan
        print(f"[{name}] τ {fields['tau']}, gate {fields['gate'] or 'as the product'}, target {fields['target']} dB: "
              f"{len(replayed)} crops replayed ({beyond} would run past their record), "
              f"iterations {sum(replayed)} against {sum(recorded)} recorded: ratio {ratio:.3f} "
              f"[{lo:.3f}, {hi:.3f}]; median {np.median(replayed):.0f} against "
              f"{np.median(recorded):.0f}; same stop on {same}; stops {reasons}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
