"""Every bad input of the issue, through the CLI: one line, exit code 2, nothing written."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dippas.cli import main


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dippas.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def _assert_clean_failure(res, out_path, fragment):
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in res.stderr
    assert not out_path.exists()
    assert not list(out_path.parent.glob(f".{out_path.name}*"))
    assert not list(out_path.parent.glob(".dippas-*.part*"))  # no temporary file either


@pytest.fixture
def natural(dresden_dir):
    return dresden_dir / "natural" / "Nikon_D70_1_20543.jpg"


@pytest.fixture
def k512(reference_dir):
    return reference_dir / "fingerprint_Nikon_D70_1_crop512_sigma3.npy"


@pytest.mark.parametrize("kind,fragment", [
    ("empty", "empty"),
    ("text", "not an image"),
    ("truncated", "truncated"),
    ("tiny", "at least 32x32"),
])
def test_bad_images(tmp_path, natural, kind, fragment):
    bad = tmp_path / "bad.jpg"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "text":
        bad.write_text("hello")
    elif kind == "truncated":
        bad.write_bytes(natural.read_bytes()[:30000])
    else:
        bad = tmp_path / "tiny.png"
        Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(bad)
    out = tmp_path / "w.npy"
    _assert_clean_failure(run_cli(["residual", bad, "-o", out]), out, fragment)


def test_16bit_png_is_accepted_and_scaled(tmp_path, reference_dir, capsys):
    """16-bit PNG is documented as supported: values are divided by 257 (0-255 units)."""
    img8 = np.load(reference_dir / "Nikon_D70_1_20543_crop512_uint8.npy")[:128, :128]
    from dippas.io import save_image

    p16 = save_image(tmp_path / "x16.png", img8.astype(np.uint16) * 257)
    assert main(["residual", str(p16), "-o", str(tmp_path / "w16.npy")]) == 0
    p8 = save_image(tmp_path / "x8.png", img8)
    assert main(["residual", str(p8), "-o", str(tmp_path / "w8.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "w16.npy"), np.load(tmp_path / "w8.npy"), atol=1e-4)


def test_nan_fingerprint(tmp_path, natural, k512):
    k = np.load(k512)
    k[10, 10] = np.nan
    bad = tmp_path / "k.npy"
    np.save(bad, k)
    res = run_cli(["attribute", natural, "--fingerprint", bad, "--crop", "512"])
    assert res.returncode == 2 and "NaN" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_wrong_shape_fingerprint(natural, k512):
    res = run_cli(["attribute", natural, "--fingerprint", k512])
    assert res.returncode == 2
    assert "512x512 but the image is 1024x1024" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_folder_with_mixed_sizes(tmp_path, dresden_dir):
    folder = tmp_path / "flat"
    folder.mkdir()
    files = sorted((dresden_dir / "flatfield" / "Nikon_D70_0").glob("*.jpg"))[:2]
    shutil.copy(files[0], folder / "a.jpg")
    Image.open(files[1]).crop((0, 0, 600, 500)).save(folder / "b.png")
    out = tmp_path / "k.npy"
    _assert_clean_failure(run_cli(["fingerprint", folder, "-o", out]), out, "--crop")
    assert main(["fingerprint", str(folder), "-o", str(out), "--crop", "common"]) == 0
    assert np.load(out).shape == (500, 600)


def test_unknown_option_and_missing_file(tmp_path, natural):
    res = run_cli(["residual", natural, "-o", tmp_path / "w.npy", "--bogus"])
    assert res.returncode == 2 and "unrecognized arguments: --bogus" in res.stderr
    res = run_cli(["residual", tmp_path / "nope.jpg", "-o", tmp_path / "w.npy"])
    assert res.returncode == 2 and "no such file" in res.stderr


def test_residual_refuses_to_overwrite_input(tmp_path, reference_dir):
    k = tmp_path / "in.npy"
    shutil.copy(reference_dir / "Nikon_D70_1_20543_crop512_uint8.npy", k)
    before = k.read_bytes()
    from dippas.io import save_image

    img = save_image(tmp_path / "img.png", np.load(k))
    res = run_cli(["residual", img, "-o", img])
    assert res.returncode == 2 and "input" in res.stderr
    assert k.read_bytes() == before
