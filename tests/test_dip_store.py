"""The DIPPAS run store: append-only .npy, CSV logs, crash consistency, cells, tiling.

None of these tests needs torch: snapshots come from a fake source.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from dippas import cell_statistics, noise_residual
from dippas.correlation import attribution_reference
from dippas.dip.appendable_npy import (
    HEADER_LEN,
    AppendableNpy,
    open_frames,
    read_frame,
    valid_frame_count,
)
from dippas.dip.cells_worker import CellsWorker, catch_up_cells, snapshot_cells
from dippas.dip.store import (
    HISTORY_COLUMNS,
    TABLE_COLUMNS,
    CsvLog,
    RunStore,
    TileStore,
    TileWriter,
    create_run_folder,
    read_csv_columns,
)
from dippas.dip.tiling import TileGeometry, axis_splits, min_tile_side, tile_grid
from dippas.errors import DippasInputError
from hypothesis import given, settings
from hypothesis import strategies as st


def _frames(n: int, shape=(8, 6, 3), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


# ------------------------------------------------------------------ append-only .npy

def test_appendable_npy_is_a_standard_npy(tmp_path):
    path = tmp_path / "a.npy"
    frames = _frames(5)
    with AppendableNpy.create(path, frames.shape[1:], np.uint8) as a:
        assert np.load(path).shape == (0, 8, 6, 3)
        for i, f in enumerate(frames):
            assert a.append(f) == i
            mm = np.load(path, mmap_mode="r")  # readable after every append
            np.testing.assert_array_equal(mm, frames[: i + 1])
    assert os.path.getsize(path) == HEADER_LEN + frames.nbytes
    np.testing.assert_array_equal(np.load(path), frames)
    np.testing.assert_array_equal(open_frames(path), frames)
    np.testing.assert_array_equal(read_frame(path, 3), frames[3])


def test_appendable_npy_float_frames_and_reopen(tmp_path):
    path = tmp_path / "c.npy"
    data = np.random.default_rng(1).normal(size=(4, 3, 2, 5))
    with AppendableNpy.create(path, (3, 2, 5), np.float64) as a:
        a.append(data[0])
        a.append(data[1])
    with AppendableNpy.open(path, (3, 2, 5), np.float64) as a:
        assert len(a) == 2
        a.append(data[2])
        a.append(data[3])
    np.testing.assert_array_equal(np.load(path, mmap_mode="r"), data)
    with pytest.raises(ValueError):
        AppendableNpy.open(path, (3, 2, 4))
    with pytest.raises(ValueError):
        AppendableNpy.open(path, dtype=np.float32)


def test_appendable_npy_refuses_wrong_frames_and_plain_npy(tmp_path):
    path = tmp_path / "a.npy"
    with AppendableNpy.create(path, (2, 2), np.uint8) as a, pytest.raises(ValueError):
        a.append(np.zeros((2, 3), np.uint8))
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros((3, 2, 2), np.uint8))
    assert valid_frame_count(plain) == 3  # readers accept any .npy
    with pytest.raises(ValueError, match="not an appendable"):
        AppendableNpy.open(plain)


def test_crash_mid_frame_keeps_complete_frames(tmp_path):
    """A kill while a frame is half written: the header still says the old count."""
    path = tmp_path / "s.npy"
    frames = _frames(3)
    with AppendableNpy.create(path, frames.shape[1:], np.uint8) as a:
        a.append(frames[0])
        a.append(frames[1])
    with open(path, "ab") as f:  # third frame torn half way, no header update
        f.write(frames[2].tobytes()[: frames[2].nbytes // 2])
    np.testing.assert_array_equal(np.load(path, mmap_mode="r"), frames[:2])
    np.testing.assert_array_equal(open_frames(path), frames[:2])
    with AppendableNpy.open(path) as a:  # reopening cuts the torn bytes
        assert len(a) == 2
        a.append(frames[2])
    np.testing.assert_array_equal(np.load(path), frames)


def test_crash_after_frame_before_header(tmp_path):
    """A complete frame on disk that the header does not announce yet is ignored."""
    path = tmp_path / "s.npy"
    frames = _frames(2)
    with AppendableNpy.create(path, frames.shape[1:], np.uint8) as a:
        a.append(frames[0])
    with open(path, "ab") as f:
        f.write(frames[1].tobytes())
    assert valid_frame_count(path) == 1
    np.testing.assert_array_equal(np.load(path, mmap_mode="r"), frames[:1])


def test_header_ahead_of_data_is_clamped(tmp_path):
    """A header that claims more frames than the file holds (file cut afterwards)."""
    path = tmp_path / "s.npy"
    frames = _frames(3)
    with AppendableNpy.create(path, frames.shape[1:], np.uint8) as a:
        for f in frames:
            a.append(f)
    os.truncate(path, HEADER_LEN + frames[0].nbytes * 2 + 10)
    assert valid_frame_count(path) == 2
    np.testing.assert_array_equal(open_frames(path), frames[:2])
    with AppendableNpy.open(path) as a:
        assert len(a) == 2
    np.testing.assert_array_equal(np.load(path), frames[:2])


def test_truncate(tmp_path):
    path = tmp_path / "s.npy"
    frames = _frames(4)
    with AppendableNpy.create(path, frames.shape[1:], np.uint8) as a:
        for f in frames:
            a.append(f)
        a.truncate(1)
        with pytest.raises(ValueError):
            a.truncate(2)
    np.testing.assert_array_equal(np.load(path), frames[:1])
    assert os.path.getsize(path) == HEADER_LEN + frames[0].nbytes


# ------------------------------------------------------------------ CSV logs

def test_csv_torn_row_is_ignored_and_cut(tmp_path):
    path = tmp_path / "table.csv"
    log = CsvLog(path, TABLE_COLUMNS)
    log.append(0, 5, 33.5, 1e-3, 0.25)
    log.append(1, 6, 34.0, 9e-4, 0.5)
    log.close()
    with open(path, "a") as f:
        f.write("2,7,34.5")  # a kill in the middle of a row
    data = read_csv_columns(path, TABLE_COLUMNS)
    np.testing.assert_array_equal(data["iteration"], [5, 6])
    assert data["psnr"].dtype == np.float64 and data["index"].dtype == np.int64
    log = CsvLog(path, TABLE_COLUMNS)
    log.append(2, 7, 34.5, 8e-4, 0.75)
    log.close()
    np.testing.assert_array_equal(read_csv_columns(path, TABLE_COLUMNS)["index"], [0, 1, 2])
    assert read_csv_columns(path, TABLE_COLUMNS)["gamma"][2] == 0.75


def test_csv_values_round_trip_exactly(tmp_path):
    path = tmp_path / "history.csv"
    values = [1, 33.123456789012345, 1.2345678901234567e-05, 0.0, 12.5]
    log = CsvLog(path, HISTORY_COLUMNS)
    log.append(*values)
    log.close()
    data = read_csv_columns(path, HISTORY_COLUMNS)
    assert [data[c][0] for c in HISTORY_COLUMNS] == values


# ------------------------------------------------------------------ tile writer and reader

GEOM = TileGeometry(0, 0, 0, 0, 40, 48, 48, 48)


def _write_tile(tile_dir, n, cell=16):
    writer = TileWriter(tile_dir, GEOM, cell)
    frames = _frames(n, (GEOM.h, GEOM.w, 3), seed=3)
    for i, f in enumerate(frames):
        writer.append_snapshot(f, 10 + i, 33.0 + i, 1e-3 / (i + 1), 0.1 * i)
        writer.log_iteration(10 + i, 33.0 + i, 1e-3, 0.1 * i, float(i))
    return writer, frames


def test_tile_writer_and_store_agree(tmp_path):
    writer, frames = _write_tile(tmp_path / "0_0", 4)
    store = TileStore(tmp_path / "0_0")
    assert store.geometry == GEOM
    assert store.n_snapshots == 4 and store.n_cells == 0
    np.testing.assert_array_equal(store.snapshots, frames)
    assert isinstance(store.snapshots, np.memmap)
    np.testing.assert_array_equal(store.table["iteration"], [10, 11, 12, 13])
    np.testing.assert_array_equal(store.table["index"], [0, 1, 2, 3])
    assert store.cells.shape == (0, 3, 3, 3)
    assert len(store.history["iteration"]) == 4
    writer.close()


def test_frame_without_table_row_is_not_valid(tmp_path):
    """Crash after a frame (and its header update) but before its table row."""
    writer, frames = _write_tile(tmp_path / "0_0", 3)
    writer.snapshots.append(frames[0])  # frame 3 lands, its row never does
    writer.close()
    store = TileStore(tmp_path / "0_0")
    assert store.n_snapshots == 3
    assert store.snapshots.shape[0] == 3 and len(store.table["index"]) == 3
    # reopening for writing drops the orphan frame
    writer = TileWriter(tmp_path / "0_0", GEOM, 16)
    assert len(writer) == 3
    assert valid_frame_count(tmp_path / "0_0" / "snapshots.npy") == 3
    writer.close()


def test_table_row_without_frame_is_not_valid(tmp_path):
    """A table row whose frame is incomplete (frame cut by a crash)."""
    writer, frames = _write_tile(tmp_path / "0_0", 3)
    writer.close()
    path = tmp_path / "0_0" / "snapshots.npy"
    os.truncate(path, os.path.getsize(path) - 100)
    store = TileStore(tmp_path / "0_0")
    assert store.n_snapshots == 2
    np.testing.assert_array_equal(store.snapshots, frames[:2])
    assert len(store.table["psnr"]) == 2
    writer = TileWriter(tmp_path / "0_0", GEOM, 16)
    assert len(writer) == 2
    assert len(read_csv_columns(tmp_path / "0_0" / "table.csv", TABLE_COLUMNS)["index"]) == 2
    writer.close()


def test_rollback_to_a_checkpoint(tmp_path):
    writer, frames = _write_tile(tmp_path / "0_0", 5)
    with AppendableNpy.open(tmp_path / "0_0" / "cells.npy") as cells:
        for _ in range(5):
            cells.append(np.ones((3, 3, 3)))
    writer.rollback(2, 11)
    writer.close()
    store = TileStore(tmp_path / "0_0")
    assert store.n_snapshots == 2 and store.n_cells == 2
    np.testing.assert_array_equal(store.history["iteration"], [10, 11])
    np.testing.assert_array_equal(store.snapshots, frames[:2])
    writer = TileWriter(tmp_path / "0_0", GEOM, 16)
    with pytest.raises(ValueError):
        writer.rollback(3, 12)
    writer.close()


def test_run_store_reads_a_run_folder(tmp_path):
    img = _frames(1, (40, 48, 3))[0]
    k = np.random.default_rng(0).normal(size=(40, 48)).astype(np.float32)
    params = {"mode": "aware", "image_shape": [40, 48, 3], "tiles": [GEOM.__dict__]}
    create_run_folder(tmp_path / "run", params, img, k)
    writer, frames = _write_tile(tmp_path / "run" / "tiles" / "0_0", 2)
    writer.close()
    store = RunStore(tmp_path / "run")
    assert len(store) == 1 and store.image_shape == (40, 48)
    np.testing.assert_array_equal(store.input, img)
    np.testing.assert_array_equal(store.fingerprint, k)
    tile = store.tile(0, 0)
    assert tile.n_snapshots == 2 and store.tile("0_0").n_snapshots == 2
    assert [t.geometry for t in store] == [GEOM]
    assert not store.is_complete
    with pytest.raises(DippasInputError):
        store.tile(1, 0)


def test_run_store_tile_not_started_reads_empty(tmp_path):
    g1 = TileGeometry(1, 0, 40, 0, 40, 48, 48, 48)
    params = {"mode": "aware", "image_shape": [80, 48, 3], "cell": 16,
              "tiles": [GEOM.__dict__, g1.__dict__]}
    img = _frames(1, (80, 48, 3))[0]
    create_run_folder(tmp_path / "run", params, img, np.ones((80, 48), np.float32))
    store = RunStore(tmp_path / "run")
    assert len(store) == 2
    tile = store.tile(1, 0)
    assert tile.geometry == g1 and tile.n_snapshots == 0 and tile.n_cells == 0
    assert tile.snapshots.shape == (0, 40, 48, 3) and tile.cells.shape == (0, 3, 3, 3)
    assert len(tile.table["psnr"]) == 0 and tile.status == {}
    assert [t.n_snapshots for t in store] == [0, 0]
    with pytest.raises(DippasInputError, match="not a DIPPAS run"):
        RunStore(tmp_path)


# ------------------------------------------------------------------ background cells

def _direct_cells(frames, pattern, cell):
    return np.stack([cell_statistics(noise_residual(f), attribution_reference(f, pattern), cell)
                     for f in frames])


def test_cells_worker_matches_direct_statistics(tmp_path):
    tile_dir = tmp_path / "0_0"
    writer = TileWriter(tile_dir, GEOM, 16)
    pattern = np.random.default_rng(5).normal(size=(GEOM.h, GEOM.w)).astype(np.float32)
    worker = CellsWorker(cell=16).start()
    worker.add_tile(tile_dir, pattern, 0)
    frames = _frames(6, (GEOM.h, GEOM.w, 3), seed=9)
    for i, f in enumerate(frames):
        writer.append_snapshot(f, i + 1, 35.0, 1e-3, 0.0)
        worker.notify(tile_dir, len(writer))
    worker.finish()
    writer.close()
    cells = TileStore(tile_dir).cells
    assert cells.shape == (6, 3, 3, 3)
    np.testing.assert_array_equal(cells, _direct_cells(frames, pattern, 16))
    np.testing.assert_array_equal(cells[2], snapshot_cells(frames[2], pattern, 16))


def test_cells_worker_reports_errors(tmp_path):
    worker = CellsWorker().start()
    worker.add_tile(tmp_path / "missing", np.ones((4, 4), np.float32), 1)
    with pytest.raises(FileNotFoundError):
        worker.finish()


def test_catch_up_cells_fills_only_the_missing_ones(tmp_path):
    tile_dir = tmp_path / "0_0"
    writer, frames = _write_tile(tile_dir, 4)
    writer.close()
    pattern = np.random.default_rng(2).normal(size=(GEOM.h, GEOM.w)).astype(np.float32)
    assert catch_up_cells(tile_dir, pattern, 16, upto=1) == 1
    seen = []
    assert catch_up_cells(tile_dir, pattern, 16, progress=lambda d, t: seen.append((d, t))) == 4
    assert seen == [(2, 4), (3, 4), (4, 4)]
    np.testing.assert_array_equal(TileStore(tile_dir).cells, _direct_cells(frames, pattern, 16))


def test_cells_never_outrun_valid_snapshots(tmp_path):
    tile_dir = tmp_path / "0_0"
    writer, frames = _write_tile(tile_dir, 3)
    writer.close()
    with AppendableNpy.open(tile_dir / "cells.npy") as cells:
        for _ in range(5):  # stale cells of a discarded future
            cells.append(np.zeros((3, 3, 3)))
    assert TileStore(tile_dir).n_cells == 3
    assert TileStore(tile_dir).cells.shape[0] == 3


def test_worker_runs_beside_a_busy_main_thread(tmp_path):
    """The worker lags and catches up; notify is cheap and never blocks."""
    tile_dir = tmp_path / "0_0"
    writer = TileWriter(tile_dir, GEOM, 16)
    pattern = np.ones((GEOM.h, GEOM.w), np.float32)
    worker = CellsWorker(cell=16).start()
    worker.add_tile(tile_dir, pattern, 0)
    for f in _frames(20, (GEOM.h, GEOM.w, 3), seed=4):
        writer.append_snapshot(f, 1, 40.0, 0.0, 0.0)
        worker.notify(tile_dir, len(writer))
    worker.finish()
    writer.close()
    assert worker.done_count(tile_dir) == 20
    assert TileStore(tile_dir).n_cells == 20


# ------------------------------------------------------------------ tiling

@settings(max_examples=60, deadline=None)
@given(h=st.integers(32, 3000), w=st.integers(32, 3000), tile=st.sampled_from([64, 128, 256, 512]))
def test_tiles_cover_the_image_exactly_once(h, w, tile):
    tiles = tile_grid(h, w, tile, 16)
    cover = np.zeros((h, w), np.int32)
    for t in tiles:
        cover[t.slices] += 1
        assert t.h >= min(h, min_tile_side(tile)) and t.w >= min(w, min_tile_side(tile))
        assert t.h < tile + min_tile_side(tile) and t.w < tile + min_tile_side(tile)
        assert t.padded_h % 16 == 0 and t.padded_w % 16 == 0
        assert 0 <= t.padded_h - t.h < 16 and 0 <= t.padded_w - t.w < 16
    assert (cover == 1).all()
    names = [t.name for t in tiles]
    assert len(set(names)) == len(names)


def test_tile_grid_examples():
    assert [(t.h, t.w) for t in tile_grid(300, 200)] == [(300, 200)]
    tiles = tile_grid(1200, 1100, 512)
    assert sorted({t.h for t in tiles}) == [176, 512]
    assert sorted({t.w for t in tiles}) == [512, 588]
    assert axis_splits(1024, 512) == [(0, 512), (512, 512)]
    g = tiles[4]
    assert TileGeometry.from_dict(__import__("json").loads(g.to_json())) == g
    with pytest.raises(DippasInputError):
        tile_grid(20, 100)
    with pytest.raises(DippasInputError):
        tile_grid(100, 100, tile=16)


@settings(max_examples=80, deadline=None)
@given(h=st.integers(32, 3000), w=st.integers(32, 3000), tile=st.sampled_from([64, 128, 256, 512]),
       fraction=st.floats(0.0, 0.49))
def test_overlapping_tiles_cover_the_image_and_neighbours_share_the_overlap(h, w, tile, fraction):
    overlap = min(int(fraction * tile), (tile - 1) // 2)
    tiles = tile_grid(h, w, tile, 16, overlap)
    cover = np.zeros((h, w), np.int32)
    by_name = {t.name: t for t in tiles}
    for t in tiles:
        cover[t.slices] += 1
        assert t.h >= min(h, min_tile_side(tile)) and t.w >= min(w, min_tile_side(tile))
        assert t.h < tile + min_tile_side(tile) and t.w < tile + min_tile_side(tile)
        assert t.padded_h % 16 == 0 and 0 <= t.padded_h - t.h < 16
        right, below = by_name.get(f"{t.ty}_{t.tx + 1}"), by_name.get(f"{t.ty + 1}_{t.tx}")
        if right is not None:  # shares exactly `overlap` columns with its right neighbour
            assert (right.y0, right.h) == (t.y0, t.h) and t.x0 + t.w - right.x0 == overlap
        if below is not None:
            assert (below.x0, below.w) == (t.x0, t.w) and t.y0 + t.h - below.y0 == overlap
    assert cover.min() >= 1 and cover.max() <= 4  # only corners are shared by four tiles
    rows = max(t.ty for t in tiles) + 1
    cols = max(t.tx for t in tiles) + 1
    assert len(tiles) == rows * cols == len(by_name)
    assert (cover > 1).any() == (overlap > 0 and len(tiles) > 1)


@pytest.mark.parametrize("overlap", [0, 1, 32, 255])
def test_an_image_that_fits_in_one_tile_is_one_tile_whatever_the_overlap(overlap):
    for h, w in ((256, 256), (512, 512), (300, 512), (512, 40)):
        (only,) = tile_grid(h, w, 512, 16, overlap)
        assert (only.y0, only.x0, only.h, only.w) == (0, 0, h, w)
        assert only == tile_grid(h, w, 512, 16)[0]


def test_overlapping_grid_examples_and_refusals():
    assert axis_splits(1200, 512, 32) == [(0, 512), (480, 512), (960, 240)]
    # a last tile adding 48 pixels of its own (< 128) is merged into the one before
    assert axis_splits(1040, 512, 32) == [(0, 512), (480, 560)]
    assert [(t.y0, t.x0, t.h, t.w) for t in tile_grid(448, 448, 256, 16, 32)] == [
        (0, 0, 256, 256), (0, 224, 256, 224), (224, 0, 224, 256), (224, 224, 224, 224)]
    # the Dresden 3008x2000 photo keeps its 24 tiles with the default overlap
    assert len(tile_grid(2000, 3008, 512, 16, 32)) == len(tile_grid(2000, 3008, 512, 16)) == 24
    for bad, message in ((256, "at most 255"), (-1, "non-negative"), (2.5, "non-negative"),
                         (True, "non-negative")):
        with pytest.raises(DippasInputError, match=message):
            tile_grid(1000, 1000, 512, 16, bad)
