"""Scores of the protocol: per-image correlations and fidelity, per-setting ROC summaries.

Per image (:func:`score_image`), against every device fingerprint K:

- ``ncc``: NCC(W, gray(I)·K), W the noise residual of the anonymized image I;
- ``pce``: the zero-shift PCE of the same pair (Binghamton toolbox);
- ``ncc_edges``: the same NCC on the edge pixels only: W and gray(I)·K are
  both restricted to the edge mask of the *original* image (docs/evaluation.md:
  Canny on the gray denoised original, dilated with a disk of radius 3);

and PSNR and SSIM of I against the original crop.

Per setting (:func:`summarize_setting`), over the devices x images matrix,
positives being each image against its own device's fingerprint and
negatives against every other one (paper §4.4): ROC AUC, EER, TPR at FPR
1 % and 5 %, AUC of the PCE, edge-only AUC and its relative change
``(AUC_edges - AUC) / AUC`` (paper Table 4), mean PSNR and SSIM and the
trade-off ``C = PSNR (1 - 2 |AUC - 0.5|)``.

With ``audit=True`` (:func:`score_image`), every per-image test of
``dippas audit`` is also scored against every device (``audit``: test ->
device -> score; ``audit_match``: test -> device -> verdict is "match"), and
:func:`summarize_setting` adds ``audit``: per test, the AUC of its score and
the fraction of positives and of negatives on which it says "match".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import DippasInputError

#: FPRs at which the TPR is reported.
FPR_POINTS = (0.01, 0.05)


# --------------------------------------------------------------------------
# One image
# --------------------------------------------------------------------------

def edge_ncc(residual: np.ndarray, reference: np.ndarray, mask: np.ndarray | None) -> float:
    """NCC of ``residual`` and ``reference`` restricted to ``mask`` (NaN for an empty mask)."""
    from ..correlation import ncc

    if mask is None or not np.any(mask):
        return float("nan")
    m = np.asarray(mask, dtype=bool)
    return ncc(residual[m], reference[m])


def fidelity(original: np.ndarray, image: np.ndarray) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``image`` against ``original``, both in 0-255 units."""
    from ..metrics import psnr, ssim
    from ..dtype import to_float255

    a = to_float255(original)
    b = to_float255(image)
    if a.ndim == 2 and b.ndim == 3:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape != b.shape:
        raise DippasInputError(f"anonymized image is {b.shape}, the original {a.shape}")
    return {"psnr": psnr(a, b, data_range=255.0), "ssim": ssim(a, b, data_range=255.0)}


def audit_scores(image: np.ndarray, fingerprints: Mapping[str, np.ndarray],
                 sigma: float = 3.0) -> dict:
    """The per-image tests of ``dippas audit`` against every fingerprint.

    The examiner's views (residuals of the recompressed, resized and
    re-cropped image, the edge mask of the image itself) are computed once.

    Returns
    -------
    dict
        ``audit`` (test -> device -> score) and ``audit_match`` (test ->
        device -> bool, the verdict at the default false-alarm probability).
    """
    from ..audit.image_tests import examiner_views
    from ..audit.options import AuditOptions

    opt = AuditOptions(sigma=sigma)
    views = examiner_views(image, opt)
    scores: dict = {v.name: {} for v in views}
    match: dict = {v.name: {} for v in views}
    for dev, k in fingerprints.items():
        for v in views:
            t = v.score(k, opt.pfa)
            scores[v.name][dev] = t.score
            match[v.name][dev] = t.matched
    return {"audit": scores, "audit_match": match}


def audit_summary(records: Sequence[Mapping], devices: Sequence[str]) -> dict:
    """Per audit test: ``auc`` of its score, ``match_own`` and ``match_other`` (match rates)."""
    labels = label_matrix(devices, [r["device"] for r in records])
    out = {}
    for test in records[0]["audit"]:
        scores = score_matrix([r["audit"] for r in records], devices, test)
        match = score_matrix([r["audit_match"] for r in records], devices, test)
        out[test] = {"auc": auc_or_none(labels, scores),
                     "match_own": _mean(match[labels]) if labels.any() else None,
                     "match_other": _mean(match[~labels]) if (~labels).any() else None}
    return out


