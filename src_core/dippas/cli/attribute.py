"""``dippas attribute IMAGE --fingerprint K``: does this camera match this photo?"""

from __future__ import annotations

import argparse

NAME = "attribute"
ORDER = 30
HELP = "test an image against a camera fingerprint: NCC, both PCEs and a verdict"
DESCRIPTION = (
    "Correlate the noise residual W of IMAGE with gray(IMAGE)*K. Prints the NCC, the "
    "zero-shift PCE (Binghamton toolbox: 11x11 exclusion, wrap-around), the PCE with the "
    "peak searched over all shifts, and the verdict: match when the zero-shift PCE reaches "
    "the threshold (default 60). A genuine 512x512 photo often reaches a PCE of only ~35, "
    "so a 'no match' on small images is weak evidence."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ._common import existing_file, positive_float

    p.add_argument("image", type=existing_file, help="JPEG, PNG or TIFF photo")
    p.add_argument("--fingerprint", "-k", required=True, type=existing_file,
                   help="fingerprint K (.npy, .tif or .mat), same size as the image")
    p.add_argument("--sigma", type=positive_float, default=3.0,
                   help="assumed noise std in 0-255 units (default 3)")
    p.add_argument("--pce-threshold", type=positive_float, default=60.0,
                   help="decision threshold on the zero-shift PCE (default 60)")
    p.add_argument("--crop", type=int, default=None, metavar="N",
                   help="centre-crop the image to NxN first (e.g. 512, to match a 512 fingerprint)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")


def run(args: argparse.Namespace) -> int:
    from ..correlation import attribution_scores
    from ..fingerprint import centre_crop
    from ..io import load_fingerprint, load_image
    from ._common import print_json

    image = load_image(args.image)
    k = load_fingerprint(args.fingerprint)
    if args.crop:
        image = centre_crop(image, (args.crop, args.crop))
    scores = attribution_scores(image, k, sigma=args.sigma, pce_threshold=args.pce_threshold)
    if args.json:
        print_json({"image": str(args.image), "fingerprint": str(args.fingerprint), **scores})
    else:
        verdict = "MATCH" if scores["match"] else "no match"
        print(f"NCC                {scores['ncc']:+.5f}   (equivalent threshold {scores['ncc_threshold']:.5f})")
        print(f"PCE (zero shift)   {scores['pce']:+.2f}   (threshold {scores['pce_threshold']:g})")
        dy, dx = scores["pce_search_shift"]
        print(f"PCE (peak search)  {scores['pce_search']:+.2f}   at shift ({dy}, {dx})")
        print(f"verdict            {verdict}   ({scores['pixels']} pixels)")
    return 0
