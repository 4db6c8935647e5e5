"""The whole audit: inputs checked first, then per-image tests and set tests.

:func:`audit` is the one entry point of the CLI (``dippas audit``), the
Python API and the napari widget. It checks every input before any long
work (a one-line :class:`~dippas.errors.DippasInputError` on bad input) and
returns an :class:`AuditReport`, whose :meth:`AuditReport.to_dict` is the
``--json`` shape::

    {"images": [{"file": ..., "tests": [{"name", "score", "threshold", "verdict", ...}]}],
     "set": {"tests": [...]},
     "fingerprint": {"source": "file" | "array" | "camera photos", ...},
     "pfa": 0.001}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DippasInputError
from ..progress import CancelToken
from .image_tests import ImageAudit, audit_image, planned_image_steps
from .options import AuditOptions
from .set_tests import SetAudit, audit_set, check_set

ImageInput = np.ndarray | str | os.PathLike


@dataclass(frozen=True)
class AuditReport:
    """Everything an audit found.

    Attributes
    ----------
    files : tuple of str
        A label per image (its path as given, or ``image N`` for arrays).
    images : tuple of ImageAudit
    set : SetAudit or None
        None with a single image.
    fingerprint : dict
        Where K came from; in camera-photos mode its quality figures.
    options : AuditOptions
    """

    files: tuple[str, ...]
    images: tuple[ImageAudit, ...]
    set: SetAudit | None
    fingerprint: dict = field(default_factory=dict)
    options: AuditOptions = field(default_factory=AuditOptions)

    def to_dict(self) -> dict:
        """The JSON report (see the module docstring)."""
        out = {"images": [], "set": {"tests": []}, "fingerprint": dict(self.fingerprint),
               "pfa": self.options.pfa}
        for name, res in zip(self.files, self.images, strict=True):
            entry = {"file": name, "tests": [t.to_dict() for t in res.tests]}
            if res.psnr is not None:
                entry["psnr"] = res.psnr
            out["images"].append(entry)
        if self.set is not None:
            out["set"]["tests"] = [t.to_dict() for t in self.set.tests]
        return out

    def failed(self) -> list[tuple[str, str]]:
        """``(file or "set", test name)`` of every test that says "match"."""
        out = [(f, t.name) for f, r in zip(self.files, self.images, strict=True)
               for t in r.tests if t.matched]
        if self.set is not None:
            out += [("set", t.name) for t in self.set.tests if t.matched]
        return out


def _size(src: ImageInput) -> tuple[int, int]:
    if isinstance(src, np.ndarray):
        return src.shape[:2]
    from ..io import image_size

    return image_size(src)


def _label(src: ImageInput, i: int) -> str:
    return f"image {i + 1}" if isinstance(src, np.ndarray) else os.fspath(src)


def _load(src: ImageInput, crop: int | None, name: str) -> np.ndarray:
    from ..fingerprint import centre_crop
    from ..io import load_image
    from ..validation import check_image

    img = src if isinstance(src, np.ndarray) else load_image(src)
    img = check_image(img, name=name)
    return centre_crop(img, (crop, crop)) if crop else img


def _common_size(sources: Sequence[ImageInput], crop: int | None, what: str) -> tuple[int, int]:
    sizes = [_size(s) for s in sources]
    if crop:
        small = [s for s in sizes if min(s) < crop]
        if small:
            raise DippasInputError(f"{what}: an image is {small[0][0]}x{small[0][1]}, smaller "
                                   f"than --crop {crop}")
        return crop, crop
    if len(set(sizes)) > 1:
        raise DippasInputError(f"{what} have mixed sizes ("
                               + ", ".join(f"{h}x{w}" for h, w in sorted(set(sizes)))
                               + "); pass --crop N to centre-crop them alike")
    return sizes[0]


def _fit_fingerprint(k: np.ndarray, shape: tuple[int, int], crop: int | None) -> np.ndarray:
    from ..fingerprint import centre_crop

    if k.shape == shape:
        return k
    if crop and k.shape[0] >= shape[0] and k.shape[1] >= shape[1]:
        return centre_crop(k, shape)
    raise DippasInputError(f"fingerprint is {k.shape[0]}x{k.shape[1]}, the images "
                           f"{shape[0]}x{shape[1]}" + ("" if crop else
                                                       "; pass --crop N to centre-crop both"))


def _reference_sources(references) -> list:
    if references is None:
        return []
    if isinstance(references, (str, os.PathLike)):
        from ..io import list_images

        return list(list_images(references))
    return list(references)


def audit(images: Sequence[ImageInput], fingerprint: np.ndarray | str | os.PathLike | None = None,
          camera_photos: str | os.PathLike | None = None,
          originals: Sequence[ImageInput] | None = None,
          references: str | os.PathLike | Sequence[ImageInput] | None = None,
          crop: int | None = None, options: AuditOptions | None = None,
          set_tests: bool | None = None, cache_dir: str | os.PathLike | None = None,
          progress: Callable[[int, int | None], None] | None = None,
          cancel: CancelToken | None = None) -> AuditReport:
    """Audit images the way a forensic examiner would: per image, and as a set.

    Parameters
    ----------
    images : sequence of ndarray or path
        The images under test (anonymized outputs, or originals).
    fingerprint : ndarray or path, optional
        The camera's fingerprint K (``.npy``, ``.tif`` or ``.mat``).
    camera_photos : path, optional
        Instead of K: a folder of the camera's own natural photos
        (:func:`dippas.audit.camera_fingerprint`, streamed and cached).
    originals : sequence of ndarray or path, optional
        The original of each image, in order: adds the edge test with the
        original's edge mask and the PSNR.
    references : path or sequence, optional
        Photos of other cameras for the linking AUC (a folder, or images).
    crop : int, optional
        Centre-crop every image (and K, original, references) to ``crop x crop``.
    options : AuditOptions, optional
        False-alarm probability and test settings.
    set_tests : bool, optional
        None (default): run the set tests when there are two or more images.
        True: require them (an error with one image).
    cache_dir : path, optional
        Cache of camera-photo fingerprints.
    progress : callable, optional
        ``progress(done, total)``.
    cancel : CancelToken, optional

    Returns
    -------
    AuditReport

    Raises
    ------
    DippasInputError
        Before any long work, on: no images; mixed sizes without ``crop``;
        set tests (or references) asked of one image; no fingerprint and no
        camera photos, or both; too few usable camera photos; originals
        that do not pair with the images; a fingerprint of the wrong size.
    """
    opt = options or AuditOptions()
    images = list(images)
    if not images:
        raise DippasInputError("no images to audit")
    if crop is not None and int(crop) <= 0:
        raise DippasInputError(f"crop must be positive, got {crop}")
    refs = _reference_sources(references)
    if (set_tests or refs) and len(images) < 2:
        raise DippasInputError("set tests (and --reference) need two or more images of one camera, "
                               "got 1")
    if fingerprint is None and camera_photos is None:
        raise DippasInputError("give the camera's fingerprint (--fingerprint K) or its photos "
                               "(--camera-photos DIR)")
    if fingerprint is not None and camera_photos is not None:
        raise DippasInputError("give either a fingerprint or camera photos, not both")
    shape = _common_size(images, crop, "images")
    if originals is not None:
        originals = list(originals)
        if len(originals) != len(images):
            raise DippasInputError(f"{len(originals)} original(s) for {len(images)} image(s); "
                                   "give one original per image, in the same order")
        if _common_size(originals, crop, "originals") != shape:
            raise DippasInputError("the originals are not the size of the images")
    if refs:
        small = [r for r in refs if min(_size(r)) < min(shape)]
        if small:
            raise DippasInputError(f"reference {_label(small[0], 0)} is smaller than the images")
    photos = None
    if camera_photos is not None:
        from .camera import usable_photos

        photos = usable_photos(camera_photos, crop)  # too few: an error before any work
        if not crop and _size(photos[0][0]) != shape:
            h, w = _size(photos[0][0])
            raise DippasInputError(f"the camera photos are {h}x{w}, the images "
                                   f"{shape[0]}x{shape[1]}; pass --crop N to centre-crop both")
    if fingerprint is not None and not isinstance(fingerprint, np.ndarray):
        from ..io import load_fingerprint

        k_source = {"source": "file"}
        k = load_fingerprint(fingerprint)
    elif fingerprint is not None:
        from ..validation import check_fingerprint

        k_source = {"source": "array"}
        k = check_fingerprint(fingerprint)
    if fingerprint is not None:
        k = _fit_fingerprint(k, shape, crop)

    n = len(images)
    per_image = planned_image_steps(opt, originals is not None)
    n_set = 4 if n >= 2 and set_tests is not False else 0
    n_cam = len(photos[0]) if photos is not None else 0
    total = n_cam + n * per_image + n_set
    offset = 0

    def sub(done: int, _total: int | None = None) -> None:
        if progress is not None:
            progress(offset + done, total)

    if camera_photos is not None:
        from .camera import camera_fingerprint

        cam = camera_fingerprint(camera_photos, sigma=opt.sigma, crop=crop, cache_dir=cache_dir,
                                 progress=sub, cancel=cancel)
        k = _fit_fingerprint(cam.fingerprint, shape, crop)
        k_source = {"source": "camera photos", **cam.summary()}
        offset = n_cam
        sub(0)

    from ..residual import noise_residual

    loaded, residuals, results = [], [], []
    for i, src in enumerate(images):
        img = _load(src, crop, _label(src, i))
        orig = _load(originals[i], crop, "original") if originals is not None else None
        w = noise_residual(img, opt.sigma)
        results.append(audit_image(img, k, opt, original=orig, residual=w, progress=sub,
                                   cancel=cancel))
        offset += per_image
        if n_set:
            loaded.append(img)
            residuals.append(w)
    set_result = None
    if n_set:
        check_set(loaded)
        ref_imgs = [_load(r, None, _label(r, j)) for j, r in enumerate(refs)]
        from ..fingerprint import centre_crop

        ref_imgs = [centre_crop(r, shape) for r in ref_imgs]
        set_result = audit_set(loaded, k, ref_imgs, opt, residuals=residuals, progress=sub,
                               cancel=cancel)
    return AuditReport(tuple(_label(s, i) for i, s in enumerate(images)), tuple(results),
                       set_result, k_source, opt)


def report_lines(report: AuditReport) -> list[str]:
    """A plain-text table of the report, one test per line."""
    def rows(tests) -> list[str]:
        return [f"  {t.name:<22} {t.score:>+12.5g}  {'|s|' if t.two_sided else ' s '} >= "
                f"{t.threshold:<10.4g} {t.verdict}" for t in tests]

    lines = []
    fp = report.fingerprint
    if fp.get("source") == "camera photos":
        lines.append(f"fingerprint from {fp['photos']} camera photos ({fp['skipped']} skipped): "
                     f"half-split NCC {fp['half_ncc']:.4f} (threshold {fp['half_ncc_threshold']:.4f}), "
                     f"predicted accuracy {fp['accuracy']:.2f}"
                     + (" [cached]" if fp.get("cached") else ""))
        if not fp.get("reliable"):
            lines.append("WARNING: the two halves of the camera photos do not share a significant "
                         "fingerprint; this K is mostly noise and a 'no match' proves nothing. "
                         "Add photos (docs/audit.md).")
    for name, res in zip(report.files, report.images, strict=True):
        extra = f"  (PSNR {res.psnr:.2f} dB)" if res.psnr is not None else ""
        lines.append(f"{Path(name).name}{extra}")
        lines += rows(res.tests)
    if report.set is not None:
        lines.append(f"set of {len(report.images)} images")
        lines += rows(report.set.tests)
    failed = report.failed()
    lines.append(f"{len(failed)} test(s) say match at false-alarm probability "
                 f"{report.options.pfa:g}" + (": the camera can be identified" if failed else ""))
    return lines
