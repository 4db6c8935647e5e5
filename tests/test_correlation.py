"""NCC, PCE, block NCC maps and cell statistics against naive implementations."""

from __future__ import annotations

import numpy as np
import pytest

import dippas
from dippas.correlation import crosscorr_2d, pce
from dippas.errors import DippasInputError


def test_ncc_matches_formula(rng):
    a = rng.normal(size=(40, 50))
    b = 0.3 * a + rng.normal(size=(40, 50))
    expected = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
    assert dippas.ncc(a, b) == pytest.approx(expected, rel=1e-5)
    assert dippas.ncc(a, a) == pytest.approx(1.0, rel=1e-6)
    assert dippas.ncc(a, -a) == pytest.approx(-1.0, rel=1e-6)


def test_ncc_no_mean_removal():
    a = np.ones((8, 8))
    b = np.ones((8, 8)) * 3
    assert dippas.ncc(a, b) == pytest.approx(1.0)


def test_ncc_zero_is_nan_and_shape_mismatch_raises():
    assert np.isnan(dippas.ncc(np.zeros((4, 4)), np.ones((4, 4))))
    with pytest.raises(DippasInputError):
        dippas.ncc(np.ones((4, 4)), np.ones((4, 5)))


def test_crosscorr_is_circular_and_mean_removed(rng):
    a = rng.normal(size=(12, 10)) + 5
    b = rng.normal(size=(12, 10)) - 2
    c = crosscorr_2d(a, b)
    a0, b0 = a - a.mean(), b - b.mean()
    for dy, dx in [(0, 0), (3, 1), (11, 9), (5, 0)]:
        naive = (a0 * np.roll(b0, (dy, dx), axis=(0, 1))).sum()
        assert c[dy, dx] == pytest.approx(naive, rel=1e-9, abs=1e-9)


def _naive_pce(a, b, py, px, exclude):
    c = crosscorr_2d(a, b)
    h, w = c.shape
    r = exclude // 2
    mask = np.ones_like(c, dtype=bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            mask[(py + dy) % h, (px + dx) % w] = False
    peak = c[py, px]
    return np.sign(peak) * peak ** 2 / np.mean(c[mask] ** 2)


def test_pce_zero_shift_matches_naive(rng):
    k = rng.normal(size=(64, 64))
    w = 0.2 * k + rng.normal(size=(64, 64))
    value, shift = pce(w, k)
    assert shift == (0, 0)
    assert value == pytest.approx(_naive_pce(w, k, 0, 0, 11), rel=1e-9)
    assert value > 60


def test_pce_sign_follows_peak(rng):
    k = rng.normal(size=(64, 64))
    w = -0.2 * k + rng.normal(size=(64, 64))
    assert pce(w, k)[0] < -60


def test_pce_search_finds_shift(rng):
    k = rng.normal(size=(64, 64))
    w = 0.3 * np.roll(k, (5, -7), axis=(0, 1)) + rng.normal(size=(64, 64))
    zero, _ = pce(w, k)
    found, shift = pce(w, k, search=True)
    assert shift == (5, -7)
    assert found > 60 > abs(zero)
    assert found == pytest.approx(_naive_pce(w, k, 5, 64 - 7, 11), rel=1e-9)


@pytest.mark.parametrize("cell", [4, 5, 16])
def test_cell_statistics_are_cell_sums(rng, cell):
    w = rng.normal(size=(37, 45)).astype(np.float32)
    x = rng.normal(size=(37, 45)).astype(np.float32)
    s = dippas.cell_statistics(w, x, cell)
    ny, nx = -(-37 // cell), -(-45 // cell)
    assert s.shape == (3, ny, nx)
    for cy in range(ny):
        for cx in range(nx):
            sl = (slice(cy * cell, (cy + 1) * cell), slice(cx * cell, (cx + 1) * cell))
            wa, xa = w[sl].astype(np.float64), x[sl].astype(np.float64)
            np.testing.assert_allclose(s[:, cy, cx], [(wa * xa).sum(), (wa * wa).sum(), (xa * xa).sum()],
                                       rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("k", [1, 2, 3, 8])
def test_block_ncc_from_cells_equals_direct(rng, k):
    cell = 8
    w = rng.normal(size=(96, 128)).astype(np.float32)
    x = (0.1 * w + rng.normal(size=(96, 128))).astype(np.float32)
    from_cells = dippas.ncc_from_cells(dippas.cell_statistics(w, x, cell), k)
    direct = dippas.block_ncc_map(w, x, cell * k)
    assert from_cells.shape == direct.shape
    np.testing.assert_allclose(from_cells, direct, rtol=1e-9)
    b = cell * k
    for by in range(direct.shape[0]):
        for bx in range(direct.shape[1]):
            sl = (slice(by * b, (by + 1) * b), slice(bx * b, (bx + 1) * b))
            assert direct[by, bx] == pytest.approx(dippas.ncc(w[sl], x[sl]), rel=1e-5)


def test_attribution_scores_on_simulated_camera():
    from dippas.samples import camera_sample

    img, k = camera_sample(128)
    s = dippas.attribution_scores(img, k)
    assert s["match"] and s["pce"] > 60 and s["ncc"] > 0.05
    other = dippas.samples.simulated_fingerprint(k.shape, seed=99)
    s2 = dippas.attribution_scores(img, other)
    assert not s2["match"] and abs(s2["ncc"]) < 0.02
    assert s["ncc_threshold"] == pytest.approx(np.sqrt(60 / 128 ** 2))
