"""The on-disk run folder: writers used by the inversion, and a read-only reader.

The layout is described in ``docs/run-format.md``. In short::

    RUN/params.json, input.npy, fingerprint.npy
    RUN/tiles/<ty>_<tx>/tile.json, status.json, snapshots.npy, table.csv,
                        cells.npy, history.csv, checkpoint.pt

:class:`TileWriter` appends snapshots, table rows and history rows of one
tile; :class:`RunStore` and :class:`TileStore` open a run read-only for the
assembler, the napari reader and any other tool. Nothing here imports torch.

Consistency rules
-----------------
- A snapshot frame is written before its ``table.csv`` row, so the valid
  snapshots are ``min(rows of table.csv, frames of snapshots.npy)``.
- ``cells.npy`` is filled in order by the background stage and may lag:
  its valid frames are ``min(frames of cells.npy, valid snapshots)``.
- CSV rows are flushed one by one; a row without its final newline is torn
  and ignored by readers (and cut by writers when they reopen the file).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import DippasInputError
from ..io import atomic_write
from ..jsonio import read_json, write_json
from .appendable_npy import AppendableNpy, open_frames, valid_frame_count
from .tiling import TileGeometry, check_overlap

PARAMS = "params.json"
INPUT = "input.npy"
FINGERPRINT = "fingerprint.npy"
TILES = "tiles"
TILE_JSON = "tile.json"
STATUS_JSON = "status.json"
SNAPSHOTS = "snapshots.npy"
TABLE = "table.csv"
CELLS = "cells.npy"
HISTORY = "history.csv"
CHECKPOINT = "checkpoint.pt"

#: Columns of ``table.csv`` (one row per stored snapshot).
TABLE_COLUMNS = ("index", "iteration", "psnr", "loss", "gamma")
#: Columns of ``history.csv`` (one row per iteration).
HISTORY_COLUMNS = ("iteration", "psnr", "loss", "gamma", "seconds")
_INT_COLUMNS = {"index", "iteration"}

#: Format version written to ``params.json``.
FORMAT_VERSION = 1

#: ``params.json`` keys added after format version 1 was first written, with the
#: value a run folder written before them holds (its tiles did not overlap, its
#: network started from a random initialisation).
LEGACY_PARAMS = {"tile_overlap": 0, "warm_start": False}


# ------------------------------------------------------------------ small helpers

def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a run (its ``params.json``, written last at creation)."""
    return (Path(path) / PARAMS).is_file()


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``numpy.save`` through a temporary file and a rename."""

    def writer(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)

    return atomic_write(path, writer)


def _fmt(value) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value))


def read_csv_columns(path: str | os.PathLike, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Complete rows of a CSV log as a dict of arrays (torn last row ignored).

    Parameters
    ----------
    path : path
        ``table.csv`` or ``history.csv``; a missing file reads as empty.
    columns : sequence of str
        Expected header.

    Returns
    -------
    dict of str to ndarray
        ``index`` and ``iteration`` as int64, the others as float64.
    """
    rows: list[list[str]] = []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    lines = text.split("\n")[:-1]  # the last piece has no newline: empty or torn
    if lines and lines[0].split(",") == list(columns):
        lines = lines[1:]
    for line in lines:
        parts = line.split(",")
        if len(parts) == len(columns):
            rows.append(parts)
    out = {}
    for j, name in enumerate(columns):
        dtype = np.int64 if name in _INT_COLUMNS else np.float64
        out[name] = np.array([r[j] for r in rows], dtype=dtype) if rows else np.empty(0, dtype)
    return out


