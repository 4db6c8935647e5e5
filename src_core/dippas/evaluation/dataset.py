"""Evaluation datasets: natural images with their devices, and one fingerprint per device.

Accepted inputs (:func:`load_dataset`):

**Per-device folders with a fingerprint** (the authors' layout)::

    ROOT/<device>/*.jpg            the device's natural photos
    ROOT/<device>/prnu.npy         its fingerprint (.npy, .tif or .mat)

**Per-device folders with flat-fields**::

    ROOT/<device>/flatfield/*.jpg  flat-field photos: the fingerprint is estimated
    ROOT/<device>/natural/*.jpg    the device's natural photos

**Pooled folders** (the layout of the shared Dresden subset)::

    ROOT/flatfield/<device>/*.jpg  flat-fields per device
    ROOT/natural/*.jpg             natural photos; device = file name minus its last ``_part``

**A CSV manifest** with the columns ``image``, ``device`` and ``fingerprint``
(a path; relative paths are resolved against the CSV's folder). Rows of one
device may leave ``fingerprint`` empty if another row gives it.

A ``fingerprints`` folder (``--fingerprints DIR``) supplies or overrides the
fingerprint of a device with a file ``<device>.<ext>``,
``fingerprint_<device>.<ext>`` or ``fingerprint_<device>_*.<ext>`` (one match),
e.g. the golden ``fingerprint_Nikon_D70_1_crop512_sigma3.npy``.

Estimated fingerprints are computed on the evaluation crop
(:func:`dippas.estimate_fingerprint`) and cached in the output folder.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DippasInputError
from ..io import FINGERPRINT_SUFFIXES, IMAGE_SUFFIXES

#: Default side of the centre crop of the protocol (paper: 512x512).
DEFAULT_CROP = 512
#: File stem of a fingerprint in a device folder of the authors' layout.
FINGERPRINT_STEM = "prnu"
#: Columns a manifest must have.
MANIFEST_COLUMNS = ("image", "device", "fingerprint")


@dataclass(frozen=True)
class ImageItem:
    """One natural image of the dataset.

    Attributes
    ----------
    path : Path
    device : str
        The device that took it (its ground truth).
    image_id : str
        Unique name in the results (the file stem, made unique if needed).
    """

    path: Path
    device: str
    image_id: str


@dataclass
class Dataset:
    """Images, their devices, and where each device's fingerprint comes from.

    Attributes
    ----------
    items : list of ImageItem
    fingerprint_files : dict
        Device -> fingerprint file, for devices whose fingerprint is given.
    flatfields : dict
        Device -> flat-field files, for devices whose fingerprint is estimated.
    layout : str
        ``'device-prnu'``, ``'device-flatfield'``, ``'pooled'`` or ``'manifest'``.
    source : Path
    """

    items: list[ImageItem]
    fingerprint_files: dict[str, Path] = field(default_factory=dict)
    flatfields: dict[str, list[Path]] = field(default_factory=dict)
    layout: str = ""
    source: Path | None = None

    @property
    def devices(self) -> list[str]:
        """Every device with a fingerprint (given or to estimate), sorted."""
        return sorted(set(self.fingerprint_files) | set(self.flatfields))


# --------------------------------------------------------------------------
# Crop
# --------------------------------------------------------------------------

def parse_crop(text: str | int | None) -> int | None:
    """``'full'`` (or None) -> None; otherwise a crop side of at least 32 pixels."""
    if text is None or str(text).lower() == "full":
        return None
    try:
        v = int(text)
    except ValueError:
        raise DippasInputError(f"crop must be a number of pixels or 'full', got {text!r}") from None
    if v < 32:
        raise DippasInputError(f"crop must be at least 32 pixels, got {v}")
    return v


def crop_name(crop: int | None) -> str:
    """Folder name of a crop in the cache: ``crop512`` or ``cropfull``."""
    return "cropfull" if crop is None else f"crop{int(crop)}"


def crop_array(array: np.ndarray, crop: int | None, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Centre crop to ``crop x crop``, or to ``shape`` (``crop`` None: the full size).

    Raises
    ------
    DippasInputError
        If the array is smaller than the crop.
    """
    from ..fingerprint import centre_crop

    if crop is not None:
        shape = (int(crop), int(crop))
    if shape is None or tuple(array.shape[:2]) == tuple(shape):
        return array
    return centre_crop(array, tuple(shape))


