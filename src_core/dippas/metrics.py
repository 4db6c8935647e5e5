"""Fidelity and attribution metrics: PSNR, SSIM, ROC, AUC, EER, TPR at FPR, trade-off C.

Thin wrappers over scikit-image and scikit-learn with the conventions of the
paper's evaluation protocol (section 4.4): positives are images tested
against their own device's fingerprint, negatives against every other
device's.
"""

from __future__ import annotations

import numpy as np

from .errors import DippasInputError


def _data_range(a: np.ndarray, data_range: float | None) -> float:
    if data_range is not None:
        return float(data_range)
    if a.dtype == np.uint8:
        return 255.0
    if a.dtype == np.uint16:
        return 65535.0
    return 255.0


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB.

    Parameters
    ----------
    reference, test : ndarray
        Same shape. uint8 data use a range of 255, uint16 65535, floats 255
        (0-255 units) unless ``data_range`` is given.

    Returns
    -------
    float
        ``inf`` for identical images.
    """
    from skimage.metrics import peak_signal_noise_ratio

    ref = np.asarray(reference)
    tst = np.asarray(test)
    if ref.shape != tst.shape:
        raise DippasInputError(f"PSNR needs equal shapes, got {ref.shape} and {tst.shape}")
    if np.array_equal(ref, tst):
        return float("inf")
    return float(peak_signal_noise_ratio(ref.astype(np.float64), tst.astype(np.float64),
                                         data_range=_data_range(ref, data_range)))


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float | None = None) -> float:
    """Structural similarity (scikit-image), over colour channels when present."""
    from skimage.metrics import structural_similarity

    ref = np.asarray(reference)
    tst = np.asarray(test)
    if ref.shape != tst.shape:
        raise DippasInputError(f"SSIM needs equal shapes, got {ref.shape} and {tst.shape}")
    return float(structural_similarity(ref.astype(np.float64), tst.astype(np.float64),
                                       data_range=_data_range(ref, data_range),
                                       channel_axis=-1 if ref.ndim == 3 else None))


def _labels_scores(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise DippasInputError(f"labels and scores differ in size: {y.size} and {s.size}")
    if y.all() or not y.any():
        raise DippasInputError("ROC needs both positive and negative pairs")
    if not np.isfinite(s).all():
        raise DippasInputError("scores contain NaN or infinite values")
    return y, s


def roc(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve ``(fpr, tpr, thresholds)`` (scikit-learn, all thresholds kept)."""
    from sklearn.metrics import roc_curve

    y, s = _labels_scores(labels, scores)
    return roc_curve(y, s, drop_intermediate=False)


def auc(labels, scores) -> float:
    """Area under the ROC curve (1: attribution works; 0.5: anonymized)."""
    from sklearn.metrics import roc_auc_score

    y, s = _labels_scores(labels, scores)
    return float(roc_auc_score(y, s))


def eer(labels, scores) -> float:
    """Equal error rate: where the false positive rate equals the miss rate."""
    fpr, tpr, _ = roc(labels, scores)
    fnr = 1.0 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    if i == 0:
        return float((fpr[0] + fnr[0]) / 2)
    # Linear interpolation between the two ROC points around the crossing.
    d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def tpr_at_fpr(labels, scores, fpr_target: float) -> float:
    """True positive rate at a given false positive rate (ROC interpolated)."""
    if not 0.0 <= fpr_target <= 1.0:
        raise DippasInputError(f"FPR must be in [0, 1], got {fpr_target}")
    fpr, tpr, _ = roc(labels, scores)
    return float(np.interp(fpr_target, fpr, tpr))


def tradeoff(psnr_db: float, auc_value: float) -> float:
    """Trade-off metric of the paper: ``C = PSNR * (1 - 2 |AUC - 0.5|)`` (higher is better)."""
    return float(psnr_db) * (1.0 - 2.0 * abs(float(auc_value) - 0.5))


def device_labels(fingerprint_devices, image_devices) -> np.ndarray:
    """Boolean matrix (fingerprints x images): True where the image is the device's own."""
    fd = np.asarray(list(fingerprint_devices), dtype=object)[:, None]
    idv = np.asarray(list(image_devices), dtype=object)[None, :]
    return fd == idv
