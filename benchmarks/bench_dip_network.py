"""Benchmark of the DIPPAS generator network on CPU.

Two parts:

1. **Cost per training iteration** at ``--size`` (default 512x512) for the
   ``paper`` and ``fast`` configurations (and, unless ``--quick``, an
   ``authors`` configuration: the paper network executed the way the
   authors' code does it, i.e. with conv biases before BatchNorm, plain
   ``nn.Conv2d`` everywhere, the full 512-channel input perturbation and
   PyTorch's per-tensor Adam; ``paper`` and ``fast`` use the inversion's
   own optimiser, :func:`dippas.dip.inversion.build_optimizer`).
   One iteration = forward with the per-iteration perturbation of ``z`` +
   loss ``mean((I_phi (1 + gamma P) - I)^2)`` + backward + Adam (AMSGrad) step
   + clamp of ``gamma``. Each configuration runs in its own subprocess
   (so that its peak RSS is its own), ``--rounds`` times in alternating order;
   the median over all timed iterations after warm-up is printed, with the
   process CPU time per iteration divided by the thread count (less
   sensitive than wall time to other processes on a shared machine) and the
   machine load average.

2. **Anonymity at equal PSNR**: a small self-contained DIPPAS inversion loop
   (PRNU-aware, ``P = K``) on a centre crop of a Dresden image, run for each
   configuration for at most ``--anon-iters`` iterations or ``--anon-budget``
   seconds. For PSNR levels ``--levels`` it prints when each configuration
   first reached the level (iteration, wall and CPU seconds) and the NCC of
   its snapshots there: ``NCC(W(snapshot), gray(snapshot) K)`` on the 8-bit
   snapshot, as in the attribution test; "first" is the first snapshot at or
   above the level, "band" the median over the snapshots whose PSNR lies in
   ``[level, level + 1)`` dB. The NCC of the input image itself and the
   null-hypothesis scale ``1/sqrt(H W)`` are printed for reference.

Usage::

    python benchmarks/bench_dip_network.py            # default, < 10 minutes
    python benchmarks/bench_dip_network.py --quick    # about 1 minute
    python benchmarks/bench_dip_network.py --size 256 --anon-size 256 \\
        --anon-iters 4000 --anon-budget 3600 --levels 30,33,35,37,39

Timings are taken with ``torch.set_num_threads(--threads)`` (2 by default).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# Sleeping (not spinning) OpenMP workers: on a shared machine spinning threads
# make PyTorch several times slower (see dippas.dip.network). Must be set
# before torch is first imported; spawned workers inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
IMAGE = DATA / "dresden" / "natural" / "Nikon_D70_1_20543.jpg"
FINGERPRINT = DATA / "reference" / "fingerprint_Nikon_D70_1_crop512_sigma3.npy"

#: Configurations: MultiResUNet keyword arguments plus the inversion settings.
CONFIGS: dict[str, dict] = {
    "paper": {
        "net": {"in_channels": 512, "widths": (16, 32, 64, 128, 256),
                "skip_channels": (16, 32, 64, 128)},
        "lr": 1e-3, "z_std": 0.1, "noise_std": 0.1,
    },
    # the paper network executed as in the authors' code (reference cost)
    "authors": {
        "net": {"in_channels": 512, "widths": (16, 32, 64, 128, 256),
                "skip_channels": (16, 32, 64, 128), "bias_before_bn": True,
                "fused_input": False, "projected_noise": False},
        "lr": 1e-3, "z_std": 0.1, "noise_std": 0.1, "plain_conv": True, "torch_adam": True,
    },
    "fast": {
        "net": {"in_channels": 32, "widths": (8, 16, 32, 64, 128),
                "skip_channels": (8, 16, 32, 64)},
        "lr": 2e-3, "z_std": 0.1, "noise_std": 0.1,
    },
}


def _parse_config(spec: str) -> tuple[str, dict]:
    """``name`` of :data:`CONFIGS`, or ``name=JSON`` overriding one of them.

    The JSON may hold ``base`` (a config name, default ``paper``), ``net``
    (MultiResUNet keyword arguments, merged into the base's) and any of
    ``lr``, ``z_std``, ``noise_std``.
    """
    if "=" not in spec:
        if spec not in CONFIGS:
            raise SystemExit(f"unknown config {spec!r}; known: {', '.join(CONFIGS)}")
        return spec, json.loads(json.dumps(CONFIGS[spec]))
    name, js = spec.split("=", 1)
    extra = json.loads(js)
    cfg = json.loads(json.dumps(CONFIGS[extra.pop("base", "paper")]))
    cfg["net"].update(extra.pop("net", {}))
    cfg.update(extra)
    return name, cfg


def _setup_torch(threads: int):
    import torch

    torch.set_num_threads(threads)
    return torch


def _build(cfg: dict, side: int, seed: int, torch):
    from dippas.dip import network

    net_kw = dict(cfg["net"])
    for key in ("widths", "skip_channels"):
        net_kw[key] = tuple(net_kw[key])
    torch.manual_seed(seed)
    net = network.MultiResUNet(**net_kw)
    gen = torch.Generator().manual_seed(seed + 1)
    z = cfg["z_std"] * torch.randn((1, net.in_channels, side, side), generator=gen)
    return net, z, gen


def _optimizer(cfg: dict, params: list, torch):
    """Adam (AMSGrad): PyTorch's per-tensor loop (``torch_adam``), or the inversion's own."""
    if cfg.get("torch_adam", False):
        return torch.optim.Adam(params, lr=cfg["lr"], amsgrad=True)
    from dippas.dip.inversion import build_optimizer

    return build_optimizer(params, cfg["lr"], True, "cpu")


def _plain_conv(enabled: bool):
    from dippas.dip import network

    network._MODE.plain = bool(enabled)  # this process times one configuration


# --------------------------------------------------------------------------
# 1. cost per iteration
# --------------------------------------------------------------------------

def _time_worker(cfg: dict, side: int, iters: int, warmup: int, threads: int, queue) -> None:
    torch = _setup_torch(threads)
    from dippas.dip.network import count_flops

    _plain_conv(cfg.get("plain_conv", False))
    net, z, gen = _build(cfg, side, 0, torch)
    target = torch.rand((1, 3, side, side), generator=gen)
    pattern = 0.5 * torch.randn((1, 1, side, side), generator=gen)
    gamma = torch.zeros(1, requires_grad=True)
    opt = _optimizer(cfg, list(net.parameters()) + [gamma], torch)
    walls, cpus = [], []
    for it in range(warmup + iters):
        t0, c0 = time.perf_counter(), time.process_time()
        out = net(z, cfg["noise_std"], gen)
        loss = torch.mean((out * (1 + gamma * pattern) - target) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            gamma.clamp_(min=0)
        if it >= warmup:
            walls.append(time.perf_counter() - t0)
            cpus.append((time.process_time() - c0) / threads)
    _plain_conv(False)
    shape = (1, net.in_channels, side, side)
    queue.put({
        "walls": walls, "cpus": cpus,
        "gflop_fwd": count_flops(net, shape) / 1e9,
        "gflop_iter": count_flops(net, shape, backward=True) / 1e9,
        "params": sum(p.numel() for p in net.parameters()),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "load": os.getloadavg()[0],
    })


def _run_in_subprocess(target, *args):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=args + (queue,))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def bench_cost(configs: list[tuple[str, dict]], side: int, iters: int, warmup: int,
               rounds: int, threads: int) -> dict[str, dict]:
    """Time training iterations of each configuration; print a table."""
    res: dict[str, dict] = {}
    for r in range(rounds):
        order = configs if r % 2 == 0 else configs[::-1]
        for name, cfg in order:
            out = _run_in_subprocess(_time_worker, cfg, side, iters, warmup, threads)
            if name not in res:
                res[name] = out
            else:
                res[name]["walls"] += out["walls"]
                res[name]["cpus"] += out["cpus"]
                res[name]["peak_rss_gb"] = max(res[name]["peak_rss_gb"], out["peak_rss_gb"])
                res[name]["load"] = max(res[name]["load"], out["load"])
    ref = res.get("paper")
    print(f"\n== cost per training iteration at {side}x{side}, torch threads = {threads}, "
          f"{rounds} round(s) x {iters} iterations after {warmup} warm-up ==")
    print(f"{'config':10s} {'wall med [s]':>12s} {'wall min':>9s} {'cpu/thr med':>11s} "
          f"{'GFLOP/it':>9s} {'GFLOP fwd':>9s} {'params':>10s} {'peak RSS':>9s} "
          f"{'vs paper':>8s} {'load':>5s}")
    for name, _ in configs:
        d = res[name]
        wm = statistics.median(d["walls"])
        cm = statistics.median(d["cpus"])
        rel = ""
        if ref is not None and name != "paper":
            rel = f"{statistics.median(ref['cpus']) / cm:.2f}x"
        print(f"{name:10s} {wm:12.3f} {min(d['walls']):9.3f} {cm:11.3f} {d['gflop_iter']:9.1f} "
              f"{d['gflop_fwd']:9.1f} {d['params']:10,d} {d['peak_rss_gb']:8.2f}G {rel:>8s} "
              f"{d['load']:5.1f}")
    print("(vs paper: ratio of the median CPU time per iteration; wall times on a shared "
          "machine include time taken by other processes)")
    return res


# --------------------------------------------------------------------------
# 2. anonymity at equal PSNR
# --------------------------------------------------------------------------

def load_pair(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre ``side x side`` crop of the 512 centre crop of the test image, and of K."""
    from PIL import Image

    img = np.asarray(Image.open(IMAGE).convert("RGB"))
    h, w = img.shape[:2]
    o0, o1 = (h - 512) // 2, (w - 512) // 2
    img = img[o0:o0 + 512, o1:o1 + 512]
    k = np.load(FINGERPRINT).astype(np.float32)
    o = (512 - side) // 2
    return img[o:o + side, o:o + side], k[o:o + side, o:o + side]


def snapshot_ncc(snapshot_u8: np.ndarray, fingerprint: np.ndarray) -> float:
    """Attribution NCC of an 8-bit snapshot against a fingerprint."""
    import dippas
    from dippas.correlation import attribution_reference

    return float(dippas.ncc(dippas.noise_residual(snapshot_u8),
                            attribution_reference(snapshot_u8, fingerprint)))


def run_inversion(cfg: dict, image_u8: np.ndarray, pattern: np.ndarray, max_iters: int,
                  budget_s: float, levels: list[float], stop_psnr: float = 39.0,
                  seed: int = 0, threads: int = 2) -> dict:
    """Minimal DIPPAS inversion (PRNU-aware) recording PSNR and snapshot NCCs.

    Parameters
    ----------
    cfg : dict
        A configuration of :data:`CONFIGS`.
    image_u8 : ndarray, shape (H, W, 3), uint8
        The image I (sides multiples of 16).
    pattern : ndarray, shape (H, W)
        The pattern P injected by ``I_phi (1 + gamma P)`` (here the device K).
    max_iters, budget_s : int, float
        Stop after this many iterations or seconds (wall) at most.
    levels : list of float
        PSNR levels (dB) at which snapshot NCCs are summarised.
    stop_psnr : float
        Stop once the PSNR of I_phi against I exceeds this.
    seed : int
        Seed of the initialisation, z and the perturbations.
    threads : int
        Torch threads.

    Returns
    -------
    dict
        ``psnr``, ``wall``, ``cpu`` (cumulative seconds), ``gamma`` per
        iteration, and ``snap`` = list of ``(iteration, psnr, ncc)`` for every
        snapshot at or above ``min(levels)``.
    """
    torch = _setup_torch(threads)
    side = image_u8.shape[0]
    net, z, gen = _build(cfg, side, seed, torch)
    target = torch.from_numpy(image_u8.astype(np.float32) / 255.0)
    target = target.permute(2, 0, 1)[None].contiguous()
    p = torch.from_numpy(np.ascontiguousarray(pattern, dtype=np.float32))[None, None]
    gamma = torch.zeros(1, requires_grad=True)
    opt = _optimizer(cfg, list(net.parameters()) + [gamma], torch)
    low = min(levels) if levels else math.inf
    hist = {"psnr": [], "wall": [], "cpu": [], "gamma": [], "snap": []}
    t0, c0 = time.perf_counter(), time.process_time()
    for it in range(max_iters):
        out = net(z, cfg["noise_std"], gen)
        loss = torch.mean((out * (1 + gamma * p) - target) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            gamma.clamp_(min=0)
            mse = torch.mean((out - target) ** 2).item()
        psnr = 10 * math.log10(1.0 / max(mse, 1e-12))
        hist["psnr"].append(psnr)
        hist["wall"].append(time.perf_counter() - t0)
        hist["cpu"].append((time.process_time() - c0) / threads)
        hist["gamma"].append(float(gamma.detach()))
        if psnr >= low:
            snap = (out.detach()[0].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255)
            hist["snap"].append((it, psnr, snapshot_ncc(snap.astype(np.uint8), pattern)))
        if psnr > stop_psnr or hist["wall"][-1] > budget_s:
            break
    return hist


def _anon_worker(cfg, side, max_iters, budget, levels, stop, seed, threads, queue) -> None:
    img, k = load_pair(side)
    queue.put(run_inversion(cfg, img, k, max_iters, budget, levels, stop, seed, threads))


def summarise_levels(hist: dict, levels: list[float]) -> dict[float, dict | None]:
    """First crossing and band NCCs of each PSNR level."""
    out: dict[float, dict | None] = {}
    for lev in levels:
        idx = next((i for i, v in enumerate(hist["psnr"]) if v >= lev), None)
        if idx is None:
            out[lev] = None
            continue
        first = next(s for s in hist["snap"] if s[0] == idx)
        band = [s[2] for s in hist["snap"] if lev <= s[1] < lev + 1.0]
        out[lev] = {"iter": idx + 1, "wall": hist["wall"][idx], "cpu": hist["cpu"][idx],
                    "ncc_first": first[2], "ncc_band": statistics.median(band) if band else
                    float("nan"), "n_band": len(band)}
    return out


def bench_anonymity(configs: list[tuple[str, dict]], side: int, max_iters: int, budget: float,
                    levels: list[float], stop: float, seed: int, threads: int) -> dict:
    """Run the inversion loop for each configuration and print the comparison."""
    img, k = load_pair(side)
    ncc_in = snapshot_ncc(img, k)
    print(f"\n== anonymity at equal PSNR: {side}x{side} centre crop of {IMAGE.name}, P = K "
          f"({FINGERPRINT.name}), at most {max_iters} iterations / {budget:.0f} s per config, "
          f"seed {seed} ==")
    print(f"NCC of the input itself: {ncc_in:.5f}; null scale 1/sqrt(HW) = {1 / side:.5f}")
    results = {}
    for name, cfg in configs:
        hist = _run_in_subprocess(_anon_worker, cfg, side, max_iters, budget, levels, stop, seed,
                                  threads)
        results[name] = (hist, summarise_levels(hist, levels))
        n = len(hist["psnr"])
        print(f"{name:8s}: {n} iterations in {hist['wall'][-1]:.0f} s wall "
              f"({hist['cpu'][-1]:.0f} s cpu/thread), best PSNR {max(hist['psnr']):.2f} dB, "
              f"final gamma {hist['gamma'][-1]:.2e}")
    names = [n for n, _ in configs]
    print(f"\n{'level':>6s} " + " ".join(
        f"{n + ' it':>9s} {'wall s':>7s} {'cpu s':>6s} {'NCC first':>9s} {'NCC band':>9s}"
        for n in names))
    for lev in levels:
        row = f"{lev:5.1f}  "
        for n in names:
            s = results[n][1][lev]
            if s is None:
                row += f"{'-':>9s} {'-':>7s} {'-':>6s} {'-':>9s} {'-':>9s} "
            else:
                row += (f"{s['iter']:9d} {s['wall']:7.0f} {s['cpu']:6.0f} {s['ncc_first']:9.5f} "
                        f"{s['ncc_band']:9.5f} ")
        print(row)
    return {"ncc_input": ncc_in, "results": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="about one minute in all")
    ap.add_argument("--size", type=int, default=512, help="image side of the cost benchmark")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--iters", type=int, default=None, help="timed iterations per round")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of the cost benchmark")
    ap.add_argument("--configs", default=None,
                    help="comma-separated names of CONFIGS, or name=JSON overrides "
                         "(separate those with ';')")
    ap.add_argument("--anon-size", type=int, default=None, help="crop side of the anonymity run")
    ap.add_argument("--anon-iters", type=int, default=None, help="max iterations per config")
    ap.add_argument("--anon-budget", type=float, default=None, help="max seconds per config")
    ap.add_argument("--levels", default=None, help="PSNR levels, comma-separated (dB)")
    ap.add_argument("--stop-psnr", type=float, default=39.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--skip-anon", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    q = args.quick
    if args.configs:
        sep = ";" if ";" in args.configs else ","
        configs = [_parse_config(s.strip()) for s in args.configs.split(sep) if s.strip()]
    else:
        names = ("paper", "fast") if q else ("paper", "fast", "authors")
        configs = [_parse_config(n) for n in names]
    iters = args.iters or (3 if q else 4)
    rounds = args.rounds or (1 if q else 2)
    anon_size = args.anon_size or (128 if q else 256)
    anon_iters = args.anon_iters or (10_000)
    anon_budget = args.anon_budget or (15.0 if q else 150.0)
    levels = [float(v) for v in args.levels.split(",")] if args.levels else (
        [25.0, 28.0, 30.0] if q else [30.0, 33.0, 35.0])
    side = args.size
    if side % 16:
        raise SystemExit("--size must be a multiple of 16")

    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    out = {}
    if not args.skip_cost:
        cost = bench_cost(configs, side, iters, 1 if q else 2, rounds, args.threads)
        out["cost"] = {k: {kk: vv for kk, vv in v.items()} for k, v in cost.items()}
    if not args.skip_anon:
        anon_cfgs = [(n, c) for n, c in configs if n != "authors"]
        anon = bench_anonymity(anon_cfgs, anon_size, anon_iters, anon_budget, levels,
                               args.stop_psnr, args.seed, args.threads)
        out["anonymity"] = {
            "ncc_input": anon["ncc_input"],
            "levels": {n: {str(k): v for k, v in r[1].items()} for n, r in anon["results"].items()},
            "psnr": {n: r[0]["psnr"] for n, r in anon["results"].items()},
            "wall": {n: r[0]["wall"] for n, r in anon["results"].items()},
        }
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
