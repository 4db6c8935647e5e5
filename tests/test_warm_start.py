"""The packaged warm start of the DIPPAS network (issue 13, item 4)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dippas.dip import Inversion, get_preset  # noqa: E402
from dippas.dip.inversion import build_network  # noqa: E402
from dippas.dip.warm_start import (  # noqa: E402
    FORMAT, load_warm_start, network_signature, warm_start_path)
from dippas.errors import DippasInputError  # noqa: E402

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def photo() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return (rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
            rng.normal(size=(32, 32)).astype(np.float32))


def test_a_network_without_a_warm_start_is_refused_in_one_line():
    tiny = get_preset("fast").with_overrides(z_channels=4, widths=(4, 8), skip_channels=(4,))
    assert not tiny.warm_start  # fast's warm start is not inherited by another network
    assert get_preset("fast").with_overrides(lr=1e-3).warm_start  # the same network keeps it
    with pytest.raises(DippasInputError, match=r"no warm start ships .* it exists for: fast") as err:
        tiny.with_overrides(warm_start=True)
    assert "\n" not in str(err.value)


def test_the_packaged_warm_start_fits_the_fast_network_and_loads_weights_only():
    fast = get_preset("fast")
    assert fast.warm_start  # the default (C held on the 64-crop protocol, docs/evaluation.md)
    path = warm_start_path(fast)
    assert path.is_file() and path.stat().st_size < 5_000_000
    data = torch.load(path, map_location="cpu", weights_only=True)
    assert data["format"] == FORMAT and data["signature"] == network_signature(fast)
    assert "astronaut" not in data["training_images"]  # the demo's photo is not trained on
    fresh = build_network(fast).state_dict()
    loaded = load_warm_start(fast)
    assert loaded.keys() == fresh.keys()
    assert all(loaded[k].shape == fresh[k].shape for k in fresh)
    assert any(not torch.equal(loaded[k], fresh[k]) for k in fresh if fresh[k].is_floating_point())


def test_an_inversion_starts_from_the_warm_start_and_its_seed_still_draws_z(photo):
    image, k = photo
    preset = get_preset("fast", max_iter=2, warm_start=True)
    a = Inversion(image, k, preset, device="cpu")
    b = Inversion(image, k, preset.with_overrides(seed=7), device="cpu")
    weights = load_warm_start(preset)
    for name, value in a.network.state_dict().items():
        assert torch.equal(value, weights[name]) and torch.equal(b.network.state_dict()[name], value)
    assert not torch.equal(a.z, b.z)
    list(a)
    assert a.iteration == 2


def test_a_checkpoint_keeps_its_initialisation(photo):
    image, k = photo
    plain = Inversion(image, k, get_preset("fast", max_iter=1, warm_start=False), device="cpu")
    plain.step()
    state = plain.state_dict()
    warm = Inversion(image, k, get_preset("fast", max_iter=1, warm_start=True), device="cpu")
    with pytest.raises(DippasInputError, match="warm_start=False"):
        warm.load_state_dict(state)
    # a checkpoint written before the field existed is a random-initialisation one
    del state["preset"]["warm_start"]
    Inversion(image, k, get_preset("fast", max_iter=1, warm_start=False),
              device="cpu").load_state_dict(state)
    with pytest.raises(DippasInputError, match="warm_start"):
        warm.load_state_dict(state)


def test_the_script_writes_a_file_the_loader_reads(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import make_warm_start

    out = tmp_path / "w.pt"
    assert make_warm_start.main(["--tasks", "2", "--inner", "2", "--side", "32", "--out", str(out)]) == 0
    data = torch.load(out, map_location="cpu", weights_only=True)
    assert data["signature"] == network_signature(get_preset("fast"))
    assert data["settings"]["tasks"] == 2
    assert data["state_dict"].keys() == build_network(get_preset("fast")).state_dict().keys()
    sys.modules.pop("make_warm_start", None)
