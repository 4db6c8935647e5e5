"""The DIPPAS generator: a multi-resolution U-Net (paper section 3.4).

Architecture, as read from the paper (docs/inversion.md), with the
details the text leaves open taken from the authors' code (the deep-prior
``MulResUnet`` it builds on):

* **Multi-resolution block** of width ``U``: ``W = alpha * U``; a chain of
  three 3x3 convolutions with ``int(0.167 W)``, ``int(0.333 W)`` and
  ``int(0.5 W)`` outputs, each followed by BatchNorm and LeakyReLU; the three
  outputs are concatenated and batch-normalised, then added to a 1x1
  shortcut convolution of the block input (itself followed by BatchNorm and
  LeakyReLU: the paper's "input, scaled by a learned factor"); the sum goes
  through LeakyReLU, then a last BatchNorm.
* **Encoder**: one block per scale (the first reads ``z``); between scales, a
  3x3 stride-2 convolution + BatchNorm + LeakyReLU of the block output.
* **Skip paths** (ResPath of MultiResUNet): the encoder output of every scale
  but the deepest goes through residual units ``BN(act(conv3x3(x) +
  conv1x1(x)))`` (each convolution with its own BatchNorm and LeakyReLU).
  The authors' code uses one unit per path; the MultiResUNet paper uses 4, 3,
  2, 1 (``path_lengths='multiresunet'``).
* **Decoder**: nearest-neighbour x2 upsampling of the deeper output,
  concatenation ``[skip path, upsampled]`` (in that order), then a
  multi-resolution block of the width of that scale.
* **Output**: 1x1 convolution (with bias) to ``out_channels``, then a sigmoid.

PyTorch default initialisation and BatchNorm settings (momentum 0.1, eps
1e-5), as in the authors' code. For the paper widths the blocks output 25,
51, 105, 212 and 426 channels; about 2.2 M parameters; 45 GFLOP forward and
120 GFLOP per training iteration at 512x512 (:func:`count_flops`).

All convolutions use zero padding ("same" size). Image sides must be
multiples of ``2 ** (len(widths) - 1)`` (16 with five scales).

Speed options (exact, or exact in distribution for the noise; none is
CUDA-specific, and the module runs unchanged on CUDA):

* ``bias_before_bn=False`` (default) drops the bias of every convolution that
  is followed by BatchNorm. In training mode, which is the only mode a deep
  image prior uses, BatchNorm subtracts the per-channel batch mean, so such a
  bias cancels exactly and its gradient is identically zero: the function and
  the training trajectory are unchanged, only work is saved.
* ``fused_input`` computes the two convolutions that open a block (its 3x3
  convolution and its 1x1 shortcut, which read the same input) with a single
  1x1 convolution, i.e. one GEMM with ``9 * c1 + c`` output rows, followed by
  ``F.fold`` that sums the nine shifted 3x3 taps. In the decoder, the rows
  reading the upsampled deeper features run at half resolution (a 1x1
  convolution commutes with nearest upsampling), so neither the upsampled
  tensor nor the concatenation is built. Same parameters (same
  ``state_dict``), same result up to float summation order.
* ``projected_noise``: ``forward(z, noise_std)`` applies the network to
  ``z + n`` with fresh ``n ~ N(0, noise_std^2)`` but samples ``n`` only in the
  row space of the first GEMM (61 of 512 dimensions for the paper network),
  with the weight gradient completed by an exact conditional sample; the
  training trajectory has the same distribution as with explicit noise (see
  :class:`_ProjectedNoiseGEMM`). This removes the generation of 512 x H x W
  normal numbers per iteration, the largest single cost on CPU.
* 1x1 convolutions run as plain matrix products (:func:`conv1x1`).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

# (How OpenMP threads wait is set when dippas is imported: dippas.openmp_policy.)
import torch
import torch.nn.functional as F
from torch import nn

#: ``fused_input='auto'`` fuses a block's input convolutions when its input has
#: at least this many times more channels than the 3x3 convolution outputs.
#: Measured on a Xeon (AVX-512, oneDNN 3): the fused form is 1.3-3x faster for
#: ratios of 16 and more (first block on z, decoder blocks) and up to 1.5x
#: slower for the ratio of about 3 of the encoder blocks.
FUSE_MIN_RATIO = 12

__all__ = [
    "MultiResBlock",
    "MultiResUNet",
    "ResPath",
    "conv1x1",
    "count_flops",
    "multires_channels",
    "plain_convolutions",
]


def multires_channels(width: int, alpha: float = 1.67) -> tuple[int, int, int]:
    """Output channels of the three chained convolutions of a block.

    Parameters
    ----------
    width : int
        The block width ``U``.
    alpha : float
        Width multiplier; ``W = alpha * U``.

    Returns
    -------
    tuple of int
        ``(int(0.167 W), int(0.333 W), int(0.5 W))``; the block outputs their
        sum. For ``U = 16``: ``(4, 8, 13)``, 25 channels.
    """
    w = alpha * width
    return int(w * 0.167), int(w * 0.333), int(w * 0.5)


#: Large CPU normal fills are split into this many independently seeded
#: chunks (a fixed number, so results do not depend on the thread count).
_NORMAL_CHUNKS = 2
_NORMAL_POOL: ThreadPoolExecutor | None = None


def _fill_normal_(t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Fill ``t`` with standard normal numbers, in parallel on CPU.

    PyTorch's CPU ``normal_`` runs on one thread (its Mersenne-Twister state
    is sequential). For large contiguous CPU tensors the fill is split into
    :data:`_NORMAL_CHUNKS` chunks: the first drawn from ``generator``, the
    others from generators seeded by ``generator``; the chunks run in
    parallel threads when torch may use more than one. Deterministic for a
    given ``generator`` state whatever the thread count.
    """
    global _NORMAL_POOL
    flat = t.view(-1)
    if t.device.type != "cpu" or flat.numel() < (1 << 20) or not t.is_contiguous():
        return t.normal_(generator=generator)
    chunks = flat.chunk(_NORMAL_CHUNKS)
    seeds = torch.randint(0, 2 ** 62, (len(chunks) - 1,), generator=generator).tolist()
    gens = [generator] + [torch.Generator().manual_seed(int(sd)) for sd in seeds]
    if torch.get_num_threads() > 1:
        if _NORMAL_POOL is None:
            _NORMAL_POOL = ThreadPoolExecutor(max_workers=_NORMAL_CHUNKS - 1)
        futures = [_NORMAL_POOL.submit(c.normal_, generator=g)
                   for c, g in zip(chunks[1:], gens[1:])]
        chunks[0].normal_(generator=gens[0])
        for f in futures:
            f.result()
    else:
        for c, g in zip(chunks, gens):
            c.normal_(generator=g)
    return t


