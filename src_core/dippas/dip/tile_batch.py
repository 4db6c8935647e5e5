"""Several tiles' inversions stepped together as one batched model.

On a GPU one tile of the ``fast`` network leaves most of the chip idle
(thin convolutions, one image). :func:`step_together` runs the iterations
of several :class:`~dippas.dip.inversion.Inversion` engines as one model:

* each engine keeps its own network, ``gamma``, Adam state, seed and
  checkpoint: nothing of a tile is shared with another;
* their parameters are stacked every step, and their BatchNorm buffers
  become views of one stacked tensor per batch; the networks run as
  one ``torch.func.vmap`` of ``torch.func.functional_call`` (grouped
  convolutions; BatchNorm statistics per tile, as each network alone has
  them), in the plain-convolution form
  (:func:`dippas.dip.network.plain_convolutions`);
* the tiles' losses are summed before one backward pass. Each loss depends
  on its own tile's parameters only, so every tile gets exactly its own
  gradient; then every engine steps its own optimiser.

The input noise is drawn in full per tile (:meth:`Inversion.noisy_input`),
from the tile's generator reseeded with its seed and the iteration: the
same distribution as a tile stepped alone (whose network draws it in its
first layer's row space), not the same numbers; a run that inverts tiles
together draws it so for every tile of a group, also once the tile is the
last of its group still running. The noise, and so a run, is reproducible
for a given image, seed, device and number of tiles at once; which tiles
share a batch changes the rounding of the grouped convolutions only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import DippasInputError
from ..validation import check_positive_int
from .device import autocast, deterministic_algorithms

if TYPE_CHECKING:
    from .inversion import Inversion, IterationEvent

__all__ = ["GPU_TILES_AT_ONCE", "can_step_together", "check_batch_fits", "check_tiles_at_once",
           "resolve_tiles_at_once", "step_together"]

#: Tiles inverted together on a CUDA GPU when the job leaves the number to
#: the run (``tiles_at_once=None``). Measured in docs/benchmarks.md ("Tiles
#: batched on a GPU").
GPU_TILES_AT_ONCE = 8


def check_tiles_at_once(value: int | None) -> int | None:
    """``value`` if it is None or a positive integer.

    Raises
    ------
    DippasInputError
    """
    return check_positive_int("tiles_at_once", value, optional=True)


def resolve_tiles_at_once(requested: int | None, device: str, batchable: bool = True) -> int:
    """The tiles inverted together: ``requested``, or by default
    :data:`GPU_TILES_AT_ONCE` on a CUDA device and 1 elsewhere (on a CPU one
    tile already uses every core; batching gains nothing there); 1 whatever
    was asked when the engines are not ``batchable`` (bf16 autocast, or
    another network than the preset's: :func:`can_step_together`)."""
    if not batchable:
        return 1
    if requested is not None:
        return check_tiles_at_once(requested)
    from .device import resolve_device

    return GPU_TILES_AT_ONCE if resolve_device(device).type == "cuda" else 1


def can_step_together(engines: Sequence[Inversion]) -> bool:
    """Whether these engines can run as one batched model.

    They must be more than one, on one device, with one speed set-up, the
    same padded size and the same network architecture (``MultiResUNet``
    networks of the same parameter shapes; the seeds may differ). Engines
    under bf16 autocast are not batched (a vmapped BatchNorm there refuses
    its float32 running statistics): they step one after the other.
    """
    from .network import MultiResUNet

    # (a vmapped BatchNorm under bf16 autocast refuses float32 running statistics)
    if len(engines) < 2 or any(e.bf16 or not isinstance(e.network, MultiResUNet)
                               for e in engines):
        return False
    first = engines[0]
    return all(e.device == first.device and e.padded_shape == first.padded_shape
               and e.channels_last == first.channels_last and e.z.shape == first.z.shape
               and e.preset.ncc_weight == first.preset.ncc_weight
               and e.parameter_shapes == first.parameter_shapes
               for e in engines[1:])


def batch_bytes_floor(z_channels: int, padded_shape: tuple[int, int], tiles: int) -> int:
    """A floor on the memory ``tiles`` tiles stepped together hold, in bytes.

    Each tile's ``z``, its noisy copy and its slice of the stacked input, in
    float32; the networks' activations come on top. Only a floor: a batch
    below it cannot fit, one above it may still not.
    """
    h, w = padded_shape
    return 3 * int(tiles) * int(z_channels) * int(h) * int(w) * 4


def available_bytes(device) -> int | None:
    """Free memory for the inversion on ``device`` (None when it cannot be told)."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_batch_fits(z_channels: int, padded_shape: tuple[int, int], tiles: int, device) -> None:
    """Refuse, before any tile is set up, a batch whose :func:`batch_bytes_floor` exceeds the
    free memory of ``device``.

    Raises
    ------
    DippasInputError
        Naming the memory needed and free, and a number of tiles that passes.
    """
    if tiles < 2:
        return
    free = available_bytes(device)
    need = batch_bytes_floor(z_channels, padded_shape, tiles)
    if free is None or need <= free:
        return
    fits = max(1, free // max(1, batch_bytes_floor(z_channels, padded_shape, 1)))
    gib = 2.0 ** 30
    raise DippasInputError(
        f"{tiles} tiles at once need more than {need / gib:.1f} GiB on {device.type} "
        f"(their z alone); {free / gib:.1f} GiB are free: invert at most {min(fits, tiles - 1)} "
        "at once (tiles_at_once, --tiles-at-once)")


def _batched_outputs(engines: Sequence[Inversion]) -> list:
    """Every engine's network output for its own noisy ``z``, from one vmapped call."""
    import torch
    from torch.func import functional_call, vmap

    from .network import plain_convolutions

    template = engines[0].network
    names = [n for n, _ in template.named_parameters()]
    # each engine keeps its tensors in the order of the names: a lookup by name per tile and
    # tensor (get_parameter) cost more than the step itself at small tiles
    own_params = zip(*(e.network_parameters for e in engines))
    # a differentiable stack: the gradient of each slice reaches its own engine's parameter
    params = {n: torch.stack(ts) for n, ts in zip(names, own_params)}
    buffers = _shared_buffers(engines)
    inputs = torch.stack([e.noisy_input() for e in engines])  # (R, 1, C, H, W)

    def one(p, b, z):
        return functional_call(template, (p, b), (z,))

    first = engines[0]
    with plain_convolutions(), autocast(first.device, first.bf16):
        # BatchNorm updates the stacked running statistics in place: each tile's own
        out = vmap(one)(params, buffers, inputs)
    return list(out.unbind(0))


class _BufferBatch:
    """The stacked BatchNorm buffers of one batch of engines (see :func:`_shared_buffers`)."""

    __slots__ = ("stacked", "size")

    def __init__(self, stacked: dict, size: int) -> None:
        self.stacked = stacked
        self.size = size


def _shared_buffers(engines: Sequence[Inversion]) -> dict:
    """One stacked tensor per buffer name, whose slices *are* the engines' buffers.

    Stacked once per batch (a batch changes when one of its tiles finishes)
    rather than every step: copying the running statistics back to every
    tile's buffers cost one device copy per tile and buffer per step (210
    buffers per network; at 8 tiles of 128² on an H200, more CPU time in
    ``cudaMemcpyAsync`` than the step's kernels took on the GPU, torch.profiler).
    """
    import torch

    bound = engines[0].buffer_batch
    batch = bound[0] if bound is not None else None
    if (isinstance(batch, _BufferBatch) and batch.size == len(engines)
            and all(e.buffer_batch is not None and e.buffer_batch[0] is batch
                    and e.buffer_batch[1] == i for i, e in enumerate(engines))):
        return batch.stacked
    names = [n for n, _ in engines[0].network.named_buffers()]
    with torch.no_grad():
        stacked = {n: torch.stack(ts) for n, ts in zip(names, zip(*(e.network_buffers for e in engines)))}
    batch = _BufferBatch(stacked, len(engines))
    for i, e in enumerate(engines):
        e.bind_buffers([stacked[n][i] for n in names], batch, i)
    return stacked


def _batch_key(engine: Inversion) -> tuple:
    """Engines with equal keys may form one batch (:func:`can_step_together` decides)."""
    return (tuple(engine.padded_shape), tuple(engine.z.shape))


def step_together(engines: Sequence[Inversion]) -> list[IterationEvent]:
    """Run one iteration of every engine, as batched models where they allow it.

    Parameters
    ----------
    engines : sequence of Inversion
        Unfinished engines. Those of one padded size form one batch when
        :func:`can_step_together` allows it; the others are stepped alone.

    Returns
    -------
    list of IterationEvent
        One per engine, in the order given. Each engine's ``seconds`` grows
        by the wall time of its batch's step (its tile was being inverted
        for that long).

    Raises
    ------
    RuntimeError
        If a loss is not finite (a diverged inversion).
    """
    groups: dict[tuple, list[int]] = {}
    for i, engine in enumerate(engines):
        groups.setdefault(_batch_key(engine), []).append(i)
    events: list = [None] * len(engines)
    for members in groups.values():
        batch = [engines[i] for i in members]
        stepped = _step_batch(batch) if can_step_together(batch) else [e.step() for e in batch]
        for i, ev in zip(members, stepped):
            events[i] = ev
    return events


def _step_batch(engines: Sequence[Inversion]) -> list[IterationEvent]:
    """One iteration of engines that :func:`can_step_together`, as one model."""
    import torch

    t0 = time.perf_counter()
    with deterministic_algorithms(engines[0].deterministic):
        for e in engines:
            e._begin_step()
        outs, losses, values = [], [], []
        for e, raw in zip(engines, _batched_outputs(engines)):
            out, loss, mse = e._loss(raw)
            outs.append(out)
            losses.append(loss)
            values.append(e._reported(loss, mse))
        torch.stack(losses).sum().backward()
        for e in engines:
            e._update()
    rows = torch.stack(values).tolist()  # one device sync for every tile
    return [e._report(out, row, t0) for e, out, row in zip(engines, outs, rows)]