class CsvLog:
    """An append-only CSV file flushed after every row.

    Reopening cuts a torn last row (one without its newline).
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        header = ",".join(self.columns) + "\n"
        if not self.path.exists() or self.path.stat().st_size == 0:
            with open(self.path, "w", encoding="utf-8", newline="") as f:
                f.write(header)
        else:
            self._cut_torn_row()
        self._file = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115

    def _cut_torn_row(self) -> None:
        with open(self.path, "rb+") as f:
            data = f.read()
            keep = data.rfind(b"\n") + 1
            if keep != len(data):
                f.truncate(keep)
        if keep == 0:
            with open(self.path, "w", encoding="utf-8", newline="") as f:
                f.write(",".join(self.columns) + "\n")

    def append(self, *values) -> None:
        """Write one row and flush it to the operating system."""
        self._file.write(",".join(_fmt(v) for v in values) + "\n")
        self._file.flush()

    def keep_rows(self, predicate) -> int:
        """Rewrite the file (atomically) keeping the rows where ``predicate(row)``.

        ``row`` is a dict of the column values; returns the rows kept.
        """
        self._file.close()
        data = read_csv_columns(self.path, self.columns)
        n = len(data[self.columns[0]])
        kept = [i for i in range(n) if predicate({c: data[c][i] for c in self.columns})]
        lines = [",".join(self.columns)]
        lines += [",".join(_fmt(data[c][i]) for c in self.columns) for i in kept]
        text = "\n".join(lines) + "\n"

        def writer(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(text)

        atomic_write(self.path, writer)
        self._file = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        return len(kept)

    def sync(self) -> None:
        """``fsync`` the file."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file (idempotent)."""
        if not self._file.closed:
            self._file.close()


