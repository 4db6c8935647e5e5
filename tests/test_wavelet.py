"""The Numba db4 transforms against PyWavelets, and the residual built on them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import pywt
from scipy import ndimage

import dippas
from dippas import threads, wavelet
from dippas.residual import (
    GRAY_WEIGHTS,
    rgb2gray,
    wiener_adaptive,
    zero_mean_total,
)

SHAPES = [(33, 47), (64, 64), (100, 37), (512, 512), (47, 33), (9, 5), (1, 16)]
LEVELS = [1, 2, 3, 4]


def _image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A float32 test image in 0-255 units with smooth structure and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    base = 128 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0)
    return (base + rng.normal(0, 8, shape)).astype(np.float32)


def _pywt_wavedec2(x: np.ndarray, levels: int) -> list:
    with warnings.catch_warnings():  # "level too high" for the small shapes
        warnings.simplefilter("ignore", UserWarning)
        return pywt.wavedec2(x, "db4", mode="symmetric", level=levels)


def _assert_close32(ours: np.ndarray, ref: np.ndarray) -> None:
    """Equal shapes and dtype, values equal to float32 rounding."""
    assert ours.shape == ref.shape
    assert ours.dtype == np.float32
    scale = max(float(np.abs(ref).max()), 1.0)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=8 * np.finfo(np.float32).eps * scale)


def _assert_coeffs_close(ours: list, ref: list) -> None:
    assert len(ours) == len(ref)
    _assert_close32(ours[0], ref[0])
    for lo, lr in zip(ours[1:], ref[1:], strict=True):
        assert isinstance(lo, tuple) and len(lo) == 3
        for a, b in zip(lo, lr, strict=True):
            _assert_close32(a, b)


def test_taps_come_from_pywt():
    w = pywt.Wavelet("db4")
    for ours, ref in [(wavelet.DEC_LO, w.dec_lo), (wavelet.DEC_HI, w.dec_hi),
                      (wavelet.REC_LO, w.rec_lo), (wavelet.REC_HI, w.rec_hi)]:
        np.testing.assert_array_equal(ours, np.asarray(ref, dtype=np.float32))


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 33, 512, 3008])
def test_lengths_match_pywt(n):
    assert wavelet.dwt_length(n) == pywt.dwt_coeff_len(n, 8, "symmetric") == (n + 7) // 2
    assert wavelet.idwt_length(wavelet.dwt_length(n)) in (n, n + 1)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("levels", LEVELS)
@pytest.mark.parametrize("parallel", [False, True])
def test_wavedec2_matches_pywt(shape, levels, parallel):
    x = _image(shape)
    _assert_coeffs_close(wavelet.wavedec2(x, levels, parallel=parallel), _pywt_wavedec2(x, levels))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("levels", LEVELS)
@pytest.mark.parametrize("parallel", [False, True])
def test_waverec2_matches_pywt(shape, levels, parallel):
    coeffs = _pywt_wavedec2(_image(shape, seed=1), levels)
    ref = pywt.waverec2(coeffs, "db4", mode="symmetric")
    _assert_close32(wavelet.waverec2(coeffs, parallel=parallel), ref)


@pytest.mark.parametrize("shape", [(33, 47), (100, 37), (512, 512)])
def test_round_trip_is_perfect_reconstruction(shape):
    x = _image(shape, seed=2)
    rec = wavelet.waverec2(wavelet.wavedec2(x, 4))
    assert rec.shape[0] in (shape[0], shape[0] + 1) and rec.shape[1] in (shape[1], shape[1] + 1)
    np.testing.assert_allclose(rec[:shape[0], :shape[1]], x, atol=1e-3)


def test_default_layout_and_dtype():
    x = _image((100, 37)).astype(np.float64)[::1, ::1].T  # float64, Fortran order
    coeffs = wavelet.wavedec2(x, 4)
    assert all(c.dtype == np.float32 for c in [coeffs[0], *[b for lvl in coeffs[1:] for b in lvl]])
    _assert_coeffs_close(coeffs, _pywt_wavedec2(np.ascontiguousarray(x, dtype=np.float32), 4))
    assert coeffs[0].shape == (8, 12)  # 37 -> 22 -> 14 -> 10 -> 8; 100 -> 53 -> 30 -> 18 -> 12


def test_zero_approximation_as_none_is_identical():
    coeffs = _pywt_wavedec2(_image((64, 64), seed=3), 1)
    zeros = wavelet.idwt2_level(np.zeros_like(coeffs[0]), coeffs[1])
    np.testing.assert_array_equal(wavelet.idwt2_level(None, coeffs[1]), zeros)


def test_idwt2_level_crops_and_accumulates_into_a_strided_view():
    coeffs = _pywt_wavedec2(_image((50, 41), seed=4), 1)
    full = pywt.idwt2((coeffs[0], coeffs[1]), "db4", mode="symmetric")
    assert full.shape == (50, 42)
    out = np.full((50, 41, 3), 7.0, dtype=np.float32)
    wavelet.idwt2_level(coeffs[0], coeffs[1], out=out[:, :, 1])
    np.testing.assert_array_equal(out[:, :, 1], full[:50, :41])
    np.testing.assert_array_equal(out[:, :, [0, 2]], 7.0)
    w = np.float32(0.25)
    wavelet.idwt2_level(coeffs[0], coeffs[1], out=out[:, :, 0], mode=wavelet.STORE_WEIGHTED,
                        weight=w)
    wavelet.idwt2_level(coeffs[0], coeffs[1], out=out[:, :, 0], mode=wavelet.ADD_WEIGHTED,
                        weight=w)
    np.testing.assert_array_equal(out[:, :, 0], full[:50, :41] * w + full[:50, :41] * w)


def test_idwt2_level_rejects_bad_shapes():
    coeffs = _pywt_wavedec2(_image((40, 40)), 1)
    ch, cv, cd = coeffs[1]
    with pytest.raises(ValueError):
        wavelet.idwt2_level(coeffs[0], (ch, cv[:-1], cd))
    with pytest.raises(ValueError):
        wavelet.idwt2_level(coeffs[0], coeffs[1], out=np.empty((60, 60), np.float32))
    with pytest.raises(ValueError):
        wavelet.idwt2_level(coeffs[0][:-2], coeffs[1])


def _wiener_reference(x: np.ndarray, noise_var: float) -> np.ndarray:
    """WaveNoise as the reference port computes it, with ``uniform_filter``."""
    x64 = x.astype(np.float64)
    energy = x64 * x64
    var = np.min([np.maximum(ndimage.uniform_filter(energy, k, mode="constant") - noise_var, 0)
                  for k in (3, 5, 7, 9)], axis=0)
    return (x64 * noise_var / (var + noise_var)).astype(np.float32)


@pytest.mark.parametrize("shape", [(5, 3), (33, 47), (100, 37), (259, 259)])
def test_wiener_adaptive_matches_uniform_filter(shape):
    x = np.random.default_rng(5).normal(0, 4, shape).astype(np.float32)
    x[0, 0] = 0.0
    np.testing.assert_allclose(wiener_adaptive(x, 9.0), _wiener_reference(x, 9.0),
                               rtol=1e-6, atol=1e-6)


def test_zero_mean_total_zeroes_every_lattice():
    x = _image((37, 50), seed=6)
    zm = zero_mean_total(x)
    for di in (0, 1):
        for dj in (0, 1):
            lat = zm[di::2, dj::2].astype(np.float64)
            assert abs(lat.mean()) < 1e-4
            assert np.abs(lat.mean(axis=0)).max() < 1e-4
            assert np.abs(lat.mean(axis=1)).max() < 1e-4


@pytest.mark.parametrize("shape", [(64, 64, 3), (1100, 1000, 3)])
def test_fused_gray_residual_equals_gray_of_colour_residual(shape):
    """The small (threads per channel) and large (fused gray sum) paths."""
    rng = np.random.default_rng(7)
    img = np.clip(_image(shape[:2])[..., None] + rng.normal(0, 3, shape), 0, 255).astype(np.uint8)
    from dippas.residual import _wavelet_residual
    gray = _wavelet_residual(img, 3.0, gray=True)
    np.testing.assert_array_equal(gray, rgb2gray(dippas.noise_residual_rgb(img)))
    assert GRAY_WEIGHTS.dtype == np.float32


def test_colour_residual_matches_a_pywt_pipeline():
    img = np.clip(_image((70, 90), seed=8)[..., None]
                  + np.random.default_rng(8).normal(0, 3, (70, 90, 3)), 0, 255).astype(np.uint8)
    ref = np.empty(img.shape, np.float32)
    for c in range(3):
        coeffs = _pywt_wavedec2(img[:, :, c].astype(np.float32), 4)
        coeffs[0][...] = 0
        coeffs[1:] = [tuple(_wiener_reference(b, 9.0) for b in lvl) for lvl in coeffs[1:]]
        ref[:, :, c] = pywt.waverec2(coeffs, "db4", mode="symmetric")[:70, :90]
    np.testing.assert_allclose(dippas.noise_residual_rgb(img), ref, atol=1e-4)


def test_residual_of_uint16_and_gray_inputs():
    img = (_image((80, 96), seed=9) * 257).clip(0, 65535).astype(np.uint16)
    as_float = img.astype(np.float32) / np.float32(257.0)
    np.testing.assert_array_equal(dippas.noise_residual(img), dippas.noise_residual(as_float))
    assert dippas.noise_residual_rgb(img).shape == (80, 96)


def test_parallel_map_keeps_order_and_raises():
    assert threads.parallel_map(lambda v: v * v, range(7)) == [v * v for v in range(7)]
    assert threads.parallel_map(lambda v: v, []) == []

    def boom(v: int) -> int:
        if v == 3:
            raise RuntimeError("boom")
        return v

    with pytest.raises(RuntimeError, match="boom"):
        threads.parallel_map(boom, range(6))


@pytest.mark.parametrize("parallel", [False, True])
def test_parallel_for_covers_every_item_once(parallel):
    hits = np.zeros(1000, dtype=np.int64)

    def kernel(arr: np.ndarray, start: int, stop: int) -> None:
        arr[start:stop] += 1

    threads.parallel_for(kernel, hits.size, hits, parallel=parallel, min_chunk=7)
    np.testing.assert_array_equal(hits, 1)


def _fingerprint_reference(images: list[np.ndarray]) -> np.ndarray:
    """The ML estimator written with NumPy on top of ``noise_residual_rgb``."""
    num = den = None
    for image in images:
        f = image.astype(np.float32)
        w = dippas.noise_residual_rgb(f).astype(np.float64)
        v = f.astype(np.float64)
        scale = np.where(v < 252.0, v / 252.0, np.exp(-((v - 252.0) ** 2) / 6.0))
        chmax = v.max(axis=(0, 1))
        same = ((np.roll(v, 1, 0) == v) | (np.roll(v, -1, 0) == v)
                | (np.roll(v, 1, 1) == v) | (np.roll(v, -1, 1) == v))
        scale[(v == chmax) & (chmax > 250.0) & same] = 0.0
        if num is None:
            num = np.zeros(f.shape, np.float32)
            den = np.zeros(f.shape, np.float32)
        num = (num + w * (v / 255.0)).astype(np.float32)
        den = (den + scale * scale).astype(np.float32)
    k = num / (den + np.float32(1.0))
    from dippas.residual import residual_postprocess
    return residual_postprocess(rgb2gray(k))


@pytest.mark.parametrize("count", [1, 3, 4])
def test_fingerprint_matches_a_numpy_accumulation(count):
    """Images are processed a few at a time on threads; sums stay in image order."""
    rng = np.random.default_rng(10)
    base = 180 + 40 * np.sin(np.arange(96) / 9.0)[None, :, None] * np.ones((80, 1, 3))
    images = [np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
              for _ in range(count)]
    images[0][10:14, 20:30] = 255  # a saturated patch
    done = []
    k = dippas.estimate_fingerprint(images, progress=lambda d, t: done.append((d, t)))
    assert done == [(i + 1, count) for i in range(count)]
    np.testing.assert_allclose(k, _fingerprint_reference(images), rtol=0, atol=1e-6)
    assert np.array_equal(k, dippas.estimate_fingerprint(iter(images)))


@pytest.mark.parametrize("parallel", [False, True])
def test_denoise_plane_equals_the_level_by_level_transforms(parallel):
    plane = _image((301, 257), seed=11)
    coeffs = wavelet.wavedec2(plane, wavelet.WAVELET_LEVELS, parallel=parallel)
    coeffs[0] = np.zeros_like(coeffs[0])
    coeffs[1:] = [tuple(wiener_adaptive(b, 9.0) for b in lvl) for lvl in coeffs[1:]]
    expected = wavelet.waverec2(coeffs, parallel=parallel)[:301, :257]
    out = np.empty((301, 257), np.float32)
    wavelet.denoise_plane(plane, 9.0, out, wavelet.STORE, np.float32(1.0))
    np.testing.assert_array_equal(out, expected)


def test_wavedec2_rejects_non_2d():
    with pytest.raises(ValueError):
        wavelet.wavedec2(np.zeros((8, 8, 3), np.float32), 1)


def test_fingerprint_cancel_between_images_of_a_batch():
    from dippas.errors import Cancelled
    from dippas.progress import CancelToken

    rng = np.random.default_rng(12)
    images = [rng.integers(100, 140, (64, 64, 3), dtype=np.uint8) for _ in range(4)]
    token = CancelToken()
    seen = []

    def progress(done: int, total: int | None) -> None:
        seen.append(done)
        token.cancel()

    with pytest.raises(Cancelled):
        dippas.estimate_fingerprint(images, progress=progress, cancel=token)
    assert seen == [1]


def test_results_do_not_depend_on_the_number_of_threads(monkeypatch):
    """The large-image path (kernels split over threads) equals the one-thread path."""
    rng = np.random.default_rng(13)
    img = np.clip(_image((1100, 1000))[..., None] + rng.normal(0, 3, (1100, 1000, 3)),
                  0, 255).astype(np.uint8)
    many = dippas.noise_residual(img)
    band = rng.normal(0, 4, (1100, 1000)).astype(np.float32)
    many_band = wiener_adaptive(band, 9.0)
    from dippas import residual
    monkeypatch.setattr(threads, "n_threads", lambda: 1)
    monkeypatch.setattr(residual, "n_threads", lambda: 1)
    assert not threads.use_parallel(img.size)
    np.testing.assert_array_equal(dippas.noise_residual(img), many)
    np.testing.assert_array_equal(wiener_adaptive(band, 9.0), many_band)
