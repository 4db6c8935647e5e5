"""Choice of the torch device and of the optional speed-ups (bf16, channels-last)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from ..errors import DippasInputError

#: Accepted device names (``'cuda:1'`` style indices are accepted too).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def check_device_name(name: str) -> str:
    """``name`` if it is a device name (``'auto'``, ``'cpu'``, ``'cuda'``, ``'cuda:N'``, ``'mps'``).

    Checks the spelling only, without importing torch; :func:`resolve_device`
    checks that the machine has it.

    Raises
    ------
    DippasInputError
    """
    text = str(name).strip().lower()
    kind, _, index = text.partition(":")
    if kind not in DEVICE_CHOICES or (index and (kind != "cuda" or not index.isdigit())):
        raise DippasInputError(f"unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)}")
    return text


@functools.lru_cache(maxsize=1)
def available_devices() -> tuple[str, ...]:
    """Devices this machine really has for the inversion, fastest first (imports torch).

    Returns
    -------
    tuple of str
        ``'cuda'`` (and ``'cuda:N'`` for each further GPU) when torch sees a
        CUDA GPU, ``'mps'`` when Apple MPS is available, and always ``'cpu'``.
    """
    import torch

    out: list[str] = []
    if torch.cuda.is_available():
        out.append("cuda")
        out.extend(f"cuda:{i}" for i in range(1, torch.cuda.device_count()))
    if _mps_available(torch):
        out.append("mps")
    out.append("cpu")
    return tuple(out)


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str = "auto"):
    """The torch device for ``name``.

    Parameters
    ----------
    name : str
        ``'auto'`` (CUDA, then Apple MPS, then CPU), ``'cpu'``, ``'cuda'``,
        ``'cuda:N'`` or ``'mps'``.

    Returns
    -------
    torch.device

    Raises
    ------
    DippasInputError
        On an unknown name or a device this machine does not have.
    """
    import torch

    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available(torch):
            return torch.device("mps")
        return torch.device("cpu")
    check_device_name(text)
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise DippasInputError(f"unknown device {name!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DippasInputError("device 'cuda' requested but no CUDA GPU is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DippasInputError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not _mps_available(torch):
        raise DippasInputError("device 'mps' requested but Apple MPS is not available")
    return dev


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Turn on torch's deterministic algorithms for a block, then restore.

    Only used on the CPU by default: on CUDA it would also need the
    ``CUBLAS_WORKSPACE_CONFIG`` environment variable set before start-up.

    Torch's deterministic mode also fills every new tensor with NaN
    (``torch.utils.deterministic.fill_uninitialized_memory``), a guard
    against kernels that read memory they never wrote. No kernel of the
    inversion does, so the fill is turned off inside the block: it cost a
    fifth of every CPU iteration (``aten::fill_`` under ``aten::empty`` in
    ``torch.profiler``) and changes no result (tested).
    """
    import torch
    import torch.utils.deterministic as det

    if not enabled:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    before_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    before_fill = det.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    det.fill_uninitialized_memory = False
    try:
        yield
    finally:
        det.fill_uninitialized_memory = before_fill
        torch.use_deterministic_algorithms(before, warn_only=before_warn)


def autocast(device, bf16: bool):
    """An autocast context in bfloat16 when ``bf16``, else a no-op context.

    The same code path runs on every device; bfloat16 autocast is supported
    by torch on CUDA and CPU (on MPS it depends on the torch version).
    """
    import torch

    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
