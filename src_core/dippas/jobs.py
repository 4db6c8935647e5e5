"""Job specifications: every parameter of an anonymization, with its single default.

A job is a frozen, validated description of *what* to do to a photo;
the image, the fingerprint and the run folder are given to its ``run``.
Every face builds its jobs here: the CLI (``anonymize``, ``invert``,
``assemble``, ``batch``, ``evaluate``, ``demo``), the Python API, batch
tasks, evaluation methods and the napari widgets. So a default changes in
one place, and every option is checked before any long work.

Vocabulary
----------
mode
    ``'aware'`` (inject the camera's fingerprint K) or ``'blind'`` (inject
    the photo's own residual).
preset
    The DIPPAS network and schedule (:mod:`dippas.dip.presets`).
block size, blocks, PSNR threshold
    The DIPPAS assembly: block side B (pixels, or ``'whole'``), blocks
    averaged L, and τ_PSNR.
hole, regulariser, denoiser
    The inpainting method's hole side, penalty (``'l2'`` or ``'tv'``) and
    the denoiser of its edge reconstruction.

Examples
--------
>>> job = DippasJob(mode="blind", max_iter=500)
>>> job.block_size, job.blocks
(64, 10)
>>> DippasJob.from_dict(job.to_dict()) == job
True
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .assembly.geometry import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_BLOCKS,
    DEFAULT_PSNR_THRESHOLD,
    DEFAULT_ZERO_BLEND,
    WHOLE,
    check_block_size,
    is_whole,
)
from .assembly.stop_rule import DEFAULT_TARGET_PSNR, AssembledStop
from .dip.device import check_device_name
from .dip.presets import DEFAULT_PRESET, OVERRIDABLE, Preset, get_preset
from .dip.tile_batch import check_tiles_at_once
from .dip.tiling import DEFAULT_TILE, check_overlap, default_overlap
from .errors import DippasInputError
from .inpainting.profiles import DEFAULT_PROFILE
from .progress import CancelToken
from .validation import check_positive_int

__all__ = ["DIPPAS_MODES", "DippasJob", "InpaintingJob", "Job", "check_mode", "job_from_dict"]

#: The DIPPAS injection modes.
DIPPAS_MODES = ("aware", "blind")
#: The assembly rules of :class:`DippasJob` (see its ``rule``).
ASSEMBLY_RULES = ("paper", "min-abs")

ProgressFunc = Callable[[int, int], None]


def check_mode(mode: str, has_fingerprint: bool) -> None:
    """The one rule tying the DIPPAS mode to the fingerprint: aware needs K, blind refuses it.

    Raises
    ------
    DippasInputError
    """
    if mode not in DIPPAS_MODES:
        raise DippasInputError(f"unknown DIPPAS mode {mode!r}; use aware or blind")
    if mode == "blind" and has_fingerprint:
        raise DippasInputError("give a fingerprint (PRNU-aware) or --blind, not both")
    if mode == "aware" and not has_fingerprint:
        raise DippasInputError("DIPPAS needs --fingerprint K (PRNU-aware) or --blind")


def assembly_rule(rule: str, block_size: int | str, blocks: int) -> str:
    """The ordering rule (:mod:`dippas.assembly.ranking`) of a job's ``rule`` for B and L.

    ``'paper'`` ranks blocks by the paper's ordering, except one block over the
    whole image with L = 1, where the paper takes the snapshot of minimum
    ``|NCC|``; ``'min-abs'`` is the minimum ``|NCC|`` everywhere.
    """
    if rule == "min-abs" or (is_whole(block_size) and int(blocks) == 1):
        return "min-abs"
    return "rank"


def _positive_float(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer))
            or not math.isfinite(value) or value <= 0):
        raise DippasInputError(f"{name} must be a positive number, got {value!r}")


class _JobDict:
    """``to_dict``, ``from_dict`` and ``replace`` shared by the job classes."""

    #: Name of the method, recorded in dicts.
    method: ClassVar[str]

    def to_dict(self) -> dict:
        """Every field and the method name, JSON-ready (for ``params.json``, records, cache keys)."""
        return {"method": self.method, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Inverse of :meth:`to_dict`; missing fields take their defaults.

        Raises
        ------
        DippasInputError
            On an unknown key, another method, or an invalid value.
        """
        data = dict(data)
        method = data.pop("method", cls.method)
        if method != cls.method:
            raise DippasInputError(f"a {method} job is not a {cls.method} job")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise DippasInputError(f"unknown {cls.method} parameter(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes):
        """A copy with some fields changed (``None`` values are ignored), validated again."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise DippasInputError(f"unknown {self.method} parameter(s): {', '.join(unknown)}")
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes) if changes else self

    def with_values(self, **values):
        """A copy with these fields set, ``None`` included (e.g. τ none), validated again."""
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise DippasInputError(f"unknown {self.method} parameter(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **values) if values else self


@dataclass(frozen=True)
class DippasJob(_JobDict):
    """A DIPPAS anonymization: the inversion, then the block assembly.

    Attributes
    ----------
    mode : {'aware', 'blind'}
        Inject the camera's fingerprint K, or the photo's own residual.
    preset : str
        Network and schedule, a name of :data:`dippas.dip.presets.PRESETS`.
    max_iter, stop_psnr, save_psnr, lr, warm_start : optional
        Override the preset's iteration cap, stop PSNR (dB), save PSNR (dB),
        learning rate and initialisation (the packaged warm start of the
        network, :mod:`dippas.dip.warm_start`); ``None`` keeps the preset's.
    seed : int or None
        Seed of the network initialisation, ``z`` and the noise; None (the
        default) derives it from the photo's pixels, so that no two photos
        share a starting point while one photo always gets the same output.
    tile : int
        Tile side for images larger than it.
    tile_overlap : int or None
        Pixels shared by neighbouring tiles, ``0 <= tile_overlap < tile / 2``;
        the assembly blends them with a linear ramp over the overlap, so no
        seam shows (:func:`dippas.assembly.stitch`). No effect on an image that
        fits in one tile. None (the default): 32, or a quarter of a smaller
        tile (:func:`dippas.dip.tiling.default_overlap`; :attr:`overlap`).
    block_size : int or 'whole'
        Assembly block side B in pixels, a multiple of the cell (16).
    blocks : int
        L, the number of best blocks averaged per position.
    psnr_threshold : float or None
        τ_PSNR: only snapshots at least this good are candidates (None: every
        stored snapshot).
    target_psnr : float or None
        Stop each tile as soon as its assembly (this job's B, L, τ and rule)
        reaches this PSNR in dB with its NCCs at chance
        (:mod:`dippas.assembly.stop_rule`); the preset's stop PSNR and
        iteration cap still apply. None: only those (the paper's rule).
    zero_blend : bool
        Blend every block whose NCC with P is negative towards the input until
        it is zero (:mod:`dippas.assembly.zero_blend`): outputs stop
        over-correcting, and gain PSNR.
    rule : {'paper', 'min-abs'}
        Which candidates of a block are averaged. ``'paper'``: the paper's
        ordering (negative NCCs closest to zero first, then the smallest
        non-negative ones), and with one block over the whole image and
        L = 1 the snapshot of minimum ``|NCC|`` (the paper's no-post-processing
        case, §5.3). ``'min-abs'``: the candidates of minimum ``|NCC|`` for
        every block, which aims the output's NCC at zero rather than below it.
    device : {'auto', 'cpu', 'cuda', 'mps'}
        Where the inversion runs (not part of what defines a run).
    workers : int
        Processes inverting the tiles of one photo at once. 1 (the default):
        every tile in this process (one after the other, or
        :attr:`tiles_at_once` together). More: on the CPU, a photo
        of more than one tile is inverted as Dask tasks, one per tile, on a
        local cluster of that many worker processes
        (:mod:`dippas.batch.tiles`; the ``[dask]`` extra). Not part of what
        defines a run (a run started with 2 workers is resumed with 1), nor
        of the output: each tile's is the same as in this process with the
        same torch threads per tile.
    tiles_at_once : int or None
        Tiles of one photo inverted together in this process, as one batched
        model (:mod:`dippas.dip.tile_batch`: each tile keeps its own weights,
        BatchNorm statistics, optimiser and seed). None (the default):
        :data:`~dippas.dip.tile_batch.GPU_TILES_AT_ONCE` on a CUDA GPU, 1
        elsewhere. Not part of what defines a run.
    """

    method: ClassVar[str] = "dippas"
    #: Fields that define a run folder: a run made with other values is another run.
    RUN_IDENTITY: ClassVar[tuple[str, ...]] = ("mode", "preset", "seed", "save_psnr", "lr",
                                               "warm_start", "tile", "tile_overlap")
    #: Fields whose None is a setting of its own (τ none, no target), not "the default".
    NONE_IS_A_VALUE: ClassVar[tuple[str, ...]] = ("psnr_threshold", "target_psnr")
    #: Fields of where and how the job runs, not of its output (left out of batch keys).
    EXECUTION: ClassVar[tuple[str, ...]] = ("device", "workers", "tiles_at_once")

    mode: str = "aware"
    preset: str = DEFAULT_PRESET
    max_iter: int | None = None
    stop_psnr: float | None = None
    save_psnr: float | None = None
    lr: float | None = None
    warm_start: bool | None = None
    seed: int | None = None
    tile: int = DEFAULT_TILE
    tile_overlap: int | None = None
    block_size: int | str = DEFAULT_BLOCK_SIZE
    blocks: int = DEFAULT_BLOCKS
    psnr_threshold: float | None = DEFAULT_PSNR_THRESHOLD
    target_psnr: float | None = DEFAULT_TARGET_PSNR
    zero_blend: bool = DEFAULT_ZERO_BLEND
    rule: str = "paper"
    device: str = "auto"
    workers: int = 1
    tiles_at_once: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in DIPPAS_MODES:
            raise DippasInputError(f"unknown DIPPAS mode {self.mode!r}; use aware or blind")
        object.__setattr__(self, "device", check_device_name(self.device))
        if self.seed is not None and (isinstance(self.seed, bool)
                                      or not isinstance(self.seed, (int, np.integer))
                                      or self.seed < 0):
            raise DippasInputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.seed is not None:
            object.__setattr__(self, "seed", int(self.seed))
        check_positive_int("tile", self.tile)
        object.__setattr__(self, "workers", check_positive_int("workers", self.workers))
        object.__setattr__(self, "tiles_at_once", check_tiles_at_once(self.tiles_at_once))
        if self.tile_overlap is not None:
            object.__setattr__(self, "tile_overlap", check_overlap(self.tile, self.tile_overlap))
        check_positive_int("blocks (L)", self.blocks)
        _positive_float("psnr_threshold", self.psnr_threshold, optional=True)
        _positive_float("target_psnr", self.target_psnr, optional=True)
        if not isinstance(self.zero_blend, (bool, np.bool_)):
            raise DippasInputError(f"zero_blend must be true or false, got {self.zero_blend!r}")
        object.__setattr__(self, "zero_blend", bool(self.zero_blend))
        if self.rule not in ASSEMBLY_RULES:
            raise DippasInputError(f"unknown assembly rule {self.rule!r}; use one of {', '.join(ASSEMBLY_RULES)}")
        block = WHOLE if self.block_size is None else self.block_size
        object.__setattr__(self, "block_size", check_block_size(block, self.cell))
        self.preset_parameters()  # validates the preset name and its overrides

    @property
    def overlap(self) -> int:
        """The tile overlap in pixels: :attr:`tile_overlap`, or the default for :attr:`tile`."""
        return default_overlap(self.tile) if self.tile_overlap is None else int(self.tile_overlap)

    def to_dict(self) -> dict:
        """Every field and the method name, JSON-ready, with the overlap resolved."""
        return {**super().to_dict(), "tile_overlap": self.overlap}

    # jobs that do the same work are equal: the default overlap equals its value given
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DippasJob):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self.to_dict().items())))

    @property
    def cell(self) -> int:
        """Cell side of the run's statistics (the block size is a multiple of it)."""
        return get_preset(self.preset).cell

    def assembly_rule(self) -> str:
        """The ordering rule of :mod:`dippas.assembly.ranking` this job's assembly uses."""
        return assembly_rule(self.rule, self.block_size, self.blocks)

    def stop_rule(self) -> AssembledStop | None:
        """The rule that ends a tile once its assembly is good enough (None without a target)."""
        if self.target_psnr is None:
            return None
        return AssembledStop(target_psnr=float(self.target_psnr), block_size=self.block_size,
                             blocks=self.blocks, psnr_threshold=self.psnr_threshold,
                             rule=self.assembly_rule(), zero_blend=self.zero_blend,
                             sigma=self.preset_parameters().sigma)

    def preset_parameters(self) -> Preset:
        """The preset with this job's overrides applied (validated)."""
        return get_preset(self.preset, **{k: getattr(self, k) for k in OVERRIDABLE})

    def for_image(self, image: np.ndarray) -> DippasJob:
        """This job resolved for ``image`` (as :meth:`prepare` returns it): its seed, and no
        tile overlap when the image is one tile (nothing overlaps; the run records 0)."""
        from .dip.dippas_run import content_seed
        from .dip.tiling import effective_overlap

        job = self if self.seed is not None else self.replace(seed=content_seed(image))
        overlap = effective_overlap(image.shape[0], image.shape[1], job.tile, job.overlap)
        return job if overlap == job.overlap else job.replace(tile_overlap=overlap)

    def for_run(self, params: Mapping[str, Any]) -> DippasJob:
        """This job for continuing the run that ``params`` (its ``params.json``) records.

        A warm start the job leaves to the preset (None) takes the run's: the
        ``fast`` preset's default changed from a random start to the warm
        start, and the same command must still continue a run made before.
        """
        from .dip.store import LEGACY_PARAMS

        if self.warm_start is not None:
            return self
        return self.replace(warm_start=bool({**LEGACY_PARAMS, **params}["warm_start"]))

    def run_identity(self) -> dict:
        """The resolved values of :attr:`RUN_IDENTITY`, as ``params.json`` records them.

        Call it on a job whose seed is resolved (:meth:`for_image`).
        """
        p = self.preset_parameters()
        resolved = {"mode": self.mode, "preset": p.name, "seed": p.seed, "save_psnr": p.save_psnr,
                    "lr": p.lr, "warm_start": p.warm_start, "tile": int(self.tile),
                    "tile_overlap": self.overlap}
        return {k: resolved[k] for k in self.RUN_IDENTITY}

    def prepare(self, image: np.ndarray, fingerprint: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Validate and convert the inputs once: 8-bit RGB image, float32 K (aware) or None.

        Raises
        ------
        DippasInputError
        """
        from .dtype import as_rgb_uint8
        from .validation import check_fingerprint

        check_mode(self.mode, fingerprint is not None)
        img = as_rgb_uint8(image)
        k = None if fingerprint is None else check_fingerprint(fingerprint, shape=img.shape[:2])
        return img, k

    def check_run_folder(self, run_dir: str | os.PathLike, image: np.ndarray,
                         fingerprint: np.ndarray | None) -> None:
        """Refuse, before any work, a run folder this job could not create or continue.

        Raises
        ------
        DippasInputError
            On a run of another photo, fingerprint or job, or a folder that is
            no run and not empty.
        """
        from .dip.dippas_run import check_run_dir
        from .dip.store import RunStore, is_run_folder

        img, k = self.prepare(image, fingerprint)
        if is_run_folder(run_dir):
            store = RunStore(run_dir)
            store.check_matches(img, k, self.for_image(img).for_run(store.params).run_identity())
        else:
            check_run_dir(run_dir, resume=False)

    def check_workers(self) -> None:
        """Refuse, before any work, :attr:`workers` this machine cannot start.

        Raises
        ------
        DippasInputError
            With more than one worker: when Dask distributed is missing (naming
            the ``[dask]`` extra), or when they outnumber the cores.
        """
        if self.workers > 1:
            from .batch.cluster import check_local_size, require_distributed

            require_distributed()
            check_local_size(self.workers, None)

    def invert(self, image: np.ndarray, fingerprint: np.ndarray | None, run_dir: str | os.PathLike, *,
               resume: bool | None = None, progress: ProgressFunc | None = None,
               cancel: CancelToken | None = None, on_iteration: Callable | None = None,
               cells_progress: ProgressFunc | None = None,
               tile_progress: ProgressFunc | None = None, **engine) -> Path:
        """Run, resume, or skip (when complete) the inversion into ``run_dir``.

        With :attr:`workers` > 1, on the CPU, and more than one tile to invert,
        the tiles run as Dask tasks on a local cluster
        (:func:`dippas.batch.tiles.invert_on_local_cluster`); otherwise in
        this process, :attr:`tiles_at_once` at a time (with a one-line
        :class:`~dippas.errors.DippasWarning` saying why, when workers were asked).

        Parameters
        ----------
        image, fingerprint : ndarray
            As :meth:`prepare`.
        run_dir : path
        resume : bool, optional
            None: create the run or continue it; True: continue only; False: create only.
        progress : callable, optional
            ``progress(done, total)`` in iterations over all tiles (on Dask
            workers, without ``tile_progress``: at each finished tile, as if it
            ran all its iterations).
        cancel : CancelToken, optional
            Stops within one iteration; :class:`dippas.Cancelled` is raised and
            the run stays resumable.
        on_iteration : callable, optional
            Called with every :class:`dippas.dip.IterationEvent`.
        cells_progress : callable, optional
            ``cells_progress(done, total)`` while the background stage catches up.
        tile_progress : callable, optional
            ``tile_progress(done_tiles, n_tiles)`` when the tiles run on Dask workers.
        **engine
            ``bf16``, ``channels_last``, ``checkpoint_every``, ``network_factory``.

        Raises
        ------
        DippasInputError
            On bad inputs, a run folder of another photo, fingerprint or job,
            or workers that cannot start (:meth:`check_workers`).
        Cancelled
            When ``cancel`` stopped the run.
        """
        from .dip.dippas_run import open_run

        img, k = self.prepare(image, fingerprint)
        self.check_workers()
        run = open_run(run_dir, img, k, self, resume=resume, **engine)
        if run.is_complete:
            return Path(run_dir)
        total = run.preset.max_iter * len(run.tiles)
        if self.workers > 1:
            from .batch.tiles import invert_on_local_cluster, tiles_for_workers

            if tiles_for_workers(run, self.workers):
                def tiles_done(done: int, n: int) -> None:
                    if tile_progress is not None:
                        tile_progress(done, n)
                    elif progress is not None:
                        progress(done * run.preset.max_iter, n * run.preset.max_iter)

                summary = invert_on_local_cluster(run, self.workers, progress=tiles_done,
                                                  cancel=cancel)
                if summary.cancelled:
                    from .errors import Cancelled

                    raise Cancelled(f"inversion stopped; resume with the same run folder {run_dir}")
                return Path(run_dir)

        cap = run.preset.max_iter
        finished_before = (len(run.tiles) - len(run.unfinished_tiles())) * cap
        done_by_tile: dict[int, int] = {}

        def report(ev) -> None:
            if progress is not None:  # tiles inverted together report in turn
                done_by_tile[ev.tile_index] = cap if ev.done else ev.iteration
                progress(finished_before + sum(done_by_tile.values()), total)
            if on_iteration is not None:
                on_iteration(ev)

        summary = run.run(callback=report, cancel=cancel, cells_progress=cells_progress)
        if summary.cancelled:
            from .errors import Cancelled

            raise Cancelled(f"inversion stopped; resume with the same run folder {run_dir}")
        return Path(run_dir)

    def assemble(self, run_dir: str | os.PathLike):
        """Assemble a run folder with this job's B, L and τ (a :class:`~dippas.assembly.RunAssembly`)."""
        from .assembly import RunAssembler

        return RunAssembler(run_dir).assemble(self.block_size, self.blocks, self.psnr_threshold,
                                              self.assembly_rule(), self.zero_blend)

    def run(self, image: np.ndarray, fingerprint: np.ndarray | None = None,
            run_dir: str | os.PathLike | None = None, *, progress: ProgressFunc | None = None,
            cancel: CancelToken | None = None, on_iteration: Callable | None = None,
            tile_progress: ProgressFunc | None = None, **engine) -> np.ndarray:
        """Anonymize ``image``: inversion, then assembly; uint8 ``(H, W, 3)``.

        Without ``run_dir`` the run lives in a private scratch folder
        (:mod:`dippas.scratch`) that is deleted afterwards, also on SIGTERM
        and Ctrl-C; one left by a kill is swept at the next start.
        """
        self.prepare(image, fingerprint)  # before any folder is made
        self.check_workers()
        kw = dict(progress=progress, cancel=cancel, on_iteration=on_iteration,
                  tile_progress=tile_progress, **engine)
        if run_dir is not None:
            self.invert(image, fingerprint, run_dir, **kw)
            return self.assemble(run_dir).image
        from .scratch import scratch_dir

        with scratch_dir() as tmp:
            path = tmp / "run"
            self.invert(image, fingerprint, path, resume=False, **kw)
            return self.assemble(path).image

    @classmethod
    def from_run(cls, params: Mapping[str, Any], **changes) -> DippasJob:
        """The job recorded in a run's ``params.json``, with ``changes`` applied.

        A key the run predates takes the value such runs had
        (:data:`dippas.dip.store.LEGACY_PARAMS`: no tile overlap, no warm start).
        """
        from .dip.presets import PRESETS, Preset, register_preset
        from .dip.store import LEGACY_PARAMS

        params = {**LEGACY_PARAMS, **params}
        name = params.get("preset")
        if name not in PRESETS and isinstance(params.get("preset_parameters"), dict):
            # a custom preset (plugin, API): the run records every field of it
            register_preset(Preset.from_dict(params["preset_parameters"]), name)
        recorded = {k: params[k] for k in cls.RUN_IDENTITY if params.get(k) is not None}
        recorded.update({k: params[k] for k in ("max_iter", "stop_psnr") if params.get(k) is not None})
        return cls(**recorded).replace(**changes)


@dataclass(frozen=True)
class InpaintingJob(_JobDict):
    """An inpainting anonymization (Mandelli et al., ICIP 2017).

    Attributes
    ----------
    profile : str
        A recipe of :data:`dippas.inpainting.profiles.PROFILES` (``'tv'``,
        ``'classic'``, ``'paper'``); its default is
        :data:`~dippas.inpainting.profiles.DEFAULT_PROFILE`.
    hole, reg, edges, delta, denoiser : optional
        Override the profile's hole side B (one of
        :data:`dippas.inpainting.masks.HOLE_SIZES`), regulariser (``'l2'`` or
        ``'tv'``), edge reconstruction, derivative step and edge denoiser
        (:func:`dippas.inpainting.available_denoisers`); None keeps the profile's.
    """

    method: ClassVar[str] = "inpainting"

    profile: str = DEFAULT_PROFILE
    hole: int | None = None
    reg: str | None = None
    edges: bool | None = None
    delta: int | None = None
    denoiser: str | None = None

    def __post_init__(self) -> None:
        from .inpainting.denoisers import get_denoiser
        from .inpainting.masks import HOLE_SIZES, check_hole_delta
        from .inpainting.solver import check_regulariser

        p = self.recipe()
        if p.hole not in HOLE_SIZES:
            raise DippasInputError(f"hole must be one of {', '.join(map(str, HOLE_SIZES))}, got {p.hole!r}")
        if self.reg is not None:
            object.__setattr__(self, "reg", check_regulariser(self.reg))
        if self.edges is not None and not isinstance(self.edges, (bool, np.bool_)):
            raise DippasInputError(f"edges must be true or false, got {self.edges!r}")
        check_hole_delta(p.hole, p.delta)
        if p.edges:
            get_denoiser(p.denoiser)  # unknown, or its optional package missing: before any work

    def recipe(self):
        """The profile with this job's overrides: every option of the run (an ``InpaintingProfile``)."""
        from .inpainting.profiles import get_profile

        return get_profile(self.profile).with_options(
            hole=self.hole, reg=self.reg, edges=None if self.edges is None else bool(self.edges),
            delta=self.delta, denoiser=self.denoiser)

    def run(self, image: np.ndarray, fingerprint: np.ndarray | None = None,
            run_dir: str | os.PathLike | None = None, *, progress: ProgressFunc | None = None,
            cancel: CancelToken | None = None, **_engine) -> np.ndarray:
        """Anonymize ``image``; same shape and dtype. The method needs no fingerprint or run folder."""
        from .inpainting import inpaint_anonymize

        return inpaint_anonymize(image, profile=self.recipe(), progress=progress, cancel=cancel)


#: A job of either method.
Job = DippasJob | InpaintingJob

#: Job classes by method name.
JOB_TYPES: dict[str, type] = {"dippas": DippasJob, "inpainting": InpaintingJob}


def job_from_dict(data: Mapping[str, Any]) -> Job:
    """The job a :meth:`to_dict` dictionary describes (its ``method`` key picks the class)."""
    method = data.get("method")
    if method not in JOB_TYPES:
        raise DippasInputError(f"unknown method {method!r}; use one of {', '.join(JOB_TYPES)}")
    return JOB_TYPES[method].from_dict(data)
