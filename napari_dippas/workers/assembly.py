"""The assembler widget's computation: assembly, report and heatmap (no Qt here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from dippas.dtype import as_rgb_uint8
from dippas.jobs import DippasJob, assembly_rule

#: Heatmap sources of the assembler widget.
SNAPSHOT = "snapshot"
RESULT = "assembled result"


@dataclass(frozen=True)
class AssemblyRequest:
    """What to compute: the assembly key, the heatmap source and the snapshot."""

    block: int | str
    blocks: int
    tau: float | None
    source: str
    tile: str
    frame: int | None
    previous: Any  # the last AssemblyView (to reuse its assembly)
    assembler: Any  # the RunAssembler of the run loaded when asked


@dataclass
class AssemblyView:
    """An assembled run as the widget shows it: image, report, and one heatmap."""

    key: tuple
    image: np.ndarray
    report: dict
    fallback: bool
    heatmap: np.ndarray
    heat_block: tuple[int, int]
    heat_origin: tuple[int, int]
    heat_key: tuple
    heat_text: str



def compute_assembly(req: AssemblyRequest) -> AssemblyView:
    """Assembly (when B, L or τ changed), report and heatmap, in a worker thread; no layer is touched."""
    from dippas.report import anonymization_report

    asm = req.assembler
    # the snapshot counts are part of the key: a running inversion adds snapshots
    counts = tuple(min(t.n_snapshots, t.n_cells) for t in asm.store)
    key = (req.block, req.blocks, req.tau, counts)
    prev = req.previous
    if prev is not None and prev.key == key:
        image, report, fallback = prev.image, prev.report, prev.fallback
    else:
        job = DippasJob()
        rule = assembly_rule(job.rule, req.block, req.blocks)
        assembled = asm.assemble(req.block, req.blocks, req.tau, rule, job.zero_blend)
        image, fallback = assembled.image, bool(assembled.params["psnr_fallback"])
        aware = asm.store.params.get("mode") == "aware"
        report = anonymization_report(as_rgb_uint8(asm.store.input), image,
                                      asm.fingerprint if aware else None)
    h, w = image.shape[:2]
    if req.source == RESULT:
        heat_key = ("result", key)
        if prev is not None and prev.heat_key == heat_key:
            heatmap, block, origin, text = (prev.heatmap, prev.heat_block, prev.heat_origin,
                                            prev.heat_text)
        else:
            heatmap = asm.result_heatmap(image, req.block)
            block = (h, w) if req.block == "whole" else (int(req.block),) * 2
            origin, text = (0, 0), f"assembled result · B={req.block}"
    else:
        tile_asm = asm.assembler(req.tile)
        g = asm.tile_store(req.tile).geometry
        n = tile_asm.n_snapshots
        frame = n - 1 if req.frame is None else min(int(req.frame), n - 1)
        heat_key = ("snapshot", req.tile, frame, req.block, n)
        heatmap = tile_asm.snapshot_heatmap(frame, req.block)
        block, origin = tile_asm.block_shape(req.block), (g.y0, g.x0)
        lag = "" if req.frame is None or req.frame < n else " (cell statistics pending)"
        text = (f"snapshot {frame}/{n - 1} · PSNR {tile_asm.psnr[frame]:.2f} dB · "
                f"B={req.block}{lag}")
    finite = heatmap[np.isfinite(heatmap)]
    if finite.size:
        text += f" · NCC {finite.min():+.4f} … {finite.max():+.4f}"
    return AssemblyView(key=key, image=image, report=report, fallback=fallback, heatmap=heatmap,
                   heat_block=tuple(int(b) for b in block), heat_origin=origin,
                   heat_key=heat_key, heat_text=text)
