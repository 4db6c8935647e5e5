"""A whole DIPPAS run: tiling, snapshot store, checkpoints, background cells.

:class:`DippasRun` inverts an image of any size into a run folder
(``docs/run-format.md``). Tiles are inverted one after another (or several
together as one batched model, :mod:`dippas.dip.tile_batch`), each by an
:class:`~dippas.dip.inversion.Inversion`; every snapshot at or above the
save threshold is appended to the tile's store while a background thread
(:class:`~dippas.dip.cells_worker.CellsWorker`) computes its cell
statistics.

Two ways to drive it, sharing one code path:

- :meth:`DippasRun.events` is a generator of
  :class:`~dippas.dip.inversion.IterationEvent` (what the napari worker
  wraps);
- :meth:`DippasRun.run` consumes it with an optional callback (what the CLI
  uses) and returns a :class:`RunSummary`.

Checkpoints and resume
----------------------
Every ``checkpoint_every`` iterations, when a tile stops, and when the
cancel token is set, the store files are flushed to disk (``fsync``) and
the tile's ``checkpoint.pt`` is replaced atomically. A run stopped in any
way (cancel, exception, kill, power loss after the last checkpoint) is
continued with :meth:`DippasRun.open`: each unfinished tile goes back to
its checkpoint, its store is cut back to what the checkpoint had seen
(snapshots, table and cells after the checkpoint are dropped, history rows
after the checkpoint's iteration too), and the iterations are run again.
Nothing is duplicated; on the CPU the re-run iterations are bit-identical
to the lost ones.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING
from pathlib import Path

import numpy as np

from ..errors import DippasInputError
from ..progress import CancelToken
from ..dtype import as_rgb_uint8
from ..validation import check_fingerprint
from .checkpoint import load_checkpoint, save_checkpoint
from .inversion import ASSEMBLED, Inversion, IterationEvent
from .pattern import injection_pattern
from .presets import DEFAULT_PRESET, OVERRIDABLE, Preset, get_preset
from .store import (
    CELLS,
    CHECKPOINT,
    FORMAT_VERSION,
    PARAMS,
    TILES,
    RunStore,
    TileWriter,
    create_run_folder,
    is_run_folder,
)
from .tiling import DEFAULT_TILE, TileGeometry, effective_overlap, tile_grid

if TYPE_CHECKING:
    from ..assembly.stop_rule import AssembledStop

#: Default number of iterations between two checkpoints.
DEFAULT_CHECKPOINT_EVERY = 50

#: Parameters that may change when a run is resumed.
RESUMABLE_OVERRIDES = ("max_iter", "stop_psnr")


@dataclass
class RunSummary:
    """What a call of :meth:`DippasRun.run` did.

    Attributes
    ----------
    run_dir : str
    n_tiles : int
    tiles_done : int
        Tiles whose inversion is over.
    iterations : int
        Iterations run in this call (all tiles).
    snapshots : int
        Snapshots stored in the run (all tiles).
    cells : int
        Cell statistics stored (equal to ``snapshots`` once complete).
    cancelled : bool
        Stopped by the cancel token; resumable.
    seconds : float
        Wall time of this call.
    tiles : list of dict
        Per tile: name, iteration, snapshots, best PSNR, stop reason.
    """

    run_dir: str
    n_tiles: int
    tiles_done: int = 0
    iterations: int = 0
    snapshots: int = 0
    cells: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    tiles: list[dict] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every tile finished and every snapshot has its cell statistics."""
        return self.tiles_done == self.n_tiles and self.cells == self.snapshots


def tile_seed(seed: int, g: TileGeometry) -> int:
    """The seed of one tile: the run's for tile 0_0, a mix of it and the position for the others.

    So no two tiles of a photo start from the same ``z`` and weights.
    """
    if g.ty == 0 and g.tx == 0:
        return int(seed)
    x = (int(seed) * 0x9E3779B97F4A7C15 + (g.ty << 20 | g.tx) * 0xD1B54A32D192ED03) & (2**64 - 1)
    return int(x >> 33)


