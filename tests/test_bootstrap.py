"""Tests of the bootstrap intervals of the tuning protocol (dippas.evaluation.bootstrap)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from dippas.evaluation.bootstrap import (
    _auc_columns,
    bootstrap_auc,
    bootstrap_summary,
    paired_difference,
    tradeoff_c,
)


def _data(seed=0, n=40, devices=5, shift=1.0):
    rng = np.random.default_rng(seed)
    labels = np.zeros((devices, n), bool)
    labels[rng.integers(0, devices, n), np.arange(n)] = True
    scores = np.round(rng.normal(size=(devices, n)) + shift * labels, 1)  # with ties
    psnr = rng.normal(38, 1, n)
    return labels, scores, psnr


def test_auc_matches_sklearn_with_ties_and_resampled_columns():
    labels, scores, _ = _data()
    cols = np.arange(labels.shape[1])
    assert np.isclose(_auc_columns(labels, scores, cols), roc_auc_score(labels.ravel(), scores.ravel()))
    draw = np.random.default_rng(3).integers(0, labels.shape[1], labels.shape[1])
    ref = roc_auc_score(labels[:, draw].ravel(), scores[:, draw].ravel())
    assert np.isclose(_auc_columns(labels, scores, draw), ref)


def test_summary_intervals_contain_the_estimates_and_c_formula():
    labels, scores, psnr = _data(1)
    s = bootstrap_summary(labels, scores, psnr, n_boot=300)
    assert s["auc_ci"][0] <= s["auc"] <= s["auc_ci"][1]
    assert s["psnr_ci"][0] <= s["psnr"] <= s["psnr_ci"][1]
    assert np.isclose(s["c"], tradeoff_c(psnr.mean(), s["auc"]))
    assert s["c_ci"][1] <= s["psnr_ci"][1] + 1e-9  # C never exceeds the PSNR
    auc, ci = bootstrap_auc(labels, scores, n_boot=300)
    assert np.isclose(auc, s["auc"]) and ci[0] < auc < ci[1]


def test_paired_difference_is_zero_for_the_same_setting_and_resolves_a_real_gap():
    labels, scores, psnr = _data(2, n=64)
    same = paired_difference(labels, scores, psnr, scores, psnr, n_boot=200)
    assert same["dc"] == 0.0 and same["dc_ci"] == [0.0, 0.0] and not same["separated"]
    anon = np.random.default_rng(9).normal(size=scores.shape)  # AUC about 0.5
    gap = paired_difference(labels, anon, psnr, scores, psnr, n_boot=300)
    assert gap["separated"] and gap["dc"] > 0 and gap["dauc"] < 0
