"""``dippas fingerprint FOLDER -o K.npy``: estimate a camera fingerprint."""

from __future__ import annotations

import argparse

NAME = "fingerprint"
ORDER = 20
HELP = "estimate a camera fingerprint K from a folder of flat-field photos"


def _crop(text: str):
    if text == "common":
        return text
    from ._common import positive_int

    return positive_int(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ._common import positive_float

    p.add_argument("folder", help="folder of flat, bright photos from one camera")
    p.add_argument("-o", "--output", required=True, help="output fingerprint (.npy or .tif)")
    p.add_argument("--sigma", type=positive_float, default=3.0,
                   help="assumed noise std in 0-255 units (default 3)")
    p.add_argument("--crop", type=_crop, default=None, metavar="N|common",
                   help="centre-crop every photo to NxN, or to the smallest common size; "
                   "without it, photos of different sizes are refused")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--json", action="store_true", help="print a JSON summary")


def _check_sizes(files, crop) -> None:
    """Read every header first, so a bad or odd-sized file fails before any work."""
    from ..errors import DippasInputError
    from ..io import image_size

    sizes = {f: image_size(f) for f in files}
    if crop is None and len(set(sizes.values())) > 1:
        (fa, sa), (fb, sb) = next(iter(sizes.items())), next(
            (f, s) for f, s in sizes.items() if s != next(iter(sizes.values())))
        raise DippasInputError(
            f"{fb.name} is {sb[0]}x{sb[1]} but {fa.name} is {sa[0]}x{sa[1]}; "
            "use --crop N or --crop common to centre-crop to one size")
    if isinstance(crop, int):
        small = [f for f, s in sizes.items() if s[0] < crop or s[1] < crop]
        if small:
            h, w = sizes[small[0]]
            raise DippasInputError(f"{small[0].name} is {h}x{w}, smaller than --crop {crop}")


def run(args: argparse.Namespace) -> int:
    from ..fingerprint import estimate_fingerprint
    from ..io import check_fingerprint_output, list_images, save_fingerprint
    from ._common import bar_callback, print_json, progress_bar

    files = list_images(args.folder)
    check_fingerprint_output(args.output, files, args.force)
    _check_sizes(files, args.crop)
    with progress_bar(len(files), "fingerprint", unit="img") as bar:
        k = estimate_fingerprint(files, sigma=args.sigma, crop=args.crop,
                                 progress=bar_callback(bar))
    out = save_fingerprint(args.output, k, force=args.force, inputs=files)
    summary = {"output": str(out), "images": len(files), "shape": list(k.shape),
               "sigma": args.sigma}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {out}: {k.shape[0]}x{k.shape[1]} fingerprint from {len(files)} photos")
    return 0
