"""``dippas audit``: thresholds from null distributions, verdicts, JSON, bad input, camera photos."""

from __future__ import annotations

import json
import math
import os
import shutil

import numpy as np
import pytest
from scipy import ndimage as ndi

from dippas.audit import (
    AuditOptions,
    TestResult,
    audit,
    camera_fingerprint,
)
from dippas.audit.image_tests import block_max_test, ncc_test, pce_test
from dippas.audit.nulls import (
    auc_threshold,
    max_z_threshold,
    ncc_null_sd,
    pce_search_threshold,
    pce_threshold,
    two_sided_z,
)
from dippas.cli import main
from dippas.correlation import ncc, pce
from dippas.errors import DippasInputError

DEVICE = "Nikon_D70_1"


# ----------------------------------------------------------------------------- thresholds

def test_ncc_null_scale_is_one_over_sqrt_n(rng):
    n = 128
    a, b = rng.standard_normal((2, n, n))
    assert ncc_null_sd(a, b) == pytest.approx(1 / n, rel=0.05)
    scores = [ncc(*rng.standard_normal((2, 48, 48))) for _ in range(400)]
    assert np.std(scores) * 48 == pytest.approx(1.0, abs=0.12)


def test_ncc_null_follows_correlated_signals(rng):
    """Smoothed (correlated) noise: the HAC scale grows with the correlation and tracks the spread.

    With lag 2 and Bartlett weights it underestimates this strong a correlation by about 15 %
    (docs/audit.md); 1/sqrt(N) would underestimate it by half.
    """
    def pair():
        return [ndi.correlate1d(ndi.correlate1d(x, [1, 2, 1], 0, mode="wrap"), [1, 2, 1], 1,
                                mode="wrap") for x in rng.standard_normal((2, 64, 64))]

    sds = [ncc_null_sd(*pair()) for _ in range(20)]
    spread = np.std([ncc(*pair()) for _ in range(400)])
    assert spread * 64 > 1.6  # white noise would give 1
    assert np.mean(sds) * 64 > 1.4
    assert np.mean(sds) == pytest.approx(spread, rel=0.25)


def test_block_maximum_null(rng):
    assert max_z_threshold(1, 1e-3) == pytest.approx(two_sided_z(1e-3))
    assert max_z_threshold(64, 1e-3) > max_z_threshold(16, 1e-3) > two_sided_z(1e-3)
    z = np.abs(rng.standard_normal((20000, 64))).max(axis=1)
    assert np.mean(z >= max_z_threshold(64, 0.05)) == pytest.approx(0.05, abs=0.01)
    # on white noise the block test matches about as often as its pfa
    hits = [block_max_test("b", *rng.standard_normal((2, 128, 128)), 32, 0.1).matched
            for _ in range(150)]
    assert 0.02 <= np.mean(hits) <= 0.22


def test_pce_thresholds(rng):
    assert pce_threshold(1e-3) == pytest.approx(10.83, abs=0.01)  # chi-square, 1 dof
    assert pce_search_threshold(512 * 512, 1e-3) == pytest.approx(33.4, abs=0.2)
    values = [pce(*rng.standard_normal((2, 48, 48)))[0] for _ in range(400)]
    assert np.mean(np.abs(values) >= pce_threshold(0.1)) == pytest.approx(0.1, abs=0.04)
    best = [pce(*rng.standard_normal((2, 32, 32)), search=True)[0] for _ in range(300)]
    assert np.mean(np.array(best) >= pce_search_threshold(32 * 32, 0.2)) == pytest.approx(0.2, abs=0.07)


def test_auc_threshold():
    assert auc_threshold(1000, 1000, 1e-3) == pytest.approx(0.5 + 3.09 * math.sqrt(2001 / 12e6), rel=1e-3)
    assert auc_threshold(1, 10, 1e-3) > 1.0  # a tiny set can never reach 1e-3


def test_negative_correlation_is_a_match(rng):
    a = rng.standard_normal((128, 128))
    b = -0.1 * a + rng.standard_normal((128, 128))
    t = ncc_test("ncc", a, b, 1e-3)
    assert t.score < -t.threshold and t.verdict == "match"
    p = pce_test("pce", a, b, 1e-3, search=False)
    assert p.score < 0 and p.verdict == "match"
    assert ncc_test("ncc", a, rng.standard_normal((128, 128)), 1e-3).verdict == "no match"
    assert TestResult("one", -5.0, 1.0, two_sided=False).verdict == "no match"
    assert TestResult("nan", float("nan"), 1.0).verdict == "no match"


