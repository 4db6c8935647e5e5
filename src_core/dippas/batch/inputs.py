"""What a batch works on: the photos named by INPUT arguments, their output names and fingerprints.

An INPUT is

- an image file (JPEG, PNG, TIFF), named after its file name;
- a folder, walked recursively (hidden files and folders, and the output
  folder, are left out); each photo is named by its path inside the folder;
- a glob pattern (``photos/**/*.jpg``; ``**`` spans folders); each photo is
  named by its path below the pattern's fixed leading folders;
- a CSV manifest (``.csv``) with the columns ``image[,fingerprint]`` (a
  header row ``image,fingerprint`` is optional; relative paths are taken
  from the CSV's folder); each photo is named by its path below the CSV's
  folder, or by its file name when it lies elsewhere.

The output of a photo is its name with the suffix ``.png`` under the output
folder. Names that collide (case-insensitively) are made unique in two
deterministic steps, applied to every member of a colliding group: first
the original suffix is appended to the stem (``a.jpg``, ``a.png`` ->
``a_jpg.png``, ``a_png.png``), then, where that still collides, the first
8 hex digits of the SHA-1 of the photo's absolute path
(``a_jpg-1f2e3d4c.png``). The names depend only on the set of inputs.

Fingerprints (``--fingerprints``) come from a CSV with the columns
``image,fingerprint`` (images matched by path, else by file name), or from
a folder, where a photo's fingerprint is the first found of, by key,
its file stem, its folder's name, then its stem minus the last ``_part``
(``Nikon_D70_1_20543.jpg`` -> ``Nikon_D70_1``); a key matches
``<key>.<ext>``, ``fingerprint_<key>.<ext>`` or the single
``fingerprint_<key>_*.<ext>`` (``.npy``, ``.tif``, ``.tiff``, ``.mat``).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import DippasInputError
from ..io import FINGERPRINT_SUFFIXES, IMAGE_SUFFIXES

#: Suffix of every output image (lossless, metadata-free).
OUTPUT_SUFFIX = ".png"

__all__ = [
    "BatchInput",
    "FingerprintSource",
    "assign_output_names",
    "expand_inputs",
    "read_manifest",
]


@dataclass(frozen=True)
class BatchInput:
    """One photo of a batch.

    Attributes
    ----------
    source : Path
        Absolute path of the photo.
    name : PurePosixPath
        Its relative name (with the original suffix), mirrored under the output folder.
    fingerprint : Path or None
        Fingerprint given for this photo by a manifest row.
    """

    source: Path
    name: PurePosixPath
    fingerprint: Path | None = None


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _resolve(base: Path, text: str) -> Path:
    p = Path(os.path.expanduser(text))
    return Path(os.path.normpath((p if p.is_absolute() else base / p).absolute()))


def _walk(folder: Path, exclude: Sequence[Path]) -> list[BatchInput]:
    """Images under ``folder``, recursively, sorted, without hidden entries and ``exclude``."""
    items = []
    for root, dirs, files in os.walk(folder):
        r = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not any(_inside((r / d).resolve(), e) for e in exclude))
        for f in sorted(files):
            p = r / f
            if f.startswith(".") or not _is_image(p) or not p.is_file():
                continue
            items.append(BatchInput(p.absolute(), PurePosixPath(p.relative_to(folder).as_posix())))
    return items


def _glob_base(pattern: str) -> Path:
    """The leading folders of a glob pattern that hold no wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _expand_glob(pattern: str, exclude: Sequence[Path]) -> list[BatchInput]:
    base = _glob_base(pattern)
    items = []
    for m in sorted(glob.glob(os.path.expanduser(pattern), recursive=True)):
        p = Path(m)
        if not p.is_file() or not _is_image(p) or any(_inside(p.resolve(), e) for e in exclude):
            continue
        items.append(BatchInput(p.absolute(), PurePosixPath(p.relative_to(base).as_posix())))
    if not items:
        raise DippasInputError(f"{pattern}: matches no JPEG, PNG or TIFF file")
    return items