def content_seed(image: np.ndarray) -> int:
    """A seed derived from the pixels: it differs between photos and repeats for the same one.

    Runs then share no common ``z`` or initial weights, a structure that could
    otherwise link the outputs of one anonymizer to each other.
    """
    import hashlib

    arr = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{arr.shape}{arr.dtype}".encode())
    h.update(arr.tobytes())
    return int.from_bytes(h.digest()[:4], "little") & 0x7FFF_FFFF


def check_run_dir(path: str | os.PathLike, resume: bool) -> Path:
    """Refuse run folders that would mix two runs or write over files.

    Parameters
    ----------
    path : path
        The run folder.
    resume : bool
        ``True`` to continue a run: the folder must be a run. ``False`` for a
        new run: the folder must not exist or be empty, its parent must exist.

    Raises
    ------
    DippasInputError
    """
    from ..io import check_writable_folder

    p = Path(path)
    check_writable_folder(p)  # an unwritable place is refused before any work
    if resume:
        if not p.is_dir():
            raise DippasInputError(f"{p}: no such run folder to resume")
        if not is_run_folder(p):
            raise DippasInputError(f"{p}: not a DIPPAS run folder (no {PARAMS}); cannot resume")
        return p
    if p.exists() and not p.is_dir():
        raise DippasInputError(f"{p}: exists and is not a folder")
    if p.is_dir() and any(p.iterdir()):
        if is_run_folder(p):
            raise DippasInputError(f"{p}: a run already exists here (use --resume to continue it)")
        raise DippasInputError(f"{p}: folder is not empty; choose a new run folder")
    if not p.parent.is_dir():
        raise DippasInputError(f"{p.parent}: folder does not exist")
    return p


def _params(preset: Preset, mode: str, image: np.ndarray, tile: int, tile_overlap: int,
            tiles: list[TileGeometry], checkpoint_every: int) -> dict:
    from .. import __version__

    return {
        "format": "dippas-run",
        "format_version": FORMAT_VERSION,
        "dippas_version": __version__,
        "mode": mode,
        "preset": preset.name,
        "sigma": preset.sigma,
        "seed": preset.seed,
        "stop_psnr": preset.stop_psnr,
        "save_psnr": preset.save_psnr,
        "max_iter": preset.max_iter,
        "lr": preset.lr,
        "warm_start": preset.warm_start,
        "cell": preset.cell,
        "image_shape": list(image.shape),
        "image_dtype": str(image.dtype),
        "tile": int(tile),
        "tile_overlap": int(tile_overlap),
        "tile_grid": [max(t.ty for t in tiles) + 1, max(t.tx for t in tiles) + 1],
        "tiles": [asdict(t) for t in tiles],
        "checkpoint_every": int(checkpoint_every),
        "preset_parameters": preset.to_dict(),
    }


