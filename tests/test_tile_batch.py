"""Tiles stepped together as one batched model (dippas.dip.tile_batch).

On the CPU with tiny networks: the batched step must give every tile what
stepping it alone with the same (explicitly drawn) input noise gives.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dippas.dip import Inversion, get_preset  # noqa: E402
from dippas.dip.tile_batch import can_step_together, step_together  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = get_preset("fast", max_iter=5, lr=1e-2, stop_psnr=60.0, save_psnr=10.0,
                  warm_start=False).with_overrides(z_channels=8, widths=(4, 8, 16),
                                                   skip_channels=(4, 8))


def _engines(n: int, shape=(32, 32), seeds=None) -> list[Inversion]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        pattern = rng.normal(size=shape).astype(np.float32)
        seed = (seeds or list(range(10, 10 + n)))[i]
        out.append(Inversion(img, pattern, TINY.with_overrides(seed=seed), device="cpu"))
    return out


def _alone(engines: list[Inversion]) -> list[Inversion]:
    """The same engines, stepped alone with the noise drawn in full (as the batch draws it)."""
    for e in engines:
        e._network_perturbs_input = False
    return engines


def test_batched_step_equals_each_tile_alone():
    """Same losses, PSNRs, gammas and gradients as each tile stepped alone.

    Compared over two iterations: later ones drift apart at float-rounding
    level times a large factor, as any two summation orders do, because the
    BatchNorm scales followed by another BatchNorm have gradients of zero
    up to rounding, which Adam's normalised step turns into steps of ``lr``.
    """
    together, alone = _engines(3), _alone(_engines(3))
    assert can_step_together(together)
    for it in range(2):
        evs = step_together(together)
        refs = [e.step() for e in alone]
        for ev, ref in zip(evs, refs):
            assert ev.iteration == ref.iteration == it + 1
            assert ev.loss == pytest.approx(ref.loss, rel=1e-5)
            assert ev.psnr == pytest.approx(ref.psnr, abs=1e-4)
            assert ev.gamma == pytest.approx(ref.gamma, rel=1e-4, abs=1e-9)
            assert ev.saved == ref.saved and ev.n_saved == ref.n_saved
        if it == 0:  # the first gradients, before the optimisers' steps diverge anything
            for a, b in zip(together, alone):
                # (absolute tolerance on the network's gradient scale: the scale-invariant
                # BatchNorm weights have gradients of rounding size)
                scale = max(float(q.grad.abs().max()) for q in b.network.parameters())
                for (name, p), q in zip(a.network.named_parameters(), b.network.parameters()):
                    torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-5 * scale,
                                               msg=name)
                for name, buf in a.network.named_buffers():  # BatchNorm statistics per tile
                    ref_buf = b.network.get_buffer(name)
                    torch.testing.assert_close(buf, ref_buf, rtol=1e-4, atol=1e-6, msg=name)
    assert all(float(e.gamma.detach()) >= 0 for e in together)


def test_tiles_stay_independent():
    """A tile's trajectory does not depend on which other tiles share its batch."""
    pair = _engines(2, seeds=[10, 11])
    trio = _engines(3, seeds=[10, 11, 99])
    for _ in range(2):
        a = step_together(pair)[0]
        b = step_together(trio)[0]
        assert a.loss == pytest.approx(b.loss, rel=1e-5)
        assert a.psnr == pytest.approx(b.psnr, abs=1e-4)


def test_batchnorm_statistics_stay_each_tiles_own_when_a_batch_changes():
    """The buffers are views of one stacked tensor per batch: when a tile leaves, the others
    go on from their own statistics, the one that left keeps its own, and a checkpoint
    holds its tile's statistics only."""
    trio = _engines(3, seeds=[10, 11, 12])
    pair = _engines(3, seeds=[10, 11, 12])
    step_together(trio)
    step_together([pair[0], pair[2]])
    left = {n: b.clone() for n, b in trio[1].network.named_buffers()}
    step_together([trio[0], trio[2]])  # tile 1 has finished: a batch of two
    step_together([pair[0], pair[2]])
    for a, b in ((trio[0], pair[0]), (trio[2], pair[2])):
        for (name, x), y in zip(a.network.named_buffers(), b.network.buffers()):
            torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6, msg=name)
    for name, buf in trio[1].network.named_buffers():
        assert torch.equal(buf, left[name]), name
    assert any(not torch.equal(x, y) for x, y in zip(trio[0].network.buffers(), trio[2].network.buffers()))
    saved = trio[0].state_dict()["network"]
    for name, buf in trio[0].network.named_buffers():
        assert saved[name].untyped_storage().nbytes() == buf.numel() * buf.element_size(), name


def test_distinct_seeds_give_distinct_tiles():
    evs = step_together(_engines(2))
    assert evs[0].loss != evs[1].loss


