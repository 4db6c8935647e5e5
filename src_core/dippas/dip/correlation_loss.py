"""A correlation term for the DIPPAS loss: the paper's "NCC term inside the loss".

The paper's conclusions propose to add the correlation with the fingerprint
to the loss, so that the network is pushed away from reproducing the PRNU
while it fits the photo. The attribution test correlates the photo's noise
residual with ``gray(I) * K`` (:func:`dippas.correlation.attribution_reference`).
Its residual is a wavelet denoiser's, which is not differentiable here, so
this term uses a cheap differentiable stand-in: the gray output minus its
3 x 3 mean, a high-pass that keeps the pixel-level noise the residual keeps.
The term is the squared NCC of that high-pass with ``gray(output) * P``,
so it pulls the correlation towards zero from either side.

Torch is imported by the caller (:mod:`dippas.dip.inversion`).
"""

from __future__ import annotations

from ..residual import GRAY_WEIGHTS


def high_pass(gray):
    """``gray`` minus its 3 x 3 mean (reflect padding); ``(1, 1, h, w)`` tensors."""
    import torch.nn.functional as F

    local_mean = F.avg_pool2d(F.pad(gray, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    return gray - local_mean


def ncc_penalty(out, pattern):
    """Squared NCC of the output's high-pass with ``gray(out) * pattern``.

    Parameters
    ----------
    out : Tensor, (1, 3, h, w)
        The network output in [0, 1].
    pattern : Tensor, (1, 1, h, w)
        The injected pattern P (K, or the photo's residual in blind mode).

    Returns
    -------
    Tensor
        A scalar in [0, 1].
    """
    r, g, b = (float(w) for w in GRAY_WEIGHTS)  # Python floats: no NumPy scalar meets a tensor
    gray = r * out[:, 0:1] + g * out[:, 1:2] + b * out[:, 2:3]
    x = high_pass(gray)
    y = gray * pattern
    x = x - x.mean()
    y = y - y.mean()
    num = (x * y).sum()
    den = (x.square().sum() * y.square().sum()).clamp_min(1e-30).sqrt()
    return (num / den).square()
