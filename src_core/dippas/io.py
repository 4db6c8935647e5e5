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

Writing
-------
- PNG (default) or TIFF with no metadata at all: no EXIF, XMP, IPTC, ICC
  profile, text chunks, software or date tags, and no thumbnails.
- Written atomically: to a temporary file in the target folder, then
  renamed. A failure leaves nothing behind.
- An input is never overwritten; an existing output only with ``force``.

Fingerprints
------------
``.npy`` (read with ``allow_pickle=False``), float TIFF, and MATLAB ``.mat``
holding one 2-D numeric array.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .errors import DippasInputError
from .validation import check_fingerprint

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
FINGERPRINT_SUFFIXES = (".npy", ".tif", ".tiff", ".mat")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

PathLike = str | os.PathLike


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


def _png_bit_depth(p: Path) -> int | None:
    with open(p, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE):
        return None
    return head[24]


def _drop_alpha(arr: np.ndarray, source: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        alpha = arr[:, :, -1]
        full = np.iinfo(arr.dtype).max if np.issubdtype(arr.dtype, np.integer) else 1.0
        if np.any(alpha != full):
            warnings.warn(f"{source}: alpha channel is not opaque; it is dropped", stacklevel=3)
        arr = arr[:, :, :-1]
        if arr.shape[2] == 1:
            arr = arr[:, :, 0]
    return arr


def _read_png16(p: Path) -> np.ndarray:
    import png  # pypng: Pillow cannot read 16-bit colour PNG

    try:
        width, height, rows, info = png.Reader(filename=str(p)).asDirect()
        data = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows])
    except Exception as exc:  # pypng raises its own error classes
        raise DippasInputError(f"{p}: not a readable PNG ({exc})") from None
    planes = info["planes"]
    arr = data.reshape(height, width, planes)
    return arr[:, :, 0] if planes == 1 else arr


def _read_tiff(p: Path) -> np.ndarray:
    import tifffile

    try:
        arr = tifffile.imread(p, key=0)
    except Exception as exc:
        raise DippasInputError(f"{p}: not a readable TIFF ({exc})") from None
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)
    return arr


def _read_pillow(p: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
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
    except UnidentifiedImageError:
        raise DippasInputError(f"{p}: not an image file (or an unsupported format)") from None
    except OSError as exc:
        raise DippasInputError(f"{p}: corrupt or truncated image ({exc})") from None
    except (SyntaxError, ValueError) as exc:
        if isinstance(exc, DippasInputError):
            raise
        raise DippasInputError(f"{p}: corrupt image ({exc})") from None


def load_image(path: PathLike) -> np.ndarray:
    """Read an image file as a NumPy array, without metadata and without rotation.

    Parameters
    ----------
    path : str or path-like
        JPEG, PNG or TIFF file.

    Returns
    -------
    ndarray
        ``(H, W)`` or ``(H, W, 3)``, uint8 or uint16. Alpha is dropped
        (with a warning when it is not opaque).

    Raises
    ------
    DippasInputError
        On a missing, empty, corrupt, truncated or unsupported file.
    """
    p = _check_readable(path)
    if _is_tiff(p):
        arr = _read_tiff(p)
    elif (_png_bit_depth(p) or 8) == 16:
        arr = _read_png16(p)
    else:
        arr = _read_pillow(p)
    if arr.dtype not in (np.uint8, np.uint16):
        if np.issubdtype(arr.dtype, np.floating):
            raise DippasInputError(f"{p}: floating-point image files are not supported as photos")
        raise DippasInputError(f"{p}: unsupported sample type {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4):
        raise DippasInputError(f"{p}: unsupported layout {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return _drop_alpha(arr, str(p))


def image_size(path: PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header only."""
    p = _check_readable(path)
    if _is_tiff(p):
        import tifffile

        with tifffile.TiffFile(p) as tf:
            shape = tf.pages[0].shape
        return (shape[0], shape[1]) if len(shape) == 2 or shape[-1] in (3, 4) else (shape[1], shape[2])
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError):
        raise DippasInputError(f"{p}: not an image file (or an unsupported format)") from None
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


def check_output_path(out: PathLike, inputs: Iterable[PathLike] = (), force: bool = False) -> Path:
    """Refuse to write over an input, or over an existing file without ``force``.

    Raises
    ------
    DippasInputError
        If ``out`` is one of ``inputs``, exists without ``force``, is a
        folder, or its parent folder does not exist.
    """
    o = Path(out)
    for i in inputs:
        if i is not None and same_file(o, i):
            raise DippasInputError(f"{o}: refusing to overwrite an input file")
    if o.is_dir():
        raise DippasInputError(f"{o}: is a folder, expected a file name")
    if o.exists() and not force:
        raise DippasInputError(f"{o}: already exists (use --force to overwrite)")
    if not o.parent.exists():
        raise DippasInputError(f"{o.parent}: output folder does not exist")
    return o


def atomic_write(path: PathLike, writer: Callable[[str], None]) -> Path:
    """Write a file atomically: ``writer(tmp_path)`` then rename over ``path``.

    The temporary file lives in the target folder, so the rename is atomic
    on POSIX. On any error the temporary file is removed and ``path`` is
    left as it was.
    """
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part" + p.suffix, dir=p.parent)
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
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

def load_fingerprint(path: PathLike) -> np.ndarray:
    """Read a fingerprint K from ``.npy``, float TIFF or MATLAB ``.mat``.

    Returns
    -------
    ndarray, shape (H, W), float32

    Raises
    ------
    DippasInputError
        On an unreadable file, a non 2-D array, NaN or inf values, or a
        ``.mat`` file that does not hold exactly one 2-D numeric array.
    """
    p = _check_readable(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(p)
        elif suffix == ".mat":
            arr = _load_mat_array(p)
        else:
            raise DippasInputError(f"{p}: unknown fingerprint format; use .npy, .tif or .mat")
    except DippasInputError:
        raise
    except Exception as exc:
        raise DippasInputError(f"{p}: not a readable fingerprint file ({exc})") from None
    return check_fingerprint(arr, name=str(p))


def _load_mat_array(p: Path) -> np.ndarray:
    import scipy.io

    try:
        data = scipy.io.loadmat(p)
    except NotImplementedError:
        raise DippasInputError(f"{p}: MATLAB v7.3 (HDF5) files are not supported; save with -v7") from None
    arrays = [v for k, v in data.items()
              if not k.startswith("__") and isinstance(v, np.ndarray)
              and v.ndim == 2 and np.issubdtype(v.dtype, np.number) and v.size > 1]
    if len(arrays) != 1:
        raise DippasInputError(f"{p}: expected exactly one 2-D numeric array, found {len(arrays)}")
    return arrays[0]


def save_fingerprint(path: PathLike, fingerprint: np.ndarray, *, force: bool = False,
                     inputs: Iterable[PathLike] = ()) -> Path:
    """Write a fingerprint as ``.npy`` or float32 TIFF, atomically, with no metadata."""
    k = check_fingerprint(fingerprint)
    out = check_output_path(path, inputs, force)
    suffix = out.suffix.lower()
    if suffix == ".npy":
        def writer(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, k, allow_pickle=False)
    elif suffix in (".tif", ".tiff"):
        def writer(tmp: str) -> None:
            import tifffile

            tifffile.imwrite(tmp, k, metadata=None, software=False, description=None)
    else:
        raise DippasInputError(f"{out}: fingerprints are written as .npy or .tif")
    return atomic_write(out, writer)
