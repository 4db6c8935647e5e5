"""Tests of the inpainting anonymizer (dippas.inpainting), on tiny images."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl
from scipy import ndimage as ndi

from dippas.errors import Cancelled, DippasInputError
from dippas.inpainting import (
    available_denoisers,
    canny_edges,
    denoise,
    dilate_edges,
    edge_mask,
    hole_period,
    inpaint_anonymize,
    inpaint_anonymize_result,
    inpaint_mask,
    inpaint_plane,
    mask_index_map,
    mask_offsets,
    register_denoiser,
    selector_mask,
    selector_masks,
)
from dippas.inpainting.edges import disk
from dippas.inpainting.masks import holes_decoupled
from dippas.progress import CancelToken
from dippas.residual import rgb2gray

DELTA = 3


def _random(shape, seed=0):
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.float32)


def _textured(shape, seed=0):
    """A smooth scene with a bright square (strong edges) plus noise, uint8."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    scene = 80 + 40 * np.sin(xx / 7.0) * np.cos(yy / 9.0)
    scene[h // 4: 3 * h // 4, w // 4: 3 * w // 4] += 90
    if len(shape) == 3:
        scene = np.stack([scene, 0.9 * scene, 0.8 * scene], axis=-1)
    noise = np.random.default_rng(seed).normal(0, 3, scene.shape)
    return np.clip(np.rint(scene + noise), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------- masks


def test_period_and_number_of_masks():
    assert hole_period(5) == 10 and len(mask_offsets(5)) == 4
    assert hole_period(3) == 9 and len(mask_offsets(3)) == 9


@pytest.mark.parametrize("hole", [3, 5])
@pytest.mark.parametrize("shape", [(10, 10), (23, 31), (40, 27)])
def test_masks_partition_the_image(hole, shape):
    if min(shape) < hole_period(hole):
        pytest.skip("smaller than a period")
    masks = selector_masks(shape, hole)
    assert masks.dtype == bool and masks.shape == (len(mask_offsets(hole)),) + shape
    np.testing.assert_array_equal(masks.sum(axis=0), 1)
    idx = mask_index_map(shape, hole)
    for k in range(masks.shape[0]):
        np.testing.assert_array_equal(selector_mask(shape, k, hole), idx == k)


@pytest.mark.parametrize("hole", [3, 5])
def test_masks_are_shifted_copies(hole):
    p = hole_period(hole)
    shape = (3 * p, 4 * p)
    masks = selector_masks(shape, hole)
    for k, (dr, dc) in enumerate(mask_offsets(hole)):
        np.testing.assert_array_equal(masks[k], np.roll(masks[0], (dr, dc), axis=(0, 1)))
        # B x B holes, period p
        assert masks[k].sum() == 12 * hole * hole


@pytest.mark.parametrize("hole", [3, 5])
@pytest.mark.parametrize("delta", list(range(1, 11)))
def test_holes_of_a_mask_are_never_coupled(hole, delta):
    """No difference at distance delta joins two holes of one mask."""
    p = hole_period(hole, delta)
    assert holes_decoupled(hole, p, delta)
    assert p >= hole + delta + 1
    shape = (3 * p + 2, 3 * p + 1)
    for k in range(len(mask_offsets(hole, delta))):
        m = selector_mask(shape, k, hole, delta)
        labels, n = ndi.label(m)
        assert n > 1
        # horizontal and vertical pairs at distance delta, both hidden
        for a, b in ((labels[:, :-delta], labels[:, delta:]), (labels[:-delta, :], labels[delta:, :])):
            both = (a > 0) & (b > 0)
            np.testing.assert_array_equal(a[both], b[both])


# -------------------------------------------------------------------- solver


def _global_solve(y, hidden, delta, rounds, eps):
    """The whole masked problem as one sparse weighted least squares (IRLS for rounds > 1)."""
    h, w = y.shape
    idx = -np.ones((h, w), dtype=np.int64)
    idx[hidden] = np.arange(hidden.sum())
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
    x = y.astype(np.float64).copy()
    n_rows = len(a)
    for rnd in range(rounds):
        wts = np.ones(n_rows) if rnd == 0 else 1.0 / np.maximum(np.abs(x[b[:, 0], b[:, 1]] - x[a[:, 0], a[:, 1]]), eps)
        sw = np.sqrt(wts)
        rows, cols, vals = [], [], []
        rhs = np.zeros(n_rows)
        for pts, sign in ((b, 1.0), (a, -1.0)):  # residual x_b - x_a
            hid = hidden[pts[:, 0], pts[:, 1]]
            r = np.nonzero(hid)[0]
            rows.append(r)
            cols.append(idx[pts[hid, 0], pts[hid, 1]])
            vals.append(sign * sw[r])
            v = np.nonzero(~hid)[0]
            rhs[v] -= sign * sw[v] * y[pts[~hid, 0], pts[~hid, 1]]
        d = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n_rows, int(hidden.sum())))
        x[hidden] = spl.spsolve((d.T @ d).tocsc(), d.T @ rhs)
    return x


