"""``dippas anonymize IMAGE -o OUT --method dippas|inpainting``: one command, photo in, photo out."""

from __future__ import annotations

import argparse

NAME = "anonymize"
ORDER = 60
HELP = "anonymize a photo (remove its camera fingerprint) with DIPPAS or inpainting"
DESCRIPTION = (
    "Remove the camera fingerprint (PRNU) from a photo. --method dippas (default) runs the "
    "deep-image-prior inversion then the block assembly; it needs the camera's fingerprint "
    "(--fingerprint K, PRNU-aware) or --blind. --method inpainting needs no fingerprint. "
    "The output is written without any metadata, atomically, never over an input. The report "
    "gives PSNR and SSIM against the input and, when a fingerprint is given, the NCC and PCEs "
    "of input and output against it."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ._common import existing_file, positive_float
    from ._job_options import add_dippas_arguments, add_inpainting_arguments, add_workers_argument
    from ._outputs import add_output_arguments

    p.add_argument("image", type=existing_file, help="JPEG, PNG or TIFF photo")
    add_output_arguments(p)
    p.add_argument("--method", choices=("dippas", "inpainting"), default="dippas",
                   help="anonymization method (default dippas)")
    p.add_argument("--fingerprint", "-k", type=existing_file, default=None,
                   help="camera fingerprint K (.npy, .tif, .mat): PRNU-aware DIPPAS; with "
                   "inpainting it is used for the report only")
    p.add_argument("--camera-photos", default=None, metavar="DIR",
                   help="estimate K from your own photos of the same camera, straight from it (at "
                   "least 8, the photo's size; cached privately): PRNU-aware DIPPAS without "
                   "flat-fields (docs/audit.md)")
    p.add_argument("--sigma", type=positive_float, default=3.0,
                   help="residual noise level for the report, 0-255 units (default 3)")
    g = p.add_argument_group("DIPPAS")
    add_dippas_arguments(g, blind_help="PRNU-blind: inject the photo's own residual instead of K",
                         device_help="where the inversion runs (default auto: cuda, then mps, "
                         "then cpu)")
    add_workers_argument(g)
    g.add_argument("--run", default=None, metavar="DIR",
                   help="keep the run folder here (resumable; re-assemble with dippas assemble); "
                   "a run of another photo or job is refused")
    add_inpainting_arguments(p.add_argument_group("inpainting"))


def _job(args):
    """The job of the command line, every option checked before any work."""
    from ..errors import DippasInputError
    from ..jobs import check_mode
    from ._job_options import dippas_job, inpainting_job, refuse_other_method_options

    if args.fingerprint and args.camera_photos:
        raise DippasInputError("give --fingerprint K or --camera-photos DIR, not both")
    refuse_other_method_options(args, args.method)
    if args.method == "dippas":
        check_mode("blind" if args.blind else "aware",
                   args.fingerprint is not None or args.camera_photos is not None)
        job = dippas_job(args).replace(workers=args.workers, tiles_at_once=args.tiles_at_once)
        job.check_workers()
        return job
    for option in ("workers", "tiles_at_once"):
        if getattr(args, option) is not None:
            raise DippasInputError(f"--{option.replace('_', '-')} applies to --method dippas only")
    return inpainting_job(args)


def _load(args, job):
    """The image, converted once (8-bit RGB for DIPPAS), and K checked against it."""
    from ..dtype import as_rgb_uint8
    from ..io import load_fingerprint, load_image
    from ..jobs import DippasJob
    from ..validation import check_fingerprint, check_image

    image = load_image(args.image)
    image = as_rgb_uint8(image) if isinstance(job, DippasJob) else check_image(image, name=str(args.image))
    k = None
    if args.fingerprint:
        k = check_fingerprint(load_fingerprint(args.fingerprint), shape=image.shape[:2],
                              name=str(args.fingerprint))
    elif args.camera_photos:
        k = check_fingerprint(_camera_fingerprint(args.camera_photos), shape=image.shape[:2],
                              name=f"the fingerprint of {args.camera_photos}")
    return image, k


def _camera_fingerprint(folder: str):
    """K from the user's own photos (cached), with a warning when its quality is low."""
    import sys

    from ..audit import camera_fingerprint
    from ._common import bar_callback, progress_bar

    with progress_bar(None, "camera fingerprint", unit="photo") as bar:
        cam = camera_fingerprint(folder, progress=bar_callback(bar))
    if not cam.reliable:
        print(f"warning: the fingerprint of {folder} is weak ({cam.photos} photos, halves' NCC "
              f"{cam.half_ncc:.4f}); add more photos of the camera (docs/audit.md)", file=sys.stderr)
    return cam.fingerprint


def _warn_if_weak(job, image, out) -> None:
    """Warn when the inversion stopped before any snapshot reached the save threshold."""
    import sys

    from ..metrics import psnr

    floor = job.preset_parameters().save_psnr
    value = psnr(image, out)
    if value < floor:
        print(f"warning: the output reached only {value:.1f} dB, below the {floor:g} dB the "
              "method stores snapshots from; raise --max-iter", file=sys.stderr)


class _LazyBars:
    """The DIPPAS bar, made on the first report: iterations in this process, or tiles on
    Dask workers (``--workers``)."""

    def __init__(self) -> None:
        self.bar = None

    def _open(self, desc: str, unit: str):
        from ._common import bar_callback, progress_bar

        if self.bar is None:
            self.bar = progress_bar(None, desc, unit=unit)
            self.update = bar_callback(self.bar)
        return self.bar

    def iterations(self, done: int, total: int) -> None:
        self._open("DIPPAS inversion", "it")
        self.update(done, total)

    def postfix(self, ev) -> None:
        from ._common import iteration_postfix

        iteration_postfix(self._open("DIPPAS inversion", "it"))(ev)

    def tiles(self, done: int, total: int) -> None:
        self._open("DIPPAS tiles on Dask workers", "tile")
        self.update(done, total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _anonymize(args, job, image, k):
    from ..jobs import DippasJob
    from ._common import bar_callback, progress_bar

    if isinstance(job, DippasJob):
        bars = _LazyBars()
        try:
            return job.run(image, k, args.run, progress=bars.iterations,
                           on_iteration=bars.postfix, tile_progress=bars.tiles)
        finally:
            bars.close()
    with progress_bar(None, "inpainting", unit="step") as bar:
        return job.run(image, progress=bar_callback(bar))


def run(args: argparse.Namespace) -> int:
    import sys

    from ..jobs import DippasJob
    from ._outputs import check_outputs, finish

    job = _job(args)
    inputs = [args.image] + ([args.fingerprint] if args.fingerprint else [])
    if args.camera_photos:
        from ..audit.camera import usable_photos

        inputs += usable_photos(args.camera_photos)[0]  # enough of them, before any work
    has_k = args.fingerprint is not None or args.camera_photos is not None
    check_outputs(args, inputs, has_k)
    if isinstance(job, DippasJob) and args.run:
        from ..dip.dippas_run import check_run_dir
        from ..dip.store import is_run_folder

        check_run_dir(args.run, resume=is_run_folder(args.run))  # before K is estimated
    image, k = _load(args, job)
    if isinstance(job, DippasJob) and args.run:
        job.check_run_folder(args.run, image, k)
    try:
        out = _anonymize(args, job, image, k)
    except KeyboardInterrupt:
        hint = (f"; resume with the same command (run folder {args.run})" if args.run else
                "; nothing was written (use --run DIR to keep a resumable run)")
        print(f"dippas anonymize: interrupted{hint}", file=sys.stderr)
        return 130
    if isinstance(job, DippasJob):
        _warn_if_weak(job, image, out)
        title, block = f"dippas ({job.mode})", job.block_size
    else:
        recipe = job.recipe()
        title, block = f"inpainting ({recipe.name}) hole={recipe.hole} reg={recipe.reg}", 64
    return finish(args, image, out, k, inputs, block, title)
