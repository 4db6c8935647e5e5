"""Image and fingerprint I/O: formats, alpha policy, metadata-free atomic writing."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from dippas import io
from dippas.errors import DippasInputError


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [None, 3])
def test_roundtrip(tmp_path, rng, suffix, dtype, channels):
    shape = (33, 47) if channels is None else (33, 47, channels)
    hi = np.iinfo(dtype).max
    a = rng.integers(0, hi + 1, size=shape, dtype=dtype)
    p = io.save_image(tmp_path / f"x{suffix}", a)
    b = io.load_image(p)
    assert b.dtype == dtype
    np.testing.assert_array_equal(a, b)


def test_rgba_alpha_dropped_with_warning(tmp_path, rng):
    a = rng.integers(0, 256, size=(40, 40, 4), dtype=np.uint8)
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    with pytest.warns(UserWarning, match="alpha"):
        b = io.load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(b, a[:, :, :3])
    a[:, :, 3] = 255
    Image.fromarray(a, "RGBA").save(tmp_path / "b.png")
    np.testing.assert_array_equal(io.load_image(tmp_path / "b.png"), a[:, :, :3])


def test_jpeg_not_rotated_by_exif(tmp_path, rng):
    a = rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    Image.fromarray(a).save(tmp_path / "r.jpg", exif=exif, quality=95)
    assert io.load_image(tmp_path / "r.jpg").shape == (40, 60, 3)


def _chunk_types(png_bytes: bytes) -> list[bytes]:
    pos, types = 8, []
    while pos < len(png_bytes):
        n = int.from_bytes(png_bytes[pos:pos + 4], "big")
        types.append(png_bytes[pos + 4:pos + 8])
        pos += 12 + n
    return types


def test_written_files_carry_no_metadata(tmp_path, dresden_dir):
    src = dresden_dir / "full" / "Nikon_D70_1_20543.JPG"
    raw = src.read_bytes()
    assert b"NIKON" in raw  # the source does carry camera metadata
    img = io.load_image(src)[:256, :256]
    png = io.save_image(tmp_path / "o.png", img).read_bytes()
    assert _chunk_types(png) == [b"IHDR", b"IDAT", b"IEND"]
    tif_path = io.save_image(tmp_path / "o.tif", img)
    import tifffile

    with tifffile.TiffFile(tif_path) as tf:
        names = {t.name for t in tf.pages[0].tags.values()}
    assert not names & {"Software", "ImageDescription", "DateTime", "Make", "Model", "ExifTag",
                        "GPSTag", "XMP", "InterColorProfile", "IPTCNAA"}
    for data in (png, tif_path.read_bytes()):
        assert b"NIKON" not in data.upper() and b"Exif" not in data


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def boom(tmp):
        with open(tmp, "wb") as f:
            f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        io.atomic_write(tmp_path / "out.png", boom)
    assert os.listdir(tmp_path) == []


def test_never_overwrite_input_or_existing(tmp_path, small_rgb):
    p = io.save_image(tmp_path / "in.png", small_rgb)
    with pytest.raises(DippasInputError, match="input"):
        io.save_image(p, small_rgb, inputs=[p], force=True)
    with pytest.raises(DippasInputError, match="already exists"):
        io.save_image(p, small_rgb)
    io.save_image(p, small_rgb, force=True)


def test_jpeg_output_needs_explicit_quality(tmp_path, small_rgb):
    with pytest.raises(DippasInputError, match="quality"):
        io.save_image(tmp_path / "o.jpg", small_rgb)
    p = io.save_image(tmp_path / "o.jpg", small_rgb, jpeg_quality=95)
    assert b"Exif" not in p.read_bytes()


@pytest.mark.parametrize("make", ["empty", "text", "truncated", "dir"])
def test_bad_image_files(tmp_path, dresden_dir, make):
    p = tmp_path / "bad.jpg"
    if make == "empty":
        p.write_bytes(b"")
    elif make == "text":
        p.write_text("this is not an image\n")
    elif make == "truncated":
        p.write_bytes((dresden_dir / "natural" / "Nikon_D70_1_20543.jpg").read_bytes()[:20000])
    else:
        p.mkdir()
    with pytest.raises(DippasInputError) as e:
        io.load_image(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_fingerprint_formats(tmp_path, rng):
    k = rng.normal(size=(20, 30)).astype(np.float32)
    for name in ("k.npy", "k.tif"):
        io.save_fingerprint(tmp_path / name, k)
        np.testing.assert_array_equal(io.load_fingerprint(tmp_path / name), k)
    import scipy.io

    scipy.io.savemat(tmp_path / "k.mat", {"K": k.astype(np.float64)})
    np.testing.assert_allclose(io.load_fingerprint(tmp_path / "k.mat"), k)
    scipy.io.savemat(tmp_path / "two.mat", {"A": k, "B": k})
    with pytest.raises(DippasInputError, match="exactly one"):
        io.load_fingerprint(tmp_path / "two.mat")


def test_fingerprint_nan_and_pickle_refused(tmp_path):
    k = np.zeros((8, 8), np.float32)
    k[1, 1] = np.nan
    np.save(tmp_path / "nan.npy", k)
    with pytest.raises(DippasInputError, match="NaN"):
        io.load_fingerprint(tmp_path / "nan.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DippasInputError):
        io.load_fingerprint(tmp_path / "obj.npy")
