"""``dippas assemble RUN -o OUT``: assemble a DIPPAS run folder into the anonymized image."""

from __future__ import annotations

import argparse

NAME = "assemble"
ORDER = 50
HELP = "assemble a DIPPAS run folder into the anonymized image (choose B, L, tau)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ._job_options import add_assembly_arguments
    from ._outputs import add_output_arguments

    p.add_argument("run", help="DIPPAS run folder (from dippas invert or dippas anonymize --run)")
    add_assembly_arguments(p)
    add_output_arguments(p)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..dip.store import RunStore
    from ..jobs import DippasJob
    from ._job_options import dippas_job
    from ._outputs import check_outputs, finish

    store = RunStore(args.run)
    job = dippas_job(args, DippasJob.from_run(store.params))
    aware = job.mode == "aware"
    check_outputs(args, [store.input_path], aware)
    result = job.assemble(args.run)
    original = np.asarray(store.input)
    k = np.asarray(store.fingerprint) if aware else None
    return finish(args, original, result.image, k, [], job.block_size,
                  title=f"DIPPAS assembly B={job.block_size} L={job.blocks}")
