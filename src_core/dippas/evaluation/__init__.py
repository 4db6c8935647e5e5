"""The paper's evaluation protocol (§4.4): attribution ROC, fidelity and trade-off of anonymizers.

For every method setting, every image of a dataset is anonymized (centre
crop, 512 by default) and tested against every device fingerprint with
NCC(W, gray(I)·K). Positives are images against their own device,
negatives against every other one. Reported: ROC AUC, EER, TPR at FPR 1 %
and 5 %, AUC of the zero-shift PCE, the edge-only AUC and its relative
change (paper Table 4), mean PSNR and SSIM against the original crop, and
the trade-off C = PSNR (1 - 2 |AUC - 0.5|).

Modules
-------
dataset
    Dataset layouts and manifests, fingerprint estimation and caching.
methods
    Method specs (``inpainting:hole=3/5``), grids and running one method.
scoring
    Per-image scores and per-setting summaries.
plots
    ROC curves, AUC against PSNR, NCC histograms (matplotlib, Agg).
protocol
    Tasks, the per-image work function :func:`anonymize_one`; :func:`evaluate` runs it all.
keys
    What a cached result depends on: image, score and record keys.
tables
    The output files (results.json, results.csv, per_image.csv) and the text table.

Examples
--------
>>> from dippas.evaluation import evaluate, format_table      # doctest: +SKIP
>>> res = evaluate("dataset/", ["none", "inpainting"], "eval_out")  # doctest: +SKIP
>>> print(format_table(res.summaries))                       # doctest: +SKIP
"""

from .dataset import (
    DEFAULT_CROP,
    Dataset,
    ImageItem,
    check_dataset,
    crop_array,
    fingerprints_from_folder,
    load_dataset,
    parse_crop,
    resolve_fingerprints,
)
from .methods import (
    METHODS,
    Method,
    MethodSpec,
    Param,
    Setting,
    expand_settings,
    get_method,
    parse_grid,
    parse_method_spec,
    run_method,
)
from .protocol import (
    EvaluationResult,
    Task,
    anonymize_one,
    build_tasks,
    evaluate,
    invert_one,
    summarize,
)
from .tables import format_table
from .scoring import attribution_summary, label_matrix, score_image, summarize_setting

__all__ = [
    "DEFAULT_CROP",
    "METHODS",
    "Dataset",
    "EvaluationResult",
    "ImageItem",
    "Method",
    "MethodSpec",
    "Param",
    "Setting",
    "Task",
    "anonymize_one",
    "attribution_summary",
    "build_tasks",
    "check_dataset",
    "crop_array",
    "evaluate",
    "expand_settings",
    "fingerprints_from_folder",
    "format_table",
    "get_method",
    "invert_one",
    "label_matrix",
    "load_dataset",
    "parse_crop",
    "parse_grid",
    "parse_method_spec",
    "resolve_fingerprints",
    "run_method",
    "score_image",
    "summarize",
    "summarize_setting",
]
