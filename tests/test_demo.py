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
    assert report["job"]["warm_start"] is True  # what ran, not the job's unset field
    assert report["input"]["match"]  # the simulated camera is attributable before
    assert abs(report["output"]["ncc"]) < abs(report["input"]["ncc"])
    with Image.open(out / "anonymized.png") as im:
        assert im.size == (64, 64) and not im.info
    with Image.open(out / "figure.png") as im:
        assert not im.info


def test_demo_rejects_bad_size(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--size", "8"]) == 2
    assert "between 32 and 512" in capsys.readouterr().err


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_demo_refuses_a_users_folder(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "run").mkdir(parents=True)
    (out / "run" / "thesis.tex").write_text("years of work")
    (out / "report.json").write_text('{"mine": true}')
    before = _snapshot(out)
    assert main(["demo", "--out", str(out), "--size", "64", "--max-iter", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not made by dippas demo" in err[0] and "--force" in err[0]
    assert _snapshot(out) == before
    # --force never deletes a run folder the demo did not make
    assert main(["demo", "--out", str(out), "--size", "64", "--max-iter", "5", "--force"]) == 2
    assert "was not made by dippas demo" in capsys.readouterr().err
    assert _snapshot(out) == before and not (out / ".dippas-demo.json").exists()


def test_demo_reuses_only_its_own_folder_and_files(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--size", "32", "--max-iter", "20", "--device", "cpu",
            "--block-size", "16", "--blocks", "2", "--json"]
    assert main(args) == 0
    assert (out / ".dippas-demo.json").is_file() and (out / "run").is_dir()
    (out / "notes.txt").write_text("mine")
    assert main(args) == 0  # a folder with the marker: the demo replaces its own files
    assert (out / "notes.txt").read_text() == "mine"
    capsys.readouterr()


def test_demo_unwritable_out_refused_before_work(unwritable_dir, capsys):
    out = unwritable_dir / "dippas-demo-test"
    assert main(["demo", "--out", str(out), "--size", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write there" in err[0]
    assert not out.exists()
