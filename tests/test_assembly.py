"""Block assembler (paper §3.3): ordering rule, averaging, cell-based block NCC, stitching."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dippas
from dippas.assembly import (
    Assembler,
    assemble,
    assemble_tiles,
    average_blocks,
    block_ncc_from_cells,
    image_block_ncc,
    order_blocks,
    order_candidates,
    rank_key,
    select_snapshots,
    snapshot_block_ncc,
    stitch,
)
from dippas.correlation import attribution_reference
from dippas.errors import DippasInputError

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

ncc_values = st.lists(
    st.one_of(
        st.floats(min_value=-1.0, max_value=1.0, allow_nan=False),
        st.sampled_from([0.0, -0.0, 0.25, -0.25, 1e-300, -1e-300, math.nan]),
    ),
    max_size=40,
)


# --------------------------------------------------------------------------
# Naive reference implementations
# --------------------------------------------------------------------------

def naive_order(values) -> list[int]:
    return sorted(range(len(values)), key=lambda i: (rank_key(values[i]), i))


def naive_select(psnr, tau) -> list[int]:
    if tau is None:
        return list(range(len(psnr)))
    keep = [i for i, p in enumerate(psnr) if p >= tau]
    if keep:
        return keep
    best = max(p for p in psnr if not math.isnan(p))
    return [i for i, p in enumerate(psnr) if p == best]


def naive_assemble(snaps, cells, psnr, c, block, n_avg, tau):
    """Straight transcription of §3.3 on small arrays: returns image, selection."""
    m, h, w, nch = snaps.shape
    if block == "whole":
        bh, bw = -(-h // c) * c, -(-w // c) * c
    else:
        bh = bw = block
    cand = naive_select(psnr, tau)
    nby, nbx = -(-h // bh), -(-w // bw)
    out = np.zeros((h, w, nch), dtype=np.uint8)
    sel = np.full((nby, nbx, n_avg), -1, dtype=np.int64)
    for by in range(nby):
        for bx in range(nbx):
            y0, x0 = by * bh, bx * bw
            y1, x1 = min(y0 + bh, h), min(x0 + bw, w)
            cs = (slice(None), slice(y0 // c, -(-y1 // c)), slice(x0 // c, -(-x1 // c)))
            nccs = []
            for i in cand:
                s = [cells[i][k][cs[1:]].sum() for k in range(3)]
                den = math.sqrt(s[1] * s[2])
                nccs.append(s[0] / den if den > 0 else math.nan)
            chosen = [cand[j] for j in naive_order(nccs)[:n_avg]]
            sel[by, bx, :len(chosen)] = chosen
            stack = np.stack([snaps[i, y0:y1, x0:x1].astype(np.float64) for i in chosen])
            out[y0:y1, x0:x1] = np.rint(stack.mean(axis=0)).astype(np.uint8)
    return out, sel


def random_run(seed: int, m: int, h: int, w: int, nch: int, c: int):
    """Random snapshots and integer cell statistics (exact sums, frequent ties, zeros -> NaN)."""
    rng = np.random.default_rng(seed)
    snaps = rng.integers(0, 256, (m, h, w, nch), dtype=np.uint8)
    ny, nx = -(-h // c), -(-w // c)
    cells = np.empty((m, 3, ny, nx))
    cells[:, 0] = rng.integers(-4, 5, (m, ny, nx))
    cells[:, 1:] = rng.integers(0, 3, (m, 2, ny, nx))
    psnr = rng.choice([30.0, 31.0, 32.5, 35.0, np.nan], m)
    return snaps, cells, psnr


def real_run(seed: int, m: int, h: int, w: int, c: int):
    """Snapshots with structure, a fingerprint and their true cell statistics."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 120 + 50 * np.sin(x / 9.0)[..., None] * np.cos(y / 7.0)[..., None]
    fp = rng.normal(0, 0.02, (h, w)).astype(np.float32)
    snaps = np.clip(base[None] + rng.normal(0, 6, (m, h, w, 3)), 0, 255).astype(np.uint8)
    residuals = [dippas.noise_residual(s) for s in snaps]
    refs = [attribution_reference(s, fp) for s in snaps]
    cells = np.stack([dippas.cell_statistics(wr, xr, c) for wr, xr in zip(residuals, refs)])
    return snaps, cells, fp, residuals, refs