class DippasRun:
    """A DIPPAS inversion of one image into a run folder.

    Create a new run with :meth:`create` or continue one with :meth:`open`,
    then drive it with :meth:`run` or :meth:`events`.

    Parameters
    ----------
    run_dir : path
        An existing run folder.
    device : str, optional
        ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'mps'``.
    bf16, channels_last : bool, optional
        Speed options passed to :class:`~dippas.dip.inversion.Inversion`.
    checkpoint_every : int, optional
        Iterations between checkpoints (default: the run's, 50 at creation).
    network_factory : callable, optional
        ``factory(preset) -> torch.nn.Module``; default the preset's U-Net.
    early_stop : dippas.assembly.stop_rule.AssembledStop, optional
        Also stop a tile as soon as its assembly meets this rule (checked
        every ``early_stop.check_every`` iterations); None: only the preset's
        stop PSNR and iteration cap.
    tiles_at_once : int, optional
        Tiles inverted together, as one batched model
        (:mod:`dippas.dip.tile_batch`); None: :func:`~dippas.dip.tile_batch.resolve_tiles_at_once`
        chooses (several on a CUDA GPU, one elsewhere).
    **overrides
        ``max_iter`` or ``stop_psnr`` to change them for the rest of the run.

    Examples
    --------
    >>> run = DippasRun.create("run", image, fingerprint, preset="fast")  # doctest: +SKIP
    >>> summary = run.run(callback=lambda ev: print(ev.iteration, ev.psnr))  # doctest: +SKIP
    """

    def __init__(self, run_dir: str | os.PathLike, *, device: str = "auto", bf16: bool = False,
                 channels_last: bool = False, checkpoint_every: int | None = None,
                 network_factory: Callable[[Preset], object] | None = None,
                 early_stop: AssembledStop | None = None, tiles_at_once: int | None = None,
                 **overrides) -> None:
        from .tile_batch import check_tiles_at_once

        self.path = Path(run_dir)
        overrides = {k: v for k, v in overrides.items() if v is not None}
        store = RunStore(self.path)
        params = store.params
        bad = sorted(set(overrides) - set(RESUMABLE_OVERRIDES))
        if bad:
            raise DippasInputError(f"cannot change {', '.join(bad)} of an existing run")
        self.preset = Preset.from_dict(params["preset_parameters"]).with_overrides(**overrides)
        if any(params.get(k) != getattr(self.preset, k) for k in overrides):
            # only a change is written: processes inverting other tiles of this run open it too
            params.update(max_iter=self.preset.max_iter, stop_psnr=self.preset.stop_psnr,
                          preset_parameters=self.preset.to_dict())
            store.write_params(params)
        self.params = params
        self.mode = params["mode"]
        self.tiles = store.tiles
        every = checkpoint_every if checkpoint_every is not None else params.get(
            "checkpoint_every", DEFAULT_CHECKPOINT_EVERY)
        if int(every) < 1:
            raise DippasInputError(f"checkpoint_every must be a positive integer, got {every}")
        self.checkpoint_every = int(every)
        self.device = device
        self.bf16 = bool(bf16)
        self.channels_last = bool(channels_last)
        self.network_factory = network_factory
        self.early_stop = early_stop
        self.requested_tiles_at_once = check_tiles_at_once(tiles_at_once)
        self.cancelled = False

    # ------------------------------------------------------------ construction
    @classmethod
    def create(cls, run_dir: str | os.PathLike, image: np.ndarray,
               fingerprint: np.ndarray | None = None, *, preset: str | Preset = DEFAULT_PRESET,
               tile: int = DEFAULT_TILE, tile_overlap: int = 0,
               checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
               device: str = "auto", bf16: bool = False, channels_last: bool = False,
               network_factory: Callable[[Preset], object] | None = None,
               early_stop: AssembledStop | None = None, tiles_at_once: int | None = None,
               **overrides) -> DippasRun:
        """Validate everything, then create a run folder.

        Parameters
        ----------
        run_dir : path
            A new folder (or an empty one); its parent must exist.
        image : ndarray, shape (H, W, 3) or (H, W)
            uint8, uint16 or float in 0-255 units; at least 32x32. Converted
            once to 8-bit RGB (:func:`dippas.dtype.as_rgb_uint8`), the images
            the snapshots are.
        fingerprint : ndarray, shape (H, W), optional
            K for the PRNU-aware mode; ``None`` for the PRNU-blind mode
            (the image's own residual is injected).
        preset : str or Preset, optional
            A preset name (default :data:`~dippas.dip.presets.DEFAULT_PRESET`) or a Preset.
        tile : int, optional
            Tile side (default 512).
        tile_overlap : int, optional
            Pixels shared by neighbouring tiles, ``0 <= tile_overlap < tile / 2``
            (default 0: tiles do not overlap; the jobs pass
            :attr:`dippas.jobs.DippasJob.tile_overlap`).
        checkpoint_every : int, optional
            Iterations between checkpoints (default 50).
        device, bf16, channels_last, network_factory, early_stop, tiles_at_once
            See the class.
        **overrides
            ``max_iter``, ``stop_psnr``, ``save_psnr``, ``seed``, ``lr``
            (any preset field is accepted; ``None`` means the preset's).

        Returns
        -------
        DippasRun

        Raises
        ------
        DippasInputError
            On a bad image, fingerprint, preset, device or run folder;
            nothing is written then.
        """
        from .device import resolve_device
        from .tile_batch import check_tiles_at_once

        check_tiles_at_once(tiles_at_once)
        unknown = sorted(k for k in overrides if k not in OVERRIDABLE
                         and k not in Preset.__dataclass_fields__)
        if unknown:
            raise DippasInputError(f"unknown parameter(s): {', '.join(unknown)}")
        p = get_preset(preset, **overrides)
        img = as_rgb_uint8(image)
        if int(checkpoint_every) < 1:
            raise DippasInputError(f"checkpoint_every must be a positive integer, got {checkpoint_every}")
        tile_overlap = effective_overlap(img.shape[0], img.shape[1], int(tile), tile_overlap)
        tiles = tile_grid(img.shape[0], img.shape[1], int(tile), p.pad_multiple, tile_overlap)
        if fingerprint is not None:
            fingerprint = check_fingerprint(fingerprint, shape=img.shape[:2])
        check_run_dir(run_dir, resume=False)
        resolve_device(device)
        pattern, mode = injection_pattern(img, fingerprint, p.sigma)
        create_run_folder(run_dir, _params(p, mode, img, tile, tile_overlap, tiles, checkpoint_every),
                          img, pattern)
        return cls(run_dir, device=device, bf16=bf16, channels_last=channels_last,
                   network_factory=network_factory, early_stop=early_stop,
                   tiles_at_once=tiles_at_once)

    @classmethod
    def open(cls, run_dir: str | os.PathLike, **kwargs) -> DippasRun:
        """Continue an existing run (see the class for the arguments).

        Raises
        ------
        DippasInputError
            If ``run_dir`` is not a run folder.
        """
        check_run_dir(run_dir, resume=True)
        return cls(run_dir, **kwargs)

    # ------------------------------------------------------------ helpers
    @property
    def is_complete(self) -> bool:
        """Every tile finished under the current stop rule, and every snapshot has its cells."""
        return self.summary().complete

    @property
    def store(self) -> RunStore:
        """A read-only view of the run folder."""
        return RunStore(self.path)

    def _tile_dir(self, g: TileGeometry) -> Path:
        return self.path / TILES / g.name

    def _tile_finished(self, g: TileGeometry) -> bool:
        """Done under the current stop rule (so a larger max_iter reopens a tile)."""
        status = self.store.tile(g.ty, g.tx).status
        if not status:
            return False
        psnr = status.get("last_psnr")
        if status.get("stop_reason") == ASSEMBLED and self.early_stop is not None:
            return True
        return (status.get("iteration", 0) >= self.preset.max_iter
                or (psnr is not None and psnr > self.preset.stop_psnr))

    def _engine(self, image: np.ndarray, pattern: np.ndarray, g: TileGeometry) -> Inversion:
        preset = self.preset.with_overrides(seed=tile_seed(self.preset.seed, g))
        return Inversion(image[g.slices], pattern[g.slices], preset, device=self.device,
                         bf16=self.bf16, channels_last=self.channels_last,
                         network_factory=self.network_factory)

    def _restore(self, engine: Inversion, writer: TileWriter, tile_dir: Path) -> None:
        """Go back to the tile's checkpoint (or its start) and cut the store to match."""
        ckpt = tile_dir / CHECKPOINT
        if ckpt.exists():
            state = load_checkpoint(ckpt)
            engine.load_state_dict(state)
            try:
                writer.rollback(engine.n_saved, engine.iteration)
                return
            except ValueError as exc:
                warnings.warn(f"{exc}; restarting tile {tile_dir.name} from the start", stacklevel=3)
                raise _RestartTile from None
        writer.rollback(0, 0)

    def _checkpoint(self, engine: Inversion, writer: TileWriter, tile_dir: Path) -> None:
        writer.sync()
        save_checkpoint(tile_dir / CHECKPOINT, engine.state_dict())
        writer.write_status(iteration=engine.iteration, snapshots=engine.n_saved,
                            seconds=engine.seconds, last_psnr=engine.last_psnr,
                            best_psnr=engine.best_psnr if engine.iteration else None,
                            done=engine.done, stop_reason=engine.stop_reason)

    # ------------------------------------------------------------ running
    def tiles_at_once(self) -> int:
        """How many tiles this run inverts together on its device (1 when they cannot be
        batched: under bf16, or with another network than the preset's)."""
        from .tile_batch import resolve_tiles_at_once

        return resolve_tiles_at_once(self.requested_tiles_at_once, self.device,
                                     batchable=not self.bf16 and self.network_factory is None)

    def _check_batch_fits(self, group: list[int]) -> None:
        """Refuse a group whose z alone exceeds the device's free memory (before any tile)."""
        from .device import resolve_device
        from .tile_batch import check_batch_fits

        largest = max((self.tiles[i] for i in group), key=lambda g: g.padded_h * g.padded_w)
        check_batch_fits(self.preset.z_channels, (largest.padded_h, largest.padded_w),
                         len(group), resolve_device(self.device))

    def tile_indices(self, tiles: Iterable[int] | None = None) -> list[int]:
        """The indices into :attr:`tiles` of a subset (None: every tile), checked.

        Raises
        ------
        DippasInputError
            On an index out of range, not an integer, or given twice.
        """
        n = len(self.tiles)
        if tiles is None:
            return list(range(n))
        out: list[int] = []
        for i in tiles:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n:
                raise DippasInputError(f"tile index {i!r} out of range: the run has {n} tile(s)")
            if int(i) in out:
                raise DippasInputError(f"tile index {i} given twice")
            out.append(int(i))
        return out

    def unfinished_tiles(self, tiles: Iterable[int] | None = None) -> list[int]:
        """Indices of the tiles (of ``tiles``; default all) not finished under the current stop rule."""
        return [i for i in self.tile_indices(tiles) if not self._tile_finished(self.tiles[i])]

    def events(self, cancel: CancelToken | None = None,
               cells_progress: Callable[[int, int], None] | None = None,
               tiles: Iterable[int] | None = None) -> Iterator[IterationEvent]:
        """Run the inversion, yielding one event per iteration.

        Parameters
        ----------
        cancel : CancelToken, optional
            Checked before every iteration. When set, the tiles being
            inverted are checkpointed and the generator ends; :attr:`cancelled` is then
            ``True`` and the run can be resumed. Any object with a
            ``cancelled`` property will do.
        cells_progress : callable, optional
            ``cells_progress(done, total)`` while the background stage
            catches up at the end of the run.
        tiles : iterable of int, optional
            Invert only these tiles (indices into :attr:`tiles`, in this
            order, or by tile size when :meth:`tiles_at_once` is above 1);
            default every tile. Processes inverting *different*
            tiles of one run folder may run at once: each writes only its
            tiles' folders (``params.json`` is written only when ``max_iter``
            or ``stop_psnr`` change, which the parent does before starting
            them), and computes the cell statistics of its tiles.

        Yields
        ------
        IterationEvent
            With the tile fields and ``snapshot_index`` filled in.

        Notes
        -----
        Closing the generator early, or an exception, leaves the run as a
        kill would: the store keeps what was written, and a resume goes back
        to the last checkpoint.
        """
        from .cells_worker import CellsWorker

        indices = self.tile_indices(tiles)
        self.cancelled = False
        store = self.store
        image, pattern = store.input, store.fingerprint
        groups = self._groups(indices)
        worker = CellsWorker(self.preset.cell, self.preset.sigma).start()
        finished = False
        try:
            for group in groups:
                yield from self._group_events(group, image, pattern, worker, cancel)
                if self.cancelled:
                    return
            self._finish_cells(worker, cancel, cells_progress, indices)
            finished = True
        finally:
            if not finished:
                worker.stop()

    def _groups(self, indices: list[int]) -> list[list[int]]:
        """The tiles in the order they run, in groups inverted together (checked to fit).

        Finished tiles come first, alone (they only register with the
        background stage); unfinished ones follow in groups of at most
        :meth:`tiles_at_once`, tiles of one padded size side by side (they
        form one batched model).
        """
        at_once = self.tiles_at_once()
        if at_once == 1:
            return [[i] for i in indices]
        done = [i for i in indices if self._tile_finished(self.tiles[i])]
        todo = sorted((i for i in indices if i not in done),
                      key=lambda i: (self.tiles[i].padded_h, self.tiles[i].padded_w))
        groups = [todo[k:k + at_once] for k in range(0, len(todo), at_once)]
        for group in groups:
            self._check_batch_fits(group)
        return [[i] for i in done] + groups

    def _group_events(self, indices: list[int], image, pattern, worker,
                      cancel: CancelToken | None) -> Iterator[IterationEvent]:
        """Invert these tiles together: each iteration steps every unfinished one
        (as one batched model when there are several, :mod:`dippas.dip.tile_batch`)."""
        from .tile_batch import step_together

        slots: list[_TileSlot] = []
        together = len(indices) > 1
        try:
            for index in indices:
                slot = _TileSlot(self, index, image, pattern, worker, len(indices))
                slots.append(slot)
                if together and slot.engine is not None:
                    # the noise a batch draws, also once the tile steps alone in it
                    slot.engine.draw_noise_in_full()
            while True:
                active = [s for s in slots if s.running]
                if not active:
                    return
                if cancel is not None and cancel.cancelled:
                    for slot in active:
                        slot.checkpoint()
                    self.cancelled = True
                    return
                events = step_together([s.engine for s in active])  # one alone: its own step
                for slot, ev in zip(active, events):
                    yield slot.record(ev)
        finally:
            for slot in slots:
                slot.close()

    def _assembly_good(self, ev: IterationEvent, writer: TileWriter, worker, tile_dir: Path,
                       reference: np.ndarray, pattern: np.ndarray) -> bool:
        """Whether the tile's assembly so far meets :attr:`early_stop` (when a check is due)."""
        rule = self.early_stop
        if rule is None or not rule.due(ev.iteration, ev.psnr):
            return False
        writer.sync()
        tile = self.store.tile(tile_dir.name)
        n = min(worker.done_count(tile_dir), tile.n_cells)
        if n == 0:
            return False
        check = rule.check(reference, tile.snapshots[:n], tile.cells[:n], tile.table["psnr"][:n],
                           self.preset.cell, pattern)
        return check is not None and check.met

    @staticmethod
    def _store_best(engine: Inversion, writer: TileWriter, worker, tile_dir: Path) -> int | None:
        """A tile that ends with no snapshot stores its best-PSNR output instead.

        The engine's ``n_saved`` (and so the checkpoint) does not count it: a
        resume that extends ``max_iter`` cuts the store back to the
        checkpoint, which drops this stand-in before iterating on.
        """
        best = engine.best_snapshot()
        if best is None:
            return None
        frame, iteration, psnr, loss, gamma = best
        index = writer.append_snapshot(frame, iteration, psnr, loss, gamma)
        worker.notify(tile_dir, len(writer))
        return index

    def _finish_cells(self, worker, cancel: CancelToken | None,
                      progress: Callable[[int, int], None] | None, indices: list[int]) -> None:
        """Wait for the background stage of these tiles, reporting progress; stop it on cancel."""
        tiles = [self.tiles[i] for i in indices]
        tile_dirs = [self._tile_dir(g) for g in tiles]
        total = sum(len(self.store.tile(g.ty, g.tx).table["index"]) for g in tiles)
        while True:
            done = sum(worker.done_count(d) for d in tile_dirs)
            if progress is not None:
                progress(done, total)
            if cancel is not None and cancel.cancelled:
                worker.stop()
                self.cancelled = True
                return
            worker.finish(timeout=0.2)
            if not worker.alive:
                break
        if progress is not None:
            progress(total, total)

    def catch_up_cells(self, progress: Callable[[int, int], None] | None = None,
                       cancel: CancelToken | None = None) -> int:
        """Compute the cell statistics missing from any tile, without inverting.

        For a run stopped before its background stage caught up (a kill, or
        a cancel at the end). Needs no torch.

        Parameters
        ----------
        progress : callable, optional
            ``progress(done, total)`` over all tiles' snapshots.
        cancel : CancelToken, optional
            Checked between snapshots.

        Returns
        -------
        int
            Cell frames stored, all tiles together.
        """
        from .cells_worker import catch_up_cells

        store = self.store
        pattern = store.fingerprint
        tiles = [t for t in store.tiles if (self._tile_dir(t) / CELLS).exists()]
        total = sum(store.tile(t.ty, t.tx).n_snapshots for t in tiles)
        done = 0
        for g in tiles:
            view = store.tile(g.ty, g.tx)
            base = done
            report = None if progress is None else (lambda d, _t, b=base: progress(b + d, total))
            done += catch_up_cells(view.path, np.ascontiguousarray(pattern[g.slices], np.float32),
                                   self.preset.cell, self.preset.sigma, cancel=cancel,
                                   progress=report)
        return done

    def run(self, callback: Callable[[IterationEvent], None] | None = None,
            cancel: CancelToken | None = None,
            cells_progress: Callable[[int, int], None] | None = None,
            tiles: Iterable[int] | None = None) -> RunSummary:
        """Run (or continue) the inversion of every tile, or of ``tiles``.

        Parameters
        ----------
        callback : callable, optional
            Called with every :class:`IterationEvent`. An exception raised
            in it stops the run like a kill (resume from the last checkpoint).
        cancel : CancelToken, optional
            Stop cleanly after the current iteration (checkpointed).
        cells_progress : callable, optional
            See :meth:`events`.
        tiles : iterable of int, optional
            Only these tiles (see :meth:`events`); the summary covers the whole run.

        Returns
        -------
        RunSummary
        """
        t0 = time.perf_counter()
        iterations = 0
        for ev in self.events(cancel=cancel, cells_progress=cells_progress, tiles=tiles):
            iterations += 1
            if callback is not None:
                callback(ev)
        return self.summary(iterations=iterations, seconds=time.perf_counter() - t0)

    def summary(self, iterations: int = 0, seconds: float = 0.0) -> RunSummary:
        """The state of the run folder as a :class:`RunSummary`."""
        store = self.store
        out = RunSummary(run_dir=str(self.path), n_tiles=len(self.tiles), iterations=iterations,
                         cancelled=self.cancelled, seconds=seconds)
        for g in self.tiles:
            t = store.tile(g.ty, g.tx)
            status = t.status
            n = t.n_snapshots
            out.snapshots += n
            out.cells += t.n_cells
            done = self._tile_finished(g)
            out.tiles_done += int(done)
            out.tiles.append({"tile": g.name, "iteration": status.get("iteration", 0),
                              "snapshots": n, "cells": t.n_cells,
                              "best_psnr": status.get("best_psnr"), "done": done,
                              "stop_reason": status.get("stop_reason") if done else None})
        return out


