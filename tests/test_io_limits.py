"""Readers refuse decompression bombs from the header; writers check the folder first, use short
temporary names, respect the umask and sweep what a killed write left."""

from __future__ import annotations

import io as pyio
import os
import warnings

import numpy as np
import pytest
from _craft import jpeg_with_size, npy_bomb, png_bomb, tiff_bomb
from PIL import Image

from dippas import io
from dippas.errors import DippasInputError, DippasWarning


def _rss_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.mark.parametrize("make", [
    pytest.param(lambda d: png_bomb(d / "b16.png", 15000, 15000, 16, 2), id="png16-pypng"),
    pytest.param(lambda d: png_bomb(d / "b8.png", 20000, 20000, 8, 2), id="png8-pillow"),
    pytest.param(lambda d: tiff_bomb(d / "b.tif", 20000, 20000), id="tiff-zlib"),
])
def test_image_bombs_refused_from_the_header(tmp_path, make):
    path = make(tmp_path)
    assert path.stat().st_size < 1_000_000
    before = _rss_kib()
    with pytest.raises(DippasInputError, match="Mpx, over the 200 Mpx limit"):
        io.load_image(path)
    assert _rss_kib() - before < 200_000  # nothing near the claimed size was allocated
    with pytest.raises(DippasInputError, match="limit"):
        io.image_size(path)


def test_png16_claiming_more_than_its_data_refused_quickly(tmp_path):
    """The issue's 280 KB 16-bit PNG claiming 12000x12000: under the cap, but its data is short."""
    path = png_bomb(tmp_path / "c16.png", 12000, 12000, 16, 2, rows=4000)
    assert path.stat().st_size < 400_000
    before = _rss_kib()
    with pytest.raises(DippasInputError, match=r"truncated PNG \(its data holds 33%"):
        io.load_image(path)
    assert _rss_kib() - before < 200_000


def test_jpeg_bomb_refused(tmp_path, small_rgb):
    buf = pyio.BytesIO()
    Image.fromarray(small_rgb).save(buf, format="JPEG")
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg_with_size(buf.getvalue(), 60000, 60000))
    with pytest.raises(DippasInputError, match="over the"):
        io.load_image(path)


def test_pixel_cap_is_configurable(tmp_path, small_rgb, monkeypatch):
    path = tmp_path / "a.png"
    Image.fromarray(small_rgb).save(path)
    monkeypatch.setenv(io.MAX_PIXELS_ENV, "1000")
    with pytest.raises(DippasInputError, match="64x64 is 0 Mpx, over the 0.001 Mpx limit"):
        io.load_image(path)
    assert io.load_image(path, max_pixels=64 * 64).shape == (64, 64, 3)
    monkeypatch.setenv(io.MAX_PIXELS_ENV, "lots")
    with pytest.raises(DippasInputError, match="DIPPAS_MAX_PIXELS"):
        io.load_image(path)
    monkeypatch.delenv(io.MAX_PIXELS_ENV)
    assert io.pixel_limit() == io.DEFAULT_MAX_PIXELS == 200_000_000


def test_pillow_limit_above_its_own_default_and_restored(tmp_path, monkeypatch):
    """The one cap rules: Pillow's lower bomb limit is not applied on top, and is left as it was."""
    from PIL import Image as PILImage

    path = tmp_path / "wide.png"
    PILImage.fromarray(np.zeros((4, 5000), np.uint8)).save(path)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)  # Pillow would raise beyond 2000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert io.load_image(path).shape == (4, 5000)
    assert PILImage.MAX_IMAGE_PIXELS == 1000


def test_fingerprint_bombs_refused(tmp_path, monkeypatch):
    import scipy.io

    with pytest.raises(DippasInputError, match="over the 200 Mpx limit"):
        io.load_fingerprint(npy_bomb(tmp_path / "k.npy", (50000, 50000)))
    with pytest.raises(DippasInputError, match="truncated .npy"):
        io.load_fingerprint(npy_bomb(tmp_path / "t.npy", (100, 100)))
    with pytest.raises(DippasInputError, match="over the 200 Mpx limit"):
        io.load_fingerprint(tiff_bomb(tmp_path / "k.tif", 20000, 20000))
    scipy.io.savemat(tmp_path / "k.mat", {"K": np.ones((20, 20))})
    monkeypatch.setenv(io.MAX_PIXELS_ENV, "100")
    with pytest.raises(DippasInputError, match="20x20 is 0 Mpx, over"):
        io.load_fingerprint(tmp_path / "k.mat")


def test_alpha_warning_is_a_dippas_warning(tmp_path, rng):
    rgba = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    with pytest.warns(DippasWarning, match="alpha channel is not opaque"):
        io.load_image(tmp_path / "a.png")


# ------------------------------------------------------------------ writing

def test_unwritable_folder_refused_before_work(unwritable_dir):
    with pytest.raises(DippasInputError, match="cannot write there"):
        io.check_output_path(unwritable_dir / "x.png")
    with pytest.raises(DippasInputError, match="cannot write there"):
        io.check_writable_folder(unwritable_dir / "new" / "deeper")


def test_writable_folder_not_created_and_file_parent_refused(tmp_path):
    target = tmp_path / "a" / "b"
    assert io.check_writable_folder(target) == target
    assert not (tmp_path / "a").exists()
    assert list(tmp_path.iterdir()) == []  # the probe is gone
    (tmp_path / "f").write_text("x")
    with pytest.raises(DippasInputError, match="is not a folder"):
        io.check_writable_folder(tmp_path / "f" / "sub")


def test_long_legal_name_written_and_too_long_refused(tmp_path, small_rgb):
    name = "n" * 248 + ".png"  # 252 characters: legal
    out = io.save_image(tmp_path / name, small_rgb)
    assert out.name == name and np.array_equal(io.load_image(out), small_rgb)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    with pytest.raises(DippasInputError, match="longer than 255 bytes"):
        io.check_output_path(tmp_path / ("m" * 300 + ".png"))


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_write_respects_umask(tmp_path, small_rgb, mask):
    old = os.umask(mask)
    try:
        out = io.save_image(tmp_path / "u.png", small_rgb)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_stale_part_swept_by_the_next_write(tmp_path, small_rgb):
    target = tmp_path / "photo.png"
    stale = tmp_path / f"{io._part_stem(target)}abcd1234{io._part_suffix(target)}"
    stale.write_bytes(b"half a file")
    other = tmp_path / f"{io._part_stem(tmp_path / 'other.png')}abcd1234.part.png"
    other.write_bytes(b"another target's")
    io.save_image(target, small_rgb)
    assert not stale.exists()
    assert other.exists()  # only the parts of the target written are swept


def test_part_of_a_live_write_is_not_swept(tmp_path):
    import fcntl

    target = tmp_path / "photo.png"
    live = tmp_path / f"{io._part_stem(target)}live0000{io._part_suffix(target)}"
    live.write_bytes(b"being written")
    with open(live, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        assert io.sweep_stale_parts(target) == []
        assert live.exists()
    assert io.sweep_stale_parts(target) == [live]


def test_temporary_name_is_short(tmp_path):
    seen = []

    def writer(tmp: str) -> None:
        seen.append(os.path.basename(tmp))
        with open(tmp, "wb") as f:
            f.write(b"x")

    io.atomic_write(tmp_path / ("z" * 250 + ".json"), writer)
    assert len(seen[0]) < 50 and seen[0].startswith(".dippas-") and ".part" in seen[0]