# --------------------------------------------------------------------------
# Ordering rule
# --------------------------------------------------------------------------

@SETTINGS
@given(ncc_values)
def test_order_groups_and_within_group_order(values):
    order = order_candidates(np.array(values, dtype=np.float64))
    assert sorted(order.tolist()) == list(range(len(values)))
    ranked = [values[i] for i in order]
    groups = [0 if v < 0 else (2 if math.isnan(v) else 1) for v in ranked]
    assert groups == sorted(groups)  # negatives, then non-negatives, then NaN
    neg = [v for v in ranked if v < 0]
    pos = [v for v in ranked if v >= 0]
    assert all(abs(a) <= abs(b) for a, b in zip(neg, neg[1:]))  # closest to zero first
    assert all(a <= b for a, b in zip(pos, pos[1:]))
    nan_pos = [i for i in order if math.isnan(values[i])]
    assert nan_pos == sorted(nan_pos)


@SETTINGS
@given(ncc_values)
def test_order_equals_rank_key_sort_stable_by_index(values):
    assert order_candidates(np.array(values, dtype=np.float64)).tolist() == naive_order(values)


@SETTINGS
@given(ncc_values, st.randoms(use_true_random=False))
def test_order_is_permutation_invariant(values, rnd):
    perm = list(range(len(values)))
    rnd.shuffle(perm)
    shuffled = [values[i] for i in perm]
    a = [rank_key(values[i]) for i in order_candidates(np.array(values))]
    b = [rank_key(shuffled[i]) for i in order_candidates(np.array(shuffled))]
    assert a == b


@SETTINGS
@given(ncc_values, st.integers(0, 45))
def test_first_k_equal_the_prefix_of_the_full_order(values, k):
    v = np.array(values, dtype=np.float64).reshape(-1, 1, 1)
    first = order_blocks(v, k)[0, 0].tolist()
    assert first == naive_order(values)[:k]


def test_order_examples():
    v = np.array([0.1, -0.5, np.nan, -0.001, 0.0, -0.0, 0.1, -0.5])
    # -0.001, -0.5 (index 1), -0.5 (index 7), then 0.0 and -0.0 (ties, by index), 0.1, 0.1, NaN
    assert order_candidates(v).tolist() == [3, 1, 7, 4, 5, 0, 6, 2]
    assert rank_key(-0.001) < rank_key(-0.5) < rank_key(0.0) < rank_key(0.3) < rank_key(math.nan)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 4), st.integers(1, 4),
       st.one_of(st.none(), st.integers(0, 14)))
def test_order_blocks_matches_per_block_order(seed, m, nby, nbx, limit):
    rng = np.random.default_rng(seed)
    shape = (m, nby, nbx)
    ncc = rng.choice([-0.2, -0.1, 0.0, 0.1, np.nan], shape) + rng.choice([0, 0.05], shape)
    out = order_blocks(ncc, limit)
    k = m if limit is None else min(limit, m)
    assert out.shape == (nby, nbx, k)
    for by in range(nby):
        for bx in range(nbx):
            assert out[by, bx].tolist() == order_candidates(ncc[:, by, bx])[:k].tolist()


# --------------------------------------------------------------------------
# Selection by PSNR
# --------------------------------------------------------------------------

def test_select_snapshots_threshold_and_fallback():
    psnr = np.array([30.0, 32.0, np.nan, 32.0, 31.0])
    assert select_snapshots(psnr, 31.0).tolist() == [1, 3, 4]
    assert select_snapshots(psnr, 32.0).tolist() == [1, 3]
    # none reaches 35 dB: every snapshot at the best PSNR reached (32 dB)
    assert select_snapshots(psnr, 35.0).tolist() == [1, 3]
    assert select_snapshots(psnr, None).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(DippasInputError):
        select_snapshots(np.array([np.nan, np.nan]), 30.0)
    with pytest.raises(DippasInputError):
        select_snapshots(psnr, math.nan)
    with pytest.raises(DippasInputError):
        select_snapshots(np.array([]), 30.0)


