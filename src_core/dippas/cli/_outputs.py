"""Output options and the end of every command that writes an anonymized image.

``anonymize`` and ``assemble`` share them: the -o/--force/--jpeg-quality/
--heatmap/--json options, the checks made before any work, and
:func:`finish`, which writes the image (and figure) and prints the report.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """-o, --force, --jpeg-quality, --heatmap, --json (shared with ``anonymize``)."""
    from ._common import positive_int

    p.add_argument("-o", "--output", required=True,
                   help="output image: .png (default, lossless) or .tif; never metadata")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--jpeg-quality", type=positive_int, default=None, metavar="Q",
                   help="allow a .jpg output at this quality (recompression changes what the "
                   "anonymization guarantees)")
    p.add_argument("--heatmap", default=None, metavar="PNG",
                   help="also write a before/after figure with per-block NCC heatmaps")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def check_outputs(args, inputs, has_fingerprint: bool) -> None:
    """Every output check, before any work: format, JPEG quality, overwrite rules, figure needs."""
    from ..errors import DippasInputError
    from ..io import check_output_path, output_format

    output_format(args.output, jpeg_quality=args.jpeg_quality)
    warn_jpeg(args.output)
    check_output_path(args.output, inputs, args.force)
    if args.heatmap:
        if not has_fingerprint:
            raise DippasInputError("--heatmap needs a fingerprint to correlate with")
        if Path(args.heatmap).suffix.lower() != ".png":
            raise DippasInputError(f"{args.heatmap}: the heatmap figure is written as PNG; "
                                   "name it .png")
        check_output_path(args.heatmap, list(inputs) + [args.output], args.force)


def warn_jpeg(output: str) -> None:
    """Warn, on stderr, that a JPEG output recompresses what the anonymization removed."""
    import sys
    from pathlib import Path

    if Path(output).suffix.lower() in (".jpg", ".jpeg"):
        print("warning: JPEG recompression changes the noise the anonymization removed; "
              "re-test the output before relying on it", file=sys.stderr)


def finish(args, original, anonymized, fingerprint, inputs, block, title: str) -> int:
    """Write the output (and figure), print the report; shared by assemble and anonymize."""
    from ..figures import block_ncc_figure
    from ..io import save_image
    from ..report import anonymization_report

    out = save_image(args.output, anonymized, inputs=inputs, force=args.force,
                     jpeg_quality=args.jpeg_quality)
    report = {"output_file": str(out), **anonymization_report(original, anonymized, fingerprint)}
    if args.heatmap:
        b = block if isinstance(block, int) else 64
        fig = block_ncc_figure(args.heatmap, original, anonymized, fingerprint, b, title=title,
                               force=args.force)
        report["figure"] = str(fig)
    return show_report(report, args.json, f"wrote {out}")


def show_report(report: dict, as_json: bool, headline: str) -> int:
    """Print the report as JSON, or as ``headline`` and its text lines; exit code 0."""
    from ..report import format_report
    from ._common import print_json

    if as_json:
        print_json(report)
    else:
        print(headline)
        print(format_report(report))
    return 0
