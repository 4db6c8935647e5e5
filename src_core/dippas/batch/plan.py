"""Plan a batch (what to do, what to skip), run it on a Dask client, and summarize it.

>>> plan = plan_batch(["photos/"], "anon/", "inpainting")           # doctest: +SKIP
>>> with open_client(tasks=len(plan.pending)) as client:             # doctest: +SKIP
...     summary = run_batch(plan, client)
>>> print(format_summary(summary))                                  # doctest: +SKIP

or in one call, :func:`batch`. Output layout::

    OUT/<name>.png           the anonymized photo (no metadata), written atomically; nothing else

where ``<name>`` mirrors the input's name (:mod:`dippas.batch.inputs`).
Records, claims and DIPPAS run folders live in the batch's private state
folder (:mod:`dippas.batch.records`), never in ``OUT``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DippasInputError
from ..io import check_writable_folder
from .cluster import check_resources, open_client, task_resources
from .inputs import BatchInput, FingerprintSource, assign_output_names, expand_inputs
from .records import (
    batch_state,
    claim,
    claim_path,
    read_record,
    record_path,
    redo_reason,
    remove_stale_parts,
    sha256_file,
    task_key,
)
from .tasks import METHODS, ImageTask, one_line, run_task

#: Subfolder of the batch's state folder that holds DIPPAS run folders of photos in progress.
RUNS_FOLDER = "runs"
#: Redo reasons that would replace a file this batch cannot vouch for: only when claimed or forced.
_NOT_OURS = {"record missing": "exists and was not written by this batch",
             "output changed": "was changed since this batch wrote it"}
#: Default number of Dask retries of a task that raised (bad input is never retried).
DEFAULT_RETRIES = 2

__all__ = [
    "BatchPlan",
    "BatchSummary",
    "PlannedPhoto",
    "batch",
    "format_summary",
    "method_params",
    "plan_batch",
    "run_batch",
]


def method_params(method: str, *, blind: bool = False, sigma: float = 3.0, **options) -> dict:
    """The parameters of a method, checked; they (and the file hashes) key the records.

    Built through :mod:`dippas.jobs`, so batch photos get the defaults of
    ``dippas anonymize``.

    Parameters
    ----------
    method : {'dippas', 'inpainting'}
    blind : bool
        PRNU-blind DIPPAS.
    sigma : float
        Residual noise level of the report's NCC, 0-255 units.
    **options
        Fields of :class:`dippas.jobs.DippasJob` or :class:`dippas.jobs.InpaintingJob`
        (``None`` values take the defaults, except where None is a setting of
        its own: ``psnr_threshold`` and ``target_psnr``, see
        :attr:`dippas.jobs.DippasJob.NONE_IS_A_VALUE`).

    Returns
    -------
    dict
        The job's dict (without the device and workers, which do not change the output) and ``sigma``;
        for inpainting, the profile's values filled in and the whole ``recipe``.

    Raises
    ------
    DippasInputError
        On an unknown method or option value.
    """
    from ..jobs import JOB_TYPES

    if method not in JOB_TYPES:
        raise DippasInputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    nullable = getattr(JOB_TYPES[method], "NONE_IS_A_VALUE", ())
    options = {k: v for k, v in options.items() if v is not None or k in nullable}
    if method == "dippas":
        options["mode"] = "blind" if blind else "aware"
    elif blind:
        raise DippasInputError("blind applies to the dippas method only")
    job = JOB_TYPES[method].from_dict(options)
    params = job.to_dict()
    for key in getattr(job, "EXECUTION", ()):  # device, workers: not what the output depends on
        params.pop(key, None)
    if method == "inpainting":  # the profile's values are part of what the output depends on
        recipe = job.recipe().options()
        params.update({k: recipe[k] for k, v in params.items() if v is None and k in recipe})
        params["recipe"] = recipe
    return {**params, "sigma": float(sigma)}


@dataclass
class PlannedPhoto:
    """One photo of a plan.

    Attributes
    ----------
    input : BatchInput
    name : str
        Relative output name (``a/b.png``).
    output, record : Path
    status : {'pending', 'skipped', 'failed'}
    reason : str
        Why it runs (``new``, ``input changed``...), why it is skipped, or its error.
    task : ImageTask or None
        For pending photos.
    """

    input: BatchInput
    name: str
    output: Path
    record: Path
    status: str
    reason: str
    task: ImageTask | None = None


@dataclass
class BatchPlan:
    """What a batch will do: every photo with its status, and the shared settings.

    ``state`` is the batch's private state folder (records, claims, runs).
    """

    out: Path
    method: str
    params: dict
    device: str
    photos: list[PlannedPhoto] = field(default_factory=list)
    state: Path | None = None

    def _with(self, status: str) -> list[PlannedPhoto]:
        return [p for p in self.photos if p.status == status]

    @property
    def pending(self) -> list[PlannedPhoto]:
        """Photos to run."""
        return self._with("pending")

    @property
    def skipped(self) -> list[PlannedPhoto]:
        """Photos finished by an earlier run."""
        return self._with("skipped")

    @property
    def failed(self) -> list[PlannedPhoto]:
        """Photos that cannot run (e.g. no fingerprint for them)."""
        return self._with("failed")

    @property
    def resources(self) -> dict | None:
        """Dask resources each task requests."""
        return task_resources(self.method, self.device)


def _check_mode(method: str, params: Mapping, fps: FingerprintSource, items: Sequence[BatchInput]) -> None:
    from ..jobs import check_mode

    if method == "dippas":
        check_mode(params["mode"], fps.given or any(it.fingerprint is not None for it in items))


def _check_no_overwrite(items: Sequence[BatchInput], outputs: Sequence[Path]) -> None:
    sources = {it.source.resolve() for it in items}
    for o in outputs:
        if o.resolve() in sources:
            raise DippasInputError(f"{o}: an output would overwrite an input; choose another --out")


class _Hashes:
    """SHA-256 of files, each computed once per plan."""

    def __init__(self) -> None:
        self._cache: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        if path not in self._cache:
            try:
                self._cache[path] = sha256_file(path)
            except FileNotFoundError:
                raise DippasInputError(f"{path}: no such file") from None
            except (IsADirectoryError, PermissionError) as exc:
                raise DippasInputError(f"{path}: cannot be read ({exc.strerror})") from None
        return self._cache[path]


def _plan_one(item: BatchInput, output: Path, method: str, params: dict, device: str,
              fps: FingerprintSource, hashes: _Hashes, out: Path, state: Path,
              force: bool) -> PlannedPhoto:
    name = output.relative_to(out).as_posix()
    record = record_path(state, name)
    try:
        fp = fps.find(item)
        if fp is None and method == "dippas" and params["mode"] == "aware":
            raise DippasInputError(f"{item.source.name}: no fingerprint for this photo")
        input_sha = hashes(item.source)
        fp_sha = hashes(fp) if fp is not None else None
    except DippasInputError as exc:
        return PlannedPhoto(item, name, output, record, "failed", one_line(exc))
    key = task_key(method, params, input_sha, fp_sha)
    reason = redo_reason(read_record(record), output, key, input_sha, params)
    if reason is None:
        return PlannedPhoto(item, name, output, record, "skipped", "finished earlier (record matches)")
    if reason in _NOT_OURS and not force and not claim_path(state, name).exists():
        return PlannedPhoto(item, name, output, record, "failed",
                            f"{output} {_NOT_OURS[reason]}; use --force to replace it")
    run_dir = str(state / RUNS_FOLDER / key[:20]) if method == "dippas" else None
    task = ImageTask(name=name, source=str(item.source), output=str(output), record=str(record),
                     method=method, params=params, fingerprint=str(fp) if fp else None,
                     device=device, run_dir=run_dir)
    return PlannedPhoto(item, name, output, record, "pending", reason, task)


def plan_batch(inputs: Iterable[str | os.PathLike], out: str | os.PathLike, method: str, *,
               fingerprint: str | os.PathLike | None = None,
               fingerprints: str | os.PathLike | None = None, device: str = "auto",
               force: bool = False, state: str | os.PathLike | None = None,
               **options) -> BatchPlan:
    """Expand the inputs and decide, for every photo, whether it runs, is skipped, or cannot run.

    Parameters
    ----------
    inputs : iterable of str or path
        Files, folders, globs, CSV manifests (:func:`dippas.batch.expand_inputs`).
    out : path
        Output folder (created when the batch runs).
    method : {'dippas', 'inpainting'}
    fingerprint : path, optional
        One fingerprint for every photo.
    fingerprints : path, optional
        Folder or CSV mapping photos to fingerprints.
    device : str
        Torch device of DIPPAS (``cuda`` makes its tasks request a ``GPU`` resource).
    force : bool
        Replace existing outputs this batch did not write (or that changed since).
    state : path, optional
        Root of the private state folders (default :func:`dippas.userdirs.state_dir`).
    **options
        Method options (:func:`method_params`).

    Returns
    -------
    BatchPlan

    Raises
    ------
    DippasInputError
        Bad usage: no photos, unknown options, both or neither of
        fingerprints and ``blind`` for DIPPAS, outputs over inputs.
    """
    params = method_params(method, **options)
    out = Path(os.path.abspath(out))
    if out.exists() and not out.is_dir():
        raise DippasInputError(f"{out}: --out must be a folder")
    check_writable_folder(out)
    items = expand_inputs(inputs, exclude=[out])
    fps = FingerprintSource(fingerprint, fingerprints)
    _check_mode(method, params, fps, items)
    outputs = [out / n for n in assign_output_names(items)]
    _check_no_overwrite(items, outputs)
    hashes = _Hashes()
    folder = batch_state(out, state)
    photos = [_plan_one(it, o, method, params, device, fps, hashes, out, folder, force)
              for it, o in zip(items, outputs)]
    return BatchPlan(out, method, params, device, photos, folder)


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------

@dataclass
class BatchSummary:
    """What a batch did.

    Attributes
    ----------
    out : Path
    done, skipped, failed : list of dict
        One entry per photo: ``name``, ``input``, ``output`` and ``reason``
        (why it ran / why skipped) or ``error`` (one line); done photos also
        ``seconds`` and ``metrics``.
    seconds : float
        Wall time of the run.
    workers : int
        Workers of the cluster (0 when nothing ran).
    """

    out: Path
    done: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 0

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1."""
        return 1 if self.failed else 0

    @property
    def executed(self) -> int:
        """Photos anonymized by this run."""
        return sum(1 for d in self.done if d.get("executed", True))

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"out": str(self.out), "counts": {"done": len(self.done), "skipped": len(self.skipped),
                                                 "failed": len(self.failed),
                                                 "executed": self.executed},
                "seconds": self.seconds, "workers": self.workers, "done": self.done,
                "skipped": self.skipped, "failed": self.failed}