# --------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------

def _images_in(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir()
                  if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _fingerprint_in(folder: Path) -> Path | None:
    found = [folder / f"{FINGERPRINT_STEM}{s}" for s in FINGERPRINT_SUFFIXES
             if (folder / f"{FINGERPRINT_STEM}{s}").is_file()]
    if len(found) > 1:
        raise DippasInputError(f"{folder}: more than one fingerprint ({', '.join(f.name for f in found)})")
    return found[0] if found else None


def device_from_name(path: Path) -> str:
    """Device of a pooled natural image: the file stem minus its last ``_part``."""
    stem = Path(path).stem
    if "_" not in stem:
        raise DippasInputError(f"{path.name}: cannot tell the device from the name "
                               "(expected <device>_<number>)")
    return stem.rsplit("_", 1)[0]


def _pooled(root: Path) -> tuple[list[tuple[Path, str]], dict[str, list[Path]]]:
    pairs = [(f, device_from_name(f)) for f in _images_in(root / "natural")]
    flat = {}
    if (root / "flatfield").is_dir():
        flat = {d.name: _images_in(d) for d in _subfolders(root / "flatfield")}
        flat = {k: v for k, v in flat.items() if v}
    return pairs, flat


def _per_device(root: Path, skip: set[Path]) -> tuple[list[tuple[Path, str]], dict, dict, set[str]]:
    pairs, prnu, flat, layouts = [], {}, {}, set()
    for d in _subfolders(root):
        if d.resolve() in skip:
            continue
        if (d / "natural").is_dir() or (d / "flatfield").is_dir():
            layouts.add("device-flatfield")
            if (d / "natural").is_dir():
                pairs += [(f, d.name) for f in _images_in(d / "natural")]
            if (d / "flatfield").is_dir() and _images_in(d / "flatfield"):
                flat[d.name] = _images_in(d / "flatfield")
            k = _fingerprint_in(d)
        else:
            k = _fingerprint_in(d)
            images = [f for f in _images_in(d) if f.stem != FINGERPRINT_STEM]
            if images or k:
                layouts.add("device-prnu")
            pairs += [(f, d.name) for f in images]
        if k is not None:
            prnu[d.name] = k
    return pairs, prnu, flat, layouts


def _read_manifest(path: Path) -> tuple[list[tuple[Path, str]], dict[str, Path]]:
    base = path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = [h.strip() for h in (reader.fieldnames or []) if h]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DippasInputError(f"{path}: not a readable CSV manifest ({exc})") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in header]
    if missing:
        raise DippasInputError(f"{path}: manifest lacks the column(s) {', '.join(missing)}; "
                               f"expected {', '.join(MANIFEST_COLUMNS)}")
    pairs, prints = [], {}
    for n, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        img, dev, fp = row.get("image", ""), row.get("device", ""), row.get("fingerprint", "")
        if not img or not dev:
            raise DippasInputError(f"{path}, line {n}: image and device must not be empty")
        pairs.append((_resolve(base, img), dev))
        if fp:
            p = _resolve(base, fp)
            if dev in prints and prints[dev] != p:
                raise DippasInputError(f"{path}, line {n}: device {dev} has two fingerprints "
                                       f"({prints[dev].name} and {p.name})")
            prints[dev] = p
    return pairs, prints


def _resolve(base: Path, text: str) -> Path:
    p = Path(os.path.expanduser(text))
    return p if p.is_absolute() else base / p


