"""The correlation term of the DIPPAS loss (the paper's proposed NCC term)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dippas.correlation import attribution_reference, ncc  # noqa: E402
from dippas.dip import Inversion  # noqa: E402
from dippas.dip.correlation_loss import ncc_penalty  # noqa: E402
from dippas.dip.presets import get_preset  # noqa: E402
from dippas.errors import DippasInputError  # noqa: E402
from dippas.residual import noise_residual  # noqa: E402


def _scene(seed: int = 0, side: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    base = 0.5 + 0.2 * np.sin(6 * x)[..., None] * np.cos(4 * y)[..., None]
    return np.clip(base + 0.02 * rng.standard_normal((side, side, 3)), 0, 1).astype(np.float32)


def _tensor(img: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


def test_penalty_is_the_squared_correlation_the_attribution_test_sees():
    scene = _scene()
    k = np.random.default_rng(1).standard_normal(scene.shape[:2]).astype(np.float32) * 0.05
    pattern = torch.from_numpy(k)[None, None]
    marked = scene * (1 + k[..., None])
    other = np.random.default_rng(2).standard_normal(k.shape).astype(np.float32) * 0.05
    with_k = float(ncc_penalty(_tensor(marked), pattern))
    against_other = float(ncc_penalty(_tensor(marked), torch.from_numpy(other)[None, None]))
    flipped = float(ncc_penalty(_tensor(scene * (1 - k[..., None])), pattern))
    product = ncc(noise_residual(marked * 255, 3.0), attribution_reference(marked * 255, k))
    assert np.sqrt(with_k) == pytest.approx(product, rel=0.3)  # the stand-in tracks the real test
    assert against_other < 0.01 * with_k  # an unrelated pattern gives chance level
    assert flipped == pytest.approx(with_k, rel=0.2)  # either sign is penalised


def test_penalty_gradient_lowers_the_correlation():
    scene = _scene()
    k = np.random.default_rng(1).standard_normal(scene.shape[:2]).astype(np.float32) * 0.05
    pattern = torch.from_numpy(k)[None, None]
    out = _tensor(scene * (1 + k[..., None])).requires_grad_(True)
    before = ncc_penalty(out, pattern)
    before.backward()
    with torch.no_grad():
        after = ncc_penalty(out - 1e-2 * out.grad / out.grad.abs().max(), pattern)
    assert torch.isfinite(out.grad).all()
    assert float(after) < float(before.detach())


def test_ncc_weight_is_validated_and_changes_the_inversion():
    with pytest.raises(DippasInputError, match="ncc_weight must be >= 0"):
        get_preset("fast", ncc_weight=-1.0)
    with pytest.raises(DippasInputError, match="ncc_weight must be >= 0"):
        get_preset("fast", ncc_weight=float("nan"))
    img = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    k = np.random.default_rng(1).standard_normal((32, 32)).astype(np.float32)
    tiny = get_preset("fast", max_iter=2, warm_start=False).with_overrides(
        z_channels=4, widths=(4, 8), skip_channels=(4,))
    plain = [ev.loss for ev in Inversion(img, k, tiny, device="cpu")]
    weighted = [ev.loss for ev in Inversion(img, k, tiny.with_overrides(ncc_weight=10.0), device="cpu")]
    assert weighted[0] > plain[0]  # the same first output, plus the term
