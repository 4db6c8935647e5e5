"""The DIPPAS multi-resolution U-Net: shapes, channel formulas, exact speed paths, FLOPs.

All networks here are tiny (a few thousand weights, 8-64 pixel sides) so the
whole file runs in a few seconds on one CPU thread.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from dippas.dip import network as netmod  # noqa: E402
from dippas.dip.network import (  # noqa: E402
    MultiResBlock,
    MultiResUNet,
    ResPath,
    conv1x1,
    count_flops,
    multires_channels,
)

TINY = dict(in_channels=8, widths=(4, 8), skip_channels=(4,))


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _tiny(seed: int = 0, **kw) -> MultiResUNet:
    torch.manual_seed(seed)
    return MultiResUNet(**{**TINY, **kw})


def test_output_shape_and_range():
    net = _tiny()
    z = 0.1 * torch.randn(2, 8, 32, 48)
    out = net(z)
    assert out.shape == (2, 3, 32, 48)
    assert torch.all(out > 0) and torch.all(out < 1)


def test_five_scales_default_output_shape():
    torch.manual_seed(0)
    net = MultiResUNet(in_channels=4, widths=(4, 4, 4, 4, 4), skip_channels=(2, 2, 2, 2))
    assert net.multiple == 16
    out = net(torch.randn(1, 4, 32, 16), 0.1)
    assert out.shape == (1, 3, 32, 16)


@pytest.mark.parametrize("shape", [(1, 4, 40, 32), (1, 4, 32, 24), (1, 4, 8, 8)])
def test_rejects_sides_not_multiple_of_16(shape):
    net = MultiResUNet(in_channels=4, widths=(4, 4, 4, 4, 4), skip_channels=(2, 2, 2, 2))
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.randn(*shape))


def test_rejects_wrong_channels_and_bad_arguments():
    net = _tiny()
    with pytest.raises(ValueError, match="shape"):
        net(torch.randn(1, 5, 16, 16))
    with pytest.raises(ValueError, match="noise_std"):
        net(torch.randn(1, 8, 16, 16), noise_std=-1.0)
    with pytest.raises(ValueError, match="skip_channels"):
        MultiResUNet(in_channels=8, widths=(4, 8, 16), skip_channels=(4,))
    with pytest.raises(ValueError, match="fused_input"):
        MultiResUNet(**TINY, fused_input="sometimes")
    with pytest.raises(ValueError, match="width"):
        MultiResBlock(8, 2)  # int(0.167 * 1.67 * 2) == 0


def test_block_channel_formulas():
    assert multires_channels(16) == (4, 8, 13)
    assert [sum(multires_channels(u)) for u in (16, 32, 64, 128, 256)] == [25, 51, 105, 212, 426]
    blk = MultiResBlock(512, 16)
    assert blk.out_channels == 25
    assert blk.conv3x3.conv.in_channels == 512 and blk.conv3x3.conv.out_channels == 4
    assert blk.conv5x5.conv.in_channels == 4 and blk.conv5x5.conv.out_channels == 8
    assert blk.conv7x7.conv.in_channels == 8 and blk.conv7x7.conv.out_channels == 13
    assert blk.shortcut.conv.kernel_size == (1, 1) and blk.shortcut.conv.out_channels == 25
    assert blk.bn_cat.num_features == 25 and blk.bn_out.num_features == 25


def test_paper_network_layout():
    net = MultiResUNet()  # the paper's defaults; built only, never run here
    assert [b.out_channels for b in net.encoders] == [25, 51, 105, 212, 426]
    assert [d.conv.in_channels for d in net.downs] == [25, 51, 105, 212]
    assert all(d.conv.stride == (2, 2) and d.conv.kernel_size == (3, 3) for d in net.downs)
    assert [p.out_channels for p in net.paths] == [16, 32, 64, 128]
    assert [p.units[0]["conv3x3"].conv.in_channels for p in net.paths] == [25, 51, 105, 212]
    # decoder i reads [skip path i, upsampled deeper output]
    assert [b.in_channels for b in net.decoders] == [16 + 51, 32 + 105, 64 + 212, 128 + 426]
    assert [b.out_channels for b in net.decoders] == [25, 51, 105, 212]
    assert net.head.in_channels == 25 and net.head.out_channels == 3
    assert net.path_lengths == (1, 1, 1, 1)
    assert MultiResUNet(path_lengths="multiresunet").path_lengths == (4, 3, 2, 1)
    # no conv bias before BatchNorm (they cancel in training mode); the head keeps its bias
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(c.bias is not None for c in convs) == 1 and net.head.bias is not None
    assert sum(p.numel() for p in net.parameters()) > 2_000_000


def test_res_path_lengths_run():
    torch.manual_seed(0)
    path = ResPath(6, 4, length=3)
    assert len(path.units) == 3
    assert path(torch.randn(1, 6, 8, 8)).shape == (1, 4, 8, 8)
    net = _tiny(path_lengths=(2,))
    assert net(torch.randn(1, 8, 16, 16)).shape == (1, 3, 16, 16)


def test_deterministic_under_seed():
    z = 0.1 * torch.randn(1, 8, 16, 16)
    outs = []
    for _ in range(2):
        net = _tiny(seed=3)
        gen = torch.Generator().manual_seed(7)
        outs.append(net(z, 0.1, gen))
    assert torch.equal(outs[0], outs[1])
    other = _tiny(seed=4)(z)
    assert not torch.allclose(outs[0], other)


def test_gradients_flow_to_every_parameter():
    net = _tiny()
    z = 0.1 * torch.randn(1, 8, 16, 16)
    target = torch.rand(1, 3, 16, 16)
    loss = F.mse_loss(net(z, 0.1), target)
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("batch", [1, 2])
def test_fast_paths_are_exact(batch):
    """Fused input GEMM + fold and matmul 1x1 convs equal plain nn.Conv2d (float64)."""
    torch.manual_seed(0)
    net = MultiResUNet(in_channels=40, widths=(4, 8, 16), skip_channels=(4, 8),
                       fused_input=False).double()
    z = torch.randn(batch, 40, 16, 16, dtype=torch.float64)

    def run():
        out = net(z)
        grads = torch.autograd.grad((out ** 2).sum(), list(net.parameters()))
        return out, grads

    with netmod.plain_convolutions():
        ref_out, ref_grads = run()
    assert not netmod._plain()
    net.set_fused_input(True)
    assert all(b.fused_input for b in net.blocks())
    out, grads = run()
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-12)


def test_fused_auto_policy():
    net = MultiResUNet()
    # first block (512 -> 4) and decoders (ratio ~16) fused, encoder blocks (ratio ~3) not
    assert [b.fused_input for b in net.encoders] == [True, False, False, False, False]
    assert all(b.fused_input for b in net.decoders)
    net.set_fused_input(False)
    assert not any(b.fused_input for b in net.blocks())


def test_conv1x1_matches_conv2d():
    torch.manual_seed(0)
    w = torch.randn(5, 6, 1, 1)
    b = torch.randn(5)
    for x in (torch.randn(1, 6, 7, 9), torch.randn(3, 6, 7, 9),
              torch.randn(2, 6, 7, 9).to(memory_format=torch.channels_last)):
        torch.testing.assert_close(conv1x1(x, w, b), F.conv2d(x, w, b), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(conv1x1(x, w), F.conv2d(x, w), rtol=1e-5, atol=1e-5)


def test_bias_before_bn_changes_nothing_in_training_mode():
    torch.manual_seed(0)
    with_bias = MultiResUNet(**TINY, bias_before_bn=True).double()
    without = MultiResUNet(**TINY).double()
    # copy every shared parameter, leave the extra biases random
    state = {k: v for k, v in with_bias.state_dict().items() if k in without.state_dict()}
    without.load_state_dict(state)
    z = torch.randn(1, 8, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(with_bias(z), without(z), rtol=1e-9, atol=1e-12)


def _first_layer_samples(projected: bool, n: int, seed: int):
    torch.manual_seed(0)
    net = MultiResUNet(in_channels=32, widths=(4,), skip_channels=()).double()
    assert net.encoders[0].fused_input  # 32 >= 12 * 1
    net.projected_noise = projected
    z = 0.1 * torch.randn(1, 32, 8, 8, dtype=torch.float64)
    target = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    if projected:
        assert net.encoders[0].projected_noise_ok(z)
    gen = torch.Generator().manual_seed(seed)
    w3 = net.encoders[0].conv3x3.conv.weight
    w1 = net.encoders[0].shortcut.conv.weight
    outs, grads = [], []
    for _ in range(n):
        net.zero_grad()
        out = net(z, 0.1, gen)
        F.mse_loss(out, target).backward()
        outs.append(out.detach()[0, :, 3, 4])
        grads.append(torch.cat([w3.grad.flatten()[:40], w1.grad.flatten()[:40]]))
    return torch.stack(outs), torch.stack(grads)


def test_projected_noise_matches_explicit_noise_in_distribution():
    """Outputs and first-layer weight gradients: same mean and spread either way."""
    n = 400
    out_p, grad_p = _first_layer_samples(True, n, seed=1)
    out_d, grad_d = _first_layer_samples(False, n, seed=2)
    for a, b in ((out_p, out_d), (grad_p, grad_d)):
        sa, sb = a.std(0), b.std(0)
        z = (a.mean(0) - b.mean(0)) / torch.sqrt((sa ** 2 + sb ** 2) / n)
        assert z.abs().max() < 4.5
        ratio = sa / sb
        assert ratio.min() > 0.8 and ratio.max() < 1.25
        # the spread must be real (the noise does reach these quantities)
        assert (sb > 1e-3 * b.mean(0).abs().clamp_min(1e-12)).all()


def test_projected_noise_without_fused_block_falls_back():
    net = _tiny(fused_input=False)
    z = 0.1 * torch.randn(1, 8, 16, 16)
    assert not net.encoders[0].projected_noise_ok(z)
    gen = torch.Generator().manual_seed(0)
    out = net(z, 0.1, gen)
    assert out.shape == (1, 3, 16, 16)


def test_count_flops_positive_and_scales_with_area():
    net = _tiny(fused_input=True)
    f32 = count_flops(net, (1, 8, 32, 32))
    f64 = count_flops(net, (1, 8, 64, 64))
    assert f32 > 0
    assert f64 / f32 == pytest.approx(4.0, rel=1e-9)
    assert count_flops(net, (8, 32, 32)) == f32  # (C, H, W) accepted
    # a wrapper is counted by running at the full size: same numbers
    assert count_flops(torch.nn.Sequential(net), (1, 8, 64, 64)) == pytest.approx(f64, rel=1e-12)
    both = count_flops(net, (1, 8, 32, 32), backward=True)
    assert 2 * f32 < both <= 3 * f32
    # the fast paths are off during counting and restored afterwards
    assert net.encoders[0].fused_input and not netmod._plain()
    conv = torch.nn.Conv2d(3, 5, 3, padding=1)
    assert count_flops(conv, (1, 3, 10, 10)) == 2 * 5 * 3 * 9 * 100
    assert count_flops(conv, (1, 3, 20, 20)) == 4 * count_flops(conv, (1, 3, 10, 10))


def test_count_flops_paper_value():
    """The paper network: about 45 GFLOP forward, 120 GFLOP per training iteration at 512^2."""
    net = MultiResUNet()
    fwd = count_flops(net, (1, 512, 512, 512))
    assert fwd == pytest.approx(45.36e9, rel=1e-3)
    assert count_flops(net, (1, 512, 512, 512), backward=True) == pytest.approx(119.7e9, rel=1e-3)


def test_parallel_normal_fill_is_deterministic_and_standard():
    def fill(threads: int) -> torch.Tensor:
        torch.set_num_threads(threads)
        return netmod._fill_normal_(torch.empty(1 << 21), torch.Generator().manual_seed(5))

    a, b = fill(1), fill(2)
    assert torch.equal(a, b)
    assert abs(float(a.mean())) < 5e-3 and abs(float(a.std()) - 1) < 5e-3
    h = a.numel() // 2
    assert abs(float((a[:h] * a[h:]).mean())) < 5e-3  # chunks are independent streams
    c = netmod._fill_normal_(torch.empty(1 << 21), torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)


def test_upsampled_input_gemm_matches_conv_of_concatenation():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 4, 4, 3, dtype=torch.float64, requires_grad=True)
    wx = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    wc = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    out = netmod._UpsampledInputGEMM.apply(x, wx, c, wc)
    cat = torch.cat([x, F.interpolate(c, scale_factor=2.0, mode="nearest")], 1)
    ref = F.conv2d(cat, torch.cat([wx, wc], 1)[:, :, None, None])
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    ga = torch.autograd.grad(out, (x, wx, c, wc), g)
    gb = torch.autograd.grad(ref, (x, wx, c, wc), g)
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v)
