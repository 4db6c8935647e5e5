"""Batch anonymization on Dask distributed: one task per photo, resumable, exactly-once outputs.

The execution layer of ``dippas batch`` and ``dippas evaluate --scheduler/--workers``.
Dask is imported lazily: importing this package does not need it.

Modules
-------
inputs
    INPUT arguments (files, folders, globs, CSV manifests) -> photos,
    mirrored output names, fingerprints per photo.
records
    File hashes, the per-photo JSON record, the skip rule, stale temp files.
tasks
    :class:`ImageTask` and :func:`run_task`, the function workers run.
cluster
    Dask clients (local cluster or ``--scheduler``), GPU resources,
    the dashboard link, and ``map_func`` for :func:`dippas.evaluation.evaluate`.
plan
    :func:`plan_batch`, :func:`run_batch`, :func:`batch` and the summary.
tiles
    The tiles of one DIPPAS run as Dask tasks: :func:`invert_tiles`,
    :func:`invert_on_local_cluster` (``--workers`` of ``anonymize`` and ``invert``).

See ``docs/batch.md``.
"""

from .cluster import dashboard_link, dask_map_func, open_client, task_resources
from .inputs import BatchInput, FingerprintSource, assign_output_names, expand_inputs
from .records import read_record, redo_reason, sha256_file, task_key
from .plan import (
    BatchPlan,
    BatchSummary,
    PlannedPhoto,
    batch,
    format_summary,
    method_params,
    plan_batch,
    run_batch,
)
from .tasks import ImageTask, run_task
from .tiles import invert_on_local_cluster, invert_tiles

__all__ = [
    "BatchInput",
    "BatchPlan",
    "BatchSummary",
    "FingerprintSource",
    "ImageTask",
    "PlannedPhoto",
    "assign_output_names",
    "batch",
    "dashboard_link",
    "dask_map_func",
    "expand_inputs",
    "format_summary",
    "invert_on_local_cluster",
    "invert_tiles",
    "method_params",
    "open_client",
    "plan_batch",
    "read_record",
    "redo_reason",
    "run_batch",
    "run_task",
    "sha256_file",
    "task_key",
    "task_resources",
]