def test_assemble_reports_fallback():
    snaps, cells, _ = random_run(3, 4, 16, 16, 3, 4)
    psnr = np.array([30.0, 33.0, 33.0, 31.0])
    res = assemble(snaps, cells, psnr, 4, 8, 5, psnr_threshold=40.0)
    assert res.params["psnr_fallback"] is True
    assert res.candidates.tolist() == [1, 2]
    assert set(np.unique(res.selection)) <= {-1, 1, 2}
    assert (res.counts == 2).all()
    res = assemble(snaps, cells, psnr, 4, 8, 5, psnr_threshold=31.0)
    assert res.params["psnr_fallback"] is False and res.candidates.tolist() == [1, 2, 3]


# --------------------------------------------------------------------------
# Averaging of the first L blocks
# --------------------------------------------------------------------------

run_params = st.tuples(
    st.integers(0, 2**32 - 1),       # seed
    st.integers(1, 6),               # M
    st.integers(1, 30),              # H
    st.integers(1, 30),              # W
    st.sampled_from([1, 3]),         # channels
    st.sampled_from([1, 2, 4, 8]),   # cell size
    st.sampled_from([1, 2, 3, "whole"]),  # block size in cells
    st.integers(1, 8),               # L
    st.sampled_from([None, 30.0, 32.5, 35.0, 50.0]),  # tau
)


@SETTINGS
@given(run_params)
def test_assemble_equals_naive_implementation(p):
    seed, m, h, w, nch, c, k, n_avg, tau = p
    snaps, cells, psnr = random_run(seed, m, h, w, nch, c)
    if tau is not None and np.isnan(psnr).all():
        psnr[0] = 30.0
    block = "whole" if k == "whole" else k * c
    res = Assembler(snaps, cells, psnr, c).assemble(block, n_avg, tau)
    image, sel = naive_assemble(snaps, cells, psnr, c, block, n_avg, tau)
    np.testing.assert_array_equal(res.selection, sel)
    np.testing.assert_array_equal(res.image, image)
    assert res.image.dtype == np.uint8 and res.image.shape == snaps.shape[1:]
    # the NCC reported for each chosen block is that block's NCC from the cells
    full = block_ncc_from_cells(cells, c, block)
    by, bx = np.indices(sel.shape[:2])
    for t in range(n_avg):
        used = sel[:, :, t] >= 0
        expected = full[np.where(used, sel[:, :, t], 0), by, bx]
        np.testing.assert_array_equal(res.block_ncc[:, :, t][used], expected[used])
        assert np.isnan(res.block_ncc[:, :, t][~used]).all()


@SETTINGS
@given(run_params)
def test_l1_picks_the_first_by_the_rule(p):
    seed, m, h, w, nch, c, k, _, tau = p
    snaps, cells, psnr = random_run(seed, m, h, w, nch, c)
    psnr[:] = 35.0
    block = "whole" if k == "whole" else k * c
    res = assemble(snaps, cells, psnr, c, block, 1, tau)
    full = block_ncc_from_cells(cells, c, block)
    bh, bw = res.block_size
    for by in range(full.shape[1]):
        for bx in range(full.shape[2]):
            best = min(range(m), key=lambda i: (rank_key(full[i, by, bx]), i))
            assert res.selection[by, bx, 0] == best
            y0, x0 = by * bh, bx * bw
            np.testing.assert_array_equal(res.image[y0:y0 + bh, x0:x0 + bw],
                                          snaps[best, y0:y0 + bh, x0:x0 + bw])


@SETTINGS
@given(run_params)
def test_l_at_least_m_averages_every_candidate(p):
    seed, m, h, w, nch, c, k, extra, tau = p
    snaps, cells, psnr = random_run(seed, m, h, w, nch, c)
    if tau is not None and np.isnan(psnr).all():
        psnr[0] = 30.0
    block = "whole" if k == "whole" else k * c
    res = assemble(snaps, cells, psnr, c, block, m + extra - 1, tau)
    cand = naive_select(psnr, tau)
    expected = np.rint(snaps[cand].astype(np.float64).mean(axis=0)).astype(np.uint8)
    np.testing.assert_array_equal(res.image, expected)
    assert (res.counts == len(cand)).all()


