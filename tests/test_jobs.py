"""One job specification for every face, and the run store's create-or-resume rule."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from dippas.cli import build_parser, main
from dippas.dip import DippasRun
from dippas.dip.store import RunStore
from dippas.errors import DippasInputError
from dippas.io import load_image, save_image
from dippas.jobs import DippasJob, InpaintingJob, check_mode, job_from_dict

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("src_core", "napari_dippas") for p in (ROOT / d).rglob("*.py")]


# ------------------------------------------------------------------ the specification

def test_defaults_and_round_trip():
    job = DippasJob()
    assert (job.mode, job.preset, job.block_size, job.blocks, job.psnr_threshold, job.target_psnr) == \
        ("aware", "fast", 64, 10, 38.0, 38.0)
    for j in (DippasJob(mode="blind", max_iter=7, block_size="whole", blocks=1), InpaintingJob(hole=3)):
        assert job_from_dict(j.to_dict()) == j
    assert DippasJob(block_size=None).block_size == "whole"  # one spelling of 'whole'


@pytest.mark.parametrize("bad, match", [
    ({"block_size": 17}, "multiple of the cell size 16"),
    ({"blocks": 0}, "blocks"),
    ({"preset": "turbo"}, "unknown preset"),
    ({"mode": "sideways"}, "mode"),
    ({"device": "tpu"}, "unknown device"),
    ({"psnr_threshold": float("nan")}, "psnr_threshold"),
    ({"max_iter": -3}, "max_iter"),
    ({"seed": -1}, "seed"),
    ({"tile_overlap": -1}, "tile overlap must be a non-negative integer"),
    ({"tile_overlap": 256}, "less than half the tile side 512"),
    ({"tile": 48, "tile_overlap": 32}, "at most 23 pixels"),  # a given overlap is checked
])
def test_dippas_job_refuses_bad_values(bad, match):
    with pytest.raises(DippasInputError, match=match):
        DippasJob(**bad)


@pytest.mark.parametrize("bad, match", [
    ({"hole": 4}, "hole"), ({"reg": "huber"}, "huber"), ({"denoiser": "magic"}, "magic"),
])
def test_inpainting_job_refuses_bad_values(bad, match):
    with pytest.raises(DippasInputError, match=match):
        InpaintingJob(**bad)


def test_from_dict_refuses_unknown_keys_and_methods():
    with pytest.raises(DippasInputError, match="unknown dippas parameter"):
        DippasJob.from_dict({"blcks": 3})
    with pytest.raises(DippasInputError, match="unknown method"):
        job_from_dict({"method": "magic"})


def test_mode_rule():
    check_mode("aware", True)
    check_mode("blind", False)
    with pytest.raises(DippasInputError, match="not both"):
        check_mode("blind", True)
    with pytest.raises(DippasInputError, match="--fingerprint K"):
        check_mode("aware", False)


def _help(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    p = sub.choices[command]
    return p.format_help() + (p.epilog or "")


def test_help_of_every_command_shows_the_same_defaults():
    job = DippasJob()
    anonymize, invert, evaluate = _help("anonymize"), _help("invert"), _help("evaluate")
    for text in (anonymize, invert):
        assert f"(default {job.preset})" in " ".join(text.split())
    assert f"(default {job.block_size})" in " ".join(anonymize.split())
    assert f"(default {job.blocks})" in " ".join(anonymize.split())
    assert f"preset={job.preset}" in evaluate
    assert f"B={job.block_size},L={job.blocks}" in evaluate


def test_none_switches_off_the_psnr_threshold_and_the_target_on_the_command_line(tmp_path):
    from dippas.cli._job_options import dippas_job

    photo = tmp_path / "x.png"
    photo.write_bytes(b"only its existence is checked while parsing")
    parser = build_parser()
    head = ["anonymize", str(photo), "-o", str(tmp_path / "y.png")]
    job = dippas_job(parser.parse_args([*head, "--psnr-threshold", "none", "--target-psnr", "NONE"]))
    assert job.psnr_threshold is None and job.target_psnr is None and job.stop_rule() is None
    job = dippas_job(parser.parse_args([*head, "--psnr-threshold", "36.5", "--target-psnr", "37"]))
    assert (job.psnr_threshold, job.target_psnr) == (36.5, 37.0)
    with pytest.raises(SystemExit):
        parser.parse_args([*head, "--target-psnr", "high"])
    assert dippas_job(parser.parse_args([*head, "--zero-blend"])).zero_blend is True
    assert dippas_job(parser.parse_args([*head, "--no-zero-blend"])).zero_blend is False
    assert dippas_job(parser.parse_args(head)).zero_blend is DippasJob().zero_blend


# ------------------------------------------------------------------ the code base

def test_run_folder_file_names_are_spelled_in_the_store_only():
    names = ("params.json", "input.npy", "fingerprint.npy", "status.json", "cells.npy",
             "snapshots.npy", "table.csv", "history.csv", "checkpoint.pt", "tile.json")
    pattern = re.compile("|".join(re.escape(f'"{n}"') for n in names))
    spelled = {p.relative_to(ROOT).as_posix() for p in SOURCES if pattern.search(p.read_text())}
    assert spelled == {"src_core/dippas/dip/store.py"}


def test_no_module_imports_a_private_name_of_another():
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                found += [f"{path.name}: {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []


# ------------------------------------------------------------------ the run store

@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:48, 0:48]
    base = 120 + 50 * np.sin(x / 5.0)[..., None] * np.cos(y / 4.0)[..., None]
    a = np.clip(base + rng.normal(0, 3, (48, 48, 3)), 0, 255).astype(np.uint8)
    b = np.clip(a.astype(int) + 9, 0, 255).astype(np.uint8)
    k = rng.normal(0, 0.02, (48, 48)).astype(np.float32)
    np.save(d / "k.npy", k)
    return save_image(d / "a.png", a), save_image(d / "b.png", b), d / "k.npy"


def _anonymize(*args):
    return main(["anonymize", *map(str, args), "--max-iter", "2", "--save-psnr", "1",
                 "--device", "cpu", "-B", "16"])


def test_a_run_of_another_photo_fingerprint_or_job_is_refused(photos, tmp_path, capsys):
    a, b, k = photos
    run = tmp_path / "run"
    assert _anonymize(a, "-o", tmp_path / "a.png", "--blind", "--run", run) == 0
    capsys.readouterr()
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    cases = [
        ([b, "-o", tmp_path / "b.png", "--blind"], "another photo"),
        ([a, "-o", tmp_path / "c.png", "-k", k], "PRNU-blind run"),
        ([a, "-o", tmp_path / "d.png", "--blind", "--seed", "3"], "seed"),
        ([a, "-o", tmp_path / "e.png", "--blind", "--preset", "paper"], "preset"),
        ([a, "-o", tmp_path / "f.png", "--blind", "--no-warm-start"], "warm_start"),
    ]
    for args, message in cases:
        assert _anonymize(*args, "--run", run) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
        assert not Path(args[2]).exists()
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
    # the same photo and job reuse the finished run
    assert _anonymize(a, "-o", tmp_path / "again.png", "--blind", "--run", run) == 0
    # a run written before the warm start existed is a random-initialisation one; the same
    # command (the warm start left to the preset, whose default is now on) still continues it
    params = json.loads((run / "params.json").read_text())
    del params["warm_start"], params["preset_parameters"]["warm_start"]
    (run / "params.json").write_text(json.dumps(params))
    assert _anonymize(a, "-o", tmp_path / "old.png", "--blind", "--run", run) == 0
    assert _anonymize(a, "-o", tmp_path / "g.png", "--blind", "--warm-start", "--run", run) == 2


def test_a_run_with_another_tile_overlap_is_refused(photos, tmp_path, capsys):
    one = load_image(photos[0])
    a = save_image(tmp_path / "wide.png", np.concatenate([one] * 4, axis=1)[:, :160])
    run = tmp_path / "run"
    # 48x160 in tiles of 80 with the default overlap: three tiles that overlap
    assert _anonymize(a, "-o", tmp_path / "a.png", "--blind", "--run", run, "--tile", "80") == 0
    assert RunStore(run).tile_overlap == DippasJob().overlap and len(RunStore(run)) == 3
    capsys.readouterr()
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    assert _anonymize(a, "-o", tmp_path / "b.png", "--blind", "--run", run, "--tile", "80",
                      "--tile-overlap", "8") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"tile_overlap {DippasJob().overlap}, not 8" in err, err
    assert main(["invert", str(a), "--blind", "--run", str(run), "--resume", "--tile-overlap", "0",
                 "--device", "cpu"]) == 2
    assert "cannot change on resume" in capsys.readouterr().err
    assert not (tmp_path / "b.png").exists()
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
    # an overlap that does not fit the tile is refused before any work, in one line
    assert _anonymize(a, "-o", tmp_path / "c.png", "--blind", "--run", tmp_path / "new",
                      "--tile", "64", "--tile-overlap", "32") == 2
    assert "at most 31 pixels" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_a_run_made_before_tile_overlaps_opens_as_overlap_0(photos, tmp_path, capsys):
    import json

    from dippas.dip.store import LEGACY_PARAMS

    a, _, _ = photos
    run = tmp_path / "run"
    assert _anonymize(a, "-o", tmp_path / "a.png", "--blind", "--run", run, "--tile-overlap", "0") == 0
    params = json.loads((run / "params.json").read_text())
    del params["tile_overlap"]  # as written before the field existed
    (run / "params.json").write_text(json.dumps(params))
    assert LEGACY_PARAMS["tile_overlap"] == 0
    assert RunStore(run).tile_overlap == 0
    assert DippasJob.from_run(params).tile_overlap == 0
    capsys.readouterr()
    assert main(["assemble", str(run), "-o", str(tmp_path / "b.png"), "-B", "16"]) == 0
    assert main(["invert", str(a), "--blind", "--run", str(run), "--resume", "--max-iter", "3",
                 "--save-psnr", "1", "--device", "cpu"]) == 0
    assert RunStore(run).tile(0, 0).n_snapshots == 3
    assert _anonymize(a, "-o", tmp_path / "c.png", "--blind", "--run", run, "--tile-overlap", "0") == 0
    capsys.readouterr()
    # a photo of one tile has no overlap whatever the option: the default job continues it too
    assert _anonymize(a, "-o", tmp_path / "d.png", "--blind", "--run", run) == 0
    assert DippasJob(tile_overlap=16).for_image(np.zeros((48, 48, 3), np.uint8)).tile_overlap == 0
    # the low-level create applies the same rule, so its run resumes from the command line
    api = tmp_path / "api"
    DippasRun.create(api, load_image(a), preset="fast", tile_overlap=16, device="cpu", max_iter=1)
    assert RunStore(api).tile_overlap == 0
    assert DippasJob(tile=32, tile_overlap=8).for_image(np.zeros((48, 96, 3), np.uint8)).tile_overlap == 8


def test_bad_block_size_is_refused_before_any_work(photos, tmp_path, capsys):
    a, _, _ = photos
    run = tmp_path / "run"
    assert main(["anonymize", str(a), "-o", str(tmp_path / "x.png"), "--blind", "--run", str(run),
                 "-B", "17"]) == 2
    assert "multiple of the cell size" in capsys.readouterr().err
    assert not run.exists()


@pytest.mark.parametrize("extra, message", [
    (["-o", "x.bmp"], "unknown output format"),
    (["-o", "noext"], "unknown output format"),
    (["-o", "x.png", "--heatmap", "fig.svg"], "name it .png"),
])
def test_output_names_are_refused_before_any_work(photos, tmp_path, capsys, monkeypatch, extra, message):
    a, _, k = photos
    monkeypatch.chdir(tmp_path)
    assert main(["anonymize", str(a), "-k", str(k), *extra]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_api_and_evaluation_build_the_same_job():
    from dippas.batch import method_params
    from dippas.evaluation.methods import expand_settings, job_of

    (setting,) = expand_settings(["dippas-blind"])
    params = method_params("dippas", blind=True)
    assert job_of(setting) == DippasJob.from_dict({k: v for k, v in params.items() if k != "sigma"})


@pytest.fixture(scope="module")
def finished_run(photos, tmp_path_factory):
    a, _, _ = photos
    d = tmp_path_factory.mktemp("finished")
    assert _anonymize(a, "-o", d / "a.png", "--blind", "--run", d / "run") == 0
    return d / "run"


def _damage_snapshots(run):
    p = run / "tiles" / "0_0" / "snapshots.npy"
    p.write_bytes(p.read_bytes()[:100])


def _damage_shape(run):
    import json

    p = json.loads((run / "params.json").read_text())
    p["image_shape"] = [10 ** 9, 5, 3]
    (run / "params.json").write_text(json.dumps(p))


def _damage_tile(run):
    import json

    p = json.loads((run / "params.json").read_text())
    p["tiles"][0]["h"] = "x"
    (run / "params.json").write_text(json.dumps(p))


def _damage_overlap(run):
    import json

    p = json.loads((run / "params.json").read_text())
    p["tile_overlap"] = None
    (run / "params.json").write_text(json.dumps(p))


def _damage_cells(run):
    cells = np.lib.format.open_memmap(run / "tiles" / "0_0" / "cells.npy", mode="r+")
    cells[:] = np.nan
    cells.flush()


@pytest.mark.parametrize("damage, message", [
    (_damage_snapshots, "snapshots.npy: damaged"),
    (_damage_shape, "bad image_shape"),
    (_damage_tile, "bad tile"),
    (_damage_overlap, "bad tile_overlap None"),
    (_damage_cells, "NaN or infinite"),
])
def test_a_damaged_run_folder_is_one_line_and_exit_2(finished_run, tmp_path, capsys, damage, message):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run)
    out = tmp_path / "out.png"
    assert main(["assemble", str(run), "-o", str(out), "-B", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_anonymize_warns_when_the_inversion_stopped_too_early(photos, tmp_path, capsys):
    a, _, _ = photos
    assert main(["anonymize", str(a), "-o", str(tmp_path / "x.png"), "--blind", "--max-iter", "3",
                 "--device", "cpu", "-B", "16"]) == 0
    assert "raise --max-iter" in capsys.readouterr().err


def test_seeds_differ_between_photos_and_repeat_for_one():
    from dippas.dip.dippas_run import content_seed, tile_seed
    from dippas.dip.tiling import TileGeometry
    from dippas.samples import camera_sample

    a, _ = camera_sample(64)
    b = a.copy()
    b[0, 0, 0] ^= 1  # one bit in one pixel
    job = DippasJob()
    assert job.seed is None
    assert job.for_image(a).seed == job.for_image(a.copy()).seed == content_seed(a)
    assert job.for_image(b).seed != job.for_image(a).seed
    assert DippasJob(seed=7).for_image(a).seed == 7  # an explicit seed is kept
    tiles = [TileGeometry(ty, tx, 0, 0, 8, 8, 16, 16) for ty in range(3) for tx in range(3)]
    seeds = [tile_seed(1234, g) for g in tiles]
    assert seeds[0] == 1234 and len(set(seeds)) == len(seeds)
    assert seeds == [tile_seed(1234, g) for g in tiles]


def test_inpainting_job_takes_its_defaults_from_the_profile(monkeypatch):
    import sys

    from dippas.inpainting.profiles import DEFAULT_PROFILE, get_profile

    job = InpaintingJob()
    assert job.profile == DEFAULT_PROFILE and job.recipe() == get_profile(DEFAULT_PROFILE)
    assert InpaintingJob(profile="classic", reg="tv").recipe().reg == "tv"
    monkeypatch.setitem(sys.modules, "bm3d", None)  # the optional extra is not installed
    with pytest.raises(DippasInputError, match=r"\[bm3d\]"):
        InpaintingJob(profile="paper")  # refused when the job is built, before any work


@pytest.mark.parametrize("args, message", [
    (["--blind", "--profile", "paper"], "--profile applies to --method inpainting only"),
    (["--blind", "--no-edges"], "--no-edges applies to --method inpainting only"),
    (["--method", "inpainting", "--seed", "3"], "--seed applies to --method dippas only"),
])
def test_options_of_the_other_method_are_refused(photos, tmp_path, capsys, args, message):
    a, _, _ = photos
    assert main(["anonymize", str(a), "-o", str(tmp_path / "x.png"), *args]) == 2
    assert message in capsys.readouterr().err
    assert main(["batch", str(a), "--out", str(tmp_path / "b"), *args]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_run_of_a_custom_preset_is_assembled_and_resumed(photos, tmp_path, capsys):
    import dataclasses

    from dippas.dip import DippasRun, get_preset
    from dippas.dip.presets import PRESETS
    tiny = dataclasses.replace(get_preset("fast").with_overrides(max_iter=2, save_psnr=1.0),
                               name="tiny-custom")
    run = tmp_path / "run"
    DippasRun.create(run, load_image(photos[0]), None, preset=tiny, device="cpu").run()
    PRESETS.pop("tiny-custom", None)  # a new process knows only the built-in presets
    assert main(["assemble", str(run), "-o", str(tmp_path / "o.png"), "-B", "16"]) == 0
    capsys.readouterr()
    assert main(["invert", str(photos[0]), "--blind", "--run", str(run), "--resume",
                 "--max-iter", "3", "--device", "cpu"]) == 0


def test_labels_name_what_differs_from_the_settings_own_profile():
    from dippas.evaluation.methods import expand_settings

    plain, tv = expand_settings(["inpainting:profile=classic", "inpainting:profile=classic,reg=tv"])
    assert plain.label == "inpainting:profile=classic"
    assert tv.label == "inpainting:profile=classic,reg=tv"


def test_api_values_are_checked_in_one_line():
    assert DippasJob(seed=np.int64(5)).seed == 5 and type(DippasJob(seed=np.int64(5)).seed) is int
    with pytest.raises(DippasInputError, match="unknown dippas parameter"):
        DippasJob().replace(block=64)


def test_tau_none_reaches_the_batch_records():
    from dippas.batch import method_params

    assert method_params("dippas", blind=True)["psnr_threshold"] == DippasJob().psnr_threshold
    params = method_params("dippas", blind=True, psnr_threshold=None, target_psnr=None, seed=None)
    assert params["psnr_threshold"] is None and params["target_psnr"] is None
    assert params["seed"] is None  # the photo's own seed, as by default


def test_the_default_overlap_follows_a_small_tile():
    """Unless given, the overlap is 32 pixels, or a quarter of a tile too small for it; the
    resolved value is what the job records, and equal work makes equal jobs."""
    assert DippasJob().overlap == 32 and DippasJob().to_dict()["tile_overlap"] == 32
    assert DippasJob(tile=80).overlap == 32 and DippasJob(tile=48).overlap == 12
    assert DippasJob().replace(tile=64).overlap == 16
    assert DippasJob(tile=64, tile_overlap=0).overlap == 0
    assert DippasJob() == DippasJob(tile_overlap=32) and hash(DippasJob()) == hash(DippasJob(tile_overlap=32))
    assert DippasJob(tile=64).run_identity()["tile_overlap"] == 16
