"""Execution options of the commands that run on Dask (``batch`` and ``evaluate``)."""

from __future__ import annotations

import argparse


def add_execution_arguments(p: argparse.ArgumentParser, retries: int, bad_input_note: bool = True) -> None:
    """--scheduler, --workers, --threads-per-worker, --retries (shared with ``evaluate``)."""
    from ._common import non_negative_int, positive_int

    g = p.add_argument_group("execution (Dask distributed)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing Dask cluster: scheduler address (tcp://host:8786) "
                   "or scheduler file; default: a local cluster")
    g.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="worker processes of the local cluster (default: one per core; at most "
                   "one per core)")
    g.add_argument("--threads-per-worker", type=positive_int, default=None, metavar="T",
                   help="tasks run at once by each local worker (default 1)")
    g.add_argument("--retries", type=non_negative_int, default=retries, metavar="R",
                   help=f"times a failed task is retried (default {retries}"
                   + ("; bad input never is)" if bad_input_note else ")"))


def check_execution_arguments(args: argparse.Namespace) -> None:
    """Refuse local-cluster sizes together with --scheduler, before any work."""
    from ..batch.cluster import check_local_size, check_scheduler
    from ..errors import DippasInputError

    if args.scheduler and (args.workers is not None or args.threads_per_worker is not None):
        raise DippasInputError("--workers and --threads-per-worker size the local cluster; "
                               "not with --scheduler")
    if args.scheduler:
        check_scheduler(args.scheduler)
    else:
        check_local_size(args.workers, args.threads_per_worker)


def print_dashboard(client) -> None:
    """Print the Dask dashboard link on stderr, when the scheduler runs one."""
    import sys

    from ..batch import dashboard_link

    link = dashboard_link(client)
    if link:
        print(f"Dask dashboard: {link}", file=sys.stderr)
