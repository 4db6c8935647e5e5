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

from dippas.assembly import RunAssembler
from dippas.dip.dippas_run import DippasRun
from dippas.dip.presets import get_preset
from dippas.errors import DippasInputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = get_preset("fast", max_iter=40, lr=1e-2, stop_psnr=60.0, save_psnr=14.0).with_overrides(
    z_channels=8, widths=(4, 8), skip_channels=(4,))
GRID = {"tile": 48, "tile_overlap": 8}



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


# ---------------------------------------------------------------- tiles as Dask tasks
@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  env={"OMP_NUM_THREADS": "1"}) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def test_tiles_on_dask_workers_equal_the_sequential_run_and_report_each_tile(tmp_path, photo,
                                                                          sequential, client):
    from dippas.batch.tiles import invert_tiles

    run = _create(tmp_path / "run", photo)
    seen = []
    summary = invert_tiles(run, client, progress=lambda done, n: seen.append((done, n)), threads=1)
    assert seen == [(0, 2), (1, 2), (2, 2)]
    assert summary.complete and not summary.cancelled and summary.iterations == 80
    _assert_same_run(sequential, run)


def test_a_partial_parallel_run_is_continued(tmp_path, photo, sequential, client):
    from dippas.batch.tiles import invert_tiles

    run = _create(tmp_path / "run", photo)
    assert not invert_tiles(run, client, tiles=[1], threads=1).complete
    assert run.unfinished_tiles() == [0]
    seen = []
    summary = invert_tiles(DippasRun.open(run.path, device="cpu"), client, threads=1,
                           progress=lambda done, n: seen.append((done, n)))
    assert seen == [(1, 2), (2, 2)] and summary.iterations == 40  # tile 0_1 was not redone
    _assert_same_run(sequential, run)


def test_cancel_checkpoints_the_tiles_in_progress_and_the_run_resumes(tmp_path, photo, client):
    from dippas.batch.tiles import invert_tiles
    from dippas.progress import CancelToken

    run = _create(tmp_path / "run", photo, max_iter=2000, checkpoint_every=5)
    token = CancelToken()

    def cancel_once_both_checkpointed():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                (run.path / "tiles" / g.name / "checkpoint.pt").exists() for g in run.tiles):
            time.sleep(0.05)
        token.cancel()

    threading.Thread(target=cancel_once_both_checkpointed, daemon=True).start()
    summary = invert_tiles(run, client, cancel=token, threads=1)
    assert summary.cancelled and summary.tiles_done == 0
    stopped = [t["iteration"] for t in summary.tiles]
    assert all(5 <= it < 2000 for it in stopped), stopped
    resumed = DippasRun.open(run.path, device="cpu", max_iter=max(stopped) + 5)
    assert resumed.run().complete
    for g in run.tiles:  # continued from the checkpoints: every iteration once
        its = resumed.store.tile(g.ty, g.tx).history["iteration"]
        np.testing.assert_array_equal(its, np.arange(1, max(stopped) + 6))


def test_a_failing_tile_is_one_line_naming_it(tmp_path, photo, client):
    import functools

    from dippas.batch.tiles import TileError, invert_tiles

    # int("x", preset) raises TypeError in the worker, a factory picklable by reference
    run = _create(tmp_path / "run", photo, network_factory=functools.partial(int, "x"))
    with pytest.raises(TileError, match=r"^tile 0_[01]: TypeError: ") as err:
        invert_tiles(run, client)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- --workers on the CLI
@pytest.fixture
def photo_files(tmp_path, photo):
    from dippas.io import save_fingerprint, save_image

    img, k = photo
    save_image(tmp_path / "p.png", img)
    save_fingerprint(tmp_path / "k.npy", k)
    return tmp_path / "p.png", tmp_path / "k.npy"


def _anonymize_args(photo_files, out, *extra):
    p, k = photo_files
    return ["anonymize", str(p), "-o", str(out), "-k", str(k), "--max-iter", "20", "--save-psnr",
            "10", "--tile", "48", "--tile-overlap", "8", "--device", "cpu", "--seed", "3", *extra]


def test_anonymize_with_two_workers_writes_the_sequential_output(tmp_path, photo_files, monkeypatch,
                                                                 capsys):
    pytest.importorskip("distributed")
    from dippas.batch import cluster
    from dippas.cli import main

    monkeypatch.setattr(cluster, "cpu_count", lambda: 2)  # one torch thread per worker, as here
    assert main(_anonymize_args(photo_files, tmp_path / "seq.png")) == 0
    assert main(_anonymize_args(photo_files, tmp_path / "par.png", "--workers", "2")) == 0
    assert "tiles on Dask workers" in capsys.readouterr().err
    assert (tmp_path / "seq.png").read_bytes() == (tmp_path / "par.png").read_bytes()


def test_invert_started_on_workers_resumes_in_one_process(tmp_path, photo_files, capsys):
    pytest.importorskip("distributed")
    from dippas.cli import main
    from dippas.dip.store import RunStore

    p, k = photo_files
    args = ["invert", str(p), "-k", str(k), "--run", str(tmp_path / "run"), "--tile", "48",
            "--tile-overlap", "8", "--device", "cpu", "--save-psnr", "10", "--threads", "1"]
    assert main([*args, "--max-iter", "3", "--workers", "2"]) == 0
    assert "workers" not in RunStore(tmp_path / "run").params
    assert main([*args, "--max-iter", "6", "--resume"]) == 0
    assert [t.status["iteration"] for t in RunStore(tmp_path / "run")] == [6, 6]


def test_workers_without_dask_is_one_line_exit_2_before_any_work(tmp_path, photo_files, monkeypatch,
                                                                capsys):
    import sys

    from dippas.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    out, run = tmp_path / "o.png", tmp_path / "run"
    assert main(_anonymize_args(photo_files, out, "--workers", "2", "--run", str(run))) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "napari-dippas[dask]" in err
    assert not out.exists() and not run.exists()
    p, k = photo_files
    assert main(["invert", str(p), "-k", str(k), "--run", str(run), "--workers", "2"]) == 2
    assert "[dask]" in capsys.readouterr().err and not run.exists()
    assert main(_anonymize_args(photo_files, out, "--workers", "1", "--max-iter", "2")) == 0


def test_workers_on_a_photo_of_one_tile_say_so_and_run_here(tmp_path, photo_files, capsys):
    pytest.importorskip("distributed")
    from dippas.cli import main

    args = _anonymize_args(photo_files, tmp_path / "o.png", "--workers", "2", "--max-iter", "2")
    args[args.index("--tile") + 1] = "96"
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "warning: --workers 2: the photo is one tile; inverting it in this process" in err
    assert "Dask workers" not in err


def test_workers_with_inpainting_is_refused(tmp_path, photo_files, capsys):
    from dippas.cli import main

    p, _ = photo_files
    assert main(["anonymize", str(p), "-o", str(tmp_path / "o.png"), "--method", "inpainting",
                 "--workers", "2"]) == 2
    assert "--workers applies to --method dippas only" in capsys.readouterr().err


def test_workers_are_neither_run_identity_nor_batch_key():
    from dippas.batch import method_params
    from dippas.jobs import DippasJob

    job = DippasJob(workers=2)
    assert "workers" not in job.run_identity()
    assert method_params("dippas", blind=True, workers=2) == method_params("dippas", blind=True)
    assert "workers" not in method_params("dippas", blind=True)
    with pytest.raises(DippasInputError, match="workers must be a positive integer"):
        DippasJob(workers=0)
