"""The evaluation's output files and text table: results.json, results.csv, per_image.csv."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..jsonio import dumps, write_json
from .dataset import Dataset

#: Columns of results.csv.
RESULT_COLUMNS = ("setting", "method", "params", "images", "devices", "positives", "negatives",
                  "dropped", "auc", "eer", "tpr_at_fpr_1", "tpr_at_fpr_5", "threshold", "auc_pce",
                  "auc_edges", "auc_edges_rel_change", "psnr_mean", "psnr_min", "ssim_mean",
                  "tradeoff_c", "edge_fraction_mean")

#: Columns of per_image.csv.
PER_IMAGE_COLUMNS = ("setting", "method", "image_id", "device", "psnr", "ssim", "ncc_own",
                     "pce_own", "ncc_edges_own", "ncc_max_other", "edge_fraction",
                     "seconds_anonymize", "image", "out_image")


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list, tuple)):
        return dumps(v, indent=None)
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
    return str(v)


def _csv_text(columns: Sequence[str], rows: Iterable[Mapping]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def _write_text(path: Path, text: str) -> Path:
    from ..io import atomic_write

    def writer(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    return atomic_write(path, writer)


def per_image_rows(records: Sequence[Mapping]) -> list[dict]:
    """Rows of per_image.csv: scores against the image's own device and the best other one."""
    rows = []
    for r in records:
        others = [v for d, v in r["ncc"].items() if d != r["device"] and v is not None]
        rows.append({**r, "ncc_own": r["ncc"].get(r["device"]), "pce_own": r["pce"].get(r["device"]),
                     "ncc_edges_own": r["ncc_edges"].get(r["device"]),
                     "ncc_max_other": max(others) if others else None})
    return rows


def write_outputs(out: Path, summaries, records, ds: Dataset, settings, crop, sigma, edge_denoiser,
                  work, fingerprints) -> dict:
    """Write results.json, results.csv and per_image.csv; returns name -> path."""
    from .. import __version__

    report = {
        "dippas_version": __version__,
        "protocol": "paper 4.4: NCC(W, gray(I)K); positives = own device, negatives = every other",
        "dataset": {"source": str(ds.source) if ds.source else None, "layout": ds.layout,
                    "images": len(ds.items), "devices": list(fingerprints),
                    "fingerprints": {d: str(p) for d, p in fingerprints.items()}},
        "crop": crop, "sigma": sigma, "edge_denoiser": edge_denoiser,
        "settings": summaries, "work": work,
    }
    files = {
        "results_json": write_json(out / "results.json", report),
        "results_csv": _write_text(out / "results.csv", _csv_text(RESULT_COLUMNS, summaries)),
        "per_image_csv": _write_text(out / "per_image.csv",
                                     _csv_text(PER_IMAGE_COLUMNS, per_image_rows(records))),
    }
    return {k: str(v) for k, v in files.items()}


def format_table(summaries: Sequence[Mapping]) -> str:
    """The results as a fixed-width text table (one row per setting)."""
    cols = [("setting", "setting", "{}"), ("AUC", "auc", "{:.4f}"), ("EER", "eer", "{:.3f}"),
            ("TPR@1%", "tpr_at_fpr_1", "{:.3f}"), ("TPR@5%", "tpr_at_fpr_5", "{:.3f}"),
            ("AUC_PCE", "auc_pce", "{:.4f}"), ("AUC_edge", "auc_edges", "{:.4f}"),
            ("dAUC_edge", "auc_edges_rel_change", "{:+.1%}"), ("PSNR", "psnr_mean", "{:.2f}"),
            ("SSIM", "ssim_mean", "{:.4f}"), ("C", "tradeoff_c", "{:.2f}")]

    def fmt(v, f):
        if v is None:
            return "-"
        if isinstance(v, float) and not math.isfinite(v):
            return "inf" if v > 0 else "nan"
        return f.format(v)

    rows = [[fmt(s.get(k), f) for _, k, f in cols] for s in summaries]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, (h, _, _) in enumerate(cols)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, ((h, _, _), w) in enumerate(zip(cols, widths)))]
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)