def test_whole_l1_prefers_negative_closest_to_zero():
    rng = np.random.default_rng(5)
    snaps = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    # one cell per image; NCC = s0 / sqrt(s1 s2) with s1 = s2 = 1
    nccs = [0.01, -0.3, -0.5, -0.1, -0.1, np.nan]
    cells = np.zeros((6, 3, 1, 1))
    cells[:, 0, 0, 0] = np.nan_to_num(nccs)
    cells[:, 1:, 0, 0] = 1.0
    cells[5, 1] = 0.0  # no energy: NaN
    res = assemble(snaps, cells, np.full(6, 35.0), 8, "whole", 1, 30.0)
    assert res.selection.shape == (1, 1, 1)
    assert res.selection[0, 0, 0] == 3  # -0.1 beats +0.01; tie with index 4 goes to 3
    np.testing.assert_array_equal(res.image, snaps[3])
    assert res.best_ncc[0, 0] == pytest.approx(-0.1)
    # without negatives: the smallest non-negative NCC
    cells[1:5, 0] *= -1
    res = assemble(snaps, cells, np.full(6, 35.0), 8, None, 1)
    assert res.selection[0, 0, 0] == 0
    # all NaN: the lowest index
    cells[:, 1] = 0.0
    res = assemble(snaps, cells, np.full(6, 35.0), 8, "whole", 2)
    assert res.selection[0, 0].tolist() == [0, 1]


def test_average_blocks_rounds_half_to_even_and_checks_selection():
    snaps = np.zeros((2, 2, 2, 1), dtype=np.uint8)
    snaps[0] = 1
    snaps[1] = [[[2], [4]], [[5], [6]]]
    img = average_blocks(snaps, np.array([[[0, 1]]]), (2, 2))
    # means 1.5, 2.5, 3.0, 3.5 -> 2, 2, 3, 4
    assert img[..., 0].tolist() == [[2, 2], [3, 4]]
    with pytest.raises(DippasInputError):
        average_blocks(snaps, np.array([[[-1, -1]]]), (2, 2))
    with pytest.raises(DippasInputError):
        average_blocks(snaps, np.array([[[0, 2]]]), (2, 2))
    with pytest.raises(DippasInputError):
        average_blocks(snaps, np.array([[[0]], [[1]]]), (2, 2))