def fingerprints_from_folder(folder: str | os.PathLike, devices) -> dict[str, Path]:
    """Fingerprint files for ``devices`` found in ``folder`` by name.

    A device's file is ``<device>.<ext>`` or ``fingerprint_<device>.<ext>``,
    else the single ``fingerprint_<device>_*.<ext>`` (``.npy``, ``.tif``,
    ``.tiff`` or ``.mat``). Devices with no file are left out.

    Raises
    ------
    DippasInputError
        If ``folder`` is not a folder, or a device matches several files.
    """
    d = Path(folder)
    if not d.is_dir():
        raise DippasInputError(f"{d}: not a folder")
    files = [f for f in d.iterdir() if f.is_file() and f.suffix.lower() in FINGERPRINT_SUFFIXES]
    out = {}
    for dev in devices:
        exact = [f for f in files if f.stem in (dev, f"fingerprint_{dev}")]
        loose = [f for f in files if f.stem.startswith(f"fingerprint_{dev}_")]
        found = exact or loose
        if len(found) > 1:
            raise DippasInputError(f"{d}: several fingerprints match device {dev} "
                                   f"({', '.join(sorted(f.name for f in found))})")
        if found:
            out[dev] = found[0]
    return out


def _unique_ids(pairs: list[tuple[Path, str]]) -> list[ImageItem]:
    seen_paths = set()
    stems: dict[str, int] = {}
    for p, _ in pairs:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    items, used = [], set()
    for p, dev in pairs:
        key = os.path.realpath(p)
        if key in seen_paths:
            raise DippasInputError(f"{p}: listed twice in the dataset")
        seen_paths.add(key)
        iid = p.stem if stems[p.stem] == 1 else f"{dev}/{p.stem}"
        k = 2
        base = iid
        while iid in used:
            iid, k = f"{base}~{k}", k + 1
        used.add(iid)
        items.append(ImageItem(Path(p), dev, iid))
    return items


def load_dataset(source: str | os.PathLike, fingerprints: str | os.PathLike | None = None,
                 skip: tuple[str | os.PathLike, ...] = ()) -> Dataset:
    """Read a dataset folder or CSV manifest (see the module docstring).

    Parameters
    ----------
    source : path
        Dataset folder, or a ``.csv`` manifest.
    fingerprints : path, optional
        Folder of fingerprints by device name; these take precedence.
    skip : tuple of path, optional
        Folders inside ``source`` to ignore (e.g. the output folder).

    Returns
    -------
    Dataset

    Raises
    ------
    DippasInputError
        On a missing source, no images, an image file that does not exist,
        fewer than two devices with fingerprints, or a device with images
        but no fingerprint.
    """
    src = Path(source)
    if not src.exists():
        raise DippasInputError(f"{src}: no such file or folder")
    prints: dict[str, Path] = {}
    flat: dict[str, list[Path]] = {}
    if src.is_file():
        if src.suffix.lower() != ".csv":
            raise DippasInputError(f"{src}: expected a dataset folder or a .csv manifest")
        pairs, prints = _read_manifest(src)
        layout = "manifest"
    elif (src / "natural").is_dir():
        pairs, flat = _pooled(src)
        layout = "pooled"
    else:
        pairs, prints, flat, layouts = _per_device(src, {Path(s).resolve() for s in skip})
        layout = "+".join(sorted(layouts)) or "device-prnu"
    if fingerprints is not None:
        devs = sorted({d for _, d in pairs} | set(prints) | set(flat))
        prints.update(fingerprints_from_folder(fingerprints, devs))
    flat = {k: v for k, v in flat.items() if k not in prints}
    ds = Dataset(_unique_ids(pairs), prints, flat, layout, src)
    check_dataset(ds)
    return ds


def check_dataset(ds: Dataset) -> None:
    """Refuse an empty dataset, missing files, fewer than two devices, or an image's device without fingerprint."""
    where = f"{ds.source}" if ds.source is not None else "dataset"
    if not ds.items:
        raise DippasInputError(f"{where}: no images to evaluate (empty dataset)")
    for item in ds.items:
        if not item.path.is_file():
            raise DippasInputError(f"{item.path}: no such image file")
    for dev, p in ds.fingerprint_files.items():
        if not Path(p).is_file():
            raise DippasInputError(f"{p}: no such fingerprint file (device {dev})")
    known = set(ds.devices)
    for item in ds.items:
        if item.device not in known:
            raise DippasInputError(f"device {item.device} has no fingerprint "
                                   f"(needed by {item.path.name})")
    if len(known) < 2:
        raise DippasInputError(f"{where}: the protocol needs at least 2 devices with fingerprints, "
                               f"found {len(known)}")


