"""The DIPPAS inversion engine: a deep image prior with fingerprint injection.

One :class:`Inversion` fits a multi-resolution U-Net ``f`` so that its
output ``I_phi = f(z + noise)`` satisfies

    minimise  mean( (I_phi * (1 + gamma * P) - I) ** 2 )

over the network weights and the scalar ``gamma`` (paper §3, docs/inversion.md),
with images in [0, 1]:

- ``P`` is the camera fingerprint K (PRNU-aware) or the image's own noise
  residual W (PRNU-blind), broadcast over the three colour channels;
- ``gamma`` is a trainable scalar, starting at 0, updated by the same Adam
  optimiser as the weights and clamped to ``>= 0`` after every step;
- ``z`` is Gaussian (``preset.z_std``) at the padded image size, and fresh
  Gaussian noise of ``preset.z_noise_std`` is added to it at every
  iteration;
- image sides are padded up to a multiple of ``preset.pad_multiple`` (16
  with five scales) by making ``z`` that large; the output is cropped back
  to the image and the loss only sees real pixels (the padded border is
  free, which is the same as reflect-padding the target and masking it).

Each call of :meth:`Inversion.step` runs one iteration and returns an
:class:`IterationEvent` with the loss, the PSNR of ``I_phi`` against ``I``
(data range 1), gamma, the speed, and the output as a uint8 snapshot when
its PSNR reaches ``preset.save_psnr``. The engine keeps nothing on disk;
:class:`dippas.dip.dippas_run.DippasRun` adds the run folder, checkpoints and
tiling.

Determinism
-----------
The network is initialised under ``torch.manual_seed(seed)`` in a forked
RNG (the caller's global RNG is untouched), ``z`` is drawn on the CPU from
a generator seeded with ``seed``, and the noise of iteration ``i`` comes
from a device generator reseeded with ``(seed, i)``. So the random state at
any iteration is a function of the seed and the iteration, and a checkpoint
only needs the weights, the optimiser, gamma and the iteration count. On
the CPU, with torch's deterministic algorithms on (the default there), two
runs with the same seed give identical snapshots, and a resumed run
continues exactly like an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, dataclass, fields, replace

import numpy as np

from ..errors import DippasInputError
from ..progress import CancelToken
from ..dtype import to_float255
from ..validation import check_fingerprint, check_image
from .device import autocast, deterministic_algorithms, resolve_device
from .presets import Preset, get_preset
from .tiling import TileGeometry, padded

#: Network-defining preset fields a checkpoint must agree with.
_NETWORK_FIELDS = ("z_channels", "z_std", "z_noise_std", "widths", "skip_channels",
                   "alpha", "negative_slope", "upsample", "seed", "lr", "lr_half_life", "amsgrad",
                   "ncc_weight", "warm_start")

#: Stop reason of an inversion ended because its assembly was good enough
#: (:mod:`dippas.assembly.stop_rule`).
ASSEMBLED = "assembled"

#: Smoothing of the reported speed (exponential moving average weight).
_SPEED_SMOOTHING = 0.1


@dataclass(frozen=True)
class IterationEvent:
    """What one iteration reports.

    Attributes
    ----------
    iteration : int
        Iterations done so far in this tile (1 for the first).
    max_iter : int
        The iteration limit.
    loss : float
        The loss of this iteration (before the optimiser step).
    psnr : float
        PSNR in dB of this iteration's output against the input (range 1).
    gamma : float
        The gamma used in this iteration's loss (always >= 0).
    its_per_s : float
        Smoothed iterations per second.
    seconds : float
        Inversion time of the tile so far, across resumes.
    saved : bool
        Whether the output reached ``save_psnr`` and is a snapshot.
    snapshot : ndarray or None
        The output as uint8 ``(h, w, 3)`` when ``saved``, else ``None``.
    n_saved : int
        Snapshots of this tile so far, this one included.
    snapshot_index : int or None
        Index of the snapshot in the tile's store (set by the run).
    done : bool
        The stop rule holds: the inversion of this tile is over.
    stop_reason : str or None
        ``'psnr'``, ``'max_iter'`` or ``'assembled'`` when ``done``.
    tile : TileGeometry or None
        The tile (set by the run).
    tile_index, n_tiles : int
        Position of the tile in the run (0 and 1 for a bare inversion).
    tiles_together : int
        Tiles of the group this one is inverted in, itself included (they
        advance in step; the finished ones leave the batch;
        :mod:`dippas.dip.tile_batch`; 1 for a bare inversion).
    """

    iteration: int
    max_iter: int
    loss: float
    psnr: float
    gamma: float
    its_per_s: float
    seconds: float
    saved: bool
    snapshot: np.ndarray | None
    n_saved: int
    done: bool
    stop_reason: str | None
    snapshot_index: int | None = None
    tile: TileGeometry | None = None
    tile_index: int = 0
    n_tiles: int = 1
    tiles_together: int = 1

    def with_run_info(self, **fields) -> IterationEvent:
        """A copy with run-level fields (tile, indices) filled in."""
        return replace(self, **fields)


def build_network(preset: Preset):
    """The multi-resolution U-Net of a preset (``z_channels`` in, RGB out)."""
    from .network import MultiResUNet

    return MultiResUNet(in_channels=preset.z_channels, out_channels=3, widths=preset.widths,
                        skip_channels=preset.skip_channels, alpha=preset.alpha,
                        negative_slope=preset.negative_slope, upsample=preset.upsample)


def build_optimizer(params, lr: float, amsgrad: bool, device):
    """Adam over ``params`` as the inversion runs it.

    Parameters
    ----------
    params : iterable of Tensor
        The network's parameters and gamma.
    lr : float
        Learning rate.
    amsgrad : bool
        Use the AMSGrad variant (the presets do).
    device : torch.device
        Where the parameters live.

    Returns
    -------
    torch.optim.Adam
        With one fused kernel for all parameters on CPU and CUDA (on this
        2-core CPU 3.8x cheaper than the per-tensor loop; the same update).
    """
    import torch

    fused = True if torch.device(device).type in ("cpu", "cuda") else None
    return torch.optim.Adam(params, lr=lr, amsgrad=amsgrad, fused=fused)


def _iteration_seed(seed: int, iteration: int) -> int:
    """Seed of the input noise of one iteration (a 63-bit mix of both)."""
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(iteration) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x ^= x >> 31
    x = (x * 0x94D049BB133111EB) & (2**64 - 1)
    return (x ^ (x >> 29)) & (2**63 - 1)


def image_to_unit(image: np.ndarray) -> np.ndarray:
    """An image as float32 ``(h, w, 3)`` in [0, 1] (gray is replicated to RGB)."""
    img = check_image(image, min_side=1)
    unit = to_float255(img) / np.float32(255.0)
    if unit.ndim == 2:
        unit = np.repeat(unit[:, :, None], 3, axis=2)
    return np.clip(unit, 0.0, 1.0)


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB for data range 1 (``inf`` for a perfect fit)."""
    return math.inf if mse <= 0 else -10.0 * math.log10(mse)


