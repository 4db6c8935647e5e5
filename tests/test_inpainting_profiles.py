"""Tests of the inpainting profiles: the authors' recipe (MATLAB Canny, strel disk, isotropic
IRLS, symmetric border, rescaling, BM3D extra), the K-aware step and the profile registry."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl
from scipy import ndimage as ndi

from dippas.correlation import attribution_reference, ncc
from dippas.errors import DippasInputError
from dippas.inpainting import (
    DEFAULT_PROFILE,
    PROFILES,
    canny_matlab,
    get_profile,
    inpaint_anonymize,
    inpaint_anonymize_result,
    inpaint_mask,
    inpaint_plane,
    mask_index_map,
    mask_offsets,
    null_prnu,
    selector_mask,
    strel_disk,
)
from dippas.inpainting.edges import disk, line_segment_sum, matlab_high_threshold
from dippas.inpainting.solver import ISO_WEIGHT_FLOOR
from dippas.residual import noise_residual

DELTA = 3


def _random(shape, seed=0):
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.float32)


def _textured(shape, seed=0):
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    scene = 80 + 40 * np.sin(xx / 7.0) * np.cos(yy / 9.0)
    scene[h // 4: 3 * h // 4, w // 4: 3 * w // 4] += 90
    if len(shape) == 3:
        scene = np.stack([scene, 0.9 * scene, 0.8 * scene], axis=-1)
    noise = np.random.default_rng(seed).normal(0, 3, scene.shape)
    return np.clip(np.rint(scene + noise), 0, 255).astype(np.uint8)


# ------------------------------------------------------------ MATLAB Canny


def test_matlab_canny_on_a_synthetic_step_edge():
    """A vertical step with one intermediate column: one edge line on that column, nothing else."""
    img = np.zeros((40, 48))
    img[:, 25:] = 1.0
    img[:, 24] = 0.4  # the step's centre lies in column 24
    e = canny_matlab(img)
    assert e[:, 24].all()
    assert e.sum() == 40  # every row, exactly once
    # noise does not move it, and the same holds for the transposed image (horizontal edge)
    rng = np.random.default_rng(0)
    noisy = img + rng.normal(0, 0.01, img.shape)
    np.testing.assert_array_equal(canny_matlab(noisy), e)
    np.testing.assert_array_equal(canny_matlab(img.T), e.T)
    # scale and offset of the data do not matter (the magnitude is normalised)
    np.testing.assert_array_equal(canny_matlab(255 * img + 7), e)


def test_matlab_canny_diagonal_edge_is_one_8_connected_line():
    yy, xx = np.mgrid[0:40, 0:40]
    img = (xx > yy).astype(float)
    e = canny_matlab(img)
    inner = e[6:-6, 6:-6]
    assert inner.any()
    labels, n = ndi.label(inner, structure=np.ones((3, 3)))
    assert n == 1
    r, c = np.nonzero(inner)
    assert np.abs(r - c).max() <= 1  # on the diagonal


def test_matlab_high_threshold_rule():
    """High threshold = k/64 for the first 64-bin histogram bin whose cumulative count exceeds 70 %."""
    m = np.zeros(100)
    m[70:] = 1.0
    assert matlab_high_threshold(m) == 1.0  # 70 zeros are not *more* than 70 %
    m[70] = 0.0
    assert matlab_high_threshold(m) == 1 / 64
    m = np.concatenate([np.zeros(50), np.full(30, 10 / 63), np.ones(20)])
    assert matlab_high_threshold(m) == 11 / 64


def test_matlab_canny_hysteresis_uses_the_04_ratio():
    """A weak step between 0.4 and 1 of the high threshold survives only when joined to a strong edge."""
    rng = np.random.default_rng(1)
    img = rng.normal(0, 0.02, (60, 60))  # texture: sets the 70 % threshold
    img[:, 30:] += 1.0  # strong vertical edge
    e = canny_matlab(img)
    assert e[:, 29:31].any(axis=1).all()
    flat = np.zeros((60, 60))
    assert not canny_matlab(flat).any()


# ---------------------------------------------------------------- strel


def test_strel_disk_3_is_the_line_decomposition_octagon():
    fp = strel_disk(3)
    assert fp.shape == (7, 7) and fp.sum() == 37
    yy, xx = np.mgrid[-3:4, -3:4]
    np.testing.assert_array_equal(fp, (np.abs(xx) + np.abs(yy)) <= 4)
    np.testing.assert_array_equal(fp.sum(axis=1), [3, 5, 7, 7, 7, 5, 3])
    assert fp[disk(3)].all() and disk(3).sum() == 29  # larger than the exact disk
    # dilating by the four 3-pixel segments in turn is dilating by the octagon
    e = np.zeros((21, 21), bool)
    e[10, 10] = e[4, 15] = True
    seq = e.copy()
    for line in (np.ones((1, 3), bool), np.ones((3, 1), bool), np.eye(3, dtype=bool),
                 np.fliplr(np.eye(3, dtype=bool))):
        seq = ndi.binary_dilation(seq, structure=line)
    np.testing.assert_array_equal(seq, ndi.binary_dilation(e, structure=fp))
    np.testing.assert_array_equal(line_segment_sum(1, 1), fp)
    with pytest.raises(DippasInputError):
        strel_disk(4)


# ------------------------------------------------------- isotropic IRLS


def _global_iso_solve(y, hidden, delta, rounds, eps):
    """Whole-mask IRLS with the isotropic weights g/(g^2+eps) of each pair's first pixel."""
    h, w = y.shape
    idx = -np.ones((h, w), dtype=np.int64)
    idx[hidden] = np.arange(hidden.sum())
    x = y.astype(np.float64).copy()
    ii, jj = np.mgrid[0:h, 0:w]
    pairs = []
    for di, dj in ((0, delta), (delta, 0)):
        ok = (ii + di < h) & (jj + dj < w)
        a = np.stack([ii[ok], jj[ok]], axis=1)
        b = a + (di, dj)
        keep = hidden[a[:, 0], a[:, 1]] | hidden[b[:, 0], b[:, 1]]
        pairs.append((a[keep], b[keep]))
    a = np.concatenate([p[0] for p in pairs])
    b = np.concatenate([p[1] for p in pairs])
    for rnd in range(rounds):
        if rnd == 0:
            wts = np.ones(len(a))
        else:
            xs = x / 255.0
            dx = np.zeros_like(xs)
            dy = np.zeros_like(xs)
            dx[:, :-delta] = xs[:, delta:] - xs[:, :-delta]
            dy[:-delta, :] = xs[delta:, :] - xs[:-delta, :]
            g = np.sqrt(dx * dx + dy * dy)
            wmap = np.maximum(g / (g * g + eps), ISO_WEIGHT_FLOOR)
            wts = wmap[a[:, 0], a[:, 1]]
        sw = np.sqrt(wts)
        rows, cols, vals = [], [], []
        rhs = np.zeros(len(a))
        for pts, sign in ((b, 1.0), (a, -1.0)):
            hid = hidden[pts[:, 0], pts[:, 1]]
            r = np.nonzero(hid)[0]
            rows.append(r)
            cols.append(idx[pts[hid, 0], pts[hid, 1]])
            vals.append(sign * sw[r])
            v = np.nonzero(~hid)[0]
            rhs[v] -= sign * sw[v] * y[pts[~hid, 0], pts[~hid, 1]]
        d = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(len(a), int(hidden.sum())))
        x[hidden] = spl.spsolve((d.T @ d).tocsc(), d.T @ rhs)
    return x