# ----------------------------------------------------------------------------- shared data

@pytest.fixture(scope="module")
def flatfield_k(dresden_dir):
    import dippas

    return dippas.estimate_fingerprint(sorted((dresden_dir / "flatfield" / DEVICE).glob("*.jpg")))


@pytest.fixture(scope="module")
def k_file(flatfield_k, tmp_path_factory):
    path = tmp_path_factory.mktemp("k") / "K.npy"
    np.save(path, flatfield_k)
    return path


@pytest.fixture(scope="module")
def originals(dresden_dir):
    return sorted((dresden_dir / "natural").glob(f"{DEVICE}_*.jpg"))[:2]


@pytest.fixture(scope="module")
def references(dresden_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("refs")
    for f in sorted((dresden_dir / "natural").glob("*.jpg")):
        if not f.name.startswith(DEVICE + "_"):
            shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def report_json(originals, k_file, references, tmp_path_factory):
    out = tmp_path_factory.mktemp("json")
    fig = out / "audit.png"
    cwd = os.getcwd()
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["audit", *map(str, originals), "--fingerprint", str(k_file),
                   "--reference", str(references), "--json", "--figure", str(fig)])
    assert rc == 0 and os.getcwd() == cwd
    return json.loads(buf.getvalue()), fig


def test_json_shape(report_json, originals):
    data, _ = report_json
    assert [im["file"] for im in data["images"]] == [str(p) for p in originals]
    for entry in data["images"]:
        assert len(entry["tests"]) >= 6
    assert len(data["set"]["tests"]) >= 2
    names = {t["name"] for t in data["set"]["tests"]}
    assert {"fingerprint_ncc", "half_split_ncc", "linking_ncc", "linking_auc"} <= names
    for t in [t for im in data["images"] for t in im["tests"]] + data["set"]["tests"]:
        assert set(t) >= {"name", "score", "threshold", "verdict"}
        assert t["verdict"] in ("match", "no match")
        assert isinstance(t["threshold"], float) and t["threshold"] > 0


def test_originals_match_their_camera(report_json):
    data, _ = report_json
    for entry in data["images"]:
        assert any(t["verdict"] == "match" for t in entry["tests"]), entry["file"]


def test_figure_is_a_metadata_free_png(report_json):
    from PIL import Image

    _, fig = report_json
    with Image.open(fig) as im:
        assert im.format == "PNG" and im.size[0] > 500
        assert not im.info.get("dpi") and not im.getexif() and "Software" not in im.info
    chunks = fig.read_bytes()
    assert b"tEXt" not in chunks and b"pHYs" not in chunks and b"eXIf" not in chunks


def test_wrong_camera_rarely_matches(originals, dresden_dir):
    """The same photos against another camera's K: no whole-image test says match."""
    import dippas

    k_other = dippas.estimate_fingerprint(sorted((dresden_dir / "flatfield" / "Nikon_D200_0")
                                                 .glob("*.jpg")), crop=512)
    rep = audit(originals, fingerprint=k_other, crop=512, set_tests=False)
    for res in rep.images:
        assert not res.by_name()["ncc"].matched and not res.by_name()["pce"].matched


def test_inpainted_edges_keep_the_prnu(originals, flatfield_k):
    """Default inpainting copies the denoised original into edges: the edge test is stronger there."""
    from dippas.inpainting import inpaint_anonymize
    from dippas.io import load_image

    img = load_image(originals[0])[256:768, 256:768]
    k = flatfield_k[256:768, 256:768]
    out = inpaint_anonymize(img)
    rep = audit([out], fingerprint=k, originals=[img])
    tests = rep.images[0].by_name()
    assert abs(tests["ncc_edges_original"].score) > abs(tests["ncc"].score)
    assert rep.images[0].psnr > 30


# ----------------------------------------------------------------------------- bad input

