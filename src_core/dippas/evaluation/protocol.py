"""Run the protocol: tasks, the per-image work function and the orchestration (keys: keys.py, files: tables.py).

The unit of work is :func:`anonymize_one`, a plain function of a picklable
:class:`Task` (one image, one setting) returning a plain ``dict`` record, so
that the tasks can be mapped on any executor (``map_func``), e.g. Dask
distributed::

    evaluate(..., map_func=lambda f, ts: client.gather(client.map(f, list(ts))))

DIPPAS settings that differ only in their assembly parameters (``B``,
``L``, ``tau``) share one inversion per image: a first stage maps
:func:`invert_one` over one task per (image, inversion), and
:func:`anonymize_one` then only assembles.

Output folder::

    OUT/results.json, results.csv, per_image.csv
    OUT/plots/*.png
    OUT/fingerprints/            estimated fingerprints (cached)
    OUT/cache/<crop>/<setting>/<image>.png, .json   anonymized image and its scores
    OUT/cache/<crop>/edges-<denoiser>/<image>.png   edge mask of the original
    OUT/runs/<crop>/<inversion>/<image>/            DIPPAS run folders

Every cached file is written atomically, and the record (``.json``) after
its image, so an interrupted run loses nothing finished and a rerun skips
it. The cache key of an image is the method with all its parameters, the
image file's content hash and the crop (for ``dippas-aware`` also the
device's fingerprint file); the scores are also keyed by the
fingerprints, sigma and edge denoiser, and recomputed (without
re-anonymizing) when those change.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import Cancelled
from ..jsonio import write_json
from .dataset import (
    Dataset,
    check_sizes,
    crop_array,
    crop_name,
    load_dataset,
    resolve_fingerprints,
)
from .keys import file_digest, image_key, read_record, safe_name, score_key
from .methods import (
    Setting,
    expand_settings,
    get_method,
    invert_dippas,
    parse_grid,
    run_method,
)
from .tables import write_outputs

ProgressFactory = Callable[[str], Callable[[int, int | None], None] | None]
MapFunc = Callable[[Callable, Iterable], Iterable]


@dataclass(frozen=True)
class Task:
    """One image with one setting: everything :func:`anonymize_one` needs, picklable.

    Attributes
    ----------
    image : str
        Path of the original image.
    image_id, image_key : str
        Name in the results; cache name (stem and content hash).
    device : str
        The image's device.
    method : str
    params : tuple of (str, object)
        Every parameter of the setting.
    crop : int or None
        Centre crop side, None for the full image.
    fingerprints : tuple of (str, str)
        (device, fingerprint path) for every device, in order.
    sigma : float
        Residual noise level, 0-255 units.
    edge_denoiser : str
        Denoiser of the edge mask.
    out_image, out_record, edge_mask : str
        Cache files: anonymized PNG, record JSON, edge mask PNG.
    run_dir : str or None
        DIPPAS run folder.
    torch_device : str
        Device of DIPPAS: auto, cuda, mps or cpu.
    score_key : str
        Digest of what the scores depend on besides the image.
    """

    image: str
    image_id: str
    image_key: str
    device: str
    method: str
    params: tuple
    crop: int | None
    fingerprints: tuple
    sigma: float
    edge_denoiser: str
    out_image: str
    out_record: str
    edge_mask: str
    run_dir: str | None = None
    torch_device: str = "auto"
    audit: bool = False
    score_key: str = ""

    @property
    def setting(self) -> Setting:
        """The setting of this task."""
        return Setting(self.method, tuple(self.params))


@dataclass
class EvaluationResult:
    """What :func:`evaluate` returns.

    Attributes
    ----------
    out : Path
        The output folder.
    summaries : list of dict
        One per setting (the rows of ``results.csv``, plus matrices).
    records : list of dict
        One per (setting, image).
    work : dict
        Counts: ``tasks``, ``anonymized``, ``scored``, ``cached``, ``inversions``.
    files : dict
        Name -> path of the written outputs.
    """

    out: Path
    summaries: list[dict]
    records: list[dict]
    work: dict
    files: dict = field(default_factory=dict)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

class _FingerprintCache:
    """Fingerprints by (file, crop shape), loaded once per process, bounded in bytes."""

    def __init__(self, max_bytes: int = 512 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()

    def get(self, path: str, shape: tuple[int, int]) -> np.ndarray:
        from ..io import load_fingerprint

        st = os.stat(path)
        key = (os.path.realpath(path), st.st_mtime_ns, tuple(shape))
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        k = np.ascontiguousarray(crop_array(load_fingerprint(path), None, shape))
        self._items[key] = k
        while sum(v.nbytes for v in self._items.values()) > self.max_bytes and len(self._items) > 1:
            self._items.popitem(last=False)
        return k


_FINGERPRINTS = _FingerprintCache()


def _fingerprints_for(task: Task, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    return {dev: _FINGERPRINTS.get(p, shape) for dev, p in task.fingerprints}


def _check_cancel(cancel) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled("evaluation cancelled")


# --------------------------------------------------------------------------
# Per-image work
# --------------------------------------------------------------------------

def load_original(task: Task) -> np.ndarray:
    """The original image of ``task``, centre-cropped."""
    from ..io import load_image

    return crop_array(load_image(task.image), task.crop)


def edge_mask_for(task: Task, original: np.ndarray) -> np.ndarray:
    """The edge mask of the original crop (the paper's edge-only score, docs/evaluation.md), computed once and cached as a PNG."""
    from ..inpainting.edges import edge_mask
    from ..io import load_image, save_image

    path = Path(task.edge_mask)
    if path.is_file():
        mask = load_image(path) > 127
        if mask.shape == original.shape[:2]:
            return mask
    mask = edge_mask(original, denoiser=task.edge_denoiser)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(path, mask.astype(np.uint8) * np.uint8(255), force=True)
    return mask


def invert_one(task: Task, progress=None, cancel=None) -> str:
    """Run (or resume, or skip when complete) the DIPPAS inversion of a task's image.

    Returns
    -------
    str
        The run folder.
    """
    _check_cancel(cancel)
    original = load_original(task)
    k = None
    if task.method == "dippas-aware":
        k = _fingerprints_for(task, original.shape[:2])[task.device]
    run = invert_dippas(task.setting, original, k, task.run_dir, task.torch_device, progress, cancel)
    return str(run)


def _anonymized(task: Task, original: np.ndarray, progress, cancel) -> tuple[np.ndarray, bool, float]:
    """The anonymized image, from the cache or computed and cached: (image, computed, seconds)."""
    from ..io import load_image, save_image

    path = Path(task.out_image)
    if path.is_file():
        return load_image(path), False, 0.0
    t0 = time.perf_counter()
    k = None
    if task.method == "dippas-aware":
        k = _fingerprints_for(task, original.shape[:2])[task.device]
    anon = run_method(task.setting, original, fingerprint=k, run_dir=task.run_dir,
                      device=task.torch_device, progress=progress, cancel=cancel)
    seconds = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(path, anon, force=True)
    return anon, True, seconds


def anonymize_one(task: Task, progress=None, cancel=None) -> dict:
    """Anonymize one image with one setting and score it, using and filling the cache.

    Parameters
    ----------
    task : Task
    progress : callable, optional
        ``progress(done, total)`` within the image (method-dependent).
    cancel : CancelToken, optional

    Returns
    -------
    dict
        The record: ``image``, ``image_id``, ``device``, ``method``,
        ``setting``, ``slug``, ``params``, ``crop``, ``ncc``, ``pce``,
        ``ncc_edges`` (device -> value), ``psnr``, ``ssim``,
        ``edge_fraction``, ``out_image``, ``seconds_anonymize``,
        ``seconds_score``, ``score_key``; and, not stored, ``cached`` (the
        record came from the cache), ``anonymized`` (the method ran now) and
        ``scored`` (the scores were computed now).
    """
    from .scoring import score_image

    _check_cancel(cancel)
    rec_path = Path(task.out_record)
    if rec_path.is_file() and Path(task.out_image).is_file():
        rec = read_record(rec_path)
        if rec is not None and rec.get("score_key") == task.score_key:
            return {**rec, "cached": True, "anonymized": False, "scored": False}
    original = load_original(task)
    anon, computed, seconds = _anonymized(task, original, progress, cancel)
    t0 = time.perf_counter()
    mask = edge_mask_for(task, original)
    scores = score_image(anon, original, _fingerprints_for(task, anon.shape[:2]), mask, task.sigma,
                         audit=task.audit)
    setting = task.setting
    rec = {
        "image": task.image, "image_id": task.image_id, "image_key": task.image_key,
        "device": task.device, "method": task.method, "setting": setting.label,
        "slug": setting.slug, "params": dict(task.params), "crop": task.crop,
        **scores,
        "out_image": task.out_image,
        "seconds_anonymize": seconds, "seconds_score": time.perf_counter() - t0,
        "score_key": task.score_key,
    }
    if not computed:
        old = read_record(rec_path)
        rec["seconds_anonymize"] = old.get("seconds_anonymize") if old else None
    write_json(rec_path, rec)
    return {**rec, "cached": False, "anonymized": computed, "scored": True}


# --------------------------------------------------------------------------
# Building and running tasks
# --------------------------------------------------------------------------

def build_tasks(ds: Dataset, settings: Sequence[Setting], fingerprints: Mapping[str, Path],
                out: Path, crop: int | None, sigma: float = 3.0, edge_denoiser: str = "nl_means",
                device: str = "auto", audit: bool = False) -> list[Task]:
    """One task per (setting, image), settings outer, images in dataset order."""
    cdir = Path(out) / "cache" / crop_name(crop)
    keys = {item.path: image_key(item.path) for item in ds.items}
    fps = tuple((d, str(p)) for d, p in fingerprints.items())
    skey = score_key(fingerprints, sigma, edge_denoiser, audit)
    tasks = []
    for s in settings:
        for item in ds.items:
            base = key = keys[item.path]
            if s.method == "dippas-aware":  # the output also depends on the device's fingerprint
                key = f"{base}-k{file_digest(fingerprints[item.device])}"
            run_dir = None
            if get_method(s.method).is_dippas:
                run_dir = str(Path(out) / "runs" / crop_name(crop) / s.inversion.slug / key)
            tasks.append(Task(
                image=str(item.path), image_id=item.image_id, image_key=base, device=item.device,
                method=s.method, params=s.params, crop=crop, fingerprints=fps, sigma=float(sigma),
                edge_denoiser=edge_denoiser,
                out_image=str(cdir / s.slug / f"{key}.png"),
                out_record=str(cdir / s.slug / f"{key}.json"),
                edge_mask=str(cdir / f"edges-{safe_name(edge_denoiser)}" / f"{base}.png"),
                run_dir=run_dir, torch_device=device, score_key=skey, audit=bool(audit),
            ))
    return tasks


def inversion_tasks(tasks: Sequence[Task]) -> list[Task]:
    """One task per DIPPAS run folder that some task still needs (its image not yet cached)."""
    out: dict[str, Task] = {}
    for t in tasks:
        if t.run_dir is None or t.run_dir in out or Path(t.out_image).is_file():
            continue
        out[t.run_dir] = t
    return list(out.values())


def _sequential(func: Callable, tasks: Sequence[Task], describe: Callable[[Task], str],
                task_progress: ProgressFactory | None, cancel) -> Iterable:
    for t in tasks:
        _check_cancel(cancel)
        cb = task_progress(describe(t)) if task_progress is not None else None
        yield func(t, progress=cb, cancel=cancel)


def _mapped(func, tasks, describe, map_func, task_progress, cancel) -> Iterable:
    if map_func is None:
        return _sequential(func, tasks, describe, task_progress, cancel)
    return map_func(func, tasks)


def evaluate(source: str | os.PathLike | Dataset, methods: Sequence[str] = ("none",),
             out: str | os.PathLike = "evaluation", *, grid: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
             crop: int | None = 512, fingerprints: str | os.PathLike | None = None,
             sigma: float = 3.0, device: str = "auto", edge_denoiser: str = "nl_means",
             audit: bool = False, plots: bool = True, map_func: MapFunc | None = None,
             progress: Callable[[int, int], None] | None = None,
             task_progress: ProgressFactory | None = None, cancel=None) -> EvaluationResult:
    """Run the evaluation protocol of the paper (§4.4) and write its outputs.

    Parameters
    ----------
    source : path or Dataset
        Dataset folder or CSV manifest (:func:`dippas.evaluation.load_dataset`).
    methods : sequence of str
        Method specs, e.g. ``"none"``, ``"inpainting:hole=3/5"``,
        ``"dippas-aware:preset=fast"`` (:mod:`dippas.evaluation.methods`).
    out : path
        Output folder (created); holds the cache, so a rerun resumes.
    grid : mapping or sequence of str, optional
        Values swept for the methods' parameters, e.g.
        ``{"B": ["32", "whole"], "L": ["1", "10"]}`` or ``["B=32,whole", "L=1,10"]``.
    crop : int or None, optional
        Centre crop side (default 512, the paper's); None: full images.
    fingerprints : path, optional
        Folder of fingerprints by device name, taking precedence over the dataset's.
    sigma : float, optional
        Residual noise level in 0-255 units (default 3).
    device : str, optional
        Torch device of DIPPAS: auto, cuda, mps or cpu.
    edge_denoiser : str, optional
        Denoiser of the edge mask (default ``'nl_means'``, the inpainting default).
    audit : bool, optional
        Also score the per-image tests of ``dippas audit`` (``audit`` in each
        summary: per test, the AUC and the match rates).
    plots : bool, optional
        Write the PNG plots (default True).
    map_func : callable, optional
        ``map_func(func, tasks) -> iterable of results``, e.g. an executor's
        map; default: sequential, with per-image progress.
    progress : callable, optional
        ``progress(done, total)`` over all tasks (inversions and images).
    task_progress : callable, optional
        ``task_progress(description)`` returns a ``(done, total)`` callback
        for the work inside one task (sequential mode only).
    cancel : CancelToken, optional
        Checked between tasks.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    DippasInputError
        On bad methods, parameters or dataset (see :func:`load_dataset`).
    """
    if grid is not None and not isinstance(grid, Mapping):
        grid = parse_grid(grid)
    settings = expand_settings(list(methods), grid)
    from ..inpainting.denoisers import get_denoiser

    get_denoiser(edge_denoiser)
    out = Path(out)
    ds = source if isinstance(source, Dataset) else load_dataset(source, fingerprints, skip=(out,))
    check_sizes(ds, ds.fingerprint_files, crop)  # before writing anything
    out.mkdir(parents=True, exist_ok=True)
    fps = resolve_fingerprints(ds, out / "fingerprints", crop, sigma, progress=task_progress,
                               cancel=cancel)
    check_sizes(ds, {d: p for d, p in fps.items() if d not in ds.fingerprint_files}, crop)
    tasks = build_tasks(ds, settings, fps, out, crop, sigma, edge_denoiser, device, audit)
    inversions = inversion_tasks(tasks)
    total = len(inversions) + len(tasks)
    done = 0
    work = {"tasks": len(tasks), "inversions": 0, "anonymized": 0, "scored": 0, "cached": 0}

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    for _ in _mapped(invert_one, inversions, lambda t: f"invert {t.image_id}", map_func,
                     task_progress, cancel):
        work["inversions"] += 1
        step()
    records = []
    for rec in _mapped(anonymize_one, tasks, lambda t: f"{t.setting.label} {t.image_id}", map_func,
                       task_progress, cancel):
        records.append(rec)
        for k in ("anonymized", "scored", "cached"):
            work[k] += int(bool(rec.get(k)))
        step()
    summaries = summarize(records, settings, list(fps))
    files = write_outputs(out, summaries, records, ds, settings, crop, sigma, edge_denoiser, work, fps)
    if plots:
        from .plots import write_plots

        files["plots"] = [str(p) for p in write_plots(summaries, out / "plots")]
    return EvaluationResult(out, summaries, records, work, files)


# --------------------------------------------------------------------------
# Summaries and output files
# --------------------------------------------------------------------------

def summarize(records: Sequence[Mapping], settings: Sequence[Setting], devices: Sequence[str]) -> list[dict]:
    """One summary per setting (:func:`dippas.evaluation.scoring.summarize_setting`)."""
    from .scoring import summarize_setting

    out = []
    for s in settings:
        recs = [r for r in records if r["slug"] == s.slug]
        if not recs:
            continue
        summary = {"setting": s.label, "label": s.label, "method": s.method, "slug": s.slug,
                   "params": s.params_dict}
        summary.update(summarize_setting(recs, devices))
        out.append(summary)
    return out


#: Columns of results.csv.
