"""``dippas anonymize`` and ``dippas assemble`` end to end: outputs, reports, metadata, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dippas.cli import main
from dippas.io import load_image, save_image

SERIAL = b"20025295"  # MakerNote SerialNumber of the full Dresden photo


def _png_chunks(data: bytes) -> list[bytes]:
    pos, out = 8, []
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if not (out and out[-1] == kind == b"IDAT"):  # a large image splits its IDAT
            out.append(kind)
        pos += 12 + n
    return out


def _assert_no_metadata(path, forbidden=(b"NIKON", b"Nikon", SERIAL, b"Exif", b"MakerNote")):
    data = path.read_bytes()
    assert _png_chunks(data) == [b"IHDR", b"IDAT", b"IEND"]
    for token in forbidden:
        assert token not in data, token
    with Image.open(path) as im:
        assert not im.info and not im.getexif()


@pytest.fixture(scope="module")
def crop(tmp_path_factory, dresden_dir):
    from dippas.fingerprint import centre_crop

    d = tmp_path_factory.mktemp("crop")
    img = centre_crop(load_image(dresden_dir / "natural" / "Nikon_D70_1_20543.jpg"), (128, 128))
    return save_image(d / "crop.png", img)


@pytest.fixture(scope="module")
def crop_k(tmp_path_factory, reference_dir):
    from dippas.fingerprint import centre_crop

    d = tmp_path_factory.mktemp("k")
    k = centre_crop(np.load(reference_dir / "fingerprint_Nikon_D70_1_crop512_sigma3.npy"), (128, 128))
    np.save(d / "k.npy", k)
    return d / "k.npy"


@pytest.mark.slow
def test_dippas_full_photo_output_has_no_metadata(tmp_path, dresden_dir):
    src = dresden_dir / "full" / "Nikon_D70_1_20543.JPG"
    assert SERIAL in src.read_bytes() and b"NIKON" in src.read_bytes()
    out = tmp_path / "anon.png"
    res = subprocess.run([sys.executable, "-m", "dippas", "anonymize", str(src), "-o", str(out),
                          "--blind", "--max-iter", "1", "--json"],
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(res.stdout)
    assert report["output_file"] == str(out) and 0 < report["psnr"] < 100
    assert load_image(out).shape == (2000, 3008, 3)
    _assert_no_metadata(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anon.png"]  # nothing else left


def test_inpainting_with_report_heatmap_and_metadata(tmp_path, crop, crop_k, capsys):
    out, fig = tmp_path / "o.png", tmp_path / "fig.png"
    assert main(["anonymize", str(crop), "-o", str(out), "--method", "inpainting",
                 "--fingerprint", str(crop_k), "--heatmap", str(fig), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["psnr"] > 33 and 0 < report["ssim"] <= 1
    assert set(report["input"]) >= {"ncc", "pce", "pce_search", "match"}
    assert report["figure"] == str(fig)
    _assert_no_metadata(out)
    _assert_no_metadata(fig)


def test_dippas_aware_with_kept_run_then_reassemble(tmp_path, crop, crop_k, capsys):
    run, out = tmp_path / "run", tmp_path / "o.png"
    assert main(["anonymize", str(crop), "-o", str(out), "-k", str(crop_k), "--max-iter", "3",
                 "--run", str(run), "--device", "cpu", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (run / "params.json").is_file() and "output" in first
    out2 = tmp_path / "o2.tif"
    assert main(["assemble", str(run), "-o", str(out2), "-B", "whole", "-L", "1", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["output_file"] == str(out2) and "input" in second
    assert load_image(out2).shape == (128, 128, 3)


@pytest.mark.parametrize("argv,fragment", [
    (["--method", "dippas"], "--fingerprint K (PRNU-aware) or --blind"),
    (["--blind", "-k", "K"], "not both"),
    (["--method", "inpainting", "--blind"], "--method dippas only"),
    (["--method", "inpainting", "--heatmap", "F.png"], "--heatmap needs a fingerprint"),
    (["--method", "inpainting", "-o", "X.jpg"], "--jpeg-quality"),
    (["--method", "inpainting", "--hole", "4"], "invalid choice"),
])
def test_bad_options_exit_2_and_write_nothing(tmp_path, crop, crop_k, argv, fragment):
    argv = [str(crop_k) if a == "K" else str(tmp_path / a) if a in ("F.png", "X.jpg") else a
            for a in argv]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "o.png")]
    res = subprocess.run([sys.executable, "-m", "dippas", "anonymize", str(crop), *argv],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert fragment in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force_and_input_is_never_overwritten(tmp_path, crop):
    before = crop.read_bytes()
    assert main(["anonymize", str(crop), "-o", str(crop), "--method", "inpainting", "--force"]) == 2
    assert crop.read_bytes() == before
    out = tmp_path / "o.png"
    out.write_bytes(b"keep")
    assert main(["anonymize", str(crop), "-o", str(out), "--method", "inpainting"]) == 2
    assert out.read_bytes() == b"keep"


def test_camera_photos_give_the_fingerprint_of_anonymize(tmp_path, dresden_dir, capsys):
    photos = dresden_dir / "flatfield" / "Nikon_D70_1"
    img = dresden_dir / "natural" / "Nikon_D70_1_20543.jpg"
    out = tmp_path / "out.png"
    assert main(["anonymize", str(img), "-o", str(out), "--method", "inpainting",
                 "--camera-photos", str(photos), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # K from the camera's own photos: the original correlates (null scale 1/1024), the output far less
    assert report["input"]["ncc"] > 0.003 and report["input"]["pce"] > 10
    assert abs(report["output"]["ncc"]) < report["input"]["ncc"] / 3
    assert out.is_file()


@pytest.mark.parametrize("extra, message", [
    (["--camera-photos", "{few}"], "needs at least 8"),
    (["--camera-photos", "{few}", "-k", "{k}"], "not both"),
])
def test_camera_photos_refusals_before_any_work(tmp_path, dresden_dir, crop, crop_k, capsys,
                                                 extra, message):
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted((dresden_dir / "flatfield" / "Nikon_D70_1").iterdir())[:3]:
        (few / p.name).write_bytes(p.read_bytes())
    args = [a.format(few=few, k=crop_k) for a in extra]
    out = tmp_path / "o.png"
    assert main(["anonymize", str(crop), "-o", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
