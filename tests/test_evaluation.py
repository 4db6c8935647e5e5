"""The evaluation harness: datasets, methods, scores, caching, outputs, CLI and reference agreement."""

from __future__ import annotations

import csv
import json
import pickle
import types
from pathlib import Path

import numpy as np
import pytest

from dippas.cli import main
from dippas.errors import DippasInputError
from dippas.evaluation import (
    attribution_summary,
    evaluate,
    expand_settings,
    label_matrix,
    load_dataset,
    parse_method_spec,
    score_image,
    summarize_setting,
)
from dippas.evaluation import protocol as runner_mod
from dippas.io import save_fingerprint, save_image
from dippas.samples import apply_fingerprint, simulated_fingerprint

DEVICES = ("camA", "camB", "camC")
SIZE = 96
CROP = 64
PER_DEVICE = 3


# --------------------------------------------------------------------------
# A tiny synthetic dataset: 3 devices, 3 natural images and 4 flat-fields each
# --------------------------------------------------------------------------

def _scene(j: int, d: int) -> np.ndarray:
    from skimage import data

    src = (data.astronaut, data.coffee, data.chelsea)[j]()
    y, x = 60 + 40 * d, 100 + 50 * j
    return src[y:y + SIZE, x:x + SIZE]


def _flat(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    base = 150 + 0.2 * xx + 0.1 * yy
    return np.clip(base[..., None] + rng.normal(0, 1.0, (SIZE, SIZE, 3)), 0, 255)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """The dataset in all layouts: dict of layout name -> path, plus the fingerprints."""
    root = tmp_path_factory.mktemp("synth")
    ks = {d: simulated_fingerprint((SIZE, SIZE), 0.01, seed=10 + i) for i, d in enumerate(DEVICES)}
    prnu, flatl, pooled = root / "prnu", root / "flatfield", root / "pooled"
    rows = []
    for i, dev in enumerate(DEVICES):
        for j in range(PER_DEVICE):
            img = apply_fingerprint(_scene(j, i), ks[dev])
            name = f"{dev}_{1000 + j}.png"
            for folder in (prnu / dev, flatl / dev / "natural", pooled / "natural"):
                folder.mkdir(parents=True, exist_ok=True)
                save_image(folder / name, img, force=True)
            rows.append({"image": f"prnu/{dev}/{name}", "device": dev,
                         "fingerprint": f"prnu/{dev}/prnu.npy" if j == 0 else ""})
        for f in range(4):
            ff = apply_fingerprint(_flat(100 * i + f), ks[dev])
            for folder in (flatl / dev / "flatfield", pooled / "flatfield" / dev):
                folder.mkdir(parents=True, exist_ok=True)
                save_image(folder / f"flat_{f}.png", ff, force=True)
        save_fingerprint(prnu / dev / "prnu.npy", ks[dev], force=True)
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "device", "fingerprint"])
        w.writeheader()
        w.writerows(rows)
    return {"prnu": prnu, "flatfield": flatl, "pooled": pooled, "manifest": manifest,
            "root": root, "ks": ks}


def _none_auc(res) -> float:
    return res.summaries[0]["auc"]


# --------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------

@pytest.mark.parametrize("layout, expected", [("prnu", "device-prnu"), ("flatfield", "device-flatfield"),
                                              ("pooled", "pooled"), ("manifest", "manifest")])
def test_layouts_are_read(synth, layout, expected):
    ds = load_dataset(synth[layout])
    assert ds.layout == expected
    assert ds.devices == list(DEVICES)
    assert len(ds.items) == len(DEVICES) * PER_DEVICE
    assert [it.device for it in ds.items] == [d for d in DEVICES for _ in range(PER_DEVICE)]
    if layout in ("prnu", "manifest"):
        assert set(ds.fingerprint_files) == set(DEVICES) and not ds.flatfields
    else:
        assert set(ds.flatfields) == set(DEVICES) and all(len(v) == 4 for v in ds.flatfields.values())


