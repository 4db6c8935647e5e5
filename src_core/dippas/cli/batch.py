"""``dippas batch INPUT... --out DIR --method dippas|inpainting``: many photos as Dask tasks."""

from __future__ import annotations

import argparse

NAME = "batch"
ORDER = 65
HELP = "anonymize many photos on Dask distributed (local or a cluster), resumable"
DESCRIPTION = (
    "Anonymize every photo named by INPUT (files, folders walked recursively, glob patterns, or "
    "CSV manifests with the columns image[,fingerprint]) into --out, one Dask task per photo: "
    "on a local cluster sized to this machine by default, or on an existing cluster with "
    "--scheduler. Each output OUT/<name>.png (the input's name mirrored under --out) is written "
    "atomically; --out holds nothing else. Its record (parameters, PSNR/SSIM and NCC, input path "
    "and SHA-256, timings) goes to a private state folder (--state), never beside the output, "
    "and marks it finished: a rerun skips finished photos and redoes those whose input, "
    "fingerprint or parameters changed. An existing file this batch did not write is never "
    "replaced without --force. A failing photo is retried (--retries; bad input is not) and "
    "reported; the others carry on. Exit code 0: all done; 1: some failed; 2: bad usage or no "
    "inputs."
)
EPILOG = """\
cluster:
  default          LocalCluster, one worker process per core (--workers, --threads-per-worker)
  --scheduler A    an existing scheduler: tcp://host:8786, or the file of --scheduler-file
                   dask scheduler --scheduler-file sched.json
                   dask worker --scheduler-file sched.json --nworkers 4 --nthreads 1
  GPU workers      CUDA_VISIBLE_DEVICES=0 dask worker ADDR --nworkers 1 --nthreads 1 --resources GPU=1
                   with --method dippas --device cuda every task requests GPU=1 (one per GPU)

names: OUT mirrors the inputs' names with .png; colliding names get _<suffix>, then -<hash>
       (see docs/batch.md)
state: records, claims and DIPPAS runs of OUT live in STATE/batch/<hash of OUT's path>/, mode 0700;
       STATE is --state, else $DIPPAS_STATE_DIR, else the per-user state folder
       (~/.local/state/napari-dippas on Linux)

examples:
  dippas batch photos/ --out anon/ --method inpainting
  dippas batch 'shots/**/*.jpg' --out anon/ --method dippas --fingerprints prints/ --workers 2
  dippas batch list.csv --out anon/ --method dippas --blind --device cuda --scheduler tcp://gpu1:8786
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..batch.plan import DEFAULT_RETRIES
    from ._common import existing_file, positive_float
    from ._execution import add_execution_arguments
    from ._job_options import add_dippas_arguments, add_inpainting_arguments

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="photo, folder, glob pattern or CSV manifest (image[,fingerprint])")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="output folder: one <name>.png per photo, nothing else (created; reruns resume)")
    p.add_argument("--force", action="store_true",
                   help="replace existing files in --out that this batch did not write")
    p.add_argument("--state", default=None, metavar="DIR",
                   help="root of the private state folder (records, runs); default "
                   "$DIPPAS_STATE_DIR or the per-user state folder; on a cluster, a folder "
                   "every worker can write")
    p.add_argument("--method", choices=("dippas", "inpainting"), default="dippas",
                   help="anonymization method (default dippas)")
    p.add_argument("--fingerprint", "-k", type=existing_file, default=None,
                   help="one camera fingerprint K for every photo (.npy, .tif, .mat)")
    p.add_argument("--fingerprints", default=None, metavar="DIR|CSV",
                   help="fingerprints per photo: a CSV image,fingerprint or a folder "
                   "(<stem>, <folder name> or <stem minus _part>, as <key>.npy or "
                   "fingerprint_<key>[_*].npy)")
    p.add_argument("--sigma", type=positive_float, default=3.0,
                   help="residual noise level of the NCC in the records, 0-255 units (default 3)")
    add_dippas_arguments(p.add_argument_group("DIPPAS"),
                         blind_help="PRNU-blind: inject each photo's own residual instead of K",
                         device_help="where inversions run (default auto); cuda: tasks request "
                         "a GPU resource")
    add_inpainting_arguments(p.add_argument_group("inpainting"))
    add_execution_arguments(p, DEFAULT_RETRIES)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _options(args: argparse.Namespace) -> dict:
    """The method options given on the command line (the jobs fill in the rest)."""
    from ._job_options import dippas_options, inpainting_job

    if args.method == "dippas":
        options = dippas_options(args)
        options.pop("device", None)  # not part of the job's key; plan_batch takes it apart
        return {"blind": args.blind, **options}
    return {k: v for k, v in inpainting_job(args).to_dict().items() if k != "method"}


def _run_pending(args: argparse.Namespace, plan):
    from ..batch import open_client, run_batch
    from ._common import bar_callback, progress_bar
    from ._execution import print_dashboard

    with open_client(args.scheduler, args.workers, args.threads_per_worker,
                     gpu=plan.resources is not None, tasks=len(plan.pending)) as client:
        print_dashboard(client)
        with progress_bar(len(plan.pending), "batch", unit="photo") as bar:
            return run_batch(plan, client, retries=args.retries, progress=bar_callback(bar))


def run(args: argparse.Namespace) -> int:
    import sys

    from ..batch import format_summary, plan_batch, run_batch
    from ._common import print_json
    from ._execution import check_execution_arguments
    from ._job_options import refuse_other_method_options

    refuse_other_method_options(args, args.method)
    check_execution_arguments(args)
    plan = plan_batch(args.inputs, args.out, args.method, fingerprint=args.fingerprint,
                      fingerprints=args.fingerprints, device=args.device or "auto",
                      sigma=args.sigma, force=args.force, state=args.state, **_options(args))
    print(f"{len(plan.photos)} photos: {len(plan.pending)} to run, {len(plan.skipped)} finished "
          f"earlier, {len(plan.failed)} cannot run", file=sys.stderr)
    summary = _run_pending(args, plan) if plan.pending else run_batch(plan, None)
    if args.json:
        print_json(summary.to_dict())
    else:
        print(format_summary(summary))
    return summary.exit_code
