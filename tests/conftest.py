"""Shared fixtures: paths to ../shared/data (beside the project root) and small images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
REFERENCE = SHARED_DATA / "reference"
DRESDEN = SHARED_DATA / "dresden"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}; it must sit beside the project root")
    return SHARED_DATA


@pytest.fixture(scope="session")
def reference_dir(shared_data) -> Path:
    return shared_data / "reference"


@pytest.fixture(scope="session")
def dresden_dir(shared_data) -> Path:
    return shared_data / "dresden"


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: tiny networks run fastest (and most predictably on a
    shared machine) on one thread, and Dask workers of one thread round alike."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def small_rgb(rng) -> np.ndarray:
    """A 64x64 RGB uint8 image with structure and noise."""
    y, x = np.mgrid[0:64, 0:64]
    base = 128 + 60 * np.sin(x / 7.0)[..., None] * np.cos(y / 5.0)[..., None]
    img = base + rng.normal(0, 4, (64, 64, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def unwritable_dir(tmp_path):
    """A folder no file can be created in, for root too (read-only pseudo file system)."""
    import os

    if hasattr(os, "geteuid") and os.geteuid() == 0:
        candidates = [p for p in (Path("/sys"), Path("/proc")) if p.is_dir()]
        if not candidates:
            pytest.skip("running as root without /sys or /proc: no unwritable folder")
        yield candidates[0]
        return
    ro = tmp_path / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    yield ro
    ro.chmod(0o755)


@pytest.fixture(autouse=True)
def private_state(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own private state folder (batch records, plugin runs), never ~."""
    from dippas.userdirs import STATE_ENV

    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv(STATE_ENV, str(state))
    return state
