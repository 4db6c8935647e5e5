"""Evaluation protocol on the shared Dresden subset: the baselines' table, on CPU.

Runs :func:`dippas.evaluation.evaluate` (the code behind ``dippas evaluate``)
on the 16 natural images of ``shared/data/dresden`` (512x512 centre crops)
against the 6 golden fingerprints of ``shared/data/reference`` (or, with
``--estimated``, fingerprints estimated from the flat-fields), for the
methods ``none``, ``denoise`` and ``inpainting``, and prints one row per
setting: AUC, EER, TPR at FPR 1 % and 5 %, AUC on the zero-shift PCE,
edge-only AUC and its relative change (paper Table 4), mean PSNR, SSIM and
the trade-off C. It also checks ``none`` against the reference AUC
(0.9586) and reports the wall time of each setting.

The output folder keeps the cache: a second run only re-reads it. Use a
fresh ``--out`` (or ``--fresh``) to time the work.

Usage::

    python benchmarks/bench_evaluation.py --quick               # none, denoise, inpainting
    python benchmarks/bench_evaluation.py                       # + denoisers, hole 3/5, l2/tv, edges 0/1
    python benchmarks/bench_evaluation.py --markdown > docs/evaluation-report.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(os.environ.get("DIPPAS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
REFERENCE_AUC = 0.9586

QUICK = ["none", "denoise", "inpainting"]
FULL = ["none", "denoise:denoiser=wavelet/nl_means/wiener_wavelet",
        "inpainting:hole=3/5,reg=l2/tv,edges=1/0"]


def _markdown(summaries, seconds) -> str:
    cols = [("setting", "setting", "{}"), ("AUC", "auc", "{:.4f}"), ("EER", "eer", "{:.3f}"),
            ("TPR@1%", "tpr_at_fpr_1", "{:.3f}"), ("TPR@5%", "tpr_at_fpr_5", "{:.3f}"),
            ("AUC PCE", "auc_pce", "{:.4f}"), ("AUC edges", "auc_edges", "{:.4f}"),
            ("Δ edges", "auc_edges_rel_change", "{:+.1%}"), ("PSNR", "psnr_mean", "{:.2f}"),
            ("SSIM", "ssim_mean", "{:.4f}"), ("C", "tradeoff_c", "{:.2f}")]

    def fmt(v, f):
        if v is None:
            return "–"
        if isinstance(v, float) and v == float("inf"):
            return "∞"
        return f.format(v)

    lines = ["| " + " | ".join(h for h, _, _ in cols) + " | s/image |",
             "|" + "---|" * (len(cols) + 1)]
    for s in summaries:
        per = seconds.get(s["slug"])
        tail = f" | {per:.2f} |" if per is not None else " | – |"
        lines.append("| " + " | ".join(fmt(s.get(k), f) for _, k, f in cols) + tail)
    return "\n".join(lines)


def _seconds_per_image(records) -> dict[str, float]:
    """Mean anonymization time per image of each setting, from the records."""
    out: dict[str, list[float]] = {}
    for r in records:
        if r.get("seconds_anonymize") is not None:
            out.setdefault(r["slug"], []).append(r["seconds_anonymize"])
    return {k: sum(v) / len(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="only none, denoise and inpainting defaults")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default: a temporary folder, removed afterwards)")
    ap.add_argument("--fresh", action="store_true", help="empty --out first, so every setting is timed")
    ap.add_argument("--estimated", action="store_true",
                    help="estimate the fingerprints from the flat-fields instead of the golden ones")
    ap.add_argument("--crop", type=int, default=512, help="centre crop side (default 512)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown report")
    args = ap.parse_args(argv)

    from dippas.evaluation import evaluate, format_table

    dresden, reference = args.data / "dresden", args.data / "reference"
    if not dresden.is_dir():
        sys.exit(f"no Dresden subset under {args.data} (set DIPPAS_DATA or --data)")
    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.mkdtemp(prefix="bench_evaluation_")
        out = Path(tmp)
    elif args.fresh and out.exists():
        shutil.rmtree(out)
    methods = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    try:
        res = evaluate(dresden, methods, out, crop=args.crop,
                       fingerprints=None if args.estimated else reference, plots=True)
    finally:
        wall = time.perf_counter() - t0
    seconds = _seconds_per_image(res.records)
    none = next((s for s in res.summaries if s["method"] == "none"), None)
    fp = "estimated from the flat-fields" if args.estimated else "golden (reference/)"
    head = (f"dippas evaluate on {len(res.records) // max(len(res.summaries), 1)} Dresden images, "
            f"{args.crop}x{args.crop} centre crops, fingerprints {fp}; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
            f"wall {wall:.1f} s ({res.work['anonymized']} images anonymized, "
            f"{res.work['cached']} from the cache)")
    if args.markdown:
        print(f"# Evaluation report\n\n{head}\n\n{_markdown(res.summaries, seconds)}\n")
        print("Methods as in `dippas evaluate --method " + " --method ".join(methods) + "`. "
              "C = PSNR (1 - 2|AUC - 0.5|); Δ edges = (AUC_edges - AUC) / AUC (paper Table 4).")
    else:
        print(head)
        print(format_table(res.summaries))
        print("\nanonymization time per image (s): "
              + ", ".join(f"{s['setting']} {seconds.get(s['slug'], float('nan')):.2f}"
                          for s in res.summaries))
    if none is not None:
        ok = abs(none["auc"] - REFERENCE_AUC) <= 0.01
        print(f"\nreference check: none AUC {none['auc']:.4f} vs {REFERENCE_AUC} "
              f"({'OK' if ok else 'MISMATCH'})")
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"results and plots in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
