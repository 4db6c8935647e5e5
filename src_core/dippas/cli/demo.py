"""``dippas demo``: the README's main job, a DIPPAS anonymization of the bundled sample.

The sample is scikit-image's public-domain *astronaut* with a simulated
camera fingerprint K applied (:mod:`dippas.samples`). The demo anonymizes it
with DIPPAS in PRNU-aware mode and the ``fast`` preset, with a progress bar,
and writes into ``--out``:

- ``sample.png`` and ``sample_fingerprint.npy``: the "camera" photo and its K;
- ``anonymized.png``: the result, without any metadata;
- ``report.json``: PSNR, SSIM, and the NCC and PCEs of input and output against K;
- ``figure.png``: input and output with their per-block NCC heatmaps.
"""

from __future__ import annotations

import argparse

NAME = "demo"
ORDER = 90
HELP = "anonymize the bundled sample photo with DIPPAS (the README's main job)"

#: Iteration cap of the demo: keeps it within a few minutes on a 2-core CPU.
DEMO_MAX_ITER = 2000


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ._common import positive_int

    p.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    p.add_argument("--size", type=positive_int, default=128,
                   help="side of the sample crop, 32-512 (default 128: a few minutes on a CPU)")
    p.add_argument("--max-iter", type=positive_int, default=DEMO_MAX_ITER,
                   help=f"inversion iteration cap (default {DEMO_MAX_ITER})")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="where the inversion runs (default auto)")
    p.add_argument("--block-size", type=int, default=16, help="assembly block size B (default 16)")
    p.add_argument("--blocks", type=positive_int, default=10, help="blocks averaged L (default 10)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    import shutil
    import time
    from pathlib import Path

    from ..anonymize import anonymize_dippas
    from ..assembly import image_block_ncc
    from ..errors import DippasInputError
    from ..figures import before_after_figure
    from ..io import atomic_write, save_fingerprint, save_image
    from ..report import anonymization_report, format_report
    from ..samples import camera_sample
    from ._common import bar_callback, iteration_postfix, print_json, progress_bar

    if not 32 <= args.size <= 512:
        raise DippasInputError(f"--size must be between 32 and 512, got {args.size}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    image, k = camera_sample(args.size)
    save_image(out / "sample.png", image, force=True)
    save_fingerprint(out / "sample_fingerprint.npy", k, force=True)
    run_dir = out / "run"
    if run_dir.exists():  # a fresh inversion every time: the demo shows the whole method
        shutil.rmtree(run_dir)
    t0 = time.perf_counter()
    with progress_bar(None, "DIPPAS demo", unit="it") as bar:
        anonymized = anonymize_dippas(image, k, preset="fast", device=args.device,
                                      max_iter=args.max_iter, block_size=args.block_size,
                                      blocks=args.blocks, run_dir=run_dir,
                                      progress=bar_callback(bar),
                                      on_iteration=iteration_postfix(bar))
    seconds = time.perf_counter() - t0
    save_image(out / "anonymized.png", anonymized, force=True)
    report = {"seconds": seconds, "preset": "fast", "block_size": args.block_size,
              "blocks": args.blocks, **anonymization_report(image, anonymized, k)}
    text = json.dumps(report, indent=2, default=float) + "\n"
    atomic_write(out / "report.json", lambda tmp: Path(tmp).write_text(text))
    b = args.block_size
    before_after_figure(out / "figure.png", image, anonymized, image_block_ncc(image, k, b),
                        image_block_ncc(anonymized, k, b), b, force=True,
                        title=f"DIPPAS (aware, fast preset): NCC {report['input']['ncc']:+.3f} "
                              f"-> {report['output']['ncc']:+.4f}, PSNR {report['psnr']:.1f} dB")
    if args.json:
        print_json(report)
    else:
        print(f"wrote {out}/anonymized.png, report.json and figure.png in {seconds:.0f} s")
        print(format_report(report))
    return 0
