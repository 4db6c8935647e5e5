"""Every subcommand refuses an unwritable output and a bad option the same way, before any work:
exit 2, one line on stderr, nothing written. Also: bombs, the pixel cap, warnings, residual."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _craft import png_bomb
from PIL import Image

from dippas.io import save_fingerprint, save_image

#: A guard against a refusal that comes after the work (the work would take far longer).
HANG_GUARD_S = 120


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    from skimage import data

    d = tmp_path_factory.mktemp("inputs")
    photo = data.astronaut()[100:164, 200:264]
    save_image(d / "photo.png", photo)
    k = np.random.default_rng(1).normal(0, 0.02, (64, 64)).astype(np.float32)
    save_fingerprint(d / "k.npy", k)
    (d / "flats").mkdir()
    for i in range(2):
        save_image(d / "flats" / f"f{i}.png", np.full((64, 64, 3), 200 + i, np.uint8))
    from dippas.dip import DippasRun, get_preset

    tiny = get_preset("fast", max_iter=5, lr=1e-2, stop_psnr=60.0, save_psnr=5.0).with_overrides(
        z_channels=8, widths=(4, 8), skip_channels=(4,))
    DippasRun.create(d / "run", photo, k, preset=tiny, device="cpu", checkpoint_every=5).run()
    return {"photo": d / "photo.png", "k": d / "k.npy", "flats": d / "flats", "run": d / "run",
            "dir": d}


def _cli(args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dippas.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=HANG_GUARD_S,
                          env={**os.environ, **(env or {})})


def _one_line_exit_2(res: subprocess.CompletedProcess, fragment: str) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr and fragment in lines[0], lines[0]
    return lines[0]


UNWRITABLE = {
    "residual": lambda f, u: ["residual", f["photo"], "-o", u / "w.npy"],
    "fingerprint": lambda f, u: ["fingerprint", f["flats"], "-o", u / "k.npy"],
    "invert": lambda f, u: ["invert", f["photo"], "--blind", "--run", u / "run", "--device", "cpu"],
    "assemble": lambda f, u: ["assemble", f["run"], "-o", u / "x.png", "-B", "16"],
    "anonymize": lambda f, u: ["anonymize", f["photo"], "-o", u / "x.png", "--method", "inpainting"],
    "anonymize --run": lambda f, u: ["anonymize", f["photo"], "-o", "x.png", "--blind",
                                     "--run", u / "run", "--device", "cpu"],
    "batch": lambda f, u: ["batch", f["photo"], "--out", u / "b", "--method", "inpainting"],
    "evaluate": lambda f, u: ["evaluate", f["flats"], "--out", u / "ev", "--method", "none"],
    "demo": lambda f, u: ["demo", "--out", u / "demo"],
    "proc": lambda f, u: ["anonymize", f["photo"], "-o", "/proc/x.png", "--method", "inpainting"],
}

BAD_OPTION = {
    "residual": (["residual", "{photo}", "-o", "w.npy", "--sigma", "-1"], "positive number"),
    "fingerprint": (["fingerprint", "{flats}", "-o", "k.npy", "--crop", "x"], "--crop"),
    "attribute": (["attribute", "{photo}", "-k", "{k}", "--pce-threshold", "0"], "positive"),
    "invert": (["invert", "{photo}", "--blind", "--run", "run", "--tile", "0"], "positive integer"),
    "assemble": (["assemble", "{run}", "-o", "x.png", "--blocks", "0"], "positive integer"),
    "anonymize": (["anonymize", "{photo}", "-o", "x.png", "--method", "erase"], "invalid choice"),
    "batch": (["batch", "{photo}", "--out", "b", "--method", "inpainting", "--workers", "4096"],
              "core(s); use at most"),
    "evaluate": (["evaluate", "{flats}", "--out", "ev", "--crop", "x"], "--crop"),
    "demo": (["demo", "--out", "demo", "--size", "8"], "between 32 and 512"),
    "max-pixels": (["--max-pixels", "0", "residual", "{photo}", "-o", "w.npy"], "--max-pixels"),
}


@pytest.mark.parametrize("case", sorted(UNWRITABLE))
def test_unwritable_output_refused_before_work(case, files, unwritable_dir, tmp_path):
    if case == "proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    res = _cli(UNWRITABLE[case](files, unwritable_dir), cwd)
    line = _one_line_exit_2(res, "cannot write there" if case != "proc" else "/proc")
    assert line.startswith("dippas ")
    assert list(cwd.iterdir()) == []  # nothing written anywhere else either


@pytest.mark.parametrize("case", sorted(BAD_OPTION))
def test_bad_option_is_one_line_exit_2(case, files, tmp_path):
    argv, fragment = BAD_OPTION[case]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    res = _cli([a.format(**files) if isinstance(a, str) else a for a in argv], cwd)
    _one_line_exit_2(res, fragment)
    assert list(cwd.iterdir()) == []


def test_bomb_and_pixel_cap_through_the_cli(files, tmp_path):
    bomb = png_bomb(tmp_path / "bomb.png", 15000, 15000, 16, 2)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    _one_line_exit_2(_cli(["residual", bomb, "-o", "w.npy"], cwd), "over the 200 Mpx limit")
    _one_line_exit_2(_cli(["--max-pixels", "1000", "residual", files["photo"], "-o", "w.npy"], cwd),
                     "over the 0.001 Mpx limit")
    _one_line_exit_2(_cli(["residual", files["photo"], "-o", "w.npy"], cwd,
                          {"DIPPAS_MAX_PIXELS": "1000"}), "DIPPAS_MAX_PIXELS")
    assert list(cwd.iterdir()) == []


def test_batch_refuses_a_bomb_once_without_retrying(tmp_path):
    from dippas.batch import plan_batch, run_task

    bomb = png_bomb(tmp_path / "bomb.png", 20000, 20000, 8, 2)
    plan = plan_batch([bomb], tmp_path / "out", "inpainting")
    result = run_task(plan.pending[0].task)  # returned, not raised: Dask never retries it
    assert result["status"] == "failed" and "over the 200 Mpx limit" in result["error"]
    assert "\n" not in result["error"] and not (tmp_path / "out" / "bomb.png").exists()


def test_alpha_warning_is_one_clean_line(files, tmp_path):
    rgba = np.dstack([np.asarray(Image.open(files["photo"])), np.full((64, 64), 128, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    res = _cli(["residual", tmp_path / "alpha.png", "-o", tmp_path / "w.npy"], tmp_path)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines == [f"dippas residual: warning: {tmp_path / 'alpha.png'}: alpha channel is not "
                     "opaque; it is dropped"]


def test_residual_of_a_flat_image_and_a_wrong_suffix(tmp_path):
    save_image(tmp_path / "flat.png", np.full((64, 64, 3), 90, np.uint8))
    _one_line_exit_2(_cli(["residual", tmp_path / "flat.png", "-o", "w.npy"], tmp_path),
                     "the image is flat")
    bomb = png_bomb(tmp_path / "bomb.png", 15000, 15000, 16, 2)  # would fail if read first
    _one_line_exit_2(_cli(["residual", bomb, "-o", "W.png"], tmp_path), "written as .npy or .tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.png", "flat.png"]
