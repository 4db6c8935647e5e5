"""``dippas evaluate DATASET --out DIR --method ...``: the paper's evaluation protocol."""

from __future__ import annotations

import argparse

NAME = "evaluate"
ORDER = 70
HELP = "run the evaluation protocol: ROC/AUC, PSNR/SSIM, trade-off C, edge-only AUC, plots"
DESCRIPTION = (
    "Anonymize every image of DATASET with every method setting (512x512 centre crops by "
    "default) and test it against every device fingerprint with NCC(W, gray(I)K): positives "
    "are images against their own device, negatives against every other one (paper 4.4). "
    "Writes results.json, results.csv, per_image.csv and plots/ into --out, and caches every "
    "anonymized image there, so a rerun (or a run after Ctrl-C) skips finished work."
)
EPILOG = """\
dataset (DATASET):
  ROOT/<device>/*.jpg + ROOT/<device>/prnu.npy         fingerprint given (.npy/.tif/.mat)
  ROOT/<device>/flatfield/*.jpg + .../natural/*.jpg    fingerprint estimated at the crop size
  ROOT/flatfield/<device>/*.jpg + ROOT/natural/*.jpg   pooled; device = name minus last _part
  FILE.csv with columns image,device,fingerprint       relative paths: from the CSV's folder
  --fingerprints DIR supplies/overrides fingerprints: <device>.npy, fingerprint_<device>.npy
  or the one fingerprint_<device>_*.npy (e.g. the golden reference files)

methods (--method NAME[:key=value,...], repeatable; '/' lists values to sweep):
  none                              the originals (attribution baseline)
  denoise[:denoiser=wavelet]        plain denoising (any denoiser of dippas.inpainting)
  {inpainting}
  {dippas}    (the defaults of dippas anonymize)
  dippas-blind[:...same...]         B, L, tau only re-assemble ONE cached inversion per image

grid (--grid KEY=V1,V2 ...): values for every selected method that has KEY and does
  not set it in its spec; every combination is one setting (one row of results.csv).

examples:
  dippas evaluate data/ --out ev --method none --method denoise --method inpainting:hole=3/5
  dippas evaluate data/ --out ev --method dippas-aware:preset=fast \\
      --grid B=32,64,whole L=1,10 tau=33,35
  dippas evaluate /work/shared/data/dresden --fingerprints /work/shared/data/reference \\
      --out ev --method none
"""


def _crop(text: str):
    from ..evaluation.dataset import parse_crop
    from ..errors import DippasInputError

    try:
        return parse_crop(text)
    except DippasInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _method_defaults(name: str) -> str:
    """``name[:key=default,...]`` from the method table (whose defaults are the jobs')."""
    from ..evaluation.methods import format_value, get_method

    m = get_method(name)
    return f"{name}[:" + ",".join(f"{q.name}={format_value(q.default)}" for q in m.params) + "]"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ._common import positive_float

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG.replace("{inpainting}", _method_defaults("inpainting")).replace(
        "{dippas}", _method_defaults("dippas-aware"))
    p.add_argument("dataset", help="dataset folder or CSV manifest (see below)")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="output folder: results, plots and the cache (created; reruns resume)")
    p.add_argument("--method", "-m", action="append", metavar="SPEC", dest="methods",
                   help="method spec, repeatable (default: none); see below")
    p.add_argument("--grid", nargs="+", metavar="KEY=V1,V2", default=None,
                   help="parameter values to sweep, e.g. B=32,64,whole L=1,10 tau=33,35")
    p.add_argument("--crop", type=_crop, default=512, metavar="N|full",
                   help="centre-crop images (and larger fingerprints) to NxN (default 512, "
                   "the paper's); 'full' for full size")
    p.add_argument("--fingerprints", metavar="DIR", default=None,
                   help="folder of fingerprints named by device (takes precedence)")
    p.add_argument("--sigma", type=positive_float, default=3.0,
                   help="assumed noise std of the residual, 0-255 units (default 3)")
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"),
                   help="torch device of the dippas methods (default auto)")
    p.add_argument("--edge-denoiser", default="nl_means", metavar="NAME",
                   help="denoiser of the edge mask of the edge-only test (default nl_means)")
    p.add_argument("--audit", action="store_true",
                   help="also score every per-image test of dippas audit against every device "
                   "(per test: AUC and match rates, in results.json; docs/audit.md)")
    p.add_argument("--no-plots", action="store_true", help="do not write the PNG plots")
    p.add_argument("--json", action="store_true", help="print the per-setting results as JSON")
    from ._execution import add_execution_arguments

    add_execution_arguments(p, retries=0, bad_input_note=False)  # with any of them: tasks run on Dask


