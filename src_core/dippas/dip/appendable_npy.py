"""Append-only, crash-consistent ``.npy`` files.

The snapshot store and the cell statistics are standard ``.npy`` files that
grow one frame at a time along their first axis:

- the header is padded to a fixed :data:`HEADER_LEN` bytes, so the shape in
  it can be rewritten in place when the file grows;
- an append writes the frame after the last complete one, then rewrites the
  header with the new count, in one ``write`` call;
- a reader takes ``min(count in the header, complete frames in the file)``
  frames, so a crash between the two writes, or in the middle of a frame,
  leaves a file that ``numpy.load(path, mmap_mode='r')`` opens and that
  :func:`open_frames` reads up to the last complete frame.

Reopening a file for appending (:meth:`AppendableNpy.open`) repairs it:
bytes of an incomplete frame are cut and the header is made to agree with
the frames on disk.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

#: Bytes of the padded header (magic, version, length and the dictionary).
HEADER_LEN = 256
_MAGIC = b"\x93NUMPY\x01\x00"


def _header_bytes(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    room = HEADER_LEN - len(_MAGIC) - 2
    if len(text) + 1 > room:
        raise ValueError(f"shape {shape} does not fit in a {HEADER_LEN}-byte .npy header")
    text = text.ljust(room - 1) + "\n"
    return _MAGIC + room.to_bytes(2, "little") + text.encode("latin1")


def read_header(path: str | os.PathLike, retries: int = 3) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, shape, data offset)`` of any ``.npy`` file (version 1 to 3).

    A reader racing with a writer that rewrites the header in place may
    see a half-written header; the read is then retried ``retries`` times.

    Raises
    ------
    ValueError
        If the file is not a readable C-order ``.npy`` file.
    """
    for attempt in range(retries + 1):
        try:
            return _read_header_once(path)
        except ValueError:
            if attempt == retries:
                raise
            time.sleep(0.01)
    raise AssertionError("unreachable")  # pragma: no cover


def _read_header_once(path: str | os.PathLike) -> tuple[np.dtype, tuple[int, ...], int]:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            shape, fortran, dtype = np.lib.format._read_array_header(f, version)  # noqa: SLF001
        if fortran:
            raise ValueError(f"{path}: Fortran-order .npy files are not supported")
        return np.dtype(dtype), tuple(int(s) for s in shape), f.tell()


def _frame_bytes(dtype: np.dtype, frame_shape: tuple[int, ...]) -> int:
    return int(np.dtype(dtype).itemsize * int(np.prod(frame_shape, dtype=np.int64)))


def valid_frame_count(path: str | os.PathLike) -> int:
    """Frames that are both announced by the header and complete on disk."""
    dtype, shape, offset = read_header(path)
    fb = _frame_bytes(dtype, shape[1:])
    on_disk = (os.path.getsize(path) - offset) // fb if fb else shape[0]
    return int(max(0, min(shape[0], on_disk)))


def open_frames(path: str | os.PathLike, count: int | None = None) -> np.memmap | np.ndarray:
    """Read-only memory map of the valid frames of an appendable ``.npy``.

    Parameters
    ----------
    path : path
        The file.
    count : int, optional
        Map at most this many frames (e.g. the rows of ``table.csv``).

    Returns
    -------
    numpy.memmap or ndarray
        Shape ``(n, *frame_shape)``; an empty array when ``n == 0`` (a
        zero-length file cannot be memory-mapped).
    """
    dtype, shape, offset = read_header(path)
    n = valid_frame_count(path)
    if count is not None:
        n = max(0, min(n, int(count)))
    if n == 0:
        return np.empty((0, *shape[1:]), dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(n, *shape[1:]))


def read_frame(path: str | os.PathLike, index: int, frame_shape: tuple[int, ...] | None = None,
               dtype: np.dtype | type | None = None) -> np.ndarray:
    """One frame, read with a plain file read (no memory map kept).

    Parameters
    ----------
    path : path
        An appendable ``.npy`` file.
    index : int
        Frame index.
    frame_shape, dtype : optional
        The layout, when the caller knows it (the file was made by
        :meth:`AppendableNpy.create`): the header is then not read at all,
        which is what a thread reading beside the writer wants.

    Raises
    ------
    IndexError
        If the frame is not complete on disk (or not announced by the header).
    """
    if frame_shape is None or dtype is None:
        dtype, shape, offset = read_header(path)
        frame_shape = shape[1:]
        if not 0 <= index < valid_frame_count(path):
            raise IndexError(f"frame {index} of {path} is not (yet) complete")
    else:
        offset = HEADER_LEN
    dtype = np.dtype(dtype)
    fb = _frame_bytes(dtype, tuple(frame_shape))
    with open(path, "rb") as f:
        f.seek(offset + index * fb)
        data = f.read(fb)
    if index < 0 or len(data) != fb:
        raise IndexError(f"frame {index} of {path} is not (yet) complete")
    return np.frombuffer(data, dtype=dtype).reshape(frame_shape).copy()