def score_image(image: np.ndarray, original: np.ndarray, fingerprints: Mapping[str, np.ndarray],
                edges: np.ndarray | None, sigma: float = 3.0, audit: bool = False) -> dict:
    """Attribution scores of one anonymized image against every fingerprint, and its fidelity.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, 3)
        The anonymized image.
    original : ndarray
        The original crop it came from.
    fingerprints : mapping of str to ndarray
        Device -> fingerprint K, each (H, W).
    edges : ndarray of bool, (H, W), or None
        Edge mask of the original; None skips the edge-only scores.
    sigma : float
        Residual noise level, 0-255 units.
    audit : bool
        Also score the per-image tests of ``dippas audit`` (:func:`audit_scores`).

    Returns
    -------
    dict
        ``ncc``, ``pce``, ``ncc_edges`` (device -> float), ``psnr``,
        ``ssim`` and ``edge_fraction``; with ``audit``, ``audit`` and
        ``audit_match``.
    """
    from ..correlation import attribution_reference, ncc, pce
    from ..residual import noise_residual

    w = noise_residual(image, sigma)
    out = {"ncc": {}, "pce": {}, "ncc_edges": {}}
    for dev, k in fingerprints.items():
        if k.shape != w.shape:
            raise DippasInputError(f"fingerprint of {dev} is {k.shape}, the image {w.shape}")
        x = attribution_reference(image, k)
        out["ncc"][dev] = ncc(w, x)
        out["pce"][dev] = pce(w, x, search=False)[0]
        out["ncc_edges"][dev] = edge_ncc(w, x, edges)
    out.update(fidelity(original, image))
    out["edge_fraction"] = float(np.mean(edges)) if edges is not None else None
    if audit:
        out.update(audit_scores(image, fingerprints, sigma))
    return out


# --------------------------------------------------------------------------
# ROC summaries
# --------------------------------------------------------------------------

def label_matrix(devices: Sequence[str], image_devices: Sequence[str]) -> np.ndarray:
    """Ground truth (devices x images): True where the image was taken by the row's device."""
    from ..metrics import device_labels

    return device_labels(devices, image_devices)