class _TileSlot:
    """One tile of a run being inverted: its engine, its store writer, its run fields.

    Opening a slot restores the tile from its checkpoint (or starts it) and
    registers it with the background stage; a tile already finished gets no
    engine. :meth:`record` does the run's part of every iteration.
    """

    def __init__(self, run: DippasRun, index: int, image: np.ndarray, pattern: np.ndarray,
                 worker, together: int = 1) -> None:
        g = run.tiles[index]
        self.run, self.g, self.worker = run, g, worker
        self.tile_dir = run._tile_dir(g)
        self.pattern = np.ascontiguousarray(pattern[g.slices], dtype=np.float32)
        self.reference = image[g.slices]
        self.info = {"tile": g, "tile_index": index, "n_tiles": len(run.tiles),
                     "tiles_together": int(together)}
        self.engine: Inversion | None = None
        self.writer = TileWriter(self.tile_dir, g, run.preset.cell)
        try:
            self._open(image, pattern)
        except BaseException:
            self.writer.close()
            raise

    def _open(self, image: np.ndarray, pattern: np.ndarray) -> None:
        run, g, writer = self.run, self.g, self.writer
        if run._tile_finished(g):
            self.worker.add_tile(self.tile_dir, self.pattern, len(writer))
            return
        engine = run._engine(image, pattern, g)
        try:
            run._restore(engine, writer, self.tile_dir)
        except _RestartTile:
            engine = run._engine(image, pattern, g)
            writer.rollback(0, 0)
        self.worker.add_tile(self.tile_dir, self.pattern, len(writer))
        if engine.done:  # a finished tile whose status.json was lost
            run._checkpoint(engine, writer, self.tile_dir)
        self.engine = engine

    @property
    def running(self) -> bool:
        """The tile still has iterations to run."""
        return self.engine is not None and not self.engine.done

    def checkpoint(self) -> None:
        """Write the tile's checkpoint and status."""
        self.run._checkpoint(self.engine, self.writer, self.tile_dir)

    def record(self, ev: IterationEvent) -> IterationEvent:
        """Store one iteration (log, snapshot, stop rules, checkpoint); the event with run fields."""
        run, engine, writer = self.run, self.engine, self.writer
        writer.log_iteration(ev.iteration, ev.psnr, ev.loss, ev.gamma, ev.seconds)
        snapshot_index = None
        if ev.saved:
            snapshot_index = writer.append_snapshot(ev.snapshot, ev.iteration, ev.psnr,
                                                    ev.loss, ev.gamma)
            self.worker.notify(self.tile_dir, len(writer))
        if not ev.done and run._assembly_good(ev, writer, self.worker, self.tile_dir,
                                              self.reference, self.pattern):
            engine.finish(ASSEMBLED)
            ev = replace(ev, done=True, stop_reason=ASSEMBLED)
        if ev.done and len(writer) == 0:
            snapshot_index = run._store_best(engine, writer, self.worker, self.tile_dir)
        if ev.done or ev.iteration % run.checkpoint_every == 0:
            self.checkpoint()
        return ev.with_run_info(snapshot_index=snapshot_index, **self.info)

    def close(self) -> None:
        """Close the tile's store writer."""
        self.writer.close()