def test_tiles_of_each_size_form_their_own_batch():
    mixed = _engines(2, shape=(32, 32)) + _engines(1, shape=(48, 32))
    mixed = [mixed[0], mixed[2], mixed[1]]
    assert not can_step_together(mixed)
    assert not can_step_together(mixed[:1])
    alone = _alone(_engines(2, shape=(32, 32)) + _engines(1, shape=(48, 32)))
    alone = [alone[0], alone[2], alone[1]]
    evs = step_together(mixed)
    refs = [e.step() for e in alone]
    assert [ev.iteration for ev in evs] == [1, 1, 1]
    for ev, ref in zip(evs, refs):  # in the order given
        assert ev.loss == pytest.approx(ref.loss, rel=1e-5)


def _photo():
    from skimage import data

    big = np.ascontiguousarray(data.astronaut()[40:136, 150:246])  # 96 x 96: a 2 x 2 grid at 48
    k = np.random.default_rng(3).normal(size=big.shape[:2]).astype(np.float32)
    return big, k


def test_a_run_inverts_its_tiles_together_and_resumes(tmp_path):
    from dippas.dip import DippasRun, RunStore
    from dippas.errors import DippasInputError
    from dippas.progress import CancelToken

    big, k = _photo()
    preset = TINY.with_overrides(max_iter=6)
    run = DippasRun.create(tmp_path / "run", big, k, preset=preset, tile=48, device="cpu",
                           tiles_at_once=4, checkpoint_every=2)
    assert run.tiles_at_once() == 4 and len(run.tiles) == 4
    token = CancelToken()
    seen = []
    for ev in run.events(cancel=token):
        seen.append((ev.tile_index, ev.iteration))
        assert ev.tiles_together == 4
        if len(seen) == 4 * 3:
            token.cancel()
    # the four tiles advance in lockstep, then the cancel checkpoints them all
    assert seen[:4] == [(0, 1), (1, 1), (2, 1), (3, 1)]
    assert run.cancelled and not run.is_complete
    assert [RunStore(tmp_path / "run").tile(g.ty, g.tx).status["iteration"] for g in run.tiles] == [3] * 4
    summary = DippasRun.open(tmp_path / "run", device="cpu", tiles_at_once=4).run()
    assert summary.complete and summary.iterations == 4 * 3
    assert all(t["iteration"] == 6 for t in summary.tiles)
    with pytest.raises(DippasInputError, match="tiles_at_once"):
        DippasRun.open(tmp_path / "run", device="cpu", tiles_at_once=0)


def test_the_default_is_one_tile_at_a_time_on_the_cpu(tmp_path):
    from dippas.dip import DippasRun
    from dippas.dip.tile_batch import GPU_TILES_AT_ONCE, resolve_tiles_at_once
    from dippas.jobs import DippasJob

    big, k = _photo()
    run = DippasRun.create(tmp_path / "run", big, k, preset=TINY, tile=48, device="cpu")
    assert run.tiles_at_once() == 1 == resolve_tiles_at_once(None, "cpu")
    assert resolve_tiles_at_once(3, "cpu") == 3 and GPU_TILES_AT_ONCE > 1
    assert DippasJob(tiles_at_once=2).tiles_at_once == 2
    assert "tiles_at_once" not in DippasJob(tiles_at_once=2).run_identity()


def _exit_code(argv) -> int:
    from dippas.cli import main

    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's refusals
        return exc.code


