"""``dippas demo``: the README's main job, a DIPPAS anonymization of the bundled sample.

The sample is scikit-image's public-domain *astronaut* with a simulated
camera fingerprint K applied (:mod:`dippas.samples`). The demo anonymizes it
with DIPPAS in PRNU-aware mode and the ``fast`` preset, with a progress bar,
and writes into ``--out``:

- ``sample.png`` and ``sample_fingerprint.npy``: the "camera" photo and its K;
- ``anonymized.png``: the result, without any metadata;
- ``report.json``: PSNR, SSIM, and the NCC and PCEs of input and output against K;
- ``figure.png``: input and output with their per-block NCC heatmaps;
- ``run/``: the DIPPAS run folder (a fresh inversion every time);
- ``.dippas-demo.json``: the marker that says the demo made this folder.

The demo only touches what it made itself. A folder with the marker is
reused: the demo's own files and its ``run/`` are replaced, nothing else.
A new or empty folder gets the marker. A non-empty folder without it is
refused, unless ``--force``, which lets the demo write its five files over
files of the same names; a ``run/`` the demo did not make is never deleted,
``--force`` or not.
"""

from __future__ import annotations

import argparse

NAME = "demo"
ORDER = 90
HELP = "anonymize the bundled sample photo with DIPPAS (the README's main job)"

#: Iteration cap of the demo: keeps it within a few minutes on a 2-core CPU.
DEMO_MAX_ITER = 2000
#: Snapshots are kept from this PSNR (dB), and every one of them is a candidate
#: (τ none): within the demo's short budget the inversion of the grainy
#: astronaut reaches about 35 dB, below the default τ of 38, and with τ 38 the
#: assembly falls back to the best-PSNR snapshots, which still correlate with
#: K (measured: NCC +0.025 at 35.8 dB, against the null scale 0.008).
DEMO_SAVE_PSNR = 30.0
#: The marker file of a folder the demo made.
MARKER = ".dippas-demo.json"
#: ``format`` field of the marker.
MARKER_FORMAT = "dippas-demo-output"
#: Files the demo writes (and may replace in a folder with its marker).
DEMO_FILES = ("sample.png", "sample_fingerprint.npy", "anonymized.png", "report.json", "figure.png")
#: The demo's run folder.
RUN_FOLDER = "run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..dip.device import DEVICE_CHOICES
    from ._common import positive_int
    from ._job_options import add_assembly_arguments

    p.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    p.add_argument("--size", type=positive_int, default=128,
                   help="side of the sample crop, 32-512 (default 128: a few minutes on a CPU)")
    p.add_argument("--max-iter", type=positive_int, default=DEMO_MAX_ITER,
                   help=f"inversion iteration cap (default {DEMO_MAX_ITER})")
    g = p.add_argument_group("DIPPAS (the defaults of dippas anonymize, except snapshots kept "
                             f"from {DEMO_SAVE_PSNR:g} dB and all of them candidates: "
                             "--psnr-threshold none)")
    add_assembly_arguments(g)
    g.add_argument("--device", choices=DEVICE_CHOICES, default=None,
                   help="where the inversion runs (default auto)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder the demo did not make (its five files "
                   "are replaced; a 'run' folder it did not make is never deleted)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _is_marked(out) -> bool:
    from ..jsonio import read_json

    marker = out / MARKER
    if not marker.is_file():
        return False
    try:
        return read_json(marker).get("format") == MARKER_FORMAT
    except ValueError:
        return False


def prepare_output(out, force: bool) -> None:
    """Make ``out`` the demo's folder, or refuse; see the module doc.

    Deletes the demo's previous ``run/`` only in a folder with the marker.

    Raises
    ------
    DippasInputError
        When ``out`` is a file, cannot be written, or holds files the demo
        did not make (without ``--force``), or a ``run`` the demo did not make.
    """
    import shutil

    from ..errors import DippasInputError
    from ..io import check_writable_folder
    from ..jsonio import write_json

    if out.exists() and not out.is_dir():
        raise DippasInputError(f"{out}: --out must be a folder")
    check_writable_folder(out)
    run_dir = out / RUN_FOLDER
    if out.is_dir() and any(out.iterdir()) and not _is_marked(out):
        if not force:
            raise DippasInputError(f"{out}: not empty and not made by dippas demo; choose another "
                                   "--out (or --force to write the demo's files there)")
        if run_dir.exists() or run_dir.is_symlink():
            raise DippasInputError(f"{run_dir}: exists and was not made by dippas demo; "
                                   "move it away or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / MARKER, {"format": MARKER_FORMAT, "files": [*DEMO_FILES, RUN_FOLDER + "/"]})
    if run_dir.is_symlink() or run_dir.is_file():
        run_dir.unlink()
    elif run_dir.is_dir():  # the demo's own run: a fresh inversion every time
        shutil.rmtree(run_dir)


def run(args: argparse.Namespace) -> int:
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
    from ..jobs import DippasJob

    job = dippas_job(args, DippasJob().with_values(save_psnr=DEMO_SAVE_PSNR, psnr_threshold=None))
    out = Path(args.out)
    prepare_output(out, args.force)
    image, k = camera_sample(args.size)
    save_image(out / "sample.png", image, force=True)
    save_fingerprint(out / "sample_fingerprint.npy", k, force=True)
    run_dir = out / RUN_FOLDER
    t0 = time.perf_counter()
    with progress_bar(None, "DIPPAS demo", unit="it") as bar:
        anonymized = job.run(image, k, run_dir, progress=bar_callback(bar),
                             on_iteration=iteration_postfix(bar))
    seconds = time.perf_counter() - t0
    save_image(out / "anonymized.png", anonymized, force=True)
    resolved = job.replace(warm_start=job.preset_parameters().warm_start)  # not the unset None
    report = {"seconds": seconds, "job": resolved.to_dict(),
              **anonymization_report(image, anonymized, k)}
    write_json(out / "report.json", report)
    b = job.block_size if isinstance(job.block_size, int) else args.size
    block_ncc_figure(out / "figure.png", image, anonymized, k, b, force=True,
                     title=f"DIPPAS ({job.mode}, {job.preset} preset): NCC {report['input']['ncc']:+.3f} "
                           f"-> {report['output']['ncc']:+.4f}, PSNR {report['psnr']:.1f} dB")
    return show_report(report, args.json,
                       f"wrote {out}/anonymized.png, report.json and figure.png in {seconds:.0f} s")
