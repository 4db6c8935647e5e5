"""Per-image tests: how an examiner holding the camera's fingerprint K attacks one photo.

For an image I with residual W and reference ``X = gray(I) * K``:

- ``ncc``, ``pce``, ``pce_search``: whole-image NCC, zero-shift PCE and the
  PCE searched over all shifts;
- ``ncc_edges``: NCC on the edge pixels only, the mask computed from the
  image under test (the examiner has no original): inpainting copies the
  denoised original into edges, which keeps PRNU there;
- ``block_max_B``: the largest standardised block correlation for each block
  side B, against the null of the maximum of that many blocks;
- ``jpeg_Q_ncc``, ``resize_S_ncc``: NCC after JPEG recompression and after
  downscaling (the fingerprint resampled alike);
- ``crop_shift_pce``: searched PCE after cropping a few rows and columns;
- ``ncc_sigmaS``: NCC with a second residual extractor (stronger denoiser);
- with the original at hand, ``ncc_edges_original``: the edge mask of the
  original, as in the evaluation protocol (paper Table 4).

Thresholds: :mod:`dippas.audit.nulls`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ..correlation import attribution_reference, block_ncc_map, ncc, pce
from ..errors import DippasInputError
from ..progress import CancelToken, Steps
from ..residual import noise_residual
from ..validation import check_fingerprint, check_image
from .attacks import (
    jpeg_recompress,
    resize_fingerprint,
    resize_image,
    shift_crop_fingerprint,
    shift_crop_image,
)
from .nulls import (
    block_z_map,
    max_z_threshold,
    ncc_null_sd,
    pce_search_threshold,
    pce_threshold,
    two_sided_z,
)
from .options import AuditOptions
from .result import TestResult


@dataclass(frozen=True)
class ImageAudit:
    """The per-image tests of one image.

    Attributes
    ----------
    tests : tuple of TestResult
    heatmap : ndarray
        Per-block NCC map at ``heatmap_block`` (partial edge blocks included).
    heatmap_block : int
    psnr : float or None
        PSNR against the original, when one was given.
    """

    tests: tuple[TestResult, ...]
    heatmap: np.ndarray = field(repr=False)
    heatmap_block: int
    psnr: float | None = None

    def by_name(self) -> dict[str, TestResult]:
        """The tests keyed by name."""
        return {t.name: t for t in self.tests}


def ncc_test(name: str, a: np.ndarray, b: np.ndarray, pfa: float,
             mask: np.ndarray | None = None) -> TestResult:
    """Two-sided NCC test of ``a`` against ``b`` (optionally on ``mask`` only).

    The threshold is ``z * sd`` with ``sd`` the HAC null standard deviation
    of the NCC (:func:`dippas.audit.nulls.ncc_null_sd`), about ``1/sqrt(N)``.
    """
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            return TestResult(name, float("nan"), float("nan"))
        score = ncc(a[m], b[m])
    else:
        score = ncc(a, b)
    return TestResult(name, score, two_sided_z(pfa) * ncc_null_sd(a, b, mask))


def pce_test(name: str, a: np.ndarray, b: np.ndarray, pfa: float, search: bool) -> TestResult:
    """Zero-shift PCE (two-sided, chi-square) or searched PCE (one-sided, max of all shifts)."""
    value, _ = pce(a, b, search=search)
    if search:
        return TestResult(name, value, pce_search_threshold(a.size, pfa), two_sided=False)
    return TestResult(name, value, pce_threshold(pfa))


def block_max_test(name: str, a: np.ndarray, b: np.ndarray, block: int,
                   pfa: float) -> TestResult:
    """Largest ``|z_b|`` over full blocks against the null of the maximum of that many blocks.

    The score is the signed standardised correlation of the block with the
    largest magnitude; NaN when the image holds no full block.
    """
    if min(a.shape) < block:
        return TestResult(name, float("nan"), float("nan"))
    z = block_z_map(a, b, block)
    finite = np.isfinite(z)
    if not finite.any():
        return TestResult(name, float("nan"), float("nan"))
    flat = np.where(finite, np.abs(z), -1.0).ravel()
    score = float(z.ravel()[int(np.argmax(flat))])
    return TestResult(name, score, max_z_threshold(int(finite.sum()), pfa))


def audit_edge_mask(image: np.ndarray) -> np.ndarray:
    """Edge mask as an examiner computes it from the image itself (the inpainting's detector)."""
    from ..inpainting.edges import edge_mask

    return edge_mask(image)


def _scale_name(scale: float) -> str:
    return f"{scale:g}".replace(".", "p")


@dataclass(frozen=True)
class ExaminerView:
    """One way an examiner looks at an image, ready to be scored against any fingerprint.

    Attributes
    ----------
    name : str
        Name of the test it feeds.
    kind : {"ncc", "pce", "pce_search", "block_max"}
    residual : ndarray
        Noise residual of the (possibly post-processed) image.
    image : ndarray
        The image whose gray level multiplies K in the reference ``gray(I) * K``.
    transform : callable
        Maps the camera's K to this view's geometry (resize, crop shift).
    mask : ndarray or None
        Pixels the NCC is restricted to.
    block : int or None
        Block side of a block-maximum test.
    """

    name: str
    kind: str
    residual: np.ndarray = field(repr=False)
    image: np.ndarray = field(repr=False)
    transform: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    mask: np.ndarray | None = field(default=None, repr=False)
    block: int | None = None

    def score(self, fingerprint: np.ndarray, pfa: float) -> TestResult:
        """This view's test against ``fingerprint`` (in the original image's geometry)."""
        x = attribution_reference(self.image, self.transform(fingerprint))
        if self.kind == "ncc":
            return ncc_test(self.name, self.residual, x, pfa, mask=self.mask)
        if self.kind in ("pce", "pce_search"):
            return pce_test(self.name, self.residual, x, pfa, search=self.kind == "pce_search")
        return block_max_test(self.name, self.residual, x, int(self.block), pfa)


def _same(k: np.ndarray) -> np.ndarray:
    return k


def planned_image_steps(options: AuditOptions, original: bool) -> int:
    """Number of progress steps of :func:`audit_image`."""
    return 4 + len(options.jpeg_qualities) + len(options.scales) + (1 if original else 0)


def examiner_views(image: np.ndarray, options: AuditOptions | None = None,
                   original: np.ndarray | None = None, residual: np.ndarray | None = None,
                   progress: Callable[[int, int | None], None] | None = None,
                   cancel: CancelToken | None = None) -> list[ExaminerView]:
    """Every view of the per-image tests: residuals and masks computed once, for any K.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, 3)
        The image under test, 0-255 units.
    options : AuditOptions, optional
    original : ndarray, optional
        The image's original (same size): adds ``ncc_edges_original``.
    residual : ndarray, optional
        Precomputed ``noise_residual(image, options.sigma)``.
    progress, cancel
        ``progress(done, total)`` after each group; cancel checked between groups.

    Returns
    -------
    list of ExaminerView
        In the order of the tests (see the module docstring).
    """
    opt = options or AuditOptions()
    img = check_image(image)
    total = planned_image_steps(opt, original is not None)
    step = Steps(total, progress, cancel, "audit").step

    w = noise_residual(img, opt.sigma) if residual is None else np.asarray(residual, np.float32)
    views = [ExaminerView("ncc", "ncc", w, img, _same),
             ExaminerView("pce", "pce", w, img, _same),
             ExaminerView("pce_search", "pce_search", w, img, _same)]
    views.append(ExaminerView("ncc_edges", "ncc", w, img, _same, mask=audit_edge_mask(img)))
    step()
    views += [ExaminerView(f"block_max_{b}", "block_max", w, img, _same, block=int(b))
              for b in opt.blocks]
    for q in opt.jpeg_qualities:
        jimg = jpeg_recompress(img, q)
        views.append(ExaminerView(f"jpeg_{q}_ncc", "ncc", noise_residual(jimg, opt.sigma), jimg,
                                  _same))
        step()
    for s in opt.scales:
        rimg = resize_image(img, s)
        views.append(ExaminerView(f"resize_{_scale_name(s)}_ncc", "ncc",
                                  noise_residual(rimg, opt.sigma), rimg,
                                  partial(resize_fingerprint, scale=s)))
        step()
    simg = shift_crop_image(img, opt.shift)
    views.append(ExaminerView("crop_shift_pce", "pce_search", noise_residual(simg, opt.sigma), simg,
                              partial(shift_crop_fingerprint, shift=opt.shift)))
    step()
    views.append(ExaminerView(f"ncc_sigma{opt.second_sigma:g}", "ncc",
                              noise_residual(img, opt.second_sigma), img, _same))
    step()
    if original is not None:
        original = check_image(original, name="original")
        if original.shape[:2] != img.shape[:2]:
            raise DippasInputError(f"original is {original.shape[0]}x{original.shape[1]}, "
                                   f"the image {img.shape[0]}x{img.shape[1]}")
        views.append(ExaminerView("ncc_edges_original", "ncc", w, img, _same,
                                  mask=audit_edge_mask(original)))
        step()
    return views


def audit_image(image: np.ndarray, fingerprint: np.ndarray, options: AuditOptions | None = None,
                original: np.ndarray | None = None, residual: np.ndarray | None = None,
                progress: Callable[[int, int | None], None] | None = None,
                cancel: CancelToken | None = None) -> ImageAudit:
    """Run every per-image test of one image against a fingerprint.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, 3)
        The image under test, 0-255 units.
    fingerprint : ndarray, (H, W)
        The camera fingerprint K, same size as the image.
    options : AuditOptions, optional
    original : ndarray, optional
        The image's original (same size): adds ``ncc_edges_original`` and the PSNR.
    residual : ndarray, optional
        Precomputed ``noise_residual(image, options.sigma)``.
    progress : callable, optional
        ``progress(done, total)`` after each test group.
    cancel : CancelToken, optional
        Checked between test groups.

    Returns
    -------
    ImageAudit
    """
    opt = options or AuditOptions()
    img = check_image(image)
    k = check_fingerprint(fingerprint, shape=img.shape[:2])
    views = examiner_views(img, opt, original, residual, progress, cancel)
    tests = tuple(v.score(k, opt.pfa) for v in views)
    psnr = None
    if original is not None:
        from ..metrics import psnr as psnr_db
        from ..dtype import to_float255

        a, b = to_float255(original), to_float255(img)
        psnr = psnr_db(a, b, data_range=255.0) if a.shape == b.shape else None
    heat = block_ncc_map(views[0].residual, attribution_reference(img, k), int(opt.heatmap_block))
    return ImageAudit(tests, heat, int(opt.heatmap_block), psnr)