def test_cli_inverts_tiles_together(tmp_path, capsys):
    from dippas.dip.store import RunStore
    from dippas.io import save_image

    big, k = _photo()
    photo, kfile = tmp_path / "photo.png", tmp_path / "k.npy"
    save_image(photo, big)
    np.save(kfile, k)
    run = tmp_path / "run"
    args = ["invert", photo, "-k", kfile, "--run", run, "--tile", "48", "--tile-overlap", "8",
            "--device", "cpu", "--save-psnr", "10", "--threads", "1", "--max-iter", "3"]
    assert _exit_code([*args, "--tiles-at-once", "4"]) == 0
    assert [t.status["iteration"] for t in RunStore(run)] == [3] * 4
    assert "tiles_at_once" not in RunStore(run).params  # how it ran is not what the run is
    capsys.readouterr()
    assert _exit_code([*args[:5], tmp_path / "run2", *args[6:], "--tiles-at-once", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err and not (tmp_path / "run2").exists()
    out = tmp_path / "out.png"
    assert _exit_code(["anonymize", photo, "-o", out, "--method", "inpainting",
                       "--tiles-at-once", "2"]) == 2
    assert "--tiles-at-once applies to --method dippas only" in capsys.readouterr().err
    assert not out.exists()


def test_the_plugin_worker_follows_one_tile_of_a_batch_at_a_time(tmp_path):
    from dippas.jobs import DippasJob
    from napari_dippas.workers.events import RunProgress, SnapshotReady
    from napari_dippas.workers.inversion import drive_inversion

    big, k = _photo()
    job = DippasJob(preset="fast", tile=48, tile_overlap=8, max_iter=4, save_psnr=1.0,
                    device="cpu", tiles_at_once=4, target_psnr=None)
    events = []
    summary = drive_inversion(tmp_path / "run", create={"job": job, "image": big, "fingerprint": k},
                              emit=events.append, progress_interval=0.0, snapshot_interval=0.0)
    assert summary.complete
    progress = [e for e in events if isinstance(e, RunProgress)]
    assert all(e.info["tiles_together"] == 4 for e in progress)
    # one tile's curve at a time, whole: the followed tile's iterations 1..4 in order
    shown = [(e.info["tile_index"], int(i)) for e in progress for i in e.history["iteration"]]
    first = shown[0][0]
    assert shown[:4] == [(first, i) for i in (1, 2, 3, 4)]  # not the four tiles' first iterations
    assert {e.tile for e in events if isinstance(e, SnapshotReady)} >= {progress[0].info["tile"]}


def test_a_batch_that_cannot_fit_is_refused_before_any_tile(tmp_path, monkeypatch, capsys):
    import dippas.dip.tile_batch as tb
    from dippas.dip import DippasRun
    from dippas.errors import DippasInputError
    from dippas.io import save_image

    big, k = _photo()
    one = tb.batch_bytes_floor(TINY.z_channels, (48, 48), 1)
    assert tb.batch_bytes_floor(TINY.z_channels, (48, 48), 4) == 4 * one == 3 * 4 * 8 * 48 * 48 * 4
    monkeypatch.setattr(tb, "available_bytes", lambda device: 2 * one + 1)
    run = DippasRun.create(tmp_path / "run", big, k, preset=TINY, tile=48, device="cpu",
                           tiles_at_once=4)
    with pytest.raises(DippasInputError, match=r"4 tiles at once .* invert at most 2 at once"):
        run.run()
    assert all(not (tmp_path / "run" / "tiles" / g.name / "checkpoint.pt").exists()
               for g in run.tiles)
    # what fits runs
    assert DippasRun.open(tmp_path / "run", device="cpu", tiles_at_once=2, max_iter=2).run().complete

    photo, kfile = tmp_path / "photo.png", tmp_path / "k.npy"
    save_image(photo, big)
    np.save(kfile, k)
    capsys.readouterr()
    assert _exit_code(["invert", photo, "-k", kfile, "--run", tmp_path / "r2", "--tile", "48",
                       "--tile-overlap", "8", "--device", "cpu", "--max-iter", "2",
                       "--tiles-at-once", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tiles-at-once" in err[0]


def test_invert_progress_opens_one_bar_per_group(monkeypatch):
    """Tiles together finish on the same iteration: no bar for each of their last events."""
    import dippas.cli._common as common
    from dippas.cli.invert import _Progress
    from dippas.dip.inversion import IterationEvent
    from dippas.dip.tiling import TileGeometry

    opened = []

    class Bar:
        n = 0

        def __init__(self, total, desc, unit="it", initial=0):
            opened.append(desc)

        def set_postfix_str(self, *a, **k):
            pass

        def update(self, k):
            self.n += k

        def close(self):
            pass

    monkeypatch.setattr(common, "progress_bar", Bar)
    progress = _Progress()
    for group in ([0, 1, 2, 3], [4, 5]):
        for it in (1, 2, 3):
            for i in group:
                g = TileGeometry(ty=0, tx=i, y0=0, x0=48 * i, h=48, w=48, padded_h=48, padded_w=48)
                progress(IterationEvent(iteration=it, max_iter=3, loss=0.1, psnr=30.0, gamma=0.0,
                                        its_per_s=1.0, seconds=1.0, saved=False, snapshot=None,
                                        n_saved=0, done=it == 3, stop_reason=None, tile=g,
                                        tile_index=i, n_tiles=6, tiles_together=len(group)))
    assert opened == ["4 tiles together, following 0_0 (6 in all)",
                      "2 tiles together, following 0_4 (6 in all)"]


def test_groups_hold_unfinished_tiles_only_and_bf16_is_not_batched(tmp_path):
    from dippas.dip import DippasRun
    from dippas.dip.tile_batch import resolve_tiles_at_once

    big, k = _photo()
    run = DippasRun.create(tmp_path / "run", big, k, preset=TINY.with_overrides(max_iter=2),
                           tile=48, device="cpu", tiles_at_once=4)
    first = [(ev.tile_index, ev.tiles_together) for ev in run.events(tiles=[0, 1])]
    assert sorted(first) == [(0, 2), (0, 2), (1, 2), (1, 2)]
    rest = [(ev.tile_index, ev.tiles_together) for ev in run.events()]
    assert sorted(rest) == [(2, 2), (2, 2), (3, 2), (3, 2)]  # tiles 0 and 1 are done
    assert run.is_complete
    assert resolve_tiles_at_once(4, "cpu", batchable=False) == 1
    bf16 = DippasRun.open(tmp_path / "run", device="cpu", tiles_at_once=4, bf16=True)
    assert bf16.tiles_at_once() == 1
