"""One-call anonymization functions of the Python API, over :mod:`dippas.jobs`.

Each builds the job and runs it, so the API has the defaults and checks of
every other face:

- :func:`invert_to_run` runs, resumes, or skips (when complete) one DIPPAS
  inversion into a run folder;
- :func:`assemble_run` turns a run folder into the anonymized image;
- :func:`anonymize_dippas` does both, in a private temporary run folder
  unless one is given;
- :func:`anonymize_inpainting` is the inpainting method.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .assembly import RunAssembler, assemble_run
from .jobs import DippasJob, InpaintingJob
from .progress import CancelToken

__all__ = ["RunAssembler", "anonymize_dippas", "anonymize_inpainting", "assemble_run", "invert_to_run"]


def _dippas_job(blind: bool, **options) -> DippasJob:
    """The job of these keyword options (``None`` keeps a default; ``block_size=None`` is 'whole')."""
    if "block_size" in options and options["block_size"] is None:
        options["block_size"] = "whole"
    return DippasJob(mode="blind" if blind else "aware").replace(**options)


def invert_to_run(image: np.ndarray, run_dir: str | os.PathLike, fingerprint: np.ndarray | None = None,
                  *, blind: bool = False, progress: Callable[[int, int], None] | None = None,
                  cancel: CancelToken | None = None, on_iteration: Callable | None = None,
                  **options) -> Path:
    """Run (or resume, or skip when complete) one DIPPAS inversion into ``run_dir``.

    Parameters
    ----------
    image : ndarray
        The photo, ``(H, W, 3)`` or gray; converted once to 8-bit RGB.
    run_dir : path
        Run folder; created if missing, resumed if it holds an unfinished run of
        the same photo and job. A run of another photo or job is refused.
    fingerprint : ndarray, optional
        K of the camera (PRNU-aware mode), same size as the image.
    blind : bool
        PRNU-blind mode: inject the image's own residual.
    progress : callable, optional
        ``progress(done, total)`` in iterations over all tiles.
    cancel : CancelToken, optional
        Stops within one iteration, leaving a resumable run.
    on_iteration : callable, optional
        Called with every :class:`dippas.dip.IterationEvent` (PSNR, gamma, saved...).
    **options
        Fields of :class:`dippas.jobs.DippasJob` (``preset``, ``max_iter``,
        ``seed``, ``device``, ``tile``, ``stop_psnr``, ``save_psnr``, ``lr``).

    Returns
    -------
    pathlib.Path
        The run folder.
    """
    job = _dippas_job(blind, **options)
    return job.invert(image, fingerprint, run_dir, progress=progress, cancel=cancel,
                      on_iteration=on_iteration)


def anonymize_dippas(image: np.ndarray, fingerprint: np.ndarray | None = None, *,
                     blind: bool = False, run_dir: str | os.PathLike | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     cancel: CancelToken | None = None, on_iteration: Callable | None = None,
                     **options) -> np.ndarray:
    """Anonymize a photo with DIPPAS: inversion, then block assembly.

    Parameters
    ----------
    image, fingerprint, blind, progress, cancel, on_iteration
        As :func:`invert_to_run`.
    run_dir : path, optional
        Keep the run here (resumable, reusable with ``dippas assemble``);
        by default a private temporary folder is used and deleted.
    **options
        Fields of :class:`dippas.jobs.DippasJob`, the assembly's too
        (``block_size``, ``blocks``, ``psnr_threshold``).

    Returns
    -------
    ndarray, uint8 (H, W, 3)
    """
    job = _dippas_job(blind, **options)
    return job.run(image, fingerprint, run_dir, progress=progress, cancel=cancel,
                   on_iteration=on_iteration)


def anonymize_inpainting(image: np.ndarray, **options) -> np.ndarray:
    """The inpainting method (ICIP 2017) with :class:`dippas.jobs.InpaintingJob` options."""
    progress = options.pop("progress", None)
    cancel = options.pop("cancel", None)
    return InpaintingJob(**options).run(image, progress=progress, cancel=cancel)