@pytest.mark.parametrize("hole", [3, 5])
@pytest.mark.parametrize("reg,rounds", [("l2", 1), ("tv", 4)])
def test_per_hole_solve_equals_global_sparse_solve(hole, reg, rounds):
    # 23 x 27: interior holes, holes cut by the border, differences cut by it
    y = _random((23, 27), seed=hole)
    for k, off in enumerate(mask_offsets(hole)):
        hidden = selector_mask(y.shape, k, hole)
        ours = inpaint_mask(y, off, hole, DELTA, reg=reg, tv_rounds=rounds, tv_eps=1.0)
        ref = _global_solve(y, hidden, DELTA, rounds, 1.0)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=5e-4)
        np.testing.assert_array_equal(ours[~hidden], y[~hidden])


def test_global_solve_check_is_not_vacuous():
    """The global reference actually moves the hidden pixels away from their values."""
    y = _random((20, 20))
    hidden = selector_mask(y.shape, 0, 5)
    ref = _global_solve(y, hidden, DELTA, 1, 1.0)
    assert np.abs(ref[hidden] - y[hidden]).mean() > 10


def test_tv_with_one_round_is_l2():
    y = _random((31, 29))
    np.testing.assert_array_equal(inpaint_plane(y, reg="tv", tv_rounds=1), inpaint_plane(y, reg="l2"))
    assert not np.allclose(inpaint_plane(y, reg="tv", tv_rounds=4), inpaint_plane(y, reg="l2"))


@pytest.mark.parametrize("reg", ["l2", "tv"])
@pytest.mark.parametrize("hole", [3, 5])
def test_each_output_pixel_comes_from_an_inversion_where_it_was_hidden(reg, hole):
    """Changing a pixel never changes the output at that pixel (but does change neighbours)."""
    y = _random((22, 25), seed=3)
    base = inpaint_plane(y, hole=hole, reg=reg)
    rng = np.random.default_rng(1)
    picks = [(0, 0), (21, 24), (0, 24), (21, 0), (11, 12)] + [tuple(p) for p in rng.integers(0, (22, 25), (10, 2))]
    for i, j in picks:
        z = y.copy()
        z[i, j] += 97.0
        out = inpaint_plane(z, hole=hole, reg=reg)
        assert out[i, j] == base[i, j]
        if DELTA <= i < 22 - DELTA and DELTA <= j < 25 - DELTA:
            # an interior pixel is a visible neighbour in other masks' inversions
            # (with B = 5, a few corner pixels only neighbour their own hole)
            assert np.abs(out - base).max() > 0.0


@pytest.mark.parametrize("hole", [3, 5])
def test_mask_solve_reads_visible_pixels_only(hole):
    y = _random((24, 23), seed=5)
    for k, off in enumerate(mask_offsets(hole)):
        hidden = selector_mask(y.shape, k, hole)
        z = y.copy()
        z[hidden] = _random(y.shape, seed=k + 10)[hidden]
        np.testing.assert_array_equal(inpaint_mask(y, off, hole, reg="tv"), inpaint_mask(z, off, hole, reg="tv"))


def test_merge_takes_each_pixel_from_its_own_mask():
    y = _random((21, 22), seed=7)
    merged = inpaint_plane(y, hole=5)
    idx = mask_index_map(y.shape, 5)
    for k, off in enumerate(mask_offsets(5)):
        single = inpaint_mask(y, off, hole=5)
        np.testing.assert_array_equal(merged[idx == k], single[idx == k])


@pytest.mark.parametrize("hole", [3, 5])
def test_every_size_from_one_period_is_solvable(hole):
    p = hole_period(hole)
    for h in range(p, 2 * p + 2):
        for w in (h, h + 1):
            out = inpaint_plane(_random((h, w), seed=h), hole=hole, reg="tv", tv_rounds=2)
            assert np.isfinite(out).all()