class _RestartTile(Exception):
    """The store of a tile is behind its checkpoint: start the tile again."""


def open_run(run_dir: str | os.PathLike, image: np.ndarray, fingerprint: np.ndarray | None,
             job, *, resume: bool | None = None, **engine) -> DippasRun:
    """Open the run of (image, fingerprint, job) in ``run_dir``, creating it when there is none.

    The one create-or-resume rule of every face. An existing run is continued
    only when it was made from the same image, the same fingerprint (or both
    blind) and the same mode, preset, seed, save threshold, learning rate,
    tile and tile overlap: otherwise it is another photo's or another job's run, and refused.

    Parameters
    ----------
    run_dir : path
    image : ndarray, uint8 (H, W, 3)
        As :meth:`dippas.jobs.DippasJob.prepare` returns it.
    fingerprint : ndarray or None
        K (aware mode) or None (blind).
    job : dippas.jobs.DippasJob
    resume : bool, optional
        None: create or continue; True: the run must exist; False: it must not.
    **engine
        ``device`` and ``tiles_at_once`` are taken from the job; ``bf16``,
        ``channels_last``, ``checkpoint_every``, ``network_factory``.

    Returns
    -------
    DippasRun

    Raises
    ------
    DippasInputError
        On a foreign run, a missing run with ``resume=True``, or an existing
        one with ``resume=False``; nothing is written then.
    """
    engine = {"tiles_at_once": job.tiles_at_once, **engine}
    engine = {k: v for k, v in engine.items() if v is not None}
    job = job.for_image(image)
    exists = is_run_folder(run_dir)
    if resume is True or (resume is None and exists):
        check_run_dir(run_dir, resume=True)
        store = RunStore(run_dir)
        store.check_matches(image, fingerprint, job.for_run(store.params).run_identity())
        return DippasRun.open(run_dir, device=job.device, max_iter=job.max_iter,
                              stop_psnr=job.stop_psnr, early_stop=job.stop_rule(), **engine)
    p = job.preset_parameters()
    return DippasRun.create(run_dir, image, fingerprint, preset=p, tile=job.tile,
                            tile_overlap=job.overlap,
                            device=job.device, early_stop=job.stop_rule(), **engine)
