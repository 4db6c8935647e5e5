"""Which torch devices this machine really has (torch imported on first call only)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def available_devices() -> tuple[str, ...]:
    """Devices usable for the inversion, fastest first.

    Returns
    -------
    tuple of str
        ``'cuda'`` (one entry per GPU beyond the first, as ``'cuda:N'``)
        when torch sees a CUDA GPU, ``'mps'`` when Apple MPS is available,
        and always ``'cpu'``.
    """
    import torch

    out: list[str] = []
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        out.append("cuda")
        out.extend(f"cuda:{i}" for i in range(1, n))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    out.append("cpu")
    return tuple(out)
