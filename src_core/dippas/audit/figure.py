"""The audit's one-page PNG: per-block heatmap, scores against thresholds, linking histogram.

Rendered by matplotlib's Agg backend to an array and written by
:func:`dippas.io.save_image`, so the PNG carries no metadata (as
:mod:`dippas.figures`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DippasInputError
from .run import AuditReport

#: Extensions the figure can be written as.
FIGURE_SUFFIXES = (".png",)
#: Heatmaps shown at most (one per image).
MAX_HEATMAPS = 4


def check_figure_path(path: str | os.PathLike, inputs=()) -> Path:
    """Refuse an unsupported extension, an existing file or a missing folder (before any work)."""
    from ..io import check_output_path

    p = Path(path)
    if p.suffix.lower() not in FIGURE_SUFFIXES:
        raise DippasInputError(f"{p}: unsupported figure extension {p.suffix or '(none)'!r}; "
                               "use .png")
    if p.exists() and not p.is_dir():
        raise DippasInputError(f"{p}: already exists; the audit never overwrites a file, "
                               "choose another figure name")
    return check_output_path(p, inputs)


def _relative_scores(tests) -> tuple[list[str], np.ndarray]:
    names, values = [], []
    for t in tests:
        names.append(t.name)
        s = abs(t.score) if t.two_sided else t.score
        values.append(s / t.threshold if np.isfinite(s) and t.threshold > 0 else np.nan)
    return names, np.asarray(values, dtype=float)


def audit_figure(path: str | os.PathLike, report: AuditReport, inputs=()) -> Path:
    """Write the audit figure as a metadata-free PNG.

    Parameters
    ----------
    path : path
        ``.png`` file; it must not exist.
    report : AuditReport
    inputs : iterable of path
        Files the figure must never overwrite.

    Returns
    -------
    pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..figures import heatmap_limit, show_heatmap
    from ..io import save_image

    out = check_figure_path(path, inputs)
    n_maps = min(len(report.images), MAX_HEATMAPS)
    fig = plt.figure(figsize=(11, 11), constrained_layout=True)
    grid = fig.add_gridspec(3, max(n_maps, 1), height_ratios=[1.0, 1.3, 0.8])
    limit = heatmap_limit(*[r.heatmap for r in report.images[:n_maps]])
    im = None
    for i, res in enumerate(report.images[:n_maps]):
        ax = fig.add_subplot(grid[0, i])
        b = res.heatmap_block
        shape = (res.heatmap.shape[0] * b, res.heatmap.shape[1] * b)
        im = show_heatmap(ax, res.heatmap, shape, limit,
                           f"{Path(report.files[i]).name}\nNCC per {b}px block")
    if im is not None:
        fig.colorbar(im, ax=fig.axes[:n_maps], shrink=0.8, label="NCC with K")
    ax = fig.add_subplot(grid[1, :])
    rows: list[tuple[str, list[str], np.ndarray]] = []
    for name, res in zip(report.files, report.images, strict=True):
        rows.append((Path(name).name, *_relative_scores(res.tests)))
    if report.set is not None and report.set.tests:
        rows.append(("set", *_relative_scores(report.set.tests)))
    labels = list(dict.fromkeys(n for _, names, _ in rows for n in names))
    ypos = {n: i for i, n in enumerate(labels)}
    for j, (who, names, vals) in enumerate(rows):
        ys = [ypos[n] + (j - (len(rows) - 1) / 2) * 0.8 / max(len(rows), 1) for n in names]
        ax.scatter(vals, ys, s=14, label=who)
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("|score| / threshold  (right of the line: match, false alarm "
                  f"{report.options.pfa:g})", fontsize=8)
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="lower right")
    ax = fig.add_subplot(grid[2, :])
    if report.set is not None and report.set.within.size:
        data = [report.set.within] + ([report.set.between] if report.set.between.size else [])
        names = ["pairs within the set"] + (["set x reference pairs"]
                                            if report.set.between.size else [])
        ax.hist(data, bins=20, label=names, density=True)
        ax.legend(fontsize=8)
        ax.set_xlabel("residual NCC of a pair", fontsize=8)
        ax.set_title("linking", fontsize=9)
    else:
        ax.text(0.5, 0.5, "linking needs two or more images", ha="center", va="center")
        ax.set_axis_off()
    try:
        fig.set_dpi(100)
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    finally:
        plt.close(fig)
    return save_image(out, pixels, inputs=inputs)