class Inversion:
    """Deep-image-prior inversion of one image (or tile) with fingerprint injection.

    Parameters
    ----------
    image : ndarray, shape (h, w, 3) or (h, w)
        uint8, uint16 or float in 0-255 units (gray is replicated to RGB).
    pattern : ndarray, shape (h, w)
        The injected P: the fingerprint K (aware) or the image's residual W
        (blind); see :func:`dippas.dip.pattern.injection_pattern`.
    preset : Preset or str, optional
        Network and schedule (default ``'paper'``).
    device : str, optional
        ``'auto'`` (CUDA, MPS, CPU), ``'cpu'``, ``'cuda'`` or ``'mps'``.
    bf16 : bool, optional
        Run the network under bfloat16 autocast (the loss stays float32).
    channels_last : bool, optional
        Use the channels-last memory format (faster convolutions on recent GPUs).
    deterministic : bool, optional
        Turn on torch's deterministic algorithms during each step; default
        on for the CPU only.
    network_factory : callable, optional
        ``factory(preset) -> torch.nn.Module`` mapping ``(1, z_channels, H, W)``
        to ``(1, 3, H, W)`` in [0, 1]; default :func:`build_network`.

    Examples
    --------
    >>> import numpy as np
    >>> from dippas.dip import Inversion, get_preset
    >>> img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    >>> p = np.random.default_rng(1).normal(size=(32, 32)).astype(np.float32)
    >>> tiny = get_preset("fast", max_iter=3).with_overrides(
    ...     z_channels=4, widths=(4, 8), skip_channels=(4,))
    >>> inv = Inversion(img, p, tiny, device="cpu")
    >>> [ev.iteration for ev in inv]
    [1, 2, 3]
    """

    def __init__(self, image: np.ndarray, pattern: np.ndarray, preset: Preset | str = "paper", *,
                 device: str = "auto", bf16: bool = False, channels_last: bool = False,
                 deterministic: bool | None = None,
                 network_factory: Callable[[Preset], object] | None = None) -> None:
        import torch

        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        unit = image_to_unit(image)
        self.shape = unit.shape[:2]
        p = check_fingerprint(pattern, shape=self.shape, name="pattern")
        self.device = resolve_device(device)
        self.bf16 = bool(bf16)
        self.channels_last = bool(channels_last)
        self.deterministic = (self.device.type == "cpu") if deterministic is None else bool(deterministic)
        self._memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        m = self.preset.pad_multiple
        self.padded_shape = (padded(self.shape[0], m), padded(self.shape[1], m))

        self.network = self._make_network(network_factory or build_network)
        #: The network's parameters and buffers, in the order of ``named_parameters()`` and
        #: ``named_buffers()``: ``load_state_dict`` copies into them, so they stay these tensors
        #: (:mod:`dippas.dip.tile_batch` stacks the parameters every step, and makes the
        #: buffers views of one stacked tensor per batch: :meth:`bind_buffers`).
        self.network_parameters = tuple(self.network.parameters())
        self.network_buffers = tuple(self.network.buffers())
        #: The batch whose stacked buffers this network's buffers are views of, and the
        #: tile's place in it (set by :mod:`dippas.dip.tile_batch`), or None.
        self.buffer_batch: tuple[object, int] | None = None
        #: ``(name, shape)`` of every network parameter: the architecture, for batching.
        self.parameter_shapes = tuple((n, tuple(t.shape)) for n, t in self.network.named_parameters())
        self._z_checksum = self._make_z()
        from .network import MultiResUNet

        self._network_perturbs_input = isinstance(self.network, MultiResUNet)
        self._noise_gen = torch.Generator(device=self.device)
        self.gamma = torch.nn.Parameter(torch.zeros((), device=self.device))
        self.optimizer = build_optimizer([*self.network_parameters, self.gamma],
                                         self.preset.lr, self.preset.amsgrad, self.device)
        self.target = torch.from_numpy(np.ascontiguousarray(unit.transpose(2, 0, 1)))[None].to(self.device)
        self.pattern = torch.from_numpy(np.array(p, dtype=np.float32))[None, None].to(self.device)

        self.iteration = 0
        self.n_saved = 0
        self.seconds = 0.0
        self.last_psnr: float | None = None
        self.best_psnr = -math.inf
        self._best: tuple | None = None  # (output tensor, iteration, psnr, loss, gamma)
        self._speed = 0.0
        self._finished: str | None = None

    # ------------------------------------------------------------ set-up
    def _make_network(self, factory):
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.preset.seed)
            net = factory(self.preset)
        if self.preset.warm_start:
            from .warm_start import load_warm_start

            net.load_state_dict(load_warm_start(self.preset))
        net = net.to(self.device, memory_format=self._memory_format)
        net.train()
        return net

    def _make_z(self) -> float:
        import torch

        gen = torch.Generator(device="cpu").manual_seed(self.preset.seed)
        z = torch.randn((1, self.preset.z_channels, *self.padded_shape), generator=gen)
        z.mul_(self.preset.z_std)
        checksum = float(z.double().sum())
        self.z = z.to(self.device).contiguous(memory_format=self._memory_format)
        return checksum

    # ------------------------------------------------------------ state
    @property
    def done(self) -> bool:
        """Whether the stop rule holds (PSNR above ``stop_psnr`` or ``max_iter`` reached)."""
        return self.stop_reason is not None

    @property
    def stop_reason(self) -> str | None:
        """``'psnr'``, ``'max_iter'``, the reason given to :meth:`finish`, or ``None``."""
        if self._finished is not None:
            return self._finished
        if self.last_psnr is not None and self.last_psnr > self.preset.stop_psnr:
            return "psnr"
        if self.iteration >= self.preset.max_iter:
            return "max_iter"
        return None

    def finish(self, reason: str) -> None:
        """End the inversion for an outside reason (e.g. ``'assembled'``: its
        assembly is good enough, :mod:`dippas.assembly.stop_rule`).

        The reason is not part of :meth:`state_dict`: the run that decided
        it records it in the tile's status, and a resume without that rule
        continues the inversion.
        """
        self._finished = str(reason)

    def bind_buffers(self, views: Sequence, batch: object, place: int) -> None:
        """Make the network's buffers ``views`` (equal in value, in the order of
        ``named_buffers()``): slices of the stacked buffers of ``batch``, this tile at ``place``.

        A vmapped step updates the running statistics of the stacked tensor in
        place, so every tile's own statistics follow with no copy back.
        """
        for (name, _), view in zip(self.network.named_buffers(), views, strict=True):
            owner, _, attr = name.rpartition(".")
            self.network.get_submodule(owner)._buffers[attr] = view
        self.network_buffers = tuple(views)
        self.buffer_batch = (batch, place)

    def state_dict(self) -> dict:
        """Everything needed to continue: weights, optimiser, gamma, counters.

        ``z`` is stored as its seed, shape and checksum (it is regenerated
        from the seed; for the paper preset it is 512 MB); the input noise
        needs no state (it is reseeded from the seed and the iteration).
        """
        return {
            "iteration": self.iteration,
            "n_saved": self.n_saved,
            "seconds": self.seconds,
            "last_psnr": self.last_psnr,
            "best_psnr": self.best_psnr,
            "gamma": float(self.gamma.detach()),
            # a copy of its own: a buffer may be a view of a batch's stacked tensor, whose
            # whole storage torch.save would otherwise write
            "network": {k: v.detach().to("cpu", copy=True) for k, v in self.network.state_dict().items()},
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "z_seed": self.preset.seed,
            "z_shape": list(self.z.shape),
            "z_checksum": self._z_checksum,
            "image_shape": list(self.shape),
            "preset": self.preset.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict` (checks it belongs to this set-up).

        Raises
        ------
        DippasInputError
            If the checkpoint was made for another image size, network or
            seed, or ``z`` cannot be regenerated identically.
        """
        import torch

        if list(state["image_shape"]) != list(self.shape):
            raise DippasInputError(
                f"checkpoint is for a {state['image_shape']} image, not {list(self.shape)}")
        # a field the checkpoint predates had the value Preset gives it by default
        saved = {**_preset_defaults(), **state["preset"]}
        mine = self.preset.to_dict()
        for key in _NETWORK_FIELDS:
            if saved.get(key) != mine[key]:
                raise DippasInputError(
                    f"checkpoint was made with {key}={saved.get(key)!r}, not {mine[key]!r}"
                )
        if list(state["z_shape"]) != list(self.z.shape) or not math.isclose(
                state["z_checksum"], self._z_checksum, rel_tol=1e-9, abs_tol=1e-6):
            raise DippasInputError("checkpoint's z cannot be regenerated (another torch version?)")
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        with torch.no_grad():
            self.gamma.fill_(float(state["gamma"]))
        self.iteration = int(state["iteration"])
        self.n_saved = int(state["n_saved"])
        self.seconds = float(state["seconds"])
        self.last_psnr = None if state["last_psnr"] is None else float(state["last_psnr"])
        self.best_psnr = float(state["best_psnr"])

    # ------------------------------------------------------------ iterating
    def _seed_noise(self) -> None:
        """Reseed the input-noise generator for the coming iteration."""
        self._noise_gen.manual_seed(_iteration_seed(self.preset.seed, self.iteration + 1))

    def noisy_input(self):
        """``z`` plus this iteration's input noise, drawn in full (the explicit form).

        The network's own :meth:`~dippas.dip.network.MultiResUNet.forward`
        draws the same noise in distribution more cheaply; this form is for
        networks that cannot (other factories, :mod:`dippas.dip.tile_batch`).
        """
        import torch

        self._seed_noise()
        noise = torch.randn(self.z.shape, generator=self._noise_gen, device=self.z.device,
                            dtype=self.z.dtype)
        return noise.mul_(self.preset.z_noise_std).add_(self.z)

    def draw_noise_in_full(self) -> None:
        """Draw the input noise in full from now on (:meth:`noisy_input`), as a batch of
        tiles does (:mod:`dippas.dip.tile_batch`): the same distribution, other numbers."""
        self._network_perturbs_input = False

    def _network_output(self):
        """The network's output for this iteration's perturbed ``z``, ``(1, 3, H, W)``."""
        if self._network_perturbs_input:
            # the network adds the noise itself, drawn only in the row space
            # of its first layer (exact in distribution; 61 of 512 numbers
            # per pixel for the paper network)
            self._seed_noise()
            args = (self.z, self.preset.z_noise_std, self._noise_gen)
        else:
            args = (self.noisy_input(),)
        with autocast(self.device, self.bf16):
            return self.network(*args)

    def _loss(self, out):
        """The cropped output, the loss and the output's MSE for a network output."""
        import torch

        h, w = self.shape
        out = out[:, :, :h, :w].float()
        fit = out * (1.0 + self.gamma * self.pattern)
        loss = torch.mean((fit - self.target) ** 2)
        if self.preset.ncc_weight:
            from .correlation_loss import ncc_penalty

            loss = loss + self.preset.ncc_weight * ncc_penalty(out, self.pattern)
        with torch.no_grad():
            mse = torch.mean((out - self.target) ** 2)
        return out, loss, mse

    def _forward_loss(self):
        return self._loss(self._network_output())

    def _begin_step(self) -> None:
        """Set this iteration's learning rate and clear the gradients."""
        if self.preset.lr_half_life:
            lr = self.preset.lr * 2.0 ** (-self.iteration / self.preset.lr_half_life)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)

    def _update(self) -> None:
        """The optimiser step after the backward pass, gamma kept ``>= 0``."""
        import torch

        self.optimizer.step()
        with torch.no_grad():
            self.gamma.clamp_(min=0.0)

    def _reported(self, loss, mse):
        """Loss, MSE and gamma of this iteration as one tensor, fetched later with one sync."""
        import torch

        return torch.stack([loss.detach(), mse, self.gamma.detach().clone()])

    def step(self) -> IterationEvent:
        """Run one iteration and report it.

        Raises
        ------
        RuntimeError
            If the loss is not finite (a diverged inversion).
        """
        t0 = time.perf_counter()
        with deterministic_algorithms(self.deterministic):
            self._begin_step()
            out, loss, mse = self._forward_loss()
            values = self._reported(loss, mse)
            loss.backward()
            self._update()
        return self._report(out, values.tolist(), t0)

    def _report(self, out, values: list[float], t0: float) -> IterationEvent:
        """Book one finished iteration (its output and ``[loss, mse, gamma]``) and report it.

        Parameters
        ----------
        out : Tensor, shape (1, 3, h, w)
            The iteration's output, cropped to the image.
        values : list of float
            Its loss, MSE and gamma.
        t0 : float
            ``time.perf_counter()`` when the iteration started (for tiles
            stepped together, when the batch's step started: each tile was
            being inverted from then until its report).

        Raises
        ------
        RuntimeError
            If the loss is not finite (a diverged inversion).
        """
        loss_value, mse_value, gamma = (float(v) for v in values)
        if not math.isfinite(loss_value):
            raise RuntimeError(
                f"the inversion diverged at iteration {self.iteration + 1} (loss {loss_value})")
        psnr = psnr_from_mse(mse_value)
        self.iteration += 1
        self.last_psnr = psnr
        saved = psnr >= self.preset.save_psnr
        if psnr > self.best_psnr and not saved:
            # Kept on the device (no sync): the fallback snapshot of a run that
            # never reaches the save threshold, see best_snapshot().
            self._best = (out.detach().clone(), self.iteration, psnr, loss_value, gamma)
        self.best_psnr = max(self.best_psnr, psnr)
        snapshot = _to_uint8(out) if saved else None
        self.n_saved += int(saved)
        dt = time.perf_counter() - t0
        self.seconds += dt
        rate = 1.0 / dt if dt > 0 else 0.0
        a = _SPEED_SMOOTHING
        self._speed = rate if self._speed == 0 else (1 - a) * self._speed + a * rate
        return IterationEvent(
            iteration=self.iteration, max_iter=self.preset.max_iter, loss=loss_value, psnr=psnr,
            gamma=gamma, its_per_s=self._speed, seconds=self.seconds, saved=saved,
            snapshot=snapshot, n_saved=self.n_saved, done=self.done, stop_reason=self.stop_reason,
        )

    def best_snapshot(self) -> tuple[np.ndarray, int, float, float, float] | None:
        """The best-PSNR output not saved as a snapshot, since this engine started.

        A run whose outputs never reach the save threshold stores this one at
        its end, so the assembler always has the best PSNR reached to fall
        back on (paper §3, docs/inversion.md).

        Returns
        -------
        (frame, iteration, psnr, loss, gamma) or None
            ``frame`` is uint8 ``(h, w, 3)``.
        """
        if self._best is None:
            return None
        out, iteration, psnr, loss, gamma = self._best
        return _to_uint8(out), iteration, psnr, loss, gamma

    def __iter__(self) -> Iterator[IterationEvent]:
        """Step until the stop rule holds."""
        while not self.done:
            yield self.step()

    def run(self, callback: Callable[[IterationEvent], None] | None = None,
            cancel: CancelToken | None = None) -> IterationEvent | None:
        """Iterate until the stop rule holds or ``cancel`` is set.

        Parameters
        ----------
        callback : callable, optional
            Called with every :class:`IterationEvent`.
        cancel : CancelToken, optional
            Checked before every iteration.

        Returns
        -------
        IterationEvent or None
            The last event (``None`` if no iteration ran).
        """
        last = None
        while not self.done and not (cancel is not None and cancel.cancelled):
            last = self.step()
            if callback is not None:
                callback(last)
        return last


def _preset_defaults() -> dict:
    """The default value of every :class:`Preset` field that has one."""
    return {f.name: f.default for f in fields(Preset) if f.default is not MISSING}


def _to_uint8(out) -> np.ndarray:
    """``(1, 3, h, w)`` tensor in [0, 1] to a uint8 ``(h, w, 3)`` array."""
    import torch

    with torch.no_grad():
        q = torch.round(out[0].detach() * 255.0).clamp_(0, 255).to(torch.uint8)
    return q.permute(1, 2, 0).contiguous().cpu().numpy()


def _to_cpu(obj):
    """Tensors of a nested state dict moved to the CPU."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj
