"""Image and fingerprint files: reading, and metadata-free atomic writing.

Reading
-------
- JPEG, PNG and TIFF; 8- and 16-bit; gray, RGB and RGBA.
- Images are **never rotated by EXIF orientation**: the PRNU lives in sensor
  coordinates, and a rotated image would no longer line up with its
  camera's fingerprint.
- Alpha policy: the alpha channel of an RGBA (or gray+alpha) image is
  dropped. The PRNU lives in the colour channels; the anonymized output is
  written without alpha.
- Palette images are expanded to RGB; 1-bit images are refused.
- Metadata (EXIF, XMP, ICC, thumbnails) is never read into the result.
- Pixel cap: every reader (Pillow, pypng, tifffile, and the ``.npy`` and
  ``.mat`` fingerprint readers) checks the size the file's header claims
  before decoding, and refuses more than :func:`pixel_limit` pixels
  (height x width; default :data:`DEFAULT_MAX_PIXELS`, 200 Mpx, above any
  real camera) with a one-line :class:`DippasInputError`. Set the
  environment variable ``DIPPAS_MAX_PIXELS`` (or ``dippas --max-pixels N``)
  to change it. A decompression bomb is refused within a second and never
  allocated.
- A 16-bit colour PNG (read by pypng, since Pillow reduces it to 8 bits)
  whose compressed data holds less than its header claims is refused at
  zlib speed, in bounded memory, before any row is decoded; 16-bit gray PNG
  is read by Pillow.
- Anything a reader library raises on a damaged file becomes a
  :class:`DippasInputError`: a file is either an image or one line
  (``tests/test_reader_fuzz.py`` fuzzes every reader).

Writing
-------
- PNG (default) or TIFF with no metadata at all: no EXIF, XMP, IPTC, ICC
  profile, text chunks, software or date tags, and no thumbnails.
- Written atomically: to a temporary file in the target folder, then
  renamed. A failure leaves nothing behind. The temporary name is short
  (``.dippas-<12 hex of the target's name>-<random>.part<suffix>``), so any
  legal output name works; a writer holds a lock on it, and a file of that
  form left by a killed writer is deleted by the next write of the same
  target (:func:`sweep_stale_parts`).
- Outputs get the usual mode of a new file: ``0666`` minus the umask.
- An input is never overwritten; an existing output only with ``force``.
- Output folders are checked for writing (:func:`check_writable_folder`,
  called by :func:`check_output_path`) before any long work.

Fingerprints
------------
``.npy`` (read with ``allow_pickle=False``), float TIFF, and MATLAB ``.mat``
holding one 2-D numeric array.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .errors import DippasInputError, DippasWarning
from .validation import check_fingerprint

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
FINGERPRINT_SUFFIXES = (".npy", ".tif", ".tiff", ".mat")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

PathLike = str | os.PathLike

#: Default cap on the pixels (height x width) of any image or fingerprint read.
DEFAULT_MAX_PIXELS = 200_000_000
#: Environment variable that overrides :data:`DEFAULT_MAX_PIXELS`.
MAX_PIXELS_ENV = "DIPPAS_MAX_PIXELS"


def pixel_limit() -> int:
    """The pixel cap of every reader: ``$DIPPAS_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`.

    Raises
    ------
    DippasInputError
        When the environment variable is not a positive number.
    """
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 1 or value == float("inf"):
        raise DippasInputError(f"{MAX_PIXELS_ENV}={text!r}: expected a positive number of pixels")
    return int(value)


def check_pixels(shape: tuple[int, ...], source: PathLike, limit: int | None = None) -> None:
    """Refuse a header's claimed ``shape`` (``(H, W, ...)``) beyond the pixel cap, before decoding.

    Parameters
    ----------
    shape : tuple of int
        Height, width, and optionally more axes (planes count as pixels too
        when they are not colour samples, e.g. TIFF depth).
    source : path
        Named in the message.
    limit : int, optional
        Default :func:`pixel_limit`.

    Raises
    ------
    DippasInputError
        On a non-positive dimension, or more than ``limit`` pixels.
    """
    dims = [int(d) for d in shape]
    if len(dims) < 2 or any(d <= 0 for d in dims):
        raise DippasInputError(f"{source}: corrupt header (size {'x'.join(map(str, dims)) or 'none'})")
    limit = pixel_limit() if limit is None else int(limit)
    pixels = 1
    for d in dims:
        pixels *= d
    if pixels > limit:
        size = "x".join(str(d) for d in (dims[1], dims[0], *dims[2:]))
        raise DippasInputError(
            f"{source}: {size} is {pixels / 1e6:.0f} Mpx, over the {limit / 1e6:g} Mpx limit "
            f"(set {MAX_PIXELS_ENV} to raise it)")


def _check_readable(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise DippasInputError(f"{p}: no such file")
    if p.is_dir():
        raise DippasInputError(f"{p}: is a folder, expected a file")
    if p.stat().st_size == 0:
        raise DippasInputError(f"{p}: file is empty")
    return p


def _is_tiff(p: Path) -> bool:
    with open(p, "rb") as f:
        head = f.read(4)
    return head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _png_needs_pypng(p: Path) -> bool:
    """16-bit colour PNG (RGB, gray+alpha, RGBA): Pillow would reduce it to 8 bits."""
    with open(p, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE):
        return False
    bit_depth, colour_type = head[24], head[25]
    return bit_depth == 16 and colour_type in (2, 4, 6)


def _drop_alpha(arr: np.ndarray, source: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        alpha = arr[:, :, -1]
        full = np.iinfo(arr.dtype).max if np.issubdtype(arr.dtype, np.integer) else 1.0
        if np.any(alpha != full):
            warnings.warn(f"{source}: alpha channel is not opaque; it is dropped", DippasWarning,
                          stacklevel=3)
        arr = arr[:, :, :-1]
        if arr.shape[2] == 1:
            arr = arr[:, :, 0]
    return arr


_PNG_PLANES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_expected_bytes(width: int, height: int, planes: int, bit_depth: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines a PNG of this header decompresses to."""
    def rows(w: int, h: int) -> int:
        return 0 if w <= 0 or h <= 0 else h * (1 + (w * planes * bit_depth + 7) // 8)

    if not interlaced:
        return rows(width, height)
    return sum(rows(-(-(width - x0) // dx), -(-(height - y0) // dy)) for x0, y0, dx, dy in _ADAM7)


def _check_png_data(p: Path, expected: int) -> None:
    """Refuse a PNG whose image data holds less than its header claims, in bounded memory.

    The IDAT chunks are decompressed 1 MiB at a time and only counted, so a
    truncated or fake file is refused at zlib speed, before any decoding.
    """
    import struct
    import zlib

    inflate = zlib.decompressobj()
    total = 0
    with open(p, "rb") as f:
        f.seek(len(_PNG_SIGNATURE))
        while total < expected:
            head = f.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IEND":
                break
            if kind != b"IDAT":
                f.seek(length + 4, os.SEEK_CUR)
                continue
            data = f.read(length)
            f.seek(4, os.SEEK_CUR)  # CRC
            while data and total < expected:
                total += len(inflate.decompress(data, 1 << 20))
                data = inflate.unconsumed_tail
    if total < expected:
        raise DippasInputError(f"{p}: truncated PNG (its data holds {total / expected:.0%} "
                               "of the image its header claims)")


def _read_png16(p: Path, limit: int | None) -> np.ndarray:
    import png  # pypng: Pillow reduces 16-bit colour PNG to 8 bits

    try:
        reader = png.Reader(filename=str(p))
        reader.preamble()  # the header only: the size is checked before any row is decoded
        check_pixels((reader.height, reader.width), p, limit)
        planes = _PNG_PLANES.get(reader.color_type, 1)
        _check_png_data(p, _png_expected_bytes(reader.width, reader.height, planes,
                                               reader.bitdepth, bool(reader.interlace)))
        width, height, rows, info = reader.asDirect()
        planes = info["planes"]
        arr = np.empty((height, width * planes), dtype=np.uint16)  # pages are touched row by row
        n = 0
        for n, row in enumerate(rows, start=1):
            arr[n - 1] = row
        if n != height:
            raise DippasInputError(f"{p}: truncated PNG ({n} of {height} rows)")
    except DippasInputError:
        raise
    except Exception as exc:  # pypng raises its own error classes, and more on damaged data
        raise DippasInputError(f"{p}: not a readable PNG ({_reason(exc)})") from None
    arr = arr.reshape(height, width, planes)
    return arr[:, :, 0] if planes == 1 else arr


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _tiff_page_shape(page) -> tuple[int, ...]:
    """``(H, W)``, or ``(H, W, D)`` for a volume: the pixels a TIFF page claims."""
    depth = int(getattr(page, "imagedepth", 1) or 1)
    shape = (int(page.imagelength), int(page.imagewidth))
    return shape + ((depth,) if depth > 1 else ())


def _read_tiff_array(p: Path, limit: int | None) -> np.ndarray:
    """The first page of a TIFF, its claimed size checked before decoding."""
    import tifffile

    try:
        with tifffile.TiffFile(p) as tf:
            if not tf.pages:
                raise DippasInputError(f"{p}: TIFF without any image")
            page = tf.pages[0]
            check_pixels(_tiff_page_shape(page), p, limit)
            return page.asarray()
    except DippasInputError:
        raise
    except Exception as exc:  # tifffile and its codecs raise many kinds on damaged data
        raise DippasInputError(f"{p}: not a readable TIFF ({_reason(exc)})") from None


def _read_tiff(p: Path, limit: int | None) -> np.ndarray:
    arr = _read_tiff_array(p, limit)
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)
    return arr


_PIL_OPEN_LOCK = threading.Lock()


def _open_pillow(p: Path, limit: int | None):
    """``Image.open`` with the pixel cap of this module instead of Pillow's own.

    Pillow's decompression-bomb check (a warning beyond 89 Mpx, an error
    beyond 179 Mpx) is switched off for the header-only ``open`` and
    :func:`check_pixels` applies the one cap; Pillow's setting is restored
    at once.
    """
    from PIL import Image

    with _PIL_OPEN_LOCK:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            im = Image.open(p)
        finally:
            Image.MAX_IMAGE_PIXELS = previous
    try:
        w, h = im.size
        check_pixels((h, w), p, limit)
    except BaseException:
        im.close()
        raise
    return im


def _pillow_array(p: Path, im) -> np.ndarray:
    im.load()  # decode now, so truncation is caught here
    if im.mode == "1":
        raise DippasInputError(f"{p}: 1-bit images are not supported")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "CMYK":
        raise DippasInputError(f"{p}: CMYK images are not supported; convert to RGB")
    elif im.mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(im, dtype=np.uint16).copy()
    elif im.mode in ("I", "F"):
        raise DippasInputError(f"{p}: {im.mode}-mode (32-bit) images are not supported")
    elif im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")
    return np.asarray(im).copy()


def _read_pillow(p: Path, limit: int | None) -> np.ndarray:
    from PIL import UnidentifiedImageError

    try:
        with _open_pillow(p, limit) as im:
            return _pillow_array(p, im)
    except DippasInputError:
        raise
    except UnidentifiedImageError:
        raise DippasInputError(f"{p}: not an image file (or an unsupported format)") from None
    except OSError as exc:
        raise DippasInputError(f"{p}: corrupt or truncated image ({_reason(exc)})") from None
    except Exception as exc:  # Pillow's decoders raise many kinds on damaged data
        raise DippasInputError(f"{p}: corrupt image ({_reason(exc)})") from None


def load_image(path: PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as a NumPy array, without metadata and without rotation.

    Parameters
    ----------
    path : str or path-like
        JPEG, PNG or TIFF file.
    max_pixels : int, optional
        Refuse images with more pixels than this, from the header, before
        decoding (default :func:`pixel_limit`).

    Returns
    -------
    ndarray
        ``(H, W)`` or ``(H, W, 3)``, uint8 or uint16. Alpha is dropped
        (with a warning when it is not opaque).

    Raises
    ------
    DippasInputError
        On a missing, empty, corrupt, truncated, oversized or unsupported file.
    """
    p = _check_readable(path)
    limit = pixel_limit() if max_pixels is None else int(max_pixels)
    if _is_tiff(p):
        arr = _read_tiff(p, limit)
    elif _png_needs_pypng(p):
        arr = _read_png16(p, limit)
    else:
        arr = _read_pillow(p, limit)
    if arr.dtype not in (np.uint8, np.uint16):
        if np.issubdtype(arr.dtype, np.floating):
            raise DippasInputError(f"{p}: floating-point image files are not supported as photos")
        raise DippasInputError(f"{p}: unsupported sample type {arr.dtype}")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise DippasInputError(f"{p}: unsupported layout {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return _drop_alpha(arr, str(p))


def image_size(path: PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header only.

    Raises
    ------
    DippasInputError
        On an unreadable header, or a size over the pixel cap.
    """
    p = _check_readable(path)
    if _is_tiff(p):
        import tifffile

        try:
            with tifffile.TiffFile(p) as tf:
                shape = _tiff_page_shape(tf.pages[0])
        except Exception as exc:  # noqa: BLE001 - any header failure is a bad file
            raise DippasInputError(f"{p}: not a readable TIFF ({_reason(exc)})") from None
        check_pixels(shape, p)
        return shape[0], shape[1]
    from PIL import UnidentifiedImageError

    try:
        with _open_pillow(p, None) as im:
            w, h = im.size
    except DippasInputError:
        raise
    except UnidentifiedImageError:
        raise DippasInputError(f"{p}: not an image file (or an unsupported format)") from None
    except Exception as exc:  # noqa: BLE001 - any header failure is a bad file
        raise DippasInputError(f"{p}: unreadable image header ({_reason(exc)})") from None
    return h, w


def list_images(folder: PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    d = Path(folder)
    if not d.is_dir():
        raise DippasInputError(f"{d}: not a folder")
    files = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DippasInputError(f"{d}: no JPEG, PNG or TIFF images in this folder")
    return files


# ---------------------------------------------------------------- writing

def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name the same file (resolving links)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()


def check_writable_folder(folder: PathLike) -> Path:
    """Refuse a folder that cannot be written (or created), before any work.

    The nearest existing folder on the way to ``folder`` is probed by
    creating and deleting an empty hidden file, which is what counts (file
    modes lie for root, read-only mounts and ``/proc``). Folders that do
    not exist yet are not created here.

    Parameters
    ----------
    folder : path

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DippasInputError
        When ``folder`` or one of its parents is a file, or the nearest
        existing one cannot be written.
    """
    d = Path(folder)
    probe = d.absolute()
    try:
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        if not probe.is_dir():
            raise DippasInputError(f"{d}: {probe} is not a folder")
        fd, tmp = tempfile.mkstemp(prefix=".dippas-probe-", dir=probe)
    except OSError as exc:
        # ENOENT from creating a file in an existing folder: a pseudo file system such as /proc
        reason = ("no new files allowed there" if exc.errno == errno.ENOENT
                  else exc.strerror or _reason(exc))
        raise DippasInputError(f"{d}: cannot write there ({reason})") from None
    os.close(fd)
    os.unlink(tmp)
    return d


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):
        return 255


def check_output_path(out: PathLike, inputs: Iterable[PathLike] = (), force: bool = False) -> Path:
    """Refuse to write over an input, over an existing file without ``force``, or where it cannot.

    Raises
    ------
    DippasInputError
        If ``out`` is one of ``inputs``, exists without ``force``, is a
        folder, its name is too long, or its parent folder does not exist
        or cannot be written (:func:`check_writable_folder`).
    """
    o = Path(out)
    for i in inputs:
        if i is not None and same_file(o, i):
            raise DippasInputError(f"{o}: refusing to overwrite an input file")
    if len(os.fsencode(o.name)) > _name_max(o.parent):
        raise DippasInputError(f"{o.name[:40]}...: file name longer than {_name_max(o.parent)} bytes")
    try:
        is_dir, exists, parent_exists = o.is_dir(), o.exists(), o.parent.exists()
    except OSError as exc:
        raise DippasInputError(f"{o}: unusable output path ({exc.strerror or _reason(exc)})") from None
    if is_dir:
        raise DippasInputError(f"{o}: is a folder, expected a file name")
    if exists and not force:
        raise DippasInputError(f"{o}: already exists (use --force to overwrite)")
    if not parent_exists:
        raise DippasInputError(f"{o.parent}: output folder does not exist")
    check_writable_folder(o.parent)
    return o


#: Start of every temporary file name of :func:`atomic_write`.
PART_PREFIX = ".dippas-"
#: Marker of the temporary files of :func:`atomic_write` (before the target's suffix).
PART_MARK = ".part"
_MAX_KEPT_SUFFIX = 16


def _part_stem(target: Path) -> str:
    """``.dippas-<12 hex>-``: the short start of the temporary names of ``target``."""
    digest = hashlib.sha1(os.fsencode(target.name)).hexdigest()[:12]
    return f"{PART_PREFIX}{digest}-"


def _part_suffix(target: Path) -> str:
    suffix = target.suffix if len(target.suffix) <= _MAX_KEPT_SUFFIX else ""
    return PART_MARK + suffix


def lock_file(fd: int, blocking: bool) -> bool:
    """An exclusive ``flock`` on ``fd``; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: open files cannot be deleted anyway
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def sweep_stale_parts(target: PathLike) -> list[Path]:
    """Delete the temporary files that killed writes of ``target`` left beside it.

    A temporary file is stale when no process holds its lock: every live
    :func:`atomic_write` holds one on its temporary file until the rename,
    so files of writes still running are left alone.

    Returns
    -------
    list of Path
        The files deleted.
    """
    t = Path(target)
    removed: list[Path] = []
    try:
        candidates = list(t.parent.glob(f"{_part_stem(t)}*{PART_MARK}*"))
    except OSError:
        return removed
    for part in candidates:
        try:
            fd = os.open(part, os.O_RDONLY)
        except OSError:
            continue
        try:
            if lock_file(fd, blocking=False):
                part.unlink()
                removed.append(part)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # os.umask can only be read by setting it: keep the window short
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def atomic_write(path: PathLike, writer: Callable[[str], None]) -> Path:
    """Write a file atomically: ``writer(tmp_path)`` then rename over ``path``.

    The temporary file lives in the target folder, so the rename is atomic
    on POSIX; its name is short whatever the target's (see the module doc),
    and this process holds a lock on it until the rename. Stale temporary
    files of the same target are swept first. The file gets mode ``0666``
    minus the umask, like any new file. On any error the temporary file is
    removed and ``path`` is left as it was.
    """
    p = Path(path)
    sweep_stale_parts(p)
    fd, tmp = tempfile.mkstemp(prefix=_part_stem(p), suffix=_part_suffix(p), dir=p.parent)
    try:
        lock_file(fd, blocking=True)
        writer(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.close(fd)
    return p


def _image_for_writing(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise DippasInputError(f"cannot write an image of shape {arr.shape}; expected (H, W) or (H, W, 3)")
    if arr.dtype not in (np.uint8, np.uint16):
        raise DippasInputError(f"cannot write dtype {arr.dtype}; convert to uint8 or uint16 first")
    return np.ascontiguousarray(arr)


def _write_png(tmp: str, arr: np.ndarray) -> None:
    if arr.dtype == np.uint16:
        import png

        planes = 1 if arr.ndim == 2 else 3
        writer = png.Writer(width=arr.shape[1], height=arr.shape[0], bitdepth=16,
                            greyscale=planes == 1)
        with open(tmp, "wb") as f:
            writer.write(f, arr.reshape(arr.shape[0], -1))
        return
    from PIL import Image

    # A fresh Image from an array carries no info dict: only IHDR, IDAT and IEND are written.
    Image.fromarray(arr).save(tmp, format="PNG", optimize=False)


def _write_tiff(tmp: str, arr: np.ndarray) -> None:
    import tifffile

    tifffile.imwrite(tmp, arr, photometric="rgb" if arr.ndim == 3 else "minisblack",
                     metadata=None, software=False, description=None, datetime=None)


def _write_jpeg(tmp: str, arr: np.ndarray, quality: int) -> None:
    from PIL import Image

    if arr.dtype != np.uint8:
        raise DippasInputError("JPEG output needs 8-bit images")
    Image.fromarray(arr).save(tmp, format="JPEG", quality=int(quality), exif=b"",
                              icc_profile=None, optimize=False, subsampling=0)


def output_format(path: PathLike, fmt: str | None = None, jpeg_quality: int | None = None) -> str:
    """The format an image output is written in: ``'png'``, ``'tiff'`` or ``'jpeg'``.

    The one rule of output formats, checked before any work: from ``fmt`` or
    the suffix; JPEG only with an explicit quality 1-100.

    Raises
    ------
    DippasInputError
        On an unknown suffix or format, or JPEG without a valid quality.
    """
    kind = (fmt or Path(path).suffix.lstrip(".")).lower()
    kind = {"tif": "tiff", "jpg": "jpeg"}.get(kind, kind)
    if kind == "jpeg":
        if jpeg_quality is None:
            raise DippasInputError(
                "JPEG output needs an explicit quality (--jpeg-quality); "
                "recompression changes what the anonymization guarantees"
            )
        if not 1 <= int(jpeg_quality) <= 100:
            raise DippasInputError(f"JPEG quality must be 1-100, got {jpeg_quality}")
    elif kind not in ("png", "tiff"):
        shown = repr(kind) if kind else "(none)"
        raise DippasInputError(f"{path}: unknown output format {shown}; use .png or .tif")
    return kind


def save_image(path: PathLike, image: np.ndarray, *, inputs: Iterable[PathLike] = (),
               force: bool = False, fmt: str | None = None, jpeg_quality: int | None = None) -> Path:
    """Write an image with no metadata, atomically, never over an input.

    Parameters
    ----------
    path : str or path-like
        Output file. The format comes from ``fmt`` or the suffix
        (``.png``, ``.tif``/``.tiff``; ``.jpg`` only with ``jpeg_quality``).
    image : ndarray
        ``(H, W)`` or ``(H, W, 3)``, uint8 or uint16.
    inputs : iterable of path, optional
        Files that must not be overwritten.
    force : bool, optional
        Allow replacing an existing output.
    fmt : {'png', 'tiff', 'jpeg'}, optional
    jpeg_quality : int, optional
        Required for JPEG output: recompression changes the noise the
        anonymization guarantees are about, so it is never the default.

    Returns
    -------
    pathlib.Path
    """
    arr = _image_for_writing(image)
    kind = output_format(path, fmt, jpeg_quality)
    out = check_output_path(path, inputs, force)
    if kind == "png":
        writer = lambda tmp: _write_png(tmp, arr)  # noqa: E731
    elif kind == "tiff":
        writer = lambda tmp: _write_tiff(tmp, arr)  # noqa: E731
    else:
        writer = lambda tmp: _write_jpeg(tmp, arr, int(jpeg_quality))  # noqa: E731
    return atomic_write(out, writer)


# ---------------------------------------------------------------- fingerprints

def load_fingerprint(path: PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read a fingerprint K from ``.npy``, float TIFF or MATLAB ``.mat``.

    Parameters
    ----------
    path : str or path-like
    max_pixels : int, optional
        Refuse arrays with more elements than this, from the file's header,
        before reading the data (default :func:`pixel_limit`).

    Returns
    -------
    ndarray, shape (H, W), float32

    Raises
    ------
    DippasInputError
        On an unreadable or oversized file, a non 2-D array, NaN or inf
        values, or a ``.mat`` file that does not hold exactly one 2-D
        numeric array.
    """
    p = _check_readable(path)
    limit = pixel_limit() if max_pixels is None else int(max_pixels)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = _load_npy(p, limit)
        elif suffix in (".tif", ".tiff"):
            arr = _read_tiff_array(p, limit)
        elif suffix == ".mat":
            arr = _load_mat_array(p, limit)
        else:
            raise DippasInputError(f"{p}: unknown fingerprint format; use .npy, .tif or .mat")
    except DippasInputError:
        raise
    except Exception as exc:
        raise DippasInputError(f"{p}: not a readable fingerprint file ({_reason(exc)})") from None
    return check_fingerprint(arr, name=str(p))


def _load_npy(p: Path, limit: int) -> np.ndarray:
    """A ``.npy`` array, its header's shape and the file's length checked before reading."""
    fmt = np.lib.format
    with open(p, "rb") as f:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise DippasInputError(f"{p}: unsupported .npy version {version}")
        data_offset = f.tell()
    if dtype.hasobject:
        raise DippasInputError(f"{p}: .npy holds Python objects; only numeric arrays are read")
    dims = tuple(int(d) for d in shape)
    if all(d > 0 for d in dims):  # an empty array is refused by check_fingerprint
        check_pixels(dims if len(dims) >= 2 else (1,) + (dims or (1,)), p, limit)
    needed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if p.stat().st_size - data_offset < needed:
        raise DippasInputError(f"{p}: truncated .npy file (shape {tuple(shape)})")
    return np.load(p, allow_pickle=False)


def _load_mat_array(p: Path, limit: int) -> np.ndarray:
    import scipy.io

    try:
        variables = scipy.io.whosmat(p)
        for _name, shape, _cls in variables:
            if len(shape) >= 2 and all(int(d) > 0 for d in shape):
                check_pixels(tuple(shape), p, limit)
        data = scipy.io.loadmat(p)
    except NotImplementedError:
        raise DippasInputError(f"{p}: MATLAB v7.3 (HDF5) files are not supported; save with -v7") from None
    arrays = [v for k, v in data.items()
              if not k.startswith("__") and isinstance(v, np.ndarray)
              and v.ndim == 2 and np.issubdtype(v.dtype, np.number) and v.size > 1]
    if len(arrays) != 1:
        raise DippasInputError(f"{p}: expected exactly one 2-D numeric array, found {len(arrays)}")
    return arrays[0]


#: Suffixes :func:`save_fingerprint` writes.
FINGERPRINT_OUTPUT_SUFFIXES = (".npy", ".tif", ".tiff")


def check_fingerprint_output(path: PathLike, inputs: Iterable[PathLike] = (),
                             force: bool = False) -> Path:
    """:func:`check_output_path`, and a suffix :func:`save_fingerprint` writes; before any work.

    Raises
    ------
    DippasInputError
        As :func:`check_output_path`, or on a suffix other than ``.npy``, ``.tif``, ``.tiff``.
    """
    out = check_output_path(path, inputs, force)
    if out.suffix.lower() not in FINGERPRINT_OUTPUT_SUFFIXES:
        raise DippasInputError(f"{out}: fingerprints and residuals are written as .npy or .tif")
    return out


def save_fingerprint(path: PathLike, fingerprint: np.ndarray, *, force: bool = False,
                     inputs: Iterable[PathLike] = ()) -> Path:
    """Write a fingerprint as ``.npy`` or float32 TIFF, atomically, with no metadata."""
    k = check_fingerprint(fingerprint)
    out = check_fingerprint_output(path, inputs, force)
    suffix = out.suffix.lower()
    if suffix == ".npy":
        def writer(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, k, allow_pickle=False)
    elif suffix in (".tif", ".tiff"):
        def writer(tmp: str) -> None:
            import tifffile

            tifffile.imwrite(tmp, k, metadata=None, software=False, description=None)
    return atomic_write(out, writer)
