"""``dippas audit IMAGE... --fingerprint K``: attack images the way a forensic examiner would."""

from __future__ import annotations

import argparse

NAME = "audit"
ORDER = 35
HELP = "test images (and a set of them) with every attack an examiner has; a verdict per test"
DESCRIPTION = (
    "Per image: whole-image NCC and PCEs, edge-only NCC (edge mask from the image itself), "
    "block maxima for B = 32, 64, 128, the NCC after JPEG recompression (Q 95, 90, 75) and "
    "downscaling (0.5, 0.75), a searched PCE after a crop shift, and a second residual "
    "(sigma 5). Per set of two or more images: the fingerprint re-estimated from the set "
    "against K, half-split re-estimation, and linking (with --reference, a linking AUC). Every "
    "test has a score, a threshold at the false-alarm probability --pfa and a verdict "
    "(see docs/audit.md)."
)


def _probability(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return v


def _folder(text: str):
    from pathlib import Path

    p = Path(text)
    if not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: not a folder")
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..audit.nulls import DEFAULT_PFA
    from ._common import existing_file, positive_int

    p.add_argument("images", nargs="+", type=existing_file, metavar="IMAGE",
                   help="images to audit (anonymized outputs, or originals); two or more of one "
                   "camera also get the set tests")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--fingerprint", "-k", type=existing_file, metavar="K",
                        help="the camera's fingerprint (.npy, .tif or .mat)")
    source.add_argument("--camera-photos", type=_folder, metavar="DIR",
                        help="instead of K: a folder of the camera's own photos (not rotated, "
                        "not resized); K is estimated, streamed and cached")
    p.add_argument("--original", nargs="+", type=existing_file, metavar="ORIG",
                   help="the original of each IMAGE, in order: adds the edge test with the "
                   "original's edge mask, and the PSNR")
    p.add_argument("--reference", type=_folder, metavar="DIR",
                   help="photos of other cameras, for the linking AUC (needs two or more IMAGEs)")
    p.add_argument("--crop", type=positive_int, default=None, metavar="N",
                   help="centre-crop every image (and K) to NxN; needed for images of mixed sizes")
    p.add_argument("--pfa", type=_probability, default=DEFAULT_PFA,
                   help=f"false-alarm probability of every test (default {DEFAULT_PFA:g})")
    p.add_argument("--figure", metavar="F.png",
                   help="write a one-page metadata-free PNG: heatmaps, scores against "
                   "thresholds, linking histogram")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from ..audit import AuditOptions, audit, report_lines
    from ..audit.figure import audit_figure, check_figure_path
    from ..errors import DippasInputError
    from ._common import bar_callback, print_json, progress_bar

    if args.fingerprint is None and args.camera_photos is None:
        raise DippasInputError("give the camera's fingerprint (--fingerprint K) or its photos "
                               "(--camera-photos DIR)")
    inputs = [*args.images, *(args.original or [])]
    if args.fingerprint is not None:
        inputs.append(args.fingerprint)
    if args.figure:
        check_figure_path(args.figure, inputs)
    with progress_bar(None, "audit", unit="step", disable=None) as bar:
        report = audit(args.images, fingerprint=args.fingerprint,
                       camera_photos=args.camera_photos, originals=args.original,
                       references=args.reference, crop=args.crop,
                       options=AuditOptions(pfa=args.pfa), progress=bar_callback(bar))
    if args.figure:
        audit_figure(args.figure, report, inputs)
    if args.json:
        print_json(report.to_dict())
    else:
        print("\n".join(report_lines(report)))
    return 0
