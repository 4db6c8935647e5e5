"""Bootstrap intervals of the protocol's summaries, resampling images.

The unit of resampling is the image (a column of the devices x images
score matrix, with its PSNR): images are drawn with replacement, and AUC,
mean PSNR and C = PSNR (1 - 2 |AUC - 0.5|) are recomputed on each draw.
Percentile intervals. :func:`paired_difference` resamples the same images
for two settings, so a difference in C is judged against its own spread.
"""

from __future__ import annotations

import numpy as np

from ..errors import DippasInputError

#: Bootstrap draws by default.
N_BOOT = 2000
#: Two-sided coverage of the intervals.
COVERAGE = 0.95


def _auc_columns(labels: np.ndarray, scores: np.ndarray, cols: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties counted half) of the chosen columns, NaN scores dropped."""
    y = labels[:, cols].ravel()
    s = scores[:, cols].ravel()
    ok = np.isfinite(s)
    y, s = y[ok], s[ok]
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size)
    ss = s[order]
    # average ranks of ties
    r = np.arange(1, s.size + 1, dtype=np.float64)
    edges = np.flatnonzero(np.diff(ss)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [s.size]])
    for a, b in zip(starts, ends):
        r[a:b] = (a + 1 + b) / 2.0
    ranks[order] = r
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def tradeoff_c(psnr_mean: float, auc: float) -> float:
    """``C = PSNR (1 - 2 |AUC - 0.5|)``."""
    return float(psnr_mean) * (1.0 - 2.0 * abs(float(auc) - 0.5))


def _draws(n_images: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_images, size=(n_boot, n_images))


def _check(labels, scores, psnr):
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    p = np.asarray(psnr, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 2 or p.shape != (s.shape[1],):
        raise DippasInputError("labels and scores must be devices x images, psnr one value per image")
    return y, s, p


def _interval(values: np.ndarray, coverage: float) -> list[float]:
    """Percentile interval of the finite values (NaN, NaN when there are none: e.g. PSNR inf)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return [float("nan"), float("nan")]
    a = (1.0 - coverage) / 2.0
    return [float(np.quantile(v, a)), float(np.quantile(v, 1.0 - a))]


def bootstrap_summary(labels, scores, psnr, n_boot: int = N_BOOT, seed: int = 0,
                      coverage: float = COVERAGE) -> dict:
    """AUC, mean PSNR and C with bootstrap intervals (images resampled).

    Parameters
    ----------
    labels : bool array, devices x images
        True where the image is the device's own.
    scores : array, devices x images
        Attribution scores (NCC).
    psnr : array, one per image
    n_boot, seed, coverage
        Draws, random seed, two-sided coverage.

    Returns
    -------
    dict
        ``auc``, ``auc_ci``, ``psnr``, ``psnr_ci``, ``c``, ``c_ci``.
    """
    y, s, p = _check(labels, scores, psnr)
    n = s.shape[1]
    all_cols = np.arange(n)
    auc = _auc_columns(y, s, all_cols)
    out = {"auc": auc, "psnr": float(p.mean()), "c": tradeoff_c(p.mean(), auc)}
    draws = _draws(n, n_boot, seed)
    aucs = np.array([_auc_columns(y, s, d) for d in draws])
    psnrs = p[draws].mean(axis=1)
    cs = psnrs * (1.0 - 2.0 * np.abs(aucs - 0.5))
    out["auc_ci"] = _interval(aucs, coverage)
    out["psnr_ci"] = _interval(psnrs, coverage)
    out["c_ci"] = _interval(cs, coverage)
    return out


def bootstrap_auc(labels, scores, n_boot: int = N_BOOT, seed: int = 0,
                  coverage: float = COVERAGE) -> tuple[float, list[float]]:
    """AUC and its bootstrap interval (images resampled)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n = s.shape[1]
    auc = _auc_columns(y, s, np.arange(n))
    aucs = np.array([_auc_columns(y, s, d) for d in _draws(n, n_boot, seed)])
    return auc, _interval(aucs, coverage)


def paired_difference(labels, scores_a, psnr_a, scores_b, psnr_b, n_boot: int = N_BOOT,
                      seed: int = 0, coverage: float = COVERAGE) -> dict:
    """``C_a - C_b`` and ``AUC_a - AUC_b`` on the same images, with bootstrap intervals.

    Returns
    -------
    dict
        ``dc``, ``dc_ci``, ``separated`` (the C interval excludes 0),
        ``dauc`` and ``dauc_ci``.
    """
    y, sa, pa = _check(labels, scores_a, psnr_a)
    _, sb, pb = _check(labels, scores_b, psnr_b)
    n = sa.shape[1]
    cols = np.arange(n)
    aa, ab = _auc_columns(y, sa, cols), _auc_columns(y, sb, cols)
    dc = tradeoff_c(pa.mean(), aa) - tradeoff_c(pb.mean(), ab)
    diffs, dauc = [], []
    for d in _draws(n, n_boot, seed):
        a1, b1 = _auc_columns(y, sa, d), _auc_columns(y, sb, d)
        diffs.append(tradeoff_c(pa[d].mean(), a1) - tradeoff_c(pb[d].mean(), b1))
        dauc.append(a1 - b1)
    ci = _interval(np.array(diffs), coverage)
    return {"dc": float(dc), "dc_ci": ci, "separated": bool(ci[0] > 0 or ci[1] < 0),
            "dauc": float(aa - ab), "dauc_ci": _interval(np.array(dauc), coverage)}