@pytest.mark.parametrize("layout", ["prnu", "flatfield", "pooled", "manifest"])
def test_none_on_synthetic_set_attributes_every_image(synth, layout, tmp_path):
    res = evaluate(synth[layout], ["none"], tmp_path / "out", crop=CROP, plots=False)
    s = res.summaries[0]
    assert s["auc"] >= 0.99 and s["eer"] <= 0.05
    assert s["positives"] == 9 and s["negatives"] == 18
    if layout in ("flatfield", "pooled"):
        cached = sorted((tmp_path / "out" / "fingerprints").glob("*.npy"))
        assert len(cached) == 3 and all("crop64" in p.name for p in cached)
        assert np.load(cached[0]).shape == (CROP, CROP)


def test_full_size_and_rescoring_without_reanonymizing(synth, tmp_path):
    out = tmp_path / "out"
    res = evaluate(synth["flatfield"], ["denoise"], out, crop=None, plots=False)
    assert res.summaries[0]["auc"] >= 0.99
    assert res.summaries[0]["matrices"]["images"][0] == "camA_1000"
    assert (out / "cache" / "cropfull").is_dir()
    assert all(np.load(p).shape == (SIZE, SIZE) for p in (out / "fingerprints").glob("*.npy"))
    # Other fingerprints (the true K instead of the estimates): re-scored, not re-anonymized.
    fdir = tmp_path / "prints"
    fdir.mkdir()
    for dev in DEVICES:
        np.save(fdir / f"{dev}.npy", synth["ks"][dev])
    res2 = evaluate(synth["flatfield"], ["denoise"], out, crop=None, fingerprints=fdir, plots=False)
    assert res2.work["anonymized"] == 0 and res2.work["scored"] == 9 and res2.work["cached"] == 0
    assert res2.summaries[0]["matrices"]["ncc"] != res.summaries[0]["matrices"]["ncc"]


def test_fingerprint_formats_and_fingerprints_folder(synth, tmp_path):
    import scipy.io
    import tifffile

    root = tmp_path / "ds"
    for i, dev in enumerate(DEVICES):
        (root / dev).mkdir(parents=True)
        for f in (synth["prnu"] / dev).glob("*.png"):
            (root / dev / f.name).write_bytes(f.read_bytes())
        k = synth["ks"][dev]
        if i == 0:
            np.save(root / dev / "prnu.npy", k)
        elif i == 1:
            tifffile.imwrite(root / dev / "prnu.tif", k)
        else:
            scipy.io.savemat(root / dev / "prnu.mat", {"K": k})
    ds = load_dataset(root)
    assert sorted(p.suffix for p in ds.fingerprint_files.values()) == [".mat", ".npy", ".tif"]
    # A --fingerprints folder with reference-style names takes precedence.
    fdir = tmp_path / "prints"
    fdir.mkdir()
    for dev in DEVICES:
        np.save(fdir / f"fingerprint_{dev}_crop96_sigma3.npy", synth["ks"][dev])
    ds2 = load_dataset(root, fingerprints=fdir)
    assert all(p.parent == fdir for p in ds2.fingerprint_files.values())
    res = evaluate(root, ["none"], tmp_path / "out", crop=CROP, plots=False)
    assert _none_auc(res) >= 0.99


def test_manifest_relative_paths_and_missing_columns(synth, tmp_path):
    ds = load_dataset(synth["manifest"])
    assert all(it.path.is_absolute() or it.path.exists() for it in ds.items)
    assert ds.fingerprint_files["camB"] == synth["root"] / "prnu" / "camB" / "prnu.npy"
    bad = tmp_path / "bad.csv"
    bad.write_text("image,device\na.png,x\n")
    with pytest.raises(DippasInputError, match="lacks the column"):
        load_dataset(bad)


# --------------------------------------------------------------------------
# Labels and scores
# --------------------------------------------------------------------------