# --------------------------------------------------------------------------
# Fingerprints: estimation (cached) and size checks
# --------------------------------------------------------------------------

def _files_digest(files) -> str:
    h = hashlib.sha1()
    for f in files:
        st = Path(f).stat()
        h.update(f"{Path(f).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:10]


def estimated_fingerprint_path(cache_dir: str | os.PathLike, device: str, files, crop: int | None,
                               sigma: float) -> Path:
    """Cache file of an estimated fingerprint: keyed by device, files, crop and sigma."""
    from .methods import format_value

    name = f"{device}_{crop_name(crop)}_sigma{format_value(float(sigma))}_{_files_digest(files)}.npy"
    return Path(cache_dir) / name


def resolve_fingerprints(ds: Dataset, cache_dir: str | os.PathLike, crop: int | None,
                         sigma: float = 3.0,
                         progress: Callable[[str], Callable[[int, int | None], None] | None] | None = None,
                         cancel=None) -> dict[str, Path]:
    """A fingerprint file for every device, estimating (and caching) missing ones.

    Parameters
    ----------
    ds : Dataset
    cache_dir : path
        Folder of the estimated fingerprints (created when needed).
    crop : int or None
        Estimation crop (None: the flat-fields' smallest common size).
    sigma : float
        Residual noise level, 0-255 units.
    progress : callable, optional
        ``progress(description)`` returns a ``(done, total)`` callback for one estimation.
    cancel : CancelToken, optional

    Returns
    -------
    dict
        Device -> fingerprint file, in device order.
    """
    from ..fingerprint import estimate_fingerprint
    from ..io import save_fingerprint

    out = {}
    for dev in ds.devices:
        if dev in ds.fingerprint_files:
            out[dev] = Path(ds.fingerprint_files[dev])
            continue
        files = ds.flatfields[dev]
        path = estimated_fingerprint_path(cache_dir, dev, files, crop, sigma)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            cb = progress(f"fingerprint {dev}") if progress is not None else None
            k = estimate_fingerprint(files, sigma=sigma,
                                     crop=(crop, crop) if crop is not None else "common",
                                     progress=cb, cancel=cancel)
            save_fingerprint(path, k, force=True)
        out[dev] = path
    return out


def check_sizes(ds: Dataset, fingerprint_files: Mapping[str, Path], crop: int | None) -> None:
    """Check, before any work, that every image and fingerprint covers its comparison size.

    With a crop, every image and fingerprint must be at least ``crop``
    pixels a side. With ``crop=None`` (full size) every fingerprint must be
    at least as large as every image (it is centre-cropped to each image).

    Raises
    ------
    DippasInputError
        Naming the first file that is too small.
    """
    from ..io import image_size, load_fingerprint

    sizes = {item.path: image_size(item.path) for item in ds.items}
    need = (crop, crop) if crop is not None else (max(s[0] for s in sizes.values()),
                                                   max(s[1] for s in sizes.values()))
    if crop is not None:
        for p, (h, w) in sizes.items():
            if h < crop or w < crop:
                raise DippasInputError(f"{p.name} is {h}x{w}, smaller than the crop {crop}; "
                                       "use a smaller --crop")
    for dev, p in fingerprint_files.items():
        kh, kw = load_fingerprint(p).shape
        if kh < need[0] or kw < need[1]:
            what = f"the crop {crop}" if crop is not None else f"the largest image ({need[0]}x{need[1]})"
            raise DippasInputError(f"fingerprint of {dev} ({Path(p).name}) is {kh}x{kw}, "
                                   f"smaller than {what}")
