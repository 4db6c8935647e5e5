"""PNG plots of an evaluation (matplotlib, Agg canvas, no pyplot).

- :func:`plot_roc`: ROC curves of several settings on one figure;
- :func:`plot_tradeoff`: AUC against mean PSNR, one point per setting (paper Fig. 10 view);
- :func:`plot_histograms`: histograms of the positive and negative NCCs of
  one setting, with its operating threshold (the equal-error point).

Figures are drawn on an Agg canvas created per figure, so the global
matplotlib backend (napari's, in the plugin) is never changed. Files are
written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _figure(width: float = 6.0, height: float = 5.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike) -> Path:
    """Write a plot without metadata (no ``tEXt Software``, no ``pHYs``), replacing an older one."""
    from ..figures import save_figure

    return save_figure(fig, path, force=True, tight=True)


def _labels_scores(summary: Mapping, key: str = "ncc") -> tuple[np.ndarray, np.ndarray]:
    from .scoring import label_matrix

    m = summary["matrices"]
    y = label_matrix(m["devices"], m["image_devices"]).ravel()
    s = np.asarray(m[key], dtype=np.float64).ravel()
    ok = np.isfinite(s)
    return y[ok], s[ok]


def plot_roc(summaries: Sequence[Mapping], path: str | os.PathLike, title: str = "ROC (NCC)") -> Path:
    """ROC curves of the given settings, with their AUC in the legend.

    Parameters
    ----------
    summaries : sequence of dict
        Setting results with ``label``, ``auc`` and ``matrices``.
    path : path
        PNG file to write.
    """
    from ..metrics import roc

    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--", label="chance")
    for s in summaries:
        y, sc = _labels_scores(s)
        if not (y.any() and not y.all()):
            continue
        fpr, tpr, _ = roc(y, sc)
        ax.plot(fpr, tpr, lw=1.5, label=f"{s['label']} (AUC {s['auc']:.3f})")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="x-small")
    return _save(fig, path)


def plot_tradeoff(summaries: Sequence[Mapping], path: str | os.PathLike) -> Path:
    """AUC against mean PSNR, one point per setting, coloured by method (paper Fig. 10 view).

    Settings whose images are unchanged (infinite PSNR, e.g. ``none``) are
    drawn as a horizontal line at their AUC.
    """
    fig = _figure(7.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    methods = list(dict.fromkeys(s["method"] for s in summaries))
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    seen = set()
    for s in summaries:
        p, a = s.get("psnr_mean"), s.get("auc")
        if a is None:
            continue
        label = s["method"] if s["method"] not in seen else None
        seen.add(s["method"])
        if p is None or not math.isfinite(p):
            ax.axhline(a, color=colours[s["method"]], ls=":", lw=1, label=f"{s['label']} (PSNR inf)")
            continue
        ax.scatter([p], [a], color=colours[s["method"]], s=25, label=label, zorder=3)
        if len(summaries) <= 30:
            ax.annotate(s["label"].partition(":")[2] or s["label"], (p, a), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    ax.axhline(0.5, color="0.6", lw=1, ls="--")
    ax.set_xlabel("mean PSNR (dB)")
    ax.set_ylabel("AUC (NCC)")
    ax.set_ylim(min(0.4, ax.get_ylim()[0]), 1.02)
    ax.set_title("anonymization (AUC -> 0.5) against fidelity (PSNR)")
    ax.legend(loc="best", fontsize="x-small")
    return _save(fig, path)


def plot_histograms(summary: Mapping, path: str | os.PathLike, bins: int = 30) -> Path:
    """Histograms of positive and negative NCCs of one setting, with the operating threshold."""
    y, s = _labels_scores(summary)
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    edges = np.histogram_bin_edges(s, bins=bins) if s.size else bins
    ax.hist(s[~y], bins=edges, alpha=0.6, color="C0", label=f"other device ({int((~y).sum())})")
    ax.hist(s[y], bins=edges, alpha=0.6, color="C3", label=f"own device ({int(y.sum())})")
    t = summary.get("threshold")
    if t is not None:
        ax.axvline(t, color="k", ls="--", lw=1, label=f"threshold (EER) {t:.4f}")
    ax.set_xlabel("NCC(W, gray(I) K)")
    ax.set_ylabel("pairs")
    auc = summary.get("auc")
    ax.set_title(f"{summary['label']}" + (f"  AUC {auc:.3f}" if auc is not None else ""))
    ax.legend(fontsize="x-small")
    return _save(fig, path)


def write_plots(summaries: Sequence[Mapping], folder: str | os.PathLike) -> list[Path]:
    """All plots of an evaluation into ``folder``.

    Writes ``roc.png`` (every setting), ``roc_<method>.png`` (one per
    method), ``tradeoff.png`` and ``hist_<setting slug>.png`` per setting.

    Returns
    -------
    list of Path
    """
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    ok = [s for s in summaries if s.get("auc") is not None]
    out = [plot_roc(ok, d / "roc.png")]
    for method in dict.fromkeys(s["method"] for s in ok):
        out.append(plot_roc([s for s in ok if s["method"] == method], d / f"roc_{method}.png",
                            title=f"ROC (NCC): {method}"))
    out.append(plot_tradeoff(ok, d / "tradeoff.png"))
    for s in ok:
        out.append(plot_histograms(s, d / f"hist_{s['slug']}.png"))
    return out
