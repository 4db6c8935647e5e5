"""Property-based fuzzing of every reader: a damaged file is an image or one DippasInputError.

Truncated, bit-flipped and header-mutated PNG (8- and 16-bit), JPEG, TIFF
(raw and deflate), ``.npy`` and ``.mat`` bytes. Memory stays bounded: the
readers are called with a 4 Mpx cap, checked from the header before decoding.
"""

from __future__ import annotations

import io as pyio
import re
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dippas.errors import DippasInputError  # noqa: E402
from dippas.io import load_fingerprint, load_image  # noqa: E402

CAP = 4_000_000
EXAMPLES = 120
KW = {"max_pixels": CAP}


def _seeds() -> dict[str, tuple[str, bytes]]:
    import png
    import scipy.io
    import tifffile
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    out = {}

    def pil(fmt: str, arr, **kw) -> bytes:
        buf = pyio.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt, **kw)
        return buf.getvalue()

    out["png8"] = (".png", pil("PNG", rgb))
    out["png-palette"] = (".png", _palette_png(rgb))
    buf = pyio.BytesIO()
    png.Writer(20, 24, bitdepth=16, greyscale=False).write(
        buf, (rgb.astype(np.uint16) * 257).reshape(24, -1))
    out["png16-rgb"] = (".png", buf.getvalue())
    buf = pyio.BytesIO()
    png.Writer(20, 24, bitdepth=16, greyscale=True).write(buf, rgb[:, :, 0].astype(np.uint16) * 257)
    out["png16-gray"] = (".png", buf.getvalue())
    out["jpeg"] = (".jpg", pil("JPEG", rgb, quality=90))
    out["jpeg-progressive"] = (".jpg", pil("JPEG", rgb, quality=80, progressive=True))
    for name, comp in (("tiff", None), ("tiff-zlib", "zlib")):
        buf = pyio.BytesIO()
        tifffile.imwrite(buf, rgb, photometric="rgb", compression=comp)
        out[name] = (".tif", buf.getvalue())
    k = rng.normal(0, 0.02, (24, 20)).astype(np.float32)
    buf = pyio.BytesIO()
    np.save(buf, k)
    out["npy"] = (".npy", buf.getvalue())
    buf = pyio.BytesIO()
    scipy.io.savemat(buf, {"K": k.astype(np.float64)})
    out["mat"] = (".mat", buf.getvalue())
    buf = pyio.BytesIO()
    scipy.io.savemat(buf, {"K": k.astype(np.float64)}, do_compression=True)
    out["mat-zlib"] = (".mat", buf.getvalue())
    buf = pyio.BytesIO()
    tifffile.imwrite(buf, k)
    out["tiff-float"] = (".tiff", buf.getvalue())
    return out


def _palette_png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = pyio.BytesIO()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(buf, "PNG")
    return buf.getvalue()


SEEDS = _seeds()
FINGERPRINT_SUFFIXES = {".npy", ".mat", ".tiff"}


def _size_fields(data: bytes) -> list[tuple[int, int, str]]:
    """Where the header stores the seeds' sides (20, 24) as 2- or 4-byte integers."""
    found = []
    for width in (2, 4):
        for order in ("big", "little"):
            for side in (20, 24):
                enc = side.to_bytes(width, order)
                found += [(m.start(), width, order) for m in re.finditer(re.escape(enc), data[:512])]
    return found


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """Truncated, bit-flipped, header-overwritten, size-inflated, or a mix of those."""
    b = bytearray(data)
    kind = draw(st.sampled_from(["truncate", "flip", "header", "size", "digits", "mix"]))
    if kind == "size":  # a size field of the header (where the seed stores 20 or 24) made large
        fields = _size_fields(data)
        if fields:
            start, width, order = draw(st.sampled_from(fields))
            value = draw(st.integers(1 << 12, (1 << (8 * width)) - 1))
            b[start:start + width] = value.to_bytes(width, order)
    if kind == "digits":  # .npy and .mat text headers: a number made huge
        runs = [m for m in re.finditer(rb"\d+", bytes(b[:256]))]
        if runs:
            m = draw(st.sampled_from(runs))
            b[m.start():m.end()] = str(draw(st.integers(10 ** 4, 10 ** 9))).encode()
    if kind in ("flip", "mix"):
        for pos in draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=8)):
            b[pos] ^= 1 << draw(st.integers(0, 7))
    if kind in ("header", "mix"):
        start = draw(st.integers(0, min(len(b) - 1, 96)))
        chunk = draw(st.binary(min_size=1, max_size=16))
        b[start:start + len(chunk)] = chunk
    if kind in ("truncate", "mix"):
        b = b[:draw(st.integers(0, len(b)))]
    return bytes(b)


def _read(path, suffix: str):
    if suffix in FINGERPRINT_SUFFIXES:
        return load_fingerprint(path, **KW)
    return load_image(path, **KW)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_seed_files_are_read(seed, workdir):
    suffix, data = SEEDS[seed]
    path = workdir / f"seed-{seed}{suffix}"
    path.write_bytes(data)
    assert isinstance(_read(path, suffix), np.ndarray)


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_damaged_file_is_an_image_or_one_line(seed, workdir):
    suffix, data = SEEDS[seed]
    path = workdir / f"fuzz-{seed}{suffix}"

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(damaged(data))
    def check(blob: bytes) -> None:
        path.write_bytes(blob)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = _read(path, suffix)
            except DippasInputError as exc:
                assert str(exc) and "\n" not in str(exc)
                return
        assert isinstance(result, np.ndarray) and result.size <= CAP * 4
        assert result.dtype in (np.uint8, np.uint16, np.float32)

    check()
