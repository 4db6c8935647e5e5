"""PSNR, SSIM, ROC/AUC/EER/TPR and the trade-off C."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dippas import metrics
from dippas.errors import DippasInputError


def test_psnr_known_value():
    a = np.full((10, 10), 100, np.uint8)
    b = a.copy()
    b[0, 0] = 110  # MSE = 100 / 100 = 1
    assert metrics.psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2), rel=1e-9)
    assert metrics.psnr(a, a) == float("inf")


def test_ssim_identity_and_degradation(small_rgb, rng):
    assert metrics.ssim(small_rgb, small_rgb) == pytest.approx(1.0)
    noisy = np.clip(small_rgb + rng.normal(0, 20, small_rgb.shape), 0, 255).astype(np.uint8)
    assert metrics.ssim(small_rgb, noisy) < 0.9


def test_auc_matches_sklearn_and_eer_tpr(rng):
    y = rng.random(200) < 0.3
    s = y * 1.0 + rng.normal(0, 1, 200)
    assert metrics.auc(y, s) == pytest.approx(roc_auc_score(y, s))
    e = metrics.eer(y, s)
    assert 0.0 < e < 0.5
    assert 0.0 <= metrics.tpr_at_fpr(y, s, 0.05) <= metrics.tpr_at_fpr(y, s, 0.5) <= 1.0


def test_perfect_and_random_separation():
    y = np.array([1, 1, 0, 0, 0], bool)
    assert metrics.auc(y, [5, 4, 1, 2, 3]) == 1.0
    assert metrics.eer(y, [5, 4, 1, 2, 3]) == pytest.approx(0.0)
    assert metrics.tpr_at_fpr(y, [5, 4, 1, 2, 3], 0.0) == 1.0


def test_tradeoff():
    assert metrics.tradeoff(40.0, 0.5) == 40.0
    assert metrics.tradeoff(40.0, 1.0) == 0.0
    assert metrics.tradeoff(40.0, 0.0) == 0.0
    assert metrics.tradeoff(38.0, 0.55) == pytest.approx(38 * 0.9)


def test_roc_needs_both_classes():
    with pytest.raises(DippasInputError):
        metrics.auc([1, 1], [0.1, 0.2])


def test_device_labels():
    lab = metrics.device_labels(["a", "b"], ["a", "a", "b"])
    np.testing.assert_array_equal(lab, [[1, 1, 0], [0, 0, 1]])
