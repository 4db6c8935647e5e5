"""The per-photo task: a picklable :class:`ImageTask` and the module-level :func:`run_task`.

Workers import this module by name, so :func:`run_task` must stay a plain
module-level function of plain data. One call:

1. hashes the photo (and the fingerprint) and returns at once when the
   record already says this exact work is finished (a task rerun by Dask
   after a worker loss redoes nothing);
2. deletes a stale record, so an old record never vouches for a new output;
3. loads, anonymizes, writes the output image atomically;
4. measures PSNR, SSIM (and NCC/PCE against the fingerprint when known);
5. writes the record atomically, last.

Bad input (:class:`dippas.DippasInputError`) is returned as a failed
result rather than raised, so Dask does not retry it; any other exception
is raised, and Dask retries the task up to ``retries`` times.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import DippasInputError, one_line
from .records import (
    RECORD_FORMAT,
    RECORD_VERSION,
    read_record,
    redo_reason,
    sha256_file,
    task_key,
    write_record,
)

#: Anonymization methods of a batch.
METHODS = ("dippas", "inpainting")

__all__ = ["METHODS", "ImageTask", "one_line", "run_task"]


@dataclass(frozen=True)
class ImageTask:
    """Everything one photo's work needs; plain data, picklable.

    Attributes
    ----------
    name : str
        Display name (the relative output name).
    source : str
        The photo.
    output, record : str
        The output image and its record.
    method : {'dippas', 'inpainting'}
    params : dict
        Parameters that determine the output and the metrics (part of the key).
    fingerprint : str or None
        Fingerprint file: DIPPAS-aware injection, and the NCC of the report.
    device : str
        Torch device of DIPPAS (not part of the key).
    run_dir : str or None
        DIPPAS run folder: a retried task resumes the inversion from it;
        deleted once the photo is finished.
    """

    name: str
    source: str
    output: str
    record: str
    method: str
    params: dict = field(default_factory=dict)
    fingerprint: str | None = None
    device: str = "auto"
    run_dir: str | None = None


def _hash_input(path: str) -> str:
    try:
        return sha256_file(path)
    except FileNotFoundError:
        raise DippasInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DippasInputError(f"{path}: is a folder, expected a file") from None


def _load(task: ImageTask) -> tuple[np.ndarray, np.ndarray | None]:
    from ..io import load_fingerprint, load_image
    from ..validation import check_fingerprint, check_image

    image = check_image(load_image(task.source), name=task.source)
    k = None
    if task.fingerprint is not None:
        k = check_fingerprint(load_fingerprint(task.fingerprint), shape=image.shape[:2],
                              name=task.fingerprint)
    return image, k


def _compute(task: ImageTask, image: np.ndarray, k: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Run the task's job: ``(original as compared, anonymized)``."""
    from ..dtype import as_rgb_uint8
    from ..jobs import DippasJob, job_from_dict

    params = {key: v for key, v in task.params.items() if key not in ("sigma", "recipe")}
    job = job_from_dict(params)
    if isinstance(job, DippasJob):
        job = job.replace(device=task.device)
        image = as_rgb_uint8(image)
        k = None if job.mode == "blind" else k
        if task.run_dir is not None:
            Path(task.run_dir).parent.mkdir(parents=True, exist_ok=True)
    return image, job.run(image, k, task.run_dir)


def _save_output(path: str, image: np.ndarray, inputs: list[str]) -> Path:
    """Write the output image atomically, without metadata, never over an input."""
    from ..io import save_image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_image(path, image, inputs=inputs, force=True)


def _metrics(original: np.ndarray, anonymized: np.ndarray, k: np.ndarray | None, sigma: float) -> dict:
    from ..report import anonymization_report

    rep = anonymization_report(original, anonymized, k, sigma)
    out = {"psnr": rep["psnr"], "ssim": rep["ssim"]}
    if k is not None:
        for side in ("input", "output"):
            s = rep[side]
            out.update({f"ncc_{side}": s["ncc"], f"pce_{side}": s["pce"],
                        f"match_{side}": bool(s["match"])})
        out["ncc_reduction"] = rep["ncc_reduction"]
    return out


def _where() -> dict:
    info = {"host": socket.gethostname(), "pid": os.getpid(), "worker": None}
    try:
        from distributed import get_worker

        info["worker"] = get_worker().address
    except (ImportError, ValueError):
        pass
    return info


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _record(task: ImageTask, key: str, input_sha: str, fp_sha: str | None, image: np.ndarray,
            out_path: Path, metrics: dict, timings: dict, started: str) -> dict:
    from .. import __version__

    return {
        "format": RECORD_FORMAT, "version": RECORD_VERSION, "dippas_version": __version__,
        "key": key, "method": task.method, "params": task.params,
        "input": {"path": task.source, "sha256": input_sha, "size": os.path.getsize(task.source),
                  "shape": list(image.shape), "dtype": str(image.dtype)},
        "fingerprint": None if task.fingerprint is None else {"path": task.fingerprint,
                                                              "sha256": fp_sha},
        "output": {"file": out_path.name, "sha256": sha256_file(out_path),
                   "size": out_path.stat().st_size},
        "metrics": metrics, "timings": timings,
        "execution": {**_where(), "device": task.device, "started": started, "finished": _now()},
    }


def _result(task: ImageTask, status: str, **extra) -> dict:
    return {"name": task.name, "source": task.source, "output": task.output, "status": status, **extra}


def _work(task: ImageTask) -> dict:
    t0 = time.perf_counter()
    started = _now()
    input_sha = _hash_input(task.source)
    fp_sha = _hash_input(task.fingerprint) if task.fingerprint is not None else None
    key = task_key(task.method, task.params, input_sha, fp_sha)
    if redo_reason(read_record(task.record), task.output, key) is None:
        return _result(task, "finished-earlier")
    Path(task.record).unlink(missing_ok=True)  # an old record must not vouch for a new output
    image, k = _load(task)
    t1 = time.perf_counter()
    original, anonymized = _compute(task, image, k)
    t2 = time.perf_counter()
    out_path = _save_output(task.output, anonymized,
                            [task.source] + ([task.fingerprint] if task.fingerprint else []))
    t3 = time.perf_counter()
    metrics = _metrics(original, anonymized, k, task.params.get("sigma", 3.0))
    t4 = time.perf_counter()
    timings = {"load_s": t1 - t0, "anonymize_s": t2 - t1, "write_s": t3 - t2, "metrics_s": t4 - t3}
    rec = _record(task, key, input_sha, fp_sha, image, out_path, metrics, timings, started)
    rec["timings"]["total_s"] = time.perf_counter() - t0
    write_record(task.record, rec)
    if task.run_dir is not None:
        shutil.rmtree(task.run_dir, ignore_errors=True)
    return _result(task, "done", seconds=rec["timings"]["total_s"], metrics=metrics)


def run_task(task: ImageTask) -> dict:
    """Anonymize one photo into its output and record (see the module doc).

    Parameters
    ----------
    task : ImageTask

    Returns
    -------
    dict
        ``name``, ``source``, ``output``, ``status`` (``'done'``,
        ``'finished-earlier'`` when a valid record was already there, or
        ``'failed'`` on bad input, with ``error``, one line), and for
        ``'done'`` ``seconds`` and ``metrics``.

    Raises
    ------
    Exception
        Anything but bad input (Dask retries those).
    """
    try:
        return _work(task)
    except DippasInputError as exc:
        return _result(task, "failed", error=one_line(exc))