def _entry(photo: PlannedPhoto, **extra) -> dict:
    return {"name": photo.name, "input": str(photo.input.source), "output": str(photo.output), **extra}


def _outcome(fut) -> dict:
    """The result dict of a finished future, or a failed one from its exception."""
    try:
        if fut.status == "error":
            return {"status": "failed", "error": one_line(fut.exception())}
        if fut.status == "cancelled":
            return {"status": "failed", "error": "cancelled by the scheduler"}
        return fut.result()
    except Exception as exc:  # noqa: BLE001 - any fetch failure is this photo's failure
        return {"status": "failed", "error": one_line(exc)}


def _sweep(photos: Iterable[PlannedPhoto]) -> None:
    for p in photos:
        remove_stale_parts(p.output)
        remove_stale_parts(p.record)


def _record_result(summary: BatchSummary, photo: PlannedPhoto, res: Mapping) -> None:
    status = res.get("status")
    if status == "done":
        summary.done.append(_entry(photo, reason=photo.reason, seconds=res.get("seconds"),
                                   metrics=res.get("metrics", {}), executed=True))
    elif status == "finished-earlier":
        summary.done.append(_entry(photo, reason="finished by an earlier attempt", executed=False))
    else:
        summary.failed.append(_entry(photo, error=res.get("error", f"unexpected result {status!r}")))