class CountingFrames:
    """Array-like over snapshots that records which frames are read."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.reads: list = []

    def __getitem__(self, key):
        self.reads.append(key)
        return self._data[key]


def test_memmap_and_array_like_give_the_same_result(tmp_path):
    snaps, cells, psnr = random_run(11, 7, 40, 36, 3, 4)
    mm = np.lib.format.open_memmap(tmp_path / "snapshots.npy", mode="w+", dtype=np.uint8,
                                   shape=snaps.shape)
    mm[:] = snaps
    mm.flush()
    del mm
    mapped = np.load(tmp_path / "snapshots.npy", mmap_mode="r")
    frames = CountingFrames(snaps)
    for block, n_avg in [(8, 2), (12, 3), ("whole", 1), (4, 10)]:
        ref = assemble(snaps, cells, psnr, 4, block, n_avg, 31.0)
        frames.reads.clear()
        for source in (mapped, frames):
            res = Assembler(source, cells, psnr, 4).assemble(block, n_avg, 31.0)
            np.testing.assert_array_equal(res.image, ref.image)
            np.testing.assert_array_equal(res.selection, ref.selection)
        used = np.unique(ref.selection[ref.selection >= 0]).tolist()
        # one read per selected snapshot, in increasing order, never the whole array
        assert frames.reads == used


def test_lagging_cells_use_the_common_prefix():
    snaps, cells, psnr = random_run(2, 6, 16, 16, 3, 4)
    a = Assembler(snaps, cells[:4], psnr, 4)
    assert a.n_snapshots == 4
    res = a.assemble(8, 10, None)
    assert res.selection.max() == 3 and (res.counts == 4).all()


def test_bad_parameters_raise():
    snaps, cells, psnr = random_run(2, 3, 16, 16, 3, 4)
    a = Assembler(snaps, cells, psnr, 4)
    for block in (6, 0, -8, "half", 8.5):
        with pytest.raises(DippasInputError):
            a.assemble(block, 1, None)
    for n_avg in (0, -1, 1.5):
        with pytest.raises(DippasInputError):
            a.assemble(8, n_avg, None)
    with pytest.raises(DippasInputError):
        Assembler(snaps, cells, psnr, 8)  # cells of 4 do not match a cell size of 8
    with pytest.raises(DippasInputError):
        Assembler(snaps.astype(np.float32), cells, psnr, 4)


# --------------------------------------------------------------------------
# Block NCC from cell statistics against the direct computation
# --------------------------------------------------------------------------

@pytest.mark.parametrize("shape, cell, blocks", [
    ((96, 128), 16, (16, 32, 48, 64, "whole")),
    ((96, 128), 8, (8, 24, 40, 64, "whole")),
    ((100, 90), 16, (16, 32, 48, "whole")),   # partial cells and blocks at the border
])
def test_block_ncc_from_cells_equals_direct(shape, cell, blocks):
    snaps, cells, fp, residuals, refs = real_run(7, 3, shape[0], shape[1], cell)
    for block in blocks:
        from_cells = block_ncc_from_cells(cells, cell, block)
        b = max(shape) if block == "whole" else block
        direct = np.stack([dippas.block_ncc_map(wr, xr, b) for wr, xr in zip(residuals, refs)])
        assert from_cells.shape == direct.shape
        np.testing.assert_allclose(from_cells, direct, rtol=1e-9, atol=1e-12)
        for i in range(3):
            np.testing.assert_allclose(snapshot_block_ncc(cells[i], cell, block), direct[i],
                                       rtol=1e-9, atol=1e-12)
    whole = block_ncc_from_cells(cells, cell, "whole")[:, 0, 0]
    direct_whole = [dippas.ncc(wr, xr) for wr, xr in zip(residuals, refs)]
    np.testing.assert_allclose(whole, direct_whole, rtol=1e-6)
    sub = block_ncc_from_cells(cells, cell, blocks[1], indices=[2, 0])
    np.testing.assert_array_equal(sub, block_ncc_from_cells(cells, cell, blocks[1])[[2, 0]])


def test_heatmaps_and_whole_image_pick_on_real_snapshots():
    snaps, cells, fp, residuals, refs = real_run(9, 5, 64, 80, 16)
    psnr = np.full(5, 36.0)
    a = Assembler(snaps, cells, psnr, 16, fingerprint=fp)
    for block in (16, 32, "whole"):
        hm = a.snapshot_heatmap(4, block)
        b = 80 if block == "whole" else block
        np.testing.assert_allclose(hm, dippas.block_ncc_map(residuals[4], refs[4], b),
                                   rtol=1e-9, atol=1e-12)
    res = a.assemble("whole", 1, 35.0)
    direct = [dippas.ncc(wr, xr) for wr, xr in zip(residuals, refs)]
    best = naive_order(direct)[0]
    assert res.selection[0, 0, 0] == best
    np.testing.assert_array_equal(res.image, snaps[best])
    # the result's own map: residual of the assembled image against gray(result) * P
    hm = a.result_heatmap(res)
    assert hm.shape == (1, 1)
    assert hm[0, 0] == pytest.approx(direct[best], rel=1e-5)
    res32 = a.assemble(32, 2, 35.0)
    hm32 = a.result_heatmap(res32)
    w = dippas.noise_residual(res32.image)
    x = attribution_reference(res32.image, fp)
    np.testing.assert_allclose(hm32, dippas.block_ncc_map(w, x, 32))
    np.testing.assert_allclose(image_block_ncc(res32.image, fp, 32), hm32)
    with pytest.raises(DippasInputError):
        Assembler(snaps, cells, psnr, 16).result_heatmap(res32)


# --------------------------------------------------------------------------
# Tiles
# --------------------------------------------------------------------------

def test_stitch_round_trip_and_overlap():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    tiles = [(y0, x0, img[y0:y0 + 32, x0:x0 + 40]) for y0 in (0, 32) for x0 in (0, 40)]
    np.testing.assert_array_equal(stitch(tiles, img.shape), img)
    other = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    over = stitch(tiles + [(10, 10, other)], img.shape)
    expected = img.copy()
    expected[10:30, 10:30] = np.rint((img[10:30, 10:30].astype(float) + other) / 2)
    np.testing.assert_array_equal(over, expected)
    with pytest.raises(DippasInputError):
        stitch(tiles[:3], img.shape)  # a gap
    with pytest.raises(DippasInputError):
        stitch(tiles + [(40, 60, other)], img.shape)  # outside the image


def _grid_tiles(image, tile, overlap):
    from dippas.dip.tiling import tile_grid

    grid = tile_grid(image.shape[0], image.shape[1], tile, 16, overlap)
    return grid, [(g.y0, g.x0, image[g.slices]) for g in grid]


@pytest.mark.parametrize("shape, tile, overlap", [
    ((448, 448), 256, 32), ((300, 700), 128, 40), ((100, 90), 64, 31), ((1000, 600), 256, 1)])
def test_feather_weights_of_a_grid_sum_to_one_and_are_one_off_the_overlaps(shape, tile, overlap):
    from dippas.assembly.stitching import tile_weights

    grid, _ = _grid_tiles(np.zeros(shape, np.uint8), tile, overlap)
    total = np.zeros(shape)
    cover = np.zeros(shape, int)
    for g in grid:
        total[g.slices] += tile_weights(g.y0, g.x0, g.h, g.w, shape, overlap)
        cover[g.slices] += 1
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-12)  # before any normalisation
    assert (total[cover == 1] == 1.0).all()
    assert (cover > 1).any()


def test_stitching_overlapping_tiles_keeps_constants_and_single_cover_pixels_exact():
    rng = np.random.default_rng(12)
    for value in (0, 1, 128, 254, 255):
        const = np.full((448, 448, 3), value, np.uint8)
        np.testing.assert_array_equal(stitch(_grid_tiles(const, 256, 32)[1], const.shape, 32), const)
    img = rng.integers(0, 256, (300, 700, 3), dtype=np.uint8)
    grid, tiles = _grid_tiles(img, 128, 40)
    np.testing.assert_array_equal(stitch(tiles, img.shape, 40), img)  # tiles agree: the image
    noisy = [(y0, x0, rng.integers(0, 256, t.shape, dtype=np.uint8)) for y0, x0, t in tiles]
    out = stitch(noisy, img.shape, 40)
    cover = np.zeros(img.shape[:2], int)
    for g in grid:
        cover[g.slices] += 1
    for (y0, x0, t), g in zip(noisy, grid):
        own = cover[g.slices] == 1
        np.testing.assert_array_equal(out[g.slices][own], t[own])
    gray = stitch([(y0, x0, t[..., 0]) for y0, x0, t in noisy], img.shape[:2], 40)
    np.testing.assert_array_equal(gray, out[..., 0])


@pytest.mark.parametrize("offset, overlap", [(64, 32), (200, 32), (-90, 48), (7, 8)])
def test_a_constant_offset_between_two_tiles_is_spread_over_the_ramp(offset, overlap):
    tile, base = 120, (20 if offset > 0 else 235)
    left = np.full((40, tile), base, np.uint8)
    right = np.full((40, tile), base + offset, np.uint8)
    x1 = tile - overlap  # the two tiles share `overlap` columns
    shape = (40, x1 + tile)
    out = stitch([(0, 0, left), (0, x1, right)], shape, overlap).astype(int)
    steps = np.abs(np.diff(out, axis=1))
    # rounding once to uint8 adds less than one grey level to a step of offset / overlap
    assert steps.max() <= abs(offset) / overlap + 1
    if offset % overlap == 0:
        assert steps.max() == abs(offset) // overlap
    np.testing.assert_array_equal(out[:, :x1], base)
    np.testing.assert_array_equal(out[:, tile:], base + offset)
    plain = stitch([(0, 0, left), (0, x1, right)], shape).astype(int)  # no feather: a seam
    assert np.abs(np.diff(plain, axis=1)).max() >= abs(offset) // 2 > abs(offset) / overlap + 1


def test_stitch_refuses_a_negative_overlap():
    img = np.zeros((40, 40), np.uint8)
    with pytest.raises(DippasInputError, match="non-negative"):
        stitch([(0, 0, img)], img.shape, -1)


def test_assemble_tiles_equals_per_tile_assembly():
    full_snaps, _, psnr = random_run(8, 5, 48, 60, 3, 4)
    rng = np.random.default_rng(8)
    geometry = [(0, 0, 24, 60), (24, 0, 24, 32), (24, 32, 24, 28)]
    tiles = []
    for y0, x0, h, w in geometry:
        part = full_snaps[:, y0:y0 + h, x0:x0 + w]
        cells = np.empty((5, 3, -(-h // 4), -(-w // 4)))
        cells[:, 0] = rng.normal(size=cells[:, 0].shape)
        cells[:, 1:] = rng.uniform(0.5, 1.0, cells[:, 1:].shape)
        tiles.append((y0, x0, Assembler(part, cells, psnr, 4)))
    image, results = assemble_tiles(tiles, (48, 60, 3), 8, 2, 31.0)
    for (y0, x0, a), r in zip(tiles, results):
        np.testing.assert_array_equal(r.image, a.assemble(8, 2, 31.0).image)
        h, w = r.image.shape[:2]
        np.testing.assert_array_equal(image[y0:y0 + h, x0:x0 + w], r.image)


def test_min_abs_rule_orders_by_magnitude_and_is_the_papers_whole_l1_choice():
    from dippas.jobs import DippasJob, assembly_rule

    v = np.array([0.01, -0.3, -0.005, np.nan, 0.2, -0.01])
    assert order_candidates(v, "min-abs").tolist() == [2, 0, 5, 4, 1, 3]  # ties: lowest index
    assert order_candidates(v).tolist() == [2, 5, 1, 0, 4, 3]            # the paper's rank
    with pytest.raises(DippasInputError, match="unknown ordering rule"):
        order_candidates(v, "max")
    rng = np.random.default_rng(5)
    snaps = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    cells = np.zeros((4, 3, 1, 1))
    cells[:, 0, 0, 0] = [0.01, -0.3, -0.5, 0.2]
    cells[:, 1:, 0, 0] = 1.0
    # the paper's no-post-processing case (§5.3): minimum |NCC| among the candidates
    res = assemble(snaps, cells, np.full(4, 35.0), 8, "whole", 1, 30.0, rule="min-abs")
    assert res.selection[0, 0, 0] == 0
    assert assembly_rule("paper", "whole", 1) == "min-abs"
    assert assembly_rule("paper", 64, 10) == "rank" and assembly_rule("min-abs", 64, 10) == "min-abs"
    assert DippasJob(block_size="whole", blocks=1).assembly_rule() == "min-abs"


def test_zero_blend_takes_negative_block_nccs_to_zero_and_leaves_the_others():
    from dippas.assembly.zero_blend import MAX_ALPHA, blend_to_zero_ncc
    from dippas.correlation import attribution_reference, block_ncc_map
    from dippas.residual import noise_residual
    from skimage import data

    rng = np.random.default_rng(3)
    base = data.astronaut()[:128, :128].astype(np.float64)
    k = rng.normal(0, 0.02, (128, 128)).astype(np.float32)
    photo = np.clip(np.rint(base * (1 + k[..., None])), 0, 255).astype(np.uint8)
    over = np.clip(np.rint(base * (1 - k[..., None])), 0, 255).astype(np.uint8)  # anti-correlated
    over[:64] = np.clip(np.rint(base[:64]), 0, 255).astype(np.uint8)  # top half: no fingerprint

    def nccs(img):
        return block_ncc_map(noise_residual(img, 3.0), attribution_reference(img, k), 64)

    before = nccs(over)
    out, alpha = blend_to_zero_ncc(over, photo, k, 64)
    after = nccs(out)
    assert (before[1] < -0.05).all() and (alpha[1] > 0).all() and (alpha[1] <= MAX_ALPHA).all()
    assert np.abs(after[1]).max() < 0.2 * np.abs(before[1]).min()  # the negative blocks: near zero
    neg_top = before[0] < 0
    assert (alpha[0][~neg_top] == 0).all()  # blocks at or above zero untouched
    np.testing.assert_array_equal(out[:64][:, np.repeat(~neg_top, 64)],
                                  over[:64][:, np.repeat(~neg_top, 64)])
    assert out.dtype == np.uint8 and out.shape == over.shape
    same, none = blend_to_zero_ncc(photo, photo, k, "whole")
    assert (none == 0).all() and same is photo
