"""The tiles of one run inverted apart: a tile subset, Dask tasks per tile, ``--workers``.

A 48x96 photo with ``tile=48`` and an overlap of 8 is two tiles (0_0 and
0_1); the TINY preset of ``test_dip_inversion`` keeps each inversion to a
second or two. The Dask tests use a real local cluster of two worker
processes, one torch thread each, and are skipped without ``distributed``.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from dippas.assembly import RunAssembler
from dippas.dip.dippas_run import DippasRun
from dippas.dip.presets import get_preset
from dippas.errors import DippasInputError

TINY = get_preset("fast", max_iter=40, lr=1e-2, stop_psnr=60.0, save_psnr=14.0).with_overrides(
    z_channels=8, widths=(4, 8), skip_channels=(4,))
GRID = {"tile": 48, "tile_overlap": 8}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The workers run one torch thread each; the sequential references too (same rounding)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def photo() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:48, 0:96]
    base = 128 + 60 * np.sin(x / 7.0)[..., None] * np.cos(y / 5.0)[..., None]
    img = np.clip(base + rng.normal(0, 4, (48, 96, 3)), 0, 255).astype(np.uint8)
    return img, rng.normal(0, 0.05, (48, 96)).astype(np.float32)


def _create(path, photo, **kw):
    img, k = photo
    return DippasRun.create(path, img, k, **{"preset": TINY, "device": "cpu",
                                             "checkpoint_every": 10, **GRID, **kw})


def _assert_same_run(a, b) -> None:
    """Every tile's snapshots, table and cells equal, and the assembled outputs too."""
    sa, sb = a.store, b.store
    for g in a.tiles:
        ta, tb = sa.tile(g.ty, g.tx), sb.tile(g.ty, g.tx)
        assert ta.n_snapshots > 0
        np.testing.assert_array_equal(ta.snapshots, tb.snapshots)
        np.testing.assert_array_equal(ta.table["psnr"], tb.table["psnr"])
        np.testing.assert_array_equal(ta.cells, tb.cells)
    np.testing.assert_array_equal(RunAssembler(a.path).assemble(16, 4, 14.0).image,
                                  RunAssembler(b.path).assemble(16, 4, 14.0).image)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, photo):
    """A run of both tiles in this process, one after the other (the reference)."""
    run = _create(tmp_path_factory.mktemp("seq") / "run", photo)
    summary = run.run()
    assert summary.complete and summary.n_tiles == 2
    return run


# ---------------------------------------------------------------- tile subsets (no Dask)
def test_tile_subset_inverts_only_those_tiles_then_the_rest_equals_sequential(tmp_path, photo,
                                                                             sequential):
    run = _create(tmp_path / "run", photo)
    events = list(run.events(tiles=[1]))
    assert {ev.tile_index for ev in events} == {1} and all(ev.n_tiles == 2 for ev in events)
    s = run.summary()
    assert [t["done"] for t in s.tiles] == [False, True]
    assert s.tiles[0]["snapshots"] == 0 and not (run.path / "tiles" / "0_0" / "checkpoint.pt").exists()
    assert s.tiles[1]["cells"] == s.tiles[1]["snapshots"] > 0  # its cells are complete
    assert run.run(tiles=[0]).complete
    _assert_same_run(sequential, run)


@pytest.mark.parametrize("tiles", [[2], [-1], [0, 0], [True]])
def test_bad_tile_subset_is_refused_before_any_work(tmp_path, photo, tiles):
    run = _create(tmp_path / "run", photo)
    with pytest.raises(DippasInputError, match="tile index"):
        run.run(tiles=tiles)
    assert run.summary().tiles[0]["iteration"] == 0


def test_reopening_with_the_same_overrides_does_not_rewrite_params(tmp_path, photo):
    run = _create(tmp_path / "run", photo)
    params = run.path / "params.json"
    DippasRun.open(run.path, max_iter=50)
    stamp = params.stat().st_mtime_ns
    time.sleep(0.01)
    DippasRun.open(run.path, max_iter=50)
    DippasRun.open(run.path)
    assert params.stat().st_mtime_ns == stamp
    assert DippasRun.open(run.path, max_iter=60).preset.max_iter == 60
    assert params.stat().st_mtime_ns != stamp
