"""DIPPAS settings as anonymizers for ``benchmarks/tune_protocol.py --callable``.

Each function takes the uint8 quadrant crop and the scorer's fingerprint K
(the paper's PRNU-aware setting) and returns the anonymized uint8 image,
through :class:`dippas.jobs.DippasJob`, on the CPU.

Every inversion is capped at ``PROTOCOL_MAX_ITER`` iterations (default
3000, the cap of the issue's own 128² DIPPAS table; a crop that has not met
the stop rule by then is assembled from what it has).

The run folders of the inversions are kept under ``DIPPAS_PROTOCOL_RUNS``
(default ``/tmp/dippas-protocol-runs``), one per crop and inversion, so the
``*_reassembled`` settings apply another assembly (rule, τ, B, L) to the
*same* inversions in milliseconds: a paired comparison of assemblies, as
``dippas evaluate`` does for its grids. The inversion of those runs stopped
under the default job's stop rule.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/tune_protocol.py --out /tmp/tune --size 128 --settings '' \\
        --callable dippas=protocol_dippas:default \\
        --callable dippas-min-abs=protocol_dippas:min_abs_reassembled
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def _runs_root() -> Path:
    return Path(os.environ.get("DIPPAS_PROTOCOL_RUNS", "/tmp/dippas-protocol-runs"))


def _max_iter() -> int:
    return int(os.environ.get("PROTOCOL_MAX_ITER", "3000"))


def _run_dir(image: np.ndarray, job) -> Path:
    """The kept run folder of (crop, inversion job) (a benchmark cache, never an output)."""
    # The cap is left out of the key (a run continues when it is raised); so are the
    # assembly and the device, which do not change the inversion.
    inversion = {k: v for k, v in job.to_dict().items()
                 if k not in ("block_size", "blocks", "psnr_threshold", "rule", "zero_blend",
                              *job.EXECUTION)}
    inversion["max_iter"] = None
    # fields added later, at the value runs had before them, stay out: old runs are found again
    # (the warm start by its resolved value: the preset's default changed from off to on)
    if job.preset_parameters().warm_start:
        inversion["warm_start"] = True
    else:
        inversion.pop("warm_start", None)
    if job.for_image(image).overlap == 0:  # a crop of one tile: nothing overlaps
        inversion.pop("tile_overlap", None)
    key = hashlib.sha1(np.ascontiguousarray(image).tobytes() + repr(sorted(inversion.items())).encode())
    return _runs_root() / key.hexdigest()[:20]


def _run(image: np.ndarray, fingerprint: np.ndarray | None, **job) -> np.ndarray:
    from dippas.jobs import DippasJob

    j = DippasJob(device="cpu", max_iter=_max_iter(), **job)
    run_dir = _run_dir(image, j)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    return j.run(image, fingerprint, run_dir)


def _reassembled(image: np.ndarray, fingerprint: np.ndarray | None, **assembly) -> np.ndarray:
    """The default job's inversion of this crop, assembled with other parameters."""
    from dippas.jobs import DippasJob

    default = DippasJob(device="cpu", max_iter=_max_iter())
    run_dir = _run_dir(image, default)
    if not (run_dir / "params.json").exists():
        _run(image, fingerprint)
    return default.with_values(**assembly).assemble(run_dir).image


def default(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """PRNU-aware DIPPAS with every default of ``dippas anonymize``."""
    return _run(image, fingerprint)


def min_abs_reassembled(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """The default inversion, assembled with the ``min-abs`` rule."""
    return _reassembled(image, fingerprint, rule="min-abs")


def zero_blend_reassembled(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """The default inversion, assembled with the blend that takes negative block NCCs to zero."""
    return _reassembled(image, fingerprint, zero_blend=True)


def min_abs_zero_blend_reassembled(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """The default inversion, the ``min-abs`` rule, then the zero-NCC blend."""
    return _reassembled(image, fingerprint, rule="min-abs", zero_blend=True)


def tau_none_reassembled(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """The default inversion, every stored snapshot a candidate (τ none)."""
    return _reassembled(image, fingerprint, psnr_threshold=None)


def whole_l1_reassembled(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """The default inversion, the paper's no-post-processing case (B whole, L 1: min |NCC|)."""
    return _reassembled(image, fingerprint, block_size="whole", blocks=1)


def min_abs(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """The ``min-abs`` rule for the assembly and for the stop rule (its own inversion)."""
    return _run(image, fingerprint, rule="min-abs")


def blind(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """PRNU-blind DIPPAS (the photo's own residual injected; K unused)."""
    return _run(image, None, mode="blind")


def noise_001(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """The default job with the ``fast`` preset's input noise at 0.01 instead of 0.03."""
    from dippas.dip.presets import get_preset, register_preset

    register_preset(get_preset("fast", z_noise_std=0.01), name="fast-noise-0.01")
    return _run(image, fingerprint, preset="fast-noise-0.01")


def warm_start(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """The default job started from the packaged warm-start weights (``--warm-start``; the
    default since it was measured here)."""
    return _run(image, fingerprint, warm_start=True)


def cold_start(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """The default job from a seeded random initialisation (``--no-warm-start``; the default
    before the warm start)."""
    return _run(image, fingerprint, warm_start=False)


def imported(image: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    """The output another machine made of this crop (``protocol_mosaic.py run``), read from
    ``$DIPPAS_IMPORTED/<crop digest>.png``; the protocol's seconds are then a PNG read."""
    from dippas.io import load_image
    from protocol_mosaic import crop_digest

    folder = os.environ.get("DIPPAS_IMPORTED")
    if not folder:
        raise SystemExit("protocol_dippas:imported reads DIPPAS_IMPORTED (a protocol_mosaic.py output folder)")
    path = Path(folder) / f"{crop_digest(image)}.png"
    if not path.is_file():
        raise SystemExit(f"no imported output for this crop in {folder}")
    return load_image(path)