def _sum_cells_2x2(g: torch.Tensor) -> torch.Tensor:
    """Sum of each 2x2 cell of ``(N, R, H, W)``: the adjoint of nearest x2 upsampling.

    Four strided slices beat a reduction over broadcast axes by 3x on CPU.
    """
    gc = g[..., ::2, ::2] + g[..., 1::2, ::2]
    gc += g[..., ::2, 1::2]
    gc += g[..., 1::2, 1::2]
    return gc


class _UpsampledInputGEMM(torch.autograd.Function):
    """``Y = Wx x + upsample_nearest_x2(Wc c)`` per pixel: a decoder block's input GEMM.

    ``x`` is ``(N, Cx, H, W)``, ``c`` is ``(N, Cc, H/2, W/2)``; ``Wx`` and
    ``Wc`` are the column blocks of the block's stacked weights. One autograd
    node for the whole product: built from separate products and an in-place
    add, autograd records the add on a view of the first product and its
    backward clones the full-resolution gradient (``CopySlices``: 13 % of a
    ``fast`` iteration at 256x256, ``torch.profiler``).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, wx: torch.Tensor, c: torch.Tensor,
                wc: torch.Tensor) -> torch.Tensor:
        n, cx, h, w = x.shape
        r = wx.shape[0]
        dev = x.device.type
        # a custom function is not autocast: run the GEMMs in autocast's dtype
        dt = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
        ctx.dtypes = (x.dtype, wx.dtype, c.dtype, wc.dtype)
        xf = x.reshape(n, cx, h * w).to(dt)
        cf = c.reshape(n, c.shape[1], (h // 2) * (w // 2)).to(dt)
        wx, wc = wx.to(dt), wc.to(dt)
        y = xf.new_empty((n, r, h, w))
        for i in range(n):  # 2-D GEMMs: no batched-matmul copies
            torch.mm(wx, xf[i], out=y[i].view(r, h * w))
            yc = torch.mm(wc, cf[i]).view(r, h // 2, 1, w // 2, 1)
            y[i].view(r, h // 2, 2, w // 2, 2).add_(yc)
        ctx.save_for_backward(xf, wx, cf, wc)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):
        xf, wx, cf, wc = ctx.saved_tensors
        n, r, h, w = g.shape
        g = g.to(xf.dtype)
        gf = g.reshape(n, r, h * w)
        gcf = _sum_cells_2x2(g).reshape(n, r, -1)
        need_x, need_wx, need_c, need_wc = ctx.needs_input_grad
        gx = torch.matmul(wx.t(), gf).reshape(n, -1, h, w) if need_x else None
        gcoarse = (torch.matmul(wc.t(), gcf).reshape(n, -1, h // 2, w // 2)
                   if need_c else None)
        gwx = sum(torch.mm(gf[i], xf[i].t()) for i in range(n)) if need_wx else None
        gwc = sum(torch.mm(gcf[i], cf[i].t()) for i in range(n)) if need_wc else None
        grads = (gx, gwx, gcoarse, gwc)
        return tuple(None if v is None else v.to(d) for v, d in zip(grads, ctx.dtypes))


class _ProjectedNoiseGEMM(torch.autograd.Function):
    """``Y = W (z + n)`` per pixel, ``n ~ N(0, sigma^2 I)``, sampled in ``W``'s row space.

    ``W`` is ``(R, C)`` with ``R < C``. With the reduced QR ``W^T = Q Rq``, the
    noise splits into ``n = Q u + (I - Q Q^T) xi`` with ``u = Q^T n ~ N(0,
    sigma^2 I_R)`` and ``xi`` an independent copy of ``n``. ``W n = Rq^T u``,
    so the forward pass needs ``R`` random numbers per pixel instead of
    ``C``. The weight gradient ``G (z + n)^T`` needs ``G n^T = (G u^T) Q^T
    + M (I - Q Q^T)`` with ``M = G xi^T``; given ``G`` (which does not depend
    on ``xi``), the columns of ``M`` are independent ``N(0, sigma^2 G G^T)``,
    so ``M = sigma (G G^T)^{1/2} E`` with ``E`` an ``R x C`` standard normal
    matrix. Forward values and weight gradients therefore have exactly the
    joint distribution they have with explicit noise.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, weight: torch.Tensor, sigma: float,
                generator: torch.Generator | None) -> torch.Tensor:
        n, c, h, w = z.shape
        r = weight.shape[0]
        q, rq = torch.linalg.qr(weight.detach().double().t())  # (C, R), (R, R)
        rqt = rq.t().to(z.dtype)
        u = _fill_normal_(z.new_empty((n, r, h * w)), generator)
        u.mul_(sigma)
        zf = z.reshape(n, c, h * w)
        y = z.new_empty((n, r, h * w))
        # in z's dtype also under autocast (a custom function is not autocast)
        with torch.autocast(z.device.type, enabled=False):
            for i in range(n):  # 2-D GEMMs: no batched-matmul copies
                torch.mm(weight, zf[i], out=y[i])
                y[i].addmm_(rqt, u[i])
        ctx.save_for_backward(zf, u, q.to(z.dtype))
        ctx.sigma = float(sigma)
        ctx.generator = generator
        return y.reshape(n, r, h, w)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y: torch.Tensor):
        zf, u, q = ctx.saved_tensors
        n, r = grad_y.shape[:2]
        g = grad_y.reshape(n, r, -1)
        grad_w = g.new_zeros((r, zf.shape[1]))
        gu = g.new_zeros((r, r))
        ggt = g.new_zeros((r, r))
        for i in range(n):
            grad_w.addmm_(g[i], zf[i].t())  # G z^T
            gu.addmm_(g[i], u[i].t())  # G u^T
            ggt.addmm_(g[i], g[i].t())  # G G^T
        evals, evecs = torch.linalg.eigh(ggt.double())
        root = (evecs * evals.clamp_min(0).sqrt()) @ evecs.t()
        e = torch.randn((r, q.shape[0]), generator=ctx.generator, device=q.device,
                        dtype=torch.float64)
        m = ctx.sigma * (root @ e)
        qd = q.double()
        m = m - (m @ qd) @ qd.t()
        grad_w += gu @ q.t()
        grad_w += m.to(grad_w.dtype)
        return None, grad_w, None, None