def _manifest_rows(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [[c.strip() for c in row] for row in csv.reader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DippasInputError(f"{path}: not a readable CSV file ({exc})") from None
    return [r for r in rows if r and any(r) and not r[0].startswith("#")]


def read_manifest(path: str | os.PathLike, columns: Sequence[str] = ("image", "fingerprint"),
                  required: int = 1) -> list[tuple[Path, Path | None]]:
    """Rows ``(image, fingerprint or None)`` of a CSV manifest.

    Parameters
    ----------
    path : path
        CSV file. A first row naming the columns is optional; without one,
        the first column is the image and the second the fingerprint.
    columns : sequence of str
        Column names.
    required : int
        How many leading columns must be non-empty (1: image; 2: both).

    Returns
    -------
    list of (Path, Path or None)
        Absolute paths; relative ones are taken from the CSV's folder.

    Raises
    ------
    DippasInputError
        On an unreadable CSV, a header without an ``image`` column, or an empty required cell.
    """
    path = Path(path)
    rows = _manifest_rows(path)
    index = [0, 1]
    if rows and rows[0][0].lower() == columns[0]:
        header = [c.lower() for c in rows.pop(0)]
        index = [header.index(c) if c in header else -1 for c in columns]
    out = []
    for n, row in enumerate(rows, start=1):
        cells = [row[i] if 0 <= i < len(row) else "" for i in index]
        if not all(cells[:required]):
            raise DippasInputError(f"{path}, row {n}: the {' and '.join(columns[:required])} "
                                   "column(s) must not be empty")
        out.append((_resolve(path.parent, cells[0]),
                    _resolve(path.parent, cells[1]) if cells[1] else None))
    return out


def _expand_manifest(path: Path) -> list[BatchInput]:
    base = path.parent.absolute()
    items = []
    for image, fp in read_manifest(path):
        name = image.relative_to(base) if _inside(image, base) else Path(image.name)
        items.append(BatchInput(image, PurePosixPath(name.as_posix()), fp))
    if not items:
        raise DippasInputError(f"{path}: the manifest lists no image")
    return items


def _expand_one(arg: str, exclude: Sequence[Path]) -> list[BatchInput]:
    p = Path(os.path.expanduser(arg))
    if p.is_dir():
        if any(_inside(p.resolve(), e) for e in exclude):
            raise DippasInputError(f"{arg}: an input folder must not be the output folder "
                                   "or lie inside it")
        items = _walk(p, exclude)
        if not items:
            raise DippasInputError(f"{arg}: no JPEG, PNG or TIFF images in this folder")
        return items
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return _expand_manifest(p)
        if not _is_image(p):
            raise DippasInputError(f"{arg}: not a JPEG, PNG or TIFF file, nor a .csv manifest")
        return [BatchInput(p.absolute(), PurePosixPath(p.name))]
    if glob.has_magic(arg):
        return _expand_glob(arg, exclude)
    raise DippasInputError(f"{arg}: no such file or folder")


def expand_inputs(inputs: Iterable[str | os.PathLike],
                  exclude: Sequence[str | os.PathLike] = ()) -> list[BatchInput]:
    """Every photo named by the INPUT arguments, in argument order, each once.

    Parameters
    ----------
    inputs : iterable of str or path
        Files, folders, glob patterns or CSV manifests (see the module doc).
    exclude : sequence of path
        Folders never read (the output folder).

    Returns
    -------
    list of BatchInput
        A photo named twice keeps its first name and first manifest fingerprint.

    Raises
    ------
    DippasInputError
        When an argument names nothing, a folder or glob holds no image, a
        manifest is malformed, or no photo is found at all.
    """
    excl = [Path(e).resolve() for e in exclude]
    seen: dict[Path, BatchInput] = {}
    for arg in inputs:
        for item in _expand_one(os.fspath(arg), excl):
            seen.setdefault(item.source.resolve(), item)
    if not seen:
        raise DippasInputError("no input photos")
    return list(seen.values())


def _safe(item: BatchInput) -> PurePosixPath:
    """The item's name, or its file name when the name would leave the output folder."""
    name = item.name
    if name.is_absolute() or ".." in name.parts or not name.parts:
        return PurePosixPath(item.source.name)
    return name


def _fold(name: PurePosixPath) -> str:
    return str(name).casefold()


def _with_suffix_tag(item: BatchInput, name: PurePosixPath) -> PurePosixPath:
    tag = item.name.suffix.lstrip(".").lower() or "noext"
    return name.with_name(f"{name.stem}_{tag}{OUTPUT_SUFFIX}")


def _with_path_hash(item: BatchInput, name: PurePosixPath) -> PurePosixPath:
    digest = hashlib.sha1(str(item.source).encode()).hexdigest()[:8]
    return name.with_name(f"{name.stem}-{digest}{OUTPUT_SUFFIX}")


def assign_output_names(items: Sequence[BatchInput]) -> list[PurePosixPath]:
    """Relative output names (``.png``), unique case-insensitively; see the module doc.

    Parameters
    ----------
    items : sequence of BatchInput

    Returns
    -------
    list of PurePosixPath
        One per item, in order.
    """
    names = [_safe(it).with_suffix(OUTPUT_SUFFIX) for it in items]
    for rename in (_with_suffix_tag, _with_path_hash):
        groups: dict[str, list[int]] = defaultdict(list)
        for i, n in enumerate(names):
            groups[_fold(n)].append(i)
        for members in groups.values():
            if len(members) > 1:
                for i in members:
                    names[i] = rename(items[i], names[i])
    if len({_fold(n) for n in names}) != len(names):  # pragma: no cover - SHA-1 prefix clash
        raise DippasInputError("could not give every photo a unique output name")
    return names


class FingerprintSource:
    """Finds the fingerprint file of a photo: one file, a CSV mapping, or a folder by name.

    Parameters
    ----------
    fingerprint : path, optional
        One fingerprint for every photo (``--fingerprint``).
    fingerprints : path, optional
        CSV ``image,fingerprint`` or folder of fingerprints (``--fingerprints``).

    Raises
    ------
    DippasInputError
        If both are given, a path does not exist, or the CSV is malformed.
    """

    def __init__(self, fingerprint: str | os.PathLike | None = None,
                 fingerprints: str | os.PathLike | None = None) -> None:
        if fingerprint is not None and fingerprints is not None:
            raise DippasInputError("give --fingerprint K or --fingerprints DIR|CSV, not both")
        self.single = Path(fingerprint).absolute() if fingerprint is not None else None
        if self.single is not None and not self.single.is_file():
            raise DippasInputError(f"{fingerprint}: no such fingerprint file")
        self.by_path: dict[Path, Path] = {}
        self.by_name: dict[str, Path | None] = {}
        self.folder: Path | None = None
        self._files: list[Path] = []
        if fingerprints is not None:
            self._load(Path(fingerprints))

    def _load(self, src: Path) -> None:
        if src.is_dir():
            self.folder = src.absolute()
            self._files = sorted(f for f in src.iterdir()
                                 if f.is_file() and f.suffix.lower() in FINGERPRINT_SUFFIXES)
        elif src.is_file() and src.suffix.lower() == ".csv":
            for image, fp in read_manifest(src, required=2):
                self.by_path[image.resolve()] = fp
                # a file name shared by two images with different fingerprints is ambiguous
                prev = self.by_name.get(image.name, fp)
                self.by_name[image.name] = fp if prev == fp else None
        else:
            raise DippasInputError(f"{src}: --fingerprints takes a folder or a .csv file")

    @property
    def given(self) -> bool:
        """Whether any fingerprint source was given."""
        return self.single is not None or self.folder is not None or bool(self.by_path)

    def _in_folder(self, key: str) -> Path | None:
        exact = [f for f in self._files if f.stem in (key, f"fingerprint_{key}")]
        loose = [f for f in self._files if f.stem.startswith(f"fingerprint_{key}_")]
        found = exact or loose
        if len(found) > 1:
            raise DippasInputError(f"{self.folder}: several fingerprints match {key} "
                                   f"({', '.join(f.name for f in found)})")
        return found[0] if found else None

    def find(self, item: BatchInput) -> Path | None:
        """The fingerprint of ``item``: its manifest's, else the given source's, else None.

        Raises
        ------
        DippasInputError
            When a folder holds several fingerprints for the photo.
        """
        if item.fingerprint is not None:
            return item.fingerprint
        if self.single is not None:
            return self.single
        if self.by_path:
            return self.by_path.get(item.source.resolve()) or self.by_name.get(item.source.name)
        if self.folder is not None:
            stem = item.source.stem
            keys = [stem, item.source.parent.name]
            if "_" in stem:
                keys.append(stem.rsplit("_", 1)[0])
            for key in keys:
                found = self._in_folder(key)
                if found is not None:
                    return found
        return None