def _bad(args, tmp_path, capsys, fragment):
    before = sorted(tmp_path.rglob("*"))
    rc = main(["audit", *map(str, args)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and fragment in err[0], err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_bad_input_cases(tmp_path, capsys, originals, k_file, dresden_dir):
    fig = tmp_path / "f.png"
    full = dresden_dir / "full" / "Nikon_D70_1_20543.JPG"
    _bad([originals[0], full, "-k", k_file, "--figure", fig], tmp_path, capsys, "mixed sizes")
    _bad([originals[0], "-k", k_file, "--reference", dresden_dir / "natural", "--figure", fig],
         tmp_path, capsys, "two or more images")
    _bad([originals[0], "--figure", fig], tmp_path, capsys, "--fingerprint K")
    few = tmp_path / "few"
    few.mkdir()
    for f in originals:
        shutil.copy(f, few / f.name)
    _bad([originals[0], "--camera-photos", few, "--figure", fig], tmp_path, capsys,
         "usable photo")
    _bad([originals[0], "-k", k_file, "--figure", tmp_path / "f.jpg"], tmp_path, capsys,
         "unsupported figure extension")
    _bad([originals[0], "-k", k_file, "--original", *originals], tmp_path, capsys,
         "original(s) for 1 image")
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"keep me")
    _bad([originals[0], "-k", k_file, "--figure", existing], tmp_path, capsys, "already exists")
    assert existing.read_bytes() == b"keep me"


def test_set_tests_asked_of_one_image(originals, flatfield_k):
    with pytest.raises(DippasInputError, match="two or more"):
        audit(originals[:1], fingerprint=flatfield_k, set_tests=True)


def test_options_are_checked():
    with pytest.raises(DippasInputError, match="between 0 and 1"):
        AuditOptions(pfa=2.0)


# ----------------------------------------------------------------------------- camera photos

def test_camera_photos_estimate_and_cache(dresden_dir, tmp_path, flatfield_k):
    photos = tmp_path / "photos"
    shutil.copytree(dresden_dir / "flatfield" / DEVICE, photos)
    (photos / "notes.jpg").write_text("not a photo")  # skipped, not fatal
    cache = tmp_path / "cache"
    seen = []
    cam = camera_fingerprint(photos, cache_dir=cache, progress=lambda d, t: seen.append(d))
    assert cam.photos == 10 and cam.skipped == 1 and not cam.cached and seen[-1] == 10
    assert cam.half_ncc > cam.half_ncc_threshold and cam.reliable and 0 < cam.accuracy <= 1
    assert np.allclose(cam.fingerprint, flatfield_k, atol=1e-6)
    again = camera_fingerprint(photos, cache_dir=cache, progress=lambda d, t: seen.append(-1))
    assert again.cached and -1 not in seen
    assert np.array_equal(again.fingerprint, cam.fingerprint)
    assert again.summary() == {**cam.summary(), "cached": True}
    os.remove(next(photos.glob("*.jpg")))  # the folder changed: a fresh estimate
    third = camera_fingerprint(photos, cache_dir=cache)
    assert not third.cached and third.photos == 9
    assert len(list(cache.iterdir())) == 2


def test_camera_photos_mode_in_audit(dresden_dir, tmp_path, originals):
    photos = tmp_path / "photos"
    shutil.copytree(dresden_dir / "flatfield" / DEVICE, photos)
    rep = audit(originals[:1], camera_photos=photos, cache_dir=tmp_path / "cache")
    assert rep.fingerprint["source"] == "camera photos" and rep.fingerprint["photos"] == 10
    assert any(t.matched for t in rep.images[0].tests)
    assert rep.set is None


# ----------------------------------------------------------------------------- evaluate columns

def test_evaluation_scores_carry_the_audit_tests(dresden_dir):
    import dippas
    from dippas.evaluation.scoring import score_image, summarize_setting
    from dippas.fingerprint import centre_crop
    from dippas.io import load_image

    devices = [DEVICE, "Nikon_D200_0"]
    ks = {d: dippas.estimate_fingerprint(sorted((dresden_dir / "flatfield" / d).glob("*.jpg")),
                                         crop=256) for d in devices}
    records = []
    for f in sorted((dresden_dir / "natural").glob(f"{DEVICE}_*.jpg"))[:2]:
        img = centre_crop(load_image(f), (256, 256))
        rec = score_image(img, img, ks, None, audit=True)
        assert set(rec["audit"]["ncc"]) == set(devices)
        assert rec["audit"]["ncc"][DEVICE] == pytest.approx(rec["ncc"][DEVICE], rel=1e-5)
        assert len(rec["audit"]) >= 6
        records.append({**rec, "device": DEVICE, "image_id": f.stem})
    summary = summarize_setting(records, devices)
    ncc_row = summary["audit"]["ncc"]
    assert ncc_row["auc"] == pytest.approx(summary["auc"])
    assert 0.0 <= ncc_row["match_own"] <= 1.0 and 0.0 <= ncc_row["match_other"] <= 1.0
    assert "audit" not in summarize_setting([{k: v for k, v in r.items() if k != "audit"}
                                             for r in records], devices)