@pytest.mark.parametrize("hole", [3, 5])
def test_isotropic_irls_per_hole_equals_global_solve(hole):
    y = _random((23, 27), seed=hole + 4)
    for k, off in enumerate(mask_offsets(hole)):
        hidden = selector_mask(y.shape, k, hole)
        ours = inpaint_mask(y, off, hole, DELTA, reg="tv", tv_rounds=4, tv_eps=1e-4, tv_weights="iso")
        ref = _global_iso_solve(y, hidden, DELTA, 4, 1e-4)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-3)
    aniso = inpaint_plane(y, hole=hole, reg="tv")
    iso = inpaint_plane(y, hole=hole, reg="tv", tv_eps=1e-4, tv_weights="iso")
    assert np.abs(aniso - iso).max() > 0.1


def test_isotropic_irls_on_a_flat_patch_is_finite():
    y = np.full((30, 30), 255.0, dtype=np.float32)
    out = inpaint_plane(y, reg="tv", tv_eps=1e-4, tv_weights="iso")
    np.testing.assert_allclose(out, 255.0, atol=1e-3)


# ------------------------------------------------- border and rescaling


@pytest.mark.parametrize("hole", [3, 5])
def test_symmetric_border_changes_only_the_border_band(hole):
    y = _random((41, 45), seed=2)
    drop = inpaint_plane(y, hole=hole)
    sym = inpaint_plane(y, hole=hole, border="symmetric")
    p = 10 if hole == 5 else 9
    # padding by one period keeps the masks on the original pixels
    ref = inpaint_plane(np.pad(y, p, mode="symmetric"), hole=hole)[p:-p, p:-p]
    np.testing.assert_allclose(sym, ref, atol=1e-4)
    band = hole + DELTA
    np.testing.assert_allclose(sym[band:-band, band:-band], drop[band:-band, band:-band], atol=1e-4)
    assert np.abs(sym - drop).max() > 0.1


def test_symmetric_border_lets_row_1_see_its_own_value():
    """The authors' padding mirrors row 1 to distance 3 of itself: its output then depends on it."""
    y = _random((30, 30), seed=3)
    z = y.copy()
    z[1, 15] += 100.0
    assert inpaint_plane(z, border="symmetric")[1, 15] != inpaint_plane(y, border="symmetric")[1, 15]
    assert inpaint_plane(z)[1, 15] == inpaint_plane(y)[1, 15]


