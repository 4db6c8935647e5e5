"""``dippas demo`` (the README's main job) on a small crop with few iterations."""

from __future__ import annotations

import json

from PIL import Image

from dippas.cli import main


def test_demo_writes_outputs_report_and_figure(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "64", "--max-iter", "40", "--device", "cpu",
                 "--block-size", "16", "--blocks", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {p.name for p in out.iterdir()} >= {"sample.png", "sample_fingerprint.npy",
                                               "anonymized.png", "report.json", "figure.png"}
    assert json.loads((out / "report.json").read_text())["psnr"] == report["psnr"]
    assert report["input"]["match"]  # the simulated camera is attributable before
    assert abs(report["output"]["ncc"]) < abs(report["input"]["ncc"])
    with Image.open(out / "anonymized.png") as im:
        assert im.size == (64, 64) and not im.info
    with Image.open(out / "figure.png") as im:
        assert not im.info


def test_demo_rejects_bad_size(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--size", "8"]) == 2
    assert "between 32 and 512" in capsys.readouterr().err
