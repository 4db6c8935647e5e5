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
    from ..dip.device import DEVICE_CHOICES
    from ._common import positive_int
    from ._job_options import add_assembly_arguments

    p.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    p.add_argument("--size", type=positive_int, default=128,
                   help="side of the sample crop, 32-512 (default 128: a few minutes on a CPU)")
    p.add_argument("--max-iter", type=positive_int, default=DEMO_MAX_ITER,
                   help=f"inversion iteration cap (default {DEMO_MAX_ITER})")
    g = p.add_argument_group("DIPPAS (the defaults of dippas anonymize)")
    add_assembly_arguments(g)
    g.add_argument("--device", choices=DEVICE_CHOICES, default=None,
                   help="where the inversion runs (default auto)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    import shutil
    import time
    from pathlib import Path

    from ..errors import DippasInputError
    from ..figures import block_ncc_figure
    from ..io import save_fingerprint, save_image
    from ..jsonio import write_json
    from ..report import anonymization_report
    from ..samples import camera_sample
    from ._common import bar_callback, iteration_postfix, progress_bar
    from ._job_options import dippas_job
    from ._outputs import show_report

    if not 32 <= args.size <= 512:
        raise DippasInputError(f"--size must be between 32 and 512, got {args.size}")
    job = dippas_job(args)
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
        anonymized = job.run(image, k, run_dir, progress=bar_callback(bar),
                             on_iteration=iteration_postfix(bar))
    seconds = time.perf_counter() - t0
    save_image(out / "anonymized.png", anonymized, force=True)
    report = {"seconds": seconds, "job": job.to_dict(), **anonymization_report(image, anonymized, k)}
    write_json(out / "report.json", report)
    b = job.block_size if isinstance(job.block_size, int) else args.size
    block_ncc_figure(out / "figure.png", image, anonymized, k, b, force=True,
                     title=f"DIPPAS ({job.mode}, {job.preset} preset): NCC {report['input']['ncc']:+.3f} "
                           f"-> {report['output']['ncc']:+.4f}, PSNR {report['psnr']:.1f} dB")
    return show_report(report, args.json,
                       f"wrote {out}/anonymized.png, report.json and figure.png in {seconds:.0f} s")