def test_rescale_maps_each_mask_result_to_the_original_range():
    y = _random((30, 32), seed=4)
    y[12, 13] = 255.0  # an extreme pixel hidden by some mask
    y[3, 27] = 0.0
    out = inpaint_plane(y, rescale=True)
    idx = mask_index_map(y.shape, 5)
    for k, off in enumerate(mask_offsets(5)):
        r = inpaint_mask(y, off, 5)
        exp = (r - r.min()) / (r.max() - r.min()) * (y.max() - y.min()) + y.min()
        np.testing.assert_allclose(out[idx == k], exp[idx == k], atol=1e-3)


# ----------------------------------------------------------- bm3d extra


def test_paper_profile_without_bm3d_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # import bm3d -> ImportError
    called = []
    monkeypatch.setattr("dippas.inpainting.anonymize.denoise", lambda *a, **k: called.append(1))
    img = _textured((32, 32, 3))
    with pytest.raises(DippasInputError, match=r"\[bm3d\]") as exc:
        inpaint_anonymize(img, profile="paper")
    assert "\n" not in str(exc.value) and "paper" in str(exc.value)
    assert not called  # refused before any work
    with pytest.raises(DippasInputError, match=r"\[bm3d\]"):
        inpaint_anonymize(img, denoiser="bm3d")
    # without edges the denoiser is not needed
    assert inpaint_anonymize(img, profile="paper", edges=False).shape == img.shape


# ------------------------------------------------------------- K-aware


def _prnu_image(shape=(160, 160), seed=0):
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    scene = 120 + 50 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    scene[h // 3:, w // 2:] += 60
    k = rng.normal(0, 0.01, shape).astype(np.float32)
    img = scene[:, :, None] * (1 + k[:, :, None]) * np.array([1.0, 0.9, 0.8]) + rng.normal(0, 2, shape + (3,))
    return img.astype(np.float32), k


def test_null_prnu_brings_every_region_to_zero():
    img, k = _prnu_image()
    regions = [np.zeros(k.shape, bool), np.ones(k.shape, bool)]
    regions[0][:, :60] = True
    regions[1] = ~regions[0]
    w = noise_residual(img)
    x = attribution_reference(img, k)
    before = [ncc(w[m], x[m]) for m in regions]
    assert min(before) > 0.05
    out, gains = null_prnu(img, k, regions)
    w = noise_residual(out)
    x = attribution_reference(out, k)
    after = [ncc(w[m], x[m]) for m in regions]
    assert max(abs(a) for a in after) < 2e-3
    assert all(0.3 < g < 3 for g in gains)
    # a region too small to measure is left alone
    tiny = np.zeros(k.shape, bool)
    tiny[:10, :10] = True
    out2, gains2 = null_prnu(img, k, [tiny, ~tiny])
    assert gains2[0] == 0.0 and np.array_equal(out2[tiny], img[tiny])


def test_k_aware_inpainting_nulls_edges_and_inpainted_pixels():
    img, k = _prnu_image(seed=1)
    r = inpaint_anonymize_result(img, profile="classic", fingerprint=k)
    assert r.params["k_aware"] and len(r.prnu_gains) == 2
    w = noise_residual(r.image)
    x = attribution_reference(r.image, k)
    for m in (r.edges, ~r.edges):
        assert abs(ncc(w[m], x[m])) < 2e-3
    with pytest.raises(DippasInputError, match="fingerprint"):
        inpaint_anonymize_result(img, fingerprint=k[:50])
    assert inpaint_anonymize_result(img).prnu_gains is None


# ------------------------------------------------------------- profiles


def test_profile_registry_and_overrides():
    assert DEFAULT_PROFILE in PROFILES and "paper" in PROFILES and "classic" in PROFILES
    assert get_profile() is PROFILES[DEFAULT_PROFILE]
    with pytest.raises(DippasInputError, match="profile"):
        get_profile("fastest")
    with pytest.raises(DippasInputError, match="option"):
        get_profile("classic").with_options(colour="red")
    img = _textured((30, 30, 3))
    r = inpaint_anonymize_result(img, profile="classic", hole=3)
    assert r.params["profile"] == "classic" and r.params["hole"] == 3
    paper = get_profile("paper")
    assert (paper.reg, paper.tv_weights, paper.border, paper.rescale, paper.denoiser,
            paper.edge_detector, paper.footprint) == ("tv", "iso", "symmetric", True, "bm3d", "matlab", "strel")
    with pytest.raises(DippasInputError, match="mix_weight"):
        inpaint_anonymize(img, mix_weight=1.5)
    with pytest.raises(DippasInputError, match="border"):
        inpaint_anonymize(img, border="wrap")


def test_mixed_inpainting_is_the_weighted_mean_of_the_two_geometries():
    img = _textured((40, 44, 3))
    a = inpaint_anonymize_result(img, profile="classic", edges=False).image
    b = inpaint_anonymize_result(img, profile="classic", edges=False, delta=1).image
    m = inpaint_anonymize_result(img, profile="classic", edges=False, mix_weight=0.45, mix_delta=1)
    np.testing.assert_allclose(m.image, 0.55 * a + 0.45 * b, atol=1e-3)
    assert m.params["mix_weight"] == 0.45 and m.params["mix_delta"] == 1
