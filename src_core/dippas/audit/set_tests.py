"""Set tests: what a set of photos from one camera betrays together.

Each photo of a set may pass alone while the set still links to its camera
(PatchMatch-anonymized images re-linked by correlating subsets of them,
Karakucuk & Dirik, arXiv 1906.11871; seam-carved images re-attributed from
several carved images, IEEE TIFS 12(12), 2017). For a set of images of one
size:

- ``fingerprint_ncc``, ``fingerprint_pce``: a fingerprint K^ estimated from
  the set with the ML estimator, scored against the camera's K;
- ``half_split_ncc``: K^ from half the set (even / odd images, one pass),
  scored against each image of the other half; the score is the mean NCC;
- ``linking_ncc``: mean pairwise NCC of the set's residuals. It needs no
  fingerprint and reveals any structure the anonymizer adds by itself;
- ``linking_auc`` (with reference images): AUC of the within-set pair
  correlations against pairs of a set image and a reference image.

Thresholds: :mod:`dippas.audit.nulls`. The NCC scores are means of
correlations that are uncorrelated under no match, so the mean's null
variance is the sum of their null variances over the count squared.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from ..correlation import attribution_reference, ncc, pce
from ..errors import DippasInputError
from ..fingerprint import fingerprint_from_sums, fingerprint_sums
from ..progress import CancelToken, Steps
from ..residual import noise_residual
from .nulls import auc_threshold, ncc_null_sd, pce_threshold, two_sided_z
from .options import AuditOptions
from .result import TestResult


@dataclass(frozen=True)
class SetAudit:
    """The set tests of a set of images.

    Attributes
    ----------
    tests : tuple of TestResult
    within : ndarray
        Pairwise residual NCCs within the set (the linking histogram).
    between : ndarray
        NCCs of set images against reference images (empty without references).
    """

    tests: tuple[TestResult, ...]
    within: np.ndarray = field(repr=False)
    between: np.ndarray = field(repr=False)


def _mean_ncc_test(name: str, pairs: Sequence[tuple[np.ndarray, np.ndarray]],
                   pfa: float) -> tuple[TestResult, np.ndarray]:
    scores = np.array([ncc(a, b) for a, b in pairs])
    sds = np.array([ncc_null_sd(a, b) for a, b in pairs])
    n = len(pairs)
    threshold = two_sided_z(pfa) * math.sqrt(float(np.sum(sds ** 2))) / n
    return TestResult(name, float(np.mean(scores)), threshold), scores


def check_set(images: Sequence[np.ndarray], what: str = "set tests") -> tuple[int, int]:
    """Refuse a set of fewer than two images or of mixed sizes; return the common size."""
    if len(images) < 2:
        raise DippasInputError(f"{what} need two or more images of one camera, got {len(images)}")
    sizes = {np.shape(im)[:2] for im in images}
    if len(sizes) > 1:
        raise DippasInputError(f"{what} need images of one size, got "
                               + ", ".join(f"{h}x{w}" for h, w in sorted(sizes))
                               + "; centre-crop them (CLI: --crop N)")
    return next(iter(sizes))


def audit_set(images: Sequence[np.ndarray], fingerprint: np.ndarray | None = None,
              references: Sequence[np.ndarray] = (), options: AuditOptions | None = None,
              residuals: Sequence[np.ndarray] | None = None,
              progress: Callable[[int, int | None], None] | None = None,
              cancel: CancelToken | None = None) -> SetAudit:
    """Run the set tests on two or more images claimed to come from one camera.

    Parameters
    ----------
    images : sequence of ndarray
        At least two images of one size, 0-255 units.
    fingerprint : ndarray, optional
        The camera's K; without it the fingerprint tests are left out.
    references : sequence of ndarray, optional
        Images of other cameras, the size of the set, for ``linking_auc``.
    options : AuditOptions, optional
    residuals : sequence of ndarray, optional
        Precomputed residuals of ``images`` at ``options.sigma``.
    progress, cancel
        ``progress(done, total)`` per stage; cancel checked between stages.

    Returns
    -------
    SetAudit
    """
    opt = options or AuditOptions()
    shape = check_set(images)
    for r in references:
        if np.shape(r)[:2] != shape:
            raise DippasInputError(f"reference images must be {shape[0]}x{shape[1]} like the set, "
                                   f"got {np.shape(r)[0]}x{np.shape(r)[1]}")
    if fingerprint is not None and np.shape(fingerprint) != shape:
        raise DippasInputError(f"fingerprint is {np.shape(fingerprint)}, the images {shape}")
    total = 4
    step = Steps(total, progress, cancel, "audit").step

    pfa = opt.pfa
    ws = (list(residuals) if residuals is not None
          else [noise_residual(im, opt.sigma) for im in images])
    tests: list[TestResult] = []
    num, den, _ = fingerprint_sums(list(images), opt.sigma, parts=2, cancel=cancel)
    step()
    if fingerprint is not None:
        k = np.asarray(fingerprint, dtype=np.float32)
        k_hat = fingerprint_from_sums(num.sum(axis=0), den.sum(axis=0))
        tests.append(TestResult("fingerprint_ncc", ncc(k_hat, k),
                                two_sided_z(pfa) * ncc_null_sd(k_hat, k)))
        tests.append(TestResult("fingerprint_pce", pce(k_hat, k)[0], pce_threshold(pfa)))
    halves = [fingerprint_from_sums(num[p], den[p]) for p in range(2)]
    pairs = [(ws[i], attribution_reference(images[i], halves[1 - i % 2])) for i in range(len(images))]
    tests.append(_mean_ncc_test("half_split_ncc", pairs, pfa)[0])
    step()
    link, within = _mean_ncc_test("linking_ncc", [(ws[i], ws[j]) for i, j in
                                                  combinations(range(len(ws)), 2)], pfa)
    tests.append(link)
    step()
    between = np.empty(0)
    if len(references):
        from ..metrics import auc

        ref_ws = [noise_residual(r, opt.sigma) for r in references]
        between = np.array([ncc(w, rw) for rw in ref_ws for w in ws])
        labels = np.r_[np.ones(within.size, bool), np.zeros(between.size, bool)]
        tests.append(TestResult("linking_auc", auc(labels, np.r_[within, between]),
                                auc_threshold(within.size, between.size, pfa), two_sided=False))
    step()
    return SetAudit(tuple(tests), within, between)