def test_flat_image_stays_flat():
    y = np.full((20, 30), 117.0, dtype=np.float32)
    for reg in ("l2", "tv"):
        np.testing.assert_allclose(inpaint_plane(y, reg=reg), 117.0, atol=1e-4)


# --------------------------------------------------------------------- edges


def test_edge_mask_is_the_dilated_canny_of_the_gray_denoised_image():
    img = _textured((48, 52, 3))
    den = denoise(img, "nl_means")
    mask = edge_mask(img, denoised=den)
    assert mask.dtype == bool and mask.shape == img.shape[:2]
    edges = canny_edges(rgb2gray(den))
    assert edges.any() and not mask.all()
    # every Canny edge pixel is inside, and the mask is within the radius-3 disk dilation
    assert mask[edges].all()
    dist = ndi.distance_transform_edt(~edges)
    assert (dist[mask] <= 3).all()
    np.testing.assert_array_equal(mask, dist <= 3)
    np.testing.assert_array_equal(mask, dilate_edges(edges, 3))
    np.testing.assert_array_equal(mask, edge_mask(img))  # denoises by itself with the default


def test_edge_mask_radius_and_flat_image():
    e = np.zeros((15, 15), dtype=bool)
    e[7, 7] = True
    np.testing.assert_array_equal(dilate_edges(e, 3), np.pad(disk(3), 4))
    assert dilate_edges(e, 3).sum() == 29
    flat = np.full((32, 40, 3), 200, dtype=np.uint8)
    assert not edge_mask(flat).any()
    assert not edge_mask(flat[:, :, 0]).any()
    r = inpaint_anonymize_result(flat)
    assert r.edges is not None and not r.edges.any() and r.params["edge_fraction"] == 0.0
    np.testing.assert_array_equal(inpaint_anonymize(flat), flat)


def test_edge_pixels_come_from_the_denoised_image():
    img = _textured((40, 44, 3))
    on = inpaint_anonymize_result(img)
    off = inpaint_anonymize_result(img, edges=False)
    den = denoise(img, "nl_means")
    m = on.edges
    assert m.any() and (~m).any()
    np.testing.assert_array_equal(on.image[m], den[m])
    np.testing.assert_array_equal(on.image[~m], off.image[~m])
    assert off.edges is None


def test_denoise_tiles_match_untiled():
    img = _textured((70, 90, 3)).astype(np.float32)
    calls = []
    whole = denoise(img, "nl_means", tile=1024)
    tiled = denoise(img, "nl_means", tile=32, overlap=32, workers=2,
                    progress=lambda d, t: calls.append((d, t)))
    assert calls == [(k, 9) for k in range(1, 10)]  # 3 x 3 tiles
    np.testing.assert_allclose(tiled, whole, atol=1e-3)
    np.testing.assert_array_equal(denoise(img, "nl_means", tile=32, overlap=32, workers=1), tiled)
    img = _textured((300, 280)).astype(np.float32)
    np.testing.assert_allclose(denoise(img, "wiener_wavelet", tile=64), denoise(img, "wiener_wavelet"), atol=1e-2)
    # global denoisers are never tiled
    np.testing.assert_array_equal(denoise(img, "tv", tile=64), denoise(img, "tv"))


@pytest.mark.parametrize("name", [n for n in available_denoisers() if n != "bm3d"])
def test_denoisers_keep_shape(name):
    img = _textured((40, 36, 3)).astype(np.float32)
    for x in (img, img[:, :, 0]):
        out = denoise(x, name)
        assert out.shape == x.shape and out.dtype == np.float32 and np.isfinite(out).all()
        assert np.abs(out - x).mean() < 10


def test_custom_denoiser_registry_and_callable():
    img = _textured((30, 30, 3))
    register_denoiser("test_identity", lambda x: x.copy(), replace=True)
    assert "test_identity" in available_denoisers()
    r = inpaint_anonymize_result(img, denoiser="test_identity")
    np.testing.assert_array_equal(r.image[r.edges], img[r.edges].astype(np.float32))
    r2 = inpaint_anonymize_result(img, denoiser=lambda x: x.copy())
    np.testing.assert_array_equal(r.image, r2.image)
    with pytest.raises(DippasInputError):
        register_denoiser("test_identity", lambda x: x)


# ---------------------------------------------------------------- public API


