"""``dippas residual IMAGE -o W.npy``: the noise residual of an image."""

from __future__ import annotations

import argparse

NAME = "residual"
ORDER = 10
HELP = "compute the noise residual W of an image (float32 .npy or .tif)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ._common import existing_file, positive_float

    p.add_argument("image", type=existing_file, help="JPEG, PNG or TIFF photo")
    p.add_argument("-o", "--output", required=True, help="output file (.npy or .tif)")
    p.add_argument("--sigma", type=positive_float, default=3.0,
                   help="assumed noise std in 0-255 units (default 3)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--json", action="store_true", help="print a JSON summary")


def run(args: argparse.Namespace) -> int:
    from ..errors import DippasInputError
    from ..io import check_fingerprint_output, load_image, save_fingerprint
    from ..residual import noise_residual
    from ..validation import check_image
    from ._common import print_json

    check_fingerprint_output(args.output, [args.image], args.force)
    image = check_image(load_image(args.image), name=str(args.image))
    if image.min() == image.max():
        raise DippasInputError(f"{args.image}: the image is flat (every pixel {image.flat[0]}); "
                               "it has no noise residual")
    w = noise_residual(image, args.sigma)
    out = save_fingerprint(args.output, w, force=args.force, inputs=[args.image])
    summary = {"output": str(out), "shape": list(w.shape), "sigma": args.sigma,
               "std": float(w.std())}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {out} ({w.shape[0]}x{w.shape[1]} float32, std {summary['std']:.4g})")
    return 0
