"""A camera's fingerprint from the owner's own natural photos (no flat-fields).

A photo-reporter owns the camera and many of its photos, but rarely
flat-field shots. :func:`camera_fingerprint` estimates K from a folder of
natural photos of one camera with the ML estimator of
:func:`dippas.estimate_fingerprint`:

- it streams: one photo in memory at a time, and one pass computes the
  fingerprints of the whole folder and of its two disjoint halves (even and
  odd photos in name order);
- it reports how many photos it used and skipped, and the quality of the
  estimate: ``half_ncc``, the NCC between the two halves' fingerprints, and
  ``accuracy = sqrt(2 r / (1 + r))`` (Spearman-Brown, ``r = half_ncc``), the
  predicted correlation of the whole-folder K with the true fingerprint;
- it caches the estimate in a private cache folder, keyed by the photos'
  names, sizes and modification times and the settings.

A fingerprint identifies its camera: the cache holds nothing else, but keep
it private (delete the folder of :func:`default_cache_dir` to forget it).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DippasInputError
from ..progress import CancelToken
from .nulls import DEFAULT_PFA, ncc_null_sd, two_sided_z

#: Fewest usable photos accepted (see docs/audit.md for the measurement behind it).
MIN_CAMERA_PHOTOS = 8
#: Version of the cache format; part of the cache key.
_CACHE_VERSION = 1


@dataclass(frozen=True)
class CameraFingerprint:
    """A fingerprint estimated from natural photos, with its quality figures.

    Attributes
    ----------
    fingerprint : ndarray, (H, W), float32
    photos : int
        Photos used.
    skipped : int
        Image files left out (unreadable, or not of the camera's usual size).
    half_ncc : float
        NCC between the fingerprints of the two disjoint halves.
    half_ncc_threshold : float
        ``half_ncc`` above this (false alarm 1e-3) means the halves share a fingerprint.
    accuracy : float
        Predicted NCC of ``fingerprint`` with the camera's true fingerprint.
    cached : bool
        Whether the result came from the cache.
    """

    fingerprint: np.ndarray = field(repr=False)
    photos: int
    skipped: int
    half_ncc: float
    half_ncc_threshold: float
    accuracy: float
    cached: bool = False

    @property
    def reliable(self) -> bool:
        """Whether the two halves share a fingerprint significantly (``half_ncc`` above threshold).

        When not, the estimate is mostly noise and a "no match" from it proves nothing.
        """
        return bool(self.half_ncc >= self.half_ncc_threshold)

    def summary(self) -> dict:
        """The figures, for JSON and reports (no paths)."""
        return {"photos": self.photos, "skipped": self.skipped, "half_ncc": self.half_ncc,
                "half_ncc_threshold": self.half_ncc_threshold, "accuracy": self.accuracy,
                "reliable": self.reliable, "cached": self.cached}


def default_cache_dir() -> Path:
    """The private cache of camera fingerprints: ``camera-fingerprints`` in :func:`dippas.userdirs.state_dir`."""
    from ..userdirs import state_dir

    return state_dir("camera-fingerprints")


def usable_photos(folder: str | os.PathLike, crop: int | None = None,
                  min_photos: int = MIN_CAMERA_PHOTOS) -> tuple[list[Path], int]:
    """The photos of ``folder`` that can be used, read from their headers only.

    A photo is usable when its header reads and its size is the most common
    size in the folder (a rotated or resized copy does not line up with the
    sensor); with ``crop`` it must also be at least ``crop x crop``.

    Returns
    -------
    photos : list of Path
        Sorted by name.
    skipped : int

    Raises
    ------
    DippasInputError
        When fewer than ``min_photos`` photos are usable (checked before any work).
    """
    from ..io import image_size, list_images

    files = list_images(folder)
    sizes = {}
    for f in files:
        try:
            sizes[f] = image_size(f)
        except DippasInputError:
            continue
    common = Counter(sizes.values()).most_common(1)
    keep = []
    if common:
        size = common[0][0]
        keep = [f for f, s in sizes.items() if s == size and (crop is None or min(s) >= crop)]
    if len(keep) < min_photos:
        raise DippasInputError(f"{folder}: {len(keep)} usable photo(s) of one size; the camera "
                               f"fingerprint needs at least {min_photos}")
    return sorted(keep), len(files) - len(keep)


def _cache_key(photos: Sequence[Path], sigma: float, crop: int | None) -> str:
    h = hashlib.sha256(f"v{_CACHE_VERSION} sigma={sigma!r} crop={crop!r}".encode())
    for p in photos:
        st = p.stat()
        h.update(f"\n{p.name}\t{st.st_size}\t{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def _read_cache(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in ("fingerprint", "figures")}
    except (OSError, ValueError, KeyError):
        return None
    if data["fingerprint"].ndim != 2 or data["figures"].shape != (5,):
        return None
    return data


def _write_cache(path: Path, k: np.ndarray, figures: np.ndarray) -> None:
    from ..io import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def writer(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, fingerprint=k, figures=figures)

    atomic_write(path, writer)


def half_split_quality(k_a: np.ndarray, k_b: np.ndarray) -> tuple[float, float, float]:
    """``(half_ncc, its threshold at 1e-3, predicted accuracy)`` of two half fingerprints."""
    from ..correlation import ncc

    r = ncc(k_a, k_b)
    threshold = two_sided_z(DEFAULT_PFA) * ncc_null_sd(k_a, k_b)
    accuracy = math.sqrt(2.0 * r / (1.0 + r)) if r > 0 else 0.0
    return r, threshold, accuracy


def camera_fingerprint(folder: str | os.PathLike, sigma: float = 3.0, crop: int | None = None,
                       cache_dir: str | os.PathLike | None = None, use_cache: bool = True,
                       min_photos: int = MIN_CAMERA_PHOTOS,
                       progress: Callable[[int, int | None], None] | None = None,
                       cancel: CancelToken | None = None) -> CameraFingerprint:
    """Estimate a camera fingerprint from a folder of the owner's natural photos.

    Parameters
    ----------
    folder : path
        Photos of one camera (JPEG, PNG or TIFF), straight from the camera:
        not rotated, not resized.
    sigma : float, optional
        Residual noise level, 0-255 units.
    crop : int, optional
        Centre-crop every photo to ``crop x crop`` (for a cropped image under test).
    cache_dir : path, optional
        Cache folder (default :func:`default_cache_dir`).
    use_cache : bool, optional
        Read and write the cache (default True).
    min_photos : int, optional
        Fewest usable photos accepted (default :data:`MIN_CAMERA_PHOTOS`).
    progress : callable, optional
        ``progress(done, total)`` after each photo.
    cancel : CancelToken, optional
        Checked between photos.

    Returns
    -------
    CameraFingerprint

    Raises
    ------
    DippasInputError
        When the folder has fewer than ``min_photos`` usable photos
        (checked from the headers, before any estimation).
    """
    from ..fingerprint import fingerprint_from_sums, fingerprint_sums

    if crop is not None and int(crop) <= 0:
        raise DippasInputError(f"crop must be positive, got {crop}")
    photos, skipped = usable_photos(folder, crop, max(2, int(min_photos)))
    path = Path(cache_dir or default_cache_dir()) / f"camera-{_cache_key(photos, sigma, crop)}.npz"
    if use_cache and path.is_file():
        cached = _read_cache(path)
        if cached is not None:
            f = cached["figures"]
            return CameraFingerprint(cached["fingerprint"].astype(np.float32), int(f[0]),
                                     int(f[1]), float(f[2]), float(f[3]), float(f[4]), cached=True)
    num, den, counts = fingerprint_sums(photos, sigma, None if crop is None else (crop, crop),
                                        parts=2, progress=progress, cancel=cancel)
    k = fingerprint_from_sums(num.sum(axis=0), den.sum(axis=0))
    r, thr, acc = half_split_quality(fingerprint_from_sums(num[0], den[0]),
                                     fingerprint_from_sums(num[1], den[1]))
    result = CameraFingerprint(k, sum(counts), skipped, r, thr, acc)
    if use_cache:
        _write_cache(path, k, np.array([result.photos, skipped, r, thr, acc], dtype=np.float64))
    return result