class _Bars:
    """The overall bar and one reusable bar for the work inside the current task.

    Both are created on first use, so input errors, found before any work,
    print nothing but their one line.
    """

    def __init__(self) -> None:
        self.overall = None
        self.task = None

    def progress(self, done: int, total: int | None = None) -> None:
        """Overall ``progress(done, total)`` callback."""
        from ._common import bar_callback, progress_bar

        if self.overall is None:
            self.overall = progress_bar(total, "evaluate", unit="task")
        bar_callback(self.overall)(done, total)

    def task_progress(self, description: str):
        """A ``(done, total)`` callback for one task, on the reused inner bar."""
        from ._common import progress_bar

        if self.task is None:
            self.task = progress_bar(None, "image", unit="step", position=1)
            self.task.leave = False  # a transient inner bar
        bar = self.task
        bar.reset(total=None)
        bar.set_description(description[:60], refresh=False)

        def update(done, total=None, *args, **kwargs) -> None:
            if not isinstance(done, (int, float)):
                done = getattr(done, "iteration", None)
                if done is None:
                    return
            if isinstance(total, (int, float)) and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        return update

    def close(self) -> None:
        """Close the bars that were opened."""
        for bar in (self.task, self.overall):
            if bar is not None:
                bar.close()


def _dask_map_func(args: argparse.Namespace):
    """A context giving the Dask ``map_func`` with --scheduler, --workers or
    --threads-per-worker, else None (sequential)."""
    import contextlib

    if args.scheduler is None and args.workers is None and args.threads_per_worker is None:
        return contextlib.nullcontext(None)
    from ..batch import dask_map_func, open_client, task_resources
    from ._execution import check_execution_arguments, print_dashboard

    check_execution_arguments(args)

    @contextlib.contextmanager
    def ctx():
        with open_client(args.scheduler, args.workers, args.threads_per_worker,
                         gpu=args.device == "cuda") as client:
            print_dashboard(client)
            yield dask_map_func(client, retries=args.retries, resources=lambda t: task_resources(
                "dippas" if t.run_dir else t.method, args.device))

    return ctx()


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate, format_table
    from ..io import check_writable_folder
    from ._common import print_json

    check_writable_folder(args.out)  # before any work (issue 15)
    bars = _Bars()
    try:
        with _dask_map_func(args) as map_func:
            res = evaluate(args.dataset, args.methods or ["none"], args.out, grid=args.grid,
                           crop=args.crop, fingerprints=args.fingerprints, sigma=args.sigma,
                           device=args.device, edge_denoiser=args.edge_denoiser, audit=args.audit,
                           plots=not args.no_plots, map_func=map_func, progress=bars.progress,
                           task_progress=bars.task_progress)
    finally:
        bars.close()
    if args.json:
        print_json({"out": str(res.out), "work": res.work, "files": res.files,
                    "settings": [{k: v for k, v in s.items() if k != "matrices"}
                                 for s in res.summaries]})
    else:
        print(format_table(res.summaries))
        w = res.work
        print(f"\n{w['tasks']} image tasks: {w['anonymized']} anonymized, {w['cached']} from the "
              f"cache; {w['inversions']} DIPPAS inversions. Results in {res.out}")
    return 0