def _finite(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    y = np.asarray(labels, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    ok = np.isfinite(s)
    return y[ok], s[ok], int((~ok).sum())


def _usable(y: np.ndarray) -> bool:
    return bool(y.size and y.any() and not y.all())


def operating_threshold(labels, scores) -> float:
    """Score threshold at the equal-error point of the ROC (``score >= t`` means attributed)."""
    from ..metrics import roc

    fpr, tpr, thr = roc(labels, scores)
    i = int(np.nanargmin(np.abs((1.0 - tpr) - fpr)))
    t = float(thr[i])
    if not math.isfinite(t):  # sklearn's first threshold is +inf
        t = float(np.max(np.asarray(scores, dtype=np.float64)))
    return t


def attribution_summary(labels, scores) -> dict:
    """AUC, EER, TPR at the FPRs of :data:`FPR_POINTS`, operating threshold and pair counts.

    Non-finite scores (a residual with no energy) are left out and counted
    in ``dropped``. Every value is None when no positive or no negative
    pair remains.
    """
    from ..metrics import auc, eer, tpr_at_fpr

    y, s, dropped = _finite(labels, scores)
    out = {"positives": int(y.sum()), "negatives": int((~y).sum()), "dropped": dropped}
    keys = ["auc", "eer", "threshold"] + [tpr_key(f) for f in FPR_POINTS]
    if not _usable(y):
        return {**out, **dict.fromkeys(keys)}
    out.update(auc=auc(y, s), eer=eer(y, s), threshold=operating_threshold(y, s))
    for f in FPR_POINTS:
        out[tpr_key(f)] = tpr_at_fpr(y, s, f)
    return out


def tpr_key(fpr: float) -> str:
    """Result key of the TPR at ``fpr``: ``tpr_at_fpr_1`` for 1 %."""
    return f"tpr_at_fpr_{fpr * 100:g}"


def auc_or_none(labels, scores) -> float | None:
    """ROC AUC over the finite scores, None when one class is missing."""
    from ..metrics import auc

    y, s, _ = _finite(labels, scores)
    return auc(y, s) if _usable(y) else None


def relative_change(new: float | None, base: float | None) -> float | None:
    """``(new - base) / base`` (paper Table 4), None when undefined."""
    if new is None or base is None or base == 0:
        return None
    return (new - base) / base


def _mean(values) -> float | None:
    v = np.asarray([np.nan if x is None else x for x in values], dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(np.mean(v)) if v.size else None


def tradeoff_or_none(psnr_mean: float | None, auc_value: float | None) -> float | None:
    """``C = PSNR (1 - 2 |AUC - 0.5|)``; None when the PSNR is infinite (unchanged images) or missing."""
    from ..metrics import tradeoff

    if psnr_mean is None or auc_value is None or not math.isfinite(psnr_mean):
        return None
    return tradeoff(psnr_mean, auc_value)


def score_matrix(records: Sequence[Mapping], devices: Sequence[str], key: str) -> np.ndarray:
    """Devices x images matrix of one per-image score (``'ncc'``, ``'pce'`` or ``'ncc_edges'``)."""
    m = np.full((len(devices), len(records)), np.nan)
    for j, rec in enumerate(records):
        row = rec[key]
        for i, dev in enumerate(devices):
            v = row.get(dev)
            m[i, j] = np.nan if v is None else v
    return m


def summarize_setting(records: Sequence[Mapping], devices: Sequence[str]) -> dict:
    """Every per-setting result of the protocol from its per-image records.

    Parameters
    ----------
    records : sequence of dict
        Per-image records of one setting (``image_id``, ``device``, ``ncc``,
        ``pce``, ``ncc_edges``, ``psnr``, ``ssim``, ``edge_fraction``).
    devices : sequence of str
        Fingerprint devices, the rows of the matrices.

    Returns
    -------
    dict
        Scalar results (see the module docstring) and ``matrices``:
        ``devices``, ``images``, ``image_devices``, ``ncc``, ``pce`` and
        ``ncc_edges`` as nested lists.
    """
    if not records:
        raise DippasInputError("no per-image results to summarize")
    image_devices = [r["device"] for r in records]
    labels = label_matrix(devices, image_devices)
    mats = {k: score_matrix(records, devices, k) for k in ("ncc", "pce", "ncc_edges")}
    out = {"images": len(records), "devices": len(devices)}
    out.update(attribution_summary(labels, mats["ncc"]))
    out["auc_pce"] = auc_or_none(labels, mats["pce"])
    out["auc_edges"] = auc_or_none(labels, mats["ncc_edges"])
    out["auc_edges_rel_change"] = relative_change(out["auc_edges"], out["auc"])
    psnrs = [r["psnr"] for r in records]
    out["psnr_mean"] = float(np.mean(psnrs)) if all(p is not None for p in psnrs) else _mean(psnrs)
    out["psnr_min"] = float(np.min([p for p in psnrs if p is not None])) if any(
        p is not None for p in psnrs) else None
    out["ssim_mean"] = _mean(r["ssim"] for r in records)
    out["tradeoff_c"] = tradeoff_or_none(out["psnr_mean"], out["auc"])
    out["edge_fraction_mean"] = _mean(r.get("edge_fraction") for r in records)
    if all("audit" in r for r in records):
        out["audit"] = audit_summary(records, devices)
    out["matrices"] = {
        "devices": list(devices),
        "images": [r["image_id"] for r in records],
        "image_devices": image_devices,
        **{k: v.tolist() for k, v in mats.items()},
    }
    return out