def run_batch(plan: BatchPlan, client, *, retries: int = DEFAULT_RETRIES,
              progress: Callable[[int, int], None] | None = None) -> BatchSummary:
    """Run the pending photos of ``plan`` as Dask tasks, one per photo.

    Parameters
    ----------
    plan : BatchPlan
    client : distributed.Client or None
        None only when nothing is pending.
    retries : int
        Times Dask reruns a task that raised (bad input fails at once).
    progress : callable, optional
        ``progress(done, total)`` over the pending photos, as they complete.

    Returns
    -------
    BatchSummary
        Photos in plan order within each list.

    Raises
    ------
    DippasInputError
        When the tasks need a resource (GPU) no worker offers.
    """
    t0 = time.perf_counter()
    pending = plan.pending
    results: dict[int, Mapping] = {}
    workers = 0
    if pending:
        from distributed import as_completed

        check_resources(client, plan.resources)
        workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        plan.out.mkdir(parents=True, exist_ok=True)
        _sweep(pending)
        for p in pending:  # this batch may replace these outputs on a rerun, record or not
            claim(plan.state, p.name)
        batch_id = uuid.uuid4().hex[:8]
        futures = {client.submit(run_task, p.task, key=f"dippas-batch-{batch_id}-{i}", pure=False,
                                 retries=int(retries), resources=plan.resources): i
                   for i, p in enumerate(pending)}
        for fut in as_completed(list(futures)):
            results[futures.pop(fut)] = _outcome(fut)
            fut.release()
            if progress is not None:
                progress(len(results), len(pending))
        _sweep(pending)
        try:
            (plan.state / RUNS_FOLDER).rmdir()  # only when no unfinished DIPPAS run is left in it
        except OSError:
            pass
    return _summarize(plan, pending, results, time.perf_counter() - t0, workers)