#: Per-thread switch of :func:`plain_convolutions`.
_MODE = threading.local()


def _plain() -> bool:
    """Whether this thread runs the plain ``nn.Conv2d`` modules (:func:`plain_convolutions`)."""
    return getattr(_MODE, "plain", False)


@contextlib.contextmanager
def plain_convolutions() -> Iterator[None]:
    """Run every convolution of the networks as its ``nn.Conv2d`` module, in this thread.

    No fused GEMMs, custom autograd functions or projected noise: the form
    that forward hooks see whole (:func:`count_flops`) and that
    ``torch.func.vmap`` can batch (:mod:`dippas.dip.tile_batch`). Same
    parameters, same function up to float summation order.
    """
    before = _plain()
    _MODE.plain = True
    try:
        yield
    finally:
        _MODE.plain = before


def conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
            ) -> torch.Tensor:
    """1x1 convolution as a plain matrix product.

    Same result as ``F.conv2d(x, weight, bias)``; for contiguous NCHW input
    it runs as one 2-D GEMM per sample, which oneDNN's 1x1 convolution is 2-4x
    slower than on CPU for the thin channel counts of this network (forward
    plus backward). Other layouts fall back to ``F.conv2d``.

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W)
    weight : Tensor, shape (O, C, 1, 1) or (O, C)
    bias : Tensor, shape (O,), optional

    Returns
    -------
    Tensor, shape (N, O, H, W)
    """
    w2 = weight.reshape(weight.shape[0], -1)
    if not x.is_contiguous():
        return F.conv2d(x, w2[:, :, None, None], bias)
    n, c, h, w = x.shape
    if n == 1:
        xf = x.reshape(c, h * w)
        y = torch.mm(w2, xf) if bias is None else torch.addmm(bias[:, None], w2, xf)
    else:
        y = torch.matmul(w2, x.reshape(n, c, h * w))
        if bias is not None:
            y = y + bias[:, None]
    return y.reshape(n, w2.shape[0], h, w)



