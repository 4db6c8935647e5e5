"""``dippas assemble RUN -o OUT``: assemble a DIPPAS run folder into the anonymized image."""

from __future__ import annotations

import argparse

NAME = "assemble"
ORDER = 50
HELP = "assemble a DIPPAS run folder into the anonymized image (choose B, L, tau)"


def block_size_arg(text: str):
    """argparse type of --block-size: a positive int or 'whole'."""
    if text.lower() == "whole":
        return "whole"
    from ._common import positive_int

    return positive_int(text)


def add_assembly_arguments(p: argparse.ArgumentParser) -> None:
    """--block-size, --blocks, --psnr-threshold (shared with ``anonymize``)."""
    from ..anonymize import DEFAULT_BLOCK_SIZE
    from ..run_assembly import DEFAULT_BLOCKS
    from ._common import positive_float, positive_int

    p.add_argument("--block-size", "-B", type=block_size_arg, default=DEFAULT_BLOCK_SIZE,
                   metavar="B|whole",
                   help=f"block side in pixels, a multiple of 16, or 'whole' (default {DEFAULT_BLOCK_SIZE})")
    p.add_argument("--blocks", "-L", type=positive_int, default=DEFAULT_BLOCKS, metavar="L",
                   help=f"number of best blocks averaged per position (default {DEFAULT_BLOCKS})")
    p.add_argument("--psnr-threshold", type=positive_float, default=None, metavar="DB",
                   help="only snapshots with at least this PSNR are candidates (default: every "
                   "stored snapshot); if none reaches it, the best-PSNR ones are used")


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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="DIPPAS run folder (from dippas invert or dippas anonymize --run)")
    add_assembly_arguments(p)
    add_output_arguments(p)


def check_outputs(args, inputs, has_fingerprint: bool) -> None:
    """Every output check, before any work: JPEG choice, overwrite rules, figure needs."""
    from ..errors import DippasInputError
    from ..io import check_output_path

    check_jpeg_choice(args.output, args.jpeg_quality)
    check_output_path(args.output, inputs, args.force)
    if args.heatmap:
        if not has_fingerprint:
            raise DippasInputError("--heatmap needs a fingerprint to correlate with")
        check_output_path(args.heatmap, inputs + [args.output], args.force)


def check_jpeg_choice(output: str, quality: int | None) -> None:
    """Warn about JPEG output; refuse .jpg without an explicit quality before any work."""
    import sys
    from pathlib import Path

    from ..errors import DippasInputError

    if Path(output).suffix.lower() in (".jpg", ".jpeg"):
        if quality is None:
            raise DippasInputError("JPEG output needs --jpeg-quality Q; recompression changes "
                                   "what the anonymization guarantees (prefer .png)")
        print("warning: JPEG recompression changes the noise the anonymization removed; "
              "re-test the output before relying on it", file=sys.stderr)


def finish(args, original, anonymized, fingerprint, inputs, block, title: str) -> int:
    """Write the output (and figure), print the report; shared by assemble and anonymize."""
    from ..assembly import image_block_ncc
    from ..figures import before_after_figure
    from ..io import save_image
    from ..report import anonymization_report, format_report
    from ._common import print_json

    out = save_image(args.output, anonymized, inputs=inputs, force=args.force,
                     jpeg_quality=args.jpeg_quality)
    report = {"output_file": str(out), **anonymization_report(original, anonymized, fingerprint)}
    if args.heatmap:
        b = block if isinstance(block, int) else 64
        fig = before_after_figure(args.heatmap, original, anonymized,
                                  image_block_ncc(original, fingerprint, b),
                                  image_block_ncc(anonymized, fingerprint, b), b, title=title,
                                  force=args.force)
        report["figure"] = str(fig)
    if args.json:
        print_json(report)
    else:
        print(f"wrote {out}")
        print(format_report(report))
    return 0


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..run_assembly import RunAssembler

    asm = RunAssembler(args.run)
    aware = asm.store.params.get("mode") == "aware"
    check_outputs(args, [asm.store.path / "input.npy"], aware)
    result = asm.assemble(args.block_size, args.blocks, args.psnr_threshold)
    original = np.asarray(asm.store.input)
    k = asm.fingerprint if aware else None
    return finish(args, original, result.image, k, [], args.block_size,
                  title=f"DIPPAS assembly B={args.block_size} L={args.blocks}")