def cells_grid(geometry: TileGeometry, cell: int) -> tuple[int, int]:
    """``(ny, nx)`` cells of a tile (edge cells partial)."""
    return -(-geometry.h // cell), -(-geometry.w // cell)


# ------------------------------------------------------------------ writing

class TileWriter:
    """Appends snapshots, table rows and history rows of one tile.

    Creates the tile folder and its files when missing; when they exist
    (a resumed run), reopens them and repairs torn ends. ``cells.npy`` is
    created here but appended by the background stage only.

    Parameters
    ----------
    tile_dir : path
        ``RUN/tiles/<ty>_<tx>``.
    geometry : TileGeometry
    cell : int
        Cell side of the cell statistics.
    """

    def __init__(self, tile_dir: str | os.PathLike, geometry: TileGeometry, cell: int) -> None:
        self.dir = Path(tile_dir)
        self.geometry = geometry
        self.dir.mkdir(parents=True, exist_ok=True)
        tile_json = self.dir / TILE_JSON
        if not tile_json.exists():
            atomic_write(tile_json, lambda tmp: Path(tmp).write_text(geometry.to_json()))
        frame = (geometry.h, geometry.w, 3)
        cells_frame = (3, *cells_grid(geometry, cell))
        self.snapshots = self._open_npy(self.dir / SNAPSHOTS, frame, np.uint8)
        # cells.npy must exist before anyone reads the tile; only its header is touched here
        self._open_npy(self.dir / CELLS, cells_frame, np.float64).close()
        self.table = CsvLog(self.dir / TABLE, TABLE_COLUMNS)
        self.history = CsvLog(self.dir / HISTORY, HISTORY_COLUMNS)
        rows = len(read_csv_columns(self.table.path, TABLE_COLUMNS)["index"])
        if rows != len(self.snapshots):  # a frame without its row, or vice versa
            self._rollback_snapshots(min(rows, len(self.snapshots)))

    @staticmethod
    def _open_npy(path: Path, frame: tuple[int, ...], dtype) -> AppendableNpy:
        if path.exists():
            return AppendableNpy.open(path, frame, dtype)
        return AppendableNpy.create(path, frame, dtype)

    def __len__(self) -> int:
        return len(self.snapshots)

    def append_snapshot(self, frame: np.ndarray, iteration: int, psnr: float,
                        loss: float, gamma: float) -> int:
        """Store one snapshot, then its table row; return its index."""
        index = self.snapshots.append(frame)
        self.table.append(index, iteration, psnr, loss, gamma)
        return index

    def log_iteration(self, iteration: int, psnr: float, loss: float, gamma: float,
                      seconds: float) -> None:
        """Append one row to ``history.csv``."""
        self.history.append(iteration, psnr, loss, gamma, seconds)

    def _rollback_snapshots(self, n_snapshots: int) -> None:
        self.snapshots.truncate(min(n_snapshots, len(self.snapshots)))
        self.table.keep_rows(lambda r: r["index"] < n_snapshots)
        cells_path = self.dir / CELLS
        if valid_frame_count(cells_path) > n_snapshots:
            with AppendableNpy.open(cells_path) as cells:
                cells.truncate(n_snapshots)

    def rollback(self, n_snapshots: int, iteration: int) -> None:
        """Forget everything after a checkpoint.

        Keeps the first ``n_snapshots`` snapshots (and their table rows and
        cells) and the history up to ``iteration``.

        Raises
        ------
        ValueError
            If fewer than ``n_snapshots`` snapshots are on disk.
        """
        if n_snapshots > len(self.snapshots):
            raise ValueError(
                f"{self.dir}: {len(self.snapshots)} snapshots on disk, checkpoint expects {n_snapshots}"
            )
        self._rollback_snapshots(n_snapshots)
        self.history.keep_rows(lambda r: r["iteration"] <= iteration)

    def write_status(self, **status) -> None:
        """Replace ``status.json`` atomically."""
        write_json(self.dir / STATUS_JSON, status)

    def sync(self) -> None:
        """``fsync`` the snapshots and both CSV files (before a checkpoint)."""
        self.snapshots.sync()
        self.table.sync()
        self.history.sync()

    def close(self) -> None:
        """Close every file (idempotent)."""
        self.snapshots.close()
        self.table.close()
        self.history.close()


def create_run_folder(path: str | os.PathLike, params: dict, image: np.ndarray,
                      pattern: np.ndarray) -> Path:
    """Create ``RUN/`` with ``params.json``, ``input.npy`` and ``fingerprint.npy``.

    ``params.json`` is written last, so a folder without it is not a run.
    """
    p = Path(path)
    p.mkdir(exist_ok=True)
    (p / TILES).mkdir(exist_ok=True)
    save_npy_atomic(p / INPUT, image)
    save_npy_atomic(p / FINGERPRINT, pattern.astype(np.float32, copy=False))
    write_json(p / PARAMS, params)
    return p


# ------------------------------------------------------------------ reading

class TileStore:
    """Read-only view of one tile of a run.

    Every property reads the files again, so a viewer polling a running
    inversion sees new snapshots. A tile whose inversion has not started
    yet reads as empty.

    Parameters
    ----------
    tile_dir : path
        ``RUN/tiles/<ty>_<tx>``.
    geometry : TileGeometry, optional
        Default: read from ``tile.json``.
    cell : int, optional
        Cell side (gives the shape of an empty ``cells``).
    """

    def __init__(self, tile_dir: str | os.PathLike, geometry: TileGeometry | None = None,
                 cell: int | None = None) -> None:
        self.path = Path(tile_dir)
        self.geometry = geometry or TileGeometry.from_dict(read_json(self.path / TILE_JSON))
        self.cell = cell

    def __repr__(self) -> str:
        return f"TileStore({self.geometry.name!r}, snapshots={self.n_snapshots}, cells={self.n_cells})"

    def _frames(self, name: str) -> int:
        path = self.path / name
        return _readable(path, valid_frame_count) if path.exists() else 0

    @property
    def n_snapshots(self) -> int:
        """Valid snapshots: ``min(rows of table.csv, complete frames)``."""
        rows = len(read_csv_columns(self.path / TABLE, TABLE_COLUMNS)["index"])
        return min(rows, self._frames(SNAPSHOTS))

    @property
    def n_cells(self) -> int:
        """Valid cell statistics frames (never more than the snapshots)."""
        return min(self._frames(CELLS), self.n_snapshots)

    @property
    def snapshots(self) -> np.ndarray:
        """uint8 memory map ``(M, h, w, 3)`` of the valid snapshots."""
        path = self.path / SNAPSHOTS
        if not path.exists():
            return np.empty((0, self.geometry.h, self.geometry.w, 3), np.uint8)
        return _readable(path, open_frames, self.n_snapshots)

    @property
    def table(self) -> dict[str, np.ndarray]:
        """Columns of ``table.csv`` for the valid snapshots (see :data:`TABLE_COLUMNS`)."""
        data = read_csv_columns(self.path / TABLE, TABLE_COLUMNS)
        n = min(len(data["index"]), self._frames(SNAPSHOTS))
        return {k: v[:n] for k, v in data.items()}

    @property
    def cells(self) -> np.ndarray:
        """float64 memory map ``(M_cells, 3, ny, nx)`` of the valid cell statistics."""
        path = self.path / CELLS
        if not path.exists():
            grid = cells_grid(self.geometry, self.cell) if self.cell else (0, 0)
            return np.empty((0, 3, *grid), np.float64)
        return _readable(path, open_frames, self.n_snapshots)

    @property
    def history(self) -> dict[str, np.ndarray]:
        """Columns of ``history.csv`` (every iteration; see :data:`HISTORY_COLUMNS`)."""
        return read_csv_columns(self.path / HISTORY, HISTORY_COLUMNS)

    @property
    def status(self) -> dict:
        """``status.json`` (iteration, snapshots, done, stop reason), or ``{}``."""
        path = self.path / STATUS_JSON
        return read_json(path) if path.exists() else {}

    @property
    def has_checkpoint(self) -> bool:
        """Whether ``checkpoint.pt`` exists."""
        return (self.path / CHECKPOINT).exists()


class RunStore:
    """Read-only view of a DIPPAS run folder.

    Parameters
    ----------
    path : path
        The run folder (``params.json`` inside).

    Raises
    ------
    DippasInputError
        If ``path`` is not a run folder.

    Examples
    --------
    >>> store = RunStore("run")                       # doctest: +SKIP
    >>> tile = store.tile(0, 0)                       # doctest: +SKIP
    >>> tile.snapshots.shape, tile.table["psnr"][:3]  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not is_run_folder(self.path):
            raise DippasInputError(f"{self.path}: not a DIPPAS run folder (no {PARAMS})")
        self.params = {**LEGACY_PARAMS, **read_json(self.path / PARAMS)}
        self.tiles = _checked_tiles(self.path, self.params)

    @property
    def tile_overlap(self) -> int:
        """Pixels shared by neighbouring tiles (0 for a run made before overlaps existed)."""
        return int(self.params["tile_overlap"])

    def write_params(self, params: dict) -> None:
        """Replace ``params.json`` (atomically) and keep the new values."""
        write_json(self.path / PARAMS, params)
        self.params = params

    def check_matches(self, image: np.ndarray, fingerprint: np.ndarray | None,
                      identity: dict) -> None:
        """Refuse to continue this run for another photo, fingerprint or job.

        Parameters
        ----------
        image : ndarray, uint8 (H, W, 3)
            The photo as the run stores it.
        fingerprint : ndarray or None
            K for an aware run, None for a blind one.
        identity : dict
            ``mode``, ``preset``, ``seed``, ``save_psnr``, ``lr``, ``warm_start``,
            ``tile``, ``tile_overlap`` (:meth:`dippas.jobs.DippasJob.run_identity`).

        Raises
        ------
        DippasInputError
            Naming the first difference.
        """
        stored_mode = self.params.get("mode")
        if stored_mode != identity["mode"]:
            raise DippasInputError(f"{self.path}: holds a PRNU-{stored_mode} run, not a "
                                   f"PRNU-{identity['mode']} one; choose another run folder")
        stored = self.input
        if stored.shape != image.shape or not np.array_equal(stored, image):
            raise DippasInputError(f"{self.path}: holds the run of another photo; "
                                   "choose another run folder")
        if fingerprint is not None and not np.array_equal(self.fingerprint, fingerprint):
            raise DippasInputError(f"{self.path}: was made with another fingerprint; "
                                   "choose another run folder")
        for key, value in identity.items():
            if key != "mode" and self.params.get(key) != value:
                raise DippasInputError(f"{self.path}: the run has {key} {self.params.get(key)}, "
                                       f"not {value}; it cannot change on resume")

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r}, tiles={len(self.tiles)})"

    def __len__(self) -> int:
        return len(self.tiles)

    def __iter__(self) -> Iterator[TileStore]:
        for g in self.tiles:
            yield self.tile(g.ty, g.tx)

    def tile(self, ty: int | str = 0, tx: int = 0) -> TileStore:
        """The tile at grid position ``(ty, tx)``, or by name ``'ty_tx'``.

        Raises
        ------
        DippasInputError
            If the grid has no such tile.
        """
        name = ty if isinstance(ty, str) else f"{ty}_{tx}"
        for g in self.tiles:
            if g.name == name:
                return TileStore(self.path / TILES / name, g, self.params.get("cell"))
        raise DippasInputError(f"{self.path}: no tile {name} in a {len(self.tiles)}-tile grid")

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the input image."""
        return tuple(self.params["image_shape"][:2])

    @property
    def input(self) -> np.ndarray:
        """Memory map of ``input.npy`` (H, W, 3)."""
        return _load_array(self.path / INPUT, (*self.image_shape, 3))

    @property
    def fingerprint(self) -> np.ndarray:
        """Memory map of ``fingerprint.npy``: the injected P, float32 (H, W)."""
        return _load_array(self.path / FINGERPRINT, self.image_shape)

    @property
    def input_path(self) -> Path:
        """``input.npy``: the original pixels (an input of every output made from the run)."""
        return self.path / INPUT

    @property
    def is_complete(self) -> bool:
        """Whether every tile finished its inversion."""
        for g in self.tiles:
            status_path = self.path / TILES / g.name / STATUS_JSON
            if not status_path.exists() or not read_json(status_path).get("done", False):
                return False
        return True


def _load_array(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Memory map of a run's ``.npy``; a missing, truncated or misshapen one is a one-line error."""
    try:
        arr = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise DippasInputError(f"{path}: missing from the run folder") from None
    except (OSError, ValueError) as exc:
        raise DippasInputError(f"{path}: damaged ({exc})") from None
    if tuple(arr.shape) != tuple(shape):
        raise DippasInputError(f"{path}: shape {arr.shape}, the run expects {tuple(shape)}")
    return arr


#: Largest image side a run may record (a 200 Mpx photo is about 17 000 pixels wide).
_MAX_RUN_SIDE = 1 << 16


def _checked_tiles(path: Path, params: dict) -> list[TileGeometry]:
    """The tiles of ``params.json``, checked against its image shape (one-line errors)."""
    shape = params.get("image_shape")
    if (not isinstance(shape, list) or len(shape) not in (2, 3)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
            or not all(0 < v <= _MAX_RUN_SIDE for v in shape[:2])):
        raise DippasInputError(f"{path / PARAMS}: bad image_shape {shape!r}")
    tile, overlap = params.get("tile"), params.get("tile_overlap", 0)
    try:  # as a job would have checked it (any int tile when the tile itself is damaged)
        check_overlap(tile if isinstance(tile, int) and not isinstance(tile, bool) else 1 << 30, overlap)
    except DippasInputError:
        raise DippasInputError(f"{path / PARAMS}: bad tile_overlap {overlap!r}") from None
    raw = params.get("tiles")
    if not isinstance(raw, list) or not raw:
        raise DippasInputError(f"{path / PARAMS}: no tiles recorded")
    tiles = []
    for t in raw:
        try:
            g = TileGeometry.from_dict(t)
            ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                     for v in (g.ty, g.tx, g.y0, g.x0, g.h, g.w))
        except (TypeError, KeyError, ValueError, AttributeError):
            ok = False
        if not ok or g.y0 + g.h > shape[0] or g.x0 + g.w > shape[1] or g.h < 1 or g.w < 1:
            raise DippasInputError(f"{path / PARAMS}: bad tile {t!r}")
        tiles.append(g)
    return tiles


def _readable(path: Path, read, *args):
    """``read(path, *args)``, with a damaged file as a one-line :class:`DippasInputError`."""
    try:
        return read(path, *args)
    except (OSError, ValueError, IndexError) as exc:
        raise DippasInputError(f"{path}: damaged ({str(exc).splitlines()[0]})") from None