class ConvBNAct(nn.Module):
    """Convolution (zero "same" padding) + BatchNorm + LeakyReLU.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int
        Odd kernel side.
    stride : int
        Convolution stride.
    negative_slope : float
        LeakyReLU slope.
    bias : bool
        Give the convolution a bias (redundant before BatchNorm in training
        mode; kept as an option for checkpoint compatibility).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, negative_slope: float = 0.2, bias: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              padding=(kernel_size - 1) // 2, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels)
        self.negative_slope = float(negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv, BN and LeakyReLU."""
        conv = self.conv
        if conv.kernel_size == (1, 1) and conv.stride == (1, 1) and not _plain():
            return self.post(conv1x1(x, conv.weight, conv.bias))
        return self.post(conv(x))

    def post(self, y: torch.Tensor) -> torch.Tensor:
        """BN and LeakyReLU of an already computed convolution output."""
        return F.leaky_relu(self.bn(y), self.negative_slope, inplace=True)


class MultiResBlock(nn.Module):
    """Multi-resolution block of width ``U`` (see the module docstring).

    Parameters
    ----------
    in_channels : int
        Input channels.
    width : int
        Block width ``U``.
    alpha : float
        ``W = alpha * U``.
    negative_slope : float
        LeakyReLU slope.
    bias_before_bn : bool
        Bias on the convolutions followed by BatchNorm.
    fused_input : bool
        Compute the first 3x3 convolution and the 1x1 shortcut, which both
        read the block input, with one GEMM and a ``fold`` (worth it when
        ``in_channels`` is much larger than ``c1``; see
        :data:`FUSE_MIN_RATIO`).

    Attributes
    ----------
    out_channels : int
        ``sum(multires_channels(width, alpha))``.
    """

    def __init__(self, in_channels: int, width: int, alpha: float = 1.67,
                 negative_slope: float = 0.2, bias_before_bn: bool = False,
                 fused_input: bool = False) -> None:
        super().__init__()
        c1, c2, c3 = multires_channels(width, alpha)
        if min(c1, c2, c3) < 1:
            raise ValueError(
                f"width {width} with alpha {alpha} gives an empty convolution "
                f"({c1}, {c2}, {c3} channels); use a width of at least "
                f"{math.ceil(1 / (0.167 * alpha))}"
            )
        self.in_channels = int(in_channels)
        self.out_channels = c1 + c2 + c3
        ns, b = negative_slope, bias_before_bn
        self.conv3x3 = ConvBNAct(in_channels, c1, 3, negative_slope=ns, bias=b)
        self.conv5x5 = ConvBNAct(c1, c2, 3, negative_slope=ns, bias=b)
        self.conv7x7 = ConvBNAct(c2, c3, 3, negative_slope=ns, bias=b)
        self.shortcut = ConvBNAct(in_channels, self.out_channels, 1, negative_slope=ns, bias=b)
        self.bn_cat = nn.BatchNorm2d(self.out_channels)
        self.bn_out = nn.BatchNorm2d(self.out_channels)
        self.negative_slope = float(negative_slope)
        self.fused_input = bool(fused_input)

    def _input_convs(self, x: torch.Tensor, noise_std: float = 0.0,
                     generator: torch.Generator | None = None,
                     coarse: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw outputs of ``conv3x3`` and ``shortcut``, computed in one pass over ``x``.

        A 3x3 convolution ``y(p) = sum_k w_k . x(p + d_k)`` is rewritten as
        one 1x1 convolution producing the nine taps ``Y_k = w_k . x`` (stacked
        with the 1x1 shortcut into a single GEMM), followed by ``F.fold``
        (col2im), which sums the shifted taps. ``fold`` scatters
        (``out(q) += Y_k(q - d_k)``), so the taps are flipped.

        With ``noise_std > 0`` the input is ``x + n``, ``n ~ N(0, noise_std^2)``
        i.i.d., and the noise is sampled in the row space of the stacked
        weights (:class:`_ProjectedNoiseGEMM`), which is exact in
        distribution and needs ``9 c1 + c`` instead of ``in_channels``
        random numbers per pixel.

        With ``coarse`` (half resolution), the block input is
        ``cat([x, upsample_nearest_x2(coarse)])``. A 1x1 convolution commutes
        with nearest-neighbour upsampling, so the rows of the GEMM that read
        ``coarse`` are applied at half resolution and broadcast-added: neither
        the upsampled tensor nor the concatenation is materialised, and that
        part of the GEMM costs 4x less.
        """
        w3 = self.conv3x3.conv.weight  # (c1, C, 3, 3)
        w1 = self.shortcut.conv.weight  # (c, C, 1, 1)
        c1, cin = w3.shape[0], w3.shape[1]
        rows = w3.flip(2, 3).permute(0, 2, 3, 1).reshape(9 * c1, cin)  # rows (out, tap)
        weight = torch.cat([rows, w1.reshape(w1.shape[0], cin)], 0)
        if coarse is not None:
            cx = x.shape[1]
            y = _UpsampledInputGEMM.apply(x, weight[:, :cx], coarse, weight[:, cx:])
        elif noise_std > 0:
            y = _ProjectedNoiseGEMM.apply(x, weight, float(noise_std), generator)
        else:
            y = conv1x1(x, weight)
        if self.shortcut.conv.bias is not None:
            y = y + torch.cat([self.shortcut.conv.bias.new_zeros(9 * c1),
                               self.shortcut.conv.bias])[:, None, None]
        taps, short = y.split([9 * c1, w1.shape[0]], 1)
        n, _, h, w = taps.shape
        out3 = F.fold(taps.reshape(n, 9 * c1, h * w), (h, w), 3, padding=1)
        if self.conv3x3.conv.bias is not None:
            out3 = out3 + self.conv3x3.conv.bias[:, None, None]
        return out3, short

    def projected_noise_ok(self, x: torch.Tensor) -> bool:
        """Whether input noise can be sampled in the weights' row space for ``x``."""
        rows = 9 * self.conv3x3.conv.out_channels + self.shortcut.conv.out_channels
        return (self.fused_input and not _plain() and not x.requires_grad
                and self.in_channels > rows)

    def forward(self, x: torch.Tensor, noise_std: float = 0.0,
                generator: torch.Generator | None = None,
                coarse: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the block to ``x`` (plus i.i.d. Gaussian noise of ``noise_std``).

        Parameters
        ----------
        x : Tensor, shape (N, C_x, H, W)
            Block input, or its first ``C_x`` channels if ``coarse`` is given.
        noise_std : float
            Standard deviation of fresh Gaussian noise added to ``x``.
        generator : torch.Generator, optional
            Source of that noise.
        coarse : Tensor, shape (N, in_channels - C_x, H/2, W/2), optional
            The remaining input channels at half resolution: the block input
            is ``cat([x, upsample_nearest_x2(coarse)], 1)`` (the decoder case).

        Returns
        -------
        Tensor, shape (N, out_channels, H, W)
        """
        if coarse is not None and (not self.fused_input or _plain() or noise_std > 0):
            x = torch.cat([x, F.interpolate(coarse, scale_factor=2.0, mode="nearest")], 1)
            coarse = None
        if noise_std > 0 and not self.projected_noise_ok(x):
            x = x + noise_std * torch.randn(x.shape, generator=generator,
                                            device=x.device, dtype=x.dtype)
            noise_std = 0.0
        if self.fused_input and not _plain():
            raw1, raw_short = self._input_convs(x, noise_std, generator, coarse)
            out1 = self.conv3x3.post(raw1)
            short = self.shortcut.post(raw_short)
        else:
            out1 = self.conv3x3(x)
            short = self.shortcut(x)
        out2 = self.conv5x5(out1)
        out3 = self.conv7x7(out2)
        out = self.bn_cat(torch.cat([out1, out2, out3], 1))
        out = F.leaky_relu(out + short, self.negative_slope, inplace=True)
        return self.bn_out(out)


class ResPath(nn.Module):
    """Residual skip path: ``length`` units of ``BN(act(conv3x3(x) + conv1x1(x)))``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    length : int
        Number of residual units (>= 1).
    negative_slope : float
        LeakyReLU slope.
    bias_before_bn : bool
        Bias on the convolutions followed by BatchNorm.
    """

    def __init__(self, in_channels: int, out_channels: int, length: int = 1,
                 negative_slope: float = 0.2, bias_before_bn: bool = False) -> None:
        super().__init__()
        if length < 1:
            raise ValueError(f"path length must be >= 1, got {length}")
        self.units = nn.ModuleList()
        c = in_channels
        for _ in range(length):
            self.units.append(nn.ModuleDict({
                "conv3x3": ConvBNAct(c, out_channels, 3, negative_slope=negative_slope,
                                     bias=bias_before_bn),
                "conv1x1": ConvBNAct(c, out_channels, 1, negative_slope=negative_slope,
                                     bias=bias_before_bn),
                "bn": nn.BatchNorm2d(out_channels),
            }))
            c = out_channels
        self.negative_slope = float(negative_slope)
        self.out_channels = int(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the path."""
        for unit in self.units:
            s = unit["conv3x3"](x) + unit["conv1x1"](x)
            x = unit["bn"](F.leaky_relu(s, self.negative_slope, inplace=True))
        return x


class MultiResUNet(nn.Module):
    """Multi-resolution U-Net generator of DIPPAS.

    Parameters
    ----------
    in_channels : int
        Channels of the input tensor ``z`` (512 in the paper).
    out_channels : int
        Output channels (3 for RGB).
    widths : sequence of int
        Block width ``U`` of each scale, finest first; ``len(widths)`` scales.
    skip_channels : sequence of int
        Channels of the skip path of each scale but the deepest
        (``len(widths) - 1`` values).
    alpha : float
        Multi-resolution width multiplier, ``W = alpha * U``.
    negative_slope : float
        LeakyReLU slope.
    upsample : str
        ``torch.nn.functional.interpolate`` mode of the decoder (``'nearest'``
        in the paper, or ``'bilinear'``).
    path_lengths : sequence of int, optional
        Residual units per skip path, finest first. Default: one unit each,
        as in the authors' code. ``'multiresunet'`` gives ``n-1, ..., 1``
        (4, 3, 2, 1 with five scales) as in the MultiResUNet paper.
    bias_before_bn : bool
        Keep biases on the convolutions followed by BatchNorm (they cancel in
        training mode; default ``False``).
    fused_input : bool or 'auto'
        Compute the 3x3 convolution and the 1x1 shortcut that open a block
        with one GEMM and a ``fold`` (exact, see the module docstring).
        ``'auto'`` (default) does it for the blocks where it was measured to
        be faster on CPU: those whose input has at least
        :data:`FUSE_MIN_RATIO` times more channels than the 3x3 convolution
        outputs (the first block reading ``z`` and the decoder blocks).
    projected_noise : bool
        Sample the perturbation of ``forward(z, noise_std)`` in the row space
        of the first layer (default ``True``; exact in distribution). Needs a
        fused first block; otherwise, or with ``False``, the noise is drawn
        in full.

    Notes
    -----
    ``forward(z)`` maps ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``
    in ``(0, 1)``; ``H`` and ``W`` must be multiples of :attr:`multiple`.
    The module is a plain ``nn.Module``; it runs the same way on CPU and CUDA,
    in ``torch.contiguous_format`` or ``torch.channels_last``.

    Examples
    --------
    >>> net = MultiResUNet(in_channels=8, widths=(8, 16), skip_channels=(8,))
    >>> net(torch.randn(1, 8, 32, 32)).shape
    torch.Size([1, 3, 32, 32])
    """

    def __init__(self, in_channels: int = 512, out_channels: int = 3,
                 widths: Sequence[int] = (16, 32, 64, 128, 256),
                 skip_channels: Sequence[int] = (16, 32, 64, 128),
                 alpha: float = 1.67, negative_slope: float = 0.2,
                 upsample: str = "nearest", *,
                 path_lengths: Sequence[int] | str | None = None,
                 bias_before_bn: bool = False, fused_input: bool | str = "auto",
                 projected_noise: bool = True) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        skip_channels = tuple(int(s) for s in skip_channels)
        n = len(widths)
        if n < 1:
            raise ValueError("widths must hold at least one scale")
        if len(skip_channels) != n - 1:
            raise ValueError(
                f"skip_channels needs {n - 1} values for {n} scales, got {len(skip_channels)}"
            )
        if path_lengths is None:
            lengths = (1,) * (n - 1)
        elif isinstance(path_lengths, str):
            if path_lengths != "multiresunet":
                raise ValueError(f"unknown path_lengths {path_lengths!r}")
            lengths = tuple(range(n - 1, 0, -1))
        else:
            lengths = tuple(int(v) for v in path_lengths)
            if len(lengths) != n - 1:
                raise ValueError(f"path_lengths needs {n - 1} values, got {len(lengths)}")
        self.widths = widths
        self.skip_channels = skip_channels
        self.path_lengths = lengths
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.upsample = str(upsample)
        self.negative_slope = float(negative_slope)
        #: image sides must be multiples of this
        self.multiple = 2 ** (n - 1)
        ns, b = negative_slope, bias_before_bn

        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.paths = nn.ModuleList()
        self.decoders = nn.ModuleList()
        c = self.in_channels
        enc_out = []
        for i, u in enumerate(widths):
            if i > 0:
                self.downs.append(ConvBNAct(c, c, 3, stride=2, negative_slope=ns, bias=b))
            block = MultiResBlock(c, u, alpha, ns, b)
            self.encoders.append(block)
            c = block.out_channels
            enc_out.append(c)
        for i in range(n - 1):
            self.paths.append(ResPath(enc_out[i], skip_channels[i], lengths[i], ns, b))
        # decoders[i] works at scale i and reads [path i, upsampled scale i+1]
        for i in range(n - 1):
            deeper = enc_out[-1] if i == n - 2 else sum(multires_channels(widths[i + 1], alpha))
            self.decoders.append(MultiResBlock(skip_channels[i] + deeper, widths[i], alpha, ns, b))
        head_in = sum(multires_channels(widths[0], alpha))
        self.head = nn.Conv2d(head_in, out_channels, 1, bias=True)
        self.set_fused_input(fused_input)
        #: sample the input perturbation in the first layer's row space
        self.projected_noise = bool(projected_noise)

    def blocks(self) -> list[MultiResBlock]:
        """All multi-resolution blocks, encoder first."""
        return list(self.encoders) + list(self.decoders)

    def set_fused_input(self, mode: bool | str = "auto") -> None:
        """Choose which blocks compute their input convolutions fused.

        Parameters
        ----------
        mode : bool or 'auto'
            ``True``: every block; ``False``: none; ``'auto'``: blocks with
            ``in_channels >= FUSE_MIN_RATIO * c1``.
        """
        if mode not in (True, False, "auto"):
            raise ValueError(f"fused_input must be True, False or 'auto', got {mode!r}")
        for blk in self.blocks():
            c1 = blk.conv3x3.conv.out_channels
            auto = blk.in_channels >= FUSE_MIN_RATIO * c1
            blk.fused_input = auto if mode == "auto" else bool(mode)

    def check_input(self, z: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``z`` is ``(N, in_channels, H, W)`` with valid sides."""
        if z.ndim != 4 or z.shape[1] != self.in_channels:
            raise ValueError(
                f"expected input of shape (N, {self.in_channels}, H, W), got {tuple(z.shape)}"
            )
        h, w = z.shape[-2:]
        m = self.multiple
        if h % m or w % m or h == 0 or w == 0:
            raise ValueError(
                f"input sides must be positive multiples of {m} for {len(self.widths)} scales, "
                f"got {h}x{w}; pad the image (by reflection) to "
                f"{-(-h // m) * m}x{-(-w // m) * m} and crop the output back"
            )

    def forward(self, z: torch.Tensor, noise_std: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Generate an image from ``z`` (optionally perturbed).

        Parameters
        ----------
        z : Tensor, shape (N, in_channels, H, W)
            The fixed input.
        noise_std : float
            If positive, the network is applied to ``z + n`` with fresh
            ``n ~ N(0, noise_std^2)`` i.i.d. (the per-iteration perturbation of
            DIPPAS). With :attr:`projected_noise` (default) and a fused first
            block reading more channels than it outputs, ``n`` is sampled
            only in the subspace the first layer sees (exact in
            distribution, see :class:`_ProjectedNoiseGEMM`); otherwise it is
            drawn in full and added.
        generator : torch.Generator, optional
            Source of the perturbation (for reproducible runs).

        Returns
        -------
        Tensor, shape (N, out_channels, H, W), values in (0, 1)
        """
        self.check_input(z)
        noise_std = float(noise_std)
        if noise_std < 0 or not math.isfinite(noise_std):
            raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std}")
        if noise_std > 0 and not self.projected_noise:
            z = z + noise_std * torch.randn(z.shape, generator=generator,
                                            device=z.device, dtype=z.dtype)
            noise_std = 0.0
        n = len(self.widths)
        feats = []
        x = z
        for i in range(n):
            if i > 0:
                x = self.downs[i - 1](x)
            x = self.encoders[i](x, noise_std, generator) if i == 0 else self.encoders[i](x)
            feats.append(x)
        y = feats[-1]
        for i in range(n - 2, -1, -1):
            skip = self.paths[i](feats[i])
            if self.upsample == "nearest":  # the block upsamples (cheaply when fused)
                y = self.decoders[i](skip, coarse=y)
            else:
                y = F.interpolate(y, scale_factor=2.0, mode=self.upsample)
                y = self.decoders[i](torch.cat([skip, y], 1))
        if _plain():
            return torch.sigmoid(self.head(y))
        return torch.sigmoid(conv1x1(y, self.head.weight, self.head.bias))


def _conv_macs(conv: nn.Conv2d, out_hw: tuple[int, int]) -> float:
    kh, kw = conv.kernel_size
    return float(out_hw[0] * out_hw[1] * conv.out_channels
                 * (conv.in_channels // conv.groups) * kh * kw)


def count_flops(model: nn.Module, shape: Sequence[int], backward: bool = False) -> float:
    """Floating-point operations of the convolutions of one forward pass.

    Analytic count (2 FLOPs per multiply-add) from the convolution shapes,
    found by running the model once under forward hooks on a zero tensor
    (so it works for any module made of ``nn.Conv2d`` layers). For a
    :class:`MultiResUNet` whose input sides are multiples of its
    :attr:`~MultiResUNet.multiple`, every convolution's cost is exactly
    proportional to the image area, so the model is run at the smallest valid
    size and the count scaled. The count is that of the plain convolutions
    (the fused execution paths do the same multiply-adds). BatchNorm,
    activations and other element-wise work are not counted.

    Parameters
    ----------
    model : nn.Module
        The network.
    shape : sequence of int
        Input shape ``(N, C, H, W)`` or ``(C, H, W)``.
    backward : bool
        Also count the backward pass: weight gradients of every convolution
        (same cost as its forward) plus input gradients of every convolution
        whose input requires a gradient (all but those reading the network
        input), i.e. roughly 3x the forward.

    Returns
    -------
    float
        FLOPs.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3:
        shape = (1,) + shape
    scale = 1.0
    if isinstance(model, MultiResUNet):
        m = model.multiple
        if shape[2] % m == 0 and shape[3] % m == 0 and shape[2] > 0 and shape[3] > 0:
            scale = (shape[2] * shape[3]) / (m * m)
            shape = (shape[0], shape[1], m, m)
    records: list[tuple[float, bool]] = []

    def hook(mod: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        records.append((_conv_macs(mod, tuple(output.shape[-2:])) * output.shape[0],
                        inputs[0] is x0))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    param = next(model.parameters(), None)
    kw = {} if param is None else {"device": param.device, "dtype": param.dtype}
    x0 = torch.zeros(shape, **kw)
    was_training = model.training
    model.eval()  # no running-stat updates
    try:
        with torch.no_grad(), plain_convolutions():
            model(x0)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    fwd = 2.0 * sum(r[0] for r in records) * scale
    if not backward:
        return fwd
    grad_in = 2.0 * sum(r[0] for r in records if not r[1]) * scale
    return 2.0 * fwd + grad_in
