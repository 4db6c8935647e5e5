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
    from ._methods import add_dippas_arguments, add_inpainting_arguments
    from .assemble import add_output_arguments

    p.add_argument("image", type=existing_file, help="JPEG, PNG or TIFF photo")
    add_output_arguments(p)
    p.add_argument("--method", choices=("dippas", "inpainting"), default="dippas",
                   help="anonymization method (default dippas)")
    p.add_argument("--fingerprint", "-k", type=existing_file, default=None,
                   help="camera fingerprint K (.npy, .tif, .mat): PRNU-aware DIPPAS; with "
                   "inpainting it is used for the report only")
    p.add_argument("--sigma", type=positive_float, default=3.0,
                   help="residual noise level for the report, 0-255 units (default 3)")
    g = p.add_argument_group("DIPPAS")
    add_dippas_arguments(g, blind_help="PRNU-blind: inject the photo's own residual instead of K",
                         device_help="where the inversion runs (default auto: cuda, then mps, "
                         "then cpu)")
    g.add_argument("--run", default=None, metavar="DIR",
                   help="keep the run folder here (resumable; re-assemble with dippas assemble)")
    add_inpainting_arguments(p.add_argument_group("inpainting"))

def _check_method_options(args) -> None:
    from ..errors import DippasInputError

    if args.method == "dippas":
        if args.blind and args.fingerprint:
            raise DippasInputError("give --fingerprint K (aware) or --blind, not both")
        if not args.blind and not args.fingerprint:
            raise DippasInputError("DIPPAS needs --fingerprint K (PRNU-aware) or --blind")
    elif args.blind or args.run:
        raise DippasInputError("--blind and --run apply to --method dippas only")


def _load(args):
    from ..io import load_fingerprint, load_image
    from ..validation import check_fingerprint, check_image

    image = check_image(load_image(args.image), name=str(args.image))
    k = None
    if args.fingerprint:
        k = check_fingerprint(load_fingerprint(args.fingerprint), shape=image.shape[:2],
                              name=str(args.fingerprint))
    return image, k


def _run_dippas(args, image, k):
    from ..anonymize import _rgb_uint8, anonymize_dippas
    from ._common import bar_callback, iteration_postfix, progress_bar

    rgb = _rgb_uint8(image)
    with progress_bar(None, "DIPPAS inversion", unit="it") as bar:
        out = anonymize_dippas(rgb, k, blind=args.blind, preset=args.preset, device=args.device,
                               max_iter=args.max_iter, seed=args.seed, block_size=args.block_size,
                               blocks=args.blocks, psnr_threshold=args.psnr_threshold,
                               run_dir=args.run, progress=bar_callback(bar),
                               on_iteration=iteration_postfix(bar))
    return rgb, out


def _run_inpainting(args, image):
    from ..inpainting import inpaint_anonymize
    from ._common import bar_callback, progress_bar

    with progress_bar(None, "inpainting", unit="step") as bar:
        out = inpaint_anonymize(image, hole=args.hole, reg=args.reg, edges=not args.no_edges,
                                denoiser=args.denoiser, progress=bar_callback(bar))
    return image, out


def run(args: argparse.Namespace) -> int:
    import sys

    from .assemble import check_outputs, finish

    _check_method_options(args)
    inputs = [args.image] + ([args.fingerprint] if args.fingerprint else [])
    check_outputs(args, inputs, args.fingerprint is not None)
    if args.run:
        from ..io import check_writable_folder

        check_writable_folder(args.run)  # before any work (issue 15)
    image, k = _load(args)
    try:
        if args.method == "dippas":
            original, out = _run_dippas(args, image, k)
        else:
            original, out = _run_inpainting(args, image)
    except KeyboardInterrupt:
        hint = (f"; resume with the same command (run folder {args.run})" if args.run else
                "; nothing was written (use --run DIR to keep a resumable run)")
        print(f"dippas anonymize: interrupted{hint}", file=sys.stderr)
        return 130
    k_report = k if (k is not None and original.shape[:2] == k.shape) else None
    title = f"{args.method} ({'blind' if args.blind else 'aware'})" if args.method == "dippas" \
        else f"inpainting hole={args.hole} reg={args.reg}"
    return finish(args, original, out, k_report, inputs, args.block_size, title)