class AppendableNpy:
    """Writer of an append-only ``.npy`` file.

    Use :meth:`create` for a new file and :meth:`open` to continue an
    existing one. Frames are written as they come; nothing is kept in
    memory.

    Examples
    --------
    >>> import tempfile, numpy as np, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> with AppendableNpy.create(path, (2, 2), np.uint8) as a:
    ...     _ = a.append(np.ones((2, 2), np.uint8))
    >>> np.load(path, mmap_mode="r").shape
    (1, 2, 2)
    """

    def __init__(self, path: Path, dtype: np.dtype, frame_shape: tuple[int, ...],
                 count: int, offset: int) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.frame_shape = tuple(int(s) for s in frame_shape)
        self.frame_bytes = _frame_bytes(self.dtype, self.frame_shape)
        self.offset = int(offset)
        self._count = int(count)
        self._file = open(self.path, "r+b", buffering=0)  # noqa: SIM115 - closed in close()

    # ------------------------------------------------------------ opening
    @classmethod
    def create(cls, path: str | os.PathLike, frame_shape: tuple[int, ...],
               dtype: np.dtype | type) -> AppendableNpy:
        """Create (or replace) an empty file of frames of ``frame_shape``."""
        p = Path(path)
        with open(p, "wb") as f:
            f.write(_header_bytes(np.dtype(dtype), (0, *frame_shape)))
        return cls(p, np.dtype(dtype), frame_shape, 0, HEADER_LEN)

    @classmethod
    def open(cls, path: str | os.PathLike, frame_shape: tuple[int, ...] | None = None,
             dtype: np.dtype | type | None = None) -> AppendableNpy:
        """Open an existing file for appending, repairing a torn last frame.

        Parameters
        ----------
        path : path
            File written by :meth:`create`.
        frame_shape, dtype : optional
            When given, checked against the file.

        Raises
        ------
        ValueError
            If the file's header is not the fixed-length one of this module,
            or its layout differs from ``frame_shape`` / ``dtype``.
        """
        p = Path(path)
        file_dtype, shape, offset = read_header(p)
        if offset != HEADER_LEN:
            raise ValueError(f"{p}: not an appendable .npy (header of {offset} bytes)")
        if frame_shape is not None and tuple(shape[1:]) != tuple(frame_shape):
            raise ValueError(f"{p}: frames are {shape[1:]}, expected {tuple(frame_shape)}")
        if dtype is not None and file_dtype != np.dtype(dtype):
            raise ValueError(f"{p}: dtype is {file_dtype}, expected {np.dtype(dtype)}")
        writer = cls(p, file_dtype, shape[1:], valid_frame_count(p), offset)
        writer.truncate(writer._count)
        return writer

    # ------------------------------------------------------------ writing
    def __len__(self) -> int:
        return self._count

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._file.closed

    def _write_all(self, data, position: int) -> None:
        self._file.seek(position)
        view = memoryview(data).cast("B")
        while view:
            written = self._file.write(view)
            view = view[written:]

    def _write_header(self) -> None:
        self._write_all(_header_bytes(self.dtype, (self._count, *self.frame_shape)), 0)

    def append(self, frame: np.ndarray) -> int:
        """Write one frame after the last one; return its index.

        The frame is written first, then the header; a crash between the
        two leaves the previous count in the header.
        """
        arr = np.ascontiguousarray(frame, dtype=self.dtype)
        if arr.shape != self.frame_shape:
            raise ValueError(f"frame of shape {arr.shape}, expected {self.frame_shape}")
        self._write_all(arr, self.offset + self._count * self.frame_bytes)
        self._count += 1
        self._write_header()
        return self._count - 1

    def truncate(self, count: int) -> None:
        """Keep the first ``count`` frames (fewer than now, or as many)."""
        count = int(count)
        if not 0 <= count <= self._count:
            raise ValueError(f"cannot truncate {self.path} to {count} of {self._count} frames")
        self._count = count
        self._write_header()
        self._file.truncate(self.offset + count * self.frame_bytes)

    def sync(self) -> None:
        """Flush the file to stable storage (``fsync``)."""
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file (idempotent)."""
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> AppendableNpy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
