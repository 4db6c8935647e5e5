"""``dippas invert IMAGE (--fingerprint K | --blind) --run DIR``: the DIPPAS inversion.

Runs the deep-image-prior inversion with fingerprint injection and stores
every snapshot above the save threshold, with its cell statistics, in a run
folder (``docs/run-format.md``) for the assembler. Ctrl-C stops cleanly
after the current iteration and leaves a run that ``--resume`` continues.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

NAME = "invert"
ORDER = 40
HELP = "DIPPAS inversion: deep image prior with fingerprint injection, into a run folder"
DESCRIPTION = (
    "Fit a deep image prior to IMAGE while injecting the fingerprint P into the loss "
    "||I_phi (1 + gamma P) - I||^2: P = K with --fingerprint (PRNU-aware), or the image's own "
    "noise residual with --blind (PRNU-blind). Every output whose PSNR reaches --save-psnr is "
    "stored in the run folder with its cell statistics, for the block assembler. Images larger "
    "than --tile are inverted tile by tile. Ctrl-C checkpoints and stops; --resume continues."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ._common import existing_file, positive_int
    from ._job_options import add_inversion_arguments, add_workers_argument

    p.add_argument("image", type=existing_file, help="JPEG, PNG or TIFF photo to anonymize")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--fingerprint", "-k", type=existing_file, metavar="K",
                      help="camera fingerprint K (.npy, .tif or .mat), same size as the image "
                           "(PRNU-aware mode)")
    mode.add_argument("--blind", action="store_true",
                      help="inject the image's own noise residual (PRNU-blind mode)")
    p.add_argument("--run", required=True, type=Path, metavar="DIR",
                   help="run folder to create (must not exist or be empty), or to continue with --resume")
    add_inversion_arguments(p, device_help="where to run (default auto: CUDA, then MPS, then CPU)")
    p.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="N",
                   help="checkpoint every N iterations (default 50)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPUs)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (GPUs)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="CPU threads for torch, in each worker with --workers (default: torch's "
                   "choice; with --workers, the cores divided between the workers)")
    add_workers_argument(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --run")
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")


def _resume_command(args: argparse.Namespace) -> str:
    parts = ["dippas", "invert", str(args.image)]
    parts += ["--blind"] if args.blind else ["--fingerprint", str(args.fingerprint)]
    parts += ["--run", str(args.run)]
    if args.device is not None:
        parts += ["--device", args.device]
    for opt in ("max_iter", "stop_psnr", "workers", "tiles_at_once"):
        value = getattr(args, opt)
        if value is not None:
            parts += ["--" + opt.replace("_", "-"), str(value)]
    parts.append("--resume")
    return " ".join(shlex.quote(x) for x in parts)


def _check_not_input(run_dir: Path, inputs: list[Path]) -> None:
    from ..errors import DippasInputError
    from ..io import same_file

    for path in inputs:
        if same_file(run_dir, path):
            raise DippasInputError(f"{run_dir}: is an input file, not a run folder")


def _job(args: argparse.Namespace):
    """The job: the run's own for --resume (with the options given), else the defaults'."""
    from ..dip.dippas_run import check_run_dir
    from ..dip.store import RunStore
    from ..jobs import DippasJob
    from ._job_options import dippas_job

    check_run_dir(args.run, resume=args.resume)
    mode = "blind" if args.blind else "aware"
    base = DippasJob.from_run(RunStore(args.run).params, mode=mode) if args.resume else None
    job = dippas_job(args, base).replace(workers=args.workers, tiles_at_once=args.tiles_at_once)
    job.check_workers()
    return job


class _Progress:
    """tqdm bar per tile (or per group of tiles inverted together) with PSNR, gamma, saved
    count and speed. Tiles inverted together advance in step: the bar follows one of them
    until it ends, then the next to report."""

    def __init__(self) -> None:
        from ..progress import Throttle

        self.bar = None
        self.tile = None
        self.tile_done = True
        self.throttle = Throttle(0.1)
        self.cells_bar = None

    def __call__(self, ev) -> None:
        from ._common import progress_bar

        if self.tile != ev.tile_index:
            if not self.tile_done or (ev.done and ev.tiles_together > 1):
                return  # another tile of the group the bar follows, or its last event
            if self.bar is not None:
                self.bar.close()
            name = ev.tile.name if ev.tile is not None else "0_0"
            desc = "invert" if ev.n_tiles == 1 else f"tile {name} ({ev.tile_index + 1}/{ev.n_tiles})"
            if ev.tiles_together > 1:
                desc = f"{ev.tiles_together} tiles together, following {name} ({ev.n_tiles} in all)"
            self.bar = progress_bar(ev.max_iter, desc, unit="it", initial=ev.iteration - 1)
            self.tile = ev.tile_index
        self.tile_done = ev.done
        if self.throttle() or ev.done:
            self.bar.set_postfix_str(
                f"PSNR {ev.psnr:.2f} dB, gamma {ev.gamma:.4g}, saved {ev.n_saved}, {ev.its_per_s:.2f} it/s",
                refresh=False)
            self.bar.update(ev.iteration - self.bar.n)

    def cells(self, done: int, total: int) -> None:
        from ._common import progress_bar

        if self.cells_bar is None:
            if done >= total:
                return
            self.close()
            self.cells_bar = progress_bar(total, "cell statistics", unit="snapshot")
        self.cells_bar.update(done - self.cells_bar.n)

    def close(self) -> None:
        for bar in (self.bar, self.cells_bar):
            if bar is not None:
                bar.close()
        self.bar = None


def _invert_on_workers(dip_run, workers: int, token, threads: int | None):
    """The tiles as Dask tasks on a local cluster, with a bar of finished tiles."""
    from ..batch.tiles import invert_on_local_cluster
    from ._common import bar_callback, progress_bar

    with progress_bar(len(dip_run.tiles), f"tiles on {workers} Dask workers", unit="tile") as bar:
        return invert_on_local_cluster(dip_run, workers, progress=bar_callback(bar), cancel=token,
                                       threads=threads)


def run(args: argparse.Namespace) -> int:
    from ..batch.tiles import tiles_for_workers
    from ..dip.dippas_run import open_run
    from ..io import load_fingerprint, load_image
    from ..progress import CancelToken
    from ._common import print_json

    _check_not_input(args.run, [p for p in (args.image, args.fingerprint) if p is not None])
    job = _job(args)
    fingerprint = None
    if args.fingerprint is not None:
        fingerprint = load_fingerprint(args.fingerprint)
    image, fingerprint = job.prepare(load_image(args.image), fingerprint)
    dip_run = open_run(args.run, image, fingerprint, job, resume=args.resume,
                       bf16=args.bf16, channels_last=args.channels_last,
                       checkpoint_every=args.checkpoint_every)
    token = CancelToken()
    previous = _install_sigint(token)
    try:
        if tiles_for_workers(dip_run, job.workers):
            summary = _invert_on_workers(dip_run, job.workers, token, args.threads)
        else:
            if args.threads:
                import torch

                torch.set_num_threads(args.threads)
            progress = _Progress()
            try:
                summary = dip_run.run(callback=progress, cancel=token, cells_progress=progress.cells)
            finally:
                progress.close()
    finally:
        _restore_sigint(previous)
    if summary.cancelled:
        print(f"dippas invert: interrupted; resume with: {_resume_command(args)}", file=sys.stderr)
        return 130
    if args.json:
        print_json({"run": str(args.run), "mode": dip_run.mode, "preset": dip_run.preset.name,
                    "complete": summary.complete, "tiles": summary.tiles,
                    "snapshots": summary.snapshots, "cells": summary.cells,
                    "iterations": summary.iterations, "seconds": summary.seconds})
    else:
        best = [t["best_psnr"] for t in summary.tiles if t.get("best_psnr") is not None]
        span = ""
        if best:
            span = (f", best PSNR {best[0]:.2f} dB" if len(best) == 1
                    else f", best PSNR per tile {min(best):.2f}-{max(best):.2f} dB")
        print(f"run {args.run}: {summary.n_tiles} tile(s), {summary.snapshots} snapshot(s) "
              f"with PSNR >= {dip_run.preset.save_psnr:g} dB{span}")
        if summary.snapshots == 0:
            print("no snapshot reached the save threshold: lower --save-psnr or raise --max-iter",
                  file=sys.stderr)
    return 0


def _install_sigint(token):
    """First Ctrl-C sets the cancel token; a second one interrupts at once."""

    def handler(signum, frame):  # noqa: ARG001 - signal API
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()

    try:
        return signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C alone
        return None


def _restore_sigint(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