def _summarize(plan: BatchPlan, pending: Sequence[PlannedPhoto], results: Mapping[int, Mapping],
               seconds: float, workers: int) -> BatchSummary:
    summary = BatchSummary(plan.out, seconds=seconds, workers=workers)
    index = {id(p): i for i, p in enumerate(pending)}
    for photo in plan.photos:
        if photo.status == "skipped":
            summary.skipped.append(_entry(photo, reason=photo.reason))
        elif photo.status == "failed":
            summary.failed.append(_entry(photo, error=photo.reason))
        else:
            _record_result(summary, photo, results.get(index[id(photo)], {"error": "not run"}))
    return summary


def batch(inputs: Iterable[str | os.PathLike], out: str | os.PathLike, method: str, *,
          client=None, scheduler: str | None = None, workers: int | None = None,
          threads_per_worker: int | None = None, retries: int = DEFAULT_RETRIES,
          progress: Callable[[int, int], None] | None = None, **plan_options) -> BatchSummary:
    """Plan and run a batch: the one-call API of ``dippas batch``.

    Parameters
    ----------
    inputs, out, method, **plan_options
        As :func:`plan_batch`.
    client : distributed.Client, optional
        Use this client; else one is opened with :func:`dippas.batch.open_client`
        (``scheduler``, ``workers``, ``threads_per_worker``) when something is pending.
    retries, progress
        As :func:`run_batch`.

    Returns
    -------
    BatchSummary
    """
    plan = plan_batch(inputs, out, method, **plan_options)
    if client is not None or not plan.pending:
        return run_batch(plan, client, retries=retries, progress=progress)
    with open_client(scheduler, workers, threads_per_worker, gpu=plan.resources is not None,
                     tasks=len(plan.pending)) as c:
        return run_batch(plan, c, retries=retries, progress=progress)


def _metric_text(metrics: Mapping) -> str:
    parts = []
    if metrics.get("psnr") is not None:
        parts.append(f"PSNR {metrics['psnr']:.2f} dB")
    if metrics.get("ssim") is not None:
        parts.append(f"SSIM {metrics['ssim']:.4f}")
    if metrics.get("ncc_output") is not None:
        parts.append(f"NCC {metrics['ncc_input']:+.4f} -> {metrics['ncc_output']:+.4f}")
    return ", ".join(parts)


def format_summary(summary: BatchSummary) -> str:
    """The summary as text: one line per photo (done, skipped, failed), then the counts."""
    lines = []
    for d in summary.done:
        detail = [d["reason"]]
        if d.get("seconds") is not None:
            detail.append(f"{d['seconds']:.2f} s")
        if d.get("metrics"):
            detail.append(_metric_text(d["metrics"]))
        lines.append(f"done     {d['name']}  ({'; '.join(detail)})")
    for d in summary.skipped:
        lines.append(f"skipped  {d['name']}  ({d['reason']})")
    for d in summary.failed:
        lines.append(f"FAILED   {d['name']}  {d['error']}")
    n = len(summary.done) + len(summary.skipped) + len(summary.failed)
    lines.append(f"{len(summary.done)} done, {len(summary.skipped)} skipped, {len(summary.failed)} "
                 f"failed of {n} photos in {summary.seconds:.1f} s; outputs in {summary.out}")
    return "\n".join(lines)
