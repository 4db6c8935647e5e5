"""Agreement with the golden outputs of the reference Python port (prnu-python)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dippas
from dippas.correlation import attribution_reference
from dippas.fingerprint import centre_crop
from dippas.io import list_images, load_image
from dippas.metrics import auc, device_labels

CROPPED = ["Nikon_D70_1_20543", "Nikon_D70s_0_22115"]
DEVICES = ["Nikon_D200_0", "Nikon_D200_1", "Nikon_D70_0", "Nikon_D70_1", "Nikon_D70s_0", "Nikon_D70s_1"]


def _corr(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("name", CROPPED)
def test_crop_matches_reference_input(name, reference_dir, dresden_dir):
    img = load_image(dresden_dir / "natural" / f"{name}.jpg")
    np.testing.assert_array_equal(centre_crop(img, (512, 512)),
                                  np.load(reference_dir / f"{name}_crop512_uint8.npy"))


@pytest.mark.parametrize("name", CROPPED)
def test_colour_residual_matches_golden(name, reference_dir):
    img = np.load(reference_dir / f"{name}_crop512_uint8.npy")
    golden = np.load(reference_dir / f"{name}_noise_extract_rgb_sigma3.npy")
    ours = dippas.noise_residual_rgb(img, sigma=3.0)
    assert ours.dtype == np.float32 and ours.shape == golden.shape
    np.testing.assert_allclose(ours, golden, atol=5e-5)
    assert _corr(ours, golden) > 0.99999


@pytest.mark.parametrize("name", CROPPED)
def test_residual_matches_golden(name, reference_dir):
    img = np.load(reference_dir / f"{name}_crop512_uint8.npy")
    golden = np.load(reference_dir / f"{name}_residual_sigma3.npy")
    ours = dippas.noise_residual(img)
    assert ours.dtype == np.float32 and ours.shape == (512, 512)
    np.testing.assert_allclose(ours, golden, atol=5e-5)
    assert _corr(ours, golden) >= 0.999


@pytest.mark.parametrize("device", DEVICES)
def test_fingerprint_matches_golden(device, reference_dir, dresden_dir):
    files = list_images(dresden_dir / "flatfield" / device)
    k = dippas.estimate_fingerprint(files, sigma=3.0, crop=512)
    golden = np.load(reference_dir / f"fingerprint_{device}_crop512_sigma3.npy")
    assert k.shape == golden.shape and k.dtype == np.float32
    assert _corr(k, golden) >= 0.999
    np.testing.assert_allclose(k, golden, atol=1e-4)


def test_attribution_matrix_and_auc(reference_dir, dresden_dir):
    ref = json.loads((reference_dir / "attribution_ncc.json").read_text())
    ks = [np.load(reference_dir / f"fingerprint_{d}_crop512_sigma3.npy") for d in ref["devices"]]
    m = np.zeros((len(ks), len(ref["images"])))
    for j, name in enumerate(ref["images"]):
        img = centre_crop(load_image(dresden_dir / "natural" / f"{name}.jpg"), (512, 512))
        w = dippas.noise_residual(img)
        for i, k in enumerate(ks):
            m[i, j] = dippas.ncc(w, attribution_reference(img, k))
    np.testing.assert_allclose(m, np.array(ref["ncc_gray_times_K_vs_W"]), atol=1e-6)
    labels = device_labels(ref["devices"], [n.rsplit("_", 1)[0] for n in ref["images"]])
    assert auc(labels, m) == pytest.approx(0.9586, abs=0.01)