def test_ground_truth_labels():
    labels = label_matrix(["a", "b", "c"], ["b", "a", "a", "c"])
    expected = np.array([[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(labels, expected)
    # In a summary, the positives are exactly the own-device pairs.
    recs = [_record(f"i{j}", d, {"a": 0.1 * j, "b": -0.1, "c": 0.0}) for j, d in enumerate("baac")]
    s = summarize_setting(recs, ["a", "b", "c"])
    assert s["positives"] == 4 and s["negatives"] == 8
    assert s["matrices"]["image_devices"] == list("baac")


def _record(image_id, device, ncc, psnr=40.0, ssim=0.99, edges=None, pce=None):
    return {"image_id": image_id, "device": device, "ncc": ncc, "pce": pce or ncc,
            "ncc_edges": edges or ncc, "psnr": psnr, "ssim": ssim, "edge_fraction": 0.2}


def test_auc_equals_sklearn_on_the_same_matrix(rng):
    from sklearn.metrics import roc_auc_score

    devices = ["a", "b", "c", "d", "e", "f"]
    image_devices = [devices[i % 6] for i in range(30)]
    m = rng.normal(0, 1, (6, 30))
    labels = label_matrix(devices, image_devices)
    m[labels] += 1.0
    recs = [_record(f"i{j}", d, {dev: m[i, j] for i, dev in enumerate(devices)})
            for j, d in enumerate(image_devices)]
    s = summarize_setting(recs, devices)
    assert s["auc"] == pytest.approx(roc_auc_score(labels.ravel(), m.ravel()), abs=1e-12)
    assert 0.5 < s["auc"] < 1.0
    assert attribution_summary(labels, m)["auc"] == pytest.approx(s["auc"])


def test_tradeoff_formula():
    # Positives 0.5 and 0.6, negatives 0.0 and 0.55: 3 of the 4 pairs are ordered, AUC 0.75.
    recs = [_record("i0", "a", {"a": 0.5, "b": 0.0}, psnr=38.0),
            _record("i1", "b", {"a": 0.55, "b": 0.6}, psnr=42.0)]
    s = summarize_setting(recs, ["a", "b"])
    assert s["auc"] == pytest.approx(0.75)
    assert s["psnr_mean"] == pytest.approx(40.0)
    assert s["tradeoff_c"] == pytest.approx(40.0 * (1 - 2 * abs(0.75 - 0.5)))
    # An unchanged image (PSNR inf) has no trade-off value.
    recs[0]["psnr"] = float("inf")
    assert summarize_setting(recs, ["a", "b"])["tradeoff_c"] is None


def test_edge_only_ncc_uses_the_mask_only(synth):
    from dippas.correlation import attribution_reference, ncc
    from dippas.inpainting.edges import edge_mask
    from dippas.residual import noise_residual

    k = synth["ks"]["camA"]
    clean = _scene(0, 0)
    mask = edge_mask(clean)
    assert 0.05 < mask.mean() < 0.95
    # PRNU left only on the edges: the edge-only NCC must exceed the full-image NCC.
    img = clean.copy()
    img[mask] = apply_fingerprint(clean, k * 3)[mask]
    r = score_image(img, clean, {"camA": k, "camB": synth["ks"]["camB"]}, mask)
    w = noise_residual(img)
    x = attribution_reference(img, k)
    assert r["ncc_edges"]["camA"] == pytest.approx(ncc(w[mask], x[mask]), rel=1e-9)
    assert r["ncc"]["camA"] == pytest.approx(ncc(w, x), rel=1e-9)
    assert r["ncc_edges"]["camA"] > r["ncc"]["camA"]
    assert r["edge_fraction"] == pytest.approx(mask.mean())
    # Without a mask there is no edge-only score.
    r_none = score_image(img, clean, {"camA": k}, None)
    assert np.isnan(r_none["ncc_edges"]["camA"])


def test_edge_auc_and_relative_change_in_summary(synth, tmp_path):
    res = evaluate(synth["prnu"], ["none"], tmp_path / "out", crop=CROP, plots=False)
    s = res.summaries[0]
    from dippas.inpainting.edges import edge_mask

    # The cached mask is the inpainting package's edge mask of the original crop.
    rec = res.records[0]
    mask_png = Path(tmp_path / "out" / "cache" / "crop64" / "edges-nl_means" / f"{rec['image_key']}.png")
    from dippas.io import load_image

    original = load_image(rec["image"])[16:80, 16:80]
    np.testing.assert_array_equal(load_image(mask_png) > 127, edge_mask(original))
    assert rec["edge_fraction"] == pytest.approx(edge_mask(original).mean())
    assert s["auc_edges"] is not None
    assert s["auc_edges_rel_change"] == pytest.approx((s["auc_edges"] - s["auc"]) / s["auc"])


# --------------------------------------------------------------------------
# Methods, caching, outputs
# --------------------------------------------------------------------------

def test_method_specs_and_grid():
    s = expand_settings(["none", "inpainting:hole=3/5,reg=l2", "denoise"], {"edges": ["0", "1"]})
    assert [x.method for x in s] == ["none"] + ["inpainting"] * 4 + ["denoise"]
    assert {(x.params_dict["hole"], x.params_dict["edges"]) for x in s[1:5]} == {
        (3, False), (3, True), (5, False), (5, True)}
    assert expand_settings(["inpainting"])[0] == expand_settings(["inpainting:hole=5,edges=1"])[0]
    assert parse_method_spec("inpainting:hole=3,reg=tv").values == {"hole": ["3"], "reg": ["tv"]}
    for bad, msg in [("nope", "unknown method"), ("inpainting:foo=1", "unknown parameter"),
                     ("inpainting:hole=4", "hole"), ("inpainting:hole", "key=value"),
                     ("denoise:denoiser=zzz", "denoiser")]:
        with pytest.raises(DippasInputError, match=msg):
            expand_settings([bad])
    with pytest.raises(DippasInputError, match="none of the selected"):
        expand_settings(["none"], {"B": ["32"]})


def _png_chunks(data: bytes) -> list[bytes]:
    import struct

    kinds, i = [], 8
    while i + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        kinds.append(kind)
        i += 12 + length
    return kinds


def test_cache_resume_and_outputs(synth, tmp_path, monkeypatch):
    calls = []
    real = runner_mod.run_method

    def counting(setting, image, **kw):
        calls.append(setting.method)
        return real(setting, image, **kw)

    monkeypatch.setattr(runner_mod, "run_method", counting)
    out = tmp_path / "out"
    methods = ["none", "denoise", "inpainting:edges=0"]
    res = evaluate(synth["prnu"], methods, out, crop=CROP, plots=True)
    n = len(methods) * 9
    assert len(calls) == n and res.work["anonymized"] == n and res.work["cached"] == 0
    pngs = sorted((out / "cache" / "crop64").glob("*/*.png"))
    mtimes = {p: p.stat().st_mtime_ns for p in pngs}
    for name in ("results.json", "results.csv", "per_image.csv", "plots/roc.png",
                 "plots/tradeoff.png", "plots/roc_inpainting.png"):
        assert (out / name).is_file(), name
    assert len(list((out / "plots").glob("hist_*.png"))) == 3
    assert (out / "plots" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Cached images carry no metadata: a plain PNG of the crop size.
    from PIL import Image

    with Image.open(next(p for p in pngs if "denoise" in str(p))) as im:
        assert im.size == (CROP, CROP) and not im.info
    # Plots too: no tEXt Software, no pHYs (Pillow reports those as info keys).
    for plot in (out / "plots").glob("*.png"):
        chunks = _png_chunks(plot.read_bytes())
        assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}, (plot.name, chunks)
    # Every JSON written is strict: the perfect PSNR of "none" is null, never Infinity or NaN.
    def refuse(constant):
        raise AssertionError(f"bare {constant} in JSON")

    jsons = list(out.rglob("*.json"))
    assert any("/none/" in p.as_posix() for p in jsons)
    for path in jsons:
        json.loads(path.read_text(), parse_constant=refuse)
    none_rec = json.loads(next(p for p in jsons if "/none/" in p.as_posix()).read_text())
    assert "psnr" in json.dumps(none_rec) and "Infinity" not in json.dumps(none_rec)
    report = json.loads((out / "results.json").read_text())
    assert [s["setting"] for s in report["settings"]] == ["none", "denoise", "inpainting:edges=0"]
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 3 and rows[0]["psnr_mean"] == "inf" and rows[0]["tradeoff_c"] == ""
    assert float(rows[2]["psnr_mean"]) < 60
    assert len(list(csv.DictReader(open(out / "per_image.csv")))) == n
    # Second run: nothing anonymized or scored, files untouched, same results.
    calls.clear()
    res2 = evaluate(synth["prnu"], methods, out, crop=CROP, plots=False)
    assert calls == [] and res2.work["anonymized"] == 0 and res2.work["scored"] == 0
    assert res2.work["cached"] == n
    assert {p: p.stat().st_mtime_ns for p in pngs} == mtimes
    assert [s["auc"] for s in res2.summaries] == [s["auc"] for s in res.summaries]
    # Another crop is another cache entry.
    res3 = evaluate(synth["prnu"], ["none"], out, crop=48, plots=False)
    assert res3.work["anonymized"] == 9


def test_interrupt_keeps_finished_work(synth, tmp_path):
    out = tmp_path / "out"

    def interrupted_map(func, tasks):
        for i, t in enumerate(tasks):
            if i == 4:
                raise KeyboardInterrupt
            yield func(t)

    with pytest.raises(KeyboardInterrupt):
        evaluate(synth["prnu"], ["denoise"], out, crop=CROP, plots=False, map_func=interrupted_map)
    assert not list(out.rglob("*.part*"))
    res = evaluate(synth["prnu"], ["denoise"], out, crop=CROP, plots=False)
    assert res.work["cached"] == 4 and res.work["anonymized"] == 5


def test_map_injection_and_picklable_tasks(synth, tmp_path):
    seen = []

    def my_map(func, tasks):
        tasks = list(tasks)
        seen.extend(tasks)
        return [func(pickle.loads(pickle.dumps(t))) for t in tasks]

    res = evaluate(synth["prnu"], ["none"], tmp_path / "out", crop=CROP, plots=False, map_func=my_map)
    assert len(seen) == 9 and res.summaries[0]["auc"] >= 0.99


# --------------------------------------------------------------------------
# DIPPAS: one inversion per image for a whole grid
# --------------------------------------------------------------------------

@pytest.fixture
def fake_dippas(monkeypatch):
    """A stand-in for the DIPPAS job's inversion and assembly that counts them."""
    from scipy import ndimage as ndi

    from dippas.jobs import DippasJob

    counts = {"invert": 0, "assemble": 0, "blind": [], "fingerprint_shapes": []}

    def invert(self, image, fingerprint, run_dir, *, progress=None, cancel=None, **_):
        run_dir = Path(run_dir)
        if (run_dir / "done").is_file():
            return run_dir
        counts["invert"] += 1
        counts["blind"].append(self.mode == "blind")
        counts["fingerprint_shapes"].append(None if fingerprint is None else fingerprint.shape)
        run_dir.mkdir(parents=True, exist_ok=True)
        np.save(run_dir / "input.npy", image)
        (run_dir / "done").write_text("1")
        if progress is not None:
            progress(1, 1)
        return run_dir

    def assemble(self, run_dir):
        counts["assemble"] += 1
        img = np.load(Path(run_dir) / "input.npy").astype(np.float32)
        sigma = 1.5 if self.block_size == "whole" else 0.8 + 0.1 * self.blocks
        return types.SimpleNamespace(
            image=np.clip(np.rint(ndi.gaussian_filter(img, (sigma, sigma, 0))), 0, 255).astype(np.uint8))

    monkeypatch.setattr(DippasJob, "invert", invert)
    monkeypatch.setattr(DippasJob, "assemble", assemble)
    return counts


def test_dippas_grid_reuses_one_inversion_per_image(synth, tmp_path, fake_dippas):
    out = tmp_path / "out"
    grid = ["B=16,whole", "L=1,5", "tau=none"]
    res = evaluate(synth["prnu"], ["dippas-aware:preset=fast,max_iter=10"], out, grid=grid,
                   crop=CROP, plots=False)
    assert len(res.summaries) == 4
    assert fake_dippas["invert"] == 9 and fake_dippas["assemble"] == 36
    assert fake_dippas["blind"] == [False] * 9
    assert fake_dippas["fingerprint_shapes"] == [(CROP, CROP)] * 9
    assert len(list((out / "runs" / "crop64").glob("*/*"))) == 9
    labels = [s["setting"] for s in res.summaries]
    assert "dippas-aware:max_iter=10,B=16,L=5,tau=none" in labels
    assert all(s["psnr_mean"] is not None and s["psnr_mean"] < 60 for s in res.summaries)
    res2 = evaluate(synth["prnu"], ["dippas-aware:preset=fast,max_iter=10", "dippas-blind"], out,
                    grid=grid, crop=CROP, plots=False)
    # The aware grid comes from the cache; blind runs its own 9 inversions.
    assert fake_dippas["invert"] == 18 and fake_dippas["blind"][9:] == [True] * 9
    assert res2.work["cached"] == 36 and res2.work["anonymized"] == 36


def test_evaluate_dippas_defaults_are_those_of_anonymize():
    """The unified default: evaluate's dippas settings are the DippasJob's, like anonymize's."""
    from dippas.evaluation.methods import job_of
    from dippas.jobs import DippasJob

    for name, mode in (("dippas-aware", "aware"), ("dippas-blind", "blind")):
        (setting,) = expand_settings([name])
        assert job_of(setting) == DippasJob(mode=mode)
    (paper,) = expand_settings(["dippas-aware:B=whole,L=1"])  # the paper's no-post-processing case
    assert job_of(paper).block_size == "whole" and job_of(paper).blocks == 1


def _has_dippas_glue() -> bool:
    try:
        import dippas.anonymize as a
    except ImportError:
        return False
    return hasattr(a, "invert_to_run") and hasattr(a, "assemble_run")


@pytest.mark.slow
@pytest.mark.skipif(not _has_dippas_glue(), reason="dippas.anonymize lacks invert_to_run/assemble_run")
def test_dippas_end_to_end(synth, tmp_path):
    # Tiny on purpose (the CPU does about 1-5 iterations/s): 2 devices x 1 image, 32x32 crops,
    # 10 iterations; the assembler must cope with snapshots that never reached 33 dB.
    manifest = tmp_path / "m.csv"
    rows = ["image,device,fingerprint"]
    for dev in DEVICES[:2]:
        rows.append(f"{synth['prnu'] / dev / f'{dev}_1000.png'},{dev},{synth['prnu'] / dev / 'prnu.npy'}")
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    res = evaluate(manifest, ["dippas-aware:max_iter=10", "dippas-blind:max_iter=10"], out,
                   grid=["L=1,2"], crop=32, device="cpu", plots=False)
    assert len(res.summaries) == 4 and res.work["inversions"] == 4
    for s in res.summaries:
        assert s["auc"] is not None and np.isfinite(s["psnr_mean"])
    res2 = evaluate(manifest, ["dippas-aware:max_iter=10"], out, grid=["L=1,2,3"], crop=32,
                    device="cpu", plots=False)
    assert res2.work["cached"] == 4 and res2.work["anonymized"] == 2


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def test_cli_writes_results(synth, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["evaluate", str(synth["pooled"]), "--out", str(out), "--crop", str(CROP),
               "--method", "none", "--method", "denoise", "--no-plots", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["setting"] for s in report["settings"]] == ["none", "denoise"]
    assert report["settings"][0]["auc"] >= 0.99
    assert (out / "results.csv").is_file() and not (out / "plots").exists()


def _bad_datasets(synth, tmp_path) -> dict[str, Path]:
    empty = tmp_path / "empty"
    empty.mkdir()
    one = tmp_path / "one"
    (one / "camA").mkdir(parents=True)
    for f in (synth["prnu"] / "camA").iterdir():
        (one / "camA" / f.name).write_bytes(f.read_bytes())
    nofp = tmp_path / "nofp"
    for dev in DEVICES:
        (nofp / dev).mkdir(parents=True)
        for f in (synth["prnu"] / dev).iterdir():
            if dev != "camC" or f.suffix != ".npy":
                (nofp / dev / f.name).write_bytes(f.read_bytes())
    return {"empty": empty, "one": one, "nofp": nofp}


@pytest.mark.parametrize("case, extra, fragment", [
    ("empty", [], "empty dataset"),
    ("one", [], "at least 2 devices"),
    ("nofp", [], "device camC has no fingerprint"),
    ("ok", ["--method", "sharpen"], "unknown method"),
    ("ok", ["--method", "inpainting:radius=3"], "unknown parameter"),
    ("ok", ["--method", "none", "--grid", "hole=3"], "none of the selected"),
    ("ok", ["--crop", "200"], "smaller than the crop"),
    ("missing", [], "no such file"),
])
def test_cli_bad_input_is_one_line_exit_2(synth, tmp_path, capsys, case, extra, fragment):
    paths = _bad_datasets(synth, tmp_path)
    paths["ok"] = synth["prnu"]
    paths["missing"] = tmp_path / "nowhere"
    out = tmp_path / "out"
    rc = main(["evaluate", str(paths[case]), "--out", str(out), "--no-plots", *extra])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and fragment in lines[0], err
    assert lines[0].startswith("dippas evaluate: error: ")
    assert not out.exists()


def test_cli_bad_crop_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(tmp_path), "--out", str(tmp_path / "o"), "--crop", "tiny"])
    assert exc.value.code == 2
    assert "crop" in capsys.readouterr().err


# --------------------------------------------------------------------------
# Reference agreement on the shared Dresden subset
# --------------------------------------------------------------------------

def test_reference_agreement_on_shared_dresden(dresden_dir, reference_dir, tmp_path):
    ref = json.loads((reference_dir / "attribution_ncc.json").read_text())
    res = evaluate(dresden_dir, ["none"], tmp_path / "out", crop=512, fingerprints=reference_dir,
                   plots=False)
    s = res.summaries[0]
    assert s["auc"] == pytest.approx(0.9586, abs=0.01)
    assert s["matrices"]["devices"] == ref["devices"]
    assert s["matrices"]["images"] == ref["images"]
    np.testing.assert_allclose(np.array(s["matrices"]["ncc"]), np.array(ref["ncc_gray_times_K_vs_W"]),
                               atol=1e-6)


def test_evaluate_audit_columns(synth, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["evaluate", str(synth["prnu"]), "--out", str(out), "--method", "none",
                 "--crop", str(CROP), "--audit", "--no-plots", "--json"]) == 0
    results = json.loads((out / "results.json").read_text())
    audit = results["settings"][0]["audit"]
    assert "ncc" in audit and "block_max_64" in audit
    # the originals of a synthetic set are attributed by the audit's whole-image test
    assert audit["ncc"]["auc"] > 0.9 and audit["ncc"]["match_own"] > audit["ncc"]["match_other"]
