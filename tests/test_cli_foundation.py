"""The first CLI commands end to end, and --help everywhere."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dippas.cli import build_parser, main


def test_help_for_every_command():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"residual", "fingerprint", "attribute"} <= set(sub.choices)
    for name in sub.choices:
        res = subprocess.run([sys.executable, "-m", "dippas.cli", name, "--help"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and "usage: dippas" in res.stdout, name


def test_residual_command_matches_api(tmp_path, reference_dir, capsys):
    import dippas
    from dippas.io import save_image

    img = np.load(reference_dir / "Nikon_D70s_0_22115_crop512_uint8.npy")
    p = save_image(tmp_path / "img.png", img)
    assert main(["residual", str(p), "-o", str(tmp_path / "w.npy"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["shape"] == [512, 512]
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), dippas.noise_residual(img))


def test_fingerprint_then_attribute(tmp_path, dresden_dir, capsys):
    out = tmp_path / "k.npy"
    assert main(["fingerprint", str(dresden_dir / "flatfield" / "Nikon_D70_1"), "-o", str(out),
                 "--crop", "512", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 10
    own = dresden_dir / "natural" / "Nikon_D70_1_20749.jpg"
    other = dresden_dir / "natural" / "Nikon_D200_1_17226.jpg"
    scores = {}
    for name, img in (("own", own), ("other", other)):
        assert main(["attribute", str(img), "-k", str(out), "--crop", "512", "--json"]) == 0
        scores[name] = json.loads(capsys.readouterr().out)
    assert scores["own"]["ncc"] > 3 * abs(scores["other"]["ncc"])
    assert scores["own"]["pce"] > scores["other"]["pce"]
    assert set(scores["own"]) >= {"ncc", "pce", "pce_search", "match", "pce_threshold"}


@pytest.mark.parametrize("cmd", ["residual", "fingerprint", "attribute"])
def test_missing_required_arguments_exit_2(cmd):
    res = subprocess.run([sys.executable, "-m", "dippas.cli", cmd], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and "error" in res.stderr


def test_failed_tile_task_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    """A Dask worker's failure (``TileError``) ends the command with one line, not a traceback."""
    from dippas.batch.tiles import TileError
    from dippas.cli import residual

    def fail(args):
        raise TileError("tile 0_1: RuntimeError: worker lost")

    monkeypatch.setattr(residual, "run", fail)
    (tmp_path / "x.png").write_bytes(b"")  # the parser wants it to exist; run never reads it
    assert main(["residual", str(tmp_path / "x.png"), "-o", str(tmp_path / "y.npy")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "dippas residual: error: tile 0_1: RuntimeError: worker lost"]
