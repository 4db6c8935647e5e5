"""One-call anonymization: DIPPAS (inversion then assembly) and inpainting.

These functions tie the engines together for the CLI (``dippas anonymize``,
``dippas demo``), the evaluation harness and batch jobs:

- :func:`invert_to_run` runs, resumes, or skips (when complete) one DIPPAS
  inversion into a run folder;
- :func:`assemble_run` turns a run folder into the anonymized image;
- :func:`anonymize_dippas` does both, in a temporary run folder unless one
  is given;
- :func:`anonymize_inpainting` is the blind inpainting method.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import DippasInputError
from .progress import CancelToken
from .run_assembly import DEFAULT_BLOCKS, RunAssembler, assemble_run
from .validation import check_fingerprint, check_image

#: Default DIPPAS assembly: block size, blocks averaged, PSNR threshold (None: every stored snapshot).
DEFAULT_BLOCK_SIZE = 64
DEFAULT_PSNR_THRESHOLD: float | None = None

__all__ = ["anonymize_dippas", "anonymize_inpainting", "assemble_run", "invert_to_run"]


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    """The 8-bit RGB image DIPPAS works on (gray is replicated, uint16 is scaled)."""
    img = check_image(image)
    if img.dtype == np.uint16:
        img = np.clip(np.rint(img / 257.0), 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img)


def _injection(image: np.ndarray, fingerprint: np.ndarray | None, blind: bool) -> np.ndarray | None:
    if blind and fingerprint is not None:
        raise DippasInputError("give either a fingerprint (aware mode) or blind=True, not both")
    if not blind and fingerprint is None:
        raise DippasInputError("DIPPAS needs a fingerprint (aware mode) or blind=True")
    return None if blind else check_fingerprint(fingerprint, shape=image.shape[:2])


def invert_to_run(image: np.ndarray, run_dir: str | os.PathLike, fingerprint: np.ndarray | None = None,
                  *, blind: bool = False, preset: str = "fast", device: str = "auto",
                  max_iter: int | None = None, seed: int = 0, tile: int = 512,
                  progress: Callable[[int, int], None] | None = None,
                  cancel: CancelToken | None = None,
                  on_iteration: Callable | None = None, **overrides) -> Path:
    """Run (or resume, or skip when complete) one DIPPAS inversion into ``run_dir``.

    Parameters
    ----------
    image : ndarray
        The photo, ``(H, W, 3)`` (gray is replicated; uint16 is scaled to 8 bits).
    run_dir : path
        Run folder; created if missing, resumed if it holds an unfinished run.
    fingerprint : ndarray, optional
        K of the camera (PRNU-aware mode), same size as the image.
    blind : bool
        PRNU-blind mode: inject the image's own residual.
    preset : {'fast', 'paper'}
    device : {'auto', 'cpu', 'cuda', 'mps'}
    max_iter : int, optional
        Overrides the preset's iteration limit.
    seed : int
    tile : int
        Tile side for large images.
    progress : callable, optional
        ``progress(done, total)`` in iterations over all tiles.
    cancel : CancelToken, optional
        Stops within one iteration, leaving a resumable run.
    on_iteration : callable, optional
        Called with every :class:`dippas.dip.IterationEvent` (PSNR, gamma, saved...).
    **overrides
        Other preset fields (``stop_psnr``, ``save_psnr``, ``lr``).

    Returns
    -------
    pathlib.Path
        The run folder.
    """
    from .dip import DippasRun, RunStore

    img = _rgb_uint8(image)
    k = _injection(img, fingerprint, blind)
    run_dir = Path(run_dir)
    if (run_dir / "params.json").is_file():
        store = RunStore(run_dir)
        if tuple(store.image_shape) != img.shape[:2]:
            raise DippasInputError(f"{run_dir}: holds a run of another image size")
        if store.is_complete and all(t.n_cells >= t.n_snapshots for t in store):
            return run_dir
        run = DippasRun.open(run_dir, device=device, max_iter=max_iter)
    else:
        run = DippasRun.create(run_dir, img, k, preset=preset, device=device, tile=tile,
                               max_iter=max_iter, seed=seed, **overrides)
    total = run.preset.max_iter * len(run.tiles)

    def report(ev) -> None:
        if progress is not None:
            progress(ev.tile_index * run.preset.max_iter + ev.iteration, total)
        if on_iteration is not None:
            on_iteration(ev)

    summary = run.run(callback=report, cancel=cancel)
    if summary.cancelled:
        from .errors import Cancelled

        raise Cancelled(f"inversion stopped; resume with the same run folder {run_dir}")
    return run_dir


def anonymize_dippas(image: np.ndarray, fingerprint: np.ndarray | None = None, *,
                     blind: bool = False, preset: str = "fast", device: str = "auto",
                     max_iter: int | None = None, seed: int = 0,
                     block_size: int | str | None = DEFAULT_BLOCK_SIZE, blocks: int = DEFAULT_BLOCKS,
                     psnr_threshold: float | None = DEFAULT_PSNR_THRESHOLD,
                     run_dir: str | os.PathLike | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     cancel: CancelToken | None = None, on_iteration: Callable | None = None,
                     **overrides) -> np.ndarray:
    """Anonymize a photo with DIPPAS: inversion, then block assembly.

    Parameters
    ----------
    image, fingerprint, blind, preset, device, max_iter, seed, progress, cancel, on_iteration, **overrides
        As :func:`invert_to_run`.
    block_size : int, 'whole' or None
        Assembly block side B (a multiple of the run's cell size, 16).
    blocks : int
        L, blocks averaged per position.
    psnr_threshold : float, optional
        τ_PSNR; None keeps every stored snapshot (all are above the save threshold).
    run_dir : path, optional
        Keep the run here (resumable, reusable with ``dippas assemble``);
        by default a scratch folder is used and deleted (:mod:`dippas.scratch`).

    Returns
    -------
    ndarray, uint8 (H, W, 3)
    """
    if run_dir is not None:
        invert_to_run(image, run_dir, fingerprint, blind=blind, preset=preset, device=device,
                      max_iter=max_iter, seed=seed, progress=progress, cancel=cancel,
                      on_iteration=on_iteration, **overrides)
        return assemble_run(run_dir, block_size, blocks, psnr_threshold)
    from .scratch import scratch_dir  # deleted on SIGTERM/SIGINT too; stale ones swept

    with scratch_dir() as tmp:
        path = tmp / "run"
        invert_to_run(image, path, fingerprint, blind=blind, preset=preset, device=device,
                      max_iter=max_iter, seed=seed, progress=progress, cancel=cancel,
                      on_iteration=on_iteration, **overrides)
        return assemble_run(path, block_size, blocks, psnr_threshold)


def anonymize_inpainting(image: np.ndarray, **kwargs) -> np.ndarray:
    """The inpainting method (ICIP 2017); see :func:`dippas.inpainting.inpaint_anonymize`."""
    from .inpainting import inpaint_anonymize

    return inpaint_anonymize(image, **kwargs)


__all__ += ["RunAssembler"]