def test_dtypes_and_shapes():
    rgb = _textured((32, 34, 3))
    out = inpaint_anonymize(rgb)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    gray = inpaint_anonymize(rgb[:, :, 0])
    assert gray.dtype == np.uint8 and gray.shape == (32, 34)
    one = inpaint_anonymize(rgb[:, :, :1])
    assert one.shape == (32, 34, 1)
    np.testing.assert_array_equal(one[:, :, 0], gray)
    # uint16: same computation on values scaled by 257
    out16 = inpaint_anonymize(rgb.astype(np.uint16) * 257, edges=False)
    assert out16.dtype == np.uint16
    out8 = inpaint_anonymize(rgb, edges=False)
    assert np.abs(out16.astype(np.int64) - out8.astype(np.int64) * 257).max() <= 129
    f = inpaint_anonymize(rgb.astype(np.float32), edges=False)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(np.clip(np.rint(f), 0, 255).astype(np.uint8), out8)


def test_result_object():
    img = _textured((30, 31, 3))
    r = inpaint_anonymize_result(img, hole=3, reg="tv")
    assert r.image.dtype == np.float32 and r.image.shape == img.shape
    assert r.edges.dtype == bool and r.edges.shape == img.shape[:2]
    p = r.params
    assert (p["hole"], p["period"], p["n_masks"], p["reg"], p["tv_rounds"], p["tv_eps"]) == (3, 9, 9, "tv", 4, 1.0)
    assert p["denoiser"] == "nl_means" and p["edges"] is True and 0 < p["edge_fraction"] < 1
    np.testing.assert_array_equal(inpaint_anonymize(img, hole=3, reg="tv"),
                                  np.clip(np.rint(r.image), 0, 255).astype(np.uint8))


def _one_line_error(func, *args, match=None, **kw):
    with pytest.raises(DippasInputError, match=match) as exc:
        func(*args, **kw)
    assert "\n" not in str(exc.value)


def test_bad_inputs():
    img = _textured((32, 32, 3))
    _one_line_error(inpaint_anonymize, img[:9, :20], match="period")  # hole 5 needs 10
    _one_line_error(inpaint_anonymize, img[:8, :8], hole=3, match="period")
    assert inpaint_anonymize(img[:9, :9], hole=3).shape == (9, 9, 3)
    rgba = np.concatenate([img, np.full((32, 32, 1), 255, np.uint8)], axis=2)
    _one_line_error(inpaint_anonymize, rgba, match="alpha")
    _one_line_error(inpaint_anonymize, img, reg="l3", match="regulariser")
    _one_line_error(inpaint_anonymize, img, hole=4, match="hole")
    _one_line_error(inpaint_anonymize, img, denoiser="median", match="denoiser")
    _one_line_error(inpaint_anonymize, img, edges=False, denoiser="median", match="denoiser")
    _one_line_error(inpaint_anonymize, img, tv_eps=0.0, reg="tv")
    _one_line_error(inpaint_anonymize, img, tv_rounds=0, reg="tv")
    _one_line_error(inpaint_anonymize_result, img, canny_low=10.0, canny_high=5.0, match="Canny")
    _one_line_error(inpaint_anonymize_result, img, edge_radius=-1, match="radius")
    bad = img.astype(np.float32)
    bad[3, 4, 1] = np.nan
    _one_line_error(inpaint_anonymize, bad, match="NaN")
    _one_line_error(inpaint_anonymize, img.astype(np.float32) / 255.0, match="0-255")
    if "bm3d" not in available_denoisers():
        _one_line_error(inpaint_anonymize, img, denoiser="bm3d", match="bm3d")
        assert inpaint_anonymize(img, edges=False, denoiser="bm3d").shape == img.shape


def test_progress_and_cancel():
    img = _textured((24, 26, 3))
    calls = []
    inpaint_anonymize(img, progress=lambda d, t: calls.append((d, t)))
    total = calls[-1][1]
    assert calls == [(i + 1, total) for i in range(total)] and total == 1 + 1 + 3  # tile, edges, planes
    calls.clear()
    inpaint_anonymize(img, edges=False, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]

    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        inpaint_anonymize(img, cancel=token)
    token = CancelToken()
    seen = []

    def stop_after_first(done, total):
        seen.append(done)
        token.cancel()

    with pytest.raises(Cancelled):
        inpaint_anonymize(img, edges=False, progress=stop_after_first, cancel=token)
    assert seen == [1]
